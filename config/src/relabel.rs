//! Relabeling rules (`relabel_configs`, `metric_relabel_configs`,
//! `write_relabel_configs`, `alert_relabel_configs`): defaults, the anchored
//! regex (`^(?:...)$`) and Prometheus's per-action validation.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::de::deserialize_via;
use crate::labels::{NameValidationScheme, is_valid_label_name};

/// Default `separator`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Default `regex`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// Default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// `relabelTarget` from Prometheus: a label name possibly containing `$1` or `${name}`.
static RELABEL_TARGET: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok());

fn is_relabel_target(s: &str) -> bool {
    RELABEL_TARGET.as_ref().is_some_and(|r| r.is_match(s))
}

/// A relabeling action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    /// Set `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Keep only when `regex` matches.
    Keep,
    /// Drop when `regex` matches.
    Drop,
    /// Keep only when the source value equals `target_label`'s value.
    KeepEqual,
    /// Drop when the source value equals `target_label`'s value.
    DropEqual,
    /// Set `target_label` to md5(source) mod `modulus`.
    HashMod,
    /// Copy labels whose name matches `regex` to the expanded `replacement`.
    LabelMap,
    /// Remove labels whose name matches `regex`.
    LabelDrop,
    /// Remove labels whose name does not match `regex`.
    LabelKeep,
    /// Lower-case the source value into `target_label`.
    Lowercase,
    /// Upper-case the source value into `target_label`.
    Uppercase,
}

impl RelabelAction {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for RelabelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RelabelAction {
    /// Case-insensitive, like Prometheus.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::parse_str(d, "a relabel action", RelabelAction::parse)
    }
}

impl RelabelAction {
    /// Parses an action name, case-insensitively like Prometheus.
    pub fn parse(s: &str) -> Result<Self, String> {
        let all = [
            RelabelAction::Replace,
            RelabelAction::Keep,
            RelabelAction::Drop,
            RelabelAction::KeepEqual,
            RelabelAction::DropEqual,
            RelabelAction::HashMod,
            RelabelAction::LabelMap,
            RelabelAction::LabelDrop,
            RelabelAction::LabelKeep,
            RelabelAction::Lowercase,
            RelabelAction::Uppercase,
        ];
        let lower = s.to_lowercase();
        all.into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| format!("unknown relabel action {s:?}"))
    }
}

/// A relabel regex: the source text plus its anchored compilation.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    compiled: Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored as Prometheus's `relabel.NewRegexp` does,
    /// `^(?s:source)$` (literal braces as RE2 reads them).
    pub fn new(source: &str) -> Result<Self, String> {
        let compiled = strata_vocab::pattern::compile_anchored(source).map_err(|e| {
            format!(
                "invalid regex {source:?}: {}",
                strata_vocab::pattern::error_detail(&e)
            )
        })?;
        Ok(RelabelRegex {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The regex as written (without anchors).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The anchored compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.compiled
    }

    /// True for the default `(.*)`.
    pub fn is_default(&self) -> bool {
        self.source == DEFAULT_REGEX
    }

    fn default_regex() -> Self {
        // The default pattern is a constant known to compile.
        Self::new(DEFAULT_REGEX).unwrap_or_else(|_| RelabelRegex {
            source: DEFAULT_REGEX.to_owned(),
            compiled: Regex::new("").unwrap_or_else(|_| unreachable!("empty regex compiles")),
        })
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        Self::default_regex()
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelabelRegex({:?})", self.source)
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    /// An explicit `null` is the empty regex, as in Prometheus.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RelabelRegex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<RelabelRegex, E> {
                RelabelRegex::new("").map_err(E::custom)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RelabelRegex, E> {
                self.visit_none()
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<RelabelRegex, D2::Error> {
                crate::de::parse_str(d, "a regular expression", RelabelRegex::new)
            }
        }
        d.deserialize_option(V)
    }
}

/// One relabeling rule, defaults applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelabelConfig {
    /// `source_labels`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// `separator` (default `;`).
    pub separator: String,
    /// `regex` (default `(.*)`).
    pub regex: RelabelRegex,
    /// `modulus` (hashmod only).
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    /// `target_label`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    /// `replacement` (default `$1`).
    pub replacement: String,
    /// `action` (default `replace`).
    pub action: RelabelAction,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: RelabelAction::Replace,
        }
    }
}

impl RelabelConfig {
    /// Prometheus's `relabel.Config.Validate` for the given name scheme.
    pub fn validate(&self, scheme: NameValidationScheme) -> Result<(), String> {
        use RelabelAction::*;
        let action = self.action;
        let valid_name = |s: &str| is_valid_label_name(s, scheme);
        let valid_with_vars = |s: &str| match scheme {
            NameValidationScheme::Legacy => is_relabel_target(s),
            NameValidationScheme::Utf8 => !s.is_empty(),
        };
        if self.modulus == 0 && action == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        let target = &self.target_label;
        let target_ok = match action {
            Replace if target.contains('$') => valid_with_vars(target),
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual | HashMod => valid_name(target),
            _ => true,
        };
        if !target_ok {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {action} action"
            ));
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == LabelMap && !valid_with_vars(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {action} action",
                self.replacement
            ));
        }
        if matches!(action, KeepEqual | DropEqual)
            && (!self.regex.is_default()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default = "RelabelRegex::default_regex")]
    regex: RelabelRegex,
    #[serde(default)]
    modulus: u64,
    #[serde(default)]
    target_label: String,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: RelabelAction,
}

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = String;
    fn try_from(r: RawRelabelConfig) -> Result<Self, String> {
        let cfg = RelabelConfig {
            source_labels: r.source_labels.unwrap_or_default(),
            separator: r.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned()),
            regex: r.regex,
            modulus: r.modulus,
            target_label: r.target_label,
            replacement: r
                .replacement
                .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_owned()),
            action: r.action,
        };
        cfg.validate(NameValidationScheme::Utf8)?;
        Ok(cfg)
    }
}
deserialize_via!(RelabelConfig, RawRelabelConfig);

/// Deserializes a relabel list, rejecting `null` entries with `what`.
pub(crate) fn relabel_list(
    items: Option<Vec<Option<RelabelConfig>>>,
    what: &str,
) -> Result<Vec<RelabelConfig>, String> {
    crate::de::no_nulls(items, &format!("empty or null {what}"))
}
