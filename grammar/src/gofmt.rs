//! Go's `strconv.FormatFloat(v, fmt, prec, 64)` for the `e`, `f` and `g` formats, used
//! where Go programs print floats: the text exposition format (`%g` shortest), template
//! `printf` verbs, and humanized values.

use std::fmt::Write as _;

/// Go `strconv.FormatFloat(v, fmt, prec, 64)` for `e`/`f`/`g`; `prec: None` means
/// shortest (`-1`) for `g` and 6 for `e`/`f`.
pub fn format_go_float(v: f64, fmt: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let a = v.abs();
    let upper = fmt.is_ascii_uppercase();
    let body = match fmt.to_ascii_lowercase() {
        'f' => format!("{a:.*}", prec.unwrap_or(6)),
        'e' => {
            let p = prec.unwrap_or(6);
            let (d, dp) = digits(a, Some(p + 1));
            fmt_e(&d, dp, p, upper)
        }
        _ => {
            let p = prec.map(|p| p.max(1));
            let (d, dp) = digits(a, p);
            let nd = d.len() as i32;
            let want = p.map_or(nd, |p| p as i32);
            let mut eprec = p.map_or(6, |p| p as i32);
            if p.is_some() && eprec > nd && nd >= dp {
                eprec = nd;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                fmt_e(&d, dp, (want.min(nd) - 1).max(0) as usize, upper)
            } else {
                let want = if want > dp { nd } else { want };
                fmt_f(&d, dp, (want - dp).max(0) as usize)
            }
        }
    };
    format!("{sign}{body}")
}

/// Decimal digits of `a` (no trailing zeros; empty for zero), rounded to `sig` significant
/// digits or shortest round-trip when `None`, and the decimal point position.
fn digits(a: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        Some(n) => format!("{:.*e}", n.max(1) - 1, a),
        None => format!("{a:e}"),
    };
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let mut d: Vec<u8> = m.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    (d, e.parse::<i32>().unwrap_or(0) + 1)
}

fn digit(d: &[u8], i: i32) -> char {
    usize::try_from(i)
        .ok()
        .and_then(|i| d.get(i))
        .map_or('0', |&c| char::from(c))
}

fn fmt_e(d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::from(digit(d, 0));
    if prec > 0 {
        s.push('.');
        (1..=prec as i32).for_each(|i| s.push(digit(d, i)));
    }
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(s, "{}{sign}{:02}", if upper { 'E' } else { 'e' }, exp.abs());
    s
}

fn fmt_f(d: &[u8], dp: i32, prec: usize) -> String {
    let mut s: String = if dp > 0 {
        (0..dp).map(|i| digit(d, i)).collect()
    } else {
        "0".into()
    };
    if prec > 0 {
        s.push('.');
        (0..prec as i32).for_each(|i| s.push(digit(d, dp + i)));
    }
    s
}
