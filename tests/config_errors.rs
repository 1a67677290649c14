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
