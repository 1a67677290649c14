//! The `STREAMED_XOR_CHUNKS` answer: a [`Frames`] iterator making one framed
//! `ChunkedReadResponse` at a time, as Prometheus's `StreamChunkedReadResponses`:
//!
//! - one series per frame, the series of a query sorted by their labels, the queries in
//!   order; a series longer than a frame goes on in the next frames (chunks never
//!   repeat);
//! - float samples in XOR chunks of at most [`MAX_CHUNK_SAMPLES`] samples; native
//!   histograms in `FLOAT_HISTOGRAM` chunks ([`FloatHistogramEncoder`]), a new one where
//!   Prometheus's appender starts one (counter reset, schema or zero-threshold change,
//!   after a stale marker; new buckets recode the chunk instead), at
//!   [`MAX_CHUNK_SAMPLES`] samples and once one holds [`TARGET_HISTOGRAM_CHUNK_BYTES`]
//!   and [`MIN_HISTOGRAM_CHUNK_SAMPLES`]; a chunk continuing a float histogram chunk of
//!   the series gets the counter-reset header Prometheus's head gives it. A series with
//!   both has its chunks in time order, a chunk ending where samples of the other kind
//!   come (a float first at the same time), as Prometheus's chunk iterator gives a head
//!   series whose samples change kind. Each chunk's `min_time_ms`/`max_time_ms` are its
//!   first and last sample;
//! - a frame's message stays within the frame limit (`--storage.remote.read-max-bytes-in-frame`):
//!   a chunk is cut short when the frame's room ends (Prometheus overshoots by up to a
//!   chunk instead). Only a frame whose labels and one sample alone pass the limit goes
//!   over it, with that one sample: every frame carries at least one sample.
//!
//! A histogram chunk's size is known once a sample is appended (a recode rewrites the
//! chunk), so it is appended to a copy and taken back when the frame's room is passed. A
//! series is dropped once its last frame is made, so the memory held shrinks as the
//! answer goes out.

use std::convert::Infallible;

use futures::Stream;
use prost::Message;
use prost::encoding::encoded_len_varint;

use std::sync::Arc;

use strata_ingest::histogram_proto::Histogram;
use strata_vocab::{CounterResetHint, FloatHistogram};

use super::frame::frame;
use super::proto::{Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label};
use strata_chunkenc::histogram::FloatHistogramEncoder;
use strata_chunkenc::xor::{MAX_SAMPLE_BYTES, XorEncoder};

/// Samples per chunk at most (Prometheus's head cuts its chunks at 120 samples).
pub const MAX_CHUNK_SAMPLES: usize = 120;

/// Bytes of the XOR chunk header.
const CHUNK_HEADER_BYTES: usize = 2;

/// A float histogram chunk ends once it holds this many bytes (Prometheus's
/// `TargetBytesPerHistogramChunk`)…
pub const TARGET_HISTOGRAM_CHUNK_BYTES: usize = 1024;

/// …and this many samples (`MinSamplesPerHistogramChunk`).
pub const MIN_HISTOGRAM_CHUNK_SAMPLES: usize = 10;

/// One series to stream.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) query_index: i64,
    pub(crate) labels: Vec<Label>,
    pub(crate) samples: Vec<(i64, f64)>,
    pub(crate) histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

impl Series {
    fn last_time(&self) -> i64 {
        let last = |t: Option<i64>| t.unwrap_or(i64::MIN);
        last(self.samples.last().map(|s| s.0)).max(last(self.histograms.last().map(|h| h.0)))
    }
}

/// The frames of a streamed answer, made as they are taken.
pub struct Frames {
    series: std::vec::IntoIter<Series>,
    current: Option<Series>,
    /// Float samples of `current` already sent.
    sent: usize,
    /// Histograms of `current` already sent.
    sent_histograms: usize,
    /// The last chunk of `current` when it is a float histogram chunk: the next one's
    /// `prev` (Prometheus's header of a chunk continuing a series).
    prev_histograms: Option<Box<FloatHistogramEncoder>>,
    /// The header the encoder gave the next histogram chunk when it cut the last one short
    /// (a counter reset, a schema change, a stale marker).
    cut_header: Option<CounterResetHint>,
    max_bytes: usize,
    /// Kept until the last frame is taken (or the answer is dropped).
    held: Option<Box<dyn Send>>,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames")
            .field("series_left", &self.series.len())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Frames {
    /// Frames of at most `max_bytes` bytes of message for `series` (sent in this order;
    /// series without samples are skipped).
    pub(crate) fn new(series: Vec<Series>, max_bytes: usize) -> Self {
        Frames {
            series: series.into_iter(),
            current: None,
            sent: 0,
            sent_histograms: 0,
            prev_histograms: None,
            cut_header: None,
            max_bytes,
            held: None,
        }
    }

    /// Keeps `guard` (say, the request's concurrency slot and memory reservation) until
    /// the last frame is taken or the frames are dropped.
    pub fn hold(mut self, guard: impl Send + 'static) -> Self {
        self.held = Some(Box::new(guard));
        self
    }

    /// The frames as a body stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>, Infallible>> + Send + 'static {
        futures::stream::iter(self.map(Ok))
    }

