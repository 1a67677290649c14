//! The series notation shared by Prometheus's test languages (`promqltest` scripts and
//! `promtool test rules` files): `metric{a="b"}` label sets and value sequences with
//! `a+bxn` / `a-bxn` / `axn` expansions, `_` (missing), `_xn` and `stale`, and native
//! histograms as `promql/parser` reads them in series descriptions:
//! `{{schema:0 count:3 sum:4 z_bucket:1 z_bucket_w:0.001 offset:1 buckets:[1 2]
//! n_offset:0 n_buckets:[1] custom_values:[…] counter_reset_hint:gauge}}`, repeated as
//! `{{…}}xn`, or as a sequence `{{a}}+{{b}}xn` / `{{a}}-{{b}}xn` (histogram addition or
//! subtraction, `n + 1` values).

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_grammar::{Expr, MatchOp};
use strata_storage::{Labels, METRIC_NAME, SeriesSamples};
use strata_vocab::float::format_g;
use strata_vocab::histogram::CUSTOM_BUCKETS_SCHEMA;
use strata_vocab::{CounterResetHint, FloatHistogram};

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

/// One value of a series description.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A float sample (`stale` is the staleness marker NaN).
    Float(f64),
    /// A native histogram sample.
    Histogram {
        /// The histogram, its buckets as listed (listed zero counts kept).
        h: FloatHistogram,
        /// Whether the description set `counter_reset_hint:` explicitly (Prometheus's
        /// `CounterResetHintSet`: an expectation without it ignores the hint).
        hint_set: bool,
    },
}

impl Value {
    /// The float, or `None` for a histogram.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Histogram { .. } => None,
        }
    }

    /// The histogram, or `None` for a float.
    pub fn as_histogram(&self) -> Option<&FloatHistogram> {
        match self {
            Value::Float(_) => None,
            Value::Histogram { h, .. } => Some(h),
        }
    }
}

/// Splits a value sequence at whitespace, keeping each `{{…}}` group (which contains
/// spaces) and what is glued to it (`x3`, `+{{…}}x3`) in one token.
pub fn tokenize(values: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let bytes = values.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        while i < bytes.len() {
            if values[i..].starts_with("{{") {
                depth += 1;
                i += 2;
            } else if depth > 0 && values[i..].starts_with("}}") {
                depth -= 1;
                i += 2;
            } else if depth == 0 && bytes[i].is_ascii_whitespace() {
                break;
            } else {
                i += 1;
            }
        }
        if depth > 0 {
            return Err(format!(
                "unclosed histogram description {:?}",
                &values[start..]
            ));
        }
        out.push(&values[start..i]);
    }
    Ok(out)
}

/// A number inside a histogram description (`stale` is not one).
fn histogram_number(s: &str, key: &str) -> Result<f64, String> {
    if s == "stale" {
        return Err(format!("error parsing {key} number: {s:?}"));
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
        && let Ok(v) = i64::from_str_radix(hex, 16)
    {
        return Ok(v as f64);
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        _ => s
            .parse()
            .map_err(|_| format!("error parsing {key} number: {s:?}")),
    }
}

/// An integer inside a histogram description (`schema`, `offset`, `n_offset`).
fn histogram_int(s: &str, key: &str) -> Result<i32, String> {
    s.parse()
        .map_err(|_| format!("error parsing {key} number: {s:?}"))
}

/// Buckets listed from index `offset` on (zero counts kept, as Go's spans keep them).
fn place(offset: i32, counts: &[f64]) -> Vec<(i32, f64)> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (offset + i as i32, c))
        .collect()
}

