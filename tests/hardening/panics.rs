//! No panic on any input, against the real (debug: overflow-checked) binary: times at the
//! i64 and f64 limits, NaN and infinite parameters, escapes of multi-byte characters in
//! regexes, extreme function parameters. Each request must get a 2xx or 4xx answer — a
//! 5xx would be a panic caught by the catch-panic layer or an unexpected internal error —
//! and the server must still be alive afterwards.

use crate::common::{Server, enc, reqwest};

/// Queries (`/api/v1/query` with `time`) that must not panic.
const QUERIES: &[&str] = &[
    r#"{__name__=~"\\é"}"#,
    r#"{__name__=~"a\\é{"}"#,
    r#"{__name__=~"(é|\\x{10FFFF})+"}"#,
    r#"up{job=~"\\ü.*"}"#,
    "up offset 9999999999y",
    "up offset -9999999999y",
    "up @ 1e300",
    "up @ -1e300",
    "up @ NaN",
    "up @ Inf",
    "rate(up[9999999999y])",
    "max_over_time(up[5m:1ms])",
    "max_over_time(vector(1)[9999999999y:1y])",
    "vector(1) offset -9223372036854775807ms",
    "topk(1e300, up)",
    "topk(NaN, up)",
    "bottomk(-1, up)",
    "limitk(9.3e18, up)",
    "limit_ratio(NaN, up)",
    "quantile(NaN, up)",
    "quantile_over_time(Inf, up[5m])",
    "histogram_quantile(NaN, up)",
    "round(vector(1), 0)",
    "round(vector(1e308), 1e-308)",
    "predict_linear(up[5m], 1e308)",
    "double_exponential_smoothing(up[5m], 2, 2)",
    r#"label_replace(up, "a", "$1", "b", "(")"#,
    r#"label_replace(vector(1), "a", "$99999999999", "b", "(.*)")"#,
    "sort_desc(vector(NaN) or vector(1))",
    r#"count_values("a", vector(NaN))"#,
    "absent_over_time(nonexistent[9999999999y])",
    "clamp(vector(1), NaN, -Inf)",
    "timestamp(vector(1)) - time() * 1e308",
    "vector(1e308) * 1e308 % 0",
    "1 / 0 ^ -1 atan2 0",
    "day_of_month(vector(1e300))",
    "day_of_month(vector(-1e300))",
    "days_in_month(vector(NaN))",
    "year(vector(9.3e18))",
    "changes(up[1ms])",
    "deriv(up[1ms])",
    "holt_winters(up[5m], 0.5, 0.5)",
    "resets(up[5m]) > bool Inf",
];

/// Other requests (path and query string) that must not panic.
const REQUESTS: &[&str] = &[
    "/api/v1/query_range?query=1&start=-9223372036854775808&end=9223372036854775807&step=1",
    "/api/v1/query_range?query=1&start=-1e300&end=1e300&step=1e-300",
    "/api/v1/query_range?query=1&start=0&end=100&step=0",
    "/api/v1/query_range?query=1&start=0&end=100&step=-1",
    "/api/v1/query_range?query=1&start=0&end=100&step=NaN",
    "/api/v1/query_range?query=1&start=0&end=100&step=Inf",
    "/api/v1/query_range?query=1&start=NaN&end=Inf&step=1",
    "/api/v1/query_range?query=1&start=100&end=0&step=1",
    "/api/v1/query_range?query=up&start=0&end=100&step=1&lookback_delta=-1s",
    "/api/v1/query_range?query=up&start=0&end=100&step=1&lookback_delta=9999999999y",
    "/api/v1/query?query=time()&time=-9223372036854775808",
    "/api/v1/query?query=time()&time=1e400",
    "/api/v1/query?query=time()&time=NaN",
    "/api/v1/query?query=up&timeout=-1s",
    "/api/v1/query?query=up&timeout=9999999999y",
    "/api/v1/query?query=up&limit=-1",
    "/api/v1/query?query=up&limit=99999999999999999999999",
    "/api/v1/series?match[]=up&start=-1e300&end=1e300",
    "/api/v1/series?match[]=up&start=NaN",
    "/api/v1/series?match[]=%7B__name__%3D~%22%5C%5C%C3%A9%22%7D",
    "/api/v1/labels?start=-9223372036854775808&end=9223372036854775807",
    "/api/v1/label/__name__/values?start=1e300&limit=-5",
    "/api/v1/label/%FF/values",
    "/api/v1/query_exemplars?query=up&start=100&end=0",
    "/federate?match[]=%7B__name__%3D~%22%5C%5C%C3%A9.%2A%22%7D",
    "/api/v1/format_query?query=%28%28%28%28%28%28%28%28%28%28up%29%29%29%29%29%29%29%29%29%29",
    "/api/v1/parse_query?query=up%5B1e300y%5D",
    "/api/v1/metadata?limit=-1&limit_per_metric=99999999999999999999",
    "/api/v1/targets?state=%FF",
    "/api/v1/sql?query=SELECT%201%2F0",
    "/api/v1/sql?query=SELECT%20*%20FROM%20samples%20LIMIT%2018446744073709551615",
];

#[test]
fn hostile_inputs_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_embedded(dir.path(), &[]);
    let client = reqwest::blocking_client();
    let mut failures = Vec::new();
    let mut check = |what: String, path: String| match client.get(s.url(&path)).send() {
        Ok(r) if r.status().as_u16() < 500 => {}
        Ok(r) => failures.push(format!("{what}: {} {}", r.status().as_u16(), r.text())),
        Err(e) => failures.push(format!("{what}: connection failed: {e}")),
    };
    for q in QUERIES {
        check(
            (*q).to_string(),
            format!("/api/v1/query?query={}&time=1000", enc(q)),
        );
        check(
            format!("{q} (range)"),
            format!(
                "/api/v1/query_range?query={}&start=0&end=3600&step=60",
                enc(q)
            ),
        );
    }
    for p in REQUESTS {
        check((*p).to_string(), (*p).to_string());
    }
    let mut s = s;
    assert!(
        matches!(s.child.try_wait(), Ok(None)),
        "the server died; answers so far: {failures:#?}"
    );
    let h = client.get(s.url("/-/healthy")).send().expect("healthy");
    assert_eq!(h.status().as_u16(), 200);
    assert!(
        failures.is_empty(),
        "5xx answers or dropped connections:\n{}",
        failures.join("\n")
    );
}
