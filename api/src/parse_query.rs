//! `/api/v1/parse_query`: the query's syntax tree as JSON, in the shape of Prometheus's
//! `translateAST` (what its UI's tree view reads).

use axum::Json;
use serde_json::{Value, json};
use strata_grammar::{AtModifier, Cardinality, Duration, Expr, UnaryOp, ValueType, VectorSelector};

use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;

/// `GET|POST /api/v1/parse_query?query=…`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/parse_query",
    tag = "query",
    summary = "The syntax tree of a query",
    params(
        ("query" = String, Query, description = "PromQL expression")
    ),
    responses(
        (status = 200, description = "Success", body = ObjectResponse),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub(crate) async fn parse_query(p: Params) -> Result<Json<Value>, ApiError> {
    let q = p.get("query").unwrap_or("");
    let expr = strata_grammar::parse(q)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))?;
    Ok(Json(json!({"status": "success", "data": translate(&expr)})))
}

fn ms(d: Option<&Duration>) -> i64 {
    d.and_then(Duration::fixed_ms).unwrap_or(0)
}

fn at(a: Option<&AtModifier>) -> (Value, Value) {
    match a {
        Some(AtModifier::Timestamp(t)) => (json!(t), Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
        None => (Value::Null, Value::Null),
    }
}

fn matchers(vs: &VectorSelector) -> Value {
    Value::Array(
        vs.all_matchers()
            .iter()
            .map(|m| json!({"type": m.op.as_str(), "name": m.name, "value": m.value}))
            .collect(),
    )
}

fn selector(vs: &VectorSelector, kind: &str) -> Value {
    let (ts, soe) = at(vs.at.as_ref());
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": ms(vs.offset.as_ref()),
        "matchers": matchers(vs),
        "timestamp": ts,
        "startOrEnd": soe,
    })
}

fn translate(e: &Expr) -> Value {
    match e {
        Expr::NumberLiteral(n) => {
            json!({"type": "numberLiteral", "val": strata_grammar::format_float(n.value)})
        }
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s}),
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.selector, "matrixSelector");
            v["range"] = json!(m.range.fixed_ms().unwrap_or(0));
            v
        }
        Expr::Subquery(sq) => {
            let (ts, soe) = at(sq.at.as_ref());
            json!({
                "type": "subquery",
                "expr": translate(&sq.expr),
                "range": sq.range.fixed_ms().unwrap_or(0),
                "offset": ms(sq.offset.as_ref()),
                "step": ms(sq.step.as_ref()),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| type_name(*t)).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": type_name(c.func.return_type),
            },
            "args": c.args.iter().map(translate).collect::<Vec<_>>(),
        }),
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": translate(&a.expr),
            "param": a.param.as_deref().map(translate).unwrap_or(Value::Null),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Binary(b) => {
            let matching = b.matching.as_ref().map(|m| {
                json!({
                    "card": match m.card {
                        Cardinality::OneToOne => "one-to-one",
                        Cardinality::ManyToOne => "many-to-one",
                        Cardinality::OneToMany => "one-to-many",
                        Cardinality::ManyToMany => "many-to-many",
                    },
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
                })
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.as_str(),
                "lhs": translate(&b.lhs),
                "rhs": translate(&b.rhs),
                "matching": matching,
                "bool": b.return_bool,
            })
        }
        Expr::Unary(u) => json!({
            "type": "unaryExpr",
            "op": match u.op { UnaryOp::Neg => "-", UnaryOp::Pos => "+" },
            "expr": translate(&u.expr),
        }),
        Expr::Paren(inner) => json!({"type": "parenExpr", "expr": translate(inner)}),
    }
}

/// Prometheus's `ValueType` names.
fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
    }
}
