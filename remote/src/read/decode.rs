//! Client side: the series of a remote's answer, by its `Content-Type` as Prometheus's
//! client reads them:
//!
//! - `application/x-protobuf` (or none): a snappy `ReadResponse` ([`sampled`]), at most
//!   [`MAX_ANSWER_BYTES`] decompressed;
//! - [`STREAMED_CONTENT_TYPE`]: frames of `ChunkedReadResponse`s ([`Streamed`]), fed as the
//!   body arrives, each frame at most the entry's `chunked_read_limit` bytes and checked
//!   against its CRC; the frames plus the decoded samples (16 bytes a float, a histogram's
//!   size) count against the same [`MAX_ANSWER_BYTES`]. XOR chunks (floats) and HISTOGRAM
//!   and FLOAT_HISTOGRAM chunks (native histograms, validated as a `SAMPLES` answer's:
//!   one Prometheus would refuse is left out) are decoded, keeping the samples within the
//!   query's time range (chunks may reach past it); a chunk in another encoding (Prometheus
//!   3's XOR2 and start-time chunks) is a [`ClientError::UnsupportedChunk`].
//!
//! Labels named in `drop_labels` (the external labels a query added as matchers) are
//! removed from the series returned.

use std::sync::Arc;

use prost::Message;
use strata_storage::{Labels, SeriesSamples};
use strata_vocab::FloatHistogram;

use super::frame::{FrameError, FrameReader, STREAMED_CONTENT_TYPE};
use super::proto::{Chunk, ChunkEncoding, ChunkedReadResponse, Label, ReadResponse};
use strata_chunkenc::{ChunkError, histogram, xor};

/// Largest answer taken from a remote (decompressed; see the module doc for a streamed one).
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// What a decoded sample counts against [`MAX_ANSWER_BYTES`].
const SAMPLE_BYTES: usize = 16;

/// Why a remote's answer was not used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be made or sent, or the body not read.
    #[error("{0}")]
    Http(String),
    /// The remote answered with an error status.
    #[error("{status}: {body}")]
    Status { status: u16, body: String },
    /// A `Content-Type` that is neither answer type.
    #[error("unsupported content type {0:?}")]
    ContentType(String),
    /// An answer larger than [`MAX_ANSWER_BYTES`].
    #[error("answer of more than {limit} bytes (at {size})")]
    TooLarge { size: usize, limit: usize },
    /// Not snappy, or not the protobuf message expected.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A broken stream of frames.
    #[error("streamed answer: {0}")]
    Frame(#[from] FrameError),
    /// A corrupt chunk.
    #[error("chunk of series {series}: {source}")]
    Chunk { series: String, source: ChunkError },
    /// A chunk in an encoding Strata does not decode.
    #[error(
        "remote read endpoint {remote} sent a {encoding} chunk (series {series}); Strata decodes XOR, HISTOGRAM and FLOAT_HISTOGRAM chunks"
    )]
    UnsupportedChunk {
        remote: String,
        encoding: String,
        series: String,
    },
}

/// The series of the `SAMPLES` answer `body`.
pub(crate) fn sampled(
    body: &[u8],
    drop_labels: &[&str],
) -> Result<Vec<SeriesSamples>, ClientError> {
    let len = snap::raw::decompress_len(body).map_err(|e| ClientError::Malformed(e.to_string()))?;
    if len > MAX_ANSWER_BYTES {
        return Err(ClientError::TooLarge {
            size: len,
            limit: MAX_ANSWER_BYTES,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| ClientError::Malformed(e.to_string()))?;
    let answer =
        ReadResponse::decode(raw.as_slice()).map_err(|e| ClientError::Malformed(e.to_string()))?;
    Ok(answer
        .results
        .into_iter()
        .flat_map(|r| r.timeseries)
        .map(|ts| SeriesSamples {
            // A histogram the remote sends invalid is left out.
            histograms: ts
                .histograms
                .iter()
                .filter_map(|h| h.to_float().ok())
                .map(|(t, h)| (t, Arc::new(h)))
                .collect(),
            labels: labels(ts.labels, drop_labels),
            samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
        })
        .collect())
}

/// Whether `content_type` is a streamed answer's; `None` for a type neither answer has.
pub(crate) fn is_streamed(content_type: &str) -> Result<bool, ClientError> {
    if content_type.starts_with(STREAMED_CONTENT_TYPE) {
        Ok(true)
    } else if content_type.is_empty() || content_type.starts_with("application/x-protobuf") {
        Ok(false)
    } else {
        Err(ClientError::ContentType(content_type.to_owned()))
    }
}

/// A streamed answer, decoded as its bytes arrive.
pub(crate) struct Streamed<'a> {
    reader: FrameReader,
    remote: &'a str,
    drop_labels: &'a [&'a str],
    mint: i64,
    maxt: i64,
    /// Bytes counted against [`MAX_ANSWER_BYTES`].
    size: usize,
    series: Vec<SeriesSamples>,
}

