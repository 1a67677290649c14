//! Helpers for HTTP-level tests: start the real `strata` binary on a free loopback port
//! with a fresh data directory, send remote-write requests, stop it (gracefully or with
//! SIGKILL), and read its data directory back with the storage crate.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
use strata_storage::{Db, MatchOp, Matcher, Options, SeriesSamples};

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts strata. Without `--config.file` in `extra`, it runs with a configuration
    /// that scrapes nothing, so tests see only the data they write.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_with(data, extra, false)
    }

    /// Starts strata with its embedded default configuration (it scrapes itself).
    pub fn start_embedded(data: &Path, extra: &[&str]) -> Server {
        Self::start_with(data, extra, true)
    }

    fn start_with(data: &Path, extra: &[&str], embedded: bool) -> Server {
        // A port picked by `free_port` can be taken by another process (another test's
        // server, an outgoing connection) before strata binds it: then strata exits, or a
        // different server answers on it. Retry on a fresh port until the server that
        // answers is ours (its flags name our data directory).
        let mut last = String::new();
        for _ in 0..8 {
            let port = free_port();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
            if !embedded && !extra.iter().any(|a| a.starts_with("--config.file")) {
                let cfg = std::env::temp_dir().join("strata-test-no-scrape.yml");
                if !cfg.exists() {
                    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n")
                        .expect("write config");
                }
                cmd.arg(format!("--config.file={}", cfg.display()));
            }
            let child = cmd
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn strata");
            let mut s = Server {
                child,
                port,
                data: data.to_path_buf(),
            };
            match s.wait_ready() {
                Ok(()) => return s,
                Err(e) => last = e,
            }
        }
        panic!("strata did not start: {last}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::blocking_client();
        let ours = self.data.display().to_string().replace('\\', "\\\\");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("strata exited with {status} (port {})", self.port));
            }
            if let Ok(r) = client.get(self.url("/-/ready")).send()
                && r.status().as_u16() == 200
            {
                let flags = client
                    .get(self.url("/api/v1/status/flags"))
                    .send()
                    .map(|r| r.text())
                    .unwrap_or_default();
                if flags.contains(&format!("\"{ours}\"")) {
                    return Ok(());
                }
                // Someone else's server: ours will fail to bind and exit.
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("port {} is another server's", self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("strata did not become ready on port {}", self.port))
    }

    /// SIGKILL: no shutdown code runs.
    ///
    /// (A `Server` dropped while running — a failed test — is killed too, see `Drop`.)
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "strata exited with {status}");
    }
}

pub mod reqwest {
    pub fn blocking_client() -> Client {
        Client
    }

    /// A tiny blocking HTTP/1.1 client over std (tests need no async runtime for it).
    pub struct Client;

    pub struct Response {
        status: u16,
        pub body: Vec<u8>,
        /// The raw header block, lower-cased.
        pub headers: String,
    }

    impl Response {
        pub fn status(&self) -> Status {
            Status(self.status)
        }
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    pub struct Status(u16);
    impl Status {
        pub fn as_u16(&self) -> u16 {
            self.0
        }
    }

    pub struct Req {
        method: &'static str,
        url: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    }

    impl Client {
        pub fn get(&self, url: String) -> Req {
            Req {
                method: "GET",
                url,
                body: Vec::new(),
                headers: Vec::new(),
            }
        }
        pub fn post(&self, url: String, body: Vec<u8>) -> Req {
            self.request("POST", url, body)
        }
        pub fn request(&self, method: &'static str, url: String, body: Vec<u8>) -> Req {
            Req {
                method,
                url,
                body,
                headers: Vec::new(),
            }
        }
    }

    impl Req {
        pub fn header(mut self, k: &str, v: &str) -> Self {
            self.headers.push((k.into(), v.into()));
            self
        }

        pub fn send(self) -> std::io::Result<Response> {
            use std::io::{Read, Write};
            let rest = self.url.strip_prefix("http://").unwrap_or(&self.url);
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let mut s = std::net::TcpStream::connect(host)?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
            let mut req = format!(
                "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
                self.method,
                if path.is_empty() { "/" } else { path },
                host,
                self.body.len()
            );
            for (k, v) in &self.headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes())?;
            s.write_all(&self.body)?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)?;
            let head_end = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| std::io::Error::other("bad status line"))?;
            let mut body = buf[head_end + 4..].to_vec();
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked")
            {
                body = dechunk(&body);
            }
            Ok(Response {
                status,
                body,
                headers: head.to_ascii_lowercase(),
            })
        }
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
            if n == 0 || b.len() < eol + 2 + n {
                break;
            }
            out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
            b = &b[eol + 4 + n..];
        }
        out
    }
}

