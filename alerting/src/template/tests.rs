//! Tests for the template engine: Prometheus docs examples, each function, Go formatting.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::{QueryRunner, QuerySample, Template, TemplateData, TemplateError, expand};
use strata_grammar::format_go_float as format_float;

struct Fake;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample(l: &[(&str, &str)], value: f64) -> QuerySample {
    QuerySample {
        labels: labels(l),
        value,
    }
}

impl QueryRunner for Fake {
    fn query(&self, q: &str) -> Result<Vec<QuerySample>, String> {
        match q {
            "up" => Ok(vec![
                sample(&[("__name__", "up"), ("instance", "b:9090")], 1.0),
                sample(&[("__name__", "up"), ("instance", "a:9090")], 0.0),
            ]),
            "some_metric{instance='someinstance'}" => Ok(vec![sample(&[], 1234567.0)]),
            "str" => Ok(vec![sample(&[("__value__", "hello")], 0.0)]),
            "none" => Ok(vec![]),
            _ => Err(format!("bad query {q:?}")),
        }
    }
    fn now(&self) -> f64 {
        1_600_000_000.0
    }
}

fn run_v(text: &str, value: f64) -> Result<String, TemplateError> {
    let data = TemplateData {
        labels: labels(&[("instance", "host.example.com:9100"), ("job", "node")]),
        external_labels: labels(&[("cluster", "eu1")]),
        external_url: "https://prom.example.com/prom/x%20y".into(),
        value,
    };
    expand("test", text, &data, &Fake)
}

/// Runs one case per line with `$value` = 42: `template => output` or
/// `template =!> error substring`.
fn table(cases: &str) {
    for line in cases.lines().filter(|l| !l.is_empty()) {
        if let Some((text, want)) = line.split_once(" =!> ") {
            let e = run_v(text, 42.0).unwrap_err().to_string();
            assert!(
                e.starts_with("template: test:") && e.contains(want),
                "{text}: {e}"
            );
        } else {
            let (text, want) = line.split_once(" =>").unwrap();
            let want = want.strip_prefix(' ').unwrap_or(want);
            assert_eq!(run_v(text, 42.0).as_deref(), Ok(want), "{text}");
        }
    }
}

#[test]
fn docs_examples() {
    table(
        r#"
{{ $labels.instance }} of job {{ $labels.job }} is down. => host.example.com:9100 of job node is down.
{{ with query "some_metric{instance='someinstance'}" }}{{ . | first | value | humanize }}{{ end }} => 1.235M
{{ range query "up" }}{{ .Labels.instance }} {{ .Value }}:{{ end }} => b:9090 1:a:9090 0:
{{ if gt $value 80.0 }}high{{ else }}low{{ end }} => low
{{ if gt .Value 80 }}hi{{ else if gt .Value 40 }}mid{{ else }}lo{{ end }} => mid
{{ printf "%.2f" $value }} => 42.00
{{ "abc" | toUpper }} => ABC
{{ reReplaceAll "(a*)bc" "x$1" "aaabc" }} => xaaa
{{ $value | humanize }} => 42
Value is {{ $value }} => Value is 42
no {template} => no {template}
[{{ $labels.missing }}][{{ .Labels.missing }}] => [][]
{{ .ExternalLabels.cluster }} {{ $externalLabels.cluster }} => eu1 eu1
{{ .ExternalURL }} {{ $externalURL }} => https://prom.example.com/prom/x%20y https://prom.example.com/prom/x%20y
"#,
    );
    assert_eq!(
        run_v("{{ if gt $value 80.0 }}high{{ end }}", 90.0).unwrap(),
        "high"
    );
}

