//! Inverted index: label name → value → postings (roaring bitmaps of series ids), and the
//! resolution of a matcher list to the ids of the series it selects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::labels::Labels;
use crate::matcher::Matcher;

/// Postings of one set of series (the head's, or one block's).
#[derive(Default, Debug)]
pub struct Postings {
    by_name: HashMap<Arc<str>, BTreeMap<Arc<str>, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl Postings {
    /// Adds a series.
    pub fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels.iter() {
            self.by_name
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .insert(id);
        }
        self.all.insert(id);
    }

    /// Removes a series.
    pub fn remove(&mut self, id: u32, labels: &Labels) {
        for l in labels.iter() {
            if let Some(values) = self.by_name.get_mut(&l.name) {
                if let Some(p) = values.get_mut(&l.value) {
                    p.remove(id);
                    if p.is_empty() {
                        values.remove(&l.value);
                    }
                }
                if values.is_empty() {
                    self.by_name.remove(&l.name);
                }
            }
        }
        self.all.remove(id);
    }

    /// Every series id.
    pub fn all(&self) -> &RoaringBitmap {
        &self.all
    }

    /// Number of series.
    pub fn len(&self) -> u64 {
        self.all.len()
    }

    /// True when no series is indexed.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The series a matcher list selects (intersection; an empty list selects everything).
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        // Non-empty matchers first: they narrow fastest.
        let mut ordered: Vec<&Matcher> = matchers.iter().collect();
        ordered.sort_by_key(|m| m.matches_empty());
        let mut acc: Option<RoaringBitmap> = None;
        for m in ordered {
            if acc.as_ref().is_some_and(RoaringBitmap::is_empty) {
                break;
            }
            let values = self.by_name.get(m.name.as_str());
            if m.matches_empty() {
                // Series lacking the label match; subtract those whose value does not.
                let mut excluded = RoaringBitmap::new();
                if let Some(values) = values {
                    for (v, p) in values {
                        if !m.matches(v) {
                            excluded |= p;
                        }
                    }
                }
                let base = acc.take().unwrap_or_else(|| self.all.clone());
                acc = Some(base - excluded);
            } else {
                let mut hit = RoaringBitmap::new();
                if let Some(values) = values {
                    match m.exact_values() {
                        Some(exact) => {
                            for v in exact {
                                if let Some(p) = values.get(v) {
                                    hit |= p;
                                }
                            }
                        }
                        None => {
                            for (v, p) in values {
                                if m.matches(v) {
                                    hit |= p;
                                }
                            }
                        }
                    }
                }
                acc = Some(match acc.take() {
                    Some(a) => a & hit,
                    None => hit,
                });
            }
        }
        acc.unwrap_or_else(|| self.all.clone())
    }

    /// Label names, sorted.
    pub fn label_names(&self) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self.by_name.keys().cloned().collect();
        v.sort();
        v
    }

    /// Values of one label with their postings, sorted by value.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = (&Arc<str>, &RoaringBitmap)> {
        self.by_name.get(name).into_iter().flat_map(|m| m.iter())
    }

    /// Number of distinct values per label name (for TSDB status).
    pub fn value_counts(&self) -> Vec<(Arc<str>, usize)> {
        self.by_name
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;

    fn idx() -> Postings {
        let mut p = Postings::default();
        p.add(0, &Labels::from_pairs([("__name__", "a"), ("job", "x")]));
        p.add(
            1,
            &Labels::from_pairs([("__name__", "a"), ("job", "y"), ("env", "p")]),
        );
        p.add(2, &Labels::from_pairs([("__name__", "b"), ("env", "")]));
        p
    }

    fn sel(p: &Postings, ms: &[(MatchOp, &str, &str)]) -> Vec<u32> {
        let ms: Vec<Matcher> = ms
            .iter()
            .map(|(o, n, v)| Matcher::new(*o, *n, *v).expect("matcher"))
            .collect();
        p.select(&ms).iter().collect()
    }

    #[test]
    fn four_matcher_types_and_empty_label() {
        let p = idx();
        assert_eq!(sel(&p, &[(MatchOp::Equal, "__name__", "a")]), [0, 1]);
        assert_eq!(sel(&p, &[(MatchOp::Equal, "env", "")]), [0, 2]);
        assert_eq!(sel(&p, &[(MatchOp::NotEqual, "job", "x")]), [1, 2]);
        assert_eq!(sel(&p, &[(MatchOp::Regex, "job", "x|y")]), [0, 1]);
        assert_eq!(sel(&p, &[(MatchOp::Regex, "job", ".*")]), [0, 1, 2]);
        assert_eq!(sel(&p, &[(MatchOp::NotRegex, "job", "x")]), [1, 2]);
        assert_eq!(
            sel(
                &p,
                &[
                    (MatchOp::Equal, "__name__", "a"),
                    (MatchOp::Regex, "env", ".+")
                ]
            ),
            [1]
        );
    }

    #[test]
    fn remove_cleans_up() {
        let mut p = idx();
        p.remove(
            1,
            &Labels::from_pairs([("__name__", "a"), ("job", "y"), ("env", "p")]),
        );
        assert!(p.label_values("env").next().is_none());
        assert_eq!(p.len(), 2);
    }
}
