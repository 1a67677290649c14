//! Regular expressions as Prometheus compiles them: fully anchored, `.` matching newlines
//! (`^(?s:re)$`, as `labels.NewFastRegexMatcher`, `label_replace` and relabelling do), and
//! accepting every pattern Go's RE2 accepts, which the `regex` crate (also RE2 syntax)
//! otherwise refuses in one case: a `{` that does not open a repetition.

use std::borrow::Cow;

/// The largest compiled program a pattern may produce (4 MiB): a hostile regex is refused
/// instead of growing without bound.
pub const SIZE_LIMIT: usize = 1 << 22;

/// Go's RE2 reads a `{` that does not open a valid repetition (`a{,`, `{x}`) as a literal;
/// Rust's `regex` refuses it. Escapes such braces so both accept the same patterns.
pub fn escape_literal_braces(re: &str) -> Cow<'_, str> {
    if !re.contains('{') {
        return Cow::Borrowed(re);
    }
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            // The escaped character may be several bytes long: step by character.
            let next = re[i + 1..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&re[i..i + 1 + next]);
            i += 1 + next;
            continue;
        }
        if c == b'{' {
            let rest = &re[i + 1..];
            let valid = rest.find('}').is_some_and(|e| {
                let mut parts = rest[..e].splitn(2, ',');
                let lo = parts.next().unwrap_or("");
                let hi = parts.next();
                !lo.is_empty()
                    && lo.bytes().all(|d| d.is_ascii_digit())
                    && hi.is_none_or(|h| h.bytes().all(|d| d.is_ascii_digit()))
            });
            if !valid {
                out.push_str("\\{");
                i += 1;
                continue;
            }
        }
        let ch = re[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

/// The source Prometheus compiles for `re`: `^(?s:re)$`, literal braces escaped.
pub fn anchored_source(re: &str) -> String {
    format!("^(?s:{})$", escape_literal_braces(re))
}

/// Compiles `re` anchored (see [`anchored_source`]) within [`SIZE_LIMIT`].
pub fn compile_anchored(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&anchored_source(re))
        .size_limit(SIZE_LIMIT)
        .build()
}

/// The last line of a `regex` error, without its `error: ` prefix: the part Go's messages
/// have too (`unclosed group`).
pub fn error_detail(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let line = line.trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// `a|b|c` made of literal characters only: the literals (a matcher then compares strings
/// instead of running the regex).
pub fn literal_alternation(re: &str) -> Option<Vec<String>> {
    const META: &[char] = &[
        '\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$',
    ];
    if re.contains(META) {
        return None;
    }
    Some(re.split('|').map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_with_dotall_and_literal_braces() {
        let m = |re: &str, s: &str| compile_anchored(re).expect("compiles").is_match(s);
        assert!(m("fo.", "foo"));
        assert!(!m("fo", "foo"));
        assert!(!m("a|b", "ab"));
        assert!(m(".*", "x\ny"));
        assert!(m("a{,", "a{,"));
        assert!(m("{x}", "{x}"));
        assert!(m("a{2}", "aa"));
        assert!(m(r"\{", "{"));
        assert!(m("é{", "é{"));
        assert!(compile_anchored("(").is_err());
        assert_eq!(
            literal_alternation("a|b"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(literal_alternation("a.|b"), None);
    }
}
