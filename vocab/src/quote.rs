//! Go string quoting as PromQL prints strings and label names.

use std::fmt::Write as _;

use crate::name::is_legacy_label_name;

/// Quotes a string like Go's `strconv.Quote`.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A label name as PromQL prints it: bare if it is a legacy name, else quoted.
pub fn format_label_name(s: &str) -> String {
    if is_legacy_label_name(s) {
        s.to_string()
    } else {
        quote_string(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote_string("a\"b\\\n\u{1}"), r#""a\"b\\\n\x01""#);
        assert_eq!(format_label_name("job"), "job");
        assert_eq!(format_label_name("a.b"), "\"a.b\"");
    }
}
