//! Postfix modifiers (`[range]`, `[range:step]`, `offset`, `@`,
//! `anchored`, `smoothed`) and duration expressions.
//!
//! Duration arithmetic (`[5m*2]`, `offset (1h+5m)`, `[60*30]`) is folded
//! to milliseconds at parse time; expressions that use `step()` or
//! `range()` are kept as a [`DurationExpr`] for the engine to resolve.

use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::error::ParseError;
use crate::grammar::Rule;
use crate::parser::Builder;
use crate::typecheck;

static DUR_PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    use Assoc::{Left, Right};
    PrattParser::new()
        .op(Op::infix(Rule::d_add, Left) | Op::infix(Rule::d_sub, Left))
        .op(Op::infix(Rule::d_mul, Left)
            | Op::infix(Rule::d_div, Left)
            | Op::infix(Rule::d_mod, Left))
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
        .op(Op::infix(Rule::d_pow, Right))
});

/// Largest duration in seconds (Prometheus durations are int64 nanoseconds).
const MAX_DURATION_SECS: f64 = 9_223_372_036.854_775;

type R<T> = Result<T, ParseError>;

const MODIFIER_TARGET: &str =
    "must be preceded by an instant vector selector or range vector selector or a subquery";

/// Applies one postfix modifier to `expr` (which starts at byte `start`).
pub(crate) fn apply_postfix(
    b: &Builder<'_>,
    expr: Expr,
    post: Pair<'_, Rule>,
    start: usize,
) -> R<Expr> {
    let pos = post.as_span().start();
    match post.as_rule() {
        Rule::range_sel => {
            let vs = match expr {
                Expr::VectorSelector(vs) => vs,
                _ => return Err(b.err(pos, "ranges only allowed for vector selectors")),
            };
            if vs.offset.is_some() {
                return Err(b.err(pos, "no offset modifiers allowed before range"));
            }
            if vs.at.is_some() {
                return Err(b.err(pos, "no @ modifiers allowed before range"));
            }
            let d = post
                .into_inner()
                .next()
                .ok_or_else(|| b.err(pos, "expected duration"))?;
            let range = positive_duration(b, d)?;
            Ok(Expr::MatrixSelector(MatrixSelector {
                selector: vs,
                range,
            }))
        }
        Rule::subquery => {
            typecheck::check_subquery(&expr).map_err(|(_, m)| b.err(start, m))?;
            let mut inner = post.into_inner();
            let d = inner
                .next()
                .ok_or_else(|| b.err(pos, "expected duration"))?;
            let range = positive_duration(b, d)?;
            let step = inner.next().map(|s| positive_duration(b, s)).transpose()?;
            Ok(Expr::Subquery(SubqueryExpr {
                expr: Box::new(expr),
                range,
                step,
                offset: None,
                at: None,
            }))
        }
        Rule::offset_mod => {
            let d = post
                .into_inner()
                .nth(1)
                .ok_or_else(|| b.err(pos, "expected duration"))?;
            let offset = offset_duration(b, d)?;
            let mut expr = expr;
            let slot = match &mut expr {
                Expr::VectorSelector(vs) => &mut vs.offset,
                Expr::MatrixSelector(ms) => &mut ms.selector.offset,
                Expr::Subquery(sq) => &mut sq.offset,
                _ => return Err(b.err(start, format!("offset modifier {MODIFIER_TARGET}"))),
            };
            if slot.is_some() {
                return Err(b.err(start, "offset may not be set multiple times"));
            }
            *slot = Some(offset);
            Ok(expr)
        }
        Rule::at_mod => {
            let at = at_modifier(b, post)?;
            let mut expr = expr;
            let slot = match &mut expr {
                Expr::VectorSelector(vs) => &mut vs.at,
                Expr::MatrixSelector(ms) => &mut ms.selector.at,
                Expr::Subquery(sq) => &mut sq.at,
                _ => return Err(b.err(start, format!("@ modifier {MODIFIER_TARGET}"))),
            };
            if slot.is_some() {
                return Err(b.err(start, "@ <timestamp> may not be set multiple times"));
            }
            *slot = Some(at);
            Ok(expr)
        }
        Rule::kw_anchored | Rule::kw_smoothed => {
            let anchored = post.as_rule() == Rule::kw_anchored;
            let name = if anchored { "anchored" } else { "smoothed" };
            let mut expr = expr;
            let vs = match &mut expr {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &mut ms.selector,
                Expr::Subquery(_) => {
                    return Err(b.err(
                        start,
                        format!("{name} modifier is not supported for subqueries"),
                    ));
                }
                _ => return Err(b.err(start, format!("{name} modifier not implemented"))),
            };
            if (anchored && vs.smoothed) || (!anchored && vs.anchored) {
                return Err(b.err(
                    start,
                    "anchored and smoothed modifiers cannot be used together",
                ));
            }
            if anchored {
                vs.anchored = true;
            } else {
                vs.smoothed = true;
            }
            Ok(expr)
        }
        other => Err(b.err(pos, format!("unexpected {other:?}"))),
    }
}