impl<'a> Streamed<'a> {
    /// A decoder for the answer of `remote` to a query of `mint..=maxt`, frames at most
    /// `frame_limit` bytes.
    pub(crate) fn new(
        remote: &'a str,
        frame_limit: u64,
        drop_labels: &'a [&'a str],
        mint: i64,
        maxt: i64,
    ) -> Self {
        Streamed {
            reader: FrameReader::new(frame_limit),
            remote,
            drop_labels,
            mint,
            maxt,
            size: 0,
            series: Vec::new(),
        }
    }

    /// Takes the next bytes of the body.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.count(bytes.len())?;
        self.reader.push(bytes);
        while let Some(message) = self.reader.next_message()? {
            let frame = ChunkedReadResponse::decode(message)
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
            for cs in frame.chunked_series {
                let mut samples = Vec::new();
                let mut histograms = Vec::new();
                for c in &cs.chunks {
                    self.chunk(c, &cs.labels, &mut samples, &mut histograms)?;
                }
                let labels = labels(cs.labels, self.drop_labels);
                // A series split over frames comes in consecutive frames.
                match self.series.last_mut() {
                    Some(last) if last.labels == labels => {
                        last.samples.extend(samples);
                        last.histograms.extend(histograms);
                    }
                    _ => self.series.push(SeriesSamples {
                        labels,
                        samples,
                        histograms,
                    }),
                }
            }
        }
        Ok(())
    }

    /// The samples of chunk `c` of the series `labels` within the query's range, onto
    /// `samples` or `histograms`.
    fn chunk(
        &mut self,
        c: &Chunk,
        labels: &[Label],
        samples: &mut Vec<(i64, f64)>,
        histograms: &mut Vec<(i64, Arc<FloatHistogram>)>,
    ) -> Result<(), ClientError> {
        let corrupt = |source| ClientError::Chunk {
            series: describe(labels),
            source,
        };
        let range = self.mint..=self.maxt;
        let kind = match ChunkEncoding::try_from(c.r#type) {
            Ok(ChunkEncoding::Xor) => {
                let decoded = xor::decode(&c.data).map_err(corrupt)?;
                self.count(decoded.len().saturating_mul(SAMPLE_BYTES))?;
                samples.extend(decoded.into_iter().filter(|(t, _)| range.contains(t)));
                return Ok(());
            }
            Ok(ChunkEncoding::Histogram) => histogram::Kind::Integer,
            Ok(ChunkEncoding::FloatHistogram) => histogram::Kind::Float,
            _ => {
                return Err(ClientError::UnsupportedChunk {
                    remote: self.remote.to_owned(),
                    encoding: ChunkEncoding::name(c.r#type),
                    series: describe(labels),
                });
            }
        };
        for h in histogram::decode(kind, &c.data).map_err(corrupt)? {
            if !range.contains(&h.timestamp) {
                continue;
            }
            // A histogram Prometheus would refuse is left out, as from a SAMPLES answer.
            if let Ok((t, f)) = h.to_float() {
                self.count(f.size_bytes())?;
                histograms.push((t, Arc::new(f)));
            }
        }
        Ok(())
    }

    /// The series, once the body has ended.
    pub(crate) fn finish(self) -> Result<Vec<SeriesSamples>, ClientError> {
        self.reader.finish()?;
        Ok(self.series)
    }

    fn count(&mut self, bytes: usize) -> Result<(), ClientError> {
        self.size = self.size.saturating_add(bytes);
        if self.size > MAX_ANSWER_BYTES {
            return Err(ClientError::TooLarge {
                size: self.size,
                limit: MAX_ANSWER_BYTES,
            });
        }
        Ok(())
    }
}

