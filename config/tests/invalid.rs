//! Invalid configurations: each must fail with a message naming the file,
//! the line and column, and the offending field.

use strata_config::{Config, ConfigError};

fn err(text: &str) -> ConfigError {
    match Config::from_yaml_str(text, "config.yml") {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e,
    }
}

fn check(text: &str, want: &str) {
    let got = err(text).to_string();
    assert_eq!(got, want, "\n got: {got}\nwant: {want}");
}

fn check_prefix(text: &str, want: &str) {
    let got = err(text).to_string();
    assert!(got.starts_with(want), "\n got: {got}\nwant prefix: {want}");
}

#[test]
fn unknown_top_level_key() {
    check_prefix(
        "global:\n  scrape_interval: 15s\nscrape_config:\n  - job_name: x\n",
        "config.yml:3:1: unknown field `scrape_config`, expected one of `global`",
    );
}

#[test]
fn unknown_key_in_scrape_config() {
    let text = "\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: a
    static_configs:
      - targets: [localhost:9090]
  - job_name: b
    scrape_intervall: 10s
";
    check_prefix(
        text,
        "config.yml:8:5: scrape_configs[1]: unknown field `scrape_intervall`, expected one of `job_name`",
    );
}

#[test]
fn unknown_key_in_relabel_config() {
    let text = "\
scrape_configs:
  - job_name: a
    relabel_configs:
      - source_labels: [a]
        target_label: b
      - source_label: [a]
        action: drop
";
    check_prefix(
        text,
        "config.yml:6:9: scrape_configs[0].relabel_configs[1]: unknown field `source_label`, expected one of `source_labels`",
    );
}

#[test]
fn unknown_key_in_global() {
    check_prefix(
        "global:\n  evaluation_intreval: 1m\n",
        "config.yml:2:3: global: unknown field `evaluation_intreval`",
    );
}

#[test]
fn bad_duration() {
    check(
        "global:\n  scrape_interval: 15 seconds\n",
        "config.yml:2:20: global.scrape_interval: not a valid duration string: \"15 seconds\"",
    );
    check(
        "scrape_configs:\n  - job_name: a\n    scrape_timeout: 1.5s\n",
        "config.yml:3:21: scrape_configs[0].scrape_timeout: not a valid duration string: \"1.5s\"",
    );
}

#[test]
fn bad_regex() {
    let text = "\
scrape_configs:
  - job_name: a
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'foo(bar'
        action: drop
";
    check_prefix(
        text,
        "config.yml:5:16: scrape_configs[0].metric_relabel_configs[0].regex: invalid regex \"foo(bar\"",
    );
}

#[test]
fn duplicate_job_name() {
    let text = "\
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [a:1]
  - job_name: api
  - job_name: node
";
    check(
        text,
        "config.yml:6:5: scrape_configs[2].job_name: found multiple scrape configs with job name \"node\"",
    );
}

#[test]
fn timeout_greater_than_interval() {
    let text = "\
global:
  scrape_interval: 10s
scrape_configs:
  - job_name: a
    scrape_timeout: 20s
";
    check(
        text,
        "config.yml:5:5: scrape_configs[0].scrape_timeout (job \"a\"): scrape timeout greater than scrape interval for scrape config with job name \"a\"",
    );
}

#[test]
fn global_timeout_greater_than_interval() {
    check(
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
        "config.yml:2:3: global: global scrape timeout greater than scrape interval",
    );
}

#[test]
fn hashmod_without_modulus() {
    let text = "\
scrape_configs:
  - job_name: a
    relabel_configs:
      - source_labels: [__address__]
        target_label: __tmp_hash
        action: hashmod
";
    check(
        text,
        "config.yml:4:9: scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus",
    );
}

#[test]
fn replace_without_target_label() {
    check(
        "alerting:\n  alert_relabel_configs:\n    - source_labels: [a]\n",
        "config.yml:3:7: alerting.alert_relabel_configs[0]: relabel configuration for replace action requires 'target_label' value",
    );
}

#[test]
fn labeldrop_with_extra_fields() {
    check(
        "remote_write:\n  - url: http://x/y\n    write_relabel_configs:\n      - action: labeldrop\n        source_labels: [a]\n",
        "config.yml:4:9: remote_write[0].write_relabel_configs[0]: labeldrop action requires only 'regex', and no other fields",
    );
}

#[test]
fn unknown_relabel_action() {
    check(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n",
        "config.yml:4:17: scrape_configs[0].relabel_configs[0].action: unknown relabel action \"explode\"",
    );
}

#[test]
fn invalid_external_label_name() {
    check(
        "global:\n  metric_name_validation_scheme: legacy\n  external_labels:\n    foo-bar: x\n",
        "config.yml:2:3: global: \"foo-bar\" is not a valid label name",
    );
    check(
        "global:\n  external_labels:\n    '': x\n",
        "config.yml:2:3: global: \"\" is not a valid label name",
    );
}