fn at_modifier(b: &Builder<'_>, post: Pair<'_, Rule>) -> R<AtModifier> {
    let pos = post.as_span().start();
    let inner = post
        .into_inner()
        .next()
        .ok_or_else(|| b.err(pos, "expected timestamp"))?;
    match inner.as_rule() {
        Rule::at_start => Ok(AtModifier::Start),
        Rule::at_end => Ok(AtModifier::End),
        _ => {
            let secs = b.signed_number(inner)?;
            let ms = (secs * 1000.0).round();
            if !secs.is_finite() || ms >= i64::MAX as f64 || ms <= i64::MIN as f64 {
                return Err(b.err(
                    pos,
                    format!("timestamp out of bounds for @ modifier: {secs:.6}"),
                ));
            }
            Ok(AtModifier::Timestamp(ms as i64))
        }
    }
}

/// A range or subquery step: must be positive when constant.
fn positive_duration(b: &Builder<'_>, pair: Pair<'_, Rule>) -> R<Duration> {
    let pos = pair.as_span().start();
    let d = duration_expr(b, pair)?;
    let out = resolve(b, d, pos)?;
    if let Duration::Fixed(ms) = out
        && ms <= 0
    {
        return Err(b.err(pos, "duration must be greater than 0"));
    }
    Ok(out)
}

/// An `offset` value: `[+-]` then a literal, `step()`, `range()`, `min/max(..)` or `( .. )`.
fn offset_duration(b: &Builder<'_>, pair: Pair<'_, Rule>) -> R<Duration> {
    let pos = pair.as_span().start();
    let mut neg = false;
    let mut value = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::neg => neg = true,
            Rule::pos => {}
            _ => value = Some(dur_atom(b, p)?),
        }
    }
    let value = value.ok_or_else(|| b.err(pos, "expected duration"))?;
    let d = if neg { negate(value) } else { value };
    resolve(b, d, pos)
}

fn negate(d: DurationExpr) -> DurationExpr {
    match d {
        DurationExpr::Number { seconds, duration } => DurationExpr::Number {
            seconds: -seconds,
            duration,
        },
        other => DurationExpr::Neg(Box::new(other)),
    }
}

/// Folds constant expressions to milliseconds.
fn resolve(b: &Builder<'_>, d: DurationExpr, pos: usize) -> R<Duration> {
    match eval_const(&d).map_err(|m| b.err(pos, m))? {
        Some(secs) => {
            if !secs.is_finite() || secs.abs() > MAX_DURATION_SECS {
                return Err(b.err(pos, "duration out of range"));
            }
            Ok(Duration::Fixed((secs * 1000.0).round() as i64))
        }
        None => Ok(Duration::Expr(d)),
    }
}

