//! The series notation shared by Prometheus's test languages (`promqltest` scripts and
//! `promtool test rules` files): `metric{a="b"}` label sets and value sequences with
//! `a+bxn` / `a-bxn` / `axn` expansions, `_` (missing), `_xn` and `stale`.

use strata_grammar::{Expr, MatchOp};
use strata_storage::Labels;

use crate::rules::group::STALE_NAN;

/// A duration as the test languages write it: `5m`, `1h30m`, `90s`, or bare seconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v * 1000);
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        let v: i64 = rest[..n]
            .parse()
            .map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[n..];
        let (mult, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.chars().next() {
                Some('s') => (1000, 1),
                Some('m') => (60_000, 1),
                Some('h') => (3_600_000, 1),
                Some('d') => (86_400_000, 1),
                Some('w') => (604_800_000, 1),
                Some('y') => (31_536_000_000, 1),
                _ => return Err(format!("bad duration {s:?}")),
            }
        };
        total += v * mult;
        rest = &rest[len..];
    }
    Ok(total)
}

/// A sample value: a float, `Inf`, `NaN` or `stale` (Prometheus's staleness marker).
pub fn parse_number(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        "stale" => Ok(STALE_NAN),
        _ => s.parse().map_err(|_| format!("bad number {s:?}")),
    }
}

/// Expands a value sequence; `None` is a missing point.
pub fn expand(tokens: &[&str]) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in tokens {
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if *tok == "_" {
            out.push(None);
            continue;
        }
        if let Some((head, times)) = tok.rsplit_once('x')
            && let Ok(times) = times.parse::<usize>()
        {
            // `a+bxn`, `a-bxn` or `axn`; the sign split skips a leading sign of `a`.
            let split = head
                .char_indices()
                .skip(1)
                .find(|(i, c)| (*c == '+' || *c == '-') && !head[..*i].ends_with(['e', 'E']))
                .map(|(i, _)| i);
            let (start, delta) = match split {
                Some(i) => (parse_number(&head[..i])?, parse_number(&head[i..])?),
                None => (parse_number(head)?, 0.0),
            };
            for k in 0..=times {
                out.push(Some(start + delta * k as f64));
            }
            continue;
        }
        out.push(Some(parse_number(tok)?));
    }
    Ok(out)
}

/// `metric{a="b"} rest…` → (labels, rest).
pub fn split_series(line: &str) -> Result<(Labels, &str), String> {
    let end = match line.find('}') {
        Some(i) => i + 1,
        None => line.find(char::is_whitespace).unwrap_or(line.len()),
    };
    let (sel, rest) = line.split_at(end);
    if sel.trim() == "{}" {
        return Ok((Labels::default(), rest.trim()));
    }
    let expr = strata_grammar::parse(sel.trim()).map_err(|e| format!("{sel}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("not a series: {sel}"));
    };
    let mut pairs: Vec<(String, String)> = vec![];
    for m in vs.all_matchers() {
        if m.op != MatchOp::Equal {
            return Err(format!("only = matchers in series: {sel}"));
        }
        pairs.push((m.name, m.value));
    }
    Ok((Labels::from_pairs(pairs), rest.trim()))
}
