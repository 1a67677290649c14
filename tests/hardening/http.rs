//! HTTP server hygiene against the real binary: idle connections, half-sent requests and a
//! flood of wrong passwords must not keep health checks and authorised clients out, and a
//! stalled client must not hold SIGTERM. Requests go over raw TCP so a test controls exactly
//! what is sent and when.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Server, free_port};

/// The configuration that scrapes nothing (as `common::Server::start` uses).
fn no_scrape_config() -> String {
    let cfg = std::env::temp_dir().join("strata-test-no-scrape.yml");
    if !cfg.exists() {
        std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").expect("write config");
    }
    format!("--config.file={}", cfg.display())
}

/// Standard base64 (for `Authorization: Basic`).
fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(c.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of a `GET` with `Connection: close`, with basic auth when `auth` is
/// `user:password`.
fn get_request(path: &str, auth: Option<&str>) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {}\r\n", b64(a)));
    }
    req.push_str("\r\n");
    req
}

/// Status and raw response of `GET path`; each read waits at most `timeout`.
fn http_get(
    port: u16,
    path: &str,
    auth: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(get_request(path, auth).as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    Ok((status, text))
}

/// Starts strata on a free port, under a soft `RLIMIT_NOFILE` of `soft_nofile` when set (the
/// shell's `ulimit`), and waits until it answers as ours (its flags name `data`), with basic
/// auth `auth` when set.
fn start(data: &Path, extra: &[String], soft_nofile: Option<u64>, auth: Option<&str>) -> Server {
    let ours = format!("\"{}\"", data.display());
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = match soft_nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_strata"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_strata")),
        };
        let child = cmd
            .arg(no_scrape_config())
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = s.child.try_wait() {
                last = format!("strata exited with {status} (port {port})");
                break;
            }
            match http_get(port, "/api/v1/status/flags", auth, Duration::from_secs(30)) {
                Ok((200, body)) if body.contains(&ours) => return s,
                Ok((200, _)) => {
                    last = format!("port {port} is another server's");
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if last.is_empty() {
            last = format!("strata did not become ready on port {port}");
        }
    }
    panic!("strata did not start: {last}");
}

/// The hard `RLIMIT_NOFILE` as the shell reports it (`None` for unlimited).
fn hard_nofile() -> Option<u64> {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Opens `n` connections to `port` that send nothing.
fn idle_connections(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect()
}

/// A thousand idle connections leave room for health checks: the server raises its open
/// file limit (it starts here under a soft limit of 256) and caps connections well above a
/// thousand. A half-sent request header is closed after `--web.read-header-timeout`, and
/// that timeout frees the slots of idle connections for those waiting past
/// `--web.max-connections`.
#[test]
fn idle_connections_do_not_block_health() {
    // The test itself holds a thousand sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().expect("tmp");

    if hard_nofile().is_some_and(|h| h < 4096) {
        eprintln!("SKIP (idle part): the hard open file limit is below 4096");
    } else {
        let server = start(&dir.path().join("a"), &[], Some(256), None);
        let idle = idle_connections(server.port, 1000);
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let r = http_get(server.port, "/-/healthy", None, Duration::from_secs(5));
        let took = t.elapsed();
        assert_eq!(
            r.map(|r| r.0).ok(),
            Some(200),
            "health with 1000 idle connections"
        );
        assert!(took < Duration::from_secs(2), "health took {took:?}");
        drop(idle);
        server.kill9();
    }

    let server = start(
        &dir.path().join("b"),
        &[
            "--web.read-header-timeout=1s".into(),
            "--web.max-connections=4".into(),
        ],
        None,
        None,
    );
    // Half a request header: closed (EOF or reset) after the timeout, not held open.
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    half.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .expect("write");
    half.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let t = Instant::now();
    let mut rest = Vec::new();
    let r = half.read_to_end(&mut rest);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5)
            && r.as_ref().map_or_else(
                |e| e.kind() == std::io::ErrorKind::ConnectionReset,
                |_| true
            ),
        "a half-sent header was not closed after 1s: {r:?} after {took:?}"
    );
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");

    // A keep-alive connection left idle after its response is closed by the same timeout.
    let mut keep = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    keep.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    keep.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let t = Instant::now();
    let mut got = Vec::new();
    let r = keep.read_to_end(&mut got);
    let took = t.elapsed();
    assert!(
        r.is_ok() && took < Duration::from_secs(5),
        "an idle keep-alive connection was not closed: {r:?} after {took:?}"
    );
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // Four idle connections take every slot; a fifth client waits in the backlog until the
    // header timeout closes them, and is then served.
    let idle = idle_connections(server.port, 4);
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let r = http_get(server.port, "/-/healthy", None, Duration::from_secs(10));
    let took = t.elapsed();
    assert_eq!(r.map(|r| r.0).ok(), Some(200), "served once a slot frees");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "with every slot taken by idle connections the request took {took:?}"
    );
    drop(idle);
    server.kill9();
}

/// SIGTERM ends the process within a bound even while one client is stuck halfway through a
/// request body and another halfway through a header (the read-header timeout, 30 s by
/// default, is longer than the bound): in-flight requests get a grace period, then their
/// connections are dropped.
#[test]
fn sigterm_exits_with_a_stalled_client() {
    const BOUND: Duration = Duration::from_secs(15);
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = start(&dir.path().join("d"), &[], None, None);
    let mut body = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    body.write_all(
        b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: 100000\r\n\r\npartial",
    )
    .expect("write");
    let mut header = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    header
        .write_all(b"GET /api/v1/query?query=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let status = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            break Some(status);
        }
        if t.elapsed() > BOUND {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = t.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!("strata still running {took:?} after SIGTERM with stalled clients")
    });
    assert!(status.success(), "strata exited with {status}");
    drop((body, header));
}

/// Fifty requests with wrong passwords (each a bcrypt check at cost 10) in flight: a client
/// whose credentials were verified before is answered at once, because bcrypt runs off the
/// async workers, a few checks at a time, and verified credentials are cached.
#[test]
fn bcrypt_flood_does_not_starve_authorised_requests() {
    let dir = tempfile::tempdir().expect("tmp");
    let hash = bcrypt::hash("s3cret", 10).expect("bcrypt");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  alice: '{hash}'\n")).expect("write");
    let good = Some("alice:s3cret");
    // Ready means an authorised request got through: the credentials are verified.
    let server = start(
        &dir.path().join("data"),
        &[format!("--web.config.file={}", web.display())],
        None,
        good,
    );
    let (code, _) = http_get(server.port, "/-/healthy", None, Duration::from_secs(10))
        .expect("unauthenticated request");
    assert_eq!(code, 401, "no credentials");

    let flood: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            let req = get_request("/-/healthy", Some(&format!("alice:wrong{i}")));
            s.write_all(req.as_bytes()).expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t = Instant::now();
        let r = http_get(
            server.port,
            "/api/v1/status/buildinfo",
            good,
            Duration::from_secs(30),
        );
        let took = t.elapsed();
        assert_eq!(r.map(|r| r.0).ok(), Some(200), "authorised request");
        assert!(
            took < Duration::from_secs(1),
            "an authorised request took {took:?} behind 50 wrong passwords"
        );
    }
    drop(flood);
    server.kill9();
}
