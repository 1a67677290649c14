//! Function table: Go's `text/template` builtins plus Prometheus's template functions for
//! rule templates, or Alertmanager's (see `amfuncs.rs`) for notification templates
//! (`and`/`or` are evaluated lazily by the executor).

use std::cmp::Ordering::{self, Equal, Less};
use std::rc::Rc;

use regex::Regex;

use super::amfuncs;
use super::humanize::{self as h, float_to_time};
use super::printf::{sprint, sprintf, sprintln};
use super::value::Value;
use super::{QueryRunner, QuerySample, TemplateData};

/// What functions may consult besides their arguments.
pub(crate) enum Env<'a> {
    /// A Prometheus rule template.
    Rule {
        data: &'a TemplateData,
        q: &'a dyn QueryRunner,
    },
    /// An Alertmanager notification template; `since` measures against `now_ms`.
    Notify { now_ms: i64 },
}

const BUILTINS: &str =
    "and or not len index slice print printf println urlquery html js eq ne lt le gt ge";

const RULE_FUNCS: &str = "query first label value strvalue args reReplaceAll safeHtml match \
    title toUpper toLower graphLink tableLink sortByLabel stripPort stripDomain humanize \
    humanize1024 humanizeDuration humanizePercentage humanizeTimestamp pathPrefix externalURL \
    parseDuration toTime toDuration now";

const NOTIFY_FUNCS: &str = "toUpper toLower title trimSpace join match safeHtml reReplaceAll \
    stringSlice date tz since humanizeDuration";

/// Whether `name` is a known template function (in notification templates when `notify`).
pub(crate) fn is_func(name: &str, notify: bool) -> bool {
    let extra = if notify { NOTIFY_FUNCS } else { RULE_FUNCS };
    [BUILTINS, extra]
        .iter()
        .any(|l| l.split_whitespace().any(|f| f == name))
}

/// The rule-template context, for the functions only rule templates have.
fn rule<'a>(env: &Env<'a>, name: &str) -> Result<(&'a TemplateData, &'a dyn QueryRunner), String> {
    match env {
        Env::Rule { data, q } => Ok((data, *q)),
        Env::Notify { .. } => Err(format!("function {name:?} not defined")),
    }
}

fn want_str(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(wrong_type("string", v)),
    }
}

fn want_sample(v: &Value) -> Result<&QuerySample, String> {
    match v {
        Value::Sample(s) => Ok(s),
        _ => Err(wrong_type("*template.sample", v)),
    }
}

fn label(s: &QuerySample, name: &str) -> String {
    s.labels.get(name).cloned().unwrap_or_default()
}

fn wrong_type(want: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {want}; got {}",
        got.type_name()
    )
}

