//! Template output, plain (Go's `text/template`) or as Go's `html/template` writes it for
//! Alertmanager's HTML fields (the email `html`, Telegram's HTML messages).
//!
//! In HTML mode the literal template text is followed through HTML's contexts — text,
//! tags and attribute values (URL, JavaScript, CSS or plain), comments, `<script>` and
//! `<style>` bodies, `<title>`/`<textarea>` — and every action's value is escaped for the
//! context it lands in with `html/template`'s escapers (`&#34;`, `&#43;` …, URLs
//! normalized or query-escaped by where they stand, `#ZgotmplZ` for unsafe URL schemes
//! and attribute names). HTML comments (and CSS/JS block comments) of the template text are
//! dropped, as `html/template` drops them. A pipeline ending in `html` or `urlquery` is not
//! escaped twice by the equivalent escaper; one ending in `safeHtml` is not escaped in text.
//! The context is followed along the executed path, which is what `html/template`'s static
//! analysis finds for templates it accepts.

/// Go's stand-in for a value refused by a filter.
const FAILSAFE: &str = "ZgotmplZ";

/// Where the output of an execution goes.
pub(crate) struct Out {
    buf: String,
    html: Option<State>,
}

impl Out {
    /// Plain text output.
    pub(crate) fn plain() -> Out {
        Out {
            buf: String::new(),
            html: None,
        }
    }

    /// HTML output, starting in HTML text.
    pub(crate) fn html() -> Out {
        Out {
            buf: String::new(),
            html: Some(State::Text),
        }
    }

    /// The output.
    pub(crate) fn into_string(self) -> String {
        self.buf
    }

    /// Literal template text.
    pub(crate) fn text(&mut self, s: &str) {
        match self.html.take() {
            None => self.buf.push_str(s),
            Some(st) => self.html = Some(feed(st, s, &mut self.buf)),
        }
    }

    /// An action's value; `last` is the identifier of the pipeline's last command.
    pub(crate) fn value(&mut self, s: &str, last: Option<&str>) {
        match &self.html {
            None => self.buf.push_str(s),
            Some(st) => {
                let e = escape(st, s, last);
                self.buf.push_str(&e);
            }
        }
    }
}

/// How an attribute's value is interpreted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AttrKind {
    Plain,
    Url,
    Js,
    Css,
}

/// Where in a URL attribute value the output stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum UrlPart {
    /// Nothing of the URL yet.
    None,
    /// Scheme, host or path.
    PreQuery,
    /// After `?` or `#`.
    QueryOrFrag,
}

/// The HTML context.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Text,
    /// `<!--` … `-->`, dropped.
    Comment,
    /// Reading a tag name after `<` (`end` after `</`).
    TagName {
        name: String,
        end: bool,
    },
    /// Inside a tag, between attributes.
    Tag {
        name: String,
        end: bool,
    },
    /// Reading an attribute name.
    AttrName {
        tag: String,
        attr: String,
    },
    /// After an attribute name, before `=`.
    AfterAttr {
        tag: String,
        attr: String,
    },
    /// After `=`, before the value.
    BeforeValue {
        tag: String,
        kind: AttrKind,
    },
    /// In an attribute value; `quote` is `None` when unquoted.
    Value {
        tag: String,
        kind: AttrKind,
        quote: Option<char>,
        url: UrlPart,
    },
    /// The body of `script`/`style` (raw) or `title`/`textarea` (RCDATA), until its end tag;
    /// `comment` inside a `/* */` comment of a script or style.
    Raw {
        tag: String,
        comment: bool,
    },
}

