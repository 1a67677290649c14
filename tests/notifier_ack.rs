//! Acknowledgements of alert groups (issue #26) end to end against the real binary: a
//! group repeating every 2 s to a webhook stand-in stops repeating once acknowledged
//! through `POST /api/v2/acks`, notifies again when a new alert joins it, and resumes its
//! repeats when a short acknowledgement expires; the PagerDuty and Opsgenie stand-ins get
//! the acknowledgement (`event_action: acknowledge` with the trigger's `dedup_key`, and
//! Opsgenie's `acknowledge` action by alias); the acknowledgement survives a restart; bad
//! input is refused with 4xx.

mod common;
#[path = "common/http_stub.rs"]
mod http_stub;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, get_json, now_ms, poll, post_json, reqwest, rfc3339};
use serde_json::{Value, json};

fn delete(url: String) -> (u16, String) {
    let r = reqwest::blocking_client()
        .request("DELETE", url, Vec::new())
        .send()
        .expect("DELETE");
    (r.status().as_u16(), r.text())
}

fn metric(s: &Server, series: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

/// One received POST.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    body: Value,
}

/// Webhook, PagerDuty and Opsgenie stand-ins: every POST is recorded and accepted.
struct Receivers {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receivers {
    fn start() -> Receivers {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || serve(conn, &g));
            }
        });
        Receivers { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn wait(&self, path: &str, n: usize, secs: u64) -> Vec<Received> {
        poll(secs, || {
            let v = self.at(path);
            (v.len() >= n).then_some(v)
        })
        .unwrap_or_else(|| self.at(path))
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Received>>) {
    let Ok(mut w) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while let Some(req) = http_stub::read_request(&mut r) {
        got.lock().expect("lock").push(Received {
            path: req.target,
            body: req.body,
        });
        let reply = r#"{"status":"success","message":"ok","result":"Request will be processed"}"#;
        let _ = w.write_all(
            format!(
                "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            )
            .as_bytes(),
        );
    }
}

/// One receiver with a webhook, a PagerDuty and an Opsgenie integration, repeating
/// every 2 s.
fn am_config(dir: &Path, rx: &Receivers) -> String {
    let p = dir.join("alertmanager.yml");
    let body = format!(
        "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 300ms\n  group_interval: 1s\n  repeat_interval: 2s\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: {hook}\n    pagerduty_configs:\n      - routing_key: rk\n        url: {pd}\n    opsgenie_configs:\n      - api_key: gk\n        api_url: {og}\n",
        hook = rx.url("/hook"),
        pd = rx.url("/pagerduty"),
        og = rx.url("/opsgenie/"),
    );
    std::fs::write(&p, body).expect("write alertmanager config");
    format!("--alertmanager.config.file={}", p.display())
}

fn alert(name: &str, instance: &str) -> Value {
    json!([{"labels": {"alertname": name, "instance": instance},
            "annotations": {"summary": "down"},
            "startsAt": rfc3339(now_ms() - 1_000),
            "endsAt": rfc3339(now_ms() + 3_600_000)}])
}

/// The group key of the `alertname` group, once it is listed.
fn group_key(s: &Server, name: &str) -> String {
    poll(15, || {
        let groups = get_json(&s.url("/api/v2/alerts/groups"));
        groups.as_array()?.iter().find_map(|g| {
            (g["labels"]["alertname"] == name)
                .then(|| g["groupKey"].as_str().map(str::to_owned))
                .flatten()
        })
    })
    .expect("group listed")
}

fn ack(s: &Server, body: &Value) -> String {
    let (code, text) = post_json(&s.url("/api/v2/acks"), body);
    assert_eq!(code, 200, "{text}");
    serde_json::from_str::<Value>(&text).expect("json")["ackID"]
        .as_str()
        .expect("ackID")
        .to_owned()
}

/// How many webhook notifications arrive in `secs` seconds.
fn hooks_during(rx: &Receivers, secs: u64) -> usize {
    let before = rx.at("/hook").len();
    std::thread::sleep(Duration::from_secs(secs));
    rx.at("/hook").len() - before
}

#[test]
fn an_acknowledged_group_stops_repeating_until_it_changes_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let am = am_config(dir.path(), &rx);
    let data = dir.path().join("data");
    let s = Server::start(&data, &[&am]);
    assert_eq!(
        post_json(&s.url("/api/v2/alerts"), &alert("Down", "a")).0,
        200
    );
    // It repeats every 2 s.
    assert!(rx.wait("/hook", 3, 20).len() >= 3, "no repeats");
    let trigger = rx.wait("/pagerduty", 1, 5);
    let dedup = trigger[0].body["dedup_key"].clone();
    assert_eq!(trigger[0].body["event_action"], "trigger");

    let key = group_key(&s, "Down");
    let id = ack(
        &s,
        &json!({"groupKey": key, "createdBy": "alice", "comment": "on it",
                "endsAt": rfc3339(now_ms() + 3_600_000)}),
    );
    // PagerDuty and Opsgenie get the acknowledgement once.
    let pd = poll(10, || {
        rx.at("/pagerduty")
            .into_iter()
            .find(|r| r.body["event_action"] == "acknowledge")
    })
    .expect("no PagerDuty acknowledge");
    assert_eq!(pd.body["dedup_key"], dedup);
    assert_eq!(pd.body["routing_key"], "rk");
    let og_path = format!(
        "/opsgenie/v2/alerts/{}/acknowledge?identifierType=alias",
        dedup.as_str().expect("dedup key")
    );
    let og = rx.wait(&og_path, 1, 10);
    assert_eq!(og.len(), 1, "no Opsgenie acknowledge");
    assert_eq!(og[0].body["user"], "alice");
    assert_eq!(og[0].body["note"], "on it");
    // A flush under way when acknowledging may still send; then nothing for 3 repeats.
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(hooks_during(&rx, 6), 0, "repeats while acknowledged");
    assert!(metric(&s, "strata_notifier_notifications_acknowledged_total") >= 2.0);
    let groups = get_json(&s.url("/api/v2/alerts/groups"));
    let g = &groups[0];
    assert_eq!(g["acknowledgement"]["id"], id.as_str(), "{groups}");
    assert_eq!(g["acknowledgement"]["createdBy"], "alice");
    let listed = get_json(&s.url("/api/v2/acks?active=true"));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["status"]["state"], "active");
    s.stop();

    // After a restart the acknowledgement holds: Prometheus re-sends the same alert and
    // nothing repeats.
    let s = Server::start(&data, &[&am]);
    let listed = get_json(&s.url("/api/v2/acks?active=true"));
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(
        post_json(&s.url("/api/v2/alerts"), &alert("Down", "a")).0,
        200
    );
    assert_eq!(hooks_during(&rx, 6), 0, "repeats after the restart");

    // A new alert joins the group: notified, with both alerts, and repeating again.
    let before = rx.at("/hook").len();
    assert_eq!(
        post_json(&s.url("/api/v2/alerts"), &alert("Down", "b")).0,
        200
    );
    let got = rx.wait("/hook", before + 1, 10);
    assert!(got.len() > before, "the changed group was not notified");
    assert_eq!(got[before].body["alerts"].as_array().map(Vec::len), Some(2));
    assert!(
        hooks_during(&rx, 5) >= 1,
        "no repeats after the group changed"
    );
    let groups = get_json(&s.url("/api/v2/alerts/groups"));
    assert!(groups[0].get("acknowledgement").is_none(), "{groups}");
    s.stop();
}

