//! A small structural analysis of RE2 regular expressions, enough to tell
//! whether a fully anchored regex can match the empty string (Prometheus
//! rejects selectors whose matchers all match the empty string) and to
//! report the most common syntax errors (unbalanced parentheses and
//! brackets, repetition without operand) the way Go's `regexp` does.
//!
//! The structural pass gives Go-worded messages for common mistakes; the
//! `regex` crate (RE2 syntax, as Go's `regexp`) then compiles the anchored
//! expression, which decides validity and empty-match exactly.

/// Maximum group nesting analysed; deeper groups count as non-empty.
const MAX_DEPTH: usize = 100;

/// Validates `re`: Go-like error text for common mistakes first, then a full compile
/// with the `regex` crate (RE2 syntax, as Prometheus) for everything else.
pub(crate) fn validate(re: &str) -> Result<(), String> {
    validate_structure(re)?;
    anchored(re)
        .map(|_| ())
        .map_err(|e| format!("error parsing regexp: {}: `{re}`", first_line(&e)))
}

fn anchored(re: &str) -> Result<regex::Regex, String> {
    strata_vocab::pattern::compile_anchored(re).map_err(|e| e.to_string())
}

fn first_line(e: &str) -> String {
    e.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or_else(
            || e.lines().next().unwrap_or("invalid regex").to_string(),
            |l| l.trim_start_matches("error:").trim().to_string(),
        )
}

fn validate_structure(re: &str) -> Result<(), String> {
    let mut p = P {
        s: re.as_bytes(),
        i: 0,
    };
    p.alternation(0)?;
    if p.i < p.s.len() {
        return Err(format!("error parsing regexp: unexpected ): `{re}`"));
    }
    Ok(())
}

/// Whether the anchored regex `^(?:re)$` matches "" (exact, by compiling it).
pub(crate) fn matches_empty(re: &str) -> bool {
    match anchored(re) {
        Ok(r) => r.is_match(""),
        Err(_) => matches_empty_structural(re),
    }
}

