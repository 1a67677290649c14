//! The client against a fake remote: a streamed answer with a chunk Strata cannot decode
//! makes it ask again for `SAMPLES`; an answer past the cap ([`MAX_ANSWER_BYTES`], set
//! small here) is an error, read no further than the cap, whether sampled or streamed,
//! honest about its size or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prost::Message;
use strata_storage::{ExternalSource, MatchOp, Matcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::RemoteReaders;
use crate::read::decode::{ClientError, MAX_ANSWER_BYTES};
use crate::read::frame::{STREAMED_CONTENT_TYPE, frame};
use crate::read::proto::{
    Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label, QueryResult, ReadRequest,
    ReadResponse, ResponseType, Sample, TimeSeries,
};
use strata_chunkenc::xor::XorEncoder;

fn labels() -> Vec<Label> {
    vec![
        Label {
            name: "__name__".into(),
            value: "up".into(),
        },
        Label {
            name: "job".into(),
            value: "x".into(),
        },
    ]
}

/// The request's body, after its headers.
async fn read_request(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the request ended early");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        if buf.len() >= end + 4 + len {
            return buf[end + 4..end + 4 + len].to_vec();
        }
    }
}

/// Answers streamed with an XOR2 chunk when asked for streamed chunks first, else with
/// SAMPLES; records each request's accepted response types.
async fn fake_remote(listener: TcpListener, asked: Arc<Mutex<Vec<Vec<i32>>>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let body = read_request(&mut s).await;
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy");
        let req = ReadRequest::decode(raw.as_slice()).expect("ReadRequest");
        asked.lock().push(req.accepted_response_types.clone());
        let (content_type, encoding, payload) = if req.accepted_response_types.first()
            == Some(&(ResponseType::StreamedXorChunks as i32))
        {
            let message = ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: labels(),
                    chunks: vec![Chunk {
                        min_time_ms: 10,
                        max_time_ms: 20,
                        r#type: ChunkEncoding::Xor2 as i32,
                        data: vec![0, 1, 2, 3],
                    }],
                }],
                query_index: 0,
            };
            (STREAMED_CONTENT_TYPE, "", frame(&message.encode_to_vec()))
        } else {
            let answer = ReadResponse {
                results: vec![QueryResult {
                    timeseries: vec![TimeSeries {
                        labels: labels(),
                        samples: vec![
                            Sample {
                                value: 1.5,
                                timestamp: 10,
                            },
                            Sample {
                                value: 2.5,
                                timestamp: 20,
                            },
                        ],
                        histograms: vec![],
                    }],
                }],
            };
            let body = snap::raw::Encoder::new()
                .compress_vec(&answer.encode_to_vec())
                .expect("snappy");
            (
                "application/x-protobuf",
                "Content-Encoding: snappy\r\n",
                body,
            )
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&payload).await;
        let _ = s.shutdown().await;
    }
}

#[tokio::test]
async fn a_remote_streaming_chunks_strata_cannot_decode_is_asked_again_for_samples() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(fake_remote(listener, asked.clone()));
    let config = strata_config::Config::from_yaml_str(
        &format!(
            "remote_read:\n  - url: http://127.0.0.1:{port}/api/v1/read\n    read_recent: true\n"
        ),
        "test",
    )
    .expect("config");
    let readers = RemoteReaders::new(&config.remote_read, &BTreeMap::new())
        .expect("readers")
        .expect("one entry");
    let matchers = [Matcher::new(MatchOp::Equal, "job", "x").expect("matcher")];
    let got = readers.select(&matchers, 0, 100, None).await;
    server.abort();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, vec![(10, 1.5), (20, 2.5)]);
    let s = ResponseType::Samples as i32;
    let x = ResponseType::StreamedXorChunks as i32;
    assert_eq!(*asked.lock(), vec![vec![x, s], vec![s]]);
}

/// How a [`raw_remote`] answers every request.
#[derive(Clone)]
struct RawAnswer {
    /// Status line and headers, without the blank line that ends them.
    head: String,
    /// The body, sent once.
    body: Vec<u8>,
    /// Sent after `body` over and over, until the client hangs up.
    endless: Vec<u8>,
}

