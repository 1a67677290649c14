//! Go's float formatting as Prometheus prints values: `strconv.FormatFloat(v, 'f', -1, 64)`
//! ([`format_f`], label values of `count_values`) and `%v` / `'g'` shortest
//! ([`format_g`], error and annotation texts).

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits as a plain
/// decimal; `NaN`, `+Inf`, `-Inf`.
pub fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Go's `%v` of a float64: shortest digits, in exponent form (`1e+21`, `1e-05`) below 1e-4
/// and from 1e21.
pub fn format_g(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{v:e}");
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}e{sign}{digits:0>2}");
        }
        return s;
    }
    format_f(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(format_f(1.5), "1.5");
        assert_eq!(format_f(f64::INFINITY), "+Inf");
        assert_eq!(format_f(f64::NAN), "NaN");
        assert_eq!(format_g(1e21), "1e+21");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(-2.5), "-2.5");
    }
}