/// Follows `s` from `st`, writing what `html/template` keeps of it.
fn feed(mut st: State, s: &str, out: &mut String) -> State {
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let n = c.len_utf8();
        st = match st {
            State::Text => {
                if rest.starts_with("<!--") {
                    rest = &rest[4..];
                    State::Comment
                } else if c == '<' && next_is_tag_start(&rest[1..]) {
                    out.push('<');
                    let end = rest[1..].starts_with('/');
                    rest = &rest[if end { 2 } else { 1 }..];
                    if end {
                        out.push('/');
                    }
                    State::TagName {
                        name: String::new(),
                        end,
                    }
                } else {
                    out.push(c);
                    rest = &rest[n..];
                    State::Text
                }
            }
            State::Comment => match rest.find("-->") {
                Some(i) => {
                    rest = &rest[i + 3..];
                    State::Text
                }
                None => {
                    rest = "";
                    State::Comment
                }
            },
            State::TagName { mut name, end } => {
                if c.is_ascii_alphanumeric() || c == '-' || c == ':' {
                    name.push(c.to_ascii_lowercase());
                    out.push(c);
                    rest = &rest[n..];
                    State::TagName { name, end }
                } else {
                    State::Tag { name, end }
                }
            }
            State::Tag { name, end } => {
                out.push(c);
                rest = &rest[n..];
                match c {
                    '>' => after_tag(name, end),
                    c if c.is_whitespace() || c == '/' => State::Tag { name, end },
                    c => State::AttrName {
                        tag: name,
                        attr: c.to_ascii_lowercase().to_string(),
                    },
                }
            }
            State::AttrName { tag, mut attr } => {
                out.push(c);
                rest = &rest[n..];
                match c {
                    '>' => after_tag(tag, false),
                    '=' => State::BeforeValue {
                        tag,
                        kind: attr_kind(&attr),
                    },
                    c if c.is_whitespace() => State::AfterAttr { tag, attr },
                    '/' => State::Tag {
                        name: tag,
                        end: false,
                    },
                    c => {
                        attr.push(c.to_ascii_lowercase());
                        State::AttrName { tag, attr }
                    }
                }
            }
            State::AfterAttr { tag, attr } => {
                out.push(c);
                rest = &rest[n..];
                match c {
                    '>' => after_tag(tag, false),
                    '=' => State::BeforeValue {
                        tag,
                        kind: attr_kind(&attr),
                    },
                    c if c.is_whitespace() => State::AfterAttr { tag, attr },
                    c => State::AttrName {
                        tag,
                        attr: c.to_ascii_lowercase().to_string(),
                    },
                }
            }
            State::BeforeValue { tag, kind } => match c {
                c if c.is_whitespace() => {
                    out.push(c);
                    rest = &rest[n..];
                    State::BeforeValue { tag, kind }
                }
                '"' | '\'' => {
                    out.push(c);
                    rest = &rest[n..];
                    State::Value {
                        tag,
                        kind,
                        quote: Some(c),
                        url: UrlPart::None,
                    }
                }
                _ => State::Value {
                    tag,
                    kind,
                    quote: None,
                    url: UrlPart::None,
                },
            },
            State::Value {
                tag,
                kind,
                quote,
                url,
            } => {
                out.push(c);
                rest = &rest[n..];
                let closes = match quote {
                    Some(q) => c == q,
                    None => c.is_whitespace() || c == '>',
                };
                if closes && c == '>' {
                    after_tag(tag, false)
                } else if closes {
                    State::Tag {
                        name: tag,
                        end: false,
                    }
                } else {
                    let url = match (url, c) {
                        (_, '?' | '#') => UrlPart::QueryOrFrag,
                        (UrlPart::None, c) if !c.is_whitespace() => UrlPart::PreQuery,
                        (u, _) => u,
                    };
                    State::Value {
                        tag,
                        kind,
                        quote,
                        url,
                    }
                }
            }
            State::Raw { tag, comment } => {
                let code = tag == "script" || tag == "style";
                if comment {
                    match rest.find("*/") {
                        Some(i) => {
                            rest = &rest[i + 2..];
                            State::Raw {
                                tag,
                                comment: false,
                            }
                        }
                        None => {
                            rest = "";
                            State::Raw { tag, comment }
                        }
                    }
                } else if code && rest.starts_with("/*") {
                    rest = &rest[2..];
                    State::Raw { tag, comment: true }
                } else if c == '<' && closes_raw(&rest[1..], &tag) {
                    out.push_str("</");
                    rest = &rest[2..];
                    State::TagName {
                        name: String::new(),
                        end: true,
                    }
                } else {
                    out.push(c);
                    rest = &rest[n..];
                    State::Raw { tag, comment }
                }
            }
        };
    }
    st
}

