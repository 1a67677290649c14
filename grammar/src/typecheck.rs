//! Type checking, following `checkAST` in Prometheus's `parse.go`.
//!
//! The checks are called by the parser while it builds the tree, so every
//! error can point at the offending part of the input. Each check returns
//! a [`Check`] error: a message plus which part of the node it refers to.

use crate::ast::{
    AggregateOp, BinaryOp, Call, Cardinality, Expr, MatchOp, Matcher, ValueType, VectorMatching,
    VectorSelector,
};
use crate::functions::Function;

/// Which part of a node an error refers to (the parser maps it to a position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// The node itself.
    Node,
    /// The operator of a binary expression.
    Operator,
    /// The left operand.
    Lhs,
    /// The right operand.
    Rhs,
    /// Argument `i` of a call / aggregation.
    Arg(usize),
}

/// A type-check failure.
pub(crate) type Check = (At, String);

fn expect(t: ValueType, want: ValueType, context: &str, at: At) -> Result<(), Check> {
    if t == want {
        Ok(())
    } else {
        Err((at, format!("expected type {want} in {context}, got {t}")))
    }
}

/// Checks arity and argument types of a function call.
pub(crate) fn check_call(call: &Call) -> Result<(), Check> {
    let func: &Function = call.func;
    let name = func.name;
    let nargs = func.arg_types.len();
    let got = call.args.len();
    if func.variadic == 0 {
        if nargs != got {
            return Err((
                At::Node,
                format!("expected {nargs} argument(s) in call to {name:?}, got {got}"),
            ));
        }
    } else {
        let min = nargs.saturating_sub(1);
        if got < min {
            return Err((
                At::Node,
                format!("expected at least {min} argument(s) in call to {name:?}, got {got}"),
            ));
        }
        if func.variadic > 0 {
            let max = min + func.variadic as usize;
            if got > max {
                return Err((
                    At::Node,
                    format!("expected at most {max} argument(s) in call to {name:?}, got {got}"),
                ));
            }
        }
    }
    if name == "info"
        && let Some(arg) = call.args.get(1)
    {
        let t = arg.value_type();
        expect(
            t,
            ValueType::Vector,
            &format!("call to function {name:?}"),
            At::Node,
        )?;
        match arg {
            Expr::VectorSelector(vs) if vs.name.is_some() => {
                return Err((
                    At::Arg(1),
                    "expected label selectors only, got vector selector instead".into(),
                ));
            }
            Expr::VectorSelector(_) => {}
            _ => return Err((At::Arg(1), "expected label selectors only".into())),
        }
    }
    for (i, arg) in call.args.iter().enumerate() {
        let want = match func.arg_types.get(i) {
            Some(t) => *t,
            None if func.variadic == 0 => break,
            None => match func.arg_types.last() {
                Some(t) => *t,
                None => break,
            },
        };
        expect(
            arg.value_type(),
            want,
            &format!("call to function {name:?}"),
            At::Arg(i),
        )?;
    }
    Ok(())
}

/// Checks an aggregation's argument count and types; returns `(param, expr)`.
pub(crate) fn check_aggregate(
    op: AggregateOp,
    mut args: Vec<Expr>,
) -> Result<(Option<Expr>, Expr), Check> {
    if args.is_empty() {
        return Err((
            At::Node,
            "no arguments for aggregate expression provided".into(),
        ));
    }
    let desired = if op.has_param() { 2 } else { 1 };
    if args.len() != desired {
        return Err((
            At::Node,
            format!(
                "wrong number of arguments for aggregate expression provided, expected {desired}, got {}",
                args.len()
            ),
        ));
    }
    let expr = args
        .pop()
        .ok_or((At::Node, "missing aggregation argument".to_string()))?;
    expect(
        expr.value_type(),
        ValueType::Vector,
        "aggregation expression",
        At::Arg(desired - 1),
    )?;
    let param = args.pop();
    if let Some(p) = &param {
        let want = if op == AggregateOp::CountValues {
            ValueType::String
        } else {
            ValueType::Scalar
        };
        expect(p.value_type(), want, "aggregation parameter", At::Arg(0))?;
    }
    Ok((param, expr))
}

/// Parsed binary-operator modifiers, before type checking.
#[derive(Debug, Default)]
pub(crate) struct BinMods {
    pub(crate) return_bool: bool,
    /// `Some((on, labels))` when `on(...)` / `ignoring(...)` was given.
    pub(crate) matching: Option<(bool, Vec<String>)>,
    /// `Some((card, include))` for `group_left` / `group_right`.
    pub(crate) group: Option<(Cardinality, Vec<String>)>,
    pub(crate) fill_lhs: Option<f64>,
    pub(crate) fill_rhs: Option<f64>,
}

