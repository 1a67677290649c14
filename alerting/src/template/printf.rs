//! Go `fmt` emulation: `Sprintf` verbs, flags, width and precision, `Sprint`/`Sprintln`,
//! and `strconv.FormatFloat` for the `e`, `f` and `g` formats.

use std::fmt::Write as _;
use std::rc::Rc;

use strata_grammar::format_go_float as format_float;

use super::gotime::GoTime;
use super::humanize::{go_duration, go_time};
use super::notify::{go_instant, pairs_string, sorted_pairs};
use super::value::Value;

/// A parsed `%` directive.
#[derive(Debug, Clone, Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

/// The plain `%v` directive.
fn v() -> Spec {
    Spec {
        verb: 'v',
        ..Spec::default()
    }
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut s = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '-' => (s.minus, s.zero) = (true, false),
                '+' => s.plus = true,
                '#' => s.sharp = true,
                ' ' => s.space = true,
                '0' => s.zero = !s.minus,
                _ => break,
            }
            it.next();
        }
        let num = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                it.next();
            }
            n
        };
        s.width = num(&mut it);
        if it.peek() == Some(&'.') {
            it.next();
            s.prec = Some(num(&mut it).unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        s.verb = verb;
        if verb == '%' {
            out.push('%');
        } else if let Some(a) = args.get(argi) {
            fmt_arg(&mut out, a, &s, 0);
            argi += 1;
        } else {
            let _ = write!(out, "%!{verb}(MISSING)");
        }
    }
    if let Some(extra) = args.get(argi..).filter(|e| !e.is_empty()) {
        out.push_str("%!(EXTRA ");
        for (i, a) in extra.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            let _ = write!(out, "{sep}{}={a}", a.type_name());
        }
        out.push(')');
    }
    out
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_str = true;
    for a in args {
        let is_str = matches!(a, Value::Str(_));
        if !is_str && !prev_str {
            out.push(' ');
        }
        fmt_arg(&mut out, a, &v(), 0);
        prev_str = is_str;
    }
    out
}

/// `fmt.Sprintln`: operands separated by spaces, newline-terminated.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(|a| sprint_value(a, 0)).collect();
    parts.join(" ") + "\n"
}

/// `%v` of one value; `depth > 0` prints a sample without the pointer's `&`.
pub(crate) fn sprint_value(v: &Value, depth: usize) -> String {
    let mut out = String::new();
    fmt_arg(&mut out, v, &self::v(), depth);
    out
}

