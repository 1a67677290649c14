//! Label matchers as plain data: what a selector says (`job=~"api|web"`), before storage
//! compiles it. The same type travels from the parser through the query plan (and the
//! plan codec) to storage.

use std::fmt;
use std::str::FromStr;

use crate::quote::{format_label_name, quote_string};

/// The four matcher operators (Prometheus `labels.MatchType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    /// Whether the value is a regular expression.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }
}

/// An operator that is not one of `=`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown match operator {0:?}")]
pub struct BadMatchOp(pub String);

impl FromStr for MatchOp {
    type Err = BadMatchOp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::Regex,
            "!~" => MatchOp::NotRegex,
            other => return Err(BadMatchOp(other.to_string())),
        })
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label matcher (`job="api"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LabelMatcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value (a regular expression for `=~` / `!~`).
    pub value: String,
}

impl LabelMatcher {
    /// `name op value`.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher::new(name, MatchOp::Equal, value)
    }
}

/// PromQL text: the name quoted unless it is a legacy label name, the value Go-quoted.
impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            format_label_name(&self.name),
            self.op.as_str(),
            quote_string(&self.value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_round_trip_and_matchers_print_as_promql() {
        for op in [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ] {
            assert_eq!(op.as_str().parse::<MatchOp>(), Ok(op));
        }
        assert!("==".parse::<MatchOp>().is_err());
        assert_eq!(
            LabelMatcher::new("job", MatchOp::Regex, "a\"b").to_string(),
            r#"job=~"a\"b""#
        );
        assert_eq!(
            LabelMatcher::equal("http.method", "GET").to_string(),
            r#""http.method"="GET""#
        );
    }
}