/// Answers each request with `answer`; counts the bytes it managed to send.
async fn raw_remote(listener: TcpListener, answer: RawAnswer, sent: Arc<Mutex<usize>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = read_request(&mut s).await;
        let a = answer.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let head = format!("{}\r\nConnection: close\r\n\r\n", a.head);
            if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&a.body).await.is_err() {
                return;
            }
            *sent.lock() += a.body.len();
            while !a.endless.is_empty() && s.write_all(&a.endless).await.is_ok() {
                *sent.lock() += a.endless.len();
            }
            let _ = s.shutdown().await;
        });
    }
}

/// What a remote answering `answer` comes to, asked through a reader whose answer cap is
/// `limit`; and the bytes the remote sent.
async fn ask_capped(answer: RawAnswer, limit: usize) -> (Result<usize, ClientError>, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = Arc::new(Mutex::new(0));
    let server = tokio::spawn(raw_remote(listener, answer, sent.clone()));
    let config = strata_config::Config::from_yaml_str(
        &format!(
            "remote_read:\n  - url: http://127.0.0.1:{port}/api/v1/read\n    read_recent: true\n    remote_timeout: 30s\n"
        ),
        "test",
    )
    .expect("config");
    let mut readers = RemoteReaders::new(&config.remote_read, &BTreeMap::new())
        .expect("readers")
        .expect("one entry");
    let r = Arc::get_mut(&mut readers).expect("not shared yet");
    assert_eq!(
        r.entries[0].answer_limit, MAX_ANSWER_BYTES,
        "the default cap"
    );
    r.entries[0].answer_limit = limit;
    let matchers = [Matcher::new(MatchOp::Equal, "job", "x").expect("matcher")];
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        readers.ask(&readers.entries[0], &matchers, 0, 100),
    )
    .await
    .expect("the client gives up long before the remote does");
    // The fake's writes may still be draining into socket buffers: let them settle.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    server.abort();
    let sent = *sent.lock();
    (got.map(|series| series.len()), sent)
}

/// A `SAMPLES` answer of `series` series of 100 samples each, snappy-compressed.
fn sampled_answer(series: usize) -> Vec<u8> {
    let answer = ReadResponse {
        results: vec![QueryResult {
            timeseries: (0..series)
                .map(|i| TimeSeries {
                    labels: vec![Label {
                        name: "i".into(),
                        value: i.to_string(),
                    }],
                    samples: (0..100)
                        .map(|t| Sample {
                            value: t as f64,
                            timestamp: t,
                        })
                        .collect(),
                    histograms: vec![],
                })
                .collect(),
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&answer.encode_to_vec())
        .expect("snappy")
}

fn sampled_head(len: Option<usize>) -> String {
    let mut h =
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy"
            .to_string();
    if let Some(n) = len {
        h.push_str(&format!("\r\nContent-Length: {n}"));
    }
    h
}

fn too_large(got: &Result<usize, ClientError>, limit: usize) -> bool {
    matches!(got, Err(ClientError::TooLarge { limit: l, .. }) if *l == limit)
}

const LIMIT: usize = 64 << 10;

#[tokio::test]
async fn a_sampled_answer_within_the_cap_is_read_and_one_past_it_refused() {
    let small = sampled_answer(10);
    let (got, _) = ask_capped(
        RawAnswer {
            head: sampled_head(Some(small.len())),
            body: small,
            endless: Vec::new(),
        },
        LIMIT,
    )
    .await;
    assert_eq!(got.expect("within the cap"), 10);
    // About 300 KiB decompressed, but compressed to less than the cap: the header says so.
    let big = sampled_answer(200);
    let raw = snap::raw::decompress_len(&big).expect("len");
    assert!(big.len() < LIMIT && raw > LIMIT, "{} {raw}", big.len());
    let (got, _) = ask_capped(
        RawAnswer {
            head: sampled_head(Some(big.len())),
            body: big,
            endless: Vec::new(),
        },
        LIMIT,
    )
    .await;
    assert!(too_large(&got, LIMIT), "{got:?}");
}

/// A `SAMPLES` body that claims to be small and never ends: refused once it is longer than
/// any answer within the cap can be compressed to; the client stops reading there.
#[tokio::test]
async fn an_endless_sampled_body_is_refused_at_the_cap() {
    // Snappy's header: 100 bytes decompressed.
    let body = vec![100];
    let (got, sent) = ask_capped(
        RawAnswer {
            head: sampled_head(None),
            body,
            endless: vec![0u8; 16 << 10],
        },
        LIMIT,
    )
    .await;
    assert!(too_large(&got, LIMIT), "{got:?}");
    // Socket buffers hold a few MiB at most; without the cap the client would read on.
    assert!(sent < 64 << 20, "the remote sent {sent} bytes");
}

/// A `Content-Length` or snappy header past the cap is refused before the body is read.
#[tokio::test]
async fn a_sampled_answer_announcing_more_than_the_cap_is_refused_before_its_body() {
    let (got, _) = ask_capped(
        RawAnswer {
            head: sampled_head(Some(1 << 30)),
            body: Vec::new(),
            endless: vec![0u8; 16 << 10],
        },
        LIMIT,
    )
    .await;
    assert!(too_large(&got, LIMIT), "Content-Length: {got:?}");
    // The default cap (256 MiB) holds for a header claiming 300 MiB.
    let mut header = Vec::new();
    let mut n = 300u64 << 20;
    while n >= 0x80 {
        header.push((n as u8) | 0x80);
        n >>= 7;
    }
    header.push(n as u8);
    let (got, _) = ask_capped(
        RawAnswer {
            head: sampled_head(None),
            body: header,
            endless: vec![0u8; 16 << 10],
        },
        MAX_ANSWER_BYTES,
    )
    .await;
    assert!(too_large(&got, MAX_ANSWER_BYTES), "snappy header: {got:?}");
}

/// A framed `ChunkedReadResponse` of one series with the XOR chunk of `samples`.
fn streamed_frame(i: usize, samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v).expect("append");
    }
    let message = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries {
            labels: vec![Label {
                name: "i".into(),
                value: i.to_string(),
            }],
            chunks: vec![Chunk {
                min_time_ms: samples[0].0,
                max_time_ms: samples[samples.len() - 1].0,
                r#type: ChunkEncoding::Xor as i32,
                data: e.finish(),
            }],
        }],
        query_index: 0,
    };
    frame(&message.encode_to_vec())
}

