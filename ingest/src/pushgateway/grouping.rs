//! The grouping key of a push URL: `job/<job>{/<label>/<value>}` (the part after
//! `/metrics/`), with the Pushgateway's `@base64` encoding (URL-safe, padding optional, `=`
//! for the empty value) for values that contain `/` or are empty.

use std::collections::BTreeMap;

use base64::Engine as _;
use strata_grammar::is_legacy_label_name;

/// Parses `rest` (`job/x/instance/y`, `job@base64/eA/...`) into the grouping labels.
pub fn parse_grouping(rest: &str) -> Result<BTreeMap<String, String>, String> {
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if parts.len() < 2 || !parts.len().is_multiple_of(2) {
        return Err(format!(
            "failed to parse URL: {rest:?}: odd number of path components (need job/<job> followed by label/value pairs)"
        ));
    }
    let mut out = BTreeMap::new();
    for pair in parts.chunks(2) {
        let (raw_name, raw_value) = (pair[0], pair[1]);
        let (name, value) = match raw_name.strip_suffix("@base64") {
            Some(n) => (n, decode_base64(raw_value)?),
            None => (raw_name, raw_value.to_owned()),
        };
        if !is_legacy_label_name(name) || name.starts_with("__") {
            return Err(format!("improper label name {name:?}"));
        }
        if out.insert(name.to_owned(), value).is_some() {
            return Err(format!("duplicate label name {name:?} in the grouping key"));
        }
    }
    if parts[0] != "job" && parts[0] != "job@base64" {
        return Err("the grouping key must start with job/<job>".into());
    }
    if out.get("job").is_none_or(|j| j.is_empty()) {
        return Err("job name is required".into());
    }
    Ok(out)
}

fn decode_base64(v: &str) -> Result<String, String> {
    let trimmed = v.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| format!("invalid base64 encoding in label value {v:?}: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("label value {v:?} is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_base64_values() {
        let g = parse_grouping("job/batch/instance/a").unwrap();
        assert_eq!(g["job"], "batch");
        assert_eq!(g["instance"], "a");
        let g =
            parse_grouping("job@base64/cGcvcHJvYmU/path@base64/L2EvYg==/empty@base64/=").unwrap();
        assert_eq!(g["job"], "pg/probe");
        assert_eq!(g["path"], "/a/b");
        assert_eq!(g["empty"], "");
    }

    #[test]
    fn bad_keys() {
        assert!(parse_grouping("job/x/onlykey").is_err());
        assert!(parse_grouping("job/x/bad-label/v").is_err());
        assert!(parse_grouping("job/x/lbl@base64/!!notbase64!!").is_err());
        assert!(parse_grouping("job/").is_err());
        assert!(parse_grouping("instance/a/job/x").is_err());
        assert!(parse_grouping("job/x/__meta/v").is_err());
    }
}
