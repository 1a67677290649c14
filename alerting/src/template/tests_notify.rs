//! Tests for notification templates: `define`/`template`/`block`, Alertmanager's data,
//! functions and default templates.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::{NotifyAlert, NotifyData, TemplateError, TemplateSet};

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const LABELS: &[(&str, &str)] = &[
    ("alertname", "ProbeSlack"),
    ("instance", "db-1"),
    ("probe_receiver", "slack"),
    ("probe_run", "fd8542e6"),
    ("severity", "critical"),
];

/// 2020-09-13 12:26:40.123 UTC.
const STARTS: i64 = 1_600_000_000_123;

fn data(status: &str) -> NotifyData {
    let alert = NotifyAlert {
        status: status.into(),
        labels: kv(LABELS),
        annotations: kv(&[
            ("description", "compat probe alert"),
            ("summary", "ProbePagerDuty on db-2"),
        ]),
        starts_at_ms: STARTS,
        ends_at_ms: 0,
        generator_url: "http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1".into(),
        fingerprint: "0123456789abcdef".into(),
    };
    NotifyData {
        receiver: "slack".into(),
        status: status.into(),
        alerts: vec![alert],
        group_labels: kv(&[("alertname", "ProbeSlack"), ("probe_run", "fd8542e6")]),
        common_labels: kv(LABELS),
        common_annotations: kv(&[("summary", "ProbePagerDuty on db-2")]),
        external_url: "http://127.0.0.1:39093".into(),
    }
}

fn render(set: &TemplateSet, text: &str) -> Result<String, TemplateError> {
    set.render_at(text, &data("firing"), STARTS + 90_500)
}

