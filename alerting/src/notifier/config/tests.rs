//! Whole-file tests: the compatibility probe's configuration, defaults, error positions and
//! writing the configuration back.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

const PROBE: &str = r#"global:
  resolve_timeout: 5m
route:
  receiver: webhook
  group_by: ['alertname', 'probe_run']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - receiver: slack
      matchers: ['probe_receiver="slack"']
    - receiver: pagerduty
      matchers: ['probe_receiver="pagerduty"']
inhibit_rules:
  - source_matchers: ['probe_case="inhibitor"']
    target_matchers: ['probe_case="inhibited"']
    equal: ['probe_run']
receivers:
  - name: webhook
    webhook_configs:
      - url: 'http://127.0.0.1:39150/webhook'
        send_resolved: true
  - name: slack
    slack_configs:
      - api_url: 'http://127.0.0.1:39150/slack'
        channel: '#compat-probe'
        username: 'alertmanager'
        send_resolved: true
  - name: pagerduty
    pagerduty_configs:
      - routing_key: 'compat-probe-routing-key'
        url: 'http://127.0.0.1:39150/pagerduty'
        send_resolved: true
"#;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_err(text: &str) -> String {
    Config::from_yaml_str(text, "am.yml")
        .unwrap_err()
        .to_string()
}

#[test]
fn probe_config_loads_and_routes() {
    let cfg = Config::from_yaml_str(PROBE, "probe.yml").unwrap();
    let hits = cfg
        .route
        .matching(&labels(&[("probe_receiver", "slack"), ("alertname", "x")]));
    assert_eq!(hits.len(), 1);
    let slack = hits[0];
    assert_eq!(slack.receiver(), "slack");
    assert_eq!(slack.id(), r#"{}/{probe_receiver="slack"}/0"#);
    assert_eq!(slack.group_by(), ["alertname", "probe_run"]);
    assert_eq!(slack.group_wait(), Duration(1_000));
    assert_eq!(slack.group_interval(), Duration(2_000));
    assert_eq!(slack.repeat_interval(), Duration(3_600_000));
    let hits = cfg.route.matching(&labels(&[("alertname", "x")]));
    assert_eq!(
        (hits.len(), hits[0].receiver(), hits[0].id()),
        (1, "webhook", "{}")
    );

    assert_eq!(cfg.global.resolve_timeout, Duration(300_000));
    assert_eq!(cfg.global.pagerduty_url, DEFAULT_PAGERDUTY_URL);
    let wh = &cfg.receiver("webhook").unwrap().webhook_configs[0];
    assert_eq!(wh.url.as_deref(), Some("http://127.0.0.1:39150/webhook"));
    assert_eq!((wh.send_resolved, wh.max_alerts), (true, 0));
    let sl = &cfg.receiver("slack").unwrap().slack_configs[0];
    assert_eq!(
        (sl.channel.as_str(), sl.send_resolved),
        ("#compat-probe", true)
    );
    assert_eq!(sl.title, r#"{{ template "slack.default.title" . }}"#);
    assert_eq!(sl.mrkdwn_in, ["fallback", "pretext", "text"]);
    let pd = &cfg.receiver("pagerduty").unwrap().pagerduty_configs[0];
    assert_eq!(pd.url.as_deref(), Some("http://127.0.0.1:39150/pagerduty"));
    assert_eq!(pd.severity, "error");
    assert_eq!(pd.source, pd.client);
    assert_eq!(pd.details["num_firing"], "{{ .Alerts.Firing | len }}");

    let rule = &cfg.inhibit_rules[0];
    let src = labels(&[("probe_case", "inhibitor"), ("probe_run", "1")]);
    assert!(rule.inhibits(
        &src,
        &labels(&[("probe_case", "inhibited"), ("probe_run", "1")])
    ));
    assert!(!rule.inhibits(
        &src,
        &labels(&[("probe_case", "inhibited"), ("probe_run", "2")])
    ));
}

#[test]
fn writes_back_with_secrets_hidden_and_reloads() {
    let text = PROBE.replace(
        "global:\n",
        "global:\n  smtp_auth_password: hunter2\n  http_config:\n    authorization:\n      credentials: tok\n",
    );
    let cfg = Config::from_yaml_str(&text, "probe.yml").unwrap();
    let out = cfg.to_yaml().unwrap();
    for secret in [
        "127.0.0.1:39150/webhook",
        "39150/slack",
        "compat-probe-routing-key",
        "hunter2",
        "tok",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert!(
        out.contains("routing_key: <secret>") && out.contains("credentials: <secret>"),
        "{out}"
    );
    assert!(out.contains("http://127.0.0.1:39150/pagerduty"), "{out}");
    assert!(out.contains(r#"- probe_receiver="slack""#), "{out}");
    let again = Config::from_yaml_str(&out, "status").unwrap();
    assert_eq!(again.route.routes[1].id(), cfg.route.routes[1].id());
    assert_eq!(again.global.resolve_timeout, cfg.global.resolve_timeout);
}

#[test]
fn reports_undefined_receiver_at_its_line() {
    let text = PROBE.replace("- receiver: pagerduty", "- receiver: slak");
    assert_eq!(
        load_err(&text),
        r#"am.yml:12:7: route.routes[1]: undefined receiver "slak" used in route"#
    );
}

#[test]
fn reports_bad_matcher_with_serde_position() {
    let text = PROBE.replace(
        r#"['probe_receiver="pagerduty"']"#,
        r#"['probe_receiver="x']"#,
    );
    let e = load_err(&text);
    assert!(
        e.starts_with("am.yml:13:18: route.routes[1].matchers[0]: matcher value contains"),
        "{e}"
    );
}

#[test]
fn reports_unknown_keys() {
    let e = load_err(&PROBE.replace("  group_wait: 1s", "  group_wiat: 1s"));
    assert!(
        e.starts_with("am.yml:6:3: route: unknown field `group_wiat`"),
        "{e}"
    );
    let e = load_err(&PROBE.replace("  resolve_timeout: 5m", "  smtp_form: x"));
    assert_eq!(e, "am.yml:2:3: global.smtp_form: unknown field `smtp_form`");
    let e = load_err(&format!("{PROBE}extra: 1\n"));
    assert!(
        e.starts_with("am.yml:34:1: unknown field `extra`, expected one of `global`"),
        "{e}"
    );
}

#[test]
fn rejects_unsupported_receiver_kinds() {
    let text = PROBE.replace(
        "  - name: webhook\n",
        "  - name: chat\n    wechat_configs:\n      - to_user: a\n  - name: webhook\n",
    );
    let e = load_err(&text);
    assert!(
        e.starts_with(
            "am.yml:20:5: receivers[0].wechat_configs: wechat_configs is not supported by \
             Strata (supported: webhook_configs, slack_configs, pagerduty_configs"
        ),
        "{e}"
    );
}

#[test]
fn slack_needs_an_api_url() {
    let text = PROBE.replace(
        "      - api_url: 'http://127.0.0.1:39150/slack'\n        channel",
        "      - channel",
    );
    let e = load_err(&text);
    assert!(
        e.starts_with(r#"am.yml:25:7: receivers[1].slack_configs[0]: no Slack API URL"#),
        "{e}"
    );
    let global = text.replace(
        "global:\n",
        "global:\n  slack_api_url: 'https://hooks.slack.com/x'\n",
    );
    let cfg = Config::from_yaml_str(&global, "am.yml").unwrap();
    let sl = &cfg.receiver("slack").unwrap().slack_configs[0];
    assert_eq!(sl.api_url.as_deref(), Some("https://hooks.slack.com/x"));
}

#[test]
fn validates_routes_and_receivers() {
    for (from, to, want) in [
        (
            "  receiver: webhook\n",
            "",
            "am.yml:3:1: route: root route must specify a default receiver",
        ),
        (
            "  group_wait: 1s",
            "  matchers: [a=b]",
            "route: root route must not have any matchers",
        ),
        (
            "['alertname', 'probe_run']",
            "[a, b, a]",
            r#"am.yml:5:3: route: duplicated label "a" in group_by"#,
        ),
        (
            "['alertname', 'probe_run']",
            "['...', a]",
            "cannot have wildcard group_by",
        ),
        (
            "repeat_interval: 1h",
            "repeat_interval: 0",
            "am.yml:8:3: route: repeat_interval cannot be zero",
        ),
        (
            "group_interval: 2s",
            "group_interval: 2x",
            "am.yml:7:19: route.group_interval: not a valid duration",
        ),
        (
            "      matchers: ['probe_receiver=\"slack\"']",
            "      mute_time_intervals: [nights]",
            r#"undefined time interval "nights""#,
        ),
        (
            "  - name: slack\n",
            "  - name: webhook\n",
            r#"am.yml:23:5: receivers[1]: notification config name "webhook" is not unique"#,
        ),
        (
            "      - routing_key: 'compat-probe-routing-key'\n",
            "      - service_key: k\n        routing_key: k\n",
            "receivers[2].pagerduty_configs[0]: set either routing_key",
        ),
        (
            "      - url: 'http://127.0.0.1:39150/webhook'\n",
            "      - url: 'ftp://x'\n",
            "receivers[0].webhook_configs[0]: unsupported scheme \"ftp\"",
        ),
        (
            "  - source_matchers:",
            "  - source_match: {'bad-name': x}\n    source_matchers:",
            r#"am.yml:15:5: inhibit_rules[0]: invalid label name "bad-name""#,
        ),
    ] {
        assert!(PROBE.contains(from), "{from}");
        let e = load_err(&PROBE.replacen(from, to, 1));
        assert!(e.contains(want), "{want}\n  got {e}");
    }
    assert_eq!(
        load_err(" \n"),
        "am.yml:1:1: route: no route provided in config"
    );
}

#[test]
fn email_and_http_receivers_load_with_global_fallbacks_and_hide_secrets() {
    let text = r#"global:
  smtp_smarthost: 'smtp.example.org:587'
  smtp_from: 'am@example.org'
  smtp_auth_username: am
  smtp_auth_password: hunter2
  opsgenie_api_key: og-secret
  telegram_bot_token: 'tg:secret'
route:
  receiver: all
receivers:
  - name: all
    email_configs:
      - to: ops@example.org
        headers: {x-team: ops}
    opsgenie_configs:
      - api_url: 'https://og.example/api'
    telegram_configs:
      - chat_id: 7
    googlechat_configs:
      - url: 'https://chat.example/v1/spaces/A/messages?key=k'
"#;
    let cfg = Config::from_yaml_str(text, "am.yml").unwrap();
    let r = cfg.receiver("all").unwrap();
    let e = &r.email_configs[0];
    assert_eq!(e.smarthost, "smtp.example.org:587");
    assert_eq!(e.from, "am@example.org");
    assert_eq!(e.hello, "localhost");
    assert_eq!(e.auth_username, "am");
    assert_eq!(e.auth_password.as_deref(), Some("hunter2"));
    assert_eq!(e.require_tls, Some(true));
    assert!(e.headers.contains_key("X-Team"), "canonical header names");
    let og = &r.opsgenie_configs[0];
    assert_eq!(og.api_url.as_deref(), Some("https://og.example/api/"));
    assert_eq!(og.api_key.as_deref(), Some("og-secret"));
    let tg = &r.telegram_configs[0];
    assert_eq!(tg.api_url.as_deref(), Some("https://api.telegram.org"));
    assert_eq!(tg.bot_token.as_deref(), Some("tg:secret"));
    let yaml = cfg.to_yaml().unwrap();
    for secret in ["hunter2", "og-secret", "tg:secret", "key=k"] {
        assert!(!yaml.contains(secret), "{secret} shown:\n{yaml}");
    }
    assert!(yaml.contains("smtp_require_tls: true"), "{yaml}");
    Config::from_yaml_str(&yaml, "status").unwrap();
}

#[test]
fn smtp_settings_strata_cannot_honour_are_refused() {
    let base = "route:\n  receiver: m\nreceivers:\n  - name: m\n    email_configs:\n      - to: a@b.c\n        from: x@b.c\n        smarthost: 'h:25'\n";
    for (extra, want) in [
        (
            "        auth_secret: s\n",
            "receivers[0].email_configs[0].auth_secret: CRAM-MD5",
        ),
        (
            "        tls_config: {max_version: TLS12}\n",
            "receivers[0].email_configs[0].tls_config.max_version: not supported",
        ),
        (
            "        headers: {subject: a, Subject: b}\n",
            "receivers[0].email_configs[0].headers: duplicate header \"Subject\"",
        ),
    ] {
        let e = load_err(&format!("{base}{extra}"));
        assert!(e.contains(want), "{want}\n  got {e}");
    }
    let e = load_err(&format!("global:\n  smtp_auth_secret: s\n{base}"));
    assert!(e.contains("global.smtp_auth_secret: CRAM-MD5"), "{e}");
}
