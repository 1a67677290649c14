//! Deduplication of HA replicas at read time (`--query.replica-label`, Thanos's semantics):
//! series whose labels differ only in replica labels are one series, returned without
//! those labels. Two Prometheus-style replicas scrape the same targets a few seconds apart,
//! so their samples are not at the same timestamps: the series takes the samples of one
//! replica (the one with the most samples in the range) and fills its gaps from the others
//! — a sample of another replica is used only where no chosen sample lies within one
//! scrape interval of it (the median spacing of the chosen replica's samples). A replica
//! killed mid-stream is thus continued by its peer, without doubling the sample rate where
//! both have data.
//!
//! Selections are cut into label ranges (parts) by the deduplicated labels, so all
//! replicas of a series fall in the same part.

use crate::db::SeriesSamples;
use crate::labels::{Label, Labels};
use crate::read::SeriesRange;
use crate::series::HistSample;

/// The replica labels of a database (empty: no deduplication).
#[derive(Debug, Clone, Default)]
pub struct ReplicaLabels(Vec<String>);

impl ReplicaLabels {
    /// Deduplication on `names`.
    pub fn new(names: Vec<String>) -> Self {
        ReplicaLabels(names.into_iter().filter(|n| !n.is_empty()).collect())
    }

    /// Whether any replica label is set.
    pub fn active(&self) -> bool {
        !self.0.is_empty()
    }

    /// `l` without the replica labels.
    pub fn key(&self, l: &Labels) -> Labels {
        if !self.active() || !l.iter().any(|x| self.0.iter().any(|n| *n == *x.name)) {
            return l.clone();
        }
        Labels::from_labels(
            l.iter()
                .filter(|x| !self.0.iter().any(|n| *n == *x.name))
                .cloned()
                .collect::<Vec<Label>>(),
        )
    }

    /// Whether series `l` belongs to `range` (by its deduplicated labels).
    pub fn in_range(&self, range: Option<&SeriesRange>, l: &Labels) -> bool {
        match range {
            None => true,
            Some(r) if self.active() => r.in_bounds(&self.key(l)) && r.keeps(l),
            Some(r) => r.contains(l),
        }
    }

    /// `series` (sorted by labels) with replicas merged, sorted by deduplicated labels.
    pub fn merge(&self, series: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
        if !self.active() {
            return series;
        }
        let mut keyed: Vec<(Labels, SeriesSamples)> = series
            .into_iter()
            .map(|s| (self.key(&s.labels), s))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<SeriesSamples> = Vec::with_capacity(keyed.len());
        let mut group: Vec<SeriesSamples> = Vec::new();
        let mut it = keyed.into_iter().peekable();
        while let Some((key, s)) = it.next() {
            group.push(s);
            if it.peek().is_some_and(|(k, _)| *k == key) {
                continue;
            }
            let g = std::mem::take(&mut group);
            let (samples, histograms) = if g.len() == 1 {
                let s = g.into_iter().next().unwrap_or_default();
                (s.samples, s.histograms)
            } else {
                let mut fl: Vec<Vec<(i64, f64)>> = Vec::with_capacity(g.len());
                let mut hs: Vec<Vec<HistSample>> = Vec::with_capacity(g.len());
                for s in g {
                    fl.push(s.samples);
                    hs.push(s.histograms);
                }
                (fill_gaps(fl), fill_gaps(hs))
            };
            out.push(SeriesSamples {
                labels: key,
                samples,
                histograms,
            });
        }
        out
    }
}

/// The median spacing of a run's samples (`None` under two samples).
fn median_spacing<T>(r: &[(i64, T)]) -> Option<i64> {
    if r.len() < 2 {
        return None;
    }
    let mut d: Vec<i64> = r.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let mid = d.len() / 2;
    Some(*d.select_nth_unstable(mid).1)
}