#[test]
fn value_printing() {
    for (v, want) in [
        (42.0, "42"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e-7, "1e-07"),
        (123456789.0, "1.23456789e+08"),
        (100000.0, "100000"),
        (-2.5, "-2.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(run_v("{{ $value }}", v).unwrap(), want, "{v}");
    }
    table(
        r#"
{{ 42 }} {{ 1e3 }} {{ -7 }} {{ 0x1F }} {{ 'a' }} {{ true }} {{ 1.5 }} => 42 1000 -7 31 97 true 1.5
{{ .Labels }} => map[instance:host.example.com:9100 job:node]
{{ query "up" | first }} => {map[__name__:up instance:b:9090] 1}
{{ (args 1 "x").arg0 }} {{ (args 1).nope }} => 1 <no value>
{{ "\"c\" \\ \u00e9 \x41" }} {{ `raw\n` }} => "c" \ é A raw\n
"#,
    );
    assert_eq!(run_v(r#"{{ "a\tb\n" }}"#, 0.0).unwrap(), "a\tb\n");
}

#[test]
fn trim_and_comments() {
    table(
        r#"
a  {{- 1 -}}   b => a1b
a {{/* comment */}} b => a  b
a {{- /* comment */ -}} b => ab
{{ -1 }} => -1
"#,
    );
    assert_eq!(run_v("a \n{{- 1 -}}\n\t b", 0.0).unwrap(), "a1b");
    assert_eq!(run_v("{{ if\n  true }}x\n{{ end }}", 0.0).unwrap(), "x\n");
    let e = run_v("line1\n{{ .Nope }}", 0.0).unwrap_err().to_string();
    assert!(e.starts_with("template: test:2:3: executing"), "{e}");
}

#[test]
fn truthiness_logic_and_comparisons() {
    table(
        r#"
{{ if false }}T{{ else if 0 }}T{{ else if 0.0 }}T{{ else }}F{{ end }} => F
{{ if "" }}T{{ else if (args 1).nope }}T{{ else if query "none" }}T{{ end }} =>
{{ if query "up" }}A{{ end }}{{ if $labels }}B{{ end }}{{ if 1 }}C{{ end }} => ABC
{{ and 1 "x" }} {{ and 1 0 }} {{ or 0 false }} {{ or 0 "" 3 }} {{ not 0 }} => x 0 false 3 true
{{ and 0 (first (query "none")) }} {{ 1 | and 2 }} => 0 1
{{ eq 1 1 }} {{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ eq 1 1.0 }} {{ eq .Value 42 }} => true true true true true
{{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2 }} => true true true false
{{ eq 1 "a" }} =!> error calling eq: incompatible types for comparison
{{ lt true false }} =!> invalid type for comparison
{{ if nil }}x{{ end }} =!> nil is not a command
"#,
    );
}

#[test]
fn variables_and_control_flow() {
    table(
        r#"
{{ $x := 1 }}{{ $x = 2 }}{{ $x }} => 2
{{ $x := 1 }}{{ if true }}{{ $x = 3 }}{{ $y := 4 }}{{ end }}{{ $x }} => 3
{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }} => instance=host.example.com:9100;job=node;
{{ range $i, $s := query "up" }}{{ $i }}{{ $s.Labels.instance }},{{ end }} => 0b:9090,1a:9090,
{{ range query "none" }}x{{ else }}empty{{ end }} => empty
{{ range $i := 5 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $i }}{{ end }} => 02
{{ with .Labels.job }}job={{ . }}{{ end }}{{ with .Labels.x }}x{{ else }} none{{ end }} => job=node none
{{ range .Labels }}{{ $.Value }}{{ end }} => 4242
{{ (index (query "up") 1).Labels.instance }} => a:9090
{{ range $i, $v := query "up" }}{{ if $i }}, {{ end }}{{ $v.Labels.instance }}{{ end }} => b:9090, a:9090
{{ with $x := humanize $value }}{{ $x }}/{{ . }}{{ end }} => 42/42
{{ if and (eq $labels.job "node") (gt $value 10.0) }}yes{{ end }} => yes
{{ .Labels.job | toUpper | printf "[%s]" }} {{ "a" | printf "%s-%s" "b" }} => [NODE] b-a
{{ printf "%.1f" (query "up" | first | value) }} {{ if not (query "none") }}none{{ end }} => 1.0 none
{{ $v := "" }}{{ range query "up" }}{{ $v = .Labels.instance }}{{ end }}{{ $v }} => a:9090
"#,
    );
}

#[test]
fn prometheus_functions() {
    table(
        r#"
{{ range query "up" | sortByLabel "instance" }}{{ label "instance" . }} {{ end }} => a:9090 b:9090 
{{ query "str" | first | strvalue }} => hello
{{ match "^ho" "host" }} {{ match "^x" "host" }} => true false
{{ "hello wORLD-foo_bar" | title }} {{ "AbC" | toLower }} {{ safeHtml "<b>" }} => Hello WORLD-Foo_bar abc <b>
{{ $labels.instance | stripPort }} {{ stripPort "[::1]:80" }} {{ stripPort "h" }} => host.example.com ::1 h
{{ $labels.instance | stripDomain }} {{ stripDomain "1.2.3.4:80" }} => host:9100 1.2.3.4:80
{{ graphLink "rate(x[5m]) > 1" }} => /graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=0
{{ tableLink "up" }} => /graph?g0.expr=up&g0.tab=1
{{ externalURL }} {{ pathPrefix }} => https://prom.example.com/prom/x%20y /prom/x y
{{ parseDuration "1h30m" }} {{ parseDuration "1d" }} {{ parseDuration "500ms" }} => 5400 86400 0.5
{{ toTime 1600000000 }} => 2020-09-13 12:26:40 +0000 UTC
{{ toDuration 3723 }} {{ toDuration 1.5 }} {{ toDuration 0.0015 }} {{ toDuration 0 }} => 1h2m3s 1.5s 1.5ms 0s
{{ now }} {{ now | humanizeTimestamp }} => 1.6e+09 2020-09-13 12:26:40 +0000 UTC
{{ (args 1 "a").arg1 }} {{ len (args 1 2) }} {{ len "héllo" }} {{ len .Labels }} => a 2 6 2
{{ index .Labels "job" }} {{ index "abc" 1 }} => node 98
{{ query "none" | first }} =!> error calling first: first() called on vector with no elements
{{ query "bad" }} =!> error calling query: bad query
{{ reReplaceAll "(" "" "x" }} =!> error calling reReplaceAll: regexp: Compile
{{ parseDuration "1x" }} =!> unknown unit "x"
{{ parseDuration "5m1h" }} =!> not a valid duration string
{{ index .Labels 1 }} =!> error calling index
"#,
    );
}

#[test]
fn humanize_functions() {
    table(
        r#"
{{ humanize 0 }} {{ humanize 42 }} {{ humanize 1234567 }} {{ humanize 1e-30 }} => 0 42 1.235M 1e-06y
{{ humanize 0.00123 }} {{ humanize -1500.0 }} {{ humanize "1000" }} => 1.23m -1.5k 1k
{{ humanize1024 1 }} {{ humanize1024 1024 }} {{ humanize1024 1048576.0 }} => 1 1ki 1Mi
{{ humanizeDuration 0 }} {{ humanizeDuration 90061 }} => 0s 1d 1h 1m 1s
{{ humanizeDuration 3661 }} {{ humanizeDuration 61 }} => 1h 1m 1s 1m 1s
{{ humanizeDuration 3.5 }} {{ humanizeDuration -90 }} => 3.5s -1m 30s
{{ humanizeDuration 0.0012 }} {{ humanizeDuration 0.000001 }} => 1.2ms 1us
{{ humanizeDuration (toDuration 120) }} => 2m 0s
{{ humanizePercentage 0.1234 }} {{ humanizePercentage 1 }} => 12.34% 100%
{{ humanizeTimestamp 1435065584.128 }} => 2015-06-23 13:19:44.128 +0000 UTC
{{ humanizeTimestamp 0 }} => 1970-01-01 00:00:00 +0000 UTC
{{ humanize "x" }} =!> error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax
{{ humanize true }} =!> error calling humanize: can't convert bool to float
"#,
    );
    assert_eq!(
        run_v("{{ humanizeTimestamp $value }}", f64::NAN).unwrap(),
        "NaN"
    );
    assert_eq!(
        run_v("{{ humanize $value }}", f64::INFINITY).unwrap(),
        "+Inf"
    );
}

#[test]
fn printf_and_print() {
    table(
        r#"
{{ printf "%s|%v|%q" "a\"b" 3 "x\n" }} => a"b|3|"x\n"
{{ printf "%d|%5d|%-5d|%05d|%+d" 42 42 42 -42 7 }} => 42|   42|42   |-0042|+7
{{ printf "%x|%X|%#x|%o|%b|%c" 255 255 255 8 5 65 }} => ff|FF|0xff|10|101|A
{{ printf "%f|%.2f|%5.1f|%-8.3f|" 1.23456 1.23456 1.23456 2.0 }} => 1.234560|1.23|  1.2|2.000   |
{{ printf "%08.3f|%+.1f" -3.5 1.0 }} => -003.500|+1.0
{{ printf "%e|%.2e|%E|%e" 42.0 123456.0 0.000123 0.0 }} => 4.200000e+01|1.23e+05|1.230000E-04|0.000000e+00
{{ printf "%g|%.4g|%.4g|%.3g" 0.000012345 1234567.0 42.0 0.0001234 }} => 1.2345e-05|1.235e+06|42|0.000123
{{ printf "%g|%G|%v|%5.1f|%v" 1e21 1e-10 $value -1.0 (humanize 1) }} => 1e+21|1E-10|42| -1.0|1
{{ printf "%-4s|%4s|%.2s|%x|%X" "ab" "ab" "abc" "hi" "hi" }} => ab  |  ab|ab|6869|6869
{{ printf "%d|%s|%f" 42.0 1.5 3 }} => %!d(float64=42)|%!s(float64=1.5)|%!f(int=3)
{{ printf "%d %d" 1 }}|{{ printf "%d" 1 "x" 2.0 }} => 1 %!d(MISSING)|1%!(EXTRA string=x, float64=2)
{{ printf "100%% %T %t %v" 1.0 true (args).x }} => 100% float64 true <nil>
{{ printf "%s %d" (toDuration 90) .ExternalLabels }} => 1m30s map[%!d(string=cluster):%!d(string=eu1)]
{{ printf "%.1f%%" 12.345 }} {{ 7 | printf "%03d" }} => 12.3% 007
{{ print 1 2 "a" "b" 3 }} => 1 2ab3
{{ html "<a href='x'>&</a>" }} => &lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;
{{ js "it's <b>\"" }} {{ urlquery "a b&c" }} => it\'s \u003Cb\u003E\" a+b%26c
"#,
    );
    assert_eq!(run_v(r#"{{ println 1 "a" }}"#, 0.0).unwrap(), "1 a\n");
}

#[test]
fn float_formatting_matches_strconv() {
    for (x, fmt, prec, want) in [
        (0.125, 'f', Some(2), "0.12"),
        (0.375, 'f', Some(2), "0.38"),
        (2.5, 'f', Some(0), "2"),
        (1234.5678, 'g', Some(6), "1234.57"),
        (1e6, 'g', Some(3), "1e+06"),
        (999.96, 'g', Some(4), "1000"),
        (99999.5, 'g', None, "99999.5"),
        (-0.0, 'g', None, "-0"),
        (5e-324, 'g', None, "5e-324"),
        (f64::MAX, 'g', None, "1.7976931348623157e+308"),
    ] {
        assert_eq!(format_float(x, fmt, prec), want, "{x} {fmt} {prec:?}");
    }
}

#[test]
fn parse_errors() {
    let e = Template::parse("__alert_X", "{{ foo }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template: __alert_X:1: function "foo" not defined"#
    );
    let e = Template::parse("t", "a\n\n{{ end }}").unwrap_err();
    assert!(matches!(e, TemplateError::Parse { line: 3, .. }), "{e:?}");
    table(
        r#"
{{ .Value  =!> unclosed action
{{ if .Value }}x =!> unexpected EOF
{{ end }} =!> unexpected {{end}}
{{ else }} =!> unexpected {{else}}
{{ $nope }} =!> undefined variable "$nope"
{{ (1 }} =!> unclosed left paren
{{ 1) }} =!> unexpected right paren
{{ "abc }} =!> unterminated quoted string
{{ 1 | 2 }} =!> non executable command in pipeline stage 2
{{ if }}{{ end }} =!> missing value for if
{{ break }} =!> {{break}} outside {{range}}
{{ @ }} =!> unrecognized character in action: U+0040 '@'
{{ 3x }} =!> bad number syntax: "3x"
{{ /* x */ }} =!> unrecognized character
{{/* x */ 1 }} =!> comment ends before closing delimiter
{{ define "x" }}{{ end }} =!> not supported
{{ printf "x" end }} =!> unexpected <end> in operand
{{ $a, $b := 1 }} =!> too many declarations in command
"#,
    );
}

#[test]
fn exec_errors() {
    let e = run_v(r#"{{ humanize "x" }}"#, 1.0).unwrap_err().to_string();
    let want =
        r#"template: test:1:115: executing "test" at <humanize "x">: error calling humanize: "#;
    assert_eq!(
        e,
        format!("{want}strconv.ParseFloat: parsing \"x\": invalid syntax")
    );
    table(
        r#"
{{ .Nope }} =!> can't evaluate field Nope in type struct
{{ .Value.x }} =!> at <.Value.x>: can't evaluate field x in type float64
{{ toUpper 1 }} =!> wrong type for value; expected string; got int
{{ humanize 1 2 }} =!> wrong number of args for humanize: want 1 got 2
{{ value 1 }} =!> expected *template.sample; got int
{{ range 1.5 }}{{ end }} =!> range can't iterate over 1.5
{{ 1 | .Value }} =!> can't give argument to non-function .Value
{{ $value 1 }} =!> can't give argument to non-function $value
"#,
    );
}