/// Runs one case per line against the firing data: `template => output` or
/// `template =!> error substring`.
fn table(set: &TemplateSet, cases: &str) {
    for line in cases.lines().filter(|l| !l.is_empty()) {
        if let Some((text, want)) = line.split_once(" =!> ") {
            let e = render(set, text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        } else {
            let (text, want) = line.split_once(" =>").unwrap();
            let want = want.strip_prefix(' ').unwrap_or(want);
            assert_eq!(render(set, text).as_deref(), Ok(want), "{text}");
        }
    }
}

#[test]
fn default_templates() {
    let set = TemplateSet::new();
    let firing = data("firing");
    let title = "[FIRING:1] ProbeSlack fd8542e6 (db-1 slack critical)";
    assert_eq!(
        set.render(r#"{{ template "slack.default.title" . }}"#, &firing)
            .unwrap(),
        title
    );
    assert_eq!(
        set.render(r#"{{ template "slack.default.fallback" . }}"#, &firing)
            .unwrap(),
        format!("{title} | http://127.0.0.1:39093/#/alerts?receiver=slack")
    );
    assert_eq!(
        set.render(
            r#"{{ template "pagerduty.default.description" . }}"#,
            &firing
        )
        .unwrap(),
        title
    );
    let resolved = data("resolved");
    assert_eq!(
        set.render(r#"{{ template "slack.default.title" . }}"#, &resolved)
            .unwrap(),
        "[RESOLVED] ProbeSlack fd8542e6 (db-1 slack critical)"
    );
    let instances = set
        .render(
            r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
            &firing,
        )
        .unwrap();
    assert_eq!(
        instances,
        "Labels:\n - alertname = ProbeSlack\n - instance = db-1\n - probe_receiver = slack\n \
         - probe_run = fd8542e6\n - severity = critical\nAnnotations:\n \
         - description = compat probe alert\n - summary = ProbePagerDuty on db-2\n\
         Source: http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1\n"
    );
    table(
        &set,
        r#"
{{ template "pagerduty.default.instances" .Alerts.Resolved }} =>
{{ .Alerts.Firing | len }} {{ len .Alerts.Resolved }} => 1 0
{{ template "slack.default.username" . }}|{{ template "slack.default.text" . }}| => Alertmanager||
{{ template "pagerduty.default.clientURL" . }} => http://127.0.0.1:39093/#/alerts?receiver=slack
plain text => plain text
"#,
    );
    let mut odd = data("firing");
    odd.receiver = "team a&b".into();
    let url = set.render(r#"{{ template "__alertmanagerURL" . }}"#, &odd);
    assert_eq!(
        url.unwrap(),
        "http://127.0.0.1:39093/#/alerts?receiver=team+a%26b"
    );
}

#[test]
fn user_files_and_fields() {
    let mut set = TemplateSet::new();
    set.add_file(
        "my.tmpl",
        r#"{{ define "my.title" }}{{ .CommonLabels.alertname }} x{{ len .Alerts }}{{ end }}
{{ define "slack.default.text" }}custom {{ .Status }}{{ end }}
{{ define "slack.default.title" }}{{ end }}"#,
    )
    .unwrap();
    assert!(set.has_template("my.title") && set.has_template("my.tmpl"));
    table(
        &set,
        r#"
{{ template "my.title" . }} => ProbeSlack x1
{{ template "slack.default.text" . }} => custom firing
{{ template "slack.default.title" . }} => [FIRING:1] ProbeSlack fd8542e6 (db-1 slack critical)
{{ range .Alerts }}{{ .Labels.instance }} {{ end }} => db-1 
{{ .CommonAnnotations.summary }} => ProbePagerDuty on db-2
{{ .CommonLabels.nope }}|{{ index .CommonLabels "severity" }} => |critical
{{ (index .Alerts 0).StartsAt | date "2006-01-02" }} => 2020-09-13
{{ toUpper "a" }}{{ title "hello world" }}{{ join "," (stringSlice "a" "b") }} => AHello Worlda,b
{{ if match "^db" .CommonLabels.instance }}db{{ end }} => db
{{ .Receiver }} {{ .Status }} {{ .ExternalURL }} => slack firing http://127.0.0.1:39093
{{ with index .Alerts 0 }}{{ .Fingerprint }} {{ .GeneratorURL }}{{ end }} => 0123456789abcdef http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1
{{ if eq .Status "firing" }}F{{ end }}{{ if ne (index .Alerts 0).Status "resolved" }}!{{ end }} => F!
"#,
    );
    let e = render(&set, r#"{{ template "nope" . }}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template: :1:12: executing "" at <{{template "nope" .}}>: template "nope" not defined"#
    );
    let e = set
        .add_file("bad.tmpl", "{{ define \"x\" }}\n{{ nope }}{{ end }}")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template: bad.tmpl:2: function "nope" not defined"#
    );
    assert!(set.has_template("my.title") && !set.has_template("x"));
}

#[test]
fn kv_pairs_and_alerts_methods() {
    let set = TemplateSet::new();
    table(
        &set,
        r#"
{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }} => alertname=ProbeSlack;instance=db-1;probe_receiver=slack;probe_run=fd8542e6;severity=critical;
{{ (index .Alerts 0).Annotations.SortedPairs.Names }} => [description summary]
{{ .GroupLabels.Names }} {{ .GroupLabels.Values }} => [alertname probe_run] [ProbeSlack fd8542e6]
{{ .GroupLabels }} | {{ .GroupLabels.SortedPairs }} => alertname=ProbeSlack, probe_run=fd8542e6 | alertname=ProbeSlack, probe_run=fd8542e6
{{ $g := .GroupLabels.Names }}{{ (.CommonLabels.Remove $g).Names }} => [instance probe_receiver severity]
{{ .GroupLabels.Names | .CommonLabels.Remove | len }} => 3
{{ range $k, $v := .GroupLabels }}{{ $k }}:{{ $v }} {{ end }} => alertname:ProbeSlack probe_run:fd8542e6 
{{ range $i, $a := .Alerts.Firing }}{{ $i }}{{ $a.Status }}{{ end }}{{ range .Alerts.Resolved }}x{{ else }} none{{ end }} => 0firing none
{{ index .GroupLabels.SortedPairs 1 }} {{ index .GroupLabels.Names 0 }} => {probe_run fd8542e6} alertname
{{ slice .GroupLabels.Names 1 }} {{ slice "abcdef" 1 3 }} {{ len (slice .Alerts 0 0) }} => [probe_run] bc 0
{{ printf "%T %T %T %T" .Alerts .GroupLabels .GroupLabels.SortedPairs .GroupLabels.Names }} => template.Alerts template.KV template.Pairs []string
{{ .CommonLabels.Remove }} =!> wrong number of args for Remove: want 1 got 0
{{ .CommonLabels.Remove "x" }} =!> wrong type for value; expected []string; got string
{{ .Alerts.Nope }} =!> can't evaluate field Nope in type template.Alerts
{{ .Receiver 1 }} =!> can't give argument to non-function .Receiver
{{ join " " .GroupLabels }} =!> expected []string; got template.KV
"#,
    );
}

#[test]
fn times_and_durations() {
    let set = TemplateSet::new();
    table(
        &set,
        r#"
{{ with index .Alerts 0 }}{{ .StartsAt }}|{{ .EndsAt }}{{ end }} => 2020-09-13 12:26:40.123 +0000 UTC|0001-01-01 00:00:00 +0000 UTC
{{ (index .Alerts 0).StartsAt | date "Mon Jan _2 15:04:05.000 MST 2006" }} => Sun Sep 13 12:26:40.123 UTC 2020
{{ (index .Alerts 0).StartsAt | date "3:04PM -07:00 Z07:00 02/01/06 002 January Monday" }} => 12:26PM +00:00 Z 13/09/20 257 September Sunday
{{ (index .Alerts 0).StartsAt | tz "+05:30" | date "2006-01-02T15:04:05.999Z07:00 MST" }} => 2020-09-13T17:56:40.123+05:30 +0530
{{ (index .Alerts 0).StartsAt | tz "UTC" }} => 2020-09-13 12:26:40.123 +0000 UTC
{{ (index .Alerts 0).StartsAt.Format "15:04" }} {{ (index .Alerts 0).StartsAt.Unix }} => 12:26 1600000000
{{ (index .Alerts 0).EndsAt.IsZero }} {{ (index .Alerts 0).StartsAt.IsZero }} => true false
{{ since (index .Alerts 0).StartsAt }} {{ (since (index .Alerts 0).StartsAt).Seconds }} => 1m30.5s 90.5
{{ since (index .Alerts 0).StartsAt | humanizeDuration }} {{ ((index .Alerts 0).StartsAt | since).Round 60000000000 }} => 1m 30s 2m0s
{{ humanizeDuration 3661 }} {{ trimSpace "  a b  " }} {{ toLower "AbC" }} => 1h 1m 1s a b abc
{{ title "hELLO wORLD-foo_bar it's" }} => Hello World-Foo_bar It's
{{ reReplaceAll "(a+)b" "<$1>" "aab" }} {{ safeHtml "<b>" }} {{ stringSlice }} => <aa> <b> []
{{ tz "Mars/Olympus" (index .Alerts 0).StartsAt }} =!> error calling tz: unknown time zone Mars/Olympus
{{ date "2006" "x" }} =!> wrong type for value; expected time.Time; got string
{{ query "up" }} =!> function "query" not defined
"#,
    );
    if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        table(
            &set,
            r#"
{{ (index .Alerts 0).StartsAt | tz "Europe/Berlin" }} => 2020-09-13 14:26:40.123 +0200 CEST
{{ (index .Alerts 0).EndsAt | tz "America/New_York" | date "2006 MST" }} => 0000 LMT
"#,
        );
    }
}

#[test]
fn define_template_block() {
    let mut set = TemplateSet::new();
    set.add_file(
        "lib.tmpl",
        r#"{{ define "greet" }}hi {{ . }}{{ end }}{{ define "dollar" }}{{ $.Status }}{{ end }}
{{ define "loop" }}{{ template "loop" . }}{{ end }}
{{ define "broken" }}
{{ .Nope }}{{ end }}"#,
    )
    .unwrap();
    table(
        &set,
        r#"
{{ template "greet" "bob" }}|{{ template "greet" }} => hi bob|hi <no value>
{{ with .Alerts }}{{ template "dollar" index . 0 }}{{ end }} => firing
{{ define "local" }}L{{ .Receiver }}{{ end }}{{ template "local" . }} => Lslack
{{ block "blk" .Status }}[{{ . }}]{{ end }} => [firing]
{{ $x := 1 }}{{ define "v" }}{{ $x }}{{ end }} =!> undefined variable "$x"
{{ if true }}{{ define "x" }}{{ end }}{{ end }} =!> unexpected <define> in operand
{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }} =!> multiple definition of template "a"
{{ define 1 }}{{ end }} =!> unexpected "1" in define clause
{{ template "loop" . }} =!> exceeded maximum template depth (200)
"#,
    );
    assert_eq!(
        render(
            &set,
            r#"{{ define "a" }}1{{ end }}{{ define "a" }} {{ end }}{{ template "a" }}"#
        ),
        Ok("1".into())
    );
    let e = render(&set, r#"{{ template "broken" . }}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: lib.tmpl:4:3: executing \"broken\" at <.Nope>: \
         can't evaluate field Nope in type *template.Data"
    );
    // A render's own definitions don't leak into the set.
    assert!(!set.has_template("local"));
}

#[test]
fn template_set_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TemplateSet>();
}

