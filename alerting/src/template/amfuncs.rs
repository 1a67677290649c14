//! Alertmanager's own template functions (`DefaultFuncs` in `template/template.go`) that
//! differ from or are missing in Prometheus's set: `title`, `trimSpace`, `join`,
//! `stringSlice`, `date`, `tz` and `since`.

use std::rc::Rc;

use super::gotime::load_location;
use super::methods::want_time;
use super::value::Value;

/// Calls Alertmanager function `name`; `None` when it is not one of this file's functions.
pub(crate) fn call(name: &str, args: &[Value], now_ms: i64) -> Option<Result<Value, String>> {
    let want = match name {
        "title" | "trimSpace" | "since" => 1,
        "join" | "date" | "tz" => 2,
        "stringSlice" => usize::MAX,
        _ => return None,
    };
    if want != usize::MAX && args.len() != want {
        let got = args.len();
        return Some(Err(format!(
            "wrong number of args for {name}: want {want} got {got}"
        )));
    }
    Some(run(name, args, now_ms))
}

fn want_str(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(format!(
            "wrong type for value; expected string; got {}",
            v.type_name()
        )),
    }
}

fn run(name: &str, args: &[Value], now_ms: i64) -> Result<Value, String> {
    let first = args.first().unwrap_or(&Value::Nil);
    let last = args.last().unwrap_or(&Value::Nil);
    Ok(match name {
        "title" => Value::Str(title(want_str(first)?)),
        "trimSpace" => Value::Str(want_str(first)?.trim().to_string()),
        "stringSlice" => {
            let items = args.iter().map(|a| want_str(a).map(str::to_string));
            Value::Strings(Rc::new(items.collect::<Result<_, _>>()?))
        }
        "join" => {
            let sep = want_str(first)?;
            match last {
                Value::Strings(items) => Value::Str(items.join(sep)),
                Value::Nil => Value::Str(String::new()),
                v => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        v.type_name()
                    ));
                }
            }
        }
        "date" => Value::Str(want_time(last)?.format(want_str(first)?)),
        "tz" => {
            let t = want_time(last)?;
            let zone =
                load_location(want_str(first)?).map_err(|e| format!("error calling tz: {e}"))?;
            Value::GoTime(zone.apply(t.ms))
        }
        _ => {
            let t = want_time(first)?;
            Value::Duration(now_ms.saturating_sub(t.ms).saturating_mul(1_000_000))
        }
    })
}

/// `cases.Title(language.AmericanEnglish)`: each word's first letter in upper case and
/// the rest in lower case (`'`, `.` and `:` between letters don't break a word).
fn title(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() || c == '_' {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
            continue;
        }
        let mid = matches!(c, '\'' | '’' | '.' | ':')
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        in_word &= mid;
        out.push(c);
    }
    out
}