/// Parses one `{{…}}` histogram description (`buildHistogramFromMap`): the histogram and
/// whether `counter_reset_hint:` was given. Keys are case-insensitive, each at most once.
pub fn parse_histogram(text: &str) -> Result<(FloatHistogram, bool), String> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .ok_or_else(|| format!("not a histogram description: {text:?}"))?;
    let mut h = FloatHistogram::default();
    let mut hint_set = false;
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let (mut pos, mut neg): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut seen: Vec<String> = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
            .unwrap_or(rest.len());
        let key = rest[..key_len].to_ascii_lowercase();
        let after = rest[key_len..]
            .strip_prefix(':')
            .ok_or_else(|| format!("bad histogram descriptor in {text:?}: expected key:value"))?;
        if seen.contains(&key) {
            return Err(format!("duplicate key \"{key}\" in histogram"));
        }
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let end = list
                .find(']')
                .ok_or_else(|| format!("unclosed bucket list in {text:?}"))?;
            (&list[..end], &list[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let list = |k: &str| -> Result<Vec<f64>, String> {
            value
                .split_whitespace()
                .map(|t| histogram_number(t, k))
                .collect()
        };
        let is_list = matches!(key.as_str(), "buckets" | "n_buckets" | "custom_values");
        if is_list != after.starts_with('[') {
            return Err(format!("bad value for {key} in {text:?}"));
        }
        match key.as_str() {
            "schema" => h.schema = histogram_int(value, "schema")?,
            "sum" => h.sum = histogram_number(value, "sum")?,
            "count" => h.count = histogram_number(value, "count")?,
            "z_bucket" => h.zero_count = histogram_number(value, "z_bucket")?,
            "z_bucket_w" => h.zero_threshold = histogram_number(value, "z_bucket_w")?,
            "offset" => offset = histogram_int(value, "offset")?,
            "n_offset" => n_offset = histogram_int(value, "n_offset")?,
            "buckets" => pos = list("buckets")?,
            "n_buckets" => neg = list("n_buckets")?,
            "custom_values" => h.custom_values = Arc::from(list("custom_values")?),
            "counter_reset_hint" => {
                hint_set = true;
                h.hint = match value.to_ascii_lowercase().as_str() {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::Reset,
                    "not_reset" => CounterResetHint::NotReset,
                    "gauge" => CounterResetHint::Gauge,
                    other => {
                        return Err(format!(
                            "error parsing counter_reset_hint: unknown value {other:?}"
                        ));
                    }
                };
            }
            _ => return Err(format!("bad histogram descriptor found: {key:?}")),
        }
        seen.push(key);
        if !next.is_empty() && !next.starts_with(char::is_whitespace) {
            return Err(format!("bad histogram description {text:?}"));
        }
        rest = next.trim_start();
    }
    h.positive = place(offset, &pos);
    h.negative = place(n_offset, &neg);
    Ok((h, hint_set))
}

/// The first `{{…}}` group of `tok` and what follows it.
fn split_histogram(tok: &str) -> Result<(&str, &str), String> {
    if !tok.starts_with("{{") {
        return Err(format!("expected a histogram description in {tok:?}"));
    }
    let end = tok
        .find("}}")
        .ok_or_else(|| format!("unclosed histogram description {tok:?}"))?;
    Ok(tok.split_at(end + 2))
}

/// A repetition count `n` of `xn`.
fn times(s: &str, tok: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("bad repetition in {tok:?}"))
}

/// Expands one token that starts with `{{`: `{{a}}`, `{{a}}xn`, `{{a}}+{{b}}xn`,
/// `{{a}}-{{b}}xn` (`histogramsSeries`: the running histogram must not have a higher
/// schema than the increment).
fn expand_histogram(tok: &str) -> Result<Vec<Option<Value>>, String> {
    let (first, rest) = split_histogram(tok)?;
    let (base, base_set) = parse_histogram(first)?;
    if rest.is_empty() {
        return Ok(vec![Some(Value::Histogram {
            h: base,
            hint_set: base_set,
        })]);
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = times(n, tok)?;
        let v = Value::Histogram {
            h: base,
            hint_set: base_set,
        };
        return Ok(vec![Some(v); n + 1]);
    }
    let sign = match rest.chars().next() {
        Some('+') => 1.0,
        Some('-') => -1.0,
        _ => return Err(format!("bad histogram sequence {tok:?}")),
    };
    let (second, tail) = split_histogram(&rest[1..])?;
    let (inc, hint_set) = parse_histogram(second)?;
    let n = tail
        .strip_prefix('x')
        .ok_or_else(|| format!("histogram sequence without xn: {tok:?}"))?;
    let n = times(n, tok)?;
    let mut out = Vec::with_capacity(n + 1);
    let mut cur = base;
    out.push(Some(Value::Histogram {
        h: cur.clone(),
        hint_set,
    }));
    for _ in 0..n {
        if cur.schema > inc.schema {
            return Err(format!(
                "error combining histograms: cannot merge from schema {} to {}",
                inc.schema, cur.schema
            ));
        }
        let combined = if sign > 0.0 {
            cur.add(&inc)
        } else {
            cur.sub(&inc)
        };
        combined.map_err(|e| format!("error combining histograms: {e}"))?;
        out.push(Some(Value::Histogram {
            h: cur.clone(),
            hint_set,
        }));
    }
    Ok(out)
}

