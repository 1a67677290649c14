//! The built-in notifier end to end: the Debian `prometheus` sends alerts to Strata as its
//! Alertmanager, Strata groups, silences and resolves them and delivers them to a Slack
//! stand-in and a PagerDuty stand-in (HTTP servers here that refuse payloads not shaped
//! as Slack's and PagerDuty's Events API v2 take them, the shapes Alertmanager sends);
//! silences and the notification log survive a restart without a second page; `amtool`
//! works against Strata; Strata's own rules reach its notifier; bad configurations are
//! refused at start and on reload.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, free_port, poll, reqwest};
use serde_json::{Value, json};
use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    strata_grammar::format_rfc3339(ms, true)
}

fn wait_http(url: &str) -> bool {
    poll(30, || {
        reqwest::blocking_client()
            .get(url.to_owned())
            .send()
            .ok()
            .filter(|r| r.status().as_u16() == 200)
            .map(|_| ())
    })
    .is_some()
}

fn get_json(url: String) -> Value {
    let r = reqwest::blocking_client().get(url).send().expect("GET");
    serde_json::from_str(&r.text()).expect("JSON body")
}

fn post_json(url: String, body: &Value) -> (u16, String) {
    let r = reqwest::blocking_client()
        .post(url, body.to_string().into_bytes())
        .header("Content-Type", "application/json")
        .send()
        .expect("POST");
    (r.status().as_u16(), r.text())
}

/// Attempts seen by the `/flaky` receiver.
static FLAKY: AtomicU64 = AtomicU64::new(0);

/// One received POST.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: String,
    body: Value,
}

/// Stand-ins for Slack, PagerDuty and a webhook: every POST is recorded; Slack and
/// PagerDuty bodies not shaped as those services require are answered 400 and counted.
struct Receivers {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Receivers {
    fn start() -> Receivers {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let (g, r) = (got.clone(), rejected.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (g, r) = (g.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &g, &r));
            }
        });
        Receivers {
            port,
            got,
            rejected,
        }
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

    fn rejected(&self) -> Vec<String> {
        self.rejected.lock().expect("lock").clone()
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Received>>, rejected: &Mutex<Vec<String>>) {
    let Ok(mut w) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut len = 0usize;
        let mut headers = String::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            headers.push_str(&h);
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let verdict = match path.as_str() {
            "/slack" | "/api/chat.postMessage" => check_slack(&body),
            "/pagerduty" => check_pagerduty(&body),
            _ => Ok(()),
        };
        // The Web API: 200 with {"ok": false} without the bot token.
        if path == "/api/chat.postMessage" && verdict.is_ok() {
            let authed = headers
                .to_ascii_lowercase()
                .contains("authorization: bearer xoxb-good");
            let reply = if authed {
                r#"{"ok":true,"channel":"C1","ts":"1.2"}"#
            } else {
                r#"{"ok":false,"error":"invalid_auth"}"#
            };
            if authed {
                got.lock().expect("lock").push(Received {
                    path: path.clone(),
                    headers: headers.to_ascii_lowercase(),
                    body: body.clone(),
                });
            }
            let _ = w.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            );
            continue;
        }
        // A receiver that fails twice with 503 before accepting.
        if path == "/flaky" && FLAKY.fetch_add(1, Ordering::SeqCst) < 2 {
            let _ =
                w.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy");
            continue;
        }
        let (status, reply_body) = match &verdict {
            Ok(()) if path == "/pagerduty" => (
                "202 Accepted",
                r#"{"status":"success","message":"Event processed"}"#,
            ),
            Ok(()) => ("200 OK", "ok"),
            Err(e) => {
                rejected
                    .lock()
                    .expect("lock")
                    .push(format!("{path}: {e}: {body}"));
                ("400 Bad Request", "invalid")
            }
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{reply_body}",
            reply_body.len()
        );
        if verdict.is_ok() {
            got.lock().expect("lock").push(Received {
                path,
                headers: headers.to_ascii_lowercase(),
                body,
            });
        }
        let _ = w.write_all(reply.as_bytes());
    }
}

fn str_field<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{k} is not a string"))
}

