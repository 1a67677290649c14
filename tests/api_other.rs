//! parse_query, query_exemplars, rules, alerts, alertmanagers and /federate over HTTP, with
//! Prometheus's shapes and its errors for bad input.

mod common;

use common::{Server, enc, post_write, reqwest::blocking_client, write_body};

fn get_json(url: String) -> (u16, serde_json::Value) {
    let r = blocking_client().get(url).send().expect("request");
    (
        r.status().as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn parse_query_returns_the_syntax_tree() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let q = "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m)) / on(job) group_left up";
    let (code, v) = get_json(s.url(&format!("/api/v1/parse_query?query={}", enc(q))));
    assert_eq!(code, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["type"], "binaryExpr");
    assert_eq!(d["op"], "/");
    assert_eq!(d["matching"]["card"], "many-to-one");
    assert_eq!(d["matching"]["on"], true);
    assert_eq!(d["matching"]["labels"][0], "job");
    let agg = &d["lhs"];
    assert_eq!(agg["type"], "aggregation");
    assert_eq!(agg["op"], "sum");
    assert_eq!(agg["grouping"][0], "job");
    let call = &agg["expr"];
    assert_eq!(call["type"], "call");
    assert_eq!(call["func"]["name"], "rate");
    assert_eq!(call["func"]["argTypes"][0], "matrix");
    assert_eq!(call["func"]["returnType"], "vector");
    let m = &call["args"][0];
    assert_eq!(m["type"], "matrixSelector");
    assert_eq!(m["range"], 300_000);
    assert_eq!(m["offset"], 60_000);
    assert_eq!(m["name"], "http_requests_total");
    assert!(
        m["matchers"]
            .as_array()
            .expect("matchers")
            .iter()
            .any(|x| x["type"] == "=~" && x["name"] == "code" && x["value"] == "5..")
    );
    assert_eq!(d["rhs"]["type"], "vectorSelector");

    let (code, v) = get_json(s.url(&format!("/api/v1/parse_query?query={}", enc("sum(("))));
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    s.stop();
}

#[test]
fn rules_alerts_exemplars_and_alertmanagers_shapes() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let (code, v) = get_json(s.url("/api/v1/rules"));
    assert_eq!(code, 200);
    assert!(v["data"]["groups"].as_array().is_some_and(Vec::is_empty));
    let (code, v) = get_json(s.url("/api/v1/rules?type=nonsense"));
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
    let (_, v) = get_json(s.url("/api/v1/alerts"));
    assert!(v["data"]["alerts"].as_array().is_some());
    let (_, v) = get_json(s.url("/api/v1/alertmanagers"));
    assert!(v["data"]["activeAlertmanagers"].as_array().is_some());
    assert!(v["data"]["droppedAlertmanagers"].as_array().is_some());
    let (code, v) = get_json(s.url("/api/v1/query_exemplars?query=up&start=1&end=2"));
    assert_eq!(code, 200, "{v}");
    assert!(v["data"].as_array().is_some_and(Vec::is_empty));
    let (code, v) = get_json(s.url("/api/v1/query_exemplars?query=up&start=5&end=2"));
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
    let (code, _) = get_json(s.url("/api/v1/query_exemplars?query=up(("));
    assert_eq!(code, 400);
    let (code, _) = get_json(s.url("/api/v1/no_such_endpoint"));
    assert_eq!(code, 404);
    s.stop();
}

#[test]
fn federate_exposes_the_newest_samples() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert_eq!(
        post_write(s.port, write_body(0..3, now - 30_000, 3, 10_000)).expect("post"),
        204
    );
    let r = blocking_client()
        .get(s.url(&format!("/federate?match[]={}", enc("test_metric_1"))))
        .send()
        .expect("federate");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text();
    assert!(text.contains("# TYPE test_metric_1 untyped"), "{text}");
    let line = format!(
        "test_metric_1{{instance=\"host-1\",job=\"crash\"}} 1002 {}",
        now - 10_000
    );
    assert!(text.contains(&line), "{text}");
    assert!(!text.contains("test_metric_0"), "{text}");
    // A series without `instance` gets `instance=""`, as Prometheus's federation adds it.
    let body = common::rw1::encode(&common::rw1::WriteRequest {
        timeseries: vec![common::rw1::TimeSeries {
            labels: vec![
                common::rw1::label("__name__", "no_instance"),
                common::rw1::label("job", "x"),
            ],
            samples: vec![strata_ingest::remote_write::Sample {
                value: 7.0,
                timestamp: now - 5_000,
            }],
            ..Default::default()
        }],
    });
    assert_eq!(post_write(s.port, body).expect("post"), 204);
    let text = blocking_client()
        .get(s.url(&format!("/federate?match[]={}", enc("no_instance"))))
        .send()
        .expect("federate")
        .text();
    let line = format!("no_instance{{instance=\"\",job=\"x\"}} 7 {}", now - 5_000);
    assert!(text.contains(&line), "{text}");
    let r = blocking_client()
        .get(s.url(&format!("/federate?match[]={}", enc("{bad"))))
        .send()
        .expect("federate");
    assert_eq!(r.status().as_u16(), 400);
    s.stop();
}
