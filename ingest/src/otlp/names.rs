//! Metric and label names from OTLP, as Prometheus's `otlptranslator` builds them for the
//! `otlp.translation_strategy` in use: `UnderscoreEscapingWithSuffixes` (the default:
//! names made of letters, digits and `_`, with the unit and `_total` / `_ratio` suffixes),
//! `NoUTF8EscapingWithSuffixes` (the name kept, suffixes added) and `NoTranslation` (names
//! and attribute keys kept as they are).

use strata_config::OtlpConfig;

/// OTLP (UCUM) main units and the Prometheus words for them.
const UNITS: [(&str, &str); 26] = [
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

/// Per-units (`By/s` → `bytes_per_second`).
const PER_UNITS: [(&str, &str); 7] = [
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

/// Builds names for one translation strategy.
pub(super) struct Namer {
    escape: bool,
    suffixes: bool,
}

/// Replaces every character that is not a letter, digit or `_` (ASCII) with `_`, collapses
/// runs of `_` and trims them at the start.
fn clean_unit(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for c in u.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_start_matches('_').to_string()
}

impl Namer {
    pub(super) fn new(cfg: &OtlpConfig) -> Namer {
        match cfg.translation_strategy.as_str() {
            "NoUTF8EscapingWithSuffixes" => Namer {
                escape: false,
                suffixes: true,
            },
            "NoTranslation" => Namer {
                escape: false,
                suffixes: false,
            },
            _ => Namer {
                escape: true,
                suffixes: true,
            },
        }
    }

    /// The unit as Prometheus words (`s` → `seconds`, `By/s` → `bytes_per_second`; units
    /// in braces are annotations and give nothing).
    pub(super) fn unit(&self, unit: &str) -> String {
        let mut parts = unit.splitn(2, '/');
        let main = parts.next().unwrap_or_default().trim();
        let per = parts.next().map(str::trim).unwrap_or_default();
        let word = |u: &str, table: &[(&str, &str)]| -> String {
            if u.is_empty() || u.contains(['{', '}']) {
                return String::new();
            }
            let w = table.iter().find(|(k, _)| *k == u).map_or(u, |(_, v)| v);
            clean_unit(w)
        };
        let main = word(main, &UNITS);
        let per = word(per, &PER_UNITS);
        match (main.is_empty(), per.is_empty()) {
            (_, true) => main,
            (true, false) => format!("per_{per}"),
            (false, false) => format!("{main}_per_{per}"),
        }
    }

    /// The series name of metric `name` with `unit`: a monotonic sum (`counter`) gets
    /// `_total`, a `gauge` of unit `1` gets `_ratio` (Prometheus `normalizeName`).
    pub(super) fn name(&self, name: &str, unit: &str, counter: bool, gauge: bool) -> String {
        if !self.suffixes {
            return name.to_string();
        }
        let ratio = unit == "1" && gauge;
        if !self.escape {
            let mut out = name.to_string();
            let u = self.unit(unit);
            if !u.is_empty() && !out.ends_with(&format!("_{u}")) {
                out = format!("{out}_{u}");
            }
            if ratio && !out.ends_with("_ratio") {
                out.push_str("_ratio");
            }
            if counter && !out.ends_with("_total") {
                out.push_str("_total");
            }
            return out;
        }
        // Tokens: the runs of ASCII letters, digits and `:` of the name (`_` separates).
        let mut tokens: Vec<String> = name
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let mut parts = unit.splitn(2, '/');
        let main = parts.next().unwrap_or_default().trim();
        let per = parts.next().map(str::trim).unwrap_or_default();
        if !main.is_empty() && !main.contains(['{', '}']) {
            let w = UNITS
                .iter()
                .find(|(k, _)| *k == main)
                .map_or(main, |(_, v)| v);
            let w = clean_unit(w);
            if !w.is_empty() && !tokens.contains(&w) {
                tokens.push(w);
            }
        }
        if !per.is_empty() && !per.contains(['{', '}']) {
            let w = PER_UNITS
                .iter()
                .find(|(k, _)| *k == per)
                .map_or(per, |(_, v)| v);
            let w = clean_unit(w);
            if !w.is_empty() {
                tokens.push(format!("per_{w}"));
            }
        }
        if counter {
            tokens.retain(|t| t != "total");
            tokens.push("total".into());
        }
        if ratio {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".into());
        }
        let mut out = tokens.join("_");
        if out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert(0, '_');
        }
        out
    }
}

/// An attribute key as a label name: characters other than ASCII letters, digits and `_`
/// become `_`; a leading digit gets `key_` in front, and (with
/// `label_name_underscore_sanitization`, the default) a single leading `_` gets `key`;
/// without `label_name_preserve_multiple_underscores` runs of `_` collapse. Under
/// `NoTranslation` (and `NoUTF8EscapingWithSuffixes`) keys are kept.
pub(super) fn sanitize_label(key: &str, cfg: &OtlpConfig) -> String {
    if key.is_empty()
        || matches!(
            cfg.translation_strategy.as_str(),
            "NoTranslation" | "NoUTF8EscapingWithSuffixes"
        )
    {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        };
        if !cfg.label_name_preserve_multiple_underscores && c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if cfg.label_name_underscore_sanitization
        && out.starts_with('_')
        && !out.starts_with("__")
    {
        out.insert_str(0, "key");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus() {
        let n = Namer::new(&OtlpConfig::default());
        let cases = [
            (
                "http.server.duration",
                "s",
                false,
                false,
                "http_server_duration_seconds",
            ),
            (
                "http.server.requests",
                "{request}",
                true,
                false,
                "http_server_requests_total",
            ),
            (
                "system.memory.usage",
                "By",
                false,
                true,
                "system_memory_usage_bytes",
            ),
            ("io", "By/s", true, false, "io_bytes_per_second_total"),
            ("cpu.utilization", "1", false, true, "cpu_utilization_ratio"),
            ("queue.fill", "1", false, false, "queue_fill"),
            ("requests_total", "1", true, false, "requests_total"),
            ("latency_seconds", "s", false, true, "latency_seconds"),
            ("2xx", "", false, true, "_2xx"),
            ("a__b.\u{e9}", "", false, true, "a_b"),
            ("rate", "1/s", false, true, "rate_per_second"),
        ];
        for (name, unit, counter, gauge, want) in cases {
            assert_eq!(n.name(name, unit, counter, gauge), want, "{name} {unit}");
        }
        let cfg = OtlpConfig::default();
        assert_eq!(sanitize_label("http.method", &cfg), "http_method");
        assert_eq!(sanitize_label("2x", &cfg), "key_2x");
        assert_eq!(sanitize_label("_x", &cfg), "key_x");
        assert_eq!(sanitize_label("__x", &cfg), "__x");
    }
}