fn streamed_head() -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: {STREAMED_CONTENT_TYPE}")
}

/// A streamed answer of valid frames that never ends: refused at the cap, every frame
/// within `chunked_read_limit`.
#[tokio::test]
async fn an_endless_streamed_answer_is_refused_at_the_cap() {
    let samples: Vec<(i64, f64)> = (0..100).map(|t| (t, t as f64)).collect();
    let mut body = Vec::new();
    for i in 0..10 {
        body.extend(streamed_frame(i, &samples));
    }
    let (got, _) = ask_capped(
        RawAnswer {
            head: streamed_head(),
            body: body.clone(),
            endless: Vec::new(),
        },
        LIMIT,
    )
    .await;
    assert_eq!(got.expect("within the cap"), 10);
    let (got, sent) = ask_capped(
        RawAnswer {
            head: streamed_head(),
            body: Vec::new(),
            endless: body,
        },
        LIMIT,
    )
    .await;
    assert!(too_large(&got, LIMIT), "{got:?}");
    assert!(sent < 64 << 20, "the remote sent {sent} bytes");
}

/// The decoded samples count too: a small streamed body whose XOR chunks hold more than
/// 256 MiB of samples (16 bytes each) is refused at the default cap. The samples are all
/// outside the query's range, so the test holds none of them.
#[tokio::test]
async fn streamed_chunks_decoding_past_the_default_cap_are_refused() {
    let n = u16::MAX as usize;
    let samples: Vec<(i64, f64)> = (0..n as i64).map(|t| (1000 + t, 1.0)).collect();
    let one = streamed_frame(0, &samples);
    let frames = MAX_ANSWER_BYTES / (n * 16) + 1;
    let body: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * frames)
        .collect();
    assert!(body.len() < MAX_ANSWER_BYTES / 16, "{} bytes", body.len());
    let (got, _) = ask_capped(
        RawAnswer {
            head: streamed_head(),
            body,
            endless: Vec::new(),
        },
        MAX_ANSWER_BYTES,
    )
    .await;
    assert!(too_large(&got, MAX_ANSWER_BYTES), "{got:?}");
}
