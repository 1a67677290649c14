//! Label matchers with Prometheus's semantics: regexes fully anchored, and a matcher that
//! matches the empty string also selects series that lack the label.

use regex::Regex;
use strata_vocab::pattern::{compile_anchored, literal_alternation};
pub use strata_vocab::{LabelMatcher, MatchOp};

use crate::error::{Result, StorageError};

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
            MatchOp::Regex | MatchOp::NotRegex => {
                let re = compile_anchored(&value).map_err(|e| StorageError::BadRegex {
                    label: name.clone(),
                    regex: value.clone(),
                    source: Box::new(e),
                })?;
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

    /// Compiles a matcher as written in a selector.
    pub fn compile(m: &LabelMatcher) -> Result<Self> {
        Matcher::new(m.op, m.name.clone(), m.value.clone())
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
            MatchOp::Regex => self.regex_matches(v),
            MatchOp::NotRegex => !self.regex_matches(v),
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
            MatchOp::Regex => self
                .set
                .as_ref()
                .map(|s| s.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).expect("valid matcher")
    }

    #[test]
    fn anchored_regex() {
        assert!(m(MatchOp::Regex, "fo.").matches("foo"));
        assert!(!m(MatchOp::Regex, "fo").matches("foo"));
        assert!(!m(MatchOp::Regex, "a|b").matches("ab"));
        assert!(m(MatchOp::Regex, "a|b").matches("b"));
        assert!(m(MatchOp::NotRegex, "a|b").matches("ab"));
        assert!(m(MatchOp::Regex, ".*").matches("x\ny"));
        assert!(m(MatchOp::Regex, "a{,").matches("a{,"));
        assert!(m(MatchOp::Regex, "a{2}").matches("aa"));
    }

    #[test]
    fn empty_semantics() {
        assert!(m(MatchOp::Equal, "").matches_empty());
        assert!(!m(MatchOp::Equal, "x").matches_empty());
        assert!(m(MatchOp::NotEqual, "x").matches_empty());
        assert!(m(MatchOp::Regex, ".*").matches_empty());
        assert!(!m(MatchOp::Regex, ".+").matches_empty());
        assert!(m(MatchOp::NotRegex, ".+").matches_empty());
    }

    #[test]
    fn bad_regex_names_label() {
        let e = Matcher::new(MatchOp::Regex, "job", "(").expect_err("bad regex");
        assert!(e.to_string().contains("\"job\""), "{e}");
    }
}
