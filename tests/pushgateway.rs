//! The push gateway over HTTP: Python's `prometheus_client` (`push_to_gateway`,
//! `pushadd_to_gateway`, `delete_from_gateway`) pushing to the main port, the series then
//! found with `/api/v1/query`; the drop-in Pushgateway port (`/metrics`, `/api/v1/metrics`);
//! bad pushes refused with 400 leaving the group as it was; groups surviving a graceful
//! restart (the persistence file is written at shutdown, at most once per interval before).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, enc, free_port, reqwest};
use serde_json::Value;

fn get(url: String) -> (u16, String) {
    let r = reqwest::blocking_client().get(url).send().expect("GET");
    (r.status().as_u16(), r.text())
}

fn query(s: &Server, q: &str) -> Vec<Value> {
    let (_, body) = get(s.url(&format!("/api/v1/query?query={}", enc(q))));
    let j: Value = serde_json::from_str(&body).expect("JSON");
    j["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn put(url: String, body: &str) -> (u16, String) {
    let r = reqwest::blocking_client()
        .request("PUT", url, body.as_bytes().to_vec())
        .header("Content-Type", "text/plain; version=0.0.4")
        .send()
        .expect("PUT");
    (r.status().as_u16(), r.text())
}

#[test]
fn python_client_push_pushadd_delete_then_query() {
    let have_py = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_py {
        eprintln!("SKIP: python3 prometheus_client is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let url = format!("127.0.0.1:{}", s.port);
    let script = format!(
        r#"
from prometheus_client import CollectorRegistry, Gauge, Counter, push_to_gateway, pushadd_to_gateway, delete_from_gateway
r = CollectorRegistry()
Gauge('batch_last_success_unixtime', 'Last success.', registry=r).set(1700000000)
Counter('batch_records', 'Records.', ['table'], registry=r).labels('users').inc(42)
push_to_gateway('{url}', job='nightly', registry=r, grouping_key={{'instance': 'db/1'}})
r2 = CollectorRegistry()
Gauge('batch_duration_seconds', 'Duration.', registry=r2).set(12.5)
pushadd_to_gateway('{url}', job='nightly', registry=r2, grouping_key={{'instance': 'db/1'}})
r3 = CollectorRegistry()
Gauge('gone_soon', 'To delete.', registry=r3).set(1)
push_to_gateway('{url}', job='temp', registry=r3)
delete_from_gateway('{url}', job='temp')
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        poll(|| query(&s, "batch_records_total").len() == 1),
        "pushed counter never queryable"
    );
    let r = query(&s, "batch_records_total");
    assert_eq!(
        r[0]["metric"],
        serde_json::json!({"__name__": "batch_records_total", "instance": "db/1", "job": "nightly", "table": "users"})
    );
    assert_eq!(r[0]["value"][1], "42");
    let r = query(&s, "batch_duration_seconds");
    assert_eq!(r.len(), 1, "pushadd kept: {r:?}");
    assert_eq!(
        query(&s, "batch_last_success_unixtime").len(),
        1,
        "pushadd keeps others"
    );
    let r = query(&s, "push_time_seconds{job=\"nightly\"}");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        poll(|| query(&s, "gone_soon").is_empty()),
        "deleted group still queryable"
    );
    s.stop();
}

#[test]
fn bad_pushes_get_400_and_leave_the_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let base = format!("http://127.0.0.1:{pg}");
    let (code, _) = put(
        format!("{base}/metrics/job/j/instance/i"),
        "# TYPE kept gauge\nkept{a=\"b\"} 3\n",
    );
    assert_eq!(code, 200);
    for (path, body, why) in [
        ("/metrics/job/j/instance/i", "kept{{{ 1\n", "malformed"),
        (
            "/metrics/job/j/instance/i",
            "kept 1 1700000000000\n",
            "timestamp",
        ),
        (
            "/metrics/job/other",
            "# TYPE kept counter\nkept 1\n",
            "type conflict",
        ),
        ("/metrics/job/j/bad-name/v", "x 1\n", "label name"),
        ("/metrics/job/j/odd", "x 1\n", "odd path"),
        ("/metrics/job/j/l@base64/!!!", "x 1\n", "base64"),
    ] {
        let (code, text) = put(format!("{base}{path}"), body);
        assert_eq!(code, 400, "{why}: {text}");
        assert!(!text.trim().is_empty(), "{why}: a message");
    }
    let (code, text) = get(format!("{base}/metrics"));
    assert_eq!(code, 200);
    assert!(
        text.contains("kept{a=\"b\",instance=\"i\",job=\"j\"} 3\n"),
        "{text}"
    );
    assert!(!text.contains("job=\"other\""), "{text}");
    let (_, api) = get(format!("{base}/api/v1/metrics"));
    let j: Value = serde_json::from_str(&api).expect("JSON");
    let grp = &j["data"][0];
    assert_eq!(
        grp["labels"],
        serde_json::json!({"job": "j", "instance": "i"})
    );
    assert_eq!(grp["last_push_successful"], false);
    assert_eq!(grp["kept"]["metrics"][0]["value"], "3");
    for p in ["/-/healthy", "/-/ready", "/api/v1/status"] {
        assert_eq!(get(format!("{base}{p}")).0, 200, "{p}");
    }
    s.stop();
}

#[test]
fn pushed_groups_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let (code, _) = put(
        s.url("/metrics/job/backup/instance/db1"),
        "# HELP backup_bytes Size.\n# TYPE backup_bytes gauge\nbackup_bytes 1024\n",
    );
    assert_eq!(code, 200);
    s.stop();
    let pg = free_port();
    let pg_flag = format!("--pushgateway.listen-address=127.0.0.1:{pg}");
    let s = Server::start(dir.path(), &[&pg_flag]);
    let (_, text) = get(format!("http://127.0.0.1:{pg}/metrics"));
    assert!(
        text.contains("# HELP backup_bytes Size.\n# TYPE backup_bytes gauge\nbackup_bytes{instance=\"db1\",job=\"backup\"} 1024\n"),
        "{text}"
    );
    // The ingester stores it again after the restart.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let r = reqwest::blocking_client()
        .request(
            "DELETE",
            format!("http://127.0.0.1:{pg}/metrics/job/unrelated"),
            Vec::new(),
        )
        .send()
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 202);
    assert!(poll(|| {
        query(&s, "timestamp(backup_bytes)")
            .first()
            .and_then(|v| v["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
            .is_some_and(|t| t >= t0 - 1.0)
    }));
    s.stop();
}
