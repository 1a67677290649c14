//! Label matchers in Alertmanager's syntax (`name="v"`, `name=~"re"`, `name!="v"`,
//! `name!~"re"`, unquoted values, `{a="b",c=~"d"}` lists), as used by routes, inhibition
//! rules, silences and amtool-style filters.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// How a matcher compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `=~` (anchored regular expression)
    Re,
    /// `!~`
    NotRe,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        })
    }
}

/// One label matcher. Equality and order ignore the compiled regex.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// Value or regular expression source, unescaped.
    pub value: String,
    /// `^(?:value)$` for the regex operators.
    re: Option<Regex>,
}

impl Matcher {
    /// A matcher; regex values are compiled anchored, as Alertmanager does.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    let e = e.to_string();
                    let why = e.lines().find_map(|l| l.strip_prefix("error: "));
                    format!(
                        "invalid regular expression {value:?}: {}",
                        why.unwrap_or(&e)
                    )
                })?)
            }
            MatchOp::Eq | MatchOp::NotEq => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// The compiled `^(?:value)$` of a regex matcher.
    pub fn regex(&self) -> Option<&Regex> {
        self.re.as_ref()
    }

    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::NotEq, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            (_, None) => false,
        }
    }

    /// Whether a label set satisfies the matcher; an absent label is the empty string.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

/// Whether all matchers match (true for none).
pub fn matches_all(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, o: &Matcher) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Matcher {
    /// Alertmanager's order: name, then operator, then value.
    fn cmp(&self, o: &Matcher) -> Ordering {
        (&self.name, self.op, &self.value).cmp(&(&o.name, o.op, &o.value))
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` with `\`, `"` and newlines escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self
            .value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('"', "\\\"");
        write!(f, "{}{}\"{v}\"", self.name, self.op)
    }
}

/// `{a="b",c=~"d"}`: a matcher list as Alertmanager prints it.
pub fn matchers_string(matchers: &[Matcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(Matcher::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// Parses one matcher or a comma-separated list, optionally in braces.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let s = s.trim();
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let (mut tokens, mut token) = (Vec::new(), String::new());
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' if escaped => escaped = false,
            '"' => in_quotes = !in_quotes,
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token);
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses one matcher: `name op value`, the value optionally double-quoted with `\"`, `\\`
/// and `\n` escapes (Alertmanager's classic parser).
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let bad = || format!("bad matcher format: {s}");
    let t = s.trim_start_matches(is_space);
    let name_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(t.len());
    let name = &t[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let rest = t[name_len..].trim_start_matches(is_space);
    let ops = [
        ("=~", MatchOp::Re),
        ("=", MatchOp::Eq),
        ("!=", MatchOp::NotEq),
        ("!~", MatchOp::NotRe),
    ];
    let (op, rest) = ops
        .iter()
        .find_map(|(p, op)| rest.strip_prefix(p).map(|r| (*op, r)))
        .ok_or_else(bad)?;
    let raw = rest.trim_matches(is_space);
    let unquoted = || format!("matcher value contains unescaped double quote: {raw}");
    let (body, mut expect_quote) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let (mut value, mut escaped) = (String::new(), false);
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if i + 1 < body.len() => escaped = true,
            '"' if !expect_quote || i + 1 < body.len() => return Err(unquoted()),
            '"' => expect_quote = false,
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(unquoted());
    }
    Matcher::new(name, op, &value)
}

/// Go's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// A classic Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(super) use strata_vocab::name::is_legacy_label_name as is_label_name;

/// The deprecated `match` (equality) and `match_re` (anchored regex) maps as matchers.
/// Errors are `(field, key, message)`.
pub(super) fn from_maps(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, (&'static str, String, String)> {
    let eqs = eq.iter().map(|(k, v)| ("match", k, MatchOp::Eq, v));
    let res = re.iter().map(|(k, v)| ("match_re", k, MatchOp::Re, v));
    eqs.chain(res)
        .map(|(field, k, op, v)| {
            if !is_label_name(k) {
                return Err((field, k.clone(), format!("invalid label name {k:?}")));
            }
            Matcher::new(k, op, v).map_err(|e| (field, k.clone(), e))
        })
        .collect()
}

/// Reads a `matchers:` list; each string holds one or more matchers. Sorted, as
/// Alertmanager keeps them.
pub(super) fn de_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Matcher>, D::Error> {
    struct Line(Vec<Matcher>);
    impl<'de> Deserialize<'de> for Line {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Line, D::Error> {
            d.deserialize_str(LineVisitor)
        }
    }
    struct LineVisitor;
    impl Visitor<'_> for LineVisitor {
        type Value = Line;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a matcher string such as name=\"value\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Line, E> {
            parse_matchers(v).map(Line).map_err(E::custom)
        }
    }
    let lines = Option::<Vec<Line>>::deserialize(d)?.unwrap_or_default();
    let mut all: Vec<Matcher> = lines.into_iter().flat_map(|l| l.0).collect();
    all.sort();
    Ok(all)
}