    /// Whether every sample of `s` was sent.
    fn done(&self, s: &Series) -> bool {
        self.sent >= s.samples.len() && self.sent_histograms >= s.histograms.len()
    }

    /// The next frame's message of the current series, from the samples not sent yet on.
    fn build(&mut self, s: &Series) -> ChunkedReadResponse {
        let labels_len: usize = s.labels.iter().map(|l| entry_len(l.encoded_len())).sum();
        // Everything but the chunks, with the series' length varint at its largest.
        let index_len = match s.query_index {
            0 => 0,
            i => 1 + encoded_len_varint(i as u64),
        };
        let limit_varint = encoded_len_varint(self.max_bytes as u64);
        let fixed = index_len + 1 + limit_varint + labels_len;
        let mut used = fixed;
        let mut chunks = Vec::new();
        let last = s.last_time();
        loop {
            let next_float = s.samples.get(self.sent).map(|x| x.0);
            let next_histogram = s.histograms.get(self.sent_histograms).map(|x| x.0);
            // The earlier of the two goes first (a float first at the same time).
            let (first, float) = match (next_float, next_histogram) {
                (None, None) => break,
                (Some(f), Some(h)) => (f.min(h), f <= h),
                (Some(f), None) => (f, true),
                (None, Some(h)) => (h, false),
            };
            // A chunk's fields but its data: its entry's tag and length, the two times
            // (the last one at most the series' last, or 10 bytes past a negative one),
            // type, and the data's tag and length.
            let min_len = 1 + encoded_len_varint(first as u64);
            let max_len = if first < 0 {
                11
            } else {
                1 + encoded_len_varint(last as u64)
            };
            let overhead = 1 + limit_varint + min_len + max_len + 2 + 1 + limit_varint;
            let room = self.max_bytes.saturating_sub(used + overhead);
            let first_of_frame = chunks.is_empty();
            let chunk = if float {
                if !first_of_frame && room < CHUNK_HEADER_BYTES + MAX_SAMPLE_BYTES {
                    break;
                }
                self.xor_chunk(s, room, first_of_frame, next_histogram)
            } else {
                self.histogram_chunk(s, room, first_of_frame, next_float)
            };
            let Some(chunk) = chunk else {
                if self.done(s) || !first_of_frame {
                    break;
                }
                // Only samples that could not be encoded were left out: go on.
                continue;
            };
            used += entry_len(chunk.encoded_len());
            chunks.push(chunk);
        }
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: s.labels.clone(),
                chunks,
            }],
            query_index: s.query_index,
        }
    }

    /// An XOR chunk of the float samples from `self.sent` on, up to (and at) the time of
    /// the next histogram, `room` bytes at most (`first_of_frame`: one sample at least).
    fn xor_chunk(
        &mut self,
        s: &Series,
        room: usize,
        first_of_frame: bool,
        until: Option<i64>,
    ) -> Option<Chunk> {
        let samples = &s.samples[self.sent..];
        let mut enc = XorEncoder::new();
        let mut j = 0;
        while j < samples.len()
            && until.is_none_or(|u| samples[j].0 <= u)
            && enc.num_samples() < MAX_CHUNK_SAMPLES
        {
            if !(first_of_frame && enc.is_empty()) && enc.len() + MAX_SAMPLE_BYTES > room {
                break;
            }
            let (t, v) = samples[j];
            // At most MAX_CHUNK_SAMPLES samples: never full.
            if enc.append(t, v).is_err() {
                break;
            }
            j += 1;
        }
        if enc.is_empty() {
            return None;
        }
        self.sent += j;
        self.prev_histograms = None;
        self.cut_header = None;
        Some(Chunk {
            min_time_ms: samples[0].0,
            max_time_ms: samples[j - 1].0,
            r#type: ChunkEncoding::Xor as i32,
            data: enc.finish(),
        })
    }

    /// A float histogram chunk of the histograms from `self.sent_histograms` on, before
    /// the time of the next float sample, `room` bytes at most (`first_of_frame`: one
    /// sample at least). The chunk ends where Prometheus's appender starts a new one, at
    /// [`MAX_CHUNK_SAMPLES`], and once it holds [`TARGET_HISTOGRAM_CHUNK_BYTES`] and
    /// [`MIN_HISTOGRAM_CHUNK_SAMPLES`].
    fn histogram_chunk(
        &mut self,
        s: &Series,
        room: usize,
        first_of_frame: bool,
        until: Option<i64>,
    ) -> Option<Chunk> {
        let hs = &s.histograms[self.sent_histograms..];
        let mut enc = FloatHistogramEncoder::new();
        let mut j = 0;
        let mut cut_header = None;
        while j < hs.len()
            && until.is_none_or(|u| hs[j].0 < u)
            && enc.num_samples() < MAX_CHUNK_SAMPLES
            && (enc.len() < TARGET_HISTOGRAM_CHUNK_BYTES
                || enc.num_samples() < MIN_HISTOGRAM_CHUNK_SAMPLES)
        {
            let (t, h) = &hs[j];
            let message = Histogram::from_float(*t, h);
            let before = (!(first_of_frame && enc.is_empty())).then(|| enc.clone());
            let prev = match (enc.is_empty(), self.cut_header) {
                (true, None) => self.prev_histograms.as_deref(),
                _ => None,
            };
            match enc.append(prev, *t, &message) {
                Ok(None) => {
                    if enc.num_samples() == 1
                        && let Some(header) = self.cut_header
                    {
                        enc.set_counter_reset_header(header);
                    }
                    if let Some(before) = before
                        && enc.len() > room
                    {
                        enc = before;
                        break;
                    }
                }
                Ok(Some(next)) => {
                    cut_header = Some(next.counter_reset_header());
                    break;
                }
                Err(e) => {
                    tracing::warn!(t, error = %e, "remote read: a histogram that cannot be encoded is left out");
                }
            }
            j += 1;
        }
        let Some((min_time_ms, max_time_ms)) = enc.time_range() else {
            // Nothing fit, or only samples that cannot be encoded (those are skipped).
            if first_of_frame {
                self.sent_histograms += j;
            }
            return None;
        };
        self.sent_histograms += j;
        self.cut_header = cut_header;
        let data = enc.bytes().to_vec();
        self.prev_histograms = Some(Box::new(enc));
        Some(Chunk {
            min_time_ms,
            max_time_ms,
            r#type: ChunkEncoding::FloatHistogram as i32,
            data,
        })
    }
}

