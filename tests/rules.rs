//! Rules end to end over HTTP: rule files loaded by the `strata` binary, alerts through
//! pending → firing → resolved in `/api/v1/alerts` and `/api/v1/rules`, `ALERTS` and
//! recording-rule series, delivery to the real Debian `prometheus-alertmanager` (whose
//! webhook posts to a receiver in this test), the same results as the Debian `prometheus`
//! on the same remote-written data, `for` state restored after a restart, and reloads.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, enc, free_port, poll, reqwest};
use serde_json::Value;
use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_http(url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::blocking_client().get(url.to_owned()).send()
            && r.status().as_u16() == 200
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Remote-writes one sample per series at `t` to `port`.
fn push(port: u16, series: &[(Vec<(&str, &str)>, f64)], t: i64) -> u16 {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, v)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: vec![Sample {
                    timestamp: t,
                    value: *v,
                }],
            })
            .collect(),
        metadata: vec![],
    };
    common::post_write(port, encode(&req)).unwrap_or(0)
}

fn get_json(url: String) -> Value {
    let r = reqwest::blocking_client().get(url).send().expect("GET");
    serde_json::from_str(&r.text()).expect("JSON body")
}

fn query(port: u16, q: &str) -> Vec<Value> {
    let j = get_json(format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        enc(q)
    ));
    j["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn alerts(port: u16) -> Vec<Value> {
    let j = get_json(format!("http://127.0.0.1:{port}/api/v1/alerts"));
    j["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

/// Pushes `input{job, instance}` = the current value every 500 ms until dropped.
struct Pusher {
    stop: Arc<AtomicBool>,
    value: Arc<AtomicU64>,
    port: Arc<AtomicU16>,
}

impl Pusher {
    fn start(port: u16, value: f64) -> Pusher {
        let p = Pusher {
            stop: Arc::new(AtomicBool::new(false)),
            value: Arc::new(AtomicU64::new(value.to_bits())),
            port: Arc::new(AtomicU16::new(port)),
        };
        let (stop, v, port) = (p.stop.clone(), p.value.clone(), p.port.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let val = f64::from_bits(v.load(Ordering::Relaxed));
                let labels = vec![("__name__", "input"), ("job", "api"), ("instance", "a:80")];
                push(port.load(Ordering::Relaxed), &[(labels, val)], now_ms());
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

/// An HTTP server recording every POST body (the Alertmanager webhook's destination).
struct HookReceiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl HookReceiver {
    fn start() -> HookReceiver {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let b = b.clone();
                std::thread::spawn(move || serve(conn, b));
            }
        });
        HookReceiver { port, bodies }
    }

    fn find(&self, status: &str) -> Option<Value> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .find(|j| j["status"] == status)
            .cloned()
    }
}

fn serve(conn: TcpStream, bodies: Arc<Mutex<Vec<Value>>>) {
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
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
        if let Ok(j) = serde_json::from_slice::<Value>(&body) {
            bodies.lock().expect("lock").push(j);
        }
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

const RULES: &str = r#"groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:input:sum
        expr: sum by (job) (input)
        labels:
          recorded_by: e2e
      - alert: InputHigh
        expr: input > 10
        for: 2s
        labels:
          severity: page
          team: "{{ $labels.job }}-oncall"
        annotations:
          summary: "Value {{ $value }} on {{ $labels.instance }}"
          pretty: "{{ $value | humanize }}"
"#;

fn write_config(dir: &Path, rules: &str, am_port: Option<u16>) -> String {
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
    let mut cfg = "global:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: test\nrule_files:\n  - rules.yml\n".to_owned();
    if let Some(p) = am_port {
        cfg.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{p}']\n"
        ));
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, cfg).expect("write config");
    format!("--config.file={}", path.display())
}

