//! The `STREAMED_XOR_CHUNKS` answer: a [`Frames`] iterator making one framed
//! `ChunkedReadResponse` at a time, as Prometheus's `StreamChunkedReadResponses`:
//!
//! - one series per frame, the series of a query sorted by their labels, the queries in
//!   order; a series longer than a frame goes on in the next frames (chunks never
//!   repeat);
//! - float samples in XOR chunks of at most [`MAX_CHUNK_SAMPLES`] samples, each chunk's
//!   `min_time_ms`/`max_time_ms` its first and last sample;
//! - a frame's message stays within the frame limit (`--storage.remote.read-max-bytes-in-frame`):
//!   a chunk is cut short when the frame's room ends (Prometheus overshoots by up to a
//!   chunk instead). Only a frame whose labels and one sample alone pass the limit goes
//!   over it, with that one sample: every frame carries at least one sample.
//!
//! Native histograms are not in it (the caller decides what happens to them: see the
//! module `read`). A series is dropped once its last frame is made, so the memory held
//! shrinks as the answer goes out.

use std::convert::Infallible;

use futures::Stream;
use prost::Message;
use prost::encoding::encoded_len_varint;

use super::chunkenc::xor::{MAX_SAMPLE_BYTES, XorEncoder};
use super::frame::frame;
use super::proto::{Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label};

/// Samples per chunk at most (Prometheus's head cuts its chunks at 120 samples).
pub const MAX_CHUNK_SAMPLES: usize = 120;

/// Bytes of the XOR chunk header.
const CHUNK_HEADER_BYTES: usize = 2;

/// One series to stream.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) query_index: i64,
    pub(crate) labels: Vec<Label>,
    pub(crate) samples: Vec<(i64, f64)>,
}

/// The frames of a streamed answer, made as they are taken.
pub struct Frames {
    series: std::vec::IntoIter<Series>,
    current: Option<Series>,
    /// Samples of `current` already sent.
    sent: usize,
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

    /// The next frame's message of the current series, from sample `self.sent` on.
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
        let samples = &s.samples[self.sent..];
        let mut i = 0;
        while i < samples.len() {
            let (first, last) = (samples[i].0, samples[samples.len() - 1].0);
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
            if !chunks.is_empty() && room < CHUNK_HEADER_BYTES + MAX_SAMPLE_BYTES {
                break;
            }
            let mut enc = XorEncoder::new();
            let mut j = i;
            while j < samples.len() && enc.num_samples() < MAX_CHUNK_SAMPLES {
                let first_of_frame = chunks.is_empty() && enc.is_empty();
                if !first_of_frame && enc.len() + MAX_SAMPLE_BYTES > room {
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
                break;
            }
            let chunk = Chunk {
                min_time_ms: samples[i].0,
                max_time_ms: samples[j - 1].0,
                r#type: ChunkEncoding::Xor as i32,
                data: enc.finish(),
            };
            used += entry_len(chunk.encoded_len());
            chunks.push(chunk);
            i = j;
        }
        self.sent += i;
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: s.labels.clone(),
                chunks,
            }],
            query_index: s.query_index,
        }
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
                && self.sent < s.samples.len()
            {
                let message = self.build(&s);
                self.current = Some(s);
                return Some(frame(&message.encode_to_vec()));
            }
            match self.series.next() {
                Some(s) => {
                    self.current = Some(s);
                    self.sent = 0;
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
    use crate::read::chunkenc::xor;
    use crate::read::frame::FrameReader;

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
            },
            Series {
                query_index: 0,
                labels: labels(4),
                samples: Vec::new(),
            },
            Series {
                query_index: 1,
                labels: labels(2),
                samples: samples(5),
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
            }],
            1 << 20,
        )
        .hold(flag.clone());
        assert_eq!(std::sync::Arc::strong_count(&flag), 2);
        assert_eq!(frames.count(), 1);
        assert_eq!(std::sync::Arc::strong_count(&flag), 1);
    }
}