/// Expands a value sequence of floats and histograms; `None` is a missing point.
pub fn expand_values(tokens: &[&str]) -> Result<Vec<Option<Value>>, String> {
    let mut out = Vec::new();
    for tok in tokens {
        if tok.starts_with("{{") {
            out.extend(expand_histogram(tok)?);
            continue;
        }
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
                out.push(Some(Value::Float(start + delta * k as f64)));
            }
            continue;
        }
        out.push(Some(Value::Float(parse_number(tok)?)));
    }
    Ok(out)
}

/// Expands a value sequence of floats only; `None` is a missing point.
pub fn expand(tokens: &[&str]) -> Result<Vec<Option<f64>>, String> {
    expand_values(tokens)?
        .into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(Value::Float(f)) => Ok(Some(f)),
            Some(Value::Histogram { .. }) => {
                Err("a histogram where only floats are allowed".to_string())
            }
        })
        .collect()
}

/// Where the series selector of a line ends: after the label set's closing `}` (quotes
/// respected), else at the first whitespace.
fn selector_end(line: &str) -> Result<usize, String> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'{' {
        i += 1;
    }
    if i >= bytes.len() || bytes[i] != b'{' || line[i..].starts_with("{{") {
        return Ok(i);
    }
    let mut quote: Option<u8> = None;
    i += 1;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q != b'`' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'}' => return Ok(i + 1),
                _ => {}
            },
        }
        i += 1;
    }
    Err(format!("unclosed label set in {line:?}"))
}

