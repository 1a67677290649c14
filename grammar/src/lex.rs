//! Lexical helpers: a pre-scan that reports lexer-level errors the way
//! Prometheus's lexer does (unbalanced brackets, unterminated strings,
//! unexpected characters) and bounds nesting depth and operator count so
//! that no input can exhaust the stack; plus string unquoting, number and
//! duration parsing.

use crate::error::ParseError;

/// Maximum nesting of `(`, `[` and `{`.
pub(crate) const MAX_NESTING: usize = 64;
/// Maximum number of operator characters / keywords in one query.
pub(crate) const MAX_OPERATORS: usize = 512;

/// Scans `input` once, outside of strings and comments.
pub(crate) fn prescan(input: &str) -> Result<(), ParseError> {
    let bytes = input.as_bytes();
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut operators = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n') => {
                            return Err(ParseError::at(input, start, "unterminated quoted string"));
                        }
                        Some(b'\\') => i += 2,
                        Some(&q) if q == c => break,
                        Some(_) => i += 1,
                    }
                }
            }
            b'`' => {
                let start = i;
                i += 1;
                while bytes.get(i).is_some_and(|&b| b != b'`') {
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(ParseError::at(input, start, "unterminated raw string"));
                }
            }
            b'#' => {
                while bytes.get(i).is_some_and(|&b| b != b'\n') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                stack.push((c, i));
                if stack.len() > MAX_NESTING {
                    return Err(ParseError::at(
                        input,
                        i,
                        format!("expression nesting too deep (more than {MAX_NESTING} levels)"),
                    ));
                }
            }
            b')' | b']' | b'}' => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    _ => {
                        let what = match c {
                            b')' => "unexpected right parenthesis ')'",
                            b']' => "unexpected right bracket ']'",
                            _ => "unexpected right brace '}'",
                        };
                        return Err(ParseError::at(input, i, what));
                    }
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' | b'=' | b'!' | b'@' => {
                operators += 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
                {
                    i += 1;
                }
                let word = input[start..=i].to_ascii_lowercase();
                if matches!(word.as_str(), "and" | "or" | "unless" | "atan2" | "offset") {
                    operators += 1;
                }
            }
            b'0'..=b'9' | b':' | b'.' | b',' | b' ' | b'\t' | b'\r' | b'\n' | b'~' => {}
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(
                    input,
                    i,
                    format!("unexpected character: {ch:?}"),
                ));
            }
        }
        if operators > MAX_OPERATORS {
            return Err(ParseError::at(
                input,
                i,
                format!("expression too complex (more than {MAX_OPERATORS} operators)"),
            ));
        }
        i += 1;
    }
    if let Some((open, pos)) = stack.pop() {
        let what = match open {
            b'(' => "unclosed left parenthesis",
            b'[' => "unclosed left bracket",
            _ => "unexpected end of input inside braces",
        };
        return Err(ParseError::at(input, pos, what));
    }
    Ok(())
}

/// Unquotes a PromQL string literal (with its quotes) using Go's escape rules.
pub(crate) fn unquote(raw: &str) -> Result<String, String> {
    let quote = raw.chars().next().ok_or("empty string literal")?;
    if raw.len() < 2 || !raw.ends_with(quote) {
        return Err("unterminated quoted string".into());
    }
    let body = &raw[1..raw.len() - 1];
    if quote == '`' {
        return Ok(body.to_string());
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or("escape sequence not terminated")?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            q if q == quote => Some(q as u8),
            _ => None,
        };
        if let Some(b) = simple {
            bytes.push(b);
            continue;
        }
        let (n, base, max, first): (usize, u32, u32, Option<char>) = match e {
            '0'..='7' => (3, 8, 255, Some(e)),
            'x' => (2, 16, 255, None),
            'u' => (4, 16, 0x10FFFF, None),
            'U' => (8, 16, 0x10FFFF, None),
            other => {
                return Err(format!(
                    "unknown escape sequence U+{:04X} '{other}'",
                    other as u32
                ));
            }
        };
        let mut value: u32 = 0;
        let mut digits = 0;
        if let Some(d) = first {
            value = d.to_digit(8).unwrap_or(0);
            digits = 1;
        }
        while digits < n {
            let d = chars.next().ok_or("escape sequence not terminated")?;
            let v = d
                .to_digit(base)
                .ok_or_else(|| format!("invalid character {d:?} in escape sequence"))?;
            value = value * base + v;
            digits += 1;
        }
        if value > max || (0xD800..0xE000).contains(&value) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        if e == 'u' || e == 'U' {
            let ch =
                char::from_u32(value).ok_or("escape sequence is an invalid Unicode code point")?;
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        } else {
            bytes.push(value as u8);
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses a number token like Go's `strconv.ParseInt(s, 0, 64)` falling
/// back to `ParseFloat`: hex, octal with a leading zero, floats, Inf, NaN.
pub(crate) fn parse_number(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" => return Ok(f64::INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .or_else(|_| u128::from_str_radix(hex, 16).map(|v| v as f64))
            .map_err(|e| format!("error parsing number: {e}"));
    }
    if lower.len() > 1
        && lower.starts_with('0')
        && lower.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && let Ok(v) = i64::from_str_radix(&lower[1..], 8)
    {
        return Ok(v as f64);
    }
    lower
        .parse::<f64>()
        .map_err(|e| format!("error parsing number: {e}"))
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `100ms`) into milliseconds.
pub(crate) fn parse_duration_ms(s: &str) -> Result<i64, String> {
    strata_vocab::duration::parse_ms(s).map_err(|e| e.to_string())
}
