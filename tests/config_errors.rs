//! A bad `prometheus.yml` stops the binary at start with an error naming file, line and
//! field; the data directory is not touched.

use std::process::Command;

#[test]
fn unknown_key_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    scrape_intervall: 5s\n",
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run strata");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prometheus.yml:5:"), "{err}");
    assert!(err.contains("scrape_intervall"), "{err}");
    assert!(
        !dir.path().join("data").exists(),
        "data dir created despite a bad config"
    );
}

#[test]
fn bad_flag_values_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--storage.tsdb.retention.time=fifteen days")
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run strata");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--storage.tsdb.retention.time"));
}

#[test]
fn bad_distributed_query_flags_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    for (args, wanted) in [
        (
            vec!["--distributed.worker=http://127.0.0.1:1"],
            "1 --distributed.worker for 0 --distributor.ingester",
        ),
        (
            vec![
                "--distributor.ingester=http://127.0.0.1:1",
                "--distributed.worker=127.0.0.1:2",
            ],
            "--distributed.worker=127.0.0.1:2: give http://host:port",
        ),
        (
            vec!["--distributed.listen-address=nowhere"],
            "--distributed.listen-address=nowhere",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .expect("run strata");
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
}

/// The log (standard output) of strata started with `args` on a free port, read until every
/// line of `wanted` has appeared (at most 30 s); the server is then stopped.
fn log_until(args: &[String], wanted: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run strata");
    let log = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(log).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !wanted.iter().all(|w| seen.contains(w)) && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push_str(&l);
            seen.push('\n');
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// Settings that are accepted but have no effect yet are warned about in the log at start
/// (the server still starts); settings that act are not.
#[test]
fn accepted_settings_without_effect_are_warned_about() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\n  scrape_native_histograms: true\n  convert_classic_histograms_to_nhcb: true\notlp:\n  promote_scope_metadata: true\nremote_read:\n  - url: http://127.0.0.1:1/api/v1/read\n    chunked_read_limit: 1000\n",
    )
    .expect("write config");
    // "starting Strata" is logged after every warning about settings.
    let wanted = [
        "otlp.promote_scope_metadata has no effect",
        "starting Strata",
    ];
    let seen = log_until(
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            "--storage.remote.read-max-bytes-in-frame=1000".into(),
        ],
        &wanted,
    );
    for w in wanted {
        assert!(seen.contains(w), "no warning {w:?} in:\n{seen}");
    }
    // scrape_native_histograms, convert_classic_histograms_to_nhcb, remote_read's
    // chunked_read_limit (streamed answers) and --storage.remote.read-max-bytes-in-frame
    // (streamed remote read) are acted on: no warning names them.
    for acted in [
        "scrape_native_histograms",
        "nhcb",
        "chunked_read_limit",
        "read-max-bytes-in-frame",
    ] {
        assert!(!seen.contains(acted), "{acted}: {seen}");
    }
}

/// A bad object storage file (`--objstore.config-file`, Thanos's format) stops the binary
/// at start naming file, line and field; the compactor refuses it the same way.
#[test]
fn bad_objstore_file_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            "type: S3\nconfig:\n  bucket: m\n  endpoint: 127.0.0.1:9000\n  secret: x\n",
            "bucket.yml:5:",
            "secret",
        ),
        (
            "type: GCS\nconfig:\n  bucket: m\n",
            "bucket.yml:1:",
            "does not support",
        ),
    ];
    for (text, at, word) in cases {
        let bucket = dir.path().join("bucket.yml");
        std::fs::write(&bucket, text).expect("write bucket.yml");
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg(format!("--objstore.config-file={}", bucket.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .expect("run strata");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(at) && err.contains(word), "{err}");
        assert!(!dir.path().join("data").exists(), "data dir created");
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "compact",
                &format!("--objstore.config-file={}", bucket.display()),
            ])
            .output()
            .expect("run strata compact");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(at) && err.contains(word), "{err}");
    }
}

/// Object storage and front-door flags that cannot act, and Thanos bucket keys Strata does
/// not act on, are warned about at start (the server still starts).
#[test]
fn cluster_flags_and_bucket_keys_without_effect_are_warned_about() {
    let dir = tempfile::tempdir().expect("tmp");
    let bucket = dir.path().join("bucket.yml");
    std::fs::write(
        &bucket,
        "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:1\n  insecure: true\n  part_size: 1000\n",
    )
    .expect("write bucket.yml");
    let run = |args: &[String], wanted: &[&str]| {
        let mut args = args.to_vec();
        args.push(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ));
        let seen = log_until(&args, wanted);
        for w in wanted {
            assert!(seen.contains(w), "no warning {w:?} in:\n{seen}");
        }
    };
    run(
        &[
            "--objstore.read-all-blocks".into(),
            "--distributor.replication-factor=2".into(),
        ],
        &[
            "--objstore.read-all-blocks has no effect without --objstore.config-file",
            "--distributor.replication-factor has no effect without --distributor.ingester",
        ],
    );
    run(
        &[format!("--objstore.config-file={}", bucket.display())],
        &["objstore config.part_size is accepted but has no effect"],
    );
}