/// Calls builtin `name` (not `and`/`or`) with evaluated arguments.
pub(crate) fn call(env: &Env<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    use Value::{Bool, Float, Int, Str};
    let calling = |e: String| format!("error calling {name}: {e}");
    if let Env::Notify { now_ms } = env
        && let Some(r) = amfuncs::call(name, &args, *now_ms)
    {
        return r;
    }
    let n = args.len();
    match name {
        "print" => return Ok(Str(sprint(&args))),
        "println" => return Ok(Str(sprintln(&args))),
        "printf" => {
            let (f, rest) = args
                .split_first()
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            return Ok(Str(sprintf(want_str(f)?, rest)));
        }
        "args" => {
            let m = args
                .into_iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a));
            return Ok(Value::Map(m.collect()));
        }
        "urlquery" | "html" | "js" => {
            let s = match args.as_slice() {
                [Str(s)] => s.clone(),
                _ => sprint(&args),
            };
            return Ok(Str(match name {
                "urlquery" => query_escape(&s),
                "html" => html_escape(&s),
                _ => js_escape(&s),
            }));
        }
        "eq" => {
            let (a, rest) = args
                .split_first()
                .ok_or("wrong number of args for eq: want at least 1 got 0")?;
            if rest.is_empty() {
                return Err(calling("missing argument for comparison".into()));
            }
            for b in rest {
                if eq(a, b).map_err(calling)? {
                    return Ok(Bool(true));
                }
            }
            return Ok(Bool(false));
        }
        "index" => {
            let (a, rest) = args
                .split_first()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            return rest
                .iter()
                .try_fold(a.clone(), |v, i| index(&v, i))
                .map_err(calling);
        }
        "slice" => {
            let (item, idx) = args
                .split_first()
                .ok_or("wrong number of args for slice: want at least 1 got 0")?;
            return slice(item, idx).map_err(calling);
        }
        _ => {}
    }
    let want = match name {
        "now" | "pathPrefix" | "externalURL" => 0,
        "label" | "sortByLabel" | "match" | "ne" | "lt" | "le" | "gt" | "ge" => 2,
        "reReplaceAll" => 3,
        _ => 1,
    };
    if n != want {
        return Err(format!(
            "wrong number of args for {name}: want {want} got {n}"
        ));
    }
    let num = |v: &Value| v.to_float().map_err(calling);
    let re = |p: &Value| {
        let p = want_str(p)?;
        Regex::new(p).map_err(|e| {
            let detail = e.to_string();
            let last = detail
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            calling(format!(
                "regexp: Compile({p:?}): error parsing regexp: {last}"
            ))
        })
    };
    Ok(match (name, args.as_slice()) {
        ("now", []) => Float(rule(env, name)?.1.now()),
        ("externalURL", []) => Str(rule(env, name)?.0.external_url.clone()),
        ("pathPrefix", []) => Str(url_path(&rule(env, name)?.0.external_url)),
        ("not", [a]) => Bool(!a.truth()),
        ("len", [a]) => Int(match a {
            Str(s) => s.len(),
            Value::Labels(m) => m.len(),
            Value::Map(m) => m.len(),
            Value::Samples(s) => s.len(),
            Value::Alerts(l) => l.len(),
            Value::Kv(m) => m.len(),
            Value::Pairs(l) => l.len(),
            Value::Strings(l) => l.len(),
            _ => return Err(calling(format!("len of type {}", a.type_name()))),
        } as i64),
        ("ne", [a, b]) => Bool(!eq(a, b).map_err(calling)?),
        (op @ ("lt" | "le" | "gt" | "ge"), [a, b]) => {
            let o = cmp(a, b).map_err(calling)?;
            let (lt, le) = (o == Some(Less), matches!(o, Some(Less | Equal)));
            Bool(match op {
                "lt" => lt,
                "le" => le,
                "gt" => !le,
                _ => !lt,
            })
        }
        ("query", [q]) => {
            let samples = rule(env, name)?.1.query(want_str(q)?).map_err(calling)?;
            Value::Samples(samples)
        }
        ("first", [Value::Samples(s)]) => match s.first() {
            Some(x) => Value::Sample(Rc::new(x.clone())),
            None => return Err(calling("first() called on vector with no elements".into())),
        },
        ("first", [v]) => return Err(wrong_type("template.queryResult", v)),
        ("label", [l, s]) => Str(label(want_sample(s)?, want_str(l)?)),
        ("value", [s]) => Float(want_sample(s)?.value),
        ("strvalue", [s]) => Str(label(want_sample(s)?, "__value__")),
        ("sortByLabel", [l, Value::Samples(s)]) => {
            let l = want_str(l)?;
            let mut s = s.clone();
            s.sort_by_key(|x| label(x, l));
            Value::Samples(s)
        }
        ("sortByLabel", [_, v]) => return Err(wrong_type("template.queryResult", v)),
        ("reReplaceAll", [p, r, t]) => {
            Str(re(p)?.replace_all(want_str(t)?, want_str(r)?).into_owned())
        }
        ("match", [p, t]) => Bool(re(p)?.is_match(want_str(t)?)),
        ("humanize", [v]) => Str(h::humanize(num(v)?)),
        ("humanize1024", [v]) => Str(h::humanize1024(num(v)?)),
        ("humanizeDuration", [v]) => Str(h::humanize_duration(num(v)?)),
        ("humanizePercentage", [v]) => Str(h::humanize_percentage(num(v)?)),
        ("humanizeTimestamp", [v]) => Str(h::humanize_timestamp(num(v)?).map_err(calling)?),
        ("toTime", [v]) => Value::Time(float_to_time(num(v)?).map_err(calling)?),
        ("toDuration", [v]) => Value::Duration((num(v)? * 1e9) as i64),
        (_, [v]) => {
            let s = want_str(v)?;
            Str(match name {
                "safeHtml" => s.to_string(),
                "toUpper" => s.to_uppercase(),
                "toLower" => s.to_lowercase(),
                "title" => title(s),
                "graphLink" => format!("/graph?g0.expr={}&g0.tab=0", query_escape(s)),
                "tableLink" => format!("/graph?g0.expr={}&g0.tab=1", query_escape(s)),
                "stripPort" => split_host_port(s).map_or(s, |(host, _)| host).to_string(),
                "stripDomain" => strip_domain(s),
                "parseDuration" => return h::parse_duration(s).map(Float).map_err(calling),
                _ => return Err(format!("function {name:?} not defined")),
            })
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

/// A value's Go "basic kind" for comparisons; `None` for non-basic types.
enum Basic<'a> {
    Nil,
    Bool(bool),
    Num(f64, Option<i64>),
    Str(&'a str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    Some(match v {
        Value::Nil => Basic::Nil,
        Value::Bool(b) => Basic::Bool(*b),
        Value::Int(i) | Value::Duration(i) => Basic::Num(*i as f64, Some(*i)),
        Value::Float(f) => Basic::Num(*f, None),
        Value::Str(s) => Basic::Str(s),
        _ => return None,
    })
}

const INCOMPATIBLE: &str = "incompatible types for comparison";

/// Go's `eq` for two values (ints and floats compare numerically).
fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    match (basic(a), basic(b)) {
        (Some(Basic::Nil), Some(Basic::Nil)) => Ok(true),
        (Some(Basic::Nil), Some(_)) | (Some(_), Some(Basic::Nil)) => Ok(false),
        (Some(Basic::Bool(x)), Some(Basic::Bool(y))) => Ok(x == y),
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(x == y),
        (Some(Basic::Num(_, Some(x))), Some(Basic::Num(_, Some(y)))) => Ok(x == y),
        (Some(Basic::Num(x, _)), Some(Basic::Num(y, _))) => Ok(x == y),
        (Some(_), Some(_)) => Err(INCOMPATIBLE.into()),
        _ => Err(format!(
            "non-comparable types {}, {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// Go's ordering for `lt`/`le`/`gt`/`ge`; `None` when unordered (NaN).
fn cmp(a: &Value, b: &Value) -> Result<Option<Ordering>, String> {
    match (basic(a), basic(b)) {
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(Some(x.cmp(y))),
        (Some(Basic::Num(_, Some(x))), Some(Basic::Num(_, Some(y)))) => Ok(Some(x.cmp(&y))),
        (Some(Basic::Num(x, _)), Some(Basic::Num(y, _))) => Ok(x.partial_cmp(&y)),
        (Some(Basic::Str(_) | Basic::Num(..)), Some(Basic::Str(_) | Basic::Num(..))) => {
            Err(INCOMPATIBLE.into())
        }
        _ => Err("invalid type for comparison".into()),
    }
}

/// One step of the `index` builtin.
fn index(v: &Value, i: &Value) -> Result<Value, String> {
    let pos = |len: usize| match i {
        Value::Int(k) => usize::try_from(*k)
            .ok()
            .filter(|&k| k < len)
            .ok_or_else(|| format!("index out of range: {k}")),
        _ => Err(format!(
            "cannot index slice/array with type {}",
            i.type_name()
        )),
    };
    let key = || match i {
        Value::Str(k) => Ok(k),
        _ => Err(format!(
            "value has type {}; should be string",
            i.type_name()
        )),
    };
    Ok(match v {
        Value::Labels(m) => Value::Str(m.get(key()?).cloned().unwrap_or_default()),
        Value::Map(m) => m.get(key()?).cloned().unwrap_or(Value::Nil),
        Value::Samples(s) => Value::Sample(Rc::new(s[pos(s.len())?].clone())),
        Value::Kv(m) => Value::Str(m.get(key()?).cloned().unwrap_or_default()),
        Value::Alerts(l) => Value::Alert(Rc::new(l[pos(l.len())?].clone())),
        Value::Pairs(l) => Value::Pair(Rc::new(l[pos(l.len())?].clone())),
        Value::Strings(l) => Value::Str(l[pos(l.len())?].clone()),
        Value::Str(s) => Value::Int(i64::from(s.as_bytes()[pos(s.len())?])),
        Value::Nil => return Err("index of untyped nil".into()),
        _ => return Err(format!("can't index item of type {}", v.type_name())),
    })
}

/// The `slice` builtin: `slice x 1 2` is `x[1:2]` (strings by bytes, like Go).
fn slice(item: &Value, idx: &[Value]) -> Result<Value, String> {
    let len = match item {
        Value::Str(s) => s.len(),
        Value::Strings(l) => l.len(),
        Value::Alerts(l) => l.len(),
        Value::Pairs(l) => l.len(),
        Value::Nil => return Err("slice of untyped nil".into()),
        _ => return Err(format!("can't slice item of type {}", item.type_name())),
    };
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    if idx.len() == 3 && matches!(item, Value::Str(_)) {
        return Err("cannot 3-index slice a string".into());
    }
    let mut bounds = Vec::new();
    for i in idx {
        match i {
            Value::Int(k) => bounds.push(
                usize::try_from(*k)
                    .ok()
                    .filter(|&k| k <= len)
                    .ok_or_else(|| format!("index out of range: {k}"))?,
            ),
            _ => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    i.type_name()
                ));
            }
        }
    }
    let lo = bounds.first().copied().unwrap_or(0);
    let hi = bounds.get(1).copied().unwrap_or(len);
    if lo > hi {
        return Err(format!("invalid slice index: {lo} > {hi}"));
    }
    Ok(match item {
        Value::Str(s) => Value::Str(String::from_utf8_lossy(&s.as_bytes()[lo..hi]).into_owned()),
        Value::Strings(l) => Value::Strings(Rc::new(l[lo..hi].to_vec())),
        Value::Alerts(l) => Value::Alerts(Rc::new(l[lo..hi].to_vec())),
        Value::Pairs(l) => Value::Pairs(Rc::new(l[lo..hi].to_vec())),
        _ => Value::Nil,
    })
}

/// Go `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c if c < ' ' || (!c.is_ascii() && c.is_control()) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut prev = ' ';
    let mut out = String::new();
    for c in s.chars() {
        let sep = if prev.is_ascii() {
            !(prev.is_ascii_alphanumeric() || prev == '_')
        } else {
            !prev.is_alphanumeric() && prev.is_whitespace()
        };
        if sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return (!port.contains([':', '[', ']'])).then_some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    (!host.contains([':', '[', ']'])).then_some((host, port))
}

/// Prometheus `stripDomain`: keeps the first DNS label (and any port); IPs are left alone.
fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let host = host.split('.').next().unwrap_or(host);
    match (port.is_empty(), host.contains(':')) {
        (true, _) => host.to_string(),
        (false, true) => format!("[{host}]:{port}"),
        (false, false) => format!("{host}:{port}"),
    }
}

/// The (percent-decoded) path of a URL, like Go's `url.URL.Path`.
fn url_path(u: &str) -> String {
    let rest = u
        .split_once("://")
        .map_or(u, |(_, r)| r.find('/').map_or("", |i| &r[i..]));
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = path
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
