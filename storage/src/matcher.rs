//! Label matchers with Prometheus's semantics: regexes fully anchored, and a matcher that
//! matches the empty string also selects series that lack the label.

use regex::Regex;

use crate::error::{Result, StorageError};

/// The four matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// `name op value`, compiled once.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
    /// For a regex that is a plain alternation of literals (`a|b|c`), the literals.
    set: Option<Vec<String>>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// Compiles a matcher; a bad regex is an error naming the label.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let (re, set) = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let re = Regex::new(&format!("^(?s:{})$", escape_literal_braces(&value))).map_err(
                    |e| StorageError::BadRegex {
                        label: name.clone(),
                        regex: value.clone(),
                        source: Box::new(e),
                    },
                )?;
                (Some(re), literal_alternation(&value))
            }
            _ => (None, None),
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
            set,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
            set: None,
        }
    }

    /// Whether a label value (`""` for an absent label) is selected.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::RegexMatch => self.regex_matches(v),
            MatchOp::RegexNoMatch => !self.regex_matches(v),
        }
    }

    fn regex_matches(&self, v: &str) -> bool {
        if let Some(set) = &self.set {
            return set.iter().any(|s| s == v);
        }
        self.re.as_ref().is_some_and(|re| re.is_match(v))
    }

    /// True when the matcher selects series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=` and literal-alternation `=~`, the exact values it selects.
    pub(crate) fn exact_values(&self) -> Option<Vec<&str>> {
        match self.op {
            MatchOp::Equal => Some(vec![self.value.as_str()]),
            MatchOp::RegexMatch => self
                .set
                .as_ref()
                .map(|s| s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

/// Go's RE2 reads a `{` that does not open a valid repetition (`a{,`, `{x}`) as a literal;
/// Rust's `regex` refuses it. Escapes such braces so both accept the same patterns.
/// (Twin of `strata_grammar::regex_check`: the crates may not depend on each other.)
pub(crate) fn escape_literal_braces(re: &str) -> String {
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
            let end = rest.find('}');
            let valid = end.is_some_and(|e| {
                let inner = &rest[..e];
                let mut parts = inner.splitn(2, ',');
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
    out
}

/// `a|b|c` made of literal characters only → the literals.
fn literal_alternation(re: &str) -> Option<Vec<String>> {
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

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).expect("valid matcher")
    }

    #[test]
    fn anchored_regex() {
        assert!(m(MatchOp::RegexMatch, "fo.").matches("foo"));
        assert!(!m(MatchOp::RegexMatch, "fo").matches("foo"));
        assert!(!m(MatchOp::RegexMatch, "a|b").matches("ab"));
        assert!(m(MatchOp::RegexMatch, "a|b").matches("b"));
        assert!(m(MatchOp::RegexNoMatch, "a|b").matches("ab"));
        assert!(m(MatchOp::RegexMatch, ".*").matches("x\ny"));
        assert!(m(MatchOp::RegexMatch, "a{,").matches("a{,"));
        assert!(m(MatchOp::RegexMatch, "a{2}").matches("aa"));
    }

    #[test]
    fn empty_semantics() {
        assert!(m(MatchOp::Equal, "").matches_empty());
        assert!(!m(MatchOp::Equal, "x").matches_empty());
        assert!(m(MatchOp::NotEqual, "x").matches_empty());
        assert!(m(MatchOp::RegexMatch, ".*").matches_empty());
        assert!(!m(MatchOp::RegexMatch, ".+").matches_empty());
        assert!(m(MatchOp::RegexNoMatch, ".+").matches_empty());
    }

    #[test]
    fn bad_regex_names_label() {
        let e = Matcher::new(MatchOp::RegexMatch, "job", "(").expect_err("bad regex");
        assert!(e.to_string().contains("\"job\""), "{e}");
    }
}
