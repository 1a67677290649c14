//! Writing the Prometheus text exposition format (0.0.4) as Prometheus 3.x's `expfmt`
//! (`text_create.go`: `writeName`, `writeEscapedString`, `writeNameAndLabelPairs`,
//! `writeFloat`) writes it, for every text writer of Strata (`/federate`, the push
//! gateway's `/metrics` and persistence file, `/metrics`).
//!
//! Names are written bare when they pass the legacy rule and quoted otherwise: a metric
//! name that is not `[a-zA-Z_:][a-zA-Z0-9_:]*` goes quoted *inside* the braces
//! (`{"my.metric",a="b"}`), a label name that is not `[a-zA-Z_][a-zA-Z0-9_]*` is quoted
//! (`{"label.with.dot"="v"}`). Inside quotes (names and label values) `\`, `"` and a newline
//! are escaped; `# HELP` text escapes `\` and newline only. One deliberate difference:
//! `expfmt` checks label names with the *metric*-name rule, so it writes `a:b="v"` bare,
//! which no text parser (Prometheus's included) reads back as a label name; here label
//! names use the label-name rule and such a name is quoted.
//!
//! This module only writes; what a name may contain is decided at ingestion
//! ([`strata_storage::Labels::validate_name`]).
//!
//! # Example
//!
//! ```
//! use strata_ingest::expfmt::write_sample;
//!
//! let mut out = String::new();
//! write_sample(&mut out, "my.metric", [("a\"b", "x\ny")], 1.5, Some(1000));
//! assert_eq!(out, "{\"my.metric\",\"a\\\"b\"=\"x\\ny\"} 1.5 1000\n");
//! ```

use std::borrow::Cow;

use strata_grammar::{format_go_float, is_legacy_label_name, is_legacy_metric_name};

/// A name as Prometheus's `model.EscapeName` writes it with `UnderscoreEscaping` (what a
/// client that did not ask for `escaping=allow-utf-8` gets): unchanged when legacy-valid,
/// else every character that is not a letter, `_`, `:` or (past the first) a digit becomes
/// `_`.
pub fn underscore_escape(name: &str) -> Cow<'_, str> {
    if is_legacy_metric_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
                {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// A label name for a client without UTF-8 names: unchanged when it passes the legacy
/// label-name rule, else every character that is not a letter, `_` or (past the first) a
/// digit becomes `_` (unlike `model.EscapeName`, a `:` too: `a:b="v"` would not parse back).
pub fn underscore_escape_label(name: &str) -> Cow<'_, str> {
    if is_legacy_label_name(name) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()) {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

/// `s` with `\` → `\\`, newline → `\n` and, when `quote`, `"` → `\"` (Go's
/// `writeEscapedString`).
pub fn escape(s: &str, quote: bool) -> Cow<'_, str> {
    if !s.contains(|c| c == '\\' || c == '\n' || (quote && c == '"')) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    write_escaped(&mut out, s, quote);
    Cow::Owned(out)
}

/// Appends `s` escaped as [`escape`] does.
pub fn write_escaped(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    write_escaped(out, s, true);
    out.push('"');
}

/// A metric name: bare when legacy-valid, else quoted (Go's `writeName`).
pub fn write_name(out: &mut String, name: &str) {
    if is_legacy_metric_name(name) {
        out.push_str(name);
    } else {
        write_quoted(out, name);
    }
}

/// A label name: bare when it passes the legacy label-name rule, else quoted.
pub fn write_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        write_quoted(out, name);
    }
}

/// `name{label="value",...}` (Go's `writeNameAndLabelPairs`): a name that is not
/// legacy-valid goes quoted first inside the braces; nothing in braces when there is
/// neither such a name nor a label. An empty `name` writes the labels only.
pub fn write_series<'a>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let mut sep = '{';
    let mut inside = false;
    if !name.is_empty() {
        if !is_legacy_metric_name(name) {
            out.push(sep);
            sep = ',';
            inside = true;
        }
        write_name(out, name);
    }
    for (k, v) in labels {
        out.push(sep);
        sep = ',';
        inside = true;
        write_label_name(out, k);
        out.push_str("=\"");
        write_escaped(out, v, true);
        out.push('"');
    }
    if inside {
        out.push('}');
    }
}

/// A sample value as Go's `writeFloat`: `0`, `1`, `-1`, `NaN`, `+Inf`, `-Inf`, else
/// `strconv.FormatFloat(v, 'g', -1, 64)`.
pub fn format_float(v: f64) -> Cow<'static, str> {
    if v == 1.0 {
        Cow::Borrowed("1")
    } else if v == 0.0 {
        Cow::Borrowed("0")
    } else if v == -1.0 {
        Cow::Borrowed("-1")
    } else {
        Cow::Owned(format_go_float(v, 'g', None))
    }
}

/// One sample line: series, value, optional timestamp (ms), newline (Go's `writeSample`).
pub fn write_sample<'a>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: f64,
    timestamp_ms: Option<i64>,
) {
    write_series(out, name, labels);
    out.push(' ');
    out.push_str(&format_float(value));
    if let Some(t) = timestamp_ms {
        out.push(' ');
        out.push_str(&t.to_string());
    }
    out.push('\n');
}

