//! The HTTP receivers beyond webhook/Slack/PagerDuty end to end: alerts posted to Strata's
//! Alertmanager API v2 reach stand-ins for Microsoft Teams (workflow webhook), Telegram's
//! Bot API, Discord, OpsGenie, Webex and Google Chat (a std `TcpListener` here recording
//! every request) with the method, path, headers and JSON payload Alertmanager sends —
//! Adaptive Card, `sendMessage` strings, embed colours, `GenieKey` create/update/close by
//! alias, `markdown`/`roomId`, threaded `{"text"}` — and resolved alerts follow
//! `send_resolved`. Bad entries are refused at load naming the field.

mod common;
#[path = "common/http_stub.rs"]
mod http_stub;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Server, eventually, now_ms, reqwest};
use serde_json::{Value, json};

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Got {
    method: String,
    /// Path and query.
    target: String,
    /// The header block, lower-cased.
    headers: String,
    body: Value,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    }
}

/// Records every request; answers Telegram's paths as the Bot API does.
struct StandIn {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl StandIn {
    fn start() -> StandIn {
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
        StandIn { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn under(&self, prefix: &str) -> Vec<Got> {
        let g = self.got.lock().expect("lock");
        g.iter()
            .filter(|r| r.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn wait(&self, prefix: &str, n: usize) -> Vec<Got> {
        eventually(30, || self.under(prefix).len() >= n);
        self.under(prefix)
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Got>>) {
    let Ok(mut w) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while let Some(http_stub::Request {
        method,
        target,
        headers,
        body,
    }) = http_stub::read_request(&mut r)
    {
        let reply = if target.starts_with("/tg/") {
            r#"{"ok":true,"result":{"message_id":7,"date":0,"chat":{"id":-1001,"type":"group"}}}"#
        } else {
            r#"{}"#
        };
        got.lock().expect("lock").push(Got {
            method,
            target,
            headers,
            body,
        });
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn post_alerts(s: &Server, alerts: &Value) {
    let r = reqwest::blocking_client()
        .post(s.url("/api/v2/alerts"), alerts.to_string().into_bytes())
        .header("Content-Type", "application/json")
        .send()
        .expect("POST alerts");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
}

/// One alert per receiver kind (`alertname` tells them apart), firing or resolved.
fn alerts(resolved: bool) -> Value {
    let starts = now_ms() - 60_000;
    let mut v = Vec::new();
    for (name, kind) in [
        ("TeamsDown", "msteamsv2"),
        ("TelegramDown", "telegram"),
        ("DiscordDown", "discord"),
        ("OpsDown", "opsgenie"),
        ("WebexDown", "webex"),
        ("ChatDown", "googlechat"),
    ] {
        let mut a = json!({
            "labels": {"alertname": name, "kind": kind, "instance": "host-1", "team": "ops"},
            "annotations": {"summary": "a <b> & c"},
            "startsAt": strata_grammar::format_rfc3339(starts, true),
            "generatorURL": "http://prometheus.example/graph",
        });
        if resolved {
            a["endsAt"] = json!(strata_grammar::format_rfc3339(now_ms() - 1000, true));
        }
        v.push(a);
    }
    Value::Array(v)
}

fn config(si: &StandIn) -> String {
    format!(
        "route:
  receiver: teams
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{matchers: ['kind=\"telegram\"'], receiver: telegram}}
    - {{matchers: ['kind=\"discord\"'], receiver: discord}}
    - {{matchers: ['kind=\"opsgenie\"'], receiver: opsgenie}}
    - {{matchers: ['kind=\"webex\"'], receiver: webex}}
    - {{matchers: ['kind=\"googlechat\"'], receiver: googlechat}}
receivers:
  - name: teams
    msteamsv2_configs:
      - webhook_url: '{teams}'
  - name: telegram
    telegram_configs:
      - api_url: '{tg}'
        bot_token: '123:ABC'
        chat_id: -1001
        message_thread_id: 42
        disable_notifications: true
  - name: discord
    discord_configs:
      - webhook_url: '{discord}'
        username: strata
        avatar_url: 'https://example.org/a.png'
  - name: opsgenie
    opsgenie_configs:
      - api_key: og-key
        api_url: '{og}'
        details: {{runbook: 'https://runbooks.example/{{{{ .GroupLabels.alertname }}}}'}}
        responders:
          - {{name: 'ops,dba', type: teams}}
          - {{username: 'jane@example.org', type: User}}
        tags: 'strata,{{{{ .CommonLabels.team }}}}'
        note: noted
        priority: P2
        entity: '{{{{ .CommonLabels.instance }}}}'
        actions: 'restart,page'
        update_alerts: true
  - name: webex
    webex_configs:
      - api_url: '{webex}'
        room_id: room-1
        send_resolved: false
        http_config:
          authorization: {{credentials: webex-token}}
  - name: googlechat
    googlechat_configs:
      - url: '{chat}'
        thread_key: '{{{{ .GroupLabels.alertname }}}}'
",
        teams = si.url("/teams/hook"),
        tg = si.url("/tg"),
        discord = si.url("/discord/hook"),
        og = si.url("/og"),
        webex = si.url("/webex/messages"),
        chat = si.url("/chat/v1/spaces/AAA/messages?key=k&token=t"),
    )
}

#[test]
fn receivers_get_alertmanagers_payloads_and_resolved_follows_send_resolved() {
    let dir = tempfile::tempdir().expect("tmp");
    let si = StandIn::start();
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(&am, config(&si)).expect("write");
    let s = Server::start(
        &dir.path().join("data"),
        &[
            &format!("--alertmanager.config.file={}", am.display()),
            "--web.external-url=http://am.example",
        ],
    );
    post_alerts(&s, &alerts(false));

    // Microsoft Teams: the Adaptive Card.
    let t = si.wait("/teams/", 1);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].method, "POST");
    assert!(
        t[0].header("user-agent")
            .is_some_and(|u| u.starts_with("alertmanager/")),
        "{}",
        t[0].headers
    );
    let b = &t[0].body;
    assert_eq!(b["type"], "message");
    let att = &b["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(att["contentUrl"].is_null() && att.get("contentUrl").is_some());
    let c = &att["content"];
    assert_eq!(
        c["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(c["type"], "AdaptiveCard");
    assert_eq!(c["version"], "1.2");
    assert_eq!(c["msteams"], json!({"width": "full"}));
    assert_eq!(
        c["body"][0],
        json!({"type": "TextBlock", "text": "[FIRING:1] TeamsDown (host-1 msteamsv2 ops)",
               "weight": "Bolder", "size": "Medium", "wrap": true, "style": "heading",
               "color": "Attention"})
    );
    assert_eq!(c["body"][1]["type"], "TextBlock");
    assert_eq!(c["body"][1]["wrap"], true);
    let text = c["body"][1]["text"].as_str().unwrap_or("");
    assert!(text.contains("# Alerts Firing:"), "{text}");
    assert!(text.contains("  - summary = a <b> & c"), "{text}");

    // Telegram: sendMessage with string parameters; HTML parse mode escapes the values.
    let g = si.wait("/tg/", 1);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0].target, "/tg/bot123:ABC/sendMessage");
    assert!(
        g[0].header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let b = &g[0].body;
    assert_eq!(b["chat_id"], "-1001");
    assert_eq!(b["parse_mode"], "HTML");
    assert_eq!(b["disable_web_page_preview"], "true");
    assert_eq!(b["disable_notification"], "true");
    assert_eq!(b["message_thread_id"], "42");
    let text = b["text"].as_str().unwrap_or("");
    assert!(text.contains("Alerts Firing:"), "{text}");
    assert!(text.contains(" - summary = a &lt;b&gt; &amp; c"), "{text}");
    assert_eq!(b.as_object().map(|o| o.len()), Some(6), "{b}");

    // Discord: one embed, red while firing.
    let d = si.wait("/discord/", 1);
    assert_eq!(d.len(), 1, "{d:?}");
    let b = &d[0].body;
    assert_eq!(b["content"], "");
    assert_eq!(b["username"], "strata");
    assert_eq!(b["avatar_url"], "https://example.org/a.png");
    assert_eq!(
        b["embeds"][0]["title"],
        "[FIRING:1] DiscordDown (host-1 discord ops)"
    );
    assert_eq!(b["embeds"][0]["color"], 0x99_2D22);
    assert!(
        b["embeds"][0]["description"]
            .as_str()
            .is_some_and(|s| s.contains("Alerts Firing:")),
        "{b}"
    );

    // OpsGenie: create, then update message and description, all by alias.
    let o = si.wait("/og/", 3);
    assert_eq!(o.len(), 3, "{o:?}");
    for r in &o {
        assert_eq!(
            r.header("authorization").as_deref(),
            Some("geniekey og-key")
        );
    }
    assert_eq!(
        (o[0].method.as_str(), o[0].target.as_str()),
        ("POST", "/og/v2/alerts")
    );
    let b = &o[0].body;
    let alias = b["alias"].as_str().unwrap_or("").to_owned();
    assert_eq!(alias.len(), 64, "SHA-256 of the group key: {b}");
    assert_eq!(b["message"], "[FIRING:1] OpsDown (host-1 opsgenie ops)");
    assert_eq!(b["source"], "http://am.example/#/alerts?receiver=opsgenie");
    assert_eq!(
        b["details"],
        json!({"alertname": "OpsDown", "instance": "host-1", "kind": "opsgenie",
               "team": "ops", "runbook": "https://runbooks.example/OpsDown"})
    );
    assert_eq!(
        b["responders"],
        json!([{"name": "ops", "type": "team"}, {"name": "dba", "type": "team"},
               {"username": "jane@example.org", "type": "user"}])
    );
    assert_eq!(b["tags"], json!(["strata", "ops"]));
    assert_eq!(b["actions"], json!(["restart", "page"]));
    assert_eq!(b["note"], "noted");
    assert_eq!(b["priority"], "P2");
    assert_eq!(b["entity"], "host-1");
    assert!(
        b["description"]
            .as_str()
            .is_some_and(|s| s.contains("Alerts Firing:")),
        "{b}"
    );
    assert_eq!(o[1].method, "PUT");
    assert_eq!(
        o[1].target,
        format!("/og/v2/alerts/{alias}/message?identifierType=alias")
    );
    assert_eq!(o[1].body, json!({"message": b["message"]}));
    assert_eq!(o[2].method, "PUT");
    assert_eq!(
        o[2].target,
        format!("/og/v2/alerts/{alias}/description?identifierType=alias")
    );
    assert_eq!(o[2].body["description"], b["description"]);

    // Webex: markdown and roomId, the token from http_config.
    let w = si.wait("/webex/", 1);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].target, "/webex/messages");
    assert_eq!(
        w[0].header("authorization").as_deref(),
        Some("bearer webex-token")
    );
    assert_eq!(w[0].body["roomId"], "room-1");
    assert!(
        w[0].body["markdown"]
            .as_str()
            .is_some_and(|s| s.starts_with("a <b> & c\n") && s.contains("Alerts Firing:")),
        "{}",
        w[0].body
    );

    // Google Chat: {"text"}, threaded by the group's alertname.
    let ch = si.wait("/chat/", 1);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(
        ch[0].target,
        "/chat/v1/spaces/AAA/messages?key=k&token=t&threadKey=ChatDown\
         &messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    );
    let text = ch[0].body["text"].as_str().unwrap_or("");
    assert!(
        text.starts_with("*[FIRING:1] ChatDown (host-1 googlechat ops)*\n"),
        "{text}"
    );
    assert!(text.contains(" - summary = a <b> & c"), "{text}");
    assert_eq!(ch[0].body.as_object().map(|o| o.len()), Some(1));

    // Resolved: every receiver but Webex (send_resolved: false) hears of it.
    post_alerts(&s, &alerts(true));
    let t = si.wait("/teams/", 2);
    assert_eq!(t.len(), 2, "{t:?}");
    let c = &t[1].body["attachments"][0]["content"]["body"][0];
    assert_eq!(c["color"], "Good");
    assert_eq!(c["text"], "[RESOLVED] TeamsDown (host-1 msteamsv2 ops)");
    let d = si.wait("/discord/", 2);
    assert_eq!(d[1].body["embeds"][0]["color"], 0x2E_CC71);
    let g = si.wait("/tg/", 2);
    assert!(
        g[1].body["text"]
            .as_str()
            .is_some_and(|s| s.contains("Alerts Resolved:")),
        "{:?}",
        g[1].body
    );
    let o = si.wait("/og/", 4);
    assert_eq!(o.len(), 4, "{o:?}");
    assert_eq!(o[3].method, "POST");
    assert_eq!(
        o[3].target,
        format!("/og/v2/alerts/{alias}/close?identifierType=alias")
    );
    assert_eq!(
        o[3].body,
        json!({"source": "http://am.example/#/alerts?receiver=opsgenie"})
    );
    let ch = si.wait("/chat/", 2);
    assert!(
        ch[1].body["text"]
            .as_str()
            .is_some_and(|s| s.starts_with("*[RESOLVED] ChatDown")),
        "{:?}",
        ch[1].body
    );
    // Webex got nothing more (give it two more flushes).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(si.under("/webex/").len(), 1, "send_resolved: false");
    for kind in [
        "msteamsv2",
        "telegram",
        "discord",
        "opsgenie",
        "webex",
        "googlechat",
    ] {
        let text = reqwest::blocking_client()
            .get(s.url("/metrics"))
            .send()
            .map(|r| r.text())
            .unwrap_or_default();
        let line = format!("alertmanager_notifications_failed_total{{integration=\"{kind}\"}} 0");
        assert!(text.contains(&line), "{line}");
    }
}

fn check(dir: &Path, text: &str) -> String {
    let f = dir.join("am.yml");
    std::fs::write(&f, text).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["check", "alertmanager-config"])
        .arg(&f)
        .output()
        .expect("run strata");
    assert_eq!(o.status.code(), Some(1), "{text}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bad_receiver_entries_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = "route:\n  receiver: r\nreceivers:\n  - name: r\n";
    for (entry, want) in [
        (
            "    webex_configs:\n      - room_id: x\n",
            "receivers[0].webex_configs[0].http_config.authorization: missing webex_configs.http_config.authorization",
        ),
        (
            "    webex_configs:\n      - http_config: {authorization: {credentials: t}}\n",
            "receivers[0].webex_configs[0].room_id: missing room_id",
        ),
        (
            "    telegram_configs:\n      - bot_token: t\n",
            "receivers[0].telegram_configs[0].chat_id: missing chat_id or chat_id_file",
        ),
        (
            "    telegram_configs:\n      - chat_id: 1\n",
            "receivers[0].telegram_configs[0].bot_token: missing bot_token or bot_token_file",
        ),
        (
            "    telegram_configs:\n      - chat_id: 1\n        bot_token: t\n        parse_mode: html\n",
            "receivers[0].telegram_configs[0].parse_mode: unknown parse_mode",
        ),
        (
            "    opsgenie_configs:\n      - api_key: k\n        responders: [{name: x, type: room}]\n",
            "receivers[0].opsgenie_configs[0].responders[0].type: type does not match",
        ),
        (
            "    opsgenie_configs:\n      - message: m\n",
            "receivers[0].opsgenie_configs[0].api_key: no global OpsGenie API Key set",
        ),
        (
            "    discord_configs:\n      - title: t\n",
            "receivers[0].discord_configs[0]: one of webhook_url or webhook_url_file must be configured",
        ),
        (
            "    msteamsv2_configs:\n      - webhook_url: 'http://x/'\n        webhook_url_file: f\n",
            "receivers[0].msteamsv2_configs[0].webhook_url: at most one of webhook_url & webhook_url_file",
        ),
        (
            "    googlechat_configs:\n      - thread_key: k\n",
            "receivers[0].googlechat_configs[0]: one of url or url_file must be configured",
        ),
        (
            "    googlechat_configs:\n      - url: 'http://x/'\n        threadkey: k\n",
            "unknown field `threadkey`",
        ),
    ] {
        let out = check(dir.path(), &format!("{base}{entry}"));
        assert!(out.contains(want), "want {want:?}\n got {out}");
    }
}
