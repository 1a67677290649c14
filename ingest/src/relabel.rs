//! Relabeling as Prometheus's `relabel.Process`: every action, the anchored regex, `$1` /
//! `${name}` expansion (Go's `Regexp.Expand`: the longest name wins, `$1x` is `${1x}`),
//! missing source labels read as empty, and an empty replacement result deleting the target.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use strata_config::{RelabelAction, RelabelConfig};

/// A label set under relabeling, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// Applies `cfgs` in order. Returns `false` when a rule drops the set.
pub fn process(labels: &mut LabelSet, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|c| apply(labels, c))
}

fn source_value(labels: &LabelSet, cfg: &RelabelConfig) -> String {
    let mut out = String::new();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            out.push_str(&cfg.separator);
        }
        if let Some(v) = labels.get(name) {
            out.push_str(v);
        }
    }
    out
}

fn set(labels: &mut LabelSet, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
}

fn apply(labels: &mut LabelSet, cfg: &RelabelConfig) -> bool {
    let re = cfg.regex.regex();
    let val = source_value(labels, cfg);
    let target_value = || labels.get(&cfg.target_label).cloned().unwrap_or_default();
    match cfg.action {
        RelabelAction::Drop => !re.is_match(&val),
        RelabelAction::Keep => re.is_match(&val),
        RelabelAction::DropEqual => target_value() != val,
        RelabelAction::KeepEqual => target_value() == val,
        RelabelAction::Replace => {
            let Some(caps) = re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if target.is_empty() {
                return true;
            }
            let mut res = String::new();
            caps.expand(&cfg.replacement, &mut res);
            set(labels, target, res);
            true
        }
        RelabelAction::Lowercase => {
            set(labels, cfg.target_label.clone(), val.to_lowercase());
            true
        }
        RelabelAction::Uppercase => {
            set(labels, cfg.target_label.clone(), val.to_uppercase());
            true
        }
        RelabelAction::HashMod => {
            let sum = Md5::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&sum[8..16]);
            let m = u64::from_be_bytes(tail) % cfg.modulus.max(1);
            set(labels, cfg.target_label.clone(), m.to_string());
            true
        }
        RelabelAction::LabelMap => {
            let mapped: Vec<(String, String)> = labels
                .iter()
                .filter_map(|(name, value)| {
                    let caps = re.captures(name)?;
                    let mut res = String::new();
                    caps.expand(&cfg.replacement, &mut res);
                    Some((res, value.clone()))
                })
                .collect();
            for (n, v) in mapped {
                if !n.is_empty() {
                    set(labels, n, v);
                }
            }
            true
        }
        RelabelAction::LabelDrop => {
            labels.retain(|n, _| !re.is_match(n));
            true
        }
        RelabelAction::LabelKeep => {
            labels.retain(|n, _| re.is_match(n));
            true
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Cases from Prometheus's documentation and `relabel_test.go`, rewritten.
    use super::*;

    fn cfg(yaml: &str) -> RelabelConfig {
        serde_yaml_ng::from_str(yaml).expect("valid relabel config")
    }

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn run(input: &[(&str, &str)], yaml: &[&str]) -> Option<LabelSet> {
        let cfgs: Vec<RelabelConfig> = yaml.iter().map(|y| cfg(y)).collect();
        let mut l = ls(input);
        process(&mut l, &cfgs).then_some(l)
    }

    #[test]
    fn replace_with_defaults_and_groups() {
        let out = run(
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            &["source_labels: [a]\nregex: f(.*)\ntarget_label: d\nreplacement: ch${1}-ch${1}"],
        );
        assert_eq!(
            out,
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "choo-choo")
            ]))
        );
        // Several sources joined by the separator; no match leaves the set unchanged.
        let out = run(
            &[("a", "foo"), ("b", "bar")],
            &[
                "source_labels: [a, b]\nregex: 'f(.*);(.*)r'\ntarget_label: a\nreplacement: ${1}${2}",
            ],
        );
        assert_eq!(out, Some(ls(&[("a", "ooba"), ("b", "bar")])));
        let out = run(
            &[("a", "foo")],
            &["source_labels: [a]\nregex: nomatch\ntarget_label: x\nreplacement: y"],
        );
        assert_eq!(out, Some(ls(&[("a", "foo")])));
        // An empty result deletes the target; the regex is anchored.
        let out = run(
            &[("a", "foo"), ("b", "x")],
            &["source_labels: [c]\ntarget_label: b\nregex: (.*)\nreplacement: $1"],
        );
        assert_eq!(out, Some(ls(&[("a", "foo")])));
        let out = run(
            &[("a", "foo")],
            &["source_labels: [a]\nregex: o\ntarget_label: b\nreplacement: x"],
        );
        assert_eq!(out, Some(ls(&[("a", "foo")])), "regex must be anchored");
        // Target label from a capture group; `$1x` is the (missing) group "1x".
        let out = run(
            &[("a", "some-name-value")],
            &[
                "source_labels: [a]\nregex: 'some-([^-]+)-([^,]+)'\ntarget_label: ${1}\nreplacement: ${2}",
            ],
        );
        assert_eq!(
            out,
            Some(ls(&[("a", "some-name-value"), ("name", "value")]))
        );
        let out = run(
            &[("a", "foo")],
            &["source_labels: [a]\nregex: (f)oo\ntarget_label: b\nreplacement: $1x"],
        );
        assert_eq!(out, Some(ls(&[("a", "foo")])));
    }

    #[test]
    fn keep_drop_and_equal() {
        let l = &[("a", "foo"), ("b", "foo")];
        assert!(run(l, &["source_labels: [a]\nregex: f.*\naction: drop"]).is_none());
        assert!(run(l, &["source_labels: [a]\nregex: g.*\naction: drop"]).is_some());
        assert!(run(l, &["source_labels: [a]\nregex: f.*\naction: keep"]).is_some());
        assert!(run(l, &["source_labels: [a]\nregex: fo\naction: keep"]).is_none());
        assert!(
            run(
                l,
                &["source_labels: [a]\ntarget_label: b\naction: keepequal"]
            )
            .is_some()
        );
        assert!(
            run(
                l,
                &["source_labels: [a]\ntarget_label: b\naction: dropequal"]
            )
            .is_none()
        );
        let l2 = &[("a", "foo"), ("b", "bar")];
        assert!(
            run(
                l2,
                &["source_labels: [a]\ntarget_label: b\naction: keepequal"]
            )
            .is_none()
        );
        assert!(
            run(
                l2,
                &["source_labels: [a]\ntarget_label: b\naction: dropequal"]
            )
            .is_some()
        );
        // A missing source reads as empty: `keep` with `.+` drops sets without it.
        assert!(run(l2, &["source_labels: [zz]\nregex: .+\naction: keep"]).is_none());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // relabel_test.go: "baz" mod 1000 is 976 in Prometheus.
        let out = run(
            &[("a", "baz")],
            &["source_labels: [a]\ntarget_label: b\nmodulus: 1000\naction: hashmod"],
        );
        assert_eq!(out, Some(ls(&[("a", "baz"), ("b", "976")])));
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_and_case() {
        let out = run(
            &[("__meta_kubernetes_pod_label_app", "web"), ("b", "bar")],
            &["regex: __meta_kubernetes_pod_label_(.+)\naction: labelmap"],
        );
        assert_eq!(
            out,
            Some(ls(&[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("app", "web"),
                ("b", "bar")
            ]))
        );
        let out = run(
            &[("a", "1"), ("b1", "2"), ("b2", "3")],
            &["regex: b.\naction: labeldrop"],
        );
        assert_eq!(out, Some(ls(&[("a", "1")])));
        let out = run(
            &[("a", "1"), ("b1", "2"), ("b2", "3")],
            &["regex: b.\naction: labelkeep"],
        );
        assert_eq!(out, Some(ls(&[("b1", "2"), ("b2", "3")])));
        let out = run(
            &[("a", "AbCdE")],
            &[
                "source_labels: [a]\ntarget_label: lo\naction: lowercase",
                "source_labels: [a]\ntarget_label: up\naction: uppercase",
            ],
        );
        assert_eq!(
            out,
            Some(ls(&[("a", "AbCdE"), ("lo", "abcde"), ("up", "ABCDE")]))
        );
    }
}
