//! Series identity: a label set sorted by name with `__name__` first, its stable hash, and
//! the symbol interning that lets the head share label strings between series and postings.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair. Strings are shared (`Arc<str>`) with the symbol table and postings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: Arc<str>,
    pub value: Arc<str>,
}

/// A sorted label set: `__name__` first, then by name. Labels with empty values are dropped,
/// as Prometheus treats an empty value as an absent label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Labels(Arc<[Label]>);

fn label_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a == METRIC_NAME, b == METRIC_NAME) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Labels {
    /// Builds a label set from pairs in any order. Empty values are dropped; on a repeated
    /// name the last pair wins (callers that must reject duplicates check [`Labels::validate`]
    /// on the raw pairs first).
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .filter(|(_, v)| !v.as_ref().is_empty())
            .map(|(n, v)| Label {
                name: Arc::from(n.as_ref()),
                value: Arc::from(v.as_ref()),
            })
            .collect();
        Self::normalize(&mut v);
        Labels(Arc::from(v))
    }

    /// Builds from already-shared labels (no copy of the strings).
    pub fn from_labels(mut v: Vec<Label>) -> Self {
        v.retain(|l| !l.value.is_empty());
        Self::normalize(&mut v);
        Labels(Arc::from(v))
    }

    fn normalize(v: &mut Vec<Label>) {
        v.sort_by(|a, b| label_order(&a.name, &b.name));
        // Keep the last of equal names: reverse-dedup keeps the first, so dedup on a
        // reversed run would be needed; labels with equal names are rare, handle simply.
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v.drain(..) {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        *v = out;
    }

    /// The labels in order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there is no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of a label, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|l| &*l.name == name).map(|l| &*l.value)
    }

    /// The metric name, or "" when the series has none.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    /// Stable 64-bit hash of the label set (xxh3 over `name\xffvalue\xff`…); the same in
    /// every process and on disk.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Xxh3::new();
        for l in self.0.iter() {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// Checks one label or metric name: Prometheus 3.x takes any non-empty UTF-8; Strata
    /// also refuses control characters (U+0000–U+001F, U+007F), which no exposition or
    /// log line should carry inside a name. Values are not checked: writers escape them.
    pub fn validate_name(n: &str) -> Result<(), String> {
        if n.is_empty() {
            return Err("empty label name".into());
        }
        if let Some(c) = n.chars().find(|c| *c < ' ' || *c == '\x7f') {
            return Err(format!(
                "name {n:?} contains the control character U+{:04X}",
                c as u32
            ));
        }
        Ok(())
    }

    /// Checks names as Prometheus 3.x does (any UTF-8, non-empty, no duplicates) and that the
    /// metric name is present; label names and the metric name must pass
    /// [`Labels::validate_name`] (no control characters).
    pub fn validate_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Result<(), String> {
        let mut seen: HashSet<&str> = HashSet::with_capacity(pairs.len());
        let mut has_name = false;
        for (n, v) in pairs {
            let n = n.as_ref();
            Self::validate_name(n)?;
            if !seen.insert(n) {
                return Err(format!("duplicate label name {n:?}"));
            }
            if n == METRIC_NAME && !v.as_ref().is_empty() {
                Self::validate_name(v.as_ref())?;
                has_name = true;
            }
        }
        if !has_name {
            return Err("missing metric name (__name__ label)".into());
        }
        Ok(())
    }

    /// Approximate heap bytes held by this label set (strings counted once per set).
    pub fn heap_bytes(&self) -> usize {
        self.0.len() * std::mem::size_of::<Label>()
    }

    /// Replaces every string by the interned copy from `symbols`.
    pub(crate) fn intern(&self, symbols: &mut Symbols) -> Labels {
        Labels(
            self.0
                .iter()
                .map(|l| Label {
                    name: symbols.intern(&l.name),
                    value: symbols.intern(&l.value),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Labels {
    /// Prometheus's text form: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric_name())?;
        let mut first = true;
        for l in self.0.iter().filter(|l| &*l.name != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, &*l.value)?;
        }
        write!(f, "}}")
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Orders as Prometheus's `labels.Compare`: pairwise by name then value, shorter first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            // Interned strings are shared: equal pointers are equal strings.
            let c = if Arc::ptr_eq(&a.name, &b.name) {
                std::cmp::Ordering::Equal
            } else {
                label_order(&a.name, &b.name)
            };
            let c = c.then_with(|| {
                if Arc::ptr_eq(&a.value, &b.value) {
                    std::cmp::Ordering::Equal
                } else {
                    a.value.cmp(&b.value)
                }
            });
            if c != std::cmp::Ordering::Equal {
                return c;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

/// Label sets shared by the head and every block: a series present in several blocks and
/// the head is held once.
#[derive(Default, Debug)]
pub struct LabelPool {
    set: parking_lot::Mutex<HashSet<Labels>>,
}

impl LabelPool {
    /// The shared copy of `l`.
    pub fn intern(&self, l: Labels) -> Labels {
        let mut set = self.set.lock();
        if let Some(x) = set.get(&l) {
            return x.clone();
        }
        set.insert(l.clone());
        l
    }

    /// Forgets label sets nothing else holds.
    pub fn gc(&self) {
        self.set.lock().retain(|l| Arc::strong_count(&l.0) > 1);
    }
}

/// Interned strings, shared by all series of the head.
#[derive(Default, Debug)]
pub(crate) struct Symbols {
    set: HashSet<Arc<str>>,
}

impl Symbols {
    pub(crate) fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(x) = self.set.get(s) {
            return x.clone();
        }
        self.set.insert(s.clone());
        s.clone()
    }

    /// Drops strings no series refers to any more.
    pub(crate) fn gc(&mut self) {
        self.set.retain(|s| Arc::strong_count(s) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_with_name_first_and_empty_dropped() {
        let l = Labels::from_pairs([("b", "2"), ("A", "1"), ("__name__", "up"), ("e", "")]);
        let names: Vec<&str> = l.iter().map(|l| &*l.name).collect();
        assert_eq!(names, ["__name__", "A", "b"]);
        assert_eq!(l.to_string(), r#"up{A="1", b="2"}"#);
    }

    #[test]
    fn hash_is_order_independent_and_distinct() {
        let a = Labels::from_pairs([("__name__", "x"), ("a", "1"), ("b", "2")]);
        let b = Labels::from_pairs([("b", "2"), ("a", "1"), ("__name__", "x")]);
        let c = Labels::from_pairs([("__name__", "x"), ("a", "12")]);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), c.stable_hash());
    }

    #[test]
    fn validation() {
        assert!(Labels::validate_pairs(&[("__name__", "x"), ("a", "1")]).is_ok());
        assert!(Labels::validate_pairs(&[("a", "1")]).is_err());
        assert!(Labels::validate_pairs(&[("__name__", "x"), ("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::validate_pairs(&[("__name__", "x.y"), ("ü b", "\n\"}")]).is_ok());
        for bad in ["a\nb", "\0", "tab\t", "del\x7f"] {
            assert!(Labels::validate_pairs(&[("__name__", "x"), (bad, "1")]).is_err());
            assert!(Labels::validate_pairs(&[("__name__", bad)]).is_err());
        }
    }
}
