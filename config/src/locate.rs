//! Best-effort positions for errors found after parsing (when serde no longer
//! knows where a value came from): a line-oriented scan of the YAML text for
//! `key: value` lines.

use crate::error::Position;

/// The key and value on a `key: value` line (list dash and quotes removed).
fn split_line(line: &str) -> Option<(usize, &str, &str)> {
    let trimmed = line.trim_start();
    let mut indent = line.len() - trimmed.len();
    let body = match trimmed.strip_prefix("- ") {
        Some(b) => {
            let b2 = b.trim_start();
            indent += 2 + (b.len() - b2.len());
            b2
        }
        None => trimmed,
    };
    let colon = body.find(':')?;
    let key = body[..colon].trim().trim_matches(['"', '\'']);
    let mut value = body[colon + 1..].trim();
    if let Some(hash) = value.find(" #") {
        value = value[..hash].trim();
    }
    if value.starts_with('#') {
        value = "";
    }
    Some((indent, key, value.trim_matches(['"', '\''])))
}

/// Positions of every `key:` line (optionally with the given value).
pub(crate) fn find_all(text: &str, key: &str, value: Option<&str>) -> Vec<Position> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (indent, k, v) = split_line(line)?;
            (k == key && value.is_none_or(|want| want == v)).then_some(Position {
                line: i + 1,
                column: indent + 1,
            })
        })
        .collect()
}

/// Position of the `n`-th (0-based) `key: value` line.
pub(crate) fn find_nth(text: &str, key: &str, value: Option<&str>, n: usize) -> Option<Position> {
    find_all(text, key, value).get(n).copied()
}

/// Position of `key:` between line `from` and the next `job_name:` line,
/// falling back to `from` itself.
pub(crate) fn find_in_job(text: &str, from: Position, key: &str) -> Position {
    for (i, line) in text.lines().enumerate().skip(from.line) {
        if let Some((indent, k, _)) = split_line(line) {
            if k == "job_name" {
                break;
            }
            if k == key {
                return Position {
                    line: i + 1,
                    column: indent + 1,
                };
            }
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_job_lines() {
        let text = "scrape_configs:\n- job_name: a\n  scrape_timeout: 5s\n- job_name: 'b' # x\n";
        let b = find_nth(text, "job_name", Some("b"), 0).expect("found");
        assert_eq!(b, Position { line: 4, column: 3 });
        let a = find_nth(text, "job_name", Some("a"), 0).expect("found");
        assert_eq!(
            find_in_job(text, a, "scrape_timeout"),
            Position { line: 3, column: 3 }
        );
    }
}