#[test]
fn alerts_go_pending_firing_resolved_and_reach_the_real_alertmanager() {
    let am_bin = "/usr/bin/prometheus-alertmanager";
    if !Path::new(am_bin).exists() {
        eprintln!("SKIP: prometheus-alertmanager is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let hook = HookReceiver::start();
    let am_port = free_port();
    let am_cfg = dir.path().join("am.yml");
    std::fs::write(
        &am_cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n        send_resolved: true\n",
            hook.port
        ),
    )
    .expect("write am config");
    let _am = Peer(
        Command::new(am_bin)
            .arg(format!("--config.file={}", am_cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    assert!(
        wait_http(&format!("http://127.0.0.1:{am_port}/-/ready")),
        "alertmanager did not start"
    );
    let cfg = write_config(dir.path(), RULES, Some(am_port));
    let data = dir.path().join("data");
    let s = Server::start(
        &data,
        &[&cfg, "--web.external-url=http://strata.example:9090/"],
    );
    let pusher = Pusher::start(s.port, 42.0);

    // Pending first, with expanded labels and annotations and Go's %e value.
    let first = poll(15, || alerts(s.port).into_iter().next()).expect("alert never appeared");
    assert_eq!(first["state"], "pending", "{first}");
    assert_eq!(first["value"], "4.2e+01");
    assert_eq!(
        first["labels"],
        serde_json::json!({"alertname": "InputHigh", "instance": "a:80", "job": "api", "severity": "page", "team": "api-oncall"})
    );
    assert_eq!(
        first["annotations"],
        serde_json::json!({"summary": "Value 42 on a:80", "pretty": "42"})
    );
    let firing = poll(10, || {
        alerts(s.port).into_iter().find(|a| a["state"] == "firing")
    })
    .expect("alert never fired");
    assert_eq!(firing["activeAt"], first["activeAt"], "activeAt is stable");

    // The rules API.
    let j = get_json(s.url("/api/v1/rules"));
    let g = &j["data"]["groups"][0];
    assert_eq!(g["name"], "e2e");
    assert_eq!(g["interval"], 1.0);
    assert!(g["file"].as_str().unwrap_or("").ends_with("rules.yml"));
    let rec = &g["rules"][0];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["query"], "sum by (job) (input)");
    assert_eq!(rec["labels"], serde_json::json!({"recorded_by": "e2e"}));
    assert_eq!(rec["health"], "ok");
    let al = &g["rules"][1];
    assert_eq!(al["type"], "alerting");
    assert_eq!(al["state"], "firing");
    assert_eq!(al["duration"], 2.0);
    assert_eq!(
        al["labels"]["team"], "{{ $labels.job }}-oncall",
        "raw labels"
    );
    assert_eq!(al["alerts"].as_array().map(Vec::len), Some(1));
    let only_rec = get_json(s.url("/api/v1/rules?type=record"));
    assert_eq!(
        only_rec["data"]["groups"][0]["rules"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let bad = reqwest::blocking_client()
        .get(s.url("/api/v1/rules?type=bogus"))
        .send()
        .expect("GET");
    assert_eq!(bad.status().as_u16(), 400);

    // Series written by the rules.
    let rec = query(s.port, "job:input:sum");
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0]["metric"]["recorded_by"], "e2e");
    assert_eq!(rec[0]["value"][1], "42");
    let al = query(s.port, "ALERTS");
    assert_eq!(al.len(), 1, "{al:?}");
    assert_eq!(al[0]["metric"]["alertstate"], "firing");
    assert_eq!(al[0]["value"][1], "1");
    let fs = query(s.port, "ALERTS_FOR_STATE");
    assert_eq!(fs.len(), 1, "{fs:?}");

    // The Alertmanager got it, with the external label and Prometheus's generatorURL.
    let note = poll(15, || hook.find("firing")).expect("no firing notification");
    let a = &note["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "InputHigh");
    assert_eq!(a["labels"]["cluster"], "test", "external labels are added");
    assert_eq!(a["annotations"]["summary"], "Value 42 on a:80");
    assert_eq!(
        a["generatorURL"],
        "http://strata.example:9090/graph?g0.expr=input+%3E+10&g0.tab=1"
    );
    let am_alerts = get_json(format!("http://127.0.0.1:{am_port}/api/v2/alerts"));
    assert_eq!(am_alerts.as_array().map(Vec::len), Some(1), "{am_alerts}");

    // Below the threshold: resolved everywhere.
    pusher.set(0.0);
    poll(10, || alerts(s.port).is_empty().then_some(())).expect("alert never resolved");
    let al = query(s.port, "ALERTS");
    assert!(al.is_empty(), "ALERTS is stale after resolution: {al:?}");
    let note = poll(15, || hook.find("resolved")).expect("no resolved notification");
    assert_eq!(note["alerts"][0]["status"], "resolved");
    drop(pusher);
    s.stop();
}

#[test]
fn firing_state_survives_a_restart_and_groups_survive_a_reload() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = RULES.replace("for: 2s", "for: 8s");
    let cfg = write_config(dir.path(), &rules, None);
    let data = dir.path().join("data");
    let flags = [
        cfg.as_str(),
        "--rules.alert.for-grace-period=1s",
        "--web.enable-lifecycle",
    ];
    let s = Server::start(&data, &flags);
    let pusher = Pusher::start(s.port, 42.0);
    let firing = poll(20, || {
        alerts(s.port).into_iter().find(|a| a["state"] == "firing")
    })
    .expect("alert never fired");
    s.stop();

    let s = Server::start(&data, &flags);
    let ready = Instant::now();
    pusher.port.store(s.port, Ordering::Relaxed);
    let again = poll(15, || {
        alerts(s.port).into_iter().find(|a| a["state"] == "firing")
    })
    .expect("alert never fired after the restart");
    assert!(
        ready.elapsed() < Duration::from_secs(6),
        "`for: 8s` restarted from zero: firing {:?} after the restart",
        ready.elapsed()
    );
    // ALERTS_FOR_STATE keeps activeAt in whole seconds, so the restored one is truncated,
    // as in Prometheus.
    let secs = |v: &Value| {
        v.as_str()
            .unwrap_or("")
            .chars()
            .take(19)
            .collect::<String>()
    };
    assert_eq!(
        secs(&again["activeAt"]),
        secs(&firing["activeAt"]),
        "activeAt restored"
    );

    // Reload with one more group: the firing alert keeps its state.
    let more = format!(
        "{rules}  - name: extra\n    interval: 1s\n    rules:\n      - record: extra:input:max\n        expr: max(input)\n"
    );
    std::fs::write(dir.path().join("rules.yml"), more).expect("rewrite rules");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    let j = get_json(s.url("/api/v1/rules"));
    assert_eq!(j["data"]["groups"].as_array().map(Vec::len), Some(2));
    let after = alerts(s.port);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["state"], "firing");
    assert_eq!(after[0]["activeAt"], again["activeAt"]);

    // A broken rule file on reload: 500 naming file and line, the running rules stay.
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: broken\n    rules:\n      - record: x\n        expr: sum(\n",
    )
    .expect("rewrite rules");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 500);
    assert!(
        r.text().contains("rules.yml:4:"),
        "error names file and line: {}",
        r.text()
    );
    let j = get_json(s.url("/api/v1/rules"));
    assert_eq!(j["data"]["groups"].as_array().map(Vec::len), Some(2));

    // A reload that removes the recording rule from its group: its series goes stale.
    assert_eq!(query(s.port, "job:input:sum").len(), 1);
    let without = rules.replace(
        "      - record: job:input:sum\n        expr: sum by (job) (input)\n        labels:\n          recorded_by: e2e\n",
        "",
    );
    assert_ne!(without, rules);
    std::fs::write(dir.path().join("rules.yml"), without).expect("rewrite rules");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    assert!(
        query(s.port, "job:input:sum").is_empty(),
        "a removed rule's series is stale at once"
    );
    drop(pusher);
    s.stop();
}

/// The same rule file and data on the Debian `prometheus` and on strata give the same
/// `ALERTS` series and recording-rule values.
#[test]
fn same_alerts_and_recordings_as_prometheus() {
    let prom_bin = "/usr/bin/prometheus";
    if !Path::new(prom_bin).exists() {
        eprintln!("SKIP: prometheus is not installed (.ci/run installs it)");
        return;
    }
    let rules = r#"groups:
  - name: compare
    interval: 1s
    rules:
      - record: job:value:sum
        expr: sum by (job) (test_value)
      - record: instance:value:share
        expr: test_value / on (job) group_left sum by (job) (test_value)
        labels:
          kind: share
      - alert: ValueHigh
        expr: test_value > 10
        labels:
          level: "{{ if gt $value 50.0 }}high{{ else }}mid{{ end }}"
      - alert: ValueHighForAWhile
        expr: test_value > 10
        for: 3s
      - alert: ValueLow
        expr: test_value < 5
        for: 1h
      - alert: JobTotal
        expr: sum by (job) (test_value) > 50
        labels:
          job: "{{ $labels.job }}-total"
"#;
    let sdir = tempfile::tempdir().expect("tmp");
    let pdir = tempfile::tempdir().expect("tmp");
    let scfg = write_config(sdir.path(), rules, None);
    let pcfg = write_config(pdir.path(), rules, None);
    let s = Server::start(&sdir.path().join("data"), &[&scfg]);
    let pport = free_port();
    let _prom = Peer(
        Command::new(prom_bin)
            .arg(&pcfg)
            .arg(format!(
                "--storage.tsdb.path={}",
                pdir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    assert!(
        wait_http(&format!("http://127.0.0.1:{pport}/-/ready")),
        "prometheus did not start"
    );
    let series: Vec<(Vec<(&str, &str)>, f64)> = vec![
        (
            vec![("__name__", "test_value"), ("job", "a"), ("instance", "1")],
            42.0,
        ),
        (
            vec![("__name__", "test_value"), ("job", "a"), ("instance", "2")],
            3.0,
        ),
        (
            vec![("__name__", "test_value"), ("job", "b"), ("instance", "1")],
            70.0,
        ),
        (
            vec![("__name__", "test_value"), ("job", "b"), ("instance", "2")],
            12.5,
        ),
    ];
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let t = now_ms();
        assert_eq!(push(s.port, &series, t) / 100, 2);
        assert_eq!(push(pport, &series, t) / 100, 2);
        std::thread::sleep(Duration::from_millis(500));
    }
    let norm = |v: Vec<Value>, with_value: bool| {
        let mut out: Vec<String> = v
            .iter()
            .map(|s| {
                if with_value {
                    format!("{} {}", s["metric"], s["value"][1])
                } else {
                    s["metric"].to_string()
                }
            })
            .collect();
        out.sort();
        out
    };
    for (q, with_value) in [
        ("ALERTS", true),
        ("ALERTS_FOR_STATE", false),
        ("job:value:sum", true),
        ("instance:value:share", true),
        ("count by (alertname, alertstate) (ALERTS)", true),
    ] {
        let ours = norm(query(s.port, q), with_value);
        let theirs = norm(query(pport, q), with_value);
        assert!(!theirs.is_empty(), "prometheus has no {q}");
        assert_eq!(ours, theirs, "{q}");
    }
    let ours = alerts(s.port).len();
    let theirs = alerts(pport).len();
    assert_eq!(ours, theirs, "/api/v1/alerts count");
    s.stop();
}