/// Whether the text after `<` starts a tag (`a`, `/a`).
fn next_is_tag_start(s: &str) -> bool {
    let s = s.strip_prefix('/').unwrap_or(s);
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// Whether the text after `<` is the end tag of `tag`.
fn closes_raw(s: &str, tag: &str) -> bool {
    let Some(s) = s.strip_prefix('/') else {
        return false;
    };
    s.len() >= tag.len()
        && s.is_char_boundary(tag.len())
        && s[..tag.len()].eq_ignore_ascii_case(tag)
        && !s[tag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The context after the `>` of a tag.
fn after_tag(name: String, end: bool) -> State {
    if !end && matches!(name.as_str(), "script" | "style" | "title" | "textarea") {
        State::Raw {
            tag: name,
            comment: false,
        }
    } else {
        State::Text
    }
}

/// `html/template`'s `attrType`.
fn attr_kind(name: &str) -> AttrKind {
    let name = name
        .strip_prefix("data-")
        .or_else(|| name.split_once(':').map(|(_, n)| n))
        .unwrap_or(name);
    match name {
        "action" | "archive" | "background" | "cite" | "classid" | "codebase" | "data"
        | "formaction" | "href" | "icon" | "longdesc" | "manifest" | "poster" | "profile"
        | "src" | "usemap" | "xmlns" => AttrKind::Url,
        "style" => AttrKind::Css,
        n if n.starts_with("on") => AttrKind::Js,
        n if n.contains("src") || n.contains("uri") || n.contains("url") => AttrKind::Url,
        _ => AttrKind::Plain,
    }
}

/// An action's value escaped for `st`.
fn escape(st: &State, s: &str, last: Option<&str>) -> String {
    let already_html = last == Some("html");
    let html = |s: &str| {
        if already_html {
            s.to_owned()
        } else {
            html_escaper(s, false)
        }
    };
    match st {
        State::Text if last == Some("safeHtml") => s.to_owned(),
        State::Text => html(s),
        State::Comment => String::new(),
        State::TagName { .. } | State::Tag { .. } | State::AttrName { .. } => name_filter(s),
        State::AfterAttr { .. } => name_filter(s),
        State::Raw { comment: true, .. } => String::new(),
        State::Raw { tag, .. } => match tag.as_str() {
            "script" => js_value(s),
            "style" => css_escaper(s),
            _ => html(s),
        },
        State::BeforeValue { kind, .. } => attr_value(*kind, UrlPart::None, None, s, last),
        State::Value {
            kind, quote, url, ..
        } => attr_value(*kind, *url, *quote, s, last),
    }
}

/// An attribute value: the kind's escaper, then the attribute escaper.
fn attr_value(
    kind: AttrKind,
    url: UrlPart,
    quote: Option<char>,
    s: &str,
    last: Option<&str>,
) -> String {
    let v = match kind {
        AttrKind::Plain => s.to_owned(),
        AttrKind::Js => js_value(s),
        AttrKind::Css => css_escaper(s),
        AttrKind::Url if last == Some("urlquery") => s.to_owned(),
        AttrKind::Url => match url {
            UrlPart::None if !safe_url(s) => format!("#{FAILSAFE}"),
            UrlPart::None | UrlPart::PreQuery => url_processor(s, true),
            UrlPart::QueryOrFrag => url_processor(s, false),
        },
    };
    if last == Some("html") && kind == AttrKind::Plain {
        return v;
    }
    html_escaper(&v, quote.is_none())
}

/// `htmlEscaper` (and `htmlNospaceEscaper` for unquoted attribute values).
fn html_escaper(s: &str, nospace: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '=' | '`' if nospace => {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// `urlNormalizer` (`norm`) or `urlEscaper`: percent-encodes what may not stand in a URL
/// (and, escaping, the reserved characters too), lowercase hex.
fn url_processor(s: &str, norm: bool) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?'
            | b'@' | b'[' | b']' => norm,
            b'-' | b'.' | b'_' | b'~' => true,
            b'%' => {
                norm && i + 2 < b.len()
                    && b[i + 1].is_ascii_hexdigit()
                    && b[i + 2].is_ascii_hexdigit()
            }
            c => c.is_ascii_alphanumeric(),
        };
        if keep {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02x}"));
        }
    }
    out
}

/// `isSafeURL`: relative, or `http`, `https` or `mailto`.
fn safe_url(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') => ["http", "https", "mailto"]
            .iter()
            .any(|p| scheme.eq_ignore_ascii_case(p)),
        _ => true,
    }
}

