//! Label sets and the metric/label name validation schemes Prometheus applies
//! to configured label names (`utf8`, the Prometheus 3 default, accepts any
//! non-empty name; `legacy` requires `[a-zA-Z_][a-zA-Z0-9_]*`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A set of label name/value pairs, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// How metric and label names are validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidationScheme {
    /// Any non-empty UTF-8 name (Prometheus 3 default).
    #[default]
    Utf8,
    /// Classic `[a-zA-Z_][a-zA-Z0-9_]*` names.
    Legacy,
}

/// How names are escaped when a target cannot handle UTF-8 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NameEscapingScheme {
    /// No escaping: request UTF-8 names.
    #[serde(rename = "allow-utf-8")]
    AllowUtf8,
    /// Replace invalid characters by underscores.
    #[serde(rename = "underscores")]
    Underscores,
    /// Escape dots and underscores.
    #[serde(rename = "dots")]
    Dots,
    /// Hex-escape invalid characters.
    #[serde(rename = "values")]
    Values,
}

static LEGACY_LABEL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new("^[a-zA-Z_][a-zA-Z0-9_]*$").ok());

/// Whether `name` is a valid label name under `scheme`.
pub(crate) fn is_valid_label_name(name: &str, scheme: NameValidationScheme) -> bool {
    match scheme {
        NameValidationScheme::Utf8 => !name.is_empty(),
        NameValidationScheme::Legacy => LEGACY_LABEL.as_ref().is_some_and(|r| r.is_match(name)),
    }
}

/// Checks every name of a label set.
pub(crate) fn validate_label_set(
    labels: &LabelSet,
    scheme: NameValidationScheme,
) -> Result<(), String> {
    for name in labels.keys() {
        if !is_valid_label_name(name, scheme) {
            return Err(format!("{name:?} is not a valid label name"));
        }
    }
    Ok(())
}

/// Deserializes an optional enum where the empty string means "unset".
pub(crate) fn empty_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let s = Option::<String>::deserialize(d)?;
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(v)).map(Some),
    }
}
