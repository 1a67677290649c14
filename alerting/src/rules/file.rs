//! Rule files: the YAML format of Prometheus (`groups` of `record`/`alert` rules), parsed
//! strictly and validated as `promtool check rules` does, with every problem reported as
//! `file:line:col: group "g", rule N, "name": what`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_config::Duration;
use strata_grammar::{Expr, ValueType, is_legacy_label_name, is_legacy_metric_name};

use crate::error::{AlertingError, Result};
use crate::template::Template;

/// A parsed and validated rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    /// The path as given (after glob expansion).
    pub path: String,
    /// Its groups in file order.
    pub groups: Vec<GroupDef>,
}

/// One rule group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDef {
    /// `name`.
    pub name: String,
    /// `interval` (ms); `None` = the global `evaluation_interval`.
    pub interval: Option<i64>,
    /// `query_offset` (ms); `None` = the global `rule_query_offset`.
    pub query_offset: Option<i64>,
    /// `limit` (0 = none).
    pub limit: usize,
    /// Group `labels`, added to every rule's labels (rule labels win).
    pub labels: BTreeMap<String, String>,
    /// The rules in order.
    pub rules: Vec<RuleDef>,
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleDef {
    /// `record` or `alert` name.
    pub name: String,
    /// True for alerting rules.
    pub alert: bool,
    /// The expression as written.
    pub expr_text: String,
    /// The parsed expression.
    pub expr: Expr,
    /// `for` (ms).
    pub hold: i64,
    /// `keep_firing_for` (ms).
    pub keep_firing_for: i64,
    /// `labels` (group labels merged in).
    pub labels: BTreeMap<String, String>,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    query_offset: Option<Duration>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "for")]
    hold: Option<Duration>,
    #[serde(default)]
    keep_firing_for: Option<Duration>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Expands `rule_files` globs (relative paths were made absolute by the config loader).
/// A pattern that matches nothing is not an error, as in Prometheus.
pub fn expand_globs(patterns: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for p in patterns {
        let paths = glob::glob(p)
            .map_err(|e| AlertingError::Invalid(vec![format!("rule_files: {p:?}: {e}")]))?;
        let mut found: Vec<PathBuf> = paths.filter_map(|r| r.ok()).collect();
        found.sort();
        for f in found {
            let s = f.to_string_lossy().into_owned();
            if seen.insert(s.clone()) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Reads, parses and validates every file; all problems of all files are reported together.
pub fn load_files(paths: &[String]) -> Result<Vec<RuleFile>> {
    let mut files = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(Path::new(p)).map_err(|source| AlertingError::Io {
            path: p.clone(),
            source,
        })?;
        match parse_rule_file(p, &text) {
            Ok(f) => files.push(f),
            Err(mut e) => errs.append(&mut e),
        }
    }
    if errs.is_empty() {
        Ok(files)
    } else {
        Err(AlertingError::Invalid(errs))
    }
}

/// Parses and validates one rule file's text. Errors are complete messages.
pub fn parse_rule_file(path: &str, text: &str) -> Result<RuleFile, Vec<String>> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            vec![match e.location() {
                Some(l) => {
                    let msg = e.to_string();
                    let suffix = format!(" at line {} column {}", l.line(), l.column());
                    let msg = msg.strip_suffix(&suffix).unwrap_or(&msg).to_owned();
                    format!("{path}:{}:{}: {msg}", l.line(), l.column())
                }
                None => format!("{path}: {e}"),
            }]
        })?
    };
    let locator = Locator::new(text);
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    let mut groups = Vec::new();
    let mut rule_index = 0usize;
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gpos = locator
            .nth("name", gi)
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        if g.name.is_empty() {
            errs.push(format!("{path}:{gpos}Groupname must not be empty"));
        } else if !names.insert(g.name.clone()) {
            errs.push(format!(
                "{path}:{gpos}{:?}: groupname: \"{}\" is repeated in the same file",
                g.name, g.name
            ));
        }
        let glabels = g.labels.unwrap_or_default();
        for k in glabels.keys() {
            if !is_legacy_label_name(k) {
                errs.push(format!(
                    "{path}:{gpos}group {:?}: invalid label name: {k}",
                    g.name
                ));
            }
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let at = locator.rule(rule_index);
            rule_index += 1;
            match check_rule(r, &glabels) {
                Ok(def) => rules.push(def),
                Err((name, msgs)) => {
                    for m in msgs {
                        errs.push(format!(
                            "{path}:{}group {:?}, rule {}, {:?}: {m}",
                            at.as_ref().map(|p| format!("{p}: ")).unwrap_or_default(),
                            g.name,
                            ri + 1,
                            name
                        ));
                    }
                }
            }
        }
        groups.push(GroupDef {
            name: g.name,
            interval: g.interval.map(|d| d.as_millis() as i64),
            query_offset: g.query_offset.map(|d| d.as_millis() as i64),
            limit: g.limit.unwrap_or(0),
            labels: glabels,
            rules,
        });
    }
    if errs.is_empty() {
        Ok(RuleFile {
            path: path.to_owned(),
            groups,
        })
    } else {
        Err(errs)
    }
}