/// `htmlNameFilter`: attribute names from values must be plain alphanumeric ASCII.
fn name_filter(s: &str) -> String {
    let l = s.to_ascii_lowercase();
    if l.is_empty()
        || attr_kind(&l) != AttrKind::Plain
        || !l
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return FAILSAFE.to_owned();
    }
    l
}

/// `jsValEscaper` for a string: a quoted JavaScript string literal.
fn js_value(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\u0022"),
            '\'' => out.push_str("\\u0027"),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '+' => out.push_str("\\u002b"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `cssEscaper`: CSS-special characters as hex escapes.
fn css_escaper(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let esc = matches!(
            c,
            '\0' | '\t'
                | '\n'
                | '\u{c}'
                | '\r'
                | '"'
                | '&'
                | '\''
                | '('
                | ')'
                | '+'
                | '/'
                | ':'
                | ';'
                | '<'
                | '>'
                | '\\'
                | '{'
                | '}'
        );
        if !esc {
            out.push(c);
            continue;
        }
        out.push_str(&format!("\\{:x}", u32::from(c)));
        if chars
            .peek()
            .is_some_and(|n| n.is_ascii_hexdigit() || *n == ' ')
        {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parts: &[(&str, bool)]) -> String {
        let mut o = Out::html();
        for (s, text) in parts {
            if *text {
                o.text(s);
            } else {
                o.value(s, None);
            }
        }
        o.into_string()
    }

    #[test]
    fn escapes_by_context_and_drops_comments() {
        let got = run(&[
            ("<!-- licence -->\n<title>", true),
            ("a<b", false),
            ("</title><a href=\"", true),
            ("http://x y/?", false),
            ("/#/alerts?receiver=", true),
            ("a b&c", false),
            ("\" class='", true),
            ("o'k", false),
            ("'>", true),
            ("1+1 <x>", false),
            ("</a>", true),
        ]);
        assert_eq!(
            got,
            "\n<title>a&lt;b</title><a href=\"http://x%20y/?/#/alerts?receiver=a%20b%26c\" \
             class='o&#39;k'>1&#43;1 &lt;x&gt;</a>"
        );
    }

    #[test]
    fn unsafe_urls_and_names_are_refused() {
        let got = run(&[("<a href=\"", true), ("javascript:x", false), ("\">", true)]);
        assert_eq!(got, "<a href=\"#ZgotmplZ\">");
        let got = run(&[("<td ", true), ("onclick", false), (">", true)]);
        assert_eq!(got, "<td ZgotmplZ>");
    }

    #[test]
    fn predefined_escapers_are_not_doubled() {
        let mut o = Out::html();
        o.text("<a href=\"/?r=");
        o.value("a+b", Some("urlquery"));
        o.text("\">");
        o.value("&lt;", Some("html"));
        o.value("<b>", Some("safeHtml"));
        assert_eq!(o.into_string(), "<a href=\"/?r=a&#43;b\">&lt;<b>");
    }

    #[test]
    fn style_comments_are_dropped() {
        let got = run(&[("<style>/* c */a{}</style>x", true)]);
        assert_eq!(got, "<style>a{}</style>x");
    }
}