/// What Slack accepts from Alertmanager: a channel, maybe a username, and one attachment with title,
/// title_link, text, fallback, callback_id, footer, mrkdwn_in and a colour.
fn check_slack(b: &Value) -> Result<(), String> {
    str_field(b, "channel")?;
    if b.get("username").is_some() {
        str_field(b, "username")?;
    }
    let atts = b["attachments"]
        .as_array()
        .ok_or("attachments is not a list")?;
    let [a] = atts.as_slice() else {
        return Err("not exactly one attachment".into());
    };
    for k in [
        "title",
        "title_link",
        "text",
        "fallback",
        "callback_id",
        "footer",
    ] {
        str_field(a, k)?;
    }
    if !matches!(str_field(a, "color")?, "danger" | "good") {
        return Err("color is neither danger nor good".into());
    }
    if a["mrkdwn_in"] != json!(["fallback", "pretext", "text"]) {
        return Err("mrkdwn_in".into());
    }
    Ok(())
}

/// What PagerDuty's Events API v2 accepts: routing_key, event_action, a 64-hex dedup_key,
/// and a payload with summary, source, a known severity and custom_details.
fn check_pagerduty(b: &Value) -> Result<(), String> {
    str_field(b, "routing_key")?;
    if !matches!(str_field(b, "event_action")?, "trigger" | "resolve") {
        return Err("event_action".into());
    }
    let key = str_field(b, "dedup_key")?;
    if key.len() != 64 || !key.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err("dedup_key is not 64 hex digits".into());
    }
    str_field(b, "client")?;
    str_field(b, "client_url")?;
    let p = &b["payload"];
    str_field(p, "summary")?;
    str_field(p, "source")?;
    if !matches!(
        str_field(p, "severity")?,
        "critical" | "error" | "warning" | "info"
    ) {
        return Err("severity".into());
    }
    let d = p["custom_details"].as_object().ok_or("custom_details")?;
    for k in ["firing", "resolved", "num_firing", "num_resolved"] {
        d.get(k)
            .and_then(Value::as_str)
            .ok_or(format!("custom_details.{k}"))?;
    }
    Ok(())
}

/// Remote-writes `test_value{instance}` = the current value every 500 ms until dropped.
struct Pusher {
    stop: Arc<AtomicBool>,
    value: Arc<AtomicU64>,
}