/// A remote-write body for `series` series × `per_series` samples starting at `t0`.
pub fn write_body(
    series: std::ops::Range<usize>,
    t0: i64,
    per_series: usize,
    step: i64,
) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .map(|i| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: format!("test_metric_{}", i % 7),
                    },
                    Label {
                        name: "instance".into(),
                        value: format!("host-{i}"),
                    },
                    Label {
                        name: "job".into(),
                        value: "crash".into(),
                    },
                ],
                samples: (0..per_series)
                    .map(|k| Sample {
                        timestamp: t0 + k as i64 * step,
                        value: (i * 1000 + k) as f64,
                    })
                    .collect(),
            })
            .collect(),
        metadata: vec![],
    };
    encode(&req)
}

pub fn post_write(port: u16, body: Vec<u8>) -> std::io::Result<u16> {
    reqwest::blocking_client()
        .post(format!("http://127.0.0.1:{port}/api/v1/write"), body)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send()
        .map(|r| r.status().as_u16())
}

/// A remote write: its status code and body text.
pub fn post_write_text(port: u16, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::blocking_client()
        .post(format!("http://127.0.0.1:{port}/api/v1/write"), body)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .send()
        .expect("remote write");
    (r.status().as_u16(), r.text())
}

/// Everything stored in a (stopped) data directory.
pub fn read_all(data: &Path) -> Vec<SeriesSamples> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut o = Options::new(data);
        o.retention_time_ms = None;
        let db = Db::open(o).await.expect("open data dir");
        let m = Matcher::new(MatchOp::Regex, "__name__", ".+").expect("matcher");
        db.select(&[m], i64::MIN, i64::MAX).await.expect("select")
    })
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `bin` is on the PATH (a peer a test needs).
pub fn installed(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The JSON answer of a GET (`Null` when there is none).
pub fn get_json(url: &str) -> serde_json::Value {
    let text = reqwest::blocking_client()
        .get(url.to_string())
        .send()
        .map(|r| r.text())
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// An Alertmanager API time: RFC 3339 with milliseconds, of `ms` since the epoch.
pub fn rfc3339(ms: i64) -> String {
    strata_grammar::format_rfc3339(ms, true)
}

/// The first `Some` of `f` (asked every 100 ms) within `secs`.
pub fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A POST of the JSON `body`: the status and the answer's text.
pub fn post_json(url: &str, body: &serde_json::Value) -> (u16, String) {
    let r = reqwest::blocking_client()
        .post(url.to_string(), body.to_string().into_bytes())
        .header("Content-Type", "application/json")
        .send()
        .expect("POST");
    (r.status().as_u16(), r.text())
}

/// Waits until `f` holds (checked every 250 ms) or `secs` are up; whether it held.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

/// The JSON answer of an instant query to `s`.
pub fn query(s: &Server, q: &str) -> serde_json::Value {
    get_json(&s.url(&format!("/api/v1/query?query={}", enc(q))))
}

/// A scripted exporter: serves whatever body (and content type) the test sets.
pub struct Exporter {
    pub port: u16,
    body: Arc<Mutex<(Vec<u8>, String)>>,
}

impl Exporter {
    pub fn start(body: &str) -> Exporter {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new((
            body.as_bytes().to_vec(),
            "text/plain; version=0.0.4".to_owned(),
        )));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let (body, ct) = st.lock().expect("lock").clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(&body);
            }
        });
        Exporter { port, body: state }
    }

    pub fn set(&self, body: &str, ct: &str) {
        self.set_bytes(body.as_bytes(), ct);
    }

    pub fn set_bytes(&self, body: &[u8], ct: &str) {
        *self.body.lock().expect("lock") = (body.to_vec(), ct.to_owned());
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Remote write 1.0 with every field of `TimeSeries` — float samples, exemplars and
/// native histograms — for tests that write more than floats (the ingest crate's
/// `TimeSeries` carries samples only).
pub mod rw1 {
    use prost::Message;
    pub use strata_ingest::histogram_proto::Histogram;
    pub use strata_ingest::remote_write::{Exemplar, Label, Sample};

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// The snappy-compressed body of `req`.
    pub fn encode(req: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy")
    }

    /// A series `name{instance, job="api"}` of native histograms.
    pub fn histogram_series(name: &str, instance: &str, histograms: Vec<Histogram>) -> TimeSeries {
        TimeSeries {
            labels: vec![
                label("__name__", name),
                label("instance", instance),
                label("job", "api"),
            ],
            histograms,
            ..Default::default()
        }
    }

    /// A label pair.
    pub fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// `POST /api/v1/sql` with `q` as the form field `query`: the JSON answer.
#[allow(dead_code)]
pub fn sql_json(s: &Server, q: &str) -> serde_json::Value {
    let r = reqwest::blocking_client()
        .post(
            s.url("/api/v1/sql"),
            format!("query={}", enc(q)).into_bytes(),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("POST");
    serde_json::from_str(&r.text()).expect("JSON")
}
