//! Lexer: splits template source into text chunks and action tokens following Go's
//! `text/template` rules (`{{ }}` delimiters, `{{- ` / ` -}}` trim markers, comments, literals).

const WS: [char; 4] = [' ', '\t', '\r', '\n'];
const BAD: &str = "invalid syntax";

/// A lexical item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Left,
    Right,
    Ident(String),
    Field(String),
    Var(String),
    Dot,
    /// Unquoted value and source text.
    Str(String, String),
    Num(String),
    /// Character constant value and source text.
    Char(i64, String),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Comma,
    Declare,
    Assign,
    Eof,
}

impl Tok {
    /// Go-style description used in "unexpected ..." parse errors.
    pub(crate) fn describe(&self) -> String {
        let s = match self {
            Tok::Eof => return "EOF".into(),
            Tok::Ident(k) if super::parse::KEYWORDS.contains(&k.as_str()) => {
                return format!("<{k}>");
            }
            Tok::Text(s) | Tok::Ident(s) | Tok::Var(s) | Tok::Num(s) => s.clone(),
            Tok::Str(_, raw) | Tok::Char(_, raw) => raw.clone(),
            Tok::Field(f) => format!(".{f}"),
            Tok::Bool(b) => b.to_string(),
            Tok::Nil => "nil".into(),
            Tok::Left => "{{".into(),
            Tok::Right => "}}".into(),
            Tok::Dot => ".".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Pipe => "|".into(),
            Tok::Comma => ",".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
        };
        format!("{s:?}")
    }
}

/// A token with its byte offset and whether whitespace preceded it inside an action.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
    pub(crate) spaced: bool,
}

/// Lexing failure: byte offset and message.
pub(crate) type LexError = (usize, String);

/// Tokenizes the whole template; the result always ends with `Tok::Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut toks = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let found = src[pos..].find("{{").map(|i| pos + i);
        let end = found.unwrap_or(src.len());
        let mut text = &src[pos..end];
        if trim_next {
            text = text.trim_start_matches(WS);
        }
        let after = found.map_or("", |i| &src[i + 2..]);
        let left_trim = after.starts_with('-') && after[1..].starts_with(WS);
        if left_trim {
            text = text.trim_end_matches(WS);
        }
        if !text.is_empty() {
            toks.push(token(Tok::Text(text.to_string()), pos, false));
        }
        let Some(start) = found else { break };
        pos = start + if left_trim { 4 } else { 2 };
        if src[pos..].starts_with("/*") {
            let close = src[pos + 2..]
                .find("*/")
                .ok_or((start, "unclosed comment".to_string()))?;
            pos += close + 4;
            let (len, trim) = right_delim(&src[pos..])
                .ok_or((start, "comment ends before closing delimiter".to_string()))?;
            pos += len;
            trim_next = trim;
            continue;
        }
        toks.push(token(Tok::Left, start, false));
        trim_next = lex_action(src, &mut pos, &mut toks)?;
    }
    toks.push(token(Tok::Eof, src.len(), false));
    Ok(toks)
}

fn token(tok: Tok, pos: usize, spaced: bool) -> Token {
    Token { tok, pos, spaced }
}

/// Length of a right delimiter at the start of `s` and whether it trims (` -}}`).
fn right_delim(s: &str) -> Option<(usize, bool)> {
    if s.starts_with("}}") {
        Some((2, false))
    } else if s.starts_with(WS) && s[1..].starts_with("-}}") {
        Some((4, true))
    } else {
        None
    }
}

