//! The counter-reset hints of a selector read for its histograms' statistics only, as
//! Prometheus's `HistogramStatsIterator` gives them: an "unknown" hint after the first
//! histogram read becomes "reset" or "not a reset", by comparing with the histogram read
//! before it (stale markers neither get a hint nor count as the one before).

use std::sync::Arc;

use strata_storage::is_stale;
use strata_vocab::{CounterResetHint, FloatHistogram};

/// `hs` (one series, in time order) with the hints re-derived.
pub(super) fn derive(hs: &[(i64, Arc<FloatHistogram>)]) -> Vec<(i64, Arc<FloatHistogram>)> {
    let mut out = Vec::with_capacity(hs.len());
    let mut last: Option<&FloatHistogram> = None;
    for (t, h) in hs {
        if is_stale(h.sum) {
            out.push((*t, h.clone()));
            continue;
        }
        match (h.hint, last) {
            (CounterResetHint::Unknown, Some(prev)) => {
                let mut d = (**h).clone();
                d.hint = if h.detect_reset(prev) {
                    CounterResetHint::Reset
                } else {
                    CounterResetHint::NotReset
                };
                out.push((*t, Arc::new(d)));
            }
            _ => out.push((*t, h.clone())),
        }
        last = Some(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(count: f64, hint: CounterResetHint) -> Arc<FloatHistogram> {
        Arc::new(FloatHistogram {
            count,
            hint,
            positive: vec![(0, count)],
            ..FloatHistogram::default()
        })
    }

    #[test]
    fn unknown_hints_after_the_first_are_derived() {
        use CounterResetHint::*;
        let stale = Arc::new(FloatHistogram {
            sum: strata_storage::STALE_NAN,
            ..FloatHistogram::default()
        });
        let hs = vec![
            (1, h(5.0, Unknown)),
            (2, h(6.0, NotReset)),
            (3, h(2.0, Unknown)),
            (4, stale),
            (5, h(3.0, Unknown)),
            (6, h(1.0, Gauge)),
        ];
        let hints: Vec<CounterResetHint> = derive(&hs).iter().map(|s| s.1.hint).collect();
        assert_eq!(hints, [Unknown, NotReset, Reset, Unknown, NotReset, Gauge]);
    }
}
