//! Go methods reachable from templates: Alertmanager's `KV`, `Pairs` and `Alerts` methods,
//! and the common `time.Time` / `time.Duration` ones. Methods take precedence over map keys.

use std::rc::Rc;

use super::gotime::GoTime;
use super::humanize::go_duration;
use super::notify::{pairs_string, remove, sorted_pairs, with_status};
use super::value::Value;

/// Calls method `name` of `recv`; `None` when the value's type has no such method.
pub(crate) fn call(recv: &Value, name: &str, args: Vec<Value>) -> Option<Result<Value, String>> {
    let want = arity(recv, name)?;
    if args.len() != want {
        let got = args.len();
        return Some(Err(format!(
            "wrong number of args for {name}: want {want} got {got}"
        )));
    }
    Some(invoke(recv, name, args))
}

/// The number of arguments of `recv`'s method `name`, if it has one.
fn arity(recv: &Value, name: &str) -> Option<usize> {
    let n = match (recv, name) {
        (Value::Alerts(_), "Firing" | "Resolved") => 0,
        (Value::Kv(_), "SortedPairs" | "Names" | "Values" | "String") => 0,
        (Value::Kv(_), "Remove") => 1,
        (Value::Pairs(_), "Names" | "Values" | "String") => 0,
        (Value::GoTime(_) | Value::Time(_), "Format" | "Sub" | "Add") => 1,
        (
            Value::GoTime(_) | Value::Time(_),
            "String" | "Unix" | "UnixMilli" | "UnixNano" | "UTC" | "Local" | "IsZero" | "Year"
            | "YearDay" | "Day" | "Hour" | "Minute" | "Second",
        ) => 0,
        (Value::Duration(_), "Round" | "Truncate") => 1,
        (
            Value::Duration(_),
            "String" | "Seconds" | "Minutes" | "Hours" | "Milliseconds" | "Nanoseconds",
        ) => 0,
        _ => return None,
    };
    Some(n)
}

fn strings(v: Vec<String>) -> Value {
    Value::Strings(Rc::new(v))
}

fn wrong(want: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {want}; got {}",
        got.type_name()
    )
}

/// A `time.Time` argument (a `*time.Time` is dereferenced, as Go does).
pub(crate) fn want_time(v: &Value) -> Result<GoTime, String> {
    match v {
        Value::GoTime(t) => Ok(t.clone()),
        Value::Time(ms) => Ok(GoTime::utc(*ms)),
        _ => Err(wrong("time.Time", v)),
    }
}

/// A `time.Duration` argument (integer constants convert, as Go does).
fn want_duration(v: &Value) -> Result<i64, String> {
    match v {
        Value::Duration(d) | Value::Int(d) => Ok(*d),
        _ => Err(wrong("time.Duration", v)),
    }
}

fn invoke(recv: &Value, name: &str, args: Vec<Value>) -> Result<Value, String> {
    let arg = args.first().unwrap_or(&Value::Nil);
    Ok(match recv {
        Value::Alerts(a) => {
            let status = if name == "Firing" {
                "firing"
            } else {
                "resolved"
            };
            Value::Alerts(Rc::new(with_status(a, status)))
        }
        Value::Kv(m) => match name {
            "Remove" => match arg {
                Value::Strings(keys) => Value::Kv(Rc::new(remove(m, keys))),
                _ => return Err(wrong("[]string", arg)),
            },
            _ => return invoke(&Value::Pairs(Rc::new(sorted_pairs(m))), name, args),
        },
        Value::Pairs(p) => match name {
            "SortedPairs" => recv.clone(),
            "Names" => strings(p.iter().map(|(k, _)| k.clone()).collect()),
            "Values" => strings(p.iter().map(|(_, v)| v.clone()).collect()),
            _ => Value::Str(pairs_string(p)),
        },
        Value::GoTime(_) | Value::Time(_) => time_method(&want_time(recv)?, name, arg)?,
        Value::Duration(d) => duration_method(*d, name, arg)?,
        _ => return Err(format!("can't call method {name} on {}", recv.type_name())),
    })
}

fn time_method(t: &GoTime, name: &str, arg: &Value) -> Result<Value, String> {
    let field = |i: usize| {
        let s = t.format("2006 002 02 15 04 05");
        let parts: Vec<i64> = s.split(' ').filter_map(|x| x.parse().ok()).collect();
        Value::Int(parts.get(i).copied().unwrap_or_default())
    };
    Ok(match name {
        "Format" => match arg {
            Value::Str(layout) => Value::Str(t.format(layout)),
            _ => return Err(wrong("string", arg)),
        },
        "String" => Value::Str(t.string()),
        "Unix" => Value::Int(t.ms.div_euclid(1000)),
        "UnixMilli" => Value::Int(t.ms),
        "UnixNano" => Value::Int(t.ms.saturating_mul(1_000_000)),
        "UTC" | "Local" => Value::GoTime(GoTime::utc(t.ms)),
        "IsZero" => Value::Bool(t.ms == super::notify::GO_ZERO_TIME_MS),
        "Year" => field(0),
        "YearDay" => field(1),
        "Day" => field(2),
        "Hour" => field(3),
        "Minute" => field(4),
        "Second" => field(5),
        "Sub" => Value::Duration((t.ms - want_time(arg)?.ms).saturating_mul(1_000_000)),
        _ => {
            let d = want_duration(arg)?;
            let mut t = t.clone();
            t.ms = t.ms.saturating_add(d / 1_000_000);
            Value::GoTime(t)
        }
    })
}

fn duration_method(d: i64, name: &str, arg: &Value) -> Result<Value, String> {
    let secs = |unit: f64| Value::Float(d as f64 / unit);
    Ok(match name {
        "String" => Value::Str(go_duration(d)),
        "Seconds" => secs(1e9),
        "Minutes" => secs(6e10),
        "Hours" => secs(3.6e12),
        "Milliseconds" => Value::Int(d / 1_000_000),
        "Nanoseconds" => Value::Int(d),
        _ => {
            let m = want_duration(arg)?;
            if m <= 0 {
                return Ok(Value::Duration(d));
            }
            let r = d % m;
            let down = d - r;
            Value::Duration(match name {
                "Truncate" => down,
                _ if r.unsigned_abs() * 2 < m.unsigned_abs() => down,
                _ if d < 0 => down.saturating_sub(m),
                _ => down.saturating_add(m),
            })
        }
    })
}
