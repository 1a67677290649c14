//! The histogram chunk encoder: Prometheus's `FloatHistogramAppender`
//! (`tsdb/chunkenc/float_histogram.go`, `histogram_meta.go`) bit for bit, recoding
//! included, and — for an encoder made by [`FloatHistogramEncoder::best`] — its
//! `HistogramAppender` (`histogram.go`: whole counts as varbit deltas of deltas) for the
//! chunks whose counts are whole. [`FloatHistogramEncoder::append`] is `AppendFloatHistogram(prev, t, h,
//! appendOnly=false)`:
//!
//! - the first sample writes the layout (zero threshold, schema, spans, custom bounds)
//!   and sets the counter-reset header: gauge for a gauge histogram, "counter reset" for
//!   a sample hinted so, else — when the chunk continues `prev`'s series — "counter reset"
//!   or "not a counter reset" as `prev.appendable` finds, else unknown;
//! - a later sample is appended when `appendable` (`appendableGauge` for gauges) allows
//!   it. New buckets recode the chunk (every sample re-encoded with the new spans, the new
//!   buckets 0: forward inserts); buckets the sample lacks but the chunk holds empty are
//!   added to the sample (backward inserts);
//! - otherwise a new chunk is started, its header "counter reset" when the sample is one
//!   (a count, the zero count or a bucket went down, a used bucket vanished, other custom
//!   bounds, or the hint says so) and unknown for a schema or zero-threshold change, or
//!   after a stale marker. A gauge chunk takes only gauge samples, and the other way round.
//!
//! The histograms come in as remote write's `Histogram` messages (float counts, or
//! integer deltas read as their absolute counts); their buckets must match their spans.

use crate::histogram_proto::{BucketSpan, Count, Histogram, ZeroCount};
use strata_vocab::CounterResetHint;
use strata_vocab::histogram::{FloatHistogram, Span};

use super::super::ChunkError;
use super::super::bits::BitWriter;
use super::super::varbit::{write_int, write_uint};
use super::super::xor::write_value;
use super::{CUSTOM_BUCKETS_SCHEMA, GAUGE_HEADER, Kind, STALE_NAN, decode};

/// Bytes of the histogram chunk header: the sample count and the flags.
const HEADER_BYTES: usize = 3;
/// The counter-reset headers (the top two bits of the flags byte).
const COUNTER_RESET_HEADER: u8 = 0b1000_0000;
const NOT_COUNTER_RESET_HEADER: u8 = 0b0100_0000;
const HEADER_MASK: u8 = 0b1100_0000;

/// Prometheus's `FloatHistogram`: spans and the absolute count of each bucket they hold.
#[derive(Debug, Clone, PartialEq)]
struct Fh {
    hint: CounterResetHint,
    schema: i32,
    zero_threshold: f64,
    count: f64,
    zero_count: f64,
    sum: f64,
    p_spans: Vec<BucketSpan>,
    p: Vec<f64>,
    n_spans: Vec<BucketSpan>,
    n: Vec<f64>,
    custom_values: Vec<f64>,
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

fn count_spans(spans: &[BucketSpan]) -> usize {
    spans.iter().map(|s| s.length as usize).sum()
}

fn absolute(deltas: &[i64]) -> Vec<f64> {
    let mut acc = 0i64;
    deltas
        .iter()
        .map(|d| {
            acc = acc.wrapping_add(*d);
            acc as f64
        })
        .collect()
}

impl Fh {
    fn from_message(h: &Histogram) -> Result<Fh, ChunkError> {
        let (count, integer) = match h.count {
            Some(Count::CountInt(c)) => (c as f64, true),
            Some(Count::CountFloat(c)) => (c, false),
            None => (0.0, true),
        };
        let zero_count = match h.zero_count {
            Some(ZeroCount::ZeroCountInt(c)) => c as f64,
            Some(ZeroCount::ZeroCountFloat(c)) => c,
            None => 0.0,
        };
        let (p, n) = if integer && h.positive_counts.is_empty() && h.negative_counts.is_empty() {
            (absolute(&h.positive_deltas), absolute(&h.negative_deltas))
        } else {
            (h.positive_counts.clone(), h.negative_counts.clone())
        };
        let fh = Fh {
            hint: u8::try_from(h.reset_hint)
                .map(CounterResetHint::from_u8)
                .unwrap_or_default(),
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            count,
            zero_count,
            sum: h.sum,
            p_spans: h.positive_spans.clone(),
            p,
            n_spans: h.negative_spans.clone(),
            n,
            custom_values: h.custom_values.clone(),
        };
        if !is_stale(fh.sum)
            && (count_spans(&fh.p_spans) != fh.p.len() || count_spans(&fh.n_spans) != fh.n.len())
        {
            return Err(ChunkError::Invalid(
                "the spans hold another number of buckets than given",
            ));
        }
        Ok(fh)
    }