fn is_ident(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Lexes one action after `{{`; returns whether its right delimiter trims following space.
fn lex_action(src: &str, pos: &mut usize, toks: &mut Vec<Token>) -> Result<bool, LexError> {
    let mut spaced = false;
    loop {
        let start = *pos;
        let rest = &src[start..];
        if let Some((len, trim)) = right_delim(rest) {
            toks.push(token(Tok::Right, start, spaced));
            *pos += len;
            return Ok(trim);
        }
        let Some(c) = rest.chars().next() else {
            return Err((start, "unclosed action".into()));
        };
        if WS.contains(&c) {
            *pos += 1;
            spaced = true;
            continue;
        }
        let ident_len = |from: usize| {
            rest[from..]
                .find(|c: char| !is_ident(c))
                .map_or(rest.len(), |i| i + from)
        };
        let next_is = |f: fn(char) -> bool| rest[c.len_utf8()..].chars().next().is_some_and(f);
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '|' => (Tok::Pipe, 1),
            ',' => (Tok::Comma, 1),
            '=' => (Tok::Assign, 1),
            ':' if rest.starts_with(":=") => (Tok::Declare, 2),
            ':' => return Err((start, "expected :=".into())),
            '"' | '\'' => {
                let end = scan_quoted(rest, c).ok_or_else(|| {
                    let what = if c == '"' {
                        "quoted string"
                    } else {
                        "character constant"
                    };
                    (start, format!("unterminated {what}"))
                })?;
                let raw = &rest[..end];
                let val = unquote(&raw[1..end - 1], c).map_err(|e| (start, e))?;
                if c == '"' {
                    (Tok::Str(val, raw.into()), end)
                } else {
                    let mut it = val.chars();
                    match (it.next(), it.next()) {
                        (Some(ch), None) => (Tok::Char(i64::from(u32::from(ch)), raw.into()), end),
                        _ => return Err((start, format!("malformed character constant: {raw}"))),
                    }
                }
            }
            '`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or((start, "unterminated raw quoted string".to_string()))?;
                (
                    Tok::Str(rest[1..=end].into(), rest[..end + 2].into()),
                    end + 2,
                )
            }
            '$' => {
                let n = ident_len(1);
                (Tok::Var(rest[..n].into()), n)
            }
            '.' if next_is(|c| c.is_ascii_digit()) => number(rest, start)?,
            '.' if next_is(is_ident) => {
                let n = ident_len(1);
                (Tok::Field(rest[1..n].into()), n)
            }
            '.' => (Tok::Dot, 1),
            '0'..='9' | '+' | '-' => number(rest, start)?,
            c if is_ident(c) => {
                let n = ident_len(0);
                let tok = match &rest[..n] {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    s => Tok::Ident(s.into()),
                };
                (tok, n)
            }
            c => {
                let msg = format!(
                    "unrecognized character in action: U+{:04X} {c:?}",
                    u32::from(c)
                );
                return Err((start, msg));
            }
        };
        toks.push(token(tok, start, spaced));
        spaced = false;
        *pos += len;
    }
}

/// Scans a number literal (decimal, hex, float with exponent) at the start of `rest`.
fn number(rest: &str, start: usize) -> Result<(Tok, usize), LexError> {
    let b = rest.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let hex = b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X");
    if hex {
        i += 2;
    }
    let digit = |c: u8| {
        c == b'_'
            || if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
    };
    let run = |mut i: usize, f: &dyn Fn(u8) -> bool| {
        while i < b.len() && f(b[i]) {
            i += 1;
        }
        i
    };
    i = run(i, &digit);
    if b.get(i) == Some(&b'.') {
        i = run(i + 1, &digit);
    }
    if !hex && matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        i = run(i, &|c: u8| c.is_ascii_digit());
    }
    if rest[i..].chars().next().is_some_and(is_ident) {
        let end = i + rest[i..].chars().next().map_or(0, char::len_utf8);
        return Err((start, format!("bad number syntax: {:?}", &rest[..end])));
    }
    Ok((Tok::Num(rest[..i].into()), i))
}

/// Byte length of a quoted literal (including quotes) starting at `rest[0] == q`.
fn scan_quoted(rest: &str, q: char) -> Option<usize> {
    let mut it = rest.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => {
                it.next();
            }
            '\n' => return None,
            c if c == q => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Interprets Go escape sequences (`strconv.Unquote` semantics) in a quoted literal body.
pub(crate) fn unquote(s: &str, q: char) -> Result<String, String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or(BAD)?;
        let simple = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            c if c == q => c,
            _ => '\0',
        };
        if simple != '\0' {
            out.push(simple);
            continue;
        }
        let (n, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (3, 8),
            _ => return Err(BAD.into()),
        };
        let mut digits = if radix == 8 {
            e.to_string()
        } else {
            String::new()
        };
        while digits.len() < n {
            digits.push(it.next().ok_or(BAD)?);
        }
        let v = u32::from_str_radix(&digits, radix).map_err(|_| BAD)?;
        let ch = if matches!(e, 'u' | 'U') {
            char::from_u32(v)
        } else {
            u8::try_from(v).ok().map(char::from)
        };
        out.push(ch.ok_or(BAD)?);
    }
    Ok(out)
}
