//! Ingest decoding is bounded, against the real binary: a remote-write body of empty
//! metadata entries (2 bytes each on the wire, 80 decoded) and a body of empty samples
//! neither grow the server past a stated bound; label limits from `global` answer with
//! Prometheus's errors.

use std::time::Duration;

use crate::common::{Server, reqwest};

/// Peak resident memory of a process, bytes (VmHWM).
pub(crate) fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn post(port: u16, b: Vec<u8>) -> (u16, String) {
    crate::common::post_write_text(port, b)
}

/// A snappy body of `n` repetitions of `element` (raw protobuf bytes).
fn bomb(element: &[u8], n: usize) -> Vec<u8> {
    let raw: Vec<u8> = element
        .iter()
        .copied()
        .cycle()
        .take(element.len() * n)
        .collect();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy")
}

#[test]
fn metadata_and_sample_bombs_stay_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let pid = s.child.id();
    // Field 3 (metadata), length 0: just under the 32 MiB decompressed limit.
    let md = bomb(&[0x1a, 0x00], (32 << 20) / 2 - 64);
    assert!(
        md.len() < 2 << 20,
        "the body is small on the wire ({} bytes)",
        md.len()
    );
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let b = md.clone();
            let port = s.port;
            std::thread::spawn(move || post(port, b))
        })
        .collect();
    for h in handles {
        let (code, text) = h.join().expect("thread");
        assert!(code == 204 || code == 400, "{code}: {text}");
    }
    // One series (field 1) holding samples (field 2) of length 0: 16M samples.
    let mut series = vec![0x0a];
    // labels: {__name__="x"}, then 15M empty samples (2 bytes each, 16 decoded).
    let mut inner = vec![0x0a, 0x0d, 0x0a, 0x08];
    inner.extend_from_slice(b"__name__");
    inner.extend_from_slice(&[0x12, 0x01, b'x']);
    let n = (30 << 20) / 2;
    inner.extend(std::iter::repeat_n([0x12u8, 0x00], n).flatten());
    // length varint of `inner`
    let mut len = inner.len();
    while len >= 0x80 {
        series.push((len as u8) | 0x80);
        len >>= 7;
    }
    series.push(len as u8);
    series.extend(inner);
    let body = snap::raw::Encoder::new()
        .compress_vec(&series)
        .expect("snappy");
    let (code, text) = post(s.port, body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("too many elements"), "{text}");

    std::thread::sleep(Duration::from_millis(200));
    let rss = peak_rss(pid);
    assert!(
        rss < 512 << 20,
        "peak RSS {} MB is past the 512 MB bound",
        rss >> 20
    );
    let h = reqwest::blocking_client()
        .get(s.url("/-/healthy"))
        .send()
        .expect("healthy");
    assert_eq!(h.status().as_u16(), 200);
    s.stop();
}

#[test]
fn label_limits_apply_to_remote_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("p.yml");
    std::fs::write(
        &cfg,
        "global:\n  label_limit: 3\n  label_value_length_limit: 16\n",
    )
    .expect("config");
    let data = dir.path().join("data");
    let s = Server::start(&data, &[&format!("--config.file={}", cfg.display())]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let req = |labels: &[(&str, &str)]| {
        let mut l = vec![strata_ingest::remote_write::Label {
            name: "__name__".into(),
            value: "m".into(),
        }];
        l.extend(
            labels
                .iter()
                .map(|(n, v)| strata_ingest::remote_write::Label {
                    name: (*n).into(),
                    value: (*v).into(),
                }),
        );
        strata_ingest::remote_write::encode(&strata_ingest::remote_write::WriteRequest {
            timeseries: vec![strata_ingest::remote_write::TimeSeries {
                labels: l,
                samples: vec![strata_ingest::remote_write::Sample {
                    value: 1.0,
                    timestamp: now,
                }],
            }],
            metadata: vec![],
        })
    };
    assert_eq!(post(s.port, req(&[("a", "1"), ("b", "2")])).0, 204);
    let (code, text) = post(s.port, req(&[("a", "1"), ("b", "2"), ("c", "3")]));
    assert_eq!(code, 400);
    assert!(
        text.contains("label_limit exceeded (metric: m, number of labels: 4, limit: 3)"),
        "{text}"
    );
    let (code, text) = post(s.port, req(&[("a", &"v".repeat(40))]));
    assert_eq!(code, 400);
    assert!(text.contains("label_value_length_limit exceeded"), "{text}");
    s.stop();
}

#[test]
fn query_text_past_the_body_limit_is_413_not_a_parse_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    // 12 MB of form body: past the 10 MiB limit Go's ParseForm (behind Prometheus) has.
    // The server answers before the body is all sent and closes: the client writes on a
    // thread of its own (its write may then fail) while this one reads the answer.
    let body = format!("query={}1", "1%2B".repeat(3 << 20)).into_bytes();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut w = conn.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let head = format!(
            "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = w
            .write_all(head.as_bytes())
            .and_then(|()| w.write_all(&body));
    });
    let mut answer = Vec::new();
    {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let _ = writer.join();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#""errorType":"bad_data""#), "{text}");
    // A long but acceptable query still parses and runs.
    let body = format!("query=vector({}1)", "0".repeat(100_000)).into_bytes();
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/query"), body)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("query");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    s.stop();
}