fn matches_empty_structural(re: &str) -> bool {
    let mut p = P {
        s: re.as_bytes(),
        i: 0,
    };
    p.alternation(0).unwrap_or(false)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn alternation(&mut self, depth: usize) -> Result<bool, String> {
        let mut nullable = self.concat(depth)?;
        while self.peek() == Some(b'|') {
            self.i += 1;
            nullable |= self.concat(depth)?;
        }
        Ok(nullable)
    }

    fn concat(&mut self, depth: usize) -> Result<bool, String> {
        let mut nullable = true;
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let atom = self.atom(depth)?;
            let q = self.quantifier(atom)?;
            nullable &= q;
        }
        Ok(nullable)
    }

    fn quantifier(&mut self, atom: bool) -> Result<bool, String> {
        let mut nullable = atom;
        loop {
            match self.peek() {
                Some(b'*') | Some(b'?') => {
                    self.i += 1;
                    nullable = true;
                }
                Some(b'+') => self.i += 1,
                Some(b'{') => {
                    let rest = &self.s[self.i + 1..];
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    let close = rest.iter().position(|&b| b == b'}');
                    match close {
                        Some(end)
                            if digits > 0
                                && rest[digits..end]
                                    .iter()
                                    .all(|b| b.is_ascii_digit() || *b == b',') =>
                        {
                            let min: u64 = std::str::from_utf8(&rest[..digits])
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(1);
                            if min == 0 {
                                nullable = true;
                            }
                            self.i += end + 2;
                        }
                        _ => return Ok(nullable), // a literal '{'
                    }
                }
                _ => return Ok(nullable),
            }
            if matches!(self.peek(), Some(b'?')) {
                self.i += 1; // lazy modifier
            }
            if matches!(self.peek(), Some(b'*' | b'+')) {
                let s = String::from_utf8_lossy(self.s);
                return Err(format!(
                    "error parsing regexp: invalid nested repetition operator: `{s}`"
                ));
            }
        }
    }

    fn atom(&mut self, depth: usize) -> Result<bool, String> {
        let c = self.peek().unwrap_or(b'x');
        self.i += 1;
        match c {
            b'(' => {
                if self.peek() == Some(b'?') {
                    // Flags or named group: skip to ':' or ')'.
                    while let Some(b) = self.peek() {
                        if b == b':' {
                            self.i += 1;
                            break;
                        }
                        if b == b')' {
                            self.i += 1;
                            return Ok(true);
                        }
                        self.i += 1;
                    }
                }
                let nullable = if depth >= MAX_DEPTH {
                    self.skip_group();
                    false
                } else {
                    self.alternation(depth + 1)?
                };
                if self.peek() != Some(b')') {
                    let s = String::from_utf8_lossy(self.s);
                    return Err(format!("error parsing regexp: missing closing ): `{s}`"));
                }
                self.i += 1;
                Ok(nullable)
            }
            b'[' => {
                let start = self.i;
                if self.peek() == Some(b'^') {
                    self.i += 1;
                }
                if self.peek() == Some(b']') {
                    self.i += 1;
                }
                while let Some(b) = self.peek() {
                    self.i += 1;
                    match b {
                        b'\\' => self.i += 1,
                        b'[' if self.peek() == Some(b':') => {
                            while let Some(x) = self.peek() {
                                self.i += 1;
                                if x == b']' {
                                    break;
                                }
                            }
                        }
                        b']' => return Ok(false),
                        _ => {}
                    }
                }
                let s = String::from_utf8_lossy(&self.s[start - 1..]);
                Err(format!("error parsing regexp: missing closing ]: `{s}`"))
            }
            b'*' | b'+' | b'?' => {
                let s = String::from_utf8_lossy(&self.s[self.i - 1..]);
                Err(format!(
                    "error parsing regexp: missing argument to repetition operator: `{}`",
                    s.chars().next().unwrap_or('*')
                ))
            }
            b'^' | b'$' => Ok(true),
            b'\\' => {
                let e = self.peek();
                self.i += 1;
                match e {
                    Some(b'b' | b'B' | b'A' | b'z') => Ok(true),
                    Some(b'Q') => {
                        // \Q...\E literal text.
                        let start = self.i;
                        while self.i < self.s.len() && !self.s[self.i..].starts_with(b"\\E") {
                            self.i += 1;
                        }
                        let empty = self.i == start;
                        self.i = (self.i + 2).min(self.s.len());
                        Ok(empty)
                    }
                    Some(b'p' | b'P') => {
                        if self.peek() == Some(b'{') {
                            while let Some(x) = self.peek() {
                                self.i += 1;
                                if x == b'}' {
                                    break;
                                }
                            }
                        } else {
                            self.i += 1;
                        }
                        Ok(false)
                    }
                    None => Err(
                        "error parsing regexp: trailing backslash at end of expression: ``".into(),
                    ),
                    _ => Ok(false),
                }
            }
            _ => Ok(false),
        }
    }

    fn skip_group(&mut self) {
        let mut depth = 1usize;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => self.i += 1,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable() {
        for re in [
            ".*", "", "a*", "(a|)", "a?", "x{0,3}", "(?i)", "^$", "(a*)(b?)", ".*|foo",
        ] {
            assert!(matches_empty(re), "{re}");
        }
        for re in [
            ".+", "a", "foo|bar", "[a-z]*x", "x{2}", "\\d", "(a|b)+", "a|b",
        ] {
            assert!(!matches_empty(re), "{re}");
        }
    }

    #[test]
    fn errors() {
        assert!(validate("(").is_err());
        assert!(validate(")").is_err());
        assert!(validate("[a").is_err());
        assert!(validate("*a").is_err());
        assert!(validate("a**").is_err());
        assert!(validate("a{,").is_ok());
        assert!(validate("foo.*|bar[0-9]+").is_ok());
        assert!(validate(&"(".repeat(1000)).is_err());
        // An escape of a multi-byte character: an error, not a panic on a char boundary.
        assert!(validate("a\\é").is_err());
        assert!(!matches_empty("x\\é{"));
    }
}