#[test]
fn trim_markers_in_definitions() {
    let mut set = TemplateSet::new();
    set.add_file(
        "og.tmpl",
        r#"{{ define "og.description" }}{{ .CommonAnnotations.SortedPairs.Values | join " " }}
{{ if gt (len .Alerts.Firing) 0 -}}
Alerts Firing:
{{ template "__text_alert_list" .Alerts.Firing }}
{{- end }}
{{ if gt (len .Alerts.Resolved) 0 -}}
Alerts Resolved:
{{ template "__text_alert_list" .Alerts.Resolved }}
{{- end }}
{{- end }}"#,
    )
    .unwrap();
    let out = render(&set, r#"{{ template "og.description" . }}"#).unwrap();
    assert!(
        out.starts_with(
            "ProbePagerDuty on db-2\nAlerts Firing:\nLabels:\n - alertname = ProbeSlack\n"
        ),
        "{out:?}"
    );
    assert!(out.ends_with("g0.tab=1\n\n"), "{out:?}");
}

#[test]
fn embedded_defaults_all_parse() {
    let set = TemplateSet::new();
    for name in [
        "slack.default.title",
        "jira.default.priority",
        "msteamsv2.default.text",
        "email.default.subject",
        "email.default.html",
        "googlechat.default.message",
    ] {
        assert!(set.has_template(name), "{name}");
    }
}