/// `metric{a="b"} rest…` → (labels, rest).
pub fn split_series(line: &str) -> Result<(Labels, &str), String> {
    let line = line.trim_start();
    let end = selector_end(line)?;
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

/// Populated buckets only (Prometheus's `Compact(0)`).
fn populated(b: &[(i32, f64)]) -> impl Iterator<Item = &(i32, f64)> {
    b.iter().filter(|b| b.1 != 0.0)
}

/// Whether two floats are equal within `eps` relative difference as Prometheus's
/// `almost.Equal` sees it (NaN equals NaN).
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Compares an expected histogram with a result as `promqltest`'s
/// `compareNativeHistogram` does: same schema (and custom bounds for NHCB) and zero
/// threshold; count, sum, zero count and the populated buckets (by index) within `eps`
/// relative; empty buckets ignored; the counter-reset hint only when `hint_set`.
pub fn histograms_match(
    exp: &FloatHistogram,
    got: &FloatHistogram,
    hint_set: bool,
    eps: f64,
) -> bool {
    let close = |a: f64, b: f64| almost_equal(a, b, eps);
    let buckets_match = |a: &[(i32, f64)], b: &[(i32, f64)]| {
        let (a, b): (Vec<_>, Vec<_>) = (populated(a).collect(), populated(b).collect());
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
    };
    exp.schema == got.schema
        && close(exp.count, got.count)
        && close(exp.sum, got.sum)
        && (!exp.uses_custom_buckets()
            || exp.custom_values.len() == got.custom_values.len()
                && exp
                    .custom_values
                    .iter()
                    .zip(got.custom_values.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits()))
        && exp.zero_threshold == got.zero_threshold
        && close(exp.zero_count, got.zero_count)
        && buckets_match(&exp.negative, &got.negative)
        && buckets_match(&exp.positive, &got.positive)
        && (!hint_set || exp.hint == got.hint)
}

/// The histogram in the notation, as Go's `FloatHistogram.TestExpression` prints it: fields
/// that are zero left out, the populated buckets as one list from the first to the last
/// (gaps as zeros), counts in Go's shortest `%g` form.
pub fn test_expression(h: &FloatHistogram) -> String {
    let mut res: Vec<String> = Vec::new();
    if h.schema != 0 {
        res.push(format!("schema:{}", h.schema));
    }
    if h.count != 0.0 {
        res.push(format!("count:{}", format_g(h.count)));
    }
    if h.sum != 0.0 {
        res.push(format!("sum:{}", format_g(h.sum)));
    }
    if h.zero_count != 0.0 {
        res.push(format!("z_bucket:{}", format_g(h.zero_count)));
    }
    if h.zero_threshold != 0.0 {
        res.push(format!("z_bucket_w:{}", format_g(h.zero_threshold)));
    }
    if h.uses_custom_buckets() {
        let v: Vec<String> = h.custom_values.iter().map(|v| format_g(*v)).collect();
        res.push(format!("custom_values:[{}]", v.join(" ")));
    }
    match h.hint {
        CounterResetHint::Unknown => {}
        other => res.push(format!("counter_reset_hint:{}", other.name())),
    }
    let mut buckets = |key: &str, offset_key: &str, b: &[(i32, f64)]| {
        let pop: Vec<&(i32, f64)> = populated(b).collect();
        let (Some(&&(first, _)), Some(&&(last, _))) = (pop.first(), pop.last()) else {
            return;
        };
        if first != 0 {
            res.push(format!("{offset_key}:{first}"));
        }
        let mut counts = vec![0.0; (last - first) as usize + 1];
        for (i, c) in pop {
            counts[(i - first) as usize] += c;
        }
        let v: Vec<String> = counts.into_iter().map(format_g).collect();
        res.push(format!("{key}:[{}]", v.join(" ")));
    };
    buckets("buckets", "offset", &h.positive);
    buckets("n_buckets", "n_offset", &h.negative);
    format!("{{{{{}}}}}", res.join(" "))
}

/// A series of loaded values: floats into `samples`, histograms into `histograms`, the
/// k-th value at `k · step` ms.
pub fn series_samples(labels: Labels, values: Vec<Option<Value>>, step: i64) -> SeriesSamples {
    let mut samples = Vec::new();
    let mut histograms = Vec::new();
    for (k, v) in values.into_iter().enumerate() {
        let t = k as i64 * step;
        match v {
            None => {}
            Some(Value::Float(f)) => samples.push((t, f)),
            Some(Value::Histogram { h, .. }) => histograms.push((t, Arc::new(h))),
        }
    }
    SeriesSamples {
        labels,
        samples,
        histograms,
    }
}

/// A classic histogram at one timestamp while it is collected (`convertnhcb.TempHistogram`).
#[derive(Default, Clone)]
struct TempHistogram {
    /// `(le, cumulative count)`, ascending `le`.
    buckets: Vec<(f64, f64)>,
    count: f64,
    has_count: bool,
    sum: f64,
    err: Option<String>,
}

impl TempHistogram {
    fn set_bucket_count(&mut self, le: f64, count: f64) {
        if self.err.is_some() {
            return;
        }
        if count < 0.0 {
            self.err = Some(format!(
                "bucket count must be non-negative: le={le}, count={count}"
            ));
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return; // A duplicate sample.
        }
        if i > 0 && count < self.buckets[i - 1].1 {
            self.err = Some(format!(
                "count is not cumulative: {count} < {}",
                self.buckets[i - 1].1
            ));
            return;
        }
        if let Some(next) = self.buckets.get(i)
            && count > next.1
        {
            self.err = Some(format!("count is not cumulative: {count} > {}", next.1));
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    fn set_count(&mut self, count: f64) {
        if self.err.is_some() {
            return;
        }
        if count < 0.0 {
            self.err = Some(format!("count must be non-negative: count={count}"));
            return;
        }
        self.count = count;
        self.has_count = true;
    }

    /// The NHCB (`TempHistogram.Convert`): bucket counts de-cumulated, bounds the finite
    /// `le`s, a +Inf bucket with the count when the classic histogram has none, count from
    /// `_count` (else the highest bucket); empty buckets dropped.
    fn convert(mut self) -> Result<FloatHistogram, String> {
        if let Some(e) = self.err {
            return Err(e);
        }
        if !self.has_count
            && let Some(last) = self.buckets.last()
        {
            self.count = last.1;
        }
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            self.buckets.push((f64::INFINITY, self.count));
        }
        let mut positive = Vec::new();
        let mut prev = 0.0;
        for (i, &(_, c)) in self.buckets.iter().enumerate() {
            if c - prev != 0.0 {
                positive.push((i as i32, c - prev));
            }
            prev = c;
        }
        let last = self.buckets[self.buckets.len() - 1];
        if self.count != last.1 {
            return Err(format!(
                "count mismatch: count={} != le={} count={}",
                self.count, last.0, last.1
            ));
        }
        let bounds: Vec<f64> = self.buckets[..self.buckets.len() - 1]
            .iter()
            .map(|b| b.0)
            .collect();
        Ok(FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: self.count,
            sum: self.sum,
            positive,
            custom_values: Arc::from(bounds),
            ..FloatHistogram::default()
        })
    }
}

/// The NHCB series `promqltest`'s `load_with_nhcb` adds (`appendCustomHistogram`): every
/// `x_bucket` (with a parseable, non-NaN `le`), `x_sum` and `x_count` series contributes its
/// float samples to the histogram of `x` with the same labels (without `le`) at the same
/// time; inconsistent classic histograms (not cumulative, count mismatch) are an error.
pub fn nhcb_series(batch: &[SeriesSamples]) -> Result<Vec<SeriesSamples>, String> {
    let mut by_series: BTreeMap<Labels, BTreeMap<i64, TempHistogram>> = BTreeMap::new();
    for s in batch {
        let name = s.labels.get(METRIC_NAME).unwrap_or_default();
        enum Part {
            Bucket(f64),
            Sum,
            Count,
        }
        let (part, base) = if let Some(b) = name.strip_suffix("_bucket") {
            let Some(le) = s.labels.get("le") else {
                return Err(format!("expected bucket label in metric {}", s.labels));
            };
            match parse_number(le) {
                Ok(le) if !le.is_nan() => (Part::Bucket(le), b),
                _ => continue,
            }
        } else if let Some(b) = name.strip_suffix("_sum") {
            (Part::Sum, b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (Part::Count, b)
        } else {
            continue;
        };
        let labels = Labels::from_pairs(s.labels.iter().filter(|l| &*l.name != "le").map(|l| {
            if &*l.name == METRIC_NAME {
                (l.name.to_string(), base.to_string())
            } else {
                (l.name.to_string(), l.value.to_string())
            }
        }));
        let at = by_series.entry(labels).or_default();
        for &(t, v) in &s.samples {
            let h = at.entry(t).or_default();
            match part {
                Part::Bucket(le) => h.set_bucket_count(le, v),
                Part::Sum => {
                    if h.err.is_none() {
                        h.sum = v;
                    }
                }
                Part::Count => h.set_count(v),
            }
        }
    }
    let mut out = Vec::new();
    for (labels, at) in by_series {
        let mut histograms = Vec::new();
        for (t, h) in at {
            histograms.push((t, Arc::new(h.convert()?)));
        }
        out.push(SeriesSamples {
            labels,
            samples: Vec::new(),
            histograms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(s: &str) -> FloatHistogram {
        parse_histogram(s).expect("valid histogram").0
    }

    fn values(line: &str) -> Vec<Option<Value>> {
        expand_values(&tokenize(line).expect("tokens")).expect("values")
    }

    #[test]
    fn floats_still_expand() {
        assert_eq!(
            expand(&["1+2x2", "_", "5x1", "-1-1x1", "_x2", "1e3"]).expect("valid"),
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                None,
                Some(5.0),
                Some(5.0),
                Some(-1.0),
                Some(-2.0),
                None,
                None,
                Some(1000.0),
            ]
        );
        assert!(expand(&["{{count:1}}"]).is_err());
    }

    #[test]
    fn tokenizer_keeps_histograms_together() {
        let toks =
            tokenize(" 1  {{schema:0 buckets:[1 2]}}x2 _ {{count:1}}+{{count:2 sum:1}}x3\tstale ")
                .expect("tokens");
        assert_eq!(
            toks,
            vec![
                "1",
                "{{schema:0 buckets:[1 2]}}x2",
                "_",
                "{{count:1}}+{{count:2 sum:1}}x3",
                "stale"
            ]
        );
        assert!(tokenize("{{schema:0 ").is_err());
        assert_eq!(tokenize("").expect("empty"), Vec::<&str>::new());
    }

    #[test]
    fn histogram_fields() {
        let (h, set) = parse_histogram(
            "{{schema:1 count:9 sum:-4.5 z_bucket:1 z_bucket_w:0.001 offset:-1 buckets:[1 0 2] \
             n_offset:2 n_buckets:[3 2] counter_reset_hint:gauge}}",
        )
        .expect("valid");
        assert!(set);
        assert_eq!(h.schema, 1);
        assert_eq!(h.count, 9.0);
        assert_eq!(h.sum, -4.5);
        assert_eq!(h.zero_count, 1.0);
        assert_eq!(h.zero_threshold, 0.001);
        assert_eq!(h.positive, vec![(-1, 1.0), (0, 0.0), (1, 2.0)]);
        assert_eq!(h.negative, vec![(2, 3.0), (3, 2.0)]);
        assert_eq!(h.hint, CounterResetHint::Gauge);

        let (h, set) =
            parse_histogram("{{schema:-53 sum:5 count:4 custom_values:[0.1 1] buckets:[1 2 1]}}")
                .expect("nhcb");
        assert!(!set);
        assert!(h.uses_custom_buckets());
        assert_eq!(&*h.custom_values, &[0.1, 1.0]);
        assert_eq!(h.positive, vec![(0, 1.0), (1, 2.0), (2, 1.0)]);

        assert_eq!(hist("{{}}"), FloatHistogram::default());
        assert_eq!(hist("{{ }}"), FloatHistogram::default());
        assert_eq!(hist("{{count:Inf sum:NaN}}").count, f64::INFINITY);
        assert_eq!(hist("{{SUM:2}}").sum, 2.0);
        assert_eq!(
            hist("{{buckets:[1 2 ]}}").positive,
            vec![(0, 1.0), (1, 2.0)]
        );
        for hint in ["unknown", "reset", "not_reset", "gauge"] {
            let h = hist(&format!("{{{{counter_reset_hint:{hint}}}}}"));
            assert_eq!(h.hint.name(), hint);
        }
    }

    #[test]
    fn histogram_errors() {
        for bad in [
            "{{count:1 count:2}}",
            "{{foo:1}}",
            "{{count:x}}",
            "{{schema:1.5}}",
            "{{buckets:1}}",
            "{{count:[1]}}",
            "{{buckets:[1 2}}",
            "{{counter_reset_hint:maybe}}",
            "{{count:stale}}",
            "{{count}}",
            "{count:1}",
        ] {
            assert!(parse_histogram(bad).is_err(), "{bad} parsed");
        }
        for bad in [
            "{{count:1}}y3",
            "{{count:1}}+{{count:1}}",
            "{{count:1}}*{{count:1}}x2",
            "{{count:1}}x",
            "{{schema:1 count:1}}+{{schema:0 count:1}}x2",
            "{{schema:-53 count:1}}+{{schema:0 count:1}}x1",
        ] {
            assert!(expand_values(&[bad]).is_err(), "{bad} expanded");
        }
    }

    #[test]
    fn histogram_sequences() {
        let v = values("{{count:1 buckets:[1]}}x2");
        assert_eq!(v.len(), 3);
        assert!(
            v.iter().all(|x| x.as_ref().and_then(Value::as_histogram)
                == Some(&hist("{{count:1 buckets:[1]}}")))
        );

        let v = values(
            "{{schema:0 count:1 sum:2 buckets:[1]}}+{{schema:0 count:2 sum:3 offset:1 buckets:[2]}}x2",
        );
        let hs: Vec<FloatHistogram> = v
            .iter()
            .map(|x| {
                x.as_ref()
                    .and_then(Value::as_histogram)
                    .cloned()
                    .expect("histogram")
            })
            .collect();
        assert_eq!(hs.len(), 3);
        assert!(hs[0].equals(&hist("{{count:1 sum:2 buckets:[1]}}")));
        assert!(hs[1].equals(&hist("{{count:3 sum:5 buckets:[1 2]}}")));
        assert!(hs[2].equals(&hist("{{count:5 sum:8 buckets:[1 4]}}")));

        let v = values("{{count:10 sum:10 buckets:[10]}}-{{count:3 sum:1 buckets:[3]}}x2");
        let last = v[2]
            .as_ref()
            .and_then(Value::as_histogram)
            .expect("histogram");
        assert!(last.equals(&hist("{{count:4 sum:8 buckets:[4]}}")));

        // The hint-set flag of a sequence is the increment's, for every value.
        let v = values("{{count:1 counter_reset_hint:gauge}}+{{count:1}}x1");
        assert!(v.iter().all(|x| matches!(
            x,
            Some(Value::Histogram {
                hint_set: false,
                ..
            })
        )));
        let v = values("{{count:1}}+{{count:1 counter_reset_hint:gauge}}x1");
        assert!(
            v.iter()
                .all(|x| matches!(x, Some(Value::Histogram { hint_set: true, .. })))
        );
        // Adding a gauge makes a gauge.
        assert_eq!(
            v[1].as_ref().and_then(Value::as_histogram).map(|h| h.hint),
            Some(CounterResetHint::Gauge)
        );
    }

    #[test]
    fn mixed_lines() {
        let v = values("1 _ {{count:2}} stale 3+1x1 _x2 {{sum:1}}x1");
        assert_eq!(v.len(), 10);
        assert_eq!(v[0], Some(Value::Float(1.0)));
        assert_eq!(v[1], None);
        assert_eq!(
            v[2].as_ref().and_then(Value::as_histogram).map(|h| h.count),
            Some(2.0)
        );
        assert!(
            v[3].as_ref()
                .and_then(Value::as_float)
                .is_some_and(|f| f.to_bits() == STALE_NAN.to_bits())
        );
        assert_eq!(v[4], Some(Value::Float(3.0)));
        assert_eq!(v[5], Some(Value::Float(4.0)));
        assert_eq!((v[6].clone(), v[7].clone()), (None, None));
        assert_eq!(
            v[9].as_ref().and_then(Value::as_histogram).map(|h| h.sum),
            Some(1.0)
        );
    }

    #[test]
    fn series_lines() {
        let (l, rest) = split_series(r#"foo{a="x}y", b='q'} {{count:1}} 2"#).expect("series");
        assert_eq!(
            l,
            Labels::from_pairs(vec![
                ("__name__".to_string(), "foo".to_string()),
                ("a".to_string(), "x}y".to_string()),
                ("b".to_string(), "q".to_string()),
            ])
        );
        assert_eq!(rest, "{{count:1}} 2");
        let (l, rest) = split_series("foo {{schema:0 sum:1}}x2").expect("bare name");
        assert_eq!(
            l,
            Labels::from_pairs(vec![("__name__".to_string(), "foo".to_string())])
        );
        assert_eq!(rest, "{{schema:0 sum:1}}x2");
        let (l, rest) = split_series("{} {{count:1}}").expect("empty set");
        assert_eq!(l, Labels::default());
        assert_eq!(rest, "{{count:1}}");
        let (_, rest) = split_series("foo").expect("name only");
        assert_eq!(rest, "");
        assert!(split_series(r#"foo{a="b" 1"#).is_err());
    }

    #[test]
    fn comparison_and_printing() {
        let exp = hist("{{schema:0 count:3 sum:4 buckets:[1 0 2]}}");
        let got = hist("{{schema:0 count:3.0000000001 sum:4 offset:-1 buckets:[0 1 0 2 0]}}");
        assert!(histograms_match(&exp, &got, false, 1e-6));
        assert!(!histograms_match(
            &exp,
            &hist("{{schema:1 count:3 sum:4 buckets:[1 0 2]}}"),
            false,
            1e-6
        ));
        assert!(!histograms_match(
            &exp,
            &hist("{{count:3 sum:4 buckets:[1 2]}}"),
            false,
            1e-6
        ));
        assert!(!histograms_match(
            &exp,
            &hist("{{count:3 sum:4 z_bucket_w:1 buckets:[1 0 2]}}"),
            false,
            1e-6
        ));
        let gauge = hist("{{count:3 sum:4 buckets:[1 0 2] counter_reset_hint:gauge}}");
        assert!(histograms_match(&exp, &gauge, false, 1e-6));
        assert!(!histograms_match(&exp, &gauge, true, 1e-6));
        let nhcb = hist("{{schema:-53 count:1 custom_values:[1 2] buckets:[1]}}");
        assert!(!histograms_match(
            &nhcb,
            &hist("{{schema:-53 count:1 custom_values:[1 3] buckets:[1]}}"),
            false,
            1e-6
        ));

        assert_eq!(
            test_expression(&got),
            "{{count:3.0000000001 sum:4 buckets:[1 0 2]}}"
        );
        assert_eq!(
            test_expression(&hist(
                "{{schema:-53 count:2 sum:0.5 custom_values:[0.1 1] offset:1 buckets:[2] counter_reset_hint:reset}}"
            )),
            "{{schema:-53 count:2 sum:0.5 custom_values:[0.1 1] counter_reset_hint:reset offset:1 buckets:[2]}}"
        );
        assert_eq!(
            test_expression(&hist(
                "{{n_offset:2 n_buckets:[0 1] z_bucket:1 z_bucket_w:0.5}}"
            )),
            "{{z_bucket:1 z_bucket_w:0.5 n_offset:3 n_buckets:[1]}}"
        );
        assert_eq!(test_expression(&FloatHistogram::default()), "{{}}");
        assert!(almost_equal(f64::NAN, f64::NAN, 1e-6));
        assert!(!almost_equal(0.0, 1e-300, 1e-6));
    }

    fn series(line: &str) -> SeriesSamples {
        let (l, rest) = split_series(line).expect("series");
        series_samples(l, values(rest), 60_000)
    }

    #[test]
    fn load_and_nhcb_conversion() {
        let s = series("foo{a=\"b\"} 1 _ {{count:2}} stale");
        assert_eq!(s.samples.len(), 2);
        assert_eq!(s.samples[0], (0, 1.0));
        assert_eq!(s.samples[1].0, 180_000);
        assert_eq!(s.histograms.len(), 1);
        assert_eq!(s.histograms[0].0, 120_000);

        let batch = vec![
            series(r#"x_bucket{job="a", le="+Inf"} 4 8"#),
            series(r#"x_bucket{job="a", le="0.1"} 1 2"#),
            series(r#"x_bucket{job="a", le="1"} 3 _"#),
            series(r#"x_bucket{job="a", le="1"} 3 _"#),
            series(r#"x_sum{job="a"} 5 10"#),
            series(r#"x_count{job="a"} 4 8"#),
            series(r#"x_bucket{job="a", le="nope"} 9 9"#),
            series(r#"y_count 2"#),
            series(r#"other 2"#),
        ];
        let out = nhcb_series(&batch).expect("converts");
        assert_eq!(out.len(), 2);
        let x = out
            .iter()
            .find(|s| s.labels.get(METRIC_NAME) == Some("x"))
            .expect("x");
        assert_eq!(x.labels.get("job"), Some("a"));
        assert_eq!(x.labels.get("le"), None);
        assert!(x.samples.is_empty());
        let at0 = &x.histograms[0].1;
        assert!(histograms_match(
            &hist("{{schema:-53 count:4 sum:5 custom_values:[0.1 1] buckets:[1 2 1]}}"),
            at0,
            true,
            1e-12
        ));
        // The `le="1"` sample is missing at 1m: its bucket is not there.
        let at1 = &x.histograms[1].1;
        assert_eq!(x.histograms[1].0, 60_000);
        assert!(histograms_match(
            &hist("{{schema:-53 count:8 sum:10 custom_values:[0.1] buckets:[2 6]}}"),
            at1,
            true,
            1e-12
        ));
        // `_count` alone: one +Inf bucket.
        let y = out
            .iter()
            .find(|s| s.labels.get(METRIC_NAME) == Some("y"))
            .expect("y");
        assert!(histograms_match(
            &hist("{{schema:-53 count:2 buckets:[2]}}"),
            &y.histograms[0].1,
            false,
            1e-12
        ));
        // Without +Inf: the count closes the histogram.
        let out =
            nhcb_series(&[series(r#"z_bucket{le="1"} 1"#), series("z_count 3")]).expect("converts");
        assert!(histograms_match(
            &hist("{{schema:-53 count:3 custom_values:[1] buckets:[1 2]}}"),
            &out[0].histograms[0].1,
            false,
            1e-12
        ));

        for bad in [
            vec![
                series(r#"z_bucket{le="1"} 3"#),
                series(r#"z_bucket{le="+Inf"} 2"#),
            ],
            vec![series(r#"z_bucket{le="+Inf"} 2"#), series("z_count 3")],
            vec![series(r#"z_bucket{le="1"} -1"#)],
            vec![series("z_bucket 1")],
        ] {
            assert!(nhcb_series(&bad).is_err());
        }
    }
}