impl Pusher {
    fn start(port: u16, value: f64) -> Pusher {
        let p = Pusher {
            stop: Arc::new(AtomicBool::new(false)),
            value: Arc::new(AtomicU64::new(value.to_bits())),
        };
        let (stop, v) = (p.stop.clone(), p.value.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let val = f64::from_bits(v.load(Ordering::Relaxed));
                let t = now_ms();
                let req = WriteRequest {
                    timeseries: ["db-1", "db-2"]
                        .iter()
                        .map(|i| TimeSeries {
                            labels: [("__name__", "test_value"), ("job", "db"), ("instance", i)]
                                .iter()
                                .map(|(n, v)| Label {
                                    name: (*n).into(),
                                    value: (*v).into(),
                                })
                                .collect(),
                            samples: vec![Sample {
                                timestamp: t,
                                value: val,
                            }],
                        })
                        .collect(),
                    metadata: vec![],
                };
                let _ = common::post_write(port, encode(&req));
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        p
    }

    fn set(&self, v: f64) {
        self.value.store(v.to_bits(), Ordering::Relaxed);
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn am_config(dir: &Path, body: &str) -> String {
    let p = dir.join("alertmanager.yml");
    std::fs::write(&p, body).expect("write alertmanager config");
    format!("--alertmanager.config.file={}", p.display())
}

fn titles(v: &[Received]) -> Vec<String> {
    v.iter()
        .map(|r| {
            r.body["attachments"][0]["title"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn prometheus_alerts_reach_slack_and_pagerduty_grouped_silenced_and_resolved() {
    let prom_bin = "/usr/bin/prometheus";
    if !Path::new(prom_bin).exists() {
        eprintln!("SKIP: prometheus is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let am = am_config(
        dir.path(),
        &format!(
            r#"route:
  receiver: slack
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: pagerduty
      continue: true
    - receiver: slack
receivers:
  - name: slack
    slack_configs:
      - api_url: {slack}
        channel: '#db-oncall'
        username: strata
        send_resolved: true
  - name: pagerduty
    pagerduty_configs:
      - routing_key: test-routing-key
        url: {pd}
        severity: critical
"#,
            slack = rx.url("/slack"),
            pd = rx.url("/pagerduty"),
        ),
    );
    let s = Server::start(&dir.path().join("strata"), &[&am]);

    // A silence made before the alert exists.
    let now = now_ms();
    let (code, body) = post_json(
        s.url("/api/v2/silences"),
        &json!({"matchers": [{"name": "alertname", "value": "Noisy", "isRegex": false, "isEqual": true}],
                "startsAt": rfc3339(now), "endsAt": rfc3339(now + 3_600_000),
                "createdBy": "test", "comment": "maintenance"}),
    );
    assert_eq!(code, 200, "{body}");
    let sid = serde_json::from_str::<Value>(&body).expect("json")["silenceID"]
        .as_str()
        .expect("silenceID")
        .to_owned();

    // The Debian prometheus evaluates the rules and sends the alerts to Strata.
    let pdir = dir.path().join("prom");
    std::fs::create_dir_all(&pdir).expect("mkdir");
    std::fs::write(
        pdir.join("rules.yml"),
        r#"groups:
  - name: db
    interval: 1s
    rules:
      - alert: DiskFull
        expr: test_value > 10
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} is full"
      - alert: Noisy
        expr: test_value > 10
"#,
    )
    .expect("write rules");
    std::fs::write(
        pdir.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
            s.port
        ),
    )
    .expect("write config");
    let pport = free_port();
    let _prom = Peer(
        Command::new(prom_bin)
            .arg(format!(
                "--config.file={}",
                pdir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                pdir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--rules.alert.resend-delay=1s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    assert!(
        wait_http(&format!("http://127.0.0.1:{pport}/-/ready")),
        "prometheus did not start"
    );
    let pusher = Pusher::start(pport, 42.0);

    // Firing: both instances in one notification per receiver (grouped by alertname).
    let pd = poll(30, || {
        rx.at("/pagerduty")
            .into_iter()
            .find(|r| r.body["payload"]["custom_details"]["num_firing"] == "2")
    })
    .unwrap_or_else(|| {
        panic!(
            "no PagerDuty trigger with both alerts; got {:?}; refused {:?}; strata holds {}",
            rx.got.lock().expect("lock"),
            rx.rejected(),
            get_json(s.url("/api/v2/alerts"))
        )
    });
    assert_eq!(pd.body["event_action"], "trigger");
    assert_eq!(pd.body["routing_key"], "test-routing-key");
    assert_eq!(pd.body["payload"]["severity"], "critical");
    assert!(
        pd.body["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("[FIRING:2] DiskFull"),
        "{}",
        pd.body
    );
    assert!(
        pd.headers.contains("user-agent: alertmanager/"),
        "{}",
        pd.headers
    );
    let slack = poll(30, || {
        rx.at("/slack")
            .into_iter()
            .find(|r| titles(std::slice::from_ref(r))[0].starts_with("[FIRING:2] DiskFull"))
    })
    .expect("no Slack message with both alerts");
    assert_eq!(slack.body["channel"], "#db-oncall");
    assert_eq!(slack.body["username"], "strata");
    assert_eq!(slack.body["attachments"][0]["color"], "danger");
    assert!(
        slack.headers.contains("content-type: application/json"),
        "{}",
        slack.headers
    );

    // The silenced alert is held, shown as suppressed, never delivered.
    let held = poll(20, || {
        let v = get_json(s.url("/api/v2/alerts?filter=alertname%3D%22Noisy%22"));
        (v.as_array().map(Vec::len) == Some(2)).then_some(v)
    })
    .expect("Noisy alerts not held by the notifier");
    assert_eq!(held[0]["status"]["state"], "suppressed", "{held}");
    assert_eq!(held[0]["status"]["silencedBy"], json!([sid]));
    let groups = get_json(s.url("/api/v2/alerts/groups"));
    assert!(
        groups.as_array().is_some_and(|g| g
            .iter()
            .any(|g| g["labels"] == json!({"alertname": "DiskFull"})
                && g["receiver"]["name"] == "pagerduty"
                && g["alerts"].as_array().map(Vec::len) == Some(2))),
        "{groups}"
    );

    // Resolved: Slack gets the resolved message, PagerDuty a resolve with the same key.
    pusher.set(0.0);
    let resolve = poll(30, || {
        rx.at("/pagerduty")
            .into_iter()
            .find(|r| r.body["event_action"] == "resolve")
    })
    .expect("no PagerDuty resolve");
    assert_eq!(resolve.body["dedup_key"], pd.body["dedup_key"]);
    let good = poll(30, || {
        rx.at("/slack")
            .into_iter()
            .find(|r| r.body["attachments"][0]["color"] == "good")
    })
    .expect("no resolved Slack message");
    assert!(
        titles(std::slice::from_ref(&good))[0].starts_with("[RESOLVED] DiskFull"),
        "{}",
        good.body
    );
    drop(pusher);

    // One trigger for the group (no re-page while it fired), nothing for the silenced
    // alert, no payload refused by the stand-ins.
    let triggers = rx
        .at("/pagerduty")
        .iter()
        .filter(|r| r.body["event_action"] == "trigger")
        .count();
    assert!(triggers <= 2, "re-paged: {triggers} triggers");
    let all: Vec<Received> = rx.got.lock().expect("lock").clone();
    assert!(
        !all.iter().any(|r| r.body.to_string().contains("Noisy")),
        "silenced alert delivered"
    );
    assert!(rx.rejected().is_empty(), "{:?}", rx.rejected());
    let metrics = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("alertmanager_notifications_total{integration=\"pagerduty\"}"),
        "notifier metrics missing"
    );
    s.stop();
}

#[test]
fn silences_and_the_notification_log_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let am = am_config(
        dir.path(),
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 500ms\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n",
            rx.url("/hook")
        ),
    );
    let data = dir.path().join("data");
    let s = Server::start(&data, &[&am]);
    let alert = |instance: &str| {
        json!([{"labels": {"alertname": "Down", "instance": instance},
                "annotations": {"summary": "down"},
                "startsAt": rfc3339(now_ms() - 1_000),
                "endsAt": rfc3339(now_ms() + 3_600_000),
                "generatorURL": "http://prometheus.example/graph"}])
    };
    assert_eq!(post_json(s.url("/api/v2/alerts"), &alert("a")).0, 200);
    let first = rx.wait("/hook", 1, 15);
    assert_eq!(first.len(), 1, "no notification");
    assert_eq!(first[0].body["groupKey"], "{}:{alertname=\"Down\"}");
    let now = now_ms();
    let (code, body) = post_json(
        s.url("/api/v2/silences"),
        &json!({"matchers": [{"name": "instance", "value": "z.*", "isRegex": true}],
                "startsAt": rfc3339(now), "endsAt": rfc3339(now + 3_600_000),
                "createdBy": "test", "comment": "kept across restarts"}),
    );
    assert_eq!(code, 200, "{body}");
    let sid = serde_json::from_str::<Value>(&body).expect("json")["silenceID"]
        .as_str()
        .expect("id")
        .to_owned();
    s.stop();

    let s = Server::start(&data, &[&am]);
    let sil = get_json(s.url(&format!("/api/v2/silence/{sid}")));
    assert_eq!(sil["status"]["state"], "active", "{sil}");
    assert_eq!(sil["comment"], "kept across restarts");
    assert_eq!(sil["matchers"][0]["isRegex"], true);
    // Prometheus re-sends the same firing alert: no second page.
    assert_eq!(post_json(s.url("/api/v2/alerts"), &alert("a")).0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rx.at("/hook").len(), 1, "paged again after the restart");
    // A new alert in the group is notified, with the old one.
    assert_eq!(post_json(s.url("/api/v2/alerts"), &alert("b")).0, 200);
    let got = rx.wait("/hook", 2, 15);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["alerts"].as_array().map(Vec::len), Some(2));
    // A silenced new alert is not.
    assert_eq!(post_json(s.url("/api/v2/alerts"), &alert("zz")).0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rx.at("/hook").len(), 2, "silenced alert notified");
    s.stop();
}

#[test]
fn amtool_adds_queries_and_expires_silences() {
    let amtool = "/usr/bin/amtool";
    if !Path::new(amtool).exists() {
        eprintln!("SKIP: amtool is not installed (.ci/run installs prometheus-alertmanager)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let am = am_config(
        dir.path(),
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    );
    let s = Server::start(&dir.path().join("data"), &[&am]);
    let url = format!("--alertmanager.url=http://127.0.0.1:{}", s.port);
    let run = |args: &[&str]| {
        let o = Command::new(amtool)
            .arg(&url)
            .args(args)
            .output()
            .expect("run amtool");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "silence",
        "add",
        "alertname=Down",
        "env=~prod|staging",
        "--comment=deploy",
        "--author=ops",
        "--duration=1h",
    ]);
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    assert!(id.len() >= 8, "{out}");
    let (ok, out, err) = run(&["silence", "query", "-o", "json", "alertname=Down"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["comment"], "deploy");
    assert_eq!(list[0]["createdBy"], "ops");
    let (ok, _, err) = run(&["alert", "add", "alertname=Down", "env=prod"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "alert",
        "query",
        "-o",
        "json",
        "--silenced",
        "alertname=Down",
    ]);
    assert!(ok, "{err}");
    let alerts: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]), "{alerts}");
    let (ok, _, err) = run(&["silence", "expire", &id]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["silence", "query", "-q"]);
    assert!(ok && !out.contains(&id), "still active: {out}");
    let (ok, out, err) = run(&["config", "show"]);
    assert!(ok && out.contains("route:"), "{out}{err}");
    s.stop();
}

#[test]
fn strata_rules_reach_the_built_in_notifier_and_bad_configs_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let good = format!(
        "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n",
        rx.url("/hook")
    );
    let am = am_config(dir.path(), &good);
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n        labels:\n          severity: info\n",
    )
    .expect("write rules");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: c1\nrule_files: [rules.yml]\n",
    )
    .expect("write config");
    let cfg_flag = format!("--config.file={}", cfg.display());

    // A broken notifier configuration stops the start, naming file, line and field.
    let bad_path = dir.path().join("bad.yml");
    std::fs::write(
        &bad_path,
        "route:\n  receiver: hook\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: not a url\n",
    )
    .expect("write bad");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(&cfg_flag)
        .arg(format!("--alertmanager.config.file={}", bad_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("d0").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .output()
        .expect("run strata");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:6"), "{err}");

    let s = Server::start(
        &dir.path().join("data"),
        &[&cfg_flag, &am, "--web.enable-lifecycle"],
    );
    let got = rx.wait("/hook", 1, 20);
    assert!(!got.is_empty(), "rule alert not delivered");
    let a = &got[0].body["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "Always");
    assert_eq!(a["labels"]["cluster"], "c1", "external labels added");
    assert_eq!(got[0].body["receiver"], "hook");

    // A broken file on reload is refused; the running notifier keeps working.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: nobody\nreceivers:\n  - name: hook\n",
    )
    .expect("write broken");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 500);
    assert!(r.text().contains("alertmanager.yml"), "{}", r.text());
    let st = get_json(s.url("/api/v2/status"));
    assert!(
        st["config"]["original"]
            .as_str()
            .unwrap_or("")
            .contains("webhook_configs"),
        "{st}"
    );
    // A good file on reload takes effect.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        good.replace("name: hook", "name: renamed")
            .replace("receiver: hook", "receiver: renamed"),
    )
    .expect("write good");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    let names = get_json(s.url("/api/v2/receivers"));
    assert_eq!(names, json!([{"name": "renamed"}]));
    s.stop();
}

#[test]
fn api_v2_refuses_bad_input_and_answers_503_without_a_notifier() {
    let dir = tempfile::tempdir().expect("tmp");
    let off = Server::start(&dir.path().join("off"), &[]);
    let r = reqwest::blocking_client()
        .get(off.url("/api/v2/alerts"))
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().contains("--alertmanager.config.file"));
    off.stop();