#[test]
fn invalid_static_label_name() {
    check(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [a:1]\n        labels:\n          '': x\n",
        "config.yml:4:9: scrape_configs[0].static_configs[0]: \"\" is not a valid label name",
    );
}

#[test]
fn url_as_static_target() {
    check(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://a:1/metrics']\n",
        "config.yml:2:5: scrape_configs[0]: \"http://a:1/metrics\" is not a valid hostname",
    );
}

#[test]
fn bad_urls() {
    check_prefix(
        "remote_write:\n  - url: not-a-url\n",
        "config.yml:2:10: remote_write[0].url: invalid URL \"not-a-url\": missing scheme",
    );
    check(
        "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: ftp://x/targets\n",
        "config.yml:4:9: scrape_configs[0].http_sd_configs[0]: URL scheme must be 'http' or 'https'",
    );
    check(
        "remote_read:\n  - name: x\n",
        "config.yml:2:5: remote_read[0]: url for remote_read is empty",
    );
}

#[test]
fn unsupported_service_discovery() {
    check(
        "scrape_configs:\n  - job_name: c\n    consul_sd_configs:\n      - server: localhost:8500\n",
        "config.yml:3:5: scrape_configs[0]: consul_sd_configs is a Prometheus service discovery mechanism that Strata does not support (supported: static_configs, file_sd_configs, http_sd_configs, kubernetes_sd_configs)",
    );
}

#[test]
fn auth_conflicts() {
    check(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: p}\n    bearer_token: t\n",
        "config.yml:2:5: scrape_configs[0]: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
    );
    check(
        "scrape_configs:\n  - job_name: a\n    authorization: {type: Basic, credentials: x}\n",
        "config.yml:2:5: scrape_configs[0]: authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
    );
    check(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: p, password_file: f}\n",
        "config.yml:2:5: scrape_configs[0]: at most one of basic_auth password, password_file & password_ref must be configured",
    );
}

#[test]
fn misc_semantic_errors() {
    check(
        "scrape_configs:\n  - job_name: ''\n",
        "config.yml:2:5: scrape_configs[0]: job_name is empty",
    );
    check(
        "rule_files:\n  - 'rules/*/x.yml'\n",
        "config.yml:2:6: rule_files[0]: invalid rule file path \"rules/*/x.yml\"",
    );
    check(
        "alerting:\n  alertmanagers:\n    - api_version: v1\n",
        "config.yml:3:20: alerting.alertmanagers[0].api_version: expected Alertmanager api version to be one of [v2] but got v1",
    );
    check(
        "remote_write:\n  - url: http://a/w\n    name: x\n  - url: http://b/w\n    name: x\n",
        "config.yml:5:5: remote_write[1].name: found multiple remote write configs with job name \"x\"",
    );
    check(
        "global:\n  body_size_limit: 10kB\n",
        "config.yml:2:20: global.body_size_limit: unknown unit \"kB\" in size \"10kB\"",
    );
    check(
        "scrape_configs:\n  - job_name: a\n    scrape_protocols: [PrometheusProto, PrometheusProto]\n",
        "config.yml:2:5: scrape_configs[0]: duplicated protocol in scrape_protocols, got [PrometheusProto, PrometheusProto] for scrape config with job name \"a\"",
    );
}

#[test]
fn yaml_syntax_error_has_position() {
    let e = err("global:\n  scrape_interval: [15s\n");
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    assert!(e.to_string().starts_with("config.yml:"), "{e}");
    assert!(e.line().is_some());
}

#[test]
fn load_reports_missing_file() {
    let e = Config::load(std::path::Path::new("/nonexistent/strata.yml"));
    assert!(matches!(e, Err(ConfigError::Io { .. })));
}

#[test]
fn load_reports_file_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, "global:\n  bogus: 1\n").expect("write");
    let msg = Config::load(&path).expect_err("must fail").to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:2:3: global: unknown field `bogus`",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn legacy_validation_scheme_checks_relabel_targets() {
    let text = "\
global:
  metric_name_validation_scheme: legacy
scrape_configs:
  - job_name: a
    relabel_configs:
      - source_labels: [x]
        target_label: foo.bar
";
    check(
        text,
        "config.yml:5:5: scrape_configs[0].relabel_configs (job \"a\"): \"foo.bar\" is invalid 'target_label' for replace action",
    );
}

