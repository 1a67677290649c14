//! Prometheus's legacy name rules (`model.IsValidLegacyMetricName`,
//! `LabelName.IsValidLegacy`): what may be written unquoted in PromQL and what rule files,
//! push grouping keys and the text exposition format accept.

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_rules() {
        assert!(is_legacy_label_name("_a1"));
        assert!(!is_legacy_label_name("1a"));
        assert!(!is_legacy_label_name("a:b"));
        assert!(!is_legacy_label_name(""));
        assert!(is_legacy_metric_name("a:b_total"));
        assert!(!is_legacy_metric_name("a.b"));
    }
}