    /// From the sparse form (spans as [`FloatHistogram::spans`] builds them).
    fn from_float(h: &FloatHistogram) -> Fh {
        let bucket_spans = |s: Vec<Span>| -> Vec<BucketSpan> {
            s.into_iter()
                .map(|s| BucketSpan {
                    offset: s.offset,
                    length: s.length,
                })
                .collect()
        };
        let (ps, p) = FloatHistogram::spans(&h.positive);
        let (ns, n) = FloatHistogram::spans(&h.negative);
        Fh {
            hint: h.hint,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            count: h.count,
            zero_count: h.zero_count,
            sum: h.sum,
            p_spans: bucket_spans(ps),
            p,
            n_spans: bucket_spans(ns),
            n,
            custom_values: h.custom_values.to_vec(),
        }
    }

    /// What `appendFloatHistogram` writes for a stale marker: its sum only.
    fn stale(sum: f64) -> Fh {
        Fh {
            hint: CounterResetHint::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            count: 0.0,
            zero_count: 0.0,
            sum,
            p_spans: Vec::new(),
            p: Vec::new(),
            n_spans: Vec::new(),
            n: Vec::new(),
            custom_values: Vec::new(),
        }
    }
}

/// A float XOR-encoded against the previous one (`xorValue`).
#[derive(Debug, Clone, Copy)]
struct XorValue {
    value: f64,
    leading: u8,
    trailing: u8,
}

impl XorValue {
    fn fresh(value: f64) -> Self {
        XorValue {
            value,
            leading: 0xff,
            trailing: 0,
        }
    }
}

/// One `Insert`: `num` empty buckets (from bucket index `bucket_idx` on) to insert before
/// bucket position `pos`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Insert {
    pos: usize,
    num: usize,
    bucket_idx: i64,
}

/// `bucketIterator`: the bucket indexes spans cover, in order.
struct BucketIter<'a> {
    spans: &'a [BucketSpan],
    span: usize,
    bucket: i64,
    idx: i64,
}

impl<'a> BucketIter<'a> {
    fn new(spans: &'a [BucketSpan]) -> Self {
        BucketIter {
            spans,
            span: 0,
            bucket: -1,
            idx: -1 + spans.first().map_or(0, |s| i64::from(s.offset)),
        }
    }
}

impl Iterator for BucketIter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        if self.span >= self.spans.len() {
            return None;
        }
        if self.bucket < i64::from(self.spans[self.span].length) - 1 {
            self.bucket += 1;
            self.idx += 1;
            return Some(self.idx);
        }
        while self.span < self.spans.len() - 1 {
            self.span += 1;
            self.idx += i64::from(self.spans[self.span].offset) + 1;
            self.bucket = 0;
            if self.spans[self.span].length == 0 {
                self.idx -= 1;
                continue;
            }
            return Some(self.idx);
        }
        None
    }
}

/// `addInsert`.
fn add_insert(inserts: &mut Vec<Insert>, insert: &mut Insert, other_idx: i64) {
    if insert.num == 0 {
        insert.bucket_idx = other_idx;
    } else if insert.bucket_idx + insert.num as i64 != other_idx {
        inserts.push(*insert);
        insert.num = 0;
        insert.bucket_idx = other_idx;
    }
    insert.num += 1;
}

