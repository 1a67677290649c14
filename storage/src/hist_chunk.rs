//! The native histogram samples of one head series, compressed: in-order samples live in
//! Prometheus's histogram chunks ([`FloatHistogramEncoder`], bit for bit
//! `tsdb/chunkenc/histogram.go` and `float_histogram.go`, reset and recode rules
//! included): a `HISTOGRAM` chunk (counts as varbit deltas of deltas) while the counts
//! are whole, as client libraries send them, else a `FLOAT_HISTOGRAM` chunk (XOR-encoded
//! counts). The rest (out of
//! order, late in a block cut, or a sample no chunk can take) in a small sorted buffer
//! beside them, as float samples are kept.
//!
//! The chunk rules are Prometheus's: a counter reset, a schema or zero-threshold change, a
//! stale marker or a change between gauge and counter histograms starts a new chunk; new
//! buckets recode the open chunk; a chunk continuing another takes the counter-reset
//! header `appendable` finds. Read back, a sample carries Prometheus's hint: gauge in a
//! gauge chunk, unknown for the first sample of a counter chunk, "not a reset" for the
//! others (without the empty buckets its chunk's spans hold: ingest drops them too).
//!
//! Deviation: Prometheus's head cuts histogram chunks at about 1 KiB; here a chunk is cut
//! at [`TARGET_BYTES`] (4 KiB) or [`MAX_SAMPLES`], and at block-range boundaries so that a
//! block cut never splits one. The first sample of a chunk is written whole (64 bits per
//! bucket), later ones XOR-encoded: larger chunks spread that first sample over more
//! samples, for fewer bytes per sample in memory.

use std::sync::Arc;

use strata_chunkenc::histogram::{self, FloatHistogramEncoder, Kind};
use strata_chunkenc::histogram_proto::{Count, Histogram, ZeroCount};
use strata_vocab::histogram::{CounterResetHint, FloatHistogram, Span};

use crate::series::HistSample;

/// Bytes after which a chunk is complete (once it holds [`MIN_SAMPLES`]).
pub(crate) const TARGET_BYTES: usize = 4096;
/// Samples a chunk holds at least before [`TARGET_BYTES`] completes it.
pub(crate) const MIN_SAMPLES: usize = 10;
/// Samples after which a chunk is complete.
pub(crate) const MAX_SAMPLES: usize = 480;

/// A complete chunk.
#[derive(Debug)]
struct Sealed {
    min_t: i64,
    max_t: i64,
    samples: u16,
    kind: Kind,
    bytes: Box<[u8]>,
}

/// The histogram samples of a series.
#[derive(Debug, Default)]
pub(crate) struct HistChunks {
    /// Complete chunks, oldest first.
    sealed: Vec<Sealed>,
    /// The chunk in-order samples are appended to.
    open: Option<Box<FloatHistogramEncoder>>,
    /// The newest in-order sample, as appended (duplicate checks read it undecoded).
    last: Option<HistSample>,
    /// Samples older than `last` when they arrived, sorted by time.
    loose: Vec<HistSample>,
}