/// One replica's samples (the longest run) with the gaps filled from the others.
pub(crate) fn fill_gaps<T: Clone>(mut runs: Vec<Vec<(i64, T)>>) -> Vec<(i64, T)> {
    runs.retain(|r| !r.is_empty());
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    // Stable: on equal lengths the replica first in label order is chosen.
    runs.sort_by_key(|r| std::cmp::Reverse(r.len()));
    let interval = runs
        .iter()
        .find_map(|r| median_spacing(r))
        .unwrap_or(1)
        .max(1);
    let mut it = runs.into_iter();
    let mut out = it.next().unwrap_or_default();
    for r in it {
        let kept: Vec<(i64, T)> = r
            .into_iter()
            .filter(|(t, _)| {
                let i = out.partition_point(|x| x.0 < *t);
                let near = |j: usize| out.get(j).is_some_and(|x| (x.0 - *t).abs() < interval);
                !(near(i) || (i > 0 && near(i - 1)))
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        let mut merged = Vec::with_capacity(out.len() + kept.len());
        let (mut a, mut b) = (out.into_iter().peekable(), kept.into_iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if x.0 <= y.0 {
                        merged.extend(a.next());
                    } else {
                        merged.extend(b.next());
                    }
                }
                (Some(_), None) => merged.extend(a.next()),
                (None, Some(_)) => merged.extend(b.next()),
                (None, None) => break,
            }
        }
        out = merged;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(from: i64, to: i64, step: i64, offset: i64) -> Vec<(i64, f64)> {
        (from..to)
            .step_by(step as usize)
            .map(|t| (t + offset, (t / step) as f64))
            .collect()
    }

    #[test]
    fn a_killed_replica_is_continued_by_its_peer_without_doubling() {
        // Replica a scrapes every 15s until 600s, then dies; b scrapes 7s later throughout.
        let a = run(0, 600_000, 15_000, 0);
        let b = run(0, 1_200_000, 15_000, 7_000);
        let got = fill_gaps(vec![a.clone(), b.clone()]);
        // b is the longer run: it is chosen whole, and a adds nothing (always within 15s).
        assert_eq!(got, b);
        // With a the longer one (b starts late), b fills only a's gap.
        let a = run(0, 1_200_000, 15_000, 0)
            .into_iter()
            .filter(|(t, _)| !(300_000..450_000).contains(t))
            .collect::<Vec<_>>();
        let b = run(0, 1_200_000, 15_000, 7_000)
            .into_iter()
            .filter(|(t, _)| *t >= 250_000)
            .collect::<Vec<_>>();
        let got = fill_gaps(vec![b, a.clone()]);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        // No two samples closer than a scrape interval minus the offset, none missing.
        assert!(got.windows(2).all(|w| w[1].0 - w[0].0 >= 8_000), "{got:?}");
        assert!(got.windows(2).all(|w| w[1].0 - w[0].0 <= 15_000 + 8_000));
        // a's 70 samples and b's 9 inside a's gap (not those within 15s of a's edges).
        assert_eq!(got.len(), 79);
        assert!(got.iter().filter(|(t, _)| t % 15_000 == 0).count() == a.len());
    }

    #[test]
    fn replicas_become_one_series_without_the_replica_label() {
        let r = ReplicaLabels::new(vec!["replica".into()]);
        let s = |rep: &str, inst: &str, samples: Vec<(i64, f64)>| SeriesSamples {
            labels: Labels::from_pairs([("__name__", "up"), ("instance", inst), ("replica", rep)]),
            samples,
            histograms: Vec::new(),
        };
        let out = r.merge(vec![
            s("a", "x", run(0, 60_000, 15_000, 0)),
            s("a", "y", run(0, 60_000, 15_000, 0)),
            s("b", "x", run(0, 120_000, 15_000, 3_000)),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([("__name__", "up"), ("instance", "x")])
        );
        assert_eq!(out[0].samples.len(), 8);
        assert_eq!(out[1].samples.len(), 4);
        // Ranges are cut by the deduplicated labels.
        let key = r.key(&Labels::from_pairs([
            ("a", "1"),
            ("replica", "z"),
            ("z", "2"),
        ]));
        assert_eq!(key, Labels::from_pairs([("a", "1"), ("z", "2")]));
    }
}