/// Evaluates a constant duration expression in seconds; `None` if it uses step()/range().
fn eval_const(d: &DurationExpr) -> Result<Option<f64>, String> {
    Ok(match d {
        DurationExpr::Number { seconds, .. } => Some(*seconds),
        DurationExpr::Step | DurationExpr::Range => None,
        DurationExpr::Neg(e) => eval_const(e)?.map(|v| -v),
        DurationExpr::Paren(e) => eval_const(e)?,
        DurationExpr::Min(a, b) | DurationExpr::Max(a, b) => {
            let (a, b2) = (eval_const(a)?, eval_const(b)?);
            match (a, b2) {
                (Some(x), Some(y)) if matches!(d, DurationExpr::Min(..)) => Some(x.min(y)),
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            }
        }
        DurationExpr::Binary { op, lhs, rhs } => {
            let (l, r) = (eval_const(lhs)?, eval_const(rhs)?);
            if r == Some(0.0) && *op == DurationOp::Div {
                return Err("division by zero".into());
            }
            if r == Some(0.0) && *op == DurationOp::Mod {
                return Err("modulo by zero".into());
            }
            match (l, r) {
                (Some(l), Some(r)) => Some(match op {
                    DurationOp::Add => l + r,
                    DurationOp::Sub => l - r,
                    DurationOp::Mul => l * r,
                    DurationOp::Div => l / r,
                    DurationOp::Mod => l % r,
                    DurationOp::Pow => l.powf(r),
                }),
                _ => None,
            }
        }
    })
}

fn duration_expr(b: &Builder<'_>, pair: Pair<'_, Rule>) -> R<DurationExpr> {
    DUR_PRATT
        .map_primary(|p| dur_atom(b, p))
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            Ok(if op.as_rule() == Rule::neg {
                negate(rhs)
            } else {
                rhs
            })
        })
        .map_infix(|lhs, op, rhs| {
            let op = match op.as_rule() {
                Rule::d_add => DurationOp::Add,
                Rule::d_sub => DurationOp::Sub,
                Rule::d_mul => DurationOp::Mul,
                Rule::d_div => DurationOp::Div,
                Rule::d_mod => DurationOp::Mod,
                _ => DurationOp::Pow,
            };
            Ok(DurationExpr::Binary {
                op,
                lhs: Box::new(lhs?),
                rhs: Box::new(rhs?),
            })
        })
        .parse(pair.into_inner())
}

fn dur_atom(b: &Builder<'_>, p: Pair<'_, Rule>) -> R<DurationExpr> {
    let pos = p.as_span().start();
    match p.as_rule() {
        Rule::number_lit | Rule::duration_lit => {
            let n = b.number_value(&p)?;
            if !n.duration && n.value.is_finite() && n.value.abs() > MAX_DURATION_SECS {
                return Err(b.err(pos, "duration out of range"));
            }
            Ok(DurationExpr::Number {
                seconds: n.value,
                duration: n.duration,
            })
        }
        Rule::dur_step => Ok(DurationExpr::Step),
        Rule::dur_range => Ok(DurationExpr::Range),
        Rule::dur_min | Rule::dur_max => {
            let min = p.as_rule() == Rule::dur_min;
            let mut args = p.into_inner().filter(|x| x.as_rule() == Rule::dur_expr);
            let (Some(x), Some(y)) = (args.next(), args.next()) else {
                return Err(b.err(pos, "expected two duration arguments"));
            };
            let (x, y) = (
                Box::new(duration_expr(b, x)?),
                Box::new(duration_expr(b, y)?),
            );
            Ok(if min {
                DurationExpr::Min(x, y)
            } else {
                DurationExpr::Max(x, y)
            })
        }
        Rule::dur_paren => {
            let inner = p
                .into_inner()
                .next()
                .ok_or_else(|| b.err(pos, "expected duration"))?;
            Ok(DurationExpr::Paren(Box::new(duration_expr(b, inner)?)))
        }
        Rule::dur_expr => duration_expr(b, p),
        other => Err(b.err(pos, format!("unexpected {other:?} in duration"))),
    }
}
