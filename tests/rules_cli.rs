//! The offline rule tools: `strata check rules`, `strata check config` and `strata test
//! rules` on the unit-test files in `tests/rules/` (written in `promtool test rules`
//! format; when the Debian `promtool` is installed, it must agree with strata on them).

use std::path::Path;
use std::process::{Command, Output};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(
            Path::new(
                &std::env::var("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
            )
            .join("tests/rules"),
        )
        .output()
        .expect("run strata")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn unit_tests_pass_and_a_wrong_expectation_fails() {
    for f in ["alerts_test.yml", "recording_test.yml"] {
        let o = strata(&["test", "rules", f]);
        assert!(o.status.success(), "{f}: {}", stdout(&o));
        assert!(stdout(&o).contains("SUCCESS"), "{}", stdout(&o));
    }
    let o = strata(&["test", "rules", "failing_test.yml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("\"severity\": \"critical\""), "{out}");
    assert!(out.contains("\"severity\": \"page\""), "{out}");
    assert!(out.contains("expr: \"up\", time: 1m"), "{out}");
}

#[test]
fn promtool_agrees_on_the_unit_test_files() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("SKIP: promtool is not installed (.ci/run installs the prometheus package)");
        return;
    }
    for (f, ok) in [
        ("alerts_test.yml", true),
        ("recording_test.yml", true),
        ("failing_test.yml", false),
    ] {
        let o = Command::new("promtool")
            .args(["test", "rules", f])
            .current_dir(
                Path::new(
                    &std::env::var("CARGO_MANIFEST_DIR")
                        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
                )
                .join("tests/rules"),
            )
            .output()
            .expect("run promtool");
        assert_eq!(o.status.success(), ok, "promtool on {f}: {}", stdout(&o));
        assert_eq!(strata(&["test", "rules", f]).status.success(), ok, "{f}");
    }
}

#[test]
fn check_rules_counts_rules_and_names_file_and_line_of_errors() {
    let o = strata(&["check", "rules", "alerts.yml", "recording.yml"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("SUCCESS: 3 rules found"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("SUCCESS: 2 rules found"),
        "{}",
        stdout(&o)
    );

    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: ok\n        expr: up\n      - alert: Broken\n        expr: rate(up[5m]\n      - record: 'not a name'\n        expr: up\n",
    )
    .expect("write");
    let o = strata(&["check", "rules", bad.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAILED"), "{out}");
    assert!(
        out.contains("bad.yml:6:9: group \"g\", rule 2, \"Broken\": could not parse expression"),
        "{out}"
    );
    assert!(
        out.contains(
            "bad.yml:8:9: group \"g\", rule 3, \"not a name\": invalid recording rule name"
        ),
        "{out}"
    );
}

#[test]
fn check_config_checks_the_rule_files_it_lists() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        Path::new(
            &std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
        )
        .join("tests/rules/alerts.yml"),
        dir.path().join("alerts.rules.yml"),
    )
    .expect("copy");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "rule_files:\n  - '*.rules.yml'\n").expect("write");
    let o = strata(&["check", "config", cfg.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");

    std::fs::write(
        dir.path().join("bad.rules.yml"),
        "groups:\n  - name: x\n    rules:\n      - alert: A\n",
    )
    .expect("write");
    let o = strata(&["check", "config", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("field 'expr' must be set in rule"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_server_with_a_broken_rule_file_does_not_start() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
    )
    .expect("write");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "rule_files: [rules.yml]\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rules.yml:4:9: group \"g\", rule 1, \"A\""),
        "{err}"
    );
}

#[test]
fn check_alertmanager_config_validates_like_amtool() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = dir.path().join("am.yml");
    std::fs::write(
        &good,
        "route:\n  receiver: hook\n  group_by: [alertname]\n  routes:\n    - receiver: pd\n      matchers: ['severity=\"page\"']\ninhibit_rules:\n  - source_matchers: ['severity=\"page\"']\n    target_matchers: ['severity=\"ticket\"']\n    equal: [alertname]\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:5001/\n  - name: pd\n    pagerduty_configs:\n      - routing_key: abc\n",
    )
    .expect("write");
    let o = strata(&[
        "check",
        "alertmanager-config",
        good.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(out.contains(" - 1 inhibit rules\n - 2 receivers"), "{out}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "route:\n  receiver: hook\n  routes:\n    - receiver: nope\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:5001/\n",
    )
    .expect("write");
    let o = strata(&["check", "alertmanager-config", bad.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("bad.yml:4:"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("undefined receiver \"nope\""),
        "{}",
        stdout(&o)
    );

    let unsupported = dir.path().join("wechat.yml");
    std::fs::write(
        &unsupported,
        "route:\n  receiver: chat\nreceivers:\n  - name: chat\n    wechat_configs:\n      - to_user: a\n",
    )
    .expect("write");
    let o = strata(&[
        "check",
        "alertmanager-config",
        unsupported.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("wechat_configs is not supported by Strata"),
        "{}",
        stdout(&o)
    );
    if let Ok(amtool) = Command::new("amtool")
        .args(["check-config", good.to_str().expect("utf-8")])
        .output()
    {
        assert!(
            amtool.status.success(),
            "amtool agrees: {}",
            stdout(&amtool)
        );
    } else {
        eprintln!(
            "SKIP (amtool part): amtool is not installed (.ci/run installs prometheus-alertmanager)"
        );
    }
}