/// `expandFloatSpansAndBuckets`: the inserts making `a` (the chunk's) cover `b`'s
/// buckets and the other way round, `None` for a counter reset.
fn expand_float_spans_and_buckets(
    a: &[BucketSpan],
    b: &[BucketSpan],
    a_buckets: &[XorValue],
    b_buckets: &[f64],
) -> Option<(Vec<Insert>, Vec<Insert>)> {
    let mut ai = BucketIter::new(a);
    let mut bi = BucketIter::new(b);
    let (mut a_inserts, mut b_inserts) = (Vec::new(), Vec::new());
    let (mut a_inter, mut b_inter) = (Insert::default(), Insert::default());
    let (mut a_next, mut b_next) = (ai.next(), bi.next());
    let (mut a_count_idx, mut b_count_idx) = (0usize, 0usize);
    let a_count = |i: usize| a_buckets.get(i).map_or(0.0, |v| v.value);
    let b_count = |i: usize| b_buckets.get(i).copied().unwrap_or(0.0);
    loop {
        let mut advance_a = false;
        let mut advance_b = false;
        match (a_next, b_next) {
            (Some(a_idx), Some(b_idx)) if a_idx == b_idx => {
                if a_count(a_count_idx) > b_count(b_count_idx) {
                    return None;
                }
                advance_a = true;
                advance_b = true;
            }
            (Some(a_idx), Some(b_idx)) if a_idx > b_idx => {
                add_insert(&mut a_inserts, &mut a_inter, b_idx);
                advance_b = true;
            }
            (Some(a_idx), _) => {
                // b misses a bucket of a: fine when it is empty in a.
                if a_count(a_count_idx) != 0.0 {
                    return None;
                }
                add_insert(&mut b_inserts, &mut b_inter, a_idx);
                advance_a = true;
            }
            (None, Some(b_idx)) => {
                add_insert(&mut a_inserts, &mut a_inter, b_idx);
                advance_b = true;
            }
            (None, None) => {
                if a_inter.num > 0 {
                    a_inserts.push(a_inter);
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                }
                return Some((a_inserts, b_inserts));
            }
        }
        if advance_a {
            if a_inter.num > 0 {
                a_inserts.push(a_inter);
                a_inter.num = 0;
            }
            a_next = ai.next();
            a_inter.pos += 1;
            a_count_idx += 1;
        }
        if advance_b {
            if b_inter.num > 0 {
                b_inserts.push(b_inter);
                b_inter.num = 0;
            }
            b_next = bi.next();
            b_inter.pos += 1;
            b_count_idx += 1;
        }
    }
}

/// Builds spans bucket by bucket (`addBucket` of `expandSpansBothWays` and
/// `adjustForInserts`).
#[derive(Default)]
struct SpanBuilder {
    spans: Vec<BucketSpan>,
    last: i64,
}

impl SpanBuilder {
    fn add(&mut self, b: i64) {
        let mut offset = b - self.last - 1;
        match self.spans.last_mut() {
            Some(s) if offset == 0 => s.length += 1,
            _ => {
                if self.spans.is_empty() {
                    offset += 1;
                }
                self.spans.push(BucketSpan {
                    offset: offset as i32,
                    length: 1,
                });
            }
        }
        self.last = b;
    }
}

/// `expandSpansBothWays`: the inserts into `a` and into `b` making both cover the buckets
/// of either, and the spans of that union.
fn expand_spans_both_ways(
    a: &[BucketSpan],
    b: &[BucketSpan],
) -> (Vec<Insert>, Vec<Insert>, Vec<BucketSpan>) {
    let mut ai = BucketIter::new(a);
    let mut bi = BucketIter::new(b);
    let (mut f_inserts, mut b_inserts) = (Vec::new(), Vec::new());
    let (mut f_inter, mut b_inter) = (Insert::default(), Insert::default());
    let mut merged = SpanBuilder::default();
    let (mut av, mut bv) = (ai.next(), bi.next());
    loop {
        match (av, bv) {
            (Some(x), Some(y)) if x == y => {
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                    f_inter.num = 0;
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                    b_inter.num = 0;
                }
                merged.add(x);
                av = ai.next();
                bv = bi.next();
                f_inter.pos += 1;
                b_inter.pos += 1;
            }
            (Some(x), Some(y)) if x < y => {
                b_inter.num += 1;
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                    f_inter.num = 0;
                }
                merged.add(x);
                f_inter.pos += 1;
                av = ai.next();
            }
            (Some(_), Some(y)) => {
                f_inter.num += 1;
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                    b_inter.num = 0;
                }
                merged.add(y);
                b_inter.pos += 1;
                bv = bi.next();
            }
            (Some(x), None) => {
                b_inter.num += 1;
                merged.add(x);
                av = ai.next();
            }
            (None, Some(y)) => {
                f_inter.num += 1;
                merged.add(y);
                bv = bi.next();
            }
            (None, None) => {
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                }
                return (f_inserts, b_inserts, merged.spans);
            }
        }
    }
}

/// `adjustForInserts`: `spans` with the buckets of `inserts` added.
fn adjust_for_inserts(spans: &[BucketSpan], inserts: &[Insert]) -> Vec<BucketSpan> {
    if inserts.is_empty() {
        return spans.to_vec();
    }
    let mut it = BucketIter::new(spans);
    let mut merged = SpanBuilder::default();
    let mut i = 0;
    let mut insert_idx = inserts[0].bucket_idx;
    let mut insert_num = inserts[0].num;
    let consume = |i: &mut usize, insert_idx: &mut i64, insert_num: &mut usize| {
        *insert_num -= 1;
        if *insert_num == 0 {
            *i += 1;
            if let Some(next) = inserts.get(*i) {
                *insert_idx = next.bucket_idx;
                *insert_num = next.num;
            }
        } else {
            *insert_idx += 1;
        }
    };
    let mut bucket = it.next();
    while let Some(b) = bucket {
        if i < inserts.len() && insert_idx < b {
            merged.add(insert_idx);
            consume(&mut i, &mut insert_idx, &mut insert_num);
        } else {
            merged.add(b);
            bucket = it.next();
        }
    }
    while i < inserts.len() {
        merged.add(insert_idx);
        consume(&mut i, &mut insert_idx, &mut insert_num);
    }
    merged.spans
}

