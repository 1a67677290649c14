//! The client against a fake remote: a streamed answer with a chunk Strata cannot decode
//! makes it ask again for `SAMPLES`.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prost::Message;
use strata_storage::{ExternalSource, MatchOp, Matcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::RemoteReaders;
use crate::read::frame::{STREAMED_CONTENT_TYPE, frame};
use crate::read::proto::{
    Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label, QueryResult, ReadRequest,
    ReadResponse, ResponseType, Sample, TimeSeries,
};

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