/// Writes matchers as a list of strings.
pub(super) fn ser_list<S: Serializer>(matchers: &[Matcher], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(matchers.iter().map(Matcher::to_string))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_form() {
        let one = |s: &str| {
            let m = parse_matchers(s).unwrap();
            assert_eq!(m.len(), 1, "{s}");
            (m[0].name.clone(), m[0].op, m[0].value.clone())
        };
        let t = |n: &str, op, v: &str| (n.to_owned(), op, v.to_owned());
        assert_eq!(one(r#"foo="bar""#), t("foo", MatchOp::Eq, "bar"));
        assert_eq!(one(r#" foo != "bar" "#), t("foo", MatchOp::NotEq, "bar"));
        assert_eq!(one(r#"foo=~"a|b""#), t("foo", MatchOp::Re, "a|b"));
        assert_eq!(one(r#"foo!~"a.*""#), t("foo", MatchOp::NotRe, "a.*"));
        assert_eq!(one("foo=bar baz"), t("foo", MatchOp::Eq, "bar baz"));
        assert_eq!(one("foo="), t("foo", MatchOp::Eq, ""));
        assert_eq!(
            one(r#"foo="a\"b\\c\nd""#),
            t("foo", MatchOp::Eq, "a\"b\\c\nd")
        );
        assert_eq!(one(r#"foo="a\xb""#), t("foo", MatchOp::Eq, r"a\xb"));
        assert_eq!(one("{alertname=\"x\"}"), t("alertname", MatchOp::Eq, "x"));
        let many = parse_matchers(r#"{a="b", c=~"d,e",f!=g}"#).unwrap();
        let shown: Vec<String> = many.iter().map(Matcher::to_string).collect();
        assert_eq!(shown, [r#"a="b""#, r#"c=~"d,e""#, r#"f!="g""#]);
        assert_eq!(matchers_string(&many), r#"{a="b",c=~"d,e",f!="g"}"#);
        let esc = parse_matcher(r#"x="q\"n\nb\\""#).unwrap();
        assert_eq!(esc.to_string(), r#"x="q\"n\nb\\""#);
        assert!(parse_matchers("{}").unwrap().is_empty());
        for bad in [
            "foo",
            "=bar",
            "1a=b",
            r#"foo="bar"#,
            r#"foo="a"b""#,
            "a=~(",
            "{a=b,}x",
        ] {
            assert!(parse_matchers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_with_anchored_regexes_and_absent_labels() {
        let m = |s: &str| parse_matcher(s).unwrap();
        let l = labels(&[("foo", "ab"), ("bar", "a")]);
        assert!(!m(r#"foo=~"a|b""#).matches(&l));
        assert!(m(r#"bar=~"a|b""#).matches(&l));
        assert!(m(r#"foo!~"a|b""#).matches(&l));
        assert!(m(r#"missing="""#).matches(&l));
        assert!(m(r#"missing=~".*""#).matches(&l));
        assert!(!m(r#"missing!="""#).matches(&l));
        assert!(m(r#"foo!="x""#).matches(&l));
        assert!(matches_all(&[m("foo=ab"), m("bar=a")], &l));
        assert!(!matches_all(&[m("foo=ab"), m("bar=b")], &l));
    }
}