/// Validates one rule as Prometheus's `RuleNode.Validate` and template checks do.
fn check_rule(
    r: RawRule,
    group_labels: &BTreeMap<String, String>,
) -> Result<RuleDef, (String, Vec<String>)> {
    let mut errs = Vec::new();
    let (name, alert) = match (&r.record, &r.alert) {
        (Some(rec), None) => (rec.clone(), false),
        (None, Some(a)) => (a.clone(), true),
        (Some(rec), Some(_)) => {
            errs.push("only one of 'record' and 'alert' must be set".to_owned());
            (rec.clone(), false)
        }
        (None, None) => {
            errs.push("one of 'record' or 'alert' must be set".to_owned());
            (String::new(), false)
        }
    };
    let expr_text = match &r.expr {
        Some(serde_yaml_ng::Value::String(s)) => s.clone(),
        Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
        Some(serde_yaml_ng::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    let mut expr = None;
    if expr_text.trim().is_empty() {
        errs.push("field 'expr' must be set in rule".to_owned());
    } else {
        match strata_grammar::parse(&expr_text) {
            Ok(e) => {
                let vt = e.value_type();
                if vt != ValueType::Vector && vt != ValueType::Scalar {
                    errs.push(format!(
                        "could not parse expression: invalid expression type {:?} for a rule, must be Scalar or instant Vector",
                        vt.documented_name()
                    ));
                } else {
                    expr = Some(e);
                }
            }
            Err(e) => errs.push(format!("could not parse expression: {e}")),
        }
    }
    if !alert {
        if r.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
            errs.push("invalid field 'annotations' in recording rule".to_owned());
        }
        if r.hold.is_some_and(|d| !d.is_zero()) {
            errs.push("invalid field 'for' in recording rule".to_owned());
        }
        if r.keep_firing_for.is_some_and(|d| !d.is_zero()) {
            errs.push("invalid field 'keep_firing_for' in recording rule".to_owned());
        }
        if !name.is_empty() && !is_legacy_metric_name(&name) {
            errs.push(format!("invalid recording rule name: {name}"));
        }
    } else if name.is_empty() || name.contains('\u{0}') {
        errs.push(format!("invalid alert name: {name}"));
    }
    let mut labels = group_labels.clone();
    for (k, v) in r.labels.unwrap_or_default() {
        if !is_legacy_label_name(&k) {
            errs.push(format!("invalid label name: {k}"));
        }
        if k == "__name__" {
            errs.push("invalid label name: __name__".to_owned());
        }
        labels.insert(k, v);
    }
    let annotations = r.annotations.unwrap_or_default();
    for k in annotations.keys() {
        if !is_legacy_label_name(k) {
            errs.push(format!("invalid annotation name: {k}"));
        }
    }
    if alert {
        for (k, v) in labels.iter() {
            if let Err(e) = Template::parse(&format!("__alert_{name}"), v) {
                errs.push(format!("label {k:?}: could not parse template: {e}"));
            }
        }
        for (k, v) in annotations.iter() {
            if let Err(e) = Template::parse(&format!("__alert_{name}"), v) {
                errs.push(format!("annotation {k:?}: could not parse template: {e}"));
            }
        }
    }
    match expr {
        Some(expr) if errs.is_empty() => Ok(RuleDef {
            name,
            alert,
            expr_text,
            expr,
            hold: r.hold.map(|d| d.as_millis() as i64).unwrap_or(0),
            keep_firing_for: r.keep_firing_for.map(|d| d.as_millis() as i64).unwrap_or(0),
            labels,
            annotations,
        }),
        _ => Err((name, errs)),
    }
}

/// Rules that record the same metric with the same labels in one group, as `promtool`
/// warns about: `(group, record name)` pairs.
pub fn duplicate_rules(f: &RuleFile) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in &f.groups {
        let mut seen = HashSet::new();
        for r in &g.rules {
            if r.alert {
                continue;
            }
            let key = (r.name.clone(), format!("{:?}", r.labels));
            if !seen.insert(key) {
                out.push((g.name.clone(), r.name.clone()));
            }
        }
    }
    out
}

