//! Turns the rows of the top plan node into a Prometheus result: delayed `__name__`
//! removal, merging of series that became equal, and Prometheus's ordering.

use datafusion::common::HashMap;
use std::cmp::Ordering;
use std::sync::Arc;

use strata_vocab::FloatHistogram;

use strata_grammar::{AggregateOp, Expr};
use strata_storage::Labels;

use crate::error::{Result, exec_err};
use crate::model::{Rows, SeriesRegistry};

/// One series of a matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Labels.
    pub labels: Labels,
    /// `(ts ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
    /// `(ts ms, histogram)` in time order (`histograms` of the JSON).
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Labels.
    pub labels: Labels,
    /// Timestamp (ms).
    pub t: i64,
    /// Value (of a float sample).
    pub v: f64,
    /// The histogram, for a histogram sample (`histogram` of the JSON instead of `value`).
    pub h: Option<Arc<FloatHistogram>>,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum PromValue {
    /// `scalar`.
    Scalar {
        /// Timestamp.
        t: i64,
        /// Value.
        v: f64,
    },
    /// `string`.
    Str {
        /// Timestamp.
        t: i64,
        /// Value.
        s: String,
    },
    /// `vector`.
    Vector(Vec<Sample>),
    /// `matrix`.
    Matrix(Vec<Series>),
}

/// Prometheus `labels.Compare`: label pairs in byte order of names.
pub fn compare_labels(a: &Labels, b: &Labels) -> Ordering {
    compare_key(a).cmp(&compare_key(b))
}

