//! `/api/v1/query` and `/api/v1/query_range` over HTTP: Prometheus's JSON shapes and value
//! formatting, its parameter errors, and the query limits (`--query.max-samples`,
//! `--query.timeout`) failing one query while the server stays healthy.

mod common;

use common::{Server, enc, post_write, reqwest::blocking_client, write_body};

const T0: i64 = 1_700_000_000_000;

fn get(server: &Server, path: &str) -> (u16, String) {
    let r = blocking_client()
        .get(server.url(path))
        .send()
        .expect("request");
    (r.status().as_u16(), r.text())
}

fn post_form(server: &Server, path: &str, form: &str) -> (u16, String) {
    let r = blocking_client()
        .post(server.url(path), form.as_bytes().to_vec())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("request");
    (r.status().as_u16(), r.text())
}

fn loaded(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), extra);
    // test_metric_{i%7}{instance="host-i",job="crash"} = i*1000+k at T0 + k*15s, k < 5.
    assert_eq!(
        post_write(server.port, write_body(0..14, T0, 5, 15_000)).expect("post"),
        204
    );
    (dir, server)
}

#[test]
fn instant_and_range_results_have_prometheus_json() {
    let (_dir, server) = loaded(&[]);
    let t = T0 / 1000 + 60;

    let (code, body) = get(
        &server,
        &format!("/api/v1/query?query=test_metric_3&time={t}"),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"test_metric_3","instance":"host-10","job":"crash"},"value":[1700000060,"10004"]},{"metric":{"__name__":"test_metric_3","instance":"host-3","job":"crash"},"value":[1700000060,"3004"]}]}}"#
    );

    let form = format!(
        "query={}&start={}&end={t}&step=30",
        enc("sum(test_metric_3)"),
        T0 / 1000
    );
    let (code, body) = post_form(&server, "/api/v1/query_range", &form);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"13000"],[1700000030,"13004"],[1700000060,"13008"]]}]}}"#
    );

    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query={}&time=1700000000.5", enc("1+1")),
    );
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.500,"2"]}}"#
    );
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query={}&time=10", enc("\"abc\"")),
    );
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[10,"abc"]}}"#
    );
    let (_, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time=10",
            enc("vector(1/0) or vector(0/0)")
        ),
    );
    assert!(body.contains(r#""value":[10,"+Inf"]"#), "{body}");
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query={}&time=10", enc("1e-7")),
    );
    // A scalar marshals with FormatFloat 'f' (plain decimal), a sample with MarshalFloat.
    assert!(body.contains(r#""0.0000001""#), "{body}");
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query={}&time=10", enc("vector(1e-7)")),
    );
    assert!(body.contains(r#""1e-07""#), "{body}");

    // Raw samples of a range selector in an instant query.
    let (_, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time={t}",
            enc("test_metric_3{instance=\"host-3\"}[30s]")
        ),
    );
    assert!(
        body.contains(r#""values":[[1700000045,"3003"],[1700000060,"3004"]]"#),
        "{body}"
    );

    // Annotations travel as `infos`/`warnings`.
    let (_, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time={t}",
            enc("rate(test_metric_3[1m])")
        ),
    );
    assert!(
        body.contains(r#""infos":["PromQL info: metric might not be a counter"#),
        "{body}"
    );

    // `limit` truncates vectors.
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query=test_metric_3&time={t}&limit=1"),
    );
    assert_eq!(body.matches("\"metric\"").count(), 1, "{body}");
}

#[test]
fn bad_parameters_are_bad_data() {
    let (_dir, server) = loaded(&[]);
    let cases: &[(&str, &str)] = &[
        (
            "/api/v1/query?query=up&time=abc",
            r#"invalid parameter \"time\": cannot parse \"abc\" to a valid timestamp"#,
        ),
        (
            "/api/v1/query?query=sum(&time=1",
            r#"invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis"#,
        ),
        (
            "/api/v1/query?query=up&timeout=x",
            r#"invalid parameter \"timeout\": cannot parse \"x\" to a valid duration"#,
        ),
        (
            "/api/v1/query?query=up&lookback_delta=x",
            r#"error parsing lookback delta duration: cannot parse \"x\" to a valid duration"#,
        ),
        (
            "/api/v1/query_range?query=up&end=1&step=1",
            r#"invalid parameter \"start\": cannot parse \"\" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range?query=up&start=2&end=1&step=1",
            r#"invalid parameter \"end\": end timestamp must not be before start time"#,
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=2&step=0",
            r#"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=11001&step=1",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range?query=up%5B1m%5D&start=0&end=10&step=1",
            r#"invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"#,
        ),
    ];
    for (path, msg) in cases {
        let (code, body) = get(&server, path);
        assert_eq!(code, 400, "{path}: {body}");
        assert!(
            body.starts_with(r#"{"status":"error","errorType":"bad_data","error":""#),
            "{path}: {body}"
        );
        assert!(body.contains(msg), "{path}: {body} lacks {msg}");
    }
    // 11,000 points is still fine.
    let (code, body) = get(
        &server,
        "/api/v1/query_range?query=1&start=0&end=11000&step=1",
    );
    assert_eq!(code, 200, "{body}");

    // An evaluation error is `execution` with 422.
    let q = enc("test_metric_3 + on(job) test_metric_3");
    let (code, body) = get(
        &server,
        &format!("/api/v1/query?query={q}&time={}", T0 / 1000),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains(r#""errorType":"execution","error":"found duplicate series for the match group {job=\"crash\"}"#), "{body}");
}

#[test]
fn query_limits_fail_the_query_not_the_server() {
    let (_dir, server) = loaded(&["--query.max-samples=10", "--query.timeout=1ms"]);
    let q = enc(r#"count_over_time({job="crash"}[5m])"#);
    let (code, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={q}&time={}&timeout=10s",
            T0 / 1000 + 60
        ),
    );
    assert!(code == 422 || code == 503, "{body}");
    // Past max-samples at plan time (86,400 subquery steps > 10): refused before it runs.
    let (code, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time=100000",
            enc("count_over_time(vector(1)[1d:1s])")
        ),
    );
    assert_eq!(code, 422, "{body}");
    // Within max-samples but past the timeout: 503 timeout.
    let (_dir2, server) = loaded(&["--query.timeout=1ms"]);
    let (code, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time=100000",
            enc("count_over_time(vector(1)[1d:1s])")
        ),
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#
    );
    let (code, _) = get(&server, "/-/healthy");
    assert_eq!(code, 200);
}

#[test]
fn max_samples_limit() {
    let (_dir, server) = loaded(&["--query.max-samples=10"]);
    let q = enc(r#"count_over_time({job="crash"}[5m])"#);
    let (code, body) = get(
        &server,
        &format!("/api/v1/query?query={q}&time={}", T0 / 1000 + 60),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains(
            "query processing would load too many samples into memory in query execution"
        ),
        "{body}"
    );
    // A query under the limit still works.
    let (code, body) = get(
        &server,
        &format!(
            "/api/v1/query?query={}&time={}",
            enc(r#"test_metric_3{instance="host-3"}"#),
            T0 / 1000 + 60
        ),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("3004"), "{body}");
}

/// `/api/v1/explain`: the plan of a dashboard query, and with `analyze=true` the metrics
/// of each operator after running it; bad queries and parameters are `bad_data`.
#[test]
fn explain_analyze_shows_each_operators_metrics() {
    let (_dir, server) = loaded(&[]);
    let q = enc("sum by (job) (rate(test_metric_1[1m])) / on(job) count by (job) (test_metric_1)");
    let range = format!("start={}&end={}&step=15", T0 / 1000 + 15, T0 / 1000 + 60);
    let (code, body) = get(&server, &format!("/api/v1/explain?query={q}&{range}"));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let plan = v["data"]["plan"].as_str().expect("plan");
    assert!(
        plan.contains("PromJoin") && plan.contains("PromSelector"),
        "{plan}"
    );
    assert!(
        !plan.contains("output_rows"),
        "no metrics without analyze: {plan}"
    );

    let (code, body) = post_form(
        &server,
        "/api/v1/explain",
        &format!("query={q}&{range}&analyze=true"),
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let plan = v["data"]["plan"].as_str().expect("plan");
    let join = plan.lines().next().expect("top");
    assert!(join.starts_with("PromJoin"), "{plan}");
    // test_metric_1 has two series, both job="crash": one output series at 4 steps.
    assert!(join.contains("output_rows=4,"), "{plan}");
    assert!(join.contains("output_series=1,"), "{plan}");
    assert!(join.contains("elapsed_compute="), "{plan}");

    let (code, body) = get(&server, "/api/v1/explain?query=sum(");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"errorType\":\"bad_data\""), "{body}");
    let (code, body) = get(
        &server,
        &format!("/api/v1/explain?query={q}&start=10&end=5&step=1"),
    );
    assert_eq!(code, 400, "{body}");
}