/// Best-effort positions of keys in the YAML text (serde does not keep them).
struct Locator {
    /// `(line, column, key)` of every `key:` line.
    keys: Vec<(usize, usize, String)>,
}

impl Locator {
    fn new(text: &str) -> Locator {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            let mut col = line.len() - t.len() + 1;
            let body = match t.strip_prefix("- ") {
                Some(b) => {
                    let b2 = b.trim_start();
                    col += 2 + b.len() - b2.len();
                    b2
                }
                None => t,
            };
            if body.starts_with('#') {
                continue;
            }
            if let Some(colon) = body.find(':') {
                let key = body[..colon].trim().trim_matches(['"', '\'']);
                if !key.is_empty() && !key.contains(' ') {
                    keys.push((i + 1, col, key.to_owned()));
                }
            }
        }
        Locator { keys }
    }

    fn nth(&self, key: &str, n: usize) -> Option<String> {
        self.keys
            .iter()
            .filter(|(_, _, k)| k == key)
            .nth(n)
            .map(|(l, c, _)| format!("{l}:{c}"))
    }

    /// Position of the `n`-th rule (its `record:`/`alert:`/`expr:` key, whichever begins it).
    fn rule(&self, n: usize) -> Option<String> {
        self.keys
            .iter()
            .filter(|(_, _, k)| k == "record" || k == "alert")
            .nth(n)
            .map(|(l, c, _)| format!("{l}:{c}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        labels:\n          severity: page\n        annotations:\n          summary: \"{{ $labels.instance }} down\"\n";

    #[test]
    fn parses_a_good_file() {
        let f = parse_rule_file("r.yml", GOOD).unwrap();
        assert_eq!(f.groups.len(), 1);
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(30_000));
        assert_eq!(g.rules.len(), 2);
        assert!(!g.rules[0].alert);
        assert!(g.rules[1].alert);
        assert_eq!(g.rules[1].hold, 300_000);
    }

    #[test]
    fn reports_file_line_group_and_rule() {
        let bad = GOOD.replace("up == 0", "up ==");
        let e = parse_rule_file("r.yml", &bad).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(
                "r.yml:7:9: group \"g\", rule 2, \"Down\": could not parse expression:"
            ),
            "{}",
            e[0]
        );
    }

    #[test]
    fn rejects_what_promtool_rejects() {
        let cases = [
            (
                "groups:\n- name: a\n  rules:\n  - record: x\n    alert: y\n    expr: up\n",
                "only one of 'record' and 'alert' must be set",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - expr: up\n",
                "one of 'record' or 'alert' must be set",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - record: x\n",
                "field 'expr' must be set in rule",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: up\n",
                "invalid recording rule name: bad name",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n    for: 1m\n",
                "invalid field 'for' in recording rule",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n    annotations: {a: b}\n",
                "invalid field 'annotations' in recording rule",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    labels: {'0a': b}\n",
                "invalid label name: 0a",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    annotations: {a: '{{ $labels.x '}\n",
                "could not parse template",
            ),
            (
                "groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n",
                "is repeated in the same file",
            ),
            (
                "groups:\n- name: ''\n  rules: []\n",
                "Groupname must not be empty",
            ),
            (
                "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    bogus: 1\n",
                "unknown field `bogus`",
            ),
        ];
        for (text, want) in cases {
            let e = parse_rule_file("f.yml", text).unwrap_err();
            assert!(e.iter().any(|m| m.contains(want)), "{text}: {e:?}");
            assert!(e.iter().all(|m| m.starts_with("f.yml:")), "{e:?}");
        }
    }

    #[test]
    fn finds_duplicate_recording_rules() {
        let t = "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: up + 1\n";
        let f = parse_rule_file("f.yml", t).unwrap();
        assert_eq!(duplicate_rules(&f), vec![("a".to_owned(), "x".to_owned())]);
    }
}