/// Bytes of a message field holding `len` bytes: tag, length, message.
fn entry_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

impl Iterator for Frames {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(s) = self.current.take()
                && !self.done(&s)
            {
                let message = self.build(&s);
                self.current = Some(s);
                return Some(frame(&message.encode_to_vec()));
            }
            match self.series.next() {
                Some(s) => {
                    self.current = Some(s);
                    self.sent = 0;
                    self.sent_histograms = 0;
                    self.prev_histograms = None;
                    self.cut_header = None;
                }
                None => {
                    self.held = None;
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::frame::FrameReader;
    use strata_chunkenc::xor;

    fn labels(n: usize) -> Vec<Label> {
        (0..n)
            .map(|i| Label {
                name: format!("label_{i}"),
                value: format!("value-{i}"),
            })
            .collect()
    }

    /// Every frame's message, checked and decoded.
    fn messages(frames: Frames, limit: u64) -> Vec<(usize, ChunkedReadResponse)> {
        let mut r = FrameReader::new(limit);
        let mut out = Vec::new();
        for f in frames {
            r.push(&f);
            let m = r.next_message().expect("frame").expect("whole frame");
            out.push((m.len(), ChunkedReadResponse::decode(m).expect("message")));
        }
        r.finish().expect("ends between frames");
        out
    }

    fn samples(n: usize) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| {
                (
                    1_700_000_000_000 + i as i64 * 15_000,
                    (i * 7 % 13) as f64 * 0.37,
                )
            })
            .collect()
    }