fn fmt_arg(out: &mut String, v: &Value, s: &Spec, depth: usize) {
    let stringer = matches!(s.verb, 'v' | 's' | 'q' | 'x' | 'X');
    match v {
        _ if s.verb == 'T' => pad(out, v.type_name(), s, false),
        Value::Nil if s.verb == 'v' => pad(out, "<nil>", s, false),
        Value::Bool(b) if matches!(s.verb, 'v' | 't') => pad(out, &b.to_string(), s, false),
        Value::Int(i) => fmt_int(out, *i, s, v),
        Value::Duration(d) if stringer => fmt_str(out, &go_duration(*d), s),
        Value::Duration(d) => fmt_int(out, *d, s, v),
        Value::Time(ms) if stringer => fmt_str(out, &go_time(*ms), s),
        Value::GoTime(t) if stringer => fmt_str(out, &t.string(), s),
        Value::Kv(m) if stringer => fmt_str(out, &pairs_string(&sorted_pairs(m)), s),
        Value::Pairs(p) if stringer => fmt_str(out, &pairs_string(p), s),
        Value::Float(f) => fmt_float(out, *f, s, v),
        Value::Str(x) => fmt_str(out, x, s),
        Value::Labels(m) => {
            let items = m.iter().map(|(k, x)| (Some(k), Value::Str(x.clone())));
            fmt_seq(out, "map[", items, s);
        }
        Value::Map(m) => fmt_seq(out, "map[", m.iter().map(|(k, x)| (Some(k), x.clone())), s),
        Value::Samples(l) => {
            let items = l.iter().map(|x| (None, Value::Sample(Rc::new(x.clone()))));
            fmt_seq(out, "[", items, s);
        }
        Value::Sample(x) => {
            out.push_str(if depth == 0 { "&" } else { "" });
            let fields = [Value::Labels(x.labels.clone()), Value::Float(x.value)];
            fmt_seq(out, "{", fields.into_iter().map(|f| (None, f)), s);
        }
        Value::Data(d) => {
            let fields = [
                Value::Labels(d.labels.clone()),
                Value::Labels(d.external_labels.clone()),
                Value::Str(d.external_url.clone()),
                Value::Float(d.value),
            ];
            fmt_seq(out, "{", fields.into_iter().map(|f| (None, f)), s);
        }
        Value::Kv(m) => {
            let items = m.iter().map(|(k, x)| (Some(k), Value::Str(x.clone())));
            fmt_seq(out, "map[", items, s);
        }
        Value::Pairs(l) => {
            let items = l.iter().map(|p| (None, Value::Pair(Rc::new(p.clone()))));
            fmt_seq(out, "[", items, s);
        }
        Value::Pair(p) => {
            let fields = [Value::Str(p.0.clone()), Value::Str(p.1.clone())];
            fmt_seq(out, "{", fields.into_iter().map(|f| (None, f)), s);
        }
        Value::Strings(l) => fmt_seq(out, "[", l.iter().map(|x| (None, Value::Str(x.clone()))), s),
        Value::Alerts(l) => {
            let items = l.iter().map(|a| (None, Value::Alert(Rc::new(a.clone()))));
            fmt_seq(out, "[", items, s);
        }
        Value::Alert(a) => {
            let kv = |m: &std::collections::BTreeMap<String, String>| Value::Kv(Rc::new(m.clone()));
            let fields = [
                Value::Str(a.status.clone()),
                kv(&a.labels),
                kv(&a.annotations),
                Value::GoTime(GoTime::utc(go_instant(a.starts_at_ms))),
                Value::GoTime(GoTime::utc(go_instant(a.ends_at_ms))),
                Value::Str(a.generator_url.clone()),
                Value::Str(a.fingerprint.clone()),
            ];
            fmt_seq(out, "{", fields.into_iter().map(|f| (None, f)), s);
        }
        Value::Notify(d) => {
            out.push_str(if depth == 0 { "&" } else { "" });
            let kv = |m: &std::collections::BTreeMap<String, String>| Value::Kv(Rc::new(m.clone()));
            let fields = [
                Value::Str(d.receiver.clone()),
                Value::Str(d.status.clone()),
                Value::Alerts(Rc::new(d.alerts.clone())),
                kv(&d.group_labels),
                kv(&d.common_labels),
                kv(&d.common_annotations),
                Value::Str(d.external_url.clone()),
            ];
            fmt_seq(out, "{", fields.into_iter().map(|f| (None, f)), s);
        }
        Value::Nil | Value::Bool(_) | Value::Time(_) | Value::GoTime(_) => bad(out, v, s),
    }
}

/// Prints a map (`open` = `map[`), slice (`[`) or struct (`{`) element by element.
fn fmt_seq<'a>(
    out: &mut String,
    open: &str,
    items: impl Iterator<Item = (Option<&'a String>, Value)>,
    s: &Spec,
) {
    out.push_str(open);
    for (i, (k, x)) in items.enumerate() {
        out.push_str(if i > 0 { " " } else { "" });
        if let Some(k) = k {
            fmt_str(out, k, s);
            out.push(':');
        }
        fmt_arg(out, &x, s, 1);
    }
    out.push(if open == "{" { '}' } else { ']' });
}

/// `%!verb(type=value)` for a verb the value's type doesn't support.
fn bad(out: &mut String, v: &Value, s: &Spec) {
    let _ = match v {
        Value::Nil => write!(out, "%!{}(<nil>)", s.verb),
        _ => write!(out, "%!{}({}={v})", s.verb, v.type_name()),
    };
}