#[test]
fn a_short_acknowledgement_expires_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let am = am_config(dir.path(), &rx);
    let s = Server::start(&dir.path().join("data"), &[&am]);
    assert_eq!(
        post_json(&s.url("/api/v2/alerts"), &alert("Hot", "a")).0,
        200
    );
    assert!(!rx.wait("/hook", 1, 15).is_empty(), "no notification");
    let key = group_key(&s, "Hot");

    // Bad input.
    let url = s.url("/api/v2/acks");
    let future = rfc3339(now_ms() + 3_600_000);
    for (body, code) in [
        (json!({"groupKey": key, "endsAt": future}), 400),
        (
            json!({"groupKey": key, "createdBy": "x", "endsAt": rfc3339(now_ms() - 1000)}),
            400,
        ),
        (
            json!({"groupKey": key, "createdBy": "x", "endsAt": rfc3339(now_ms() + 31 * 86_400_000)}),
            400,
        ),
        (
            json!({"groupKey": key, "createdBy": "x", "comment": "c".repeat(2000), "endsAt": future}),
            400,
        ),
        (
            json!({"groupKey": key, "createdBy": "x", "endsAt": "tomorrow"}),
            400,
        ),
        (json!({"createdBy": "x", "endsAt": future}), 400),
        (
            json!({"groupKey": "{}:{alertname=\"Nope\"}", "createdBy": "x", "endsAt": future}),
            404,
        ),
        (
            json!({"receiver": "team", "groupLabels": {"alertname": "Nope"}, "createdBy": "x", "endsAt": future}),
            404,
        ),
    ] {
        let (got, text) = post_json(&url, &body);
        assert_eq!(got, code, "{body} → {text}");
        assert!(text.starts_with('"'), "error is not a JSON string: {text}");
    }
    assert_eq!(delete(s.url("/api/v2/ack/nope")).0, 404);

    // By receiver and grouping labels, for 3 s: repeats stop, then resume.
    let id = ack(
        &s,
        &json!({"receiver": "team", "groupLabels": {"alertname": "Hot"},
                "createdBy": "bob", "endsAt": rfc3339(now_ms() + 3_000)}),
    );
    std::thread::sleep(Duration::from_millis(1_500));
    let quiet_from = rx.at("/hook").len();
    std::thread::sleep(Duration::from_millis(1_400));
    assert_eq!(
        rx.at("/hook").len(),
        quiet_from,
        "repeat while acknowledged"
    );
    assert!(
        rx.wait("/hook", quiet_from + 1, 8).len() > quiet_from,
        "repeats did not resume after the acknowledgement expired"
    );
    assert_eq!(get_json(&s.url("/api/v2/acks?active=true")), json!([]));
    let all = get_json(&s.url("/api/v2/acks"));
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["status"]["state"], "expired");
    // Expiring an expired acknowledgement is refused.
    assert_eq!(delete(s.url(&format!("/api/v2/ack/{id}"))).0, 400);

    // Expired by hand: repeats resume.
    let id = ack(
        &s,
        &json!({"groupKey": key, "createdBy": "bob", "endsAt": rfc3339(now_ms() + 3_600_000)}),
    );
    let (code, text) = delete(s.url(&format!("/api/v2/ack/{id}")));
    assert_eq!(code, 200, "{text}");
    assert!(hooks_during(&rx, 5) >= 1, "no repeats after expiring");
    s.stop();
}