/// Checks a binary expression and computes its vector matching.
pub(crate) fn check_binary(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    mods: BinMods,
) -> Result<Option<VectorMatching>, Check> {
    let lt = lhs.value_type();
    let rt = rhs.value_type();
    if mods.return_bool && !op.is_comparison() {
        return Err((
            At::Operator,
            "bool modifier can only be used on comparison operators".into(),
        ));
    }
    if op.is_comparison() && !mods.return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar
    {
        return Err((
            At::Operator,
            "comparisons between scalars must use BOOL modifier".into(),
        ));
    }
    let (on, labels) = mods.matching.unwrap_or((false, Vec::new()));
    let (mut card, include) = mods.group.unwrap_or((Cardinality::OneToOne, Vec::new()));
    if op.is_set_operator() && card == Cardinality::OneToOne {
        card = Cardinality::ManyToMany;
    }
    if on && let Some(l) = labels.iter().find(|l| include.contains(l)) {
        return Err((
            At::Operator,
            format!("label {l:?} must not occur in ON and GROUP clause at once"),
        ));
    }
    for (t, at) in [(lt, At::Lhs), (rt, At::Rhs)] {
        if t != ValueType::Scalar && t != ValueType::Vector {
            return Err((
                at,
                "binary expression must contain only scalar and instant vector types".into(),
            ));
        }
    }
    let fill = mods.fill_lhs.is_some() || mods.fill_rhs.is_some();
    if lt != ValueType::Vector || rt != ValueType::Vector {
        if !labels.is_empty() {
            return Err((
                At::Node,
                "vector matching only allowed between instant vectors".into(),
            ));
        }
        if fill {
            return Err((
                At::Node,
                "filling in missing series only allowed between instant vectors".into(),
            ));
        }
        if op.is_set_operator() {
            return Err((
                At::Node,
                format!(
                    "set operator {:?} not allowed in binary scalar expression",
                    op.as_str()
                ),
            ));
        }
        return Ok(None);
    }
    if op.is_set_operator() {
        if matches!(card, Cardinality::OneToMany | Cardinality::ManyToOne) {
            return Err((
                At::Node,
                format!("no grouping allowed for {:?} operation", op.as_str()),
            ));
        }
        if fill {
            return Err((
                At::Node,
                "filling in missing series not allowed for set operators".into(),
            ));
        }
    }
    Ok(Some(VectorMatching {
        card,
        on,
        labels,
        include,
        fill_lhs: mods.fill_lhs,
        fill_rhs: mods.fill_rhs,
    }))
}

/// Checks the operand of a unary expression.
pub(crate) fn check_unary(expr: &Expr) -> Result<(), Check> {
    let t = expr.value_type();
    if t != ValueType::Scalar && t != ValueType::Vector {
        return Err((
            At::Node,
            format!(
                "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                t.documented_name()
            ),
        ));
    }
    Ok(())
}

/// Checks the inner expression of a subquery.
pub(crate) fn check_subquery(expr: &Expr) -> Result<(), Check> {
    let t = expr.value_type();
    if t != ValueType::Vector {
        let go_name = match t {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        };
        return Err((
            At::Node,
            format!("subquery is only allowed on instant vector, got {go_name} instead"),
        ));
    }
    Ok(())
}

/// Checks a vector selector (metric name set twice, empty matchers).
pub(crate) fn check_vector_selector(
    vs: &VectorSelector,
    bypass_empty_check: bool,
) -> Result<(), Check> {
    if let Some(name) = &vs.name {
        if let Some(m) = vs.matchers.iter().find(|m| m.name == "__name__") {
            return Err((
                At::Node,
                format!(
                    "metric name must not be set twice: {name:?} or {:?}",
                    m.value
                ),
            ));
        }
        return Ok(());
    }
    if !bypass_empty_check && !vs.matchers.iter().any(|m| !matcher_matches_empty(m)) {
        return Err((
            At::Node,
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(())
}

/// Whether the matcher matches the empty label value.
pub(crate) fn matcher_matches_empty(m: &Matcher) -> bool {
    match m.op {
        MatchOp::Equal => m.value.is_empty(),
        MatchOp::NotEqual => !m.value.is_empty(),
        MatchOp::Regex => crate::regex_check::matches_empty(&m.value),
        MatchOp::NotRegex => !crate::regex_check::matches_empty(&m.value),
    }
}
