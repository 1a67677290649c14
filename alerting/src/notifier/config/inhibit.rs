//! Inhibition rules: a firing source alert mutes target alerts that share the `equal`
//! labels, with Alertmanager's semantics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::locate::Locator;
use super::matchers::{self, Matcher, is_label_name, matches_all};
use super::scalar::{or_default, string_map};

/// One `inhibit_rules` entry. Public fields are as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InhibitRule {
    /// Optional `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated `source_match`.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated `source_match_re`.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_match_re: BTreeMap<String, String>,
    /// `source_matchers`.
    #[serde(
        deserialize_with = "matchers::de_list",
        serialize_with = "matchers::ser_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_matchers: Vec<Matcher>,
    /// Deprecated `target_match`.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated `target_match_re`.
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub target_match_re: BTreeMap<String, String>,
    /// `target_matchers`.
    #[serde(
        deserialize_with = "matchers::de_list",
        serialize_with = "matchers::ser_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub target_matchers: Vec<Matcher>,
    /// `equal`: labels whose values must be the same on source and target.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
    #[serde(skip)]
    source: Vec<Matcher>,
    #[serde(skip)]
    target: Vec<Matcher>,
}

impl InhibitRule {
    /// All source matchers (`source_match`, `source_match_re`, `source_matchers`).
    pub fn all_source_matchers(&self) -> &[Matcher] {
        &self.source
    }

    /// All target matchers.
    pub fn all_target_matchers(&self) -> &[Matcher] {
        &self.target
    }

    /// Whether the firing alert `source` inhibits the alert `target`: the target matches the
    /// target side, the source the source side, the `equal` labels agree (absent = empty),
    /// and the source is not itself a target of the rule when the target is also a source.
    pub fn inhibits(
        &self,
        source: &BTreeMap<String, String>,
        target: &BTreeMap<String, String>,
    ) -> bool {
        let get = |l: &BTreeMap<String, String>, n: &str| l.get(n).cloned().unwrap_or_default();
        matches_all(&self.target, target)
            && matches_all(&self.source, source)
            && self.equal.iter().all(|n| get(source, n) == get(target, n))
            && !(matches_all(&self.source, target) && matches_all(&self.target, source))
    }

    /// Checks label names and merges the deprecated maps into the matcher lists.
    pub(super) fn resolve(&mut self, path: &str, loc: &Locator<'_>) -> Result<(), ConfigError> {
        let at = |key: String, msg: String| loc.err_at(path, &format!("{path}.{key}"), msg);
        let merge = |side: &str, eq, re, list: &[Matcher]| {
            let mut all = matchers::from_maps(eq, re)
                .map_err(|(field, k, msg)| at(format!("{side}_{field}.{k}"), msg))?;
            all.extend(list.iter().cloned());
            all.sort();
            Ok::<_, ConfigError>(all)
        };
        self.source = merge(
            "source",
            &self.source_match,
            &self.source_match_re,
            &self.source_matchers,
        )?;
        self.target = merge(
            "target",
            &self.target_match,
            &self.target_match_re,
            &self.target_matchers,
        )?;
        match self.equal.iter().find(|l| !is_label_name(l)) {
            Some(l) => Err(at(
                "equal".into(),
                format!("invalid label name {l:?} in equal list"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    fn labels(s: &str) -> std::collections::BTreeMap<String, String> {
        s.split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn inhibits_with_equal_labels() {
        let cfg = Config::from_yaml_str(
            "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules:\n  - source_match: {severity: critical}\n    target_matchers: ['severity=~\"warning|critical\"']\n    equal: [cluster, zone]\n",
            "i.yml",
        )
        .unwrap();
        let rule = &cfg.inhibit_rules[0];
        let src = labels("severity=critical,cluster=a");
        assert!(rule.inhibits(&src, &labels("severity=warning,cluster=a")));
        assert!(!rule.inhibits(&src, &labels("severity=warning,cluster=b")));
        assert!(!rule.inhibits(&src, &labels("severity=warning,cluster=a,zone=z")));
        assert!(!rule.inhibits(&src, &labels("severity=info,cluster=a")));
        assert!(!rule.inhibits(&labels("severity=warning,cluster=a"), &src));
        // Both alerts match both sides: an alert does not inhibit its own kind.
        assert!(!rule.inhibits(&src, &labels("severity=critical,cluster=a")));
    }
}
