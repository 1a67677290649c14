//! Which vector selectors read histograms for their count and sum only: Prometheus's
//! `detectHistogramStatsDecoding`. Under `histogram_count`, `histogram_sum` or
//! `histogram_avg`, and under no subquery, `histogram_quantile(s)`, `histogram_fraction`
//! or trim operator, Prometheus reads the selector through its `HistogramStatsIterator`,
//! which turns each "unknown" counter-reset hint after the first sample it reads into
//! "reset" or "not a reset" by comparing with the sample before. That changes what the
//! aggregations see (and so their "conflicting counter resets" warnings); the storage read
//! of such a selector re-derives its hints the same way (see `exec::parts`).

use std::collections::HashSet;

use strata_grammar::{BinaryOp, Expr, VectorSelector};

/// The addresses of the selectors of `root` read for their statistics only.
pub(super) fn stats_only_selectors(root: &Expr) -> HashSet<usize> {
    let mut out = HashSet::new();
    walk(root, false, &mut out);
    out
}

fn mark(v: &VectorSelector, stats: bool, out: &mut HashSet<usize>) {
    if stats {
        out.insert(std::ptr::from_ref(v) as usize);
    }
}

/// `stats`: a statistics function is above and nothing that needs the buckets is.
fn walk(e: &Expr, stats: bool, out: &mut HashSet<usize>) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(v) => mark(v, stats, out),
        Expr::MatrixSelector(m) => mark(&m.selector, stats, out),
        // Below a subquery the buckets are needed for counter-reset detection.
        Expr::Subquery(s) => walk(&s.expr, false, &mut HashSet::new()),
        Expr::Call(c) => {
            let below = match c.func.name {
                "histogram_count" | "histogram_sum" | "histogram_avg" => Some(true),
                // Nothing below reads statistics only, whatever is above.
                "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => None,
                _ => Some(stats),
            };
            if let Some(s) = below {
                c.args.iter().for_each(|a| walk(a, s, out));
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, stats, out);
            }
            walk(&a.expr, stats, out);
        }
        Expr::Binary(b) => {
            if !matches!(b.op, BinaryOp::TrimUpper | BinaryOp::TrimLower) {
                walk(&b.lhs, stats, out);
                walk(&b.rhs, stats, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, stats, out),
        Expr::Paren(p) => walk(p, stats, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(q: &str) -> Vec<String> {
        let e = strata_grammar::parse(q).expect("parses");
        let set = stats_only_selectors(&e);
        e.selectors()
            .into_iter()
            .filter(|v| set.contains(&(std::ptr::from_ref(*v) as usize)))
            .map(|v| v.to_string())
            .collect()
    }

    #[test]
    fn as_prometheus_decides() {
        assert_eq!(stats("histogram_count(sum(a))"), ["a"]);
        assert_eq!(stats("histogram_sum(rate(a[5m])) + b"), ["a"]);
        assert_eq!(stats("histogram_avg(sum_over_time(a[5m]))"), ["a"]);
        assert!(stats("sum(a)").is_empty());
        assert!(stats("histogram_count(increase(a[40m:9m]))").is_empty());
        assert!(stats("histogram_quantile(0.5, histogram_count(a))").is_empty());
        assert!(stats("histogram_count(a </ 3)").is_empty());
        assert!(stats("histogram_count(histogram_fraction(0, 1, a))").is_empty());
    }
}
