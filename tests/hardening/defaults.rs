//! Defaults like Prometheus's and the Pushgateway's: the push port's
//! `PUT /api/v1/admin/wipe` exists only with `--web.enable-admin-api`; push-gateway
//! persistence is written at most once per `--pushgateway.persistence.interval` (5m by
//! default) and at graceful shutdown, not rewritten and fsynced at every push, and a crash
//! loses at most one interval.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{Server, free_port, reqwest};

fn request(method: &'static str, url: String, body: &str) -> (u16, String) {
    let r = reqwest::blocking_client()
        .request(method, url, body.as_bytes().to_vec())
        .header("Content-Type", "text/plain; version=0.0.4")
        .send()
        .expect("request");
    (r.status().as_u16(), r.text())
}

/// A server with the drop-in Pushgateway on its own port; returns it and that port's URL.
fn start(data: &Path, extra: &[&str]) -> (Server, String) {
    let pg = free_port();
    let flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let mut args = vec![flag.as_str()];
    args.extend_from_slice(extra);
    (Server::start(data, &args), format!("http://127.0.0.1:{pg}"))
}

fn pushed_metrics(pg: &str) -> String {
    let (code, text) = request("GET", format!("{pg}/metrics"), "");
    assert_eq!(code, 200, "{text}");
    text
}

#[test]
fn pushgateway_wipe_needs_the_admin_flag() {
    let dir = tempfile::tempdir().expect("tmp");
    let (s, pg) = start(dir.path(), &[]);
    let (code, _) = request("PUT", format!("{pg}/metrics/job/keep"), "kept 1\n");
    assert_eq!(code, 200);
    let (code, text) = request("PUT", format!("{pg}/api/v1/admin/wipe"), "");
    assert!(
        code == 404 || code == 405,
        "wipe without --web.enable-admin-api: {code} {text}"
    );
    assert!(
        pushed_metrics(&pg).contains("kept{instance=\"\",job=\"keep\"} 1\n"),
        "the group survives"
    );
    s.stop();

    let dir = tempfile::tempdir().expect("tmp");
    let (s, pg) = start(dir.path(), &["--web.enable-admin-api"]);
    let (code, _) = request("PUT", format!("{pg}/metrics/job/gone"), "wiped 1\n");
    assert_eq!(code, 200);
    let (code, text) = request("PUT", format!("{pg}/api/v1/admin/wipe"), "");
    assert_eq!(code, 202, "{text}");
    assert!(!pushed_metrics(&pg).contains("wiped"), "wiped");
    s.stop();
}

#[test]
fn pushgateway_persistence_is_not_rewritten_per_push_and_flushed_at_shutdown() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("pushgateway.json");
    let (s, pg) = start(dir.path(), &[]);
    for i in 0..200 {
        let (code, text) = request(
            "PUT",
            format!("{pg}/metrics/job/batch"),
            &format!("# TYPE done gauge\ndone {i}\n"),
        );
        assert_eq!(code, 200, "{text}");
        // The default interval is 5m: no push of this test may write the file.
        assert!(!file.exists(), "persistence file written at push {i}");
    }
    s.stop();
    assert!(file.exists(), "graceful stop writes the persistence file");
    let (s, pg) = start(dir.path(), &[]);
    assert!(
        pushed_metrics(&pg).contains("done{instance=\"\",job=\"batch\"} 199\n"),
        "the last push survives a graceful restart"
    );
    s.stop();
}

#[test]
fn pushgateway_persistence_interval_bounds_what_a_crash_loses() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("pushgateway.json");
    let (s, pg) = start(dir.path(), &["--pushgateway.persistence.interval=1s"]);
    let (code, _) = request("PUT", format!("{pg}/metrics/job/nightly"), "records 42\n");
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(file.exists(), "written within the interval");
    s.kill9();
    let (s, pg) = start(dir.path(), &[]);
    assert!(
        pushed_metrics(&pg).contains("records{instance=\"\",job=\"nightly\"} 42\n"),
        "persisted before the crash"
    );
    s.stop();
}