/// `insert` (absolute counts): `input` with the empty buckets of `inserts`, `len` long.
fn insert_empty(input: &[f64], len: usize, inserts: &[Insert]) -> Vec<f64> {
    let mut out = Vec::with_capacity(len);
    let mut ii = 0;
    for (i, &v) in input.iter().enumerate() {
        while ii < inserts.len() && inserts[ii].pos == i {
            out.resize(out.len() + inserts[ii].num, 0.0);
            ii += 1;
        }
        out.push(v);
    }
    for ins in &inserts[ii.min(inserts.len())..] {
        out.resize(out.len() + ins.num, 0.0);
    }
    out.resize(len, 0.0);
    out
}

/// What `appendable` / `appendableGauge` decide.
#[derive(Default)]
struct Appendable {
    p_forward: Vec<Insert>,
    n_forward: Vec<Insert>,
    p_backward: Vec<Insert>,
    n_backward: Vec<Insert>,
    ok: bool,
    counter_reset: bool,
}

/// Whole numbers up to this are exact in an `f64`.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Whether `v` is a whole count an integer chunk can hold (and read back bit for bit).
fn whole(v: f64) -> bool {
    (0.0..=MAX_EXACT).contains(&v) && (v as u64 as f64).to_bits() == v.to_bits()
}

impl Fh {
    /// The chunk encoding that holds this histogram best: `HISTOGRAM` when every count
    /// is whole (what client libraries send), else `FLOAT_HISTOGRAM`.
    fn best_kind(&self) -> Kind {
        if whole(self.count)
            && whole(self.zero_count)
            && self.p.iter().chain(&self.n).all(|v| whole(*v))
        {
            Kind::Integer
        } else {
            Kind::Float
        }
    }
}

/// The running values of a `HISTOGRAM` chunk (`HistogramAppender`'s) beyond the ones
/// both kinds keep.
#[derive(Debug, Clone, Default)]
struct IntState {
    cnt_delta: i64,
    zcnt_delta: i64,
    /// Per bucket, positive then negative: its count less the bucket before's (the
    /// integer form's bucket "delta"), and how much that changed at the last sample.
    buckets: Vec<(i64, i64)>,
}

/// The integer form's bucket deltas of absolute counts (each less the one before).
fn bucket_deltas(counts: &[f64]) -> impl Iterator<Item = i64> + '_ {
    let mut prev = 0i64;
    counts.iter().map(move |c| {
        let v = *c as i64;
        let d = v.wrapping_sub(prev);
        prev = v;
        d
    })
}

/// Builds one `FLOAT_HISTOGRAM` chunk as Prometheus's `FloatHistogramAppender` does, or,
/// made by [`FloatHistogramEncoder::best`], a chunk of whichever encoding holds its first
/// sample best: a `HISTOGRAM` chunk (Prometheus's `HistogramAppender`: counts as varbit
/// deltas of deltas, about two thirds of the bytes) when its counts are whole. A sample
/// with other counts then starts a `FLOAT_HISTOGRAM` chunk.
#[derive(Debug, Clone)]
pub struct FloatHistogramEncoder {
    w: BitWriter,
    kind: Kind,
    /// Each new chunk takes the encoding that holds its first sample best.
    best: bool,
    int: Option<Box<IntState>>,
    num: u16,
    header: u8,
    schema: i32,
    zero_threshold: f64,
    p_spans: Vec<BucketSpan>,
    n_spans: Vec<BucketSpan>,
    custom_values: Vec<f64>,
    first_t: i64,
    t: i64,
    t_delta: i64,
    sum: XorValue,
    cnt: XorValue,
    zcnt: XorValue,
    p: Vec<XorValue>,
    n: Vec<XorValue>,
}

impl Default for FloatHistogramEncoder {
    fn default() -> Self {
        FloatHistogramEncoder::new()
    }
}

