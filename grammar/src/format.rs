//! Canonical PromQL printing, matching Prometheus's `String()` methods
//! (`printer.go`): `sum by (job) (rate(x[5m]))`, sorted label matchers,
//! `@ 10.000`, durations like `1h30m`, Go-style string quoting.

use std::fmt::{self, Display, Formatter};

pub use strata_vocab::duration::format_ms as format_duration_ms;
pub use strata_vocab::float::format_f as format_float;
use strata_vocab::float::format_g as format_float_v;
pub use strata_vocab::name::{is_legacy_label_name, is_legacy_metric_name};
pub use strata_vocab::quote::{format_label_name, quote_string};

use crate::ast::*;

/// The UTC civil time of `secs` since the epoch: `(year, month, day, hour, minute,
/// second)` (Howard Hinnant's days-to-civil algorithm).
pub fn civil_from_unix(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_unix`]'s date part; Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time (ms since the epoch) as RFC 3339 in UTC, with milliseconds when `millis`.
pub fn format_rfc3339(ms: i64, millis: bool) -> String {
    let (y, m, d, hh, mm, ss) = civil_from_unix(ms.div_euclid(1000));
    if millis {
        format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z",
            ms.rem_euclid(1000)
        )
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(&format_label_name(l))?;
    }
    Ok(())
}

impl Display for Duration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Duration::Fixed(ms) => f.write_str(&format_duration_ms(*ms)),
            Duration::Expr(e) => e.fmt(f),
        }
    }
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Number {
                seconds,
                duration: true,
            } => f.write_str(&format_duration_ms((seconds * 1000.0).round() as i64)),
            DurationExpr::Number { seconds, .. } => f.write_str(&format_float(*seconds)),
            DurationExpr::Step => f.write_str("step()"),
            DurationExpr::Range => f.write_str("range()"),
            DurationExpr::Neg(e) => write!(f, "-{e}"),
            DurationExpr::Binary { op, lhs, rhs } => {
                let op = match op {
                    DurationOp::Add => "+",
                    DurationOp::Sub => "-",
                    DurationOp::Mul => "*",
                    DurationOp::Div => "/",
                    DurationOp::Mod => "%",
                    DurationOp::Pow => "^",
                };
                write!(f, "{lhs} {op} {rhs}")
            }
            DurationExpr::Min(a, b) => write!(f, "min({a}, {b})"),
            DurationExpr::Max(a, b) => write!(f, "max({a}, {b})"),
            DurationExpr::Paren(e) => write!(f, "({e})"),
        }
    }
}

fn write_at(f: &mut Formatter<'_>, at: &Option<AtModifier>) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {:.3}", *ms as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
        None => Ok(()),
    }
}

fn write_offset(f: &mut Formatter<'_>, offset: &Option<Duration>) -> fmt::Result {
    match offset {
        Some(Duration::Fixed(0)) | None => Ok(()),
        // An offset takes a single term: parenthesise binary duration expressions.
        Some(Duration::Expr(e @ DurationExpr::Binary { .. })) => write!(f, " offset ({e})"),
        Some(Duration::Expr(DurationExpr::Neg(e)))
            if matches!(**e, DurationExpr::Binary { .. }) =>
        {
            write!(f, " offset -({e})")
        }
        Some(d) => write!(f, " offset {d}"),
    }
}

fn write_selector_body(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if let Some(name) = &vs.name {
        f.write_str(name)?;
    }
    if !vs.matchers.is_empty() {
        let mut strs: Vec<String> = vs.matchers.iter().map(|m| m.to_string()).collect();
        strs.sort();
        write!(f, "{{{}}}", strs.join(","))?;
    }
    Ok(())
}

fn write_extended(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if vs.anchored {
        f.write_str(" anchored")
    } else if vs.smoothed {
        f.write_str(" smoothed")
    } else {
        Ok(())
    }
}

impl Display for VectorSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_selector_body(f, self)?;
        write_at(f, &self.at)?;
        write_extended(f, self)?;
        write_offset(f, &self.offset)
    }
}

impl Display for MatrixSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_selector_body(f, &self.selector)?;
        write!(f, "[{}]", self.range)?;
        write_extended(f, &self.selector)?;
        write_at(f, &self.selector.at)?;
        write_offset(f, &self.selector.offset)
    }
}

impl Display for SubqueryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}:", self.expr, self.range)?;
        if let Some(step) = &self.step
            && step != &Duration::Fixed(0)
        {
            write!(f, "{step}")?;
        }
        f.write_str("]")?;
        write_at(f, &self.at)?;
        write_offset(f, &self.offset)
    }
}

impl Display for AggregateExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if self.without || !self.grouping.is_empty() {
            f.write_str(if self.without { " without (" } else { " by (" })?;
            write_labels(f, &self.grouping)?;
            f.write_str(") ")?;
        }
        f.write_str("(")?;
        if let Some(p) = &self.param {
            write!(f, "{p}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // A signed literal (`+Inf`, `-2`) left of `^` would re-parse as a unary
        // expression around the power; parenthesise it to keep the meaning.
        let signed_base = self.op == BinaryOp::Pow
            && matches!(&*self.lhs, Expr::NumberLiteral(n)
                if n.value == f64::INFINITY || (n.value.is_sign_negative() && !n.value.is_nan()));
        if signed_base {
            write!(f, "({}) {}", self.lhs, self.op.as_str())?;
        } else {
            write!(f, "{} {}", self.lhs, self.op.as_str())?;
        }
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(vm) = &self.matching {
            let grouped = matches!(vm.card, Cardinality::ManyToOne | Cardinality::OneToMany);
            if !vm.labels.is_empty() || vm.on || grouped {
                f.write_str(if vm.on { " on (" } else { " ignoring (" })?;
                write_labels(f, &vm.labels)?;
                f.write_str(")")?;
            }
            if grouped {
                let side = if vm.card == Cardinality::ManyToOne {
                    "left"
                } else {
                    "right"
                };
                write!(f, " group_{side} (")?;
                write_labels(f, &vm.include)?;
                f.write_str(")")?;
            }
            match (vm.fill_lhs, vm.fill_rhs) {
                (Some(l), Some(r)) if l.to_bits() == r.to_bits() => {
                    write!(f, " fill ({})", format_float_v(l))?
                }
                (l, r) => {
                    if let Some(l) = l {
                        write!(f, " fill_left ({})", format_float_v(l))?;
                    }
                    if let Some(r) = r {
                        write!(f, " fill_right ({})", format_float_v(r))?;
                    }
                }
            }
        }
        write!(f, " {}", self.rhs)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => {
                if n.duration {
                    f.write_str(&format_duration_ms((n.value * 1000.0).round() as i64))
                } else {
                    f.write_str(&format_float(n.value))
                }
            }
            Expr::StringLiteral(s) => f.write_str(&quote_string(s)),
            Expr::VectorSelector(vs) => vs.fmt(f),
            Expr::MatrixSelector(ms) => ms.fmt(f),
            Expr::Subquery(sq) => sq.fmt(f),
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_str(")")
            }
            Expr::Aggregate(a) => a.fmt(f),
            Expr::Binary(b) => b.fmt(f),
            Expr::Unary(u) => {
                f.write_str(if u.op == UnaryOp::Neg { "-" } else { "+" })?;
                u.expr.fmt(f)
            }
            Expr::Paren(e) => write!(f, "({e})"),
        }
    }
}
