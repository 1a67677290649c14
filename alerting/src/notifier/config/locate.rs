//! Best-effort positions of field paths (`route.routes[1].receiver`) in the YAML text, for
//! errors found after parsing (serde does not keep spans). Block-style YAML is walked by
//! indentation; a path into flow style (`[a, b]`) resolves to its deepest block ancestor.

use std::fmt::Display;

use super::error::ConfigError;

/// A significant line: its indentation, whether it starts a list item, and its `key:`.
struct Line {
    no: usize,
    indent: usize,
    dash: bool,
    /// 0-based column and name of the key on this line.
    key: Option<(usize, String)>,
}

/// Finds where field paths are written and builds [`ConfigError`]s there.
pub(super) struct Locator<'a> {
    origin: &'a str,
    lines: Vec<Line>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(origin: &'a str, text: &str) -> Locator<'a> {
        let lines = text
            .lines()
            .enumerate()
            .filter_map(|(i, raw)| parse_line(i + 1, raw))
            .collect();
        Locator { origin, lines }
    }

    /// An error `path: msg` at the position of `path`.
    pub(super) fn err(&self, path: &str, msg: impl Display) -> ConfigError {
        self.err_at(path, path, msg)
    }

    /// An error `path: msg` at the position of `at` (usually a field inside `path`).
    pub(super) fn err_at(&self, path: &str, at: &str, msg: impl Display) -> ConfigError {
        let (line, column) = self.position(at);
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            line,
            column,
            message: format!("{path}: {msg}"),
        }
    }

    /// 1-based `(line, column)` of the deepest resolvable part of `path`.
    fn position(&self, path: &str) -> (usize, usize) {
        let (mut lo, mut hi) = (0, self.lines.len());
        let mut best = None;
        for seg in path.split('.') {
            let mut parts = seg.split('[');
            let name = parts.next().unwrap_or_default();
            let Some(i) = self.find_key(lo, hi, name) else {
                break;
            };
            best = Some((i, self.lines[i].key.as_ref().map_or(0, |k| k.0)));
            (lo, hi) = (i + 1, self.value_end(i, hi));
            for idx in parts.filter_map(|p| p.trim_end_matches(']').parse::<usize>().ok()) {
                let Some((s, e)) = self.item(lo, hi, idx) else {
                    return pos(&self.lines, best);
                };
                best = Some((s, self.lines[s].indent));
                (lo, hi) = (s, e);
            }
        }
        pos(&self.lines, best)
    }

    /// The line of `key` among the direct keys of the mapping in `lo..hi`.
    fn find_key(&self, lo: usize, hi: usize, key: &str) -> Option<usize> {
        let region = self.lines.get(lo..hi)?;
        let col = region
            .iter()
            .filter_map(|l| l.key.as_ref())
            .map(|k| k.0)
            .min()?;
        (lo..hi).find(|&j| matches!(&self.lines[j].key, Some((c, k)) if *c == col && k == key))
    }

    /// End (exclusive) of the block value of the key on line `i`.
    fn value_end(&self, i: usize, hi: usize) -> usize {
        let k = self.lines[i].key.as_ref().map_or(0, |k| k.0);
        (i + 1..hi)
            .find(|&j| {
                let l = &self.lines[j];
                if l.dash { l.indent < k } else { l.indent <= k }
            })
            .unwrap_or(hi)
    }

    /// Lines `start..end` of the `idx`-th item of the block list in `lo..hi`.
    fn item(&self, lo: usize, hi: usize, idx: usize) -> Option<(usize, usize)> {
        let region = self.lines.get(lo..hi)?;
        let d = region.iter().filter(|l| l.dash).map(|l| l.indent).min()?;
        let mut starts = (lo..hi).filter(|&j| self.lines[j].dash && self.lines[j].indent == d);
        let s = starts.nth(idx)?;
        Some((s, starts.next().unwrap_or(hi)))
    }
}

fn pos(lines: &[Line], best: Option<(usize, usize)>) -> (usize, usize) {
    best.map_or((1, 1), |(i, c)| (lines[i].no, c + 1))
}

fn parse_line(no: usize, raw: &str) -> Option<Line> {
    let t = raw.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let indent = raw.len() - t.len();
    let dash = t == "-" || t.starts_with("- ");
    let body = if dash { t[1..].trim_start() } else { t };
    let col = raw.len() - body.len();
    let key = body
        .find(':')
        .filter(|&c| body[c + 1..].is_empty() || body[c + 1..].starts_with([' ', '\t']))
        .map(|c| body[..c].trim())
        .map(|k| match k.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) if k.len() > 1 && k.as_bytes()[k.len() - 1] == *q => {
                &k[1..k.len() - 1]
            }
            _ => k,
        })
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        })
        .map(|k| (col, k.to_owned()));
    Some(Line {
        no,
        indent,
        dash,
        key,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "route:\n  receiver: a\n  routes:\n  - receiver: b\n    matchers: ['x=\"1\"']\n  # c\n  - matchers:\n      - y=2\n    receiver: c\nreceivers:\n  - name: a\n";

    #[test]
    fn resolves_block_paths() {
        let l = Locator::new("f", TEXT);
        assert_eq!(l.position("route.receiver"), (2, 3));
        assert_eq!(l.position("route.routes[1]"), (7, 3));
        assert_eq!(l.position("route.routes[1].receiver"), (9, 5));
        assert_eq!(l.position("route.routes[1].matchers[0]"), (8, 7));
        assert_eq!(l.position("route.routes[0].matchers[0]"), (5, 5));
        assert_eq!(l.position("receivers[0].name"), (11, 5));
        assert_eq!(l.position("nope"), (1, 1));
    }
}