impl FloatHistogramEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        FloatHistogramEncoder {
            w: BitWriter::new(vec![0; HEADER_BYTES]),
            kind: Kind::Float,
            best: false,
            int: None,
            num: 0,
            header: 0,
            schema: 0,
            zero_threshold: 0.0,
            p_spans: Vec::new(),
            n_spans: Vec::new(),
            custom_values: Vec::new(),
            first_t: i64::MIN,
            t: i64::MIN,
            t_delta: 0,
            sum: XorValue::fresh(0.0),
            cnt: XorValue::fresh(0.0),
            zcnt: XorValue::fresh(0.0),
            p: Vec::new(),
            n: Vec::new(),
        }
    }

    /// An empty chunk whose encoding its first sample decides (and so on for the chunks
    /// [`append`](Self::append) starts): `HISTOGRAM` for whole counts, else
    /// `FLOAT_HISTOGRAM`.
    pub fn best() -> Self {
        FloatHistogramEncoder {
            best: true,
            ..FloatHistogramEncoder::new()
        }
    }

    /// The chunk's encoding.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// An empty chunk of the same policy, for the sample `h` (its encoding as the policy
    /// picks it).
    fn next_for(&self, h: &Fh) -> FloatHistogramEncoder {
        let mut next = if self.best {
            FloatHistogramEncoder::best()
        } else {
            FloatHistogramEncoder::new()
        };
        next.kind = if self.best {
            h.best_kind()
        } else {
            Kind::Float
        };
        next
    }

    /// Samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Whether the chunk holds no sample.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Bytes of the chunk so far, header included.
    pub fn len(&self) -> usize {
        self.w.len()
    }

    /// The first and last timestamps of the chunk (`None` when empty).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.num > 0).then_some((self.first_t, self.t))
    }

    /// The counter-reset header, as the hint it stands for.
    pub fn counter_reset_header(&self) -> CounterResetHint {
        header_hint(self.header)
    }

    /// Sets the counter-reset header (as `setCounterResetHeader`; `Unknown` clears it).
    /// For a chunk whose first sample was cut off another chunk by [`append`](Self::append):
    /// it keeps the header that chunk was given.
    pub fn set_counter_reset_header(&mut self, hint: CounterResetHint) {
        self.set_header(match hint {
            CounterResetHint::Unknown => 0,
            CounterResetHint::Reset => COUNTER_RESET_HEADER,
            CounterResetHint::NotReset => NOT_COUNTER_RESET_HEADER,
            CounterResetHint::Gauge => GAUGE_HEADER,
        });
    }

    /// Heap bytes held: the chunk so far and the running state of its buckets.
    pub fn heap_bytes(&self) -> usize {
        self.w.bytes().len()
            + (self.p.capacity() + self.n.capacity()) * std::mem::size_of::<XorValue>()
            + (self.p_spans.capacity() + self.n_spans.capacity())
                * std::mem::size_of::<BucketSpan>()
            + self.custom_values.capacity() * 8
            + self.int.as_ref().map_or(0, |s| {
                std::mem::size_of::<IntState>() + s.buckets.capacity() * 16
            })
    }

    /// The chunk's bytes so far.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// The chunk's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// Appends `h` at `t` (after the chunk's last sample) as `AppendFloatHistogram(prev,
    /// t, h, false)`: `prev` is the chunk before this one of the same series, when there is
    /// one and it is a float histogram chunk (it only matters for the first sample). The
    /// chunk may be recoded; `Some` is a new chunk holding `h`, this one then being
    /// complete.
    pub fn append(
        &mut self,
        prev: Option<&FloatHistogramEncoder>,
        t: i64,
        h: &Histogram,
    ) -> Result<Option<FloatHistogramEncoder>, ChunkError> {
        let h = Fh::from_message(h)?;
        self.append_fh(prev, t, h)
    }

    /// [`append`](Self::append) for a histogram in the sparse form.
    pub fn append_float(
        &mut self,
        prev: Option<&FloatHistogramEncoder>,
        t: i64,
        h: &FloatHistogram,
    ) -> Result<Option<FloatHistogramEncoder>, ChunkError> {
        self.append_fh(prev, t, Fh::from_float(h))
    }

    fn append_fh(
        &mut self,
        prev: Option<&FloatHistogramEncoder>,
        t: i64,
        mut h: Fh,
    ) -> Result<Option<FloatHistogramEncoder>, ChunkError> {
        if self.num == u16::MAX {
            return Err(ChunkError::Full);
        }
        if self.num == 0 {
            if self.best {
                self.kind = h.best_kind();
            }
            self.append_raw(t, &h);
            if h.hint == CounterResetHint::Gauge {
                self.set_header(GAUGE_HEADER);
            } else if h.hint == CounterResetHint::Reset {
                self.set_header(COUNTER_RESET_HEADER);
            } else if let Some(prev) = prev {
                self.set_header(if prev.appendable(&h).counter_reset {
                    COUNTER_RESET_HEADER
                } else {
                    NOT_COUNTER_RESET_HEADER
                });
            }
            return Ok(None);
        }
        if self.kind == Kind::Integer && h.best_kind() == Kind::Float {
            // Counts an integer chunk cannot hold: a float chunk, as Prometheus starts
            // one when the sample type changes (counter-reset header unknown; gauges stay
            // gauges).
            let mut next = self.next_for(&h);
            if h.hint == CounterResetHint::Gauge {
                next.set_header(GAUGE_HEADER);
            }
            next.append_raw(t, &h);
            return Ok(Some(next));
        }
        if h.hint != CounterResetHint::Gauge {
            let a = self.appendable(&h);
            if !a.ok || a.counter_reset {
                let mut next = self.next_for(&h);
                if a.counter_reset {
                    next.set_header(COUNTER_RESET_HEADER);
                }
                next.append_raw(t, &h);
                return Ok(Some(next));
            }
            if !a.p_backward.is_empty() || !a.n_backward.is_empty() {
                if a.p_forward.is_empty() && a.n_forward.is_empty() {
                    h.p_spans = self.p_spans.clone();
                    h.n_spans = self.n_spans.clone();
                } else {
                    h.p_spans = adjust_for_inserts(&h.p_spans, &a.p_backward);
                    h.n_spans = adjust_for_inserts(&h.n_spans, &a.n_backward);
                }
                recode_histogram(&mut h, &a.p_backward, &a.n_backward);
            }
            return self.append_or_recode(t, &h, &a);
        }
        let (a, p_merged, n_merged) = self.appendable_gauge(&h);
        if !a.ok {
            let mut next = self.next_for(&h);
            next.set_header(GAUGE_HEADER);
            next.append_raw(t, &h);
            return Ok(Some(next));
        }
        if !a.p_backward.is_empty() || !a.n_backward.is_empty() {
            h.p_spans = p_merged;
            h.n_spans = n_merged;
            recode_histogram(&mut h, &a.p_backward, &a.n_backward);
        }
        self.append_or_recode(t, &h, &a)
    }

    fn append_or_recode(
        &mut self,
        t: i64,
        h: &Fh,
        a: &Appendable,
    ) -> Result<Option<FloatHistogramEncoder>, ChunkError> {
        if !a.p_forward.is_empty() || !a.n_forward.is_empty() {
            let mut recoded = self.recode(&a.p_forward, &a.n_forward, &h.p_spans, &h.n_spans)?;
            recoded.append_raw(t, h);
            *self = recoded;
        } else {
            self.append_raw(t, h);
        }
        Ok(None)
    }

    fn set_header(&mut self, header: u8) {
        self.header = header & HEADER_MASK;
        let bytes = self.w.bytes_mut();
        bytes[2] = (bytes[2] & !HEADER_MASK) | self.header;
    }

    /// `appendable`.
    fn appendable(&self, h: &Fh) -> Appendable {
        let mut a = Appendable::default();
        if self.num > 0 && self.header == GAUGE_HEADER {
            return a;
        }
        if h.hint == CounterResetHint::Reset {
            a.counter_reset = true;
            return a;
        }
        if is_stale(h.sum) {
            a.ok = true;
            return a;
        }
        if is_stale(self.sum.value) {
            return a;
        }
        if h.count < self.cnt.value {
            a.counter_reset = true;
            return a;
        }
        if h.schema != self.schema || h.zero_threshold != self.zero_threshold {
            return a;
        }
        if i64::from(h.schema) == CUSTOM_BUCKETS_SCHEMA && h.custom_values != self.custom_values {
            a.counter_reset = true;
            return a;
        }
        if h.zero_count < self.zcnt.value {
            a.counter_reset = true;
            return a;
        }
        let Some((p_forward, p_backward)) =
            expand_float_spans_and_buckets(&self.p_spans, &h.p_spans, &self.p, &h.p)
        else {
            a.counter_reset = true;
            return a;
        };
        let Some((n_forward, n_backward)) =
            expand_float_spans_and_buckets(&self.n_spans, &h.n_spans, &self.n, &h.n)
        else {
            a.counter_reset = true;
            return a;
        };
        Appendable {
            p_forward,
            n_forward,
            p_backward,
            n_backward,
            ok: true,
            counter_reset: false,
        }
    }

    /// `appendableGauge`, and the merged positive and negative spans.
    fn appendable_gauge(&self, h: &Fh) -> (Appendable, Vec<BucketSpan>, Vec<BucketSpan>) {
        let mut a = Appendable::default();
        if self.num > 0 && self.header != GAUGE_HEADER {
            return (a, Vec::new(), Vec::new());
        }
        if is_stale(h.sum) {
            a.ok = true;
            return (a, Vec::new(), Vec::new());
        }
        if is_stale(self.sum.value)
            || h.schema != self.schema
            || h.zero_threshold != self.zero_threshold
            || (i64::from(h.schema) == CUSTOM_BUCKETS_SCHEMA
                && h.custom_values != self.custom_values)
        {
            return (a, Vec::new(), Vec::new());
        }
        let (p_forward, p_backward, p_merged) = expand_spans_both_ways(&self.p_spans, &h.p_spans);
        let (n_forward, n_backward, n_merged) = expand_spans_both_ways(&self.n_spans, &h.n_spans);
        let a = Appendable {
            p_forward,
            n_forward,
            p_backward,
            n_backward,
            ok: true,
            counter_reset: false,
        };
        (a, p_merged, n_merged)
    }

    /// `recode`: this chunk re-encoded with the new spans, the inserted buckets empty.
    fn recode(
        &self,
        p_inserts: &[Insert],
        n_inserts: &[Insert],
        p_spans: &[BucketSpan],
        n_spans: &[BucketSpan],
    ) -> Result<FloatHistogramEncoder, ChunkError> {
        let (np, nn) = (count_spans(p_spans), count_spans(n_spans));
        let mut out = FloatHistogramEncoder::new();
        out.best = self.best;
        out.kind = self.kind;
        for m in decode(self.kind, self.w.bytes())? {
            let mut old = Fh::from_message(&m)?;
            old.p_spans = p_spans.to_vec();
            old.n_spans = n_spans.to_vec();
            if !p_inserts.is_empty() {
                old.p = insert_empty(&old.p, np, p_inserts);
            }
            if !n_inserts.is_empty() {
                old.n = insert_empty(&old.n, nn, n_inserts);
            }
            out.append_raw(m.timestamp, &old);
        }
        out.set_header(self.header);
        Ok(out)
    }

    /// `appendFloatHistogram`: writes `h` at `t`, with the layout for the first sample.
    fn append_raw(&mut self, t: i64, h: &Fh) {
        let stale;
        let h = if is_stale(h.sum) {
            stale = Fh::stale(h.sum);
            &stale
        } else {
            h
        };
        let mut t_delta = 0;
        if self.num == 0 {
            write_layout(&mut self.w, h);
            self.schema = h.schema;
            self.zero_threshold = h.zero_threshold;
            self.p_spans = h.p_spans.clone();
            self.n_spans = h.n_spans.clone();
            self.custom_values = h.custom_values.clone();
            self.p = h.p.iter().map(|v| XorValue::fresh(*v)).collect();
            self.n = h.n.iter().map(|v| XorValue::fresh(*v)).collect();
            write_int(&mut self.w, t);
            match self.kind {
                Kind::Float => {
                    for v in [h.count, h.zero_count, h.sum]
                        .into_iter()
                        .chain(h.p.iter().copied())
                    {
                        self.w.write_bits(v.to_bits(), 64);
                    }
                    for v in &h.n {
                        self.w.write_bits(v.to_bits(), 64);
                    }
                }
                Kind::Integer => {
                    // `HistogramAppender.appendHistogram`, first sample.
                    write_uint(&mut self.w, h.count as u64);
                    write_uint(&mut self.w, h.zero_count as u64);
                    self.w.write_bits(h.sum.to_bits(), 64);
                    let mut st = IntState::default();
                    for d in bucket_deltas(&h.p).chain(bucket_deltas(&h.n)) {
                        write_int(&mut self.w, d);
                        st.buckets.push((d, 0));
                    }
                    self.int = Some(Box::new(st));
                }
            }
            self.cnt.value = h.count;
            self.zcnt.value = h.zero_count;
            self.sum.value = h.sum;
            self.first_t = t;
        } else {
            t_delta = t.wrapping_sub(self.t);
            write_int(&mut self.w, t_delta.wrapping_sub(self.t_delta));
            match (self.kind, self.int.as_deref_mut()) {
                (Kind::Integer, Some(st)) => {
                    // `HistogramAppender.appendHistogram`, later samples: deltas of deltas
                    // (none for the counts of a stale sample, and no buckets).
                    // The previous counts are the ones both kinds keep (whole here).
                    let (c, z) = (h.count as i64, h.zero_count as i64);
                    let (cd, zd) = (
                        c.wrapping_sub(self.cnt.value as i64),
                        z.wrapping_sub(self.zcnt.value as i64),
                    );
                    let (c_dod, z_dod) = if is_stale(h.sum) {
                        (0, 0)
                    } else {
                        (
                            cd.wrapping_sub(st.cnt_delta),
                            zd.wrapping_sub(st.zcnt_delta),
                        )
                    };
                    write_int(&mut self.w, c_dod);
                    write_int(&mut self.w, z_dod);
                    write_xor(&mut self.w, &mut self.sum, h.sum);
                    let deltas = bucket_deltas(&h.p).chain(bucket_deltas(&h.n));
                    for (b, d) in st.buckets.iter_mut().zip(deltas) {
                        let change = d.wrapping_sub(b.0);
                        write_int(&mut self.w, change.wrapping_sub(b.1));
                        *b = (d, change);
                    }
                    (st.cnt_delta, st.zcnt_delta) = (cd, zd);
                    self.cnt.value = h.count;
                    self.zcnt.value = h.zero_count;
                    for (old, v) in self.p.iter_mut().zip(&h.p) {
                        old.value = *v;
                    }
                    for (old, v) in self.n.iter_mut().zip(&h.n) {
                        old.value = *v;
                    }
                }
                _ => {
                    write_xor(&mut self.w, &mut self.cnt, h.count);
                    write_xor(&mut self.w, &mut self.zcnt, h.zero_count);
                    write_xor(&mut self.w, &mut self.sum, h.sum);
                    for (old, v) in self.p.iter_mut().zip(&h.p) {
                        write_xor(&mut self.w, old, *v);
                    }
                    for (old, v) in self.n.iter_mut().zip(&h.n) {
                        write_xor(&mut self.w, old, *v);
                    }
                }
            }
        }
        self.t = t;
        self.t_delta = t_delta;
        self.num += 1;
        let [hi, lo] = self.num.to_be_bytes();
        let bytes = self.w.bytes_mut();
        bytes[0] = hi;
        bytes[1] = lo;
    }
}

