//! Output escaping: labels written by remote write with hostile names and values (dots,
//! UTF-8, quotes, backslashes, braces, a value that would forge a line `fake_metric 1`)
//! come back from `/federate` as Prometheus 3.x writes them, so a text parser reads back
//! exactly the stored series and nothing else; a label or metric name holding a control
//! character is refused at remote write with 400 and nothing of it stored.

use std::collections::BTreeSet;

use strata_ingest::exposition::{Entry, Format, Parser, parse_series};
use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

use crate::common::{Server, enc, post_write, reqwest};

/// A series as `(metric name, label pairs sorted by name)`.
type Series = (String, Vec<(String, String)>);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn write(series: &[(&str, &[(&str, &str)])], t: i64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .enumerate()
            .map(|(i, (name, labels))| TimeSeries {
                labels: std::iter::once(("__name__", *name))
                    .chain(labels.iter().copied())
                    .map(|(n, v)| Label {
                        name: n.into(),
                        value: v.into(),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: i as f64 + 0.5,
                    timestamp: t,
                }],
            })
            .collect(),
        metadata: vec![],
    };
    encode(&req)
}

/// `/federate` as a Prometheus 3.x federator asks for it (UTF-8 names allowed).
fn federate(s: &Server) -> String {
    federate_accepting(
        s,
        "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.5,*/*;q=0.1",
    )
}

fn federate_accepting(s: &Server, accept: &str) -> String {
    let r = reqwest::blocking_client()
        .get(s.url(&format!("/federate?match[]={}", enc("{__name__=~\".+\"}"))))
        .header("Accept", accept)
        .send()
        .expect("federate");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    r.text()
}

/// Every sample of a text body: its series, value and timestamp; and how many `# TYPE`
/// lines it has. Panics on anything a parser would refuse.
fn parse_back(text: &str) -> (Vec<(Series, f64, Option<i64>)>, usize) {
    let mut p = Parser::new(text.as_bytes(), Format::PromText);
    let mut samples = Vec::new();
    let mut types = 0;
    while let Some(e) = p.next() {
        match e.unwrap_or_else(|e| panic!("{e} in:\n{text}")) {
            Entry::Sample {
                series,
                value,
                timestamp,
                ..
            } => {
                let (name, mut labels) =
                    parse_series(series).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
                // Federation adds `instance=""` to series without one, as Prometheus does:
                // not part of what was written.
                labels.retain(|(n, v)| !(n == "instance" && v.is_empty()));
                labels.sort();
                samples.push(((name, labels), value, timestamp));
            }
            Entry::Type { .. } => types += 1,
            _ => {}
        }
    }
    (samples, types)
}

#[test]
fn federate_writes_hostile_names_and_values_so_they_parse_back_unchanged() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let forge = "} 1 2\nfake_metric 1";
    let series: &[(&str, &[(&str, &str)])] = &[
        (
            "my.metric",
            &[
                ("label.with.dot", "v"),
                ("quote\"d", "a\"b"),
                ("back\\slash", "c\\d"),
                ("{brace}", "}"),
                ("名前", "ü"),
                ("a b", forge),
                ("ok", "plain"),
            ],
        ),
        ("} 1 2 fake_metric 1", &[("x", "\n")]),
        ("quote\"d.name\\", &[("le", "\\\"\n")]),
        ("legacy_name", &[("job", "x\"y\\z\n}"), ("a:b", "colon")]),
        ("a:b", &[("instance", forge)]),
    ];
    let t = now_ms() - 1_000;
    assert_eq!(post_write(s.port, write(series, t)).expect("post"), 204);
    let text = federate(&s);
    assert!(
        !text.lines().any(|l| l.starts_with("fake_metric")),
        "a value forged a line:\n{text}"
    );
    let (got, types) = parse_back(&text);
    let got: BTreeSet<String> = got
        .into_iter()
        .map(|(series, v, ts)| format!("{series:?} {v} {ts:?}"))
        .collect();
    let want: BTreeSet<String> = series
        .iter()
        .enumerate()
        .map(|(i, (name, labels))| {
            let mut l: Vec<(String, String)> = labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            l.sort();
            let s: Series = (name.to_string(), l);
            format!("{s:?} {} {:?}", i as f64 + 0.5, Some(t))
        })
        .collect();
    assert_eq!(got, want, "federated:\n{text}");
    assert_eq!(types, series.len(), "one # TYPE per family:\n{text}");
    // The exact form Prometheus 3.x writes: quoted names inside the braces (and
    // `instance=""` added to a series without one).
    assert!(
        text.contains("# TYPE \"my.metric\" untyped\n{\"my.metric\",\"a b\"=\"} 1 2\\nfake_metric 1\",\"back\\\\slash\"=\"c\\\\d\",instance=\"\",\"label.with.dot\"=\"v\",ok=\"plain\",\"quote\\\"d\"=\"a\\\"b\",\"{brace}\"=\"}\",\"名前\"=\"ü\"} 0.5 "),
        "{text}"
    );
    assert!(
        text.contains("a:b{instance=\"} 1 2\\nfake_metric 1\"} 4.5 "),
        "{text}"
    );
    s.stop();
}

#[test]
fn remote_write_refuses_control_characters_in_names() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let t = now_ms() - 1_000;
    for (name, labels) in [
        ("refused_a", &[("new\nline", "v")][..]),
        ("refused_b", &[("tab\there", "v")]),
        ("refused_c", &[("nul\0", "v")]),
        ("refused_d", &[("del\x7f", "v")]),
        ("refused\ne", &[("job", "v")]),
    ] {
        let code = post_write(s.port, write(&[(name, labels)], t)).expect("post");
        assert_eq!(code, 400, "{name:?} {labels:?}");
    }
    // The same characters in values are data: accepted, and escaped on the way out.
    let code = post_write(
        s.port,
        write(&[("accepted", &[("v", "new\nline\ttab\0nul\x7f")])], t),
    )
    .expect("post");
    assert_eq!(code, 204);
    let text = federate(&s);
    let (got, _) = parse_back(&text);
    assert_eq!(got.len(), 1, "{text}");
    assert_eq!(got[0].0.0, "accepted");
    assert_eq!(got[0].0.1[0].1, "new\nline\ttab\0nul\x7f");
    s.stop();
}

#[test]
fn federate_escapes_names_with_underscores_for_a_client_without_utf8() {
    // A Prometheus 2.x federator does not send `escaping=allow-utf-8`: quoted names would
    // fail its whole scrape, so it gets Prometheus 3.x's underscore escaping.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let code = post_write(
        s.port,
        write(&[("my.metric", &[("label.x", "v\"q"), ("a:b", "c")])], t),
    )
    .expect("post");
    assert_eq!(code, 204);
    let text = federate_accepting(&s, "text/plain;version=0.0.4;q=1,*/*;q=0.1");
    assert!(
        text.contains(r#"my_metric{a_b="c",instance="",label_x="v\"q"}"#),
        "{text}"
    );
    let (got, _) = parse_back(&text);
    assert_eq!(got.len(), 1, "{text}");
    s.stop();
}