/// Go `labels.Labels.String()`: `{a="1", b="2"}` in byte order of names.
pub fn go_labels_string(l: &Labels) -> String {
    let mut v: Vec<(&str, &str)> = l.iter().map(|l| (&*l.name, &*l.value)).collect();
    v.sort_unstable();
    let inner: Vec<String> = v.iter().map(|(n, val)| format!("{n}={val:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Whether `name` is one of the labels that describe the metric rather than the series
/// (Prometheus's `schema.IsMetadataLabel`): `__name__` and the type-and-unit labels
/// `__type__` and `__unit__`. Wherever the name is dropped, all three are.
pub fn is_metadata_label(name: &str) -> bool {
    matches!(name, "__name__" | "__type__" | "__unit__")
}

/// Groups rows into series, applying delayed name removal and merging equal label sets.
pub fn series_of(rows: &Rows, registry: &SeriesRegistry) -> Result<Vec<Series>> {
    // Output slot of each series id, resolved once per id (labels hash once, not per row).
    const UNSET: u32 = u32::MAX;
    let max_id = rows.series.iter().copied().max().unwrap_or(0) as usize;
    let mut slot_of: Vec<u32> = vec![UNSET; max_id + 1];
    let mut slot_by_labels: HashMap<Labels, u32> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for k in 0..rows.len() {
        let id = rows.series[k] as usize;
        let mut slot = slot_of[id];
        if slot == UNSET {
            let m = registry.get(id as u32);
            let labels = if m.drop_name && m.labels.iter().any(|l| is_metadata_label(&l.name)) {
                Labels::from_labels(
                    m.labels
                        .iter()
                        .filter(|l| !is_metadata_label(&l.name))
                        .cloned()
                        .collect(),
                )
            } else {
                m.labels
            };
            slot = *slot_by_labels.entry(labels.clone()).or_insert_with(|| {
                out.push(Series {
                    labels,
                    points: Vec::new(),
                    histograms: Vec::new(),
                });
                (out.len() - 1) as u32
            });
            slot_of[id] = slot;
        }
        if counts.len() <= slot as usize {
            counts.resize(slot as usize + 1, 0);
        }
        counts[slot as usize] += 1;
    }
    for (s, &n) in out.iter_mut().zip(&counts) {
        s.points.reserve_exact(n);
    }
    for k in 0..rows.len() {
        let slot = slot_of[rows.series[k] as usize];
        match rows.hist(k) {
            Some(h) => out[slot as usize].histograms.push((rows.ts[k], h.clone())),
            None => out[slot as usize].points.push((rows.ts[k], rows.vals[k])),
        }
    }
    for s in out.iter_mut() {
        if !s.points.is_sorted_by(|a, b| a.0 < b.0) {
            s.points.sort_by_key(|p| p.0);
            if s.points.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(exec_err(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
        if !s.histograms.is_empty() {
            s.histograms.sort_by_key(|p| p.0);
            let clash = s.histograms.windows(2).any(|w| w[0].0 == w[1].0)
                || s.histograms
                    .iter()
                    .any(|h| s.points.binary_search_by_key(&h.0, |p| p.0).is_ok());
            if clash {
                return Err(exec_err(
                    "vector cannot contain metrics with the same labelset",
                ));
            }
        }
    }
    Ok(out)
}

/// The key [`compare_labels`] compares: label pairs in byte order of names.
fn compare_key(l: &Labels) -> Vec<(&str, &str)> {
    let mut v: Vec<(&str, &str)> = l.iter().map(|l| (&*l.name, &*l.value)).collect();
    v.sort_unstable();
    v
}

/// Sorts a matrix by labels.
pub fn sort_matrix(m: &mut [Series]) {
    sort_by_labels(m, |s| &s.labels);
}

/// Stable sort by [`compare_labels`], each element's key built once (not two allocations
/// per comparison); nothing is moved when already in order.
fn sort_by_labels<T>(v: &mut [T], labels: impl Fn(&T) -> &Labels) {
    if v.is_sorted_by(|a, b| compare_labels(labels(a), labels(b)) != Ordering::Greater) {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    {
        let keys: Vec<Vec<(&str, &str)>> = v.iter().map(|x| compare_key(labels(x))).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    }
    permute(v, order);
}

/// Reorders `v` so that position `i` holds the element that was at `order[i]`.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    const DONE: usize = usize::MAX;
    for i in 0..v.len() {
        let mut j = i;
        // Walk the cycle through i: each swap puts one element in its place.
        while order[j] != DONE {
            let k = order[j];
            order[j] = DONE;
            if k == i {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(i) => unparen(i),
        o => o,
    }
}

/// Natural order of two strings (digit runs compare as numbers).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let xl = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let yl = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (xn, yn) = (&x[..xl], &y[..yl]);
                let xt = xn.iter().skip_while(|&&c| c == b'0').count();
                let yt = yn.iter().skip_while(|&&c| c == b'0').count();
                let o = xt.cmp(&yt).then_with(|| xn[xl - xt..].cmp(&yn[yl - yt..]));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[xl..];
                y = &y[yl..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn value_cmp(a: f64, b: f64, desc: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

/// Orders an instant vector as Prometheus does for the top-level expression `e`.
pub fn order_vector(e: &Expr, v: &mut [Sample]) {
    match unparen(e) {
        Expr::Call(c) if c.func.name == "sort" || c.func.name == "sort_desc" => {
            let desc = c.func.name == "sort_desc";
            v.sort_by(|a, b| {
                value_cmp(a.v, b.v, desc).then_with(|| compare_labels(&a.labels, &b.labels))
            });
        }
        Expr::Call(c) if c.func.name.starts_with("sort_by_label") => {
            let desc = c.func.name.ends_with("_desc");
            let names: Vec<String> = c.args[1..]
                .iter()
                .filter_map(|a| match unparen(a) {
                    Expr::StringLiteral(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            v.sort_by(|a, b| {
                let mut o = Ordering::Equal;
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x != y {
                        o = natural_cmp(x, y);
                        break;
                    }
                }
                let o = o.then_with(|| compare_labels(&a.labels, &b.labels));
                if desc { o.reverse() } else { o }
            });
        }
        Expr::Aggregate(a)
            if matches!(
                a.op,
                AggregateOp::Topk
                    | AggregateOp::Bottomk
                    | AggregateOp::Limitk
                    | AggregateOp::LimitRatio
            ) => {}
        _ => sort_by_labels(v, |s| &s.labels),
    }
}

impl PromValue {
    /// About how many bytes the value takes as Prometheus's JSON (labels quoted, a point
    /// `[1700000000.123,"1.2345"]` about 40 bytes): what rendering the response will hold.
    pub fn json_bytes(&self) -> usize {
        let labels = |l: &Labels| {
            24 + l
                .iter()
                .map(|x| x.name.len() + x.value.len() + 6)
                .sum::<usize>()
        };
        match self {
            PromValue::Scalar { .. } => 64,
            PromValue::Str { s, .. } => 64 + s.len() * 2,
            PromValue::Vector(v) => v.iter().map(|x| labels(&x.labels) + 48).sum(),
            PromValue::Matrix(m) => m
                .iter()
                .map(|x| labels(&x.labels) + x.points.len() * 40)
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_sort_as_labels_compare() {
        let names = ["b", "a", "__name__", "A", "_x"];
        let mut m: Vec<Series> = (0..200u32)
            .map(|i| Series {
                histograms: Vec::new(),
                labels: Labels::from_pairs(
                    names
                        .iter()
                        .enumerate()
                        .map(|(k, n)| (*n, ((i * 7919 + k as u32 * 31) % 13).to_string())),
                ),
                points: vec![(i64::from(i), 0.0)],
            })
            .collect();
        let mut expected = m.clone();
        expected.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
        sort_matrix(&mut m);
        assert_eq!(m, expected);
    }

    #[test]
    fn natural_order_compares_numbers() {
        assert_eq!(natural_cmp("a10", "a9"), Ordering::Greater);
        assert_eq!(natural_cmp("a09", "a9"), Ordering::Equal);
        assert_eq!(natural_cmp("abc", "abd"), Ordering::Less);
    }

    #[test]
    fn labels_compare_in_byte_order_of_names() {
        let a = Labels::from_pairs([("__name__", "x"), ("A", "1")]);
        let b = Labels::from_pairs([("__name__", "x"), ("B", "1")]);
        assert_eq!(compare_labels(&a, &b), Ordering::Less);
    }
}