/// The hint a counter-reset header stands for.
pub(crate) fn header_hint(header: u8) -> CounterResetHint {
    match header & HEADER_MASK {
        COUNTER_RESET_HEADER => CounterResetHint::Reset,
        NOT_COUNTER_RESET_HEADER => CounterResetHint::NotReset,
        GAUGE_HEADER => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

fn write_xor(w: &mut BitWriter, old: &mut XorValue, v: f64) {
    write_value(
        w,
        v.to_bits(),
        old.value.to_bits(),
        &mut old.leading,
        &mut old.trailing,
    );
    old.value = v;
}

/// `recodeHistogram`: the backward inserts' empty buckets added to `h`.
fn recode_histogram(h: &mut Fh, p_backward: &[Insert], n_backward: &[Insert]) {
    if !p_backward.is_empty() {
        h.p = insert_empty(&h.p, count_spans(&h.p_spans), p_backward);
    }
    if !n_backward.is_empty() {
        h.n = insert_empty(&h.n, count_spans(&h.n_spans), n_backward);
    }
}

/// `writeHistogramChunkLayout`.
fn write_layout(w: &mut BitWriter, h: &Fh) {
    put_zero_threshold(w, h.zero_threshold);
    write_int(w, i64::from(h.schema));
    for spans in [&h.p_spans, &h.n_spans] {
        write_uint(w, spans.len() as u64);
        for s in spans {
            write_uint(w, u64::from(s.length));
            write_int(w, i64::from(s.offset));
        }
    }
    if i64::from(h.schema) == CUSTOM_BUCKETS_SCHEMA {
        write_uint(w, h.custom_values.len() as u64);
        for b in &h.custom_values {
            put_custom_bound(w, *b);
        }
    }
}

/// `putZeroThreshold`: 0 as a 0 byte, 2^-243..=2^10 as `exponent + 243` (the exponent
/// of `0.5·2^exponent`), anything else as 255 and its 64 bits.
fn put_zero_threshold(w: &mut BitWriter, threshold: f64) {
    if threshold == 0.0 {
        w.write_byte(0);
        return;
    }
    let bits = threshold.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    // A positive normal power of two: 0.5 · 2^(biased − 1022).
    let power_of_two =
        bits >> 63 == 0 && bits & ((1 << 52) - 1) == 0 && (1..0x7ff).contains(&biased);
    let exp = biased - 1022;
    if !power_of_two || !(-242..=11).contains(&exp) {
        w.write_byte(255);
        w.write_bits(bits, 64);
        return;
    }
    w.write_byte((exp + 243) as u8);
}

/// `putCustomBound`: a multiple of 0.001 in 0..=33554.430 as the varbit `bound·1000 + 1`,
/// anything else as a 0 bit and its 64 bits.
fn put_custom_bound(w: &mut BitWriter, f: f64) {
    let tf = f * 1000.0;
    let whole = ((tf.round() as u64) as f64) / 1000.0 == f;
    if !(0.0..=33_554_430.0).contains(&tf) || !whole {
        w.write_bit(false);
        w.write_bits(f.to_bits(), 64);
        return;
    }
    write_uint(w, tf.round() as u64 + 1);
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