    let am = am_config(
        dir.path(),
        "route:\n  receiver: r\nreceivers:\n  - name: r\n",
    );
    let s = Server::start(&dir.path().join("on"), &[&am]);
    let cases = [
        ("/api/v2/alerts", "not json".to_owned()),
        ("/api/v2/alerts", json!([{"labels": {}}]).to_string()),
        (
            "/api/v2/alerts",
            json!([{"labels": {"a": "b"}, "startsAt": rfc3339(now_ms()), "endsAt": rfc3339(now_ms() - 60_000)}])
                .to_string(),
        ),
        (
            "/api/v2/silences",
            json!({"matchers": [], "startsAt": rfc3339(now_ms()), "endsAt": rfc3339(now_ms() + 60_000), "createdBy": "x", "comment": "y"})
                .to_string(),
        ),
        (
            "/api/v2/silences",
            json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}], "startsAt": rfc3339(now_ms()), "endsAt": rfc3339(now_ms() + 60_000), "createdBy": "x", "comment": "y"})
                .to_string(),
        ),
    ];
    for (path, body) in cases {
        let r = reqwest::blocking_client()
            .post(s.url(path), body.clone().into_bytes())
            .header("Content-Type", "application/json")
            .send()
            .expect("POST");
        assert_eq!(r.status().as_u16(), 400, "{path} {body}: {}", r.text());
    }
    let r = reqwest::blocking_client()
        .get(s.url("/api/v2/alerts?filter=%7Bbroken"))
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::blocking_client()
        .request("DELETE", s.url("/api/v2/silence/nope"), Vec::new())
        .send()
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        get_json(s.url("/api/v2/alerts")),
        json!([]),
        "nothing stored from bad input"
    );
    s.stop();
}