/// Pads to the width (in runes); `zero` pads with zeros after any sign.
fn pad(out: &mut String, body: &str, s: &Spec, zero: bool) {
    let fill = s.width.unwrap_or(0).saturating_sub(body.chars().count());
    if s.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if zero && s.zero {
        let (sign, rest) = match body.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c.to_string(), &body[1..]),
            _ => (String::new(), body),
        };
        out.push_str(&sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn fmt_str(out: &mut String, x: &str, s: &Spec) {
    let x: String = match s.prec {
        Some(p) => x.chars().take(p).collect(),
        None => x.to_string(),
    };
    let body = match s.verb {
        'v' | 's' => x,
        'q' => quote(&x, '"', s.plus),
        'x' => x.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => x.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return bad(out, &Value::Str(x), s),
    };
    pad(out, &body, s, false);
}

/// Go `strconv.Quote` (or `QuoteToASCII` when `ascii`), also used for `%q` of runes.
fn quote(x: &str, q: char, ascii: bool) -> String {
    let mut r = String::from(q);
    for c in x.chars() {
        match c {
            '\x07' => r.push_str("\\a"),
            '\x08' => r.push_str("\\b"),
            '\x0c' => r.push_str("\\f"),
            '\n' => r.push_str("\\n"),
            '\r' => r.push_str("\\r"),
            '\t' => r.push_str("\\t"),
            '\x0b' => r.push_str("\\v"),
            '\\' => r.push_str("\\\\"),
            c if c == q => {
                r.push('\\');
                r.push(c);
            }
            c if c < ' ' || c == '\x7f' => {
                let _ = write!(r, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() || (ascii && !c.is_ascii()) => {
                let _ = if u32::from(c) < 0x10000 {
                    write!(r, "\\u{:04x}", u32::from(c))
                } else {
                    write!(r, "\\U{:08x}", u32::from(c))
                };
            }
            c => r.push(c),
        }
    }
    r.push(q);
    r
}

fn fmt_int(out: &mut String, i: i64, s: &Spec, v: &Value) {
    let u = i.unsigned_abs();
    let mut digits = match s.verb {
        'd' | 'v' => u.to_string(),
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'c' | 'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let body = if s.verb == 'c' {
                c.to_string()
            } else {
                quote(&c.to_string(), '\'', s.plus)
            };
            return pad(out, &body, s, false);
        }
        'U' => return pad(out, &format!("U+{i:04X}"), s, false),
        _ => return bad(out, v, s),
    };
    let sign = if i < 0 {
        "-"
    } else if s.plus {
        "+"
    } else if s.space {
        " "
    } else {
        ""
    };
    let min = match s.prec {
        Some(0) if u == 0 => {
            digits.clear();
            0
        }
        Some(p) => p,
        None if s.zero => s.width.unwrap_or(0).saturating_sub(sign.len()),
        None => 0,
    };
    let zeros = "0".repeat(min.saturating_sub(digits.len()));
    let prefix = match (s.verb, s.sharp) {
        ('b', true) => "0b",
        ('o', true) => "0",
        ('x', true) => "0x",
        ('X', true) => "0X",
        ('O', _) => "0o",
        _ => "",
    };
    pad(out, &format!("{sign}{prefix}{zeros}{digits}"), s, false);
}

fn fmt_float(out: &mut String, f: f64, s: &Spec, v: &Value) {
    let verb = match s.verb {
        'v' => 'g',
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => s.verb,
        _ => return bad(out, v, s),
    };
    let prec = if matches!(verb, 'e' | 'E' | 'f' | 'F') {
        Some(s.prec.unwrap_or(6))
    } else {
        s.prec
    };
    let num = format_float(f, verb, prec);
    let (neg, body) = match num.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, num.trim_start_matches('+')),
    };
    let sign = match () {
        _ if neg => "-",
        _ if s.plus => "+",
        _ if s.space => " ",
        _ if body == "Inf" => "+",
        _ => "",
    };
    let special = body == "Inf" || body == "NaN";
    pad(out, &format!("{sign}{body}"), s, !special);
}
