//! Parse errors with position information.
//!
//! [`ParseError`] displays like Prometheus's `ParseErr`:
//! `<line>:<column>: parse error: <message>`, where the column is the
//! 1-based byte offset within the line.

/// A PromQL parse (or type-check) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: parse error: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column within the line.
    pub column: usize,
    /// Byte offset of the error in the input.
    pub offset: usize,
    /// What went wrong (Prometheus-like wording).
    pub message: String,
    /// The part of the input line around the error position.
    pub snippet: String,
}

/// Bytes of context kept on each side of the error position in a snippet.
const SNIPPET_CONTEXT: usize = 30;

impl ParseError {
    /// Builds an error at byte `offset` of `input`.
    pub fn at(input: &str, offset: usize, message: impl Into<String>) -> ParseError {
        let mut offset = offset.min(input.len());
        while !input.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &input[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = offset - line_start + 1;
        let line_end = input[offset..]
            .find('\n')
            .map_or(input.len(), |i| offset + i);
        let mut from = offset.saturating_sub(SNIPPET_CONTEXT).max(line_start);
        while !input.is_char_boundary(from) {
            from += 1;
        }
        let mut to = (offset + SNIPPET_CONTEXT).min(line_end);
        while !input.is_char_boundary(to) {
            to -= 1;
        }
        ParseError {
            line,
            column,
            offset,
            message: message.into(),
            snippet: input[from..to].to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_bytes() {
        let e = ParseError::at("foo\nbar baz", 8, "boom");
        assert_eq!((e.line, e.column), (2, 5));
        assert_eq!(e.to_string(), "2:5: parse error: boom");
        assert_eq!(e.snippet, "bar baz");
        let e = ParseError::at("ä", 1, "x");
        assert_eq!((e.line, e.column, e.offset), (1, 1, 0));
    }
}