#[test]
fn downsample_after_missing_or_zero() {
    check(
        "storage:\n  tsdb:\n    downsample:\n      retention_5m: 90d\n",
        "config.yml:4:7: storage.tsdb.downsample: missing field `after`",
    );
    check(
        "storage:\n  tsdb:\n    downsample:\n      after: 0s\n",
        "config.yml:4:14: storage.tsdb.downsample.after: duration must be greater than 0, got \"0s\"",
    );
    check(
        "storage:\n  tsdb:\n    downsample:\n      after: 0\n",
        "config.yml:4:14: storage.tsdb.downsample.after: duration must be greater than 0, got \"0\"",
    );
}

#[test]
fn downsample_zero_retentions() {
    check(
        "storage:\n  tsdb:\n    downsample:\n      after: 40h\n      retention_5m: 0s\n",
        "config.yml:5:21: storage.tsdb.downsample.retention_5m: duration must be greater than 0, got \"0s\"",
    );
    check(
        "storage:\n  tsdb:\n    downsample:\n      after: 40h\n      retention_1h: 0s\n",
        "config.yml:5:21: storage.tsdb.downsample.retention_1h: duration must be greater than 0, got \"0s\"",
    );
    check_prefix(
        "storage:\n  tsdb:\n    downsample:\n      after: 40h\n      retention_2h: 1d\n",
        "config.yml:5:7: storage.tsdb.downsample: unknown field `retention_2h`, expected one of `after`",
    );
}

#[test]
fn retention_rule_zero_durations() {
    let rule = |field: &str| {
        format!(
            "storage:\n  tsdb:\n    downsample:\n      after: 1d\n    retention_rules:\n      - matchers: [up]\n        {field}: 0s\n"
        )
    };
    for (field, col) in [("raw", 14), ("retention_5m", 23), ("retention_1h", 23)] {
        check(
            &rule(field),
            &format!(
                "config.yml:7:{col}: storage.tsdb.retention_rules[0].{field}: duration must be greater than 0, got \"0s\""
            ),
        );
    }
}

#[test]
fn retention_rule_without_retention() {
    let text = "\
storage:
  tsdb:
    retention_rules:
      - matchers: [up]
        raw: 1d
      - matchers: ['{job=\"x\"}']
";
    check(
        text,
        "config.yml:6:9: storage.tsdb.retention_rules[1]: a retention rule must set raw, retention_5m or retention_1h",
    );
}

#[test]
fn retention_rule_matchers_missing_or_empty() {
    check(
        "storage:\n  tsdb:\n    retention_rules:\n      - raw: 1d\n",
        "config.yml:4:9: storage.tsdb.retention_rules[0]: missing field `matchers`",
    );
    check(
        "storage:\n  tsdb:\n    retention_rules:\n      - matchers: []\n        raw: 1d\n",
        "config.yml:4:9: storage.tsdb.retention_rules[0]: a retention rule must have at least one selector in matchers",
    );
    check(
        "storage:\n  tsdb:\n    retention_rules:\n      -\n",
        "config.yml:3:5: storage.tsdb: retention_rules[0]: empty or null retention rule",
    );
}

#[test]
fn retention_rule_invalid_selectors() {
    let text = |sel: &str| {
        format!(
            "storage:\n  tsdb:\n    retention_rules:\n      - matchers:\n          - up\n          - '{sel}'\n        raw: 1d\n"
        )
    };
    let not_selector =
        "expected a metric name and/or {label matchers} without range, offset or @ modifier";
    for (sel, why) in [
        (
            "{job=\"\"}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "{job=~\".*\"}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "up{",
            "1:3: parse error: unexpected end of input inside braces",
        ),
        ("up[5m]", not_selector),
        ("up offset 5m", not_selector),
        ("up @ 100", not_selector),
        ("sum(up)", not_selector),
        ("(up)", not_selector),
    ] {
        check(
            &text(sel),
            &format!(
                "config.yml:6:13: storage.tsdb.retention_rules[0].matchers[1]: invalid series selector {sel:?}: {why}"
            ),
        );
    }
}

#[test]
fn retention_rule_downsampled_retention_requires_downsample() {
    let text = "\
storage:
  tsdb:
    retention_rules:
      - matchers: [up]
        raw: 1d
      - matchers: [x]
        retention_5m: 1d
";
    check(
        text,
        "config.yml:3:5: storage.tsdb: retention_rules[1].retention_5m requires downsample to be configured",
    );
    check(
        "storage:\n  tsdb:\n    retention_rules:\n      - matchers: [up]\n        retention_1h: 1d\n",
        "config.yml:3:5: storage.tsdb: retention_rules[0].retention_1h requires downsample to be configured",
    );
    check_prefix(
        "storage:\n  tsdb:\n    retention_rules:\n      - matchers: [up]\n        raw: 1d\n        keep: 1d\n",
        "config.yml:6:9: storage.tsdb.retention_rules[0]: unknown field `keep`, expected one of `matchers`",
    );
}
