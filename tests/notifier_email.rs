//! Email notifications end to end against a real SMTP server (Python's `aiosmtpd`, with
//! STARTTLS and AUTH required): alerts posted to Strata's Alertmanager API v2 arrive as the
//! message Alertmanager sends — envelope, `To`/`From`/`Subject` and custom headers, a
//! `multipart/alternative` body with the text and HTML parts — and the same alert sent
//! through the Debian `prometheus-alertmanager` with the same configuration arrives as the
//! same message, header by header and part by part. A server without STARTTLS is refused
//! while `require_tls` holds (counted as a failed email notification); implicit TLS works
//! when forced; configurations missing `to` or a smarthost are refused naming the field.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_port, now_ms, reqwest};
use serde_json::{Value, json};
use smtp::{Smtp, header};

/// Links in the messages: Strata and Alertmanager get the same external URL.
const EXTERNAL_URL: &str = "http://alertmanager.example:9093";

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip_reason() -> Option<String> {
    smtp::available().err()
}

fn post_alerts(base: &str, alerts: &Value) -> u16 {
    reqwest::blocking_client()
        .post(
            format!("{base}/api/v2/alerts"),
            alerts.to_string().into_bytes(),
        )
        .header("Content-Type", "application/json")
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn metric(port: u16, series: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .map(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The alert both notifiers get: an annotation and a generator URL that need escaping.
fn alert(path: &str) -> Value {
    json!([{
        "labels": {"alertname": "DiskFull", "instance": "host-1", "team": "ops",
                   "severity": "critical", "path": path},
        "annotations": {"summary": "Disk is full & <critical>", "runbook": "it's \"bad\""},
        "startsAt": strata_grammar::format_rfc3339(now_ms() - 60_000, true),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
    }])
}

/// The notifier configuration: the STARTTLS server as smarthost, AUTH LOGIN/PLAIN, a
/// text part and custom headers; `plain_host` gets alerts with `path="plain"` through an
/// entry of its own (PLAIN only, with an authorization identity).
fn config(smarthost: &str, ca: &Path, plain_host: Option<&str>) -> String {
    let mut c = format!(
        "global:
  smtp_smarthost: '{smarthost}'
  smtp_from: 'Alertmanager <alertmanager@example.org>'
  smtp_hello: strata.test
  smtp_auth_username: {user}
  smtp_auth_password: {pass}
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['path=\"plain\"']
      receiver: mail-plain
receivers:
  - name: mail
    email_configs:
      - to: 'ops@example.org, On Call <oncall@example.org>'
        tls_config:
          ca_file: '{ca}'
        text: |-
          {{{{ .Alerts.Firing | len }}}} firing for {{{{ .GroupLabels.alertname }}}}
          {{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}} at {{{{ .Labels.instance }}}}
          {{{{ end }}}}
        headers:
          X-Team: 'team-{{{{ .CommonLabels.team }}}}'
          Reply-To: noc@example.org
",
        user = smtp::USER,
        pass = smtp::PASSWORD,
        ca = ca.display(),
    );
    c.push_str("  - name: mail-plain\n");
    if let Some(h) = plain_host {
        c.push_str(&format!(
            "    email_configs:
      - to: plain@example.org
        smarthost: '{h}'
        auth_identity: {user}
        tls_config:
          ca_file: '{ca}'
",
            user = smtp::USER,
            ca = ca.display()
        ));
    }
    c
}

fn start_alertmanager(dir: &Path, cfg: &Path) -> Option<(Peer, u16)> {
    let bin = "/usr/bin/prometheus-alertmanager";
    if !Path::new(bin).exists() {
        return None;
    }
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--web.external-url={EXTERNAL_URL}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn alertmanager");
        let mut peer = Peer(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = peer.0.try_wait() {
                break;
            }
            let ok = reqwest::blocking_client()
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                return Some((peer, port));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("prometheus-alertmanager did not start");
}

/// A header's value, or `""`.
fn h(m: &Value, name: &str) -> String {
    header(m, name).unwrap_or_default()
}

/// The `(content type, charset, transfer encoding)` of each part.
fn structure(m: &Value) -> Vec<(String, String, String)> {
    m["parts"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
                    (s("content_type"), s("charset"), s("cte"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn part(m: &Value, content_type: &str) -> String {
    m["parts"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["content_type"] == content_type))
        .and_then(|p| p["body"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn email_arrives_as_alertmanager_sends_it() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = smtp::certificate(dir.path());
    let server = Smtp::start(dir.path(), "starttls", &cert, &key);
    let plain = Smtp::start(dir.path(), "starttls-plain", &cert, &key);
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(&am_file, config(&server.addr(), &ca, Some(&plain.addr())))
        .expect("write config");
    let s = Server::start(
        &dir.path().join("data"),
        &[
            &format!("--alertmanager.config.file={}", am_file.display()),
            &format!("--web.external-url={EXTERNAL_URL}"),
        ],
    );
    assert_eq!(post_alerts(&s.url(""), &alert("main")), 200);
    let got = server.wait(1, 30);
    assert_eq!(got.len(), 1, "no message from Strata");
    let m = &got[0];

    // Envelope, TLS and AUTH as negotiated.
    assert_eq!(m["mail_from"], "alertmanager@example.org");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.org", "oncall@example.org"])
    );
    assert_eq!(m["tls"], true, "STARTTLS was used");
    assert_eq!(m["mech"], "LOGIN", "the server's first mechanism");
    assert_eq!(m["hello"], "strata.test");

    // Headers: Alertmanager's defaults and the configured ones.
    assert_eq!(h(m, "To"), "ops@example.org, On Call <oncall@example.org>");
    assert_eq!(h(m, "From"), "Alertmanager <alertmanager@example.org>");
    assert_eq!(
        h(m, "Subject"),
        "[FIRING:1] DiskFull (host-1 main critical ops)"
    );
    assert_eq!(h(m, "X-Team"), "team-ops");
    assert_eq!(h(m, "Reply-To"), "noc@example.org");
    assert!(h(m, "Message-Id").starts_with('<'), "{m}");
    assert!(!h(m, "Date").is_empty());
    assert_eq!(h(m, "MIME-Version"), "1.0");

    // Body: text first, HTML last, both quoted-printable UTF-8.
    assert_eq!(m["content_type"], "multipart/alternative");
    let qp = |t: &str| {
        (
            t.to_owned(),
            "utf-8".to_owned(),
            "quoted-printable".to_owned(),
        )
    };
    assert_eq!(structure(m), vec![qp("text/plain"), qp("text/html")]);
    // Quoted-printable text has CRLF line breaks (Go's writer makes them too).
    assert_eq!(
        part(m, "text/plain"),
        "1 firing for DiskFull\r\nDisk is full & <critical> at host-1\r\n"
    );
    let html = part(m, "text/html");
    assert!(html.contains("1 alert for"), "{html}");
    assert!(html.contains("alertname=DiskFull"), "{html}");
    assert!(
        html.contains("summary = Disk is full &amp; &lt;critical&gt;"),
        "values escaped as html/template does: {html}"
    );
    assert!(html.contains("runbook = it&#39;s &#34;bad&#34;"), "{html}");
    assert!(
        html.contains(
            "href=\"http://prometheus.example:9090/graph?g0.expr=up&#43;%3D%3D&#43;0&amp;g0.tab=1\""
        ),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"{EXTERNAL_URL}/#/alerts?receiver=mail\"")),
        "{html}"
    );
    assert!(!html.contains("<!--"), "html/template drops comments");

    // The PLAIN-only server: AUTH PLAIN with the authorization identity.
    assert_eq!(post_alerts(&s.url(""), &alert("plain")), 200);
    let p = plain.wait(1, 30);
    assert_eq!(p.len(), 1, "no message through the PLAIN-only server");
    assert_eq!(p[0]["mech"], "PLAIN");
    assert_eq!(p[0]["rcpt_tos"], json!(["plain@example.org"]));
    assert_eq!(h(&p[0], "To"), "plain@example.org");

    // Every registered integration has its counters, used or not.
    let port = s.port;
    assert!(
        metric(
            port,
            "alertmanager_notifications_total{integration=\"email\"}"
        ) >= 2.0
    );
    assert_eq!(
        metric(
            port,
            "alertmanager_notifications_failed_total{integration=\"email\"}"
        ),
        0.0
    );
    for kind in ["webhook", "slack", "pagerduty"] {
        let v = metric(
            port,
            &format!("alertmanager_notifications_total{{integration=\"{kind}\"}}"),
        );
        assert_eq!(v, 0.0, "{kind}");
    }

    // The same alert through Alertmanager, configured the same, to the same server.
    let Some((_am, am_port)) = start_alertmanager(dir.path(), &am_file) else {
        eprintln!("SKIP (comparison): /usr/bin/prometheus-alertmanager is not installed");
        return;
    };
    assert_eq!(
        post_alerts(&format!("http://127.0.0.1:{am_port}"), &alert("main")),
        200
    );
    let got = server.wait(2, 30);
    assert_eq!(got.len(), 2, "no message from Alertmanager");
    let a = &got[1];
    for k in [
        "mail_from",
        "rcpt_tos",
        "tls",
        "mech",
        "hello",
        "content_type",
    ] {
        assert_eq!(m[k], a[k], "{k}");
    }
    for name in [
        "To",
        "From",
        "Subject",
        "X-Team",
        "Reply-To",
        "MIME-Version",
    ] {
        assert_eq!(h(m, name), h(a, name), "header {name}");
    }
    let names = |m: &Value| {
        let mut v: Vec<String> = m["headers"]
            .as_array()
            .map(|hs| {
                hs.iter()
                    .filter_map(|x| x[0].as_str())
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(names(m), names(a), "the same headers");
    assert_eq!(structure(m), structure(a));
    assert_eq!(part(m, "text/plain"), part(a, "text/plain"));
    // Alertmanager 0.25's template links http://schema.org; the current one, https.
    let am_html = part(a, "text/html").replace(
        "itemtype=\"http://schema.org/",
        "itemtype=\"https://schema.org/",
    );
    assert_eq!(html, am_html, "the HTML part");
}

#[test]
fn require_tls_refuses_a_server_without_starttls() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (_ca, cert, key) = smtp::certificate(dir.path());
    let server = Smtp::start(dir.path(), "plain", &cert, &key);
    let cfg = |require_tls: bool| {
        format!(
            "route:\n  receiver: mail\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: mail\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{}'\n        require_tls: {require_tls}\n",
            server.addr()
        )
    };
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(&am_file, cfg(true)).expect("write");
    let s = Server::start(
        &dir.path().join("data"),
        &[
            &format!("--alertmanager.config.file={}", am_file.display()),
            "--web.enable-lifecycle",
        ],
    );
    assert_eq!(post_alerts(&s.url(""), &alert("x")), 200);
    let failed = "alertmanager_notifications_failed_total{integration=\"email\"}";
    assert!(
        common::eventually(30, || metric(s.port, failed) >= 1.0),
        "the notification did not fail"
    );
    assert!(
        metric(
            s.port,
            "alertmanager_notification_requests_failed_total{integration=\"email\"}"
        ) >= 1.0
    );
    assert!(server.messages().is_empty(), "nothing sent in the clear");

    // With require_tls: false the same server gets it, unencrypted and unauthenticated.
    std::fs::write(&am_file, cfg(false)).expect("write");
    let r = reqwest::blocking_client()
        .post(s.url("/-/reload"), Vec::new())
        .send()
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    let got = server.wait(1, 30);
    assert_eq!(got.len(), 1, "not delivered without require_tls");
    assert_eq!(got[0]["tls"], false);
    assert_eq!(h(&got[0], "To"), "ops@example.org");
}

#[test]
fn implicit_tls_when_forced() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = smtp::certificate(dir.path());
    let server = Smtp::start(dir.path(), "implicit", &cert, &key);
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_file,
        format!(
            "route:\n  receiver: mail\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: mail\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{}'\n        force_implicit_tls: true\n        auth_username: {}\n        auth_password: {}\n        tls_config:\n          ca_file: '{}'\n          server_name: localhost\n",
            server.addr(),
            smtp::USER,
            smtp::PASSWORD,
            ca.display()
        ),
    )
    .expect("write");
    let s = Server::start(
        &dir.path().join("data"),
        &[&format!("--alertmanager.config.file={}", am_file.display())],
    );
    assert_eq!(post_alerts(&s.url(""), &alert("x")), 200);
    let got = server.wait(1, 30);
    assert_eq!(got.len(), 1, "not delivered over implicit TLS");
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["mech"], "LOGIN");
}

fn check(dir: &Path, name: &str, text: &str) -> Output {
    let f = dir.join(name);
    std::fs::write(&f, text).expect("write");
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["check", "alertmanager-config"])
        .arg(&f)
        .output()
        .expect("run strata")
}

#[test]
fn email_configs_missing_a_field_are_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = "route:\n  receiver: mail\nreceivers:\n  - name: mail\n    email_configs:\n";
    for (name, entry, want) in [
        (
            "no-to.yml",
            "      - smarthost: 'smtp.example.org:587'\n        from: a@example.org\n",
            "receivers[0].email_configs[0].to: missing to address in email config",
        ),
        (
            "no-smarthost.yml",
            "      - to: ops@example.org\n        from: a@example.org\n",
            "receivers[0].email_configs[0].smarthost: no global SMTP smarthost set",
        ),
        (
            "no-port.yml",
            "      - to: ops@example.org\n        from: a@example.org\n        smarthost: smtp.example.org\n",
            "receivers[0].email_configs[0].smarthost: address smtp.example.org: missing port",
        ),
        (
            "cram-md5.yml",
            "      - to: ops@example.org\n        from: a@example.org\n        smarthost: 'smtp.example.org:25'\n        auth_secret: s\n",
            "receivers[0].email_configs[0].auth_secret: CRAM-MD5 authentication is not supported",
        ),
    ] {
        let o = check(dir.path(), name, &format!("{base}{entry}"));
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(out.contains(want), "{name}: want {want:?}\n got {out}");
    }
    let ok = check(
        dir.path(),
        "ok.yml",
        &format!(
            "global:\n  smtp_smarthost: 'smtp.example.org:587'\n  smtp_from: a@example.org\n{base}      - to: ops@example.org\n"
        ),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

/// An SMTP server that accepts connections and never says a word: each attempt ends at the
/// flush's deadline (the next `group_interval`), counted as a failure, instead of holding
/// the notification pipeline for ever.
#[test]
fn a_server_that_stalls_fails_the_attempt_by_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            // Held open, silent.
            if let Ok(mut v) = keep.lock() {
                v.push(c);
            }
        }
    });
    let dir = tempfile::tempdir().expect("tmp");
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_file,
        format!(
            "route:\n  receiver: mail\n  group_wait: 0s\n  group_interval: 2s\nreceivers:\n  - name: mail\n    email_configs:\n      - to: ops@example.org\n        from: am@example.org\n        smarthost: '{addr}'\n        require_tls: false\n"
        ),
    )
    .expect("write");
    let s = Server::start(
        &dir.path().join("data"),
        &[&format!("--alertmanager.config.file={}", am_file.display())],
    );
    assert_eq!(post_alerts(&s.url(""), &alert("x")), 200);
    let failed = "alertmanager_notifications_failed_total{integration=\"email\"}";
    assert!(
        common::eventually(30, || metric(s.port, failed) >= 1.0),
        "a stalled attempt was never given up"
    );
    assert!(
        held.lock().map(|v| !v.is_empty()).unwrap_or(false),
        "never connected"
    );
}