fn metric(port: u16, series: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .expect("metrics")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

#[test]
fn slack_web_api_needs_the_bot_token_and_5xx_is_retried() {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receivers::start();
    let am = am_config(
        dir.path(),
        &format!(
            r#"route:
  receiver: bot
  group_wait: 0s
  group_interval: 1s
  routes:
    - matchers: [alertname="Flaky"]
      receiver: flaky
    - matchers: [alertname="Unauthed"]
      receiver: unauthed
receivers:
  - name: bot
    slack_configs:
      - api_url: {api}
        channel: '#ops'
        http_config:
          authorization:
            credentials: xoxb-good
  - name: unauthed
    slack_configs:
      - api_url: {api}
        channel: '#ops'
        http_config:
          authorization:
            credentials: xoxb-bad
  - name: flaky
    webhook_configs:
      - url: {flaky}
"#,
            api = rx.url("/api/chat.postMessage"),
            flaky = rx.url("/flaky"),
        ),
    );
    let s = Server::start(&dir.path().join("data"), &[&am]);
    let alert = |name: &str| {
        json!([{"labels": {"alertname": name},
                "startsAt": rfc3339(now_ms()), "endsAt": rfc3339(now_ms() + 600_000)}])
    };
    for name in ["Bot", "Unauthed", "Flaky"] {
        assert_eq!(post_json(s.url("/api/v2/alerts"), &alert(name)).0, 200);
    }
    let got = rx.wait("/api/chat.postMessage", 1, 15);
    assert_eq!(got.len(), 1, "bot-token message not delivered");
    assert_eq!(got[0].body["channel"], "#ops");
    assert!(
        got[0].body["attachments"][0]["title"]
            .as_str()
            .unwrap_or("")
            == "[FIRING:1]  (Bot)",
        "{}",
        got[0].body
    );
    // The flaky webhook gets it on the third attempt.
    let flaky = rx.wait("/flaky", 1, 20);
    assert_eq!(flaky.len(), 1, "not retried to success");
    assert!(FLAKY.load(Ordering::SeqCst) >= 3);
    let failed_requests = poll(10, || {
        let v = metric(
            s.port,
            "alertmanager_notification_requests_failed_total{integration=\"webhook\"}",
        );
        (v >= 2.0).then_some(v)
    });
    assert!(failed_requests.is_some(), "503s not counted");
    // {"ok": false} from the Web API is a failed notification.
    let failed = poll(10, || {
        let v = metric(
            s.port,
            "alertmanager_notifications_failed_total{integration=\"slack\"}",
        );
        (v >= 1.0).then_some(v)
    });
    assert!(failed.is_some(), "invalid_auth not counted as a failure");
    s.stop();
}
