//! Go formatting that alert payloads and the rules API need: `strconv.FormatFloat(v, 'e',
//! -1, 64)` for alert values and `url.QueryEscape` for `generatorURL`s.

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest mantissa that round-trips and an
/// exponent of at least two digits (`42` → `4.2e+01`).
pub fn format_value_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:e}");
    let Some((mant, exp)) = s.split_once('e') else {
        return s;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if digits.len() < 2 {
        format!("{mant}e{sign}0{digits}")
    } else {
        format!("{mant}e{sign}{digits}")
    }
}

/// Go's `url.QueryEscape`: everything but `A-Za-z0-9-_.~` percent-encoded, space as `+`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus's `strutil.TableLinkForExpression`: the expression browser's table view.
pub fn table_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

/// Prometheus's `strutil.GraphLinkForExpression`: the expression browser's graph view.
pub fn graph_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=0", query_escape(expr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_format_matches_go() {
        assert_eq!(format_value_e(42.0), "4.2e+01");
        assert_eq!(format_value_e(1.0), "1e+00");
        assert_eq!(format_value_e(0.0), "0e+00");
        assert_eq!(format_value_e(-0.000123), "-1.23e-04");
        assert_eq!(format_value_e(1e300), "1e+300");
        assert_eq!(format_value_e(f64::NAN), "NaN");
        assert_eq!(format_value_e(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(
            query_escape("probe_rules_input > 10"),
            "probe_rules_input+%3E+10"
        );
        assert_eq!(query_escape("a{b=\"c\"}*2"), "a%7Bb%3D%22c%22%7D%2A2");
        assert_eq!(table_link("up == 0"), "/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    }
}