impl HistChunks {
    /// Whether no sample is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_none() && self.loose.is_empty()
    }

    /// Samples held.
    pub(crate) fn len(&self) -> usize {
        self.sealed
            .iter()
            .map(|c| usize::from(c.samples))
            .sum::<usize>()
            + self.open.as_ref().map_or(0, |e| e.num_samples())
            + self.loose.len()
    }

    /// Oldest timestamp held.
    pub(crate) fn min_time(&self) -> Option<i64> {
        let chunk = self
            .sealed
            .first()
            .map(|c| c.min_t)
            .or_else(|| self.open.as_ref().and_then(|e| e.time_range()).map(|r| r.0));
        [chunk, self.loose.first().map(|s| s.0)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Newest timestamp held.
    pub(crate) fn max_time(&self) -> Option<i64> {
        [
            self.last.as_ref().map(|s| s.0),
            self.loose.last().map(|s| s.0),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// The sample at `t`, if any.
    pub(crate) fn at(&self, t: i64) -> Option<Arc<FloatHistogram>> {
        if let Some((lt, h)) = &self.last
            && *lt == t
        {
            return Some(h.clone());
        }
        if let Ok(i) = self.loose.binary_search_by_key(&t, |s| s.0) {
            return Some(self.loose[i].1.clone());
        }
        let mut out = Vec::new();
        self.chunk_samples(t, t, &mut out);
        out.pop().map(|s| s.1)
    }

    /// Adds a sample (the caller has ruled out a duplicate timestamp). `block_range` aligns
    /// chunks: one never spans two block ranges.
    pub(crate) fn insert(&mut self, t: i64, h: Arc<FloatHistogram>, block_range: i64) {
        if self.last.as_ref().is_some_and(|l| t <= l.0) {
            self.insert_loose(t, h);
            return;
        }
        let fits = |e: &FloatHistogramEncoder| {
            let n = e.num_samples();
            let same_range = e
                .time_range()
                .is_some_and(|(min, _)| min.div_euclid(block_range) == t.div_euclid(block_range));
            same_range
                && n < MAX_SAMPLES
                && (e.len() < TARGET_BYTES || n < MIN_SAMPLES)
                && n < usize::from(u16::MAX)
        };
        let appended = match self.open.take() {
            Some(mut open) if fits(&open) => match open.append_float(None, t, &h) {
                Ok(None) => Some(open),
                Ok(Some(next)) => {
                    self.seal(*open);
                    Some(Box::new(next))
                }
                Err(_) => {
                    self.open = Some(open);
                    None
                }
            },
            Some(open) => {
                let mut next = FloatHistogramEncoder::best();
                match next.append_float(Some(&open), t, &h) {
                    Ok(_) => {
                        self.seal(*open);
                        Some(Box::new(next))
                    }
                    Err(_) => {
                        self.open = Some(open);
                        None
                    }
                }
            }
            None => {
                let mut first = FloatHistogramEncoder::best();
                first
                    .append_float(None, t, &h)
                    .ok()
                    .map(|_| Box::new(first))
            }
        };
        match appended {
            Some(open) => {
                self.open = Some(open);
                self.last = Some((t, h));
            }
            // A histogram the chunk encoding cannot hold (its buckets validated on ingest,
            // this is not expected): kept whole rather than lost.
            None => self.insert_loose(t, h),
        }
    }

    fn insert_loose(&mut self, t: i64, h: Arc<FloatHistogram>) {
        let pos = self.loose.partition_point(|s| s.0 < t);
        if self.loose.get(pos).is_some_and(|s| s.0 == t) {
            return;
        }
        if self.loose.len() == self.loose.capacity() {
            self.loose.reserve_exact((self.loose.len() / 4).max(4));
        }
        self.loose.insert(pos, (t, h));
    }

    fn seal(&mut self, e: FloatHistogramEncoder) {
        let Some((min_t, max_t)) = e.time_range() else {
            return;
        };
        let samples = u16::try_from(e.num_samples()).unwrap_or(u16::MAX);
        if self.sealed.len() == self.sealed.capacity() {
            self.sealed.reserve_exact(1);
        }
        self.sealed.push(Sealed {
            min_t,
            max_t,
            samples,
            kind: e.kind(),
            bytes: e.finish().into_boxed_slice(),
        });
    }

    /// Samples with `mint <= t <= maxt`, in time order, appended to `out`.
    pub(crate) fn range(&self, mint: i64, maxt: i64, out: &mut Vec<HistSample>) {
        let start = out.len();
        self.chunk_samples(mint, maxt, out);
        let lo = self.loose.partition_point(|s| s.0 < mint);
        let hi = self.loose.partition_point(|s| s.0 <= maxt);
        if lo >= hi {
            return;
        }
        let inorder: Vec<HistSample> = out.drain(start..).collect();
        let extra = &self.loose[lo..hi];
        let (mut i, mut j) = (0, 0);
        out.reserve(inorder.len() + extra.len());
        while i < inorder.len() && j < extra.len() {
            if inorder[i].0 <= extra[j].0 {
                out.push(inorder[i].clone());
                i += 1;
            } else {
                out.push(extra[j].clone());
                j += 1;
            }
        }
        out.extend_from_slice(&inorder[i..]);
        out.extend_from_slice(&extra[j..]);
    }

    /// The chunks' samples within `[mint, maxt]`.
    fn chunk_samples(&self, mint: i64, maxt: i64, out: &mut Vec<HistSample>) {
        let overlaps = |min: i64, max: i64| max >= mint && min <= maxt;
        for c in &self.sealed {
            if overlaps(c.min_t, c.max_t) {
                decode_into(c.kind, &c.bytes, mint, maxt, out);
            }
        }
        if let Some(open) = &self.open
            && let Some((min, max)) = open.time_range()
            && overlaps(min, max)
        {
            decode_into(open.kind(), open.bytes(), mint, maxt, out);
        }
    }

    /// Keeps only the samples `keep` accepts (chunks re-encoded when some of theirs go).
    pub(crate) fn retain(&mut self, keep: impl Fn(i64) -> bool) {
        let mut all = Vec::with_capacity(self.len());
        self.range(i64::MIN, i64::MAX, &mut all);
        if all.iter().all(|s| keep(s.0)) {
            return;
        }
        *self = HistChunks::default();
        for (t, h) in all.into_iter().filter(|s| keep(s.0)) {
            self.insert(t, h, i64::MAX);
        }
    }

    /// Drops samples older than `t`: whole chunks when they end before it.
    pub(crate) fn truncate_before(&mut self, t: i64) {
        self.loose.retain(|s| s.0 >= t);
        let straddles = |min: i64, max: i64| min < t && max >= t;
        let open_range = self.open.as_ref().and_then(|e| e.time_range());
        if self.sealed.iter().any(|c| straddles(c.min_t, c.max_t))
            || open_range.is_some_and(|(min, max)| straddles(min, max))
        {
            self.retain(|s| s >= t);
            return;
        }
        self.sealed.retain(|c| c.min_t >= t);
        if open_range.is_some_and(|(_, max)| max < t) {
            self.open = None;
            self.last = None;
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.sealed.capacity() * std::mem::size_of::<Sealed>()
            + self.sealed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + self.open.as_ref().map_or(0, |e| e.heap_bytes())
            + self.last.as_ref().map_or(0, |s| s.1.size_bytes())
            + self.loose.capacity() * std::mem::size_of::<HistSample>()
            + self.loose.iter().map(|s| s.1.size_bytes()).sum::<usize>()
    }
}

/// Decodes the chunk `bytes`, keeping the samples within `[mint, maxt]`. The chunk was
/// written here: a decoding error cannot happen short of memory corruption, and ends the
/// chunk's samples there.
fn decode_into(kind: Kind, bytes: &[u8], mint: i64, maxt: i64, out: &mut Vec<HistSample>) {
    let Ok(decoded) = histogram::decode(kind, bytes) else {
        tracing::error!("a head histogram chunk does not decode");
        return;
    };
    let mut custom: Option<Arc<[f64]>> = None;
    for m in decoded {
        if m.timestamp < mint || m.timestamp > maxt {
            continue;
        }
        let t = m.timestamp;
        out.push((t, Arc::new(float(m, &mut custom))));
    }
}

/// A decoded chunk sample as a [`FloatHistogram`] (its custom bounds shared with the
/// chunk's other samples).
fn float(m: Histogram, custom: &mut Option<Arc<[f64]>>) -> FloatHistogram {
    let spans = |s: &[strata_chunkenc::histogram_proto::BucketSpan]| -> Vec<Span> {
        s.iter()
            .map(|s| Span {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let custom_values = match custom {
        Some(c) if **c == *m.custom_values => c.clone(),
        _ => {
            let c: Arc<[f64]> = Arc::from(m.custom_values.as_slice());
            *custom = Some(c.clone());
            c
        }
    };
    let mut h = FloatHistogram {
        hint: CounterResetHint::from_u8(u8::try_from(m.reset_hint).unwrap_or(0)),
        schema: m.schema,
        zero_threshold: m.zero_threshold,
        zero_count: match m.zero_count {
            Some(ZeroCount::ZeroCountFloat(c)) => c,
            Some(ZeroCount::ZeroCountInt(c)) => c as f64,
            None => 0.0,
        },
        count: match m.count {
            Some(Count::CountFloat(c)) => c,
            Some(Count::CountInt(c)) => c as f64,
            None => 0.0,
        },
        sum: m.sum,
        positive: FloatHistogram::buckets_from_spans(&spans(&m.positive_spans), &m.positive_counts),
        negative: FloatHistogram::buckets_from_spans(&spans(&m.negative_spans), &m.negative_counts),
        custom_values,
    };
    // The empty buckets the chunk's spans hold are dropped, as ingest drops them.
    h.compact();
    h
}

#[cfg(test)]
mod tests;