/// `wire` without the labels named in `drop`.
fn labels(wire: Vec<Label>, drop: &[&str]) -> Labels {
    Labels::from_pairs(
        wire.into_iter()
            .filter(|l| !drop.contains(&l.name.as_str()))
            .map(|l| (l.name, l.value))
            .collect::<Vec<(String, String)>>(),
    )
}

/// `{a="b", …}` for an error message.
fn describe(labels: &[Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::frame::frame;
    use crate::read::proto::{Chunk, ChunkedSeries};
    use strata_chunkenc::xor::XorEncoder;

    fn wire(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn xor_chunk(samples: &[(i64, f64)]) -> Chunk {
        let mut e = XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, v).expect("append");
        }
        Chunk {
            min_time_ms: samples[0].0,
            max_time_ms: samples[samples.len() - 1].0,
            r#type: ChunkEncoding::Xor as i32,
            data: e.finish(),
        }
    }

    fn framed(labels: &[(&str, &str)], chunks: Vec<Chunk>) -> Vec<u8> {
        frame(
            &ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: wire(labels),
                    chunks,
                }],
                query_index: 0,
            }
            .encode_to_vec(),
        )
    }

    #[test]
    fn frames_of_one_series_merge_and_samples_outside_the_range_are_dropped() {
        let a = [("__name__", "up"), ("i", "1"), ("site", "x")];
        let b = [("__name__", "up"), ("i", "2"), ("site", "x")];
        let mut body = framed(&a, vec![xor_chunk(&[(5, 1.0), (10, 2.0), (20, 3.0)])]);
        body.extend(framed(&a, vec![xor_chunk(&[(30, 4.0), (40, 5.0)])]));
        body.extend(framed(&b, vec![xor_chunk(&[(10, 9.0)])]));
        let mut s = Streamed::new("r", 1 << 20, &["site"], 10, 30);
        for part in body.chunks(7) {
            s.push(part).expect("push");
        }
        let series = s.finish().expect("finish");
        assert_eq!(series.len(), 2);
        assert_eq!(
            series[0].labels,
            Labels::from_pairs(vec![
                ("__name__".to_string(), "up".to_string()),
                ("i".to_string(), "1".to_string())
            ])
        );
        assert_eq!(series[0].samples, vec![(10, 2.0), (20, 3.0), (30, 4.0)]);
        assert_eq!(series[1].samples, vec![(10, 9.0)]);
    }

    #[test]
    fn an_unknown_chunk_encoding_is_a_typed_error_naming_remote_and_encoding() {
        let mut c = xor_chunk(&[(1, 1.0)]);
        c.r#type = ChunkEncoding::Xor2 as i32;
        let mut s = Streamed::new("prom-a", 1 << 20, &[], 0, 100);
        let err = s
            .push(&framed(&[("__name__", "h")], vec![c]))
            .expect_err("XOR2 chunk");
        assert!(matches!(err, ClientError::UnsupportedChunk { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("prom-a") && text.contains("XOR2"), "{text}");
    }

    #[test]
    fn oversized_and_cut_streams_are_errors() {
        let body = framed(&[("__name__", "up")], vec![xor_chunk(&[(1, 1.0)])]);
        let mut s = Streamed::new("r", 10, &[], 0, 100);
        assert!(matches!(
            s.push(&body),
            Err(ClientError::Frame(FrameError::TooLarge { .. }))
        ));
        let mut s = Streamed::new("r", 1 << 20, &[], 0, 100);
        s.push(&body[..body.len() - 1]).expect("push");
        assert!(matches!(
            s.finish(),
            Err(ClientError::Frame(FrameError::Truncated(_)))
        ));
    }

    #[test]
    fn content_types_choose_the_decoder() {
        assert!(matches!(is_streamed(STREAMED_CONTENT_TYPE), Ok(true)));
        assert!(matches!(is_streamed("application/x-protobuf"), Ok(false)));
        assert!(matches!(is_streamed(""), Ok(false)));
        assert!(matches!(
            is_streamed("text/plain"),
            Err(ClientError::ContentType(_))
        ));
    }
}