    fn decoded(m: &[(usize, ChunkedReadResponse)], query: i64) -> Vec<(i64, f64)> {
        m.iter()
            .filter(|(_, r)| r.query_index == query)
            .flat_map(|(_, r)| &r.chunked_series[0].chunks)
            .flat_map(|c| {
                let s = xor::decode(&c.data).expect("xor");
                assert_eq!(c.min_time_ms, s[0].0);
                assert_eq!(c.max_time_ms, s[s.len() - 1].0);
                s
            })
            .collect()
    }

    #[test]
    fn a_large_frame_holds_a_series_in_chunks_of_120() {
        let series = vec![
            Series {
                query_index: 0,
                labels: labels(3),
                samples: samples(250),
                histograms: Vec::new(),
            },
            Series {
                query_index: 0,
                labels: labels(4),
                samples: Vec::new(),
                histograms: Vec::new(),
            },
            Series {
                query_index: 1,
                labels: labels(2),
                samples: samples(5),
                histograms: Vec::new(),
            },
        ];
        let m = messages(Frames::new(series, 1 << 20), 1 << 20);
        assert_eq!(m.len(), 2);
        let sizes: Vec<usize> = m[0].1.chunked_series[0]
            .chunks
            .iter()
            .map(|c| xor::decode(&c.data).expect("xor").len())
            .collect();
        assert_eq!(sizes, vec![120, 120, 10]);
        assert_eq!(decoded(&m, 0), samples(250));
        assert_eq!(decoded(&m, 1), samples(5));
        assert_eq!(m[1].1.chunked_series[0].labels, labels(2));
    }

    #[test]
    fn frames_stay_within_the_limit() {
        for limit in [200usize, 300, 512, 1000, 4096] {
            let series = vec![Series {
                query_index: 3,
                labels: labels(4),
                samples: samples(500),
                histograms: Vec::new(),
            }];
            let m = messages(Frames::new(series, limit), limit as u64);
            assert!(m.len() > 1, "{limit}: {} frames", m.len());
            for (len, _) in &m {
                assert!(*len <= limit, "{limit}: a frame of {len} bytes");
            }
            assert_eq!(decoded(&m, 3), samples(500), "{limit}");
        }
    }

    #[test]
    fn a_limit_below_one_sample_still_sends_a_sample_per_frame() {
        let series = vec![Series {
            query_index: 0,
            labels: labels(2),
            samples: samples(3),
            histograms: Vec::new(),
        }];
        let m = messages(Frames::new(series, 10), 1000);
        assert_eq!(m.len(), 3);
        assert_eq!(decoded(&m, 0), samples(3));
    }

    #[test]
    fn the_guard_is_dropped_with_the_last_frame() {
        let flag = std::sync::Arc::new(());
        let frames = Frames::new(
            vec![Series {
                query_index: 0,
                labels: labels(1),
                samples: samples(2),
                histograms: Vec::new(),
            }],
            1 << 20,
        )
        .hold(flag.clone());
        assert_eq!(std::sync::Arc::strong_count(&flag), 2);
        assert_eq!(frames.count(), 1);
        assert_eq!(std::sync::Arc::strong_count(&flag), 1);
    }

    /// A counter histogram series every 15 s: growing buckets, a new bucket now and then,
    /// a counter reset at sample 70.
    fn histograms(from: usize, n: usize) -> Vec<(i64, Arc<FloatHistogram>)> {
        let mut h = FloatHistogram {
            schema: 3,
            zero_threshold: 2f64.powi(-128),
            ..FloatHistogram::default()
        };
        (0..from + n)
            .map(|i| {
                if i == 70 {
                    h.positive.clear();
                    h.count = 0.0;
                    h.sum = 0.0;
                }
                let buckets = 3 + (i % 70) / 4;
                for b in 0..buckets {
                    let idx = b as i32 * 2 - 10;
                    match h.positive.binary_search_by_key(&idx, |x| x.0) {
                        Ok(at) => h.positive[at].1 += (b % 3) as f64,
                        Err(at) => h.positive.insert(at, (idx, 1.0)),
                    }
                }
                h.count = h.positive.iter().map(|b| b.1).sum();
                h.sum += 0.37 * i as f64;
                (1_700_000_000_000 + i as i64 * 15_000, Arc::new(h.clone()))
            })
            .skip(from)
            .collect()
    }

    /// Float samples, histogram samples and chunk types, as decoded.
    type Mixed = (Vec<(i64, f64)>, Vec<(i64, FloatHistogram)>, Vec<i32>);