/// `# HELP name text` with the text escaped (`\` and newline).
pub fn write_help(out: &mut String, name: &str, help: &str) {
    out.push_str("# HELP ");
    write_name(out, name);
    out.push(' ');
    write_escaped(out, help, false);
    out.push('\n');
}

/// `# TYPE name kind`.
pub fn write_type(out: &mut String, name: &str, kind: &str) {
    out.push_str("# TYPE ");
    write_name(out, name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::exposition::{Entry, Format, MetricType, Parser, parse_series};

    fn series(name: &str, labels: &[(&str, &str)]) -> String {
        let mut s = String::new();
        write_series(&mut s, name, labels.iter().copied());
        s
    }

    #[test]
    fn underscore_escaping_as_prometheus() {
        assert_eq!(underscore_escape("up"), "up");
        assert_eq!(underscore_escape("my.metric"), "my_metric");
        assert_eq!(underscore_escape("1ab"), "_ab");
        assert_eq!(underscore_escape("a:b-c"), "a:b_c");
        assert_eq!(underscore_escape("über"), "_ber");
    }

    #[test]
    fn names_as_prometheus_writes_them() {
        assert_eq!(series("up", &[]), "up");
        assert_eq!(series("a:b", &[("job", "x")]), "a:b{job=\"x\"}");
        assert_eq!(series("my.metric", &[]), "{\"my.metric\"}");
        assert_eq!(
            series("my.metric", &[("label.with.dot", "v"), ("ok", "w")]),
            "{\"my.metric\",\"label.with.dot\"=\"v\",ok=\"w\"}"
        );
        assert_eq!(series("x", &[("a:b", "v")]), "x{\"a:b\"=\"v\"}");
        assert_eq!(
            series("x", &[("q\"\\", "a\"b\\c\nd")]),
            "x{\"q\\\"\\\\\"=\"a\\\"b\\\\c\\nd\"}"
        );
        assert_eq!(series("", &[("a", "b")]), "{a=\"b\"}");
    }

    #[test]
    fn help_type_and_values() {
        let mut s = String::new();
        write_help(&mut s, "m.x", "a \"q\" \\ and\nnext");
        write_type(&mut s, "m.x", "gauge");
        assert_eq!(
            s,
            "# HELP \"m.x\" a \"q\" \\\\ and\\nnext\n# TYPE \"m.x\" gauge\n"
        );
        for (v, t) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1e6, "1e+06"),
            (0.5, "0.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float(v), t, "{v}");
        }
        assert_eq!(escape("plain", true), Cow::Borrowed("plain"));
    }

    #[test]
    fn hostile_names_and_values_parse_back_unchanged() {
        let hostile = [
            "} 1 2\nfake_metric 1",
            "} 1 2 fake_metric 1",
            "quote\"d",
            "back\\slash",
            "{brace}",
            "名前.ü",
            "a b",
            "",
        ];
        // Names with a control character are refused at ingestion; values keep them.
        for name in hostile
            .iter()
            .filter(|n| !n.is_empty() && !n.contains('\n'))
        {
            for value in hostile {
                let mut out = String::new();
                write_help(&mut out, name, value);
                write_type(&mut out, name, "untyped");
                write_sample(&mut out, name, [(*name, value), ("ok", "1")], 2.0, Some(7));
                let mut p = Parser::new(out.as_bytes(), Format::PromText);
                let mut entries = Vec::new();
                while let Some(e) = p.next() {
                    entries.push(e.unwrap());
                }
                assert_eq!(entries.len(), 3, "{out}");
                assert!(matches!(&entries[0], Entry::Help { text, .. } if text == value));
                let Entry::Sample {
                    series,
                    value: v,
                    timestamp,
                    ..
                } = &entries[2]
                else {
                    panic!("{out}")
                };
                assert_eq!((*v, *timestamp), (2.0, Some(7)));
                let (n, l) = parse_series(series).unwrap();
                assert_eq!(n, *name);
                let want = vec![
                    (name.to_string(), value.to_string()),
                    ("ok".to_string(), "1".to_string()),
                ];
                assert_eq!(l, want, "{out}");
            }
        }
    }

    /// What the writer relies on in the parser: quoted names in comments, and names with
    /// control characters refused (values keep them).
    #[test]
    fn parser_reads_quoted_names_and_refuses_control_characters() {
        for bad in [
            &br#"{"a\nb"}"#[..],
            br#"up{"x\ny"="v"}"#,
            b"up{\"t\tab\"=\"v\"}",
        ] {
            assert!(
                parse_series(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_series(br#"up{a="x\ny"}"#).unwrap().1[0].1,
            "x\ny",
            "values keep them"
        );
        let body = "# HELP \"a b\" Help \"q\".\n# TYPE \"a b\" gauge\n{\"a b\"} 1\n";
        let mut p = Parser::new(body.as_bytes(), Format::PromText);
        let v: Vec<Entry<'_>> = std::iter::from_fn(|| p.next())
            .map(Result::unwrap)
            .collect();
        assert!(matches!(&v[0], Entry::Help { name: "a b", text } if text == "Help \"q\"."));
        assert!(matches!(
            &v[1],
            Entry::Type {
                name: "a b",
                kind: MetricType::Gauge
            }
        ));
    }
}
