//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` over HTTP, with
//! Prometheus's parameters, shapes and error envelope.

mod common;

use common::{Server, enc, post_write, reqwest::blocking_client, write_body};

const T0: i64 = 1_700_000_000_000;

fn get_json(url: String) -> (u16, serde_json::Value) {
    let r = blocking_client().get(url).send().expect("request");
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status().as_u16(), v)
}

#[test]
fn series_labels_and_values() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    // 14 series: test_metric_{0..6}, instance host-0..13, job crash.
    assert_eq!(
        post_write(server.port, write_body(0..14, T0, 5, 15_000)).expect("post"),
        204
    );

    let (code, v) = get_json(server.url(&format!(
        "/api/v1/series?match[]={}",
        enc(r#"test_metric_3"#)
    )));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "success");
    let data = v["data"].as_array().expect("array");
    assert_eq!(data.len(), 2); // host-3, host-10
    assert_eq!(data[0]["__name__"], "test_metric_3");
    assert_eq!(data[0]["instance"], "host-10");
    assert_eq!(data[0]["job"], "crash");

    // Two selectors are a union; limit truncates with a warning.
    let url = format!(
        "/api/v1/series?match[]={}&match[]={}&limit=3",
        enc("test_metric_1"),
        enc(r#"{instance=~"host-1[23]"}"#)
    );
    let (code, v) = get_json(server.url(&url));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["warnings"][0], "results truncated due to limit");

    // Time range outside the data: nothing.
    let (_, v) = get_json(server.url(&format!(
        "/api/v1/series?match[]={}&start=0&end=1",
        enc("test_metric_1")
    )));
    assert_eq!(v["data"].as_array().map(Vec::len), Some(0));

    let (code, v) = get_json(server.url("/api/v1/labels"));
    assert_eq!(code, 200);
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "instance", "job"])
    );

    let (code, v) = get_json(server.url("/api/v1/label/__name__/values"));
    assert_eq!(code, 200);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(7));
    assert_eq!(v["data"][0], "test_metric_0");

    let (_, v) = get_json(server.url(&format!(
        "/api/v1/label/instance/values?match[]={}",
        enc("test_metric_0")
    )));
    assert_eq!(v["data"], serde_json::json!(["host-0", "host-7"]));

    // POST with a form body, as Grafana sends it.
    let r = blocking_client()
        .post(
            server.url("/api/v1/series"),
            format!("match[]={}", enc("test_metric_6")).into_bytes(),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    server.stop();
}

#[test]
fn bad_parameters_get_prometheus_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    let (code, v) = get_json(server.url("/api/v1/series"));
    assert_eq!(code, 400);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert_eq!(v["error"], "no match[] parameter provided");

    let (code, v) = get_json(server.url(&format!("/api/v1/series?match[]={}", enc("up{"))));
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("parse error")),
        "{v}"
    );

    let (code, v) = get_json(server.url(&format!(
        "/api/v1/series?match[]=up&start={}",
        enc("yesterday")
    )));
    assert_eq!(code, 400);
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("\"start\"")),
        "{v}"
    );

    let (code, v) = get_json(server.url("/api/v1/labels?limit=-1"));
    assert_eq!(code, 400, "{v}");

    let (code, _) = get_json(server.url("/api/v1/nope"));
    assert_eq!(code, 404);
    server.stop();
}