    /// The chunks of query `query`'s frames as floats and histograms, in order, and the
    /// chunk types.
    fn decoded_mixed(m: &[(usize, ChunkedReadResponse)], query: i64) -> Mixed {
        use strata_chunkenc::histogram::{self, Kind};
        let (mut floats, mut hists, mut types) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = i64::MIN;
        for c in m
            .iter()
            .filter(|(_, r)| r.query_index == query)
            .flat_map(|(_, r)| &r.chunked_series[0].chunks)
        {
            assert!(c.min_time_ms > last, "chunks in time order");
            last = c.max_time_ms;
            types.push(c.r#type);
            let times: Vec<i64> = if c.r#type == ChunkEncoding::Xor as i32 {
                let s = xor::decode(&c.data).expect("xor");
                let times = s.iter().map(|x| x.0).collect();
                floats.extend(s);
                times
            } else {
                assert_eq!(c.r#type, ChunkEncoding::FloatHistogram as i32);
                let s = histogram::decode(Kind::Float, &c.data).expect("float histograms");
                let times = s.iter().map(|h| h.timestamp).collect();
                hists.extend(s.iter().map(|h| h.to_float().expect("valid")));
                times
            };
            assert_eq!(c.min_time_ms, times[0]);
            assert_eq!(c.max_time_ms, times[times.len() - 1]);
        }
        (floats, hists, types)
    }

    #[test]
    fn histograms_go_in_float_histogram_chunks_in_time_order_with_the_floats() {
        let floats: Vec<(i64, f64)> = samples(200)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i < 10 || *i >= 150)
            .map(|(_, s)| s)
            .collect();
        let hists = histograms(10, 140);
        for limit in [300usize, 700, 2000, 1 << 20] {
            let series = vec![Series {
                query_index: 1,
                labels: labels(3),
                samples: floats.clone(),
                histograms: hists.clone(),
            }];
            let m = messages(Frames::new(series, limit), limit as u64 * 2);
            for (len, r) in &m {
                // Only a frame of one sample may pass the limit.
                let chunks = &r.chunked_series[0].chunks;
                let one = chunks.len() == 1 && chunks[0].data[..2] == [0, 1];
                assert!(*len <= limit || one, "{limit}: a frame of {len} bytes");
            }
            let (f, h, types) = decoded_mixed(&m, 1);
            assert_eq!(f, floats, "{limit}");
            assert_eq!(h.len(), hists.len(), "{limit}");
            for ((t, got), (want_t, want)) in h.iter().zip(&hists) {
                assert_eq!(t, want_t);
                assert!(got.equals(want), "{limit}: at {t}");
            }
            let x = ChunkEncoding::Xor as i32;
            let fh = ChunkEncoding::FloatHistogram as i32;
            assert_eq!(types.first(), Some(&x));
            assert_eq!(types.last(), Some(&x));
            assert!(types.contains(&fh));
        }
    }

    #[test]
    fn histogram_chunks_are_cut_as_prometheus_cuts_them() {
        use strata_chunkenc::histogram::counter_reset_header;
        let series = vec![Series {
            query_index: 0,
            labels: labels(1),
            samples: Vec::new(),
            histograms: histograms(0, 140),
        }];
        let m = messages(Frames::new(series, 1 << 20), 1 << 20);
        assert_eq!(m.len(), 1);
        let chunks = &m[0].1.chunked_series[0].chunks;
        let headers: Vec<CounterResetHint> = chunks
            .iter()
            .map(|c| counter_reset_header(&c.data).expect("header"))
            .collect();
        // The first chunk's header is unknown, a chunk cut for its size continues the
        // previous one ("not a reset"), the chunk the reset starts says so.
        assert_eq!(headers[0], CounterResetHint::Unknown);
        let reset_at = chunks
            .iter()
            .position(|c| c.min_time_ms == 1_700_000_000_000 + 70 * 15_000)
            .expect("a chunk starts at the reset");
        for (i, h) in headers.iter().enumerate().skip(1) {
            let want = if i == reset_at {
                CounterResetHint::Reset
            } else {
                CounterResetHint::NotReset
            };
            assert_eq!(*h, want, "chunk {i}");
        }
        for c in chunks {
            let n = u16::from_be_bytes([c.data[0], c.data[1]]) as usize;
            assert!(n <= MAX_CHUNK_SAMPLES);
            // Cut once past the target (the sample that passed it is the last).
            assert!(
                c.data.len() < TARGET_HISTOGRAM_CHUNK_BYTES + 400,
                "{}",
                c.data.len()
            );
        }
    }
}
