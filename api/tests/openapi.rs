//! The checked-in `openapi/openapi.json` must be exactly what the code generates.
//! Regenerate it with `STRATA_BLESS=1 cargo test -p strata-api --test openapi`.

use std::path::Path;

#[test]
fn checked_in_openapi_matches_the_code() {
    let path = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("../openapi/openapi.json");
    let generated = strata_api::openapi_document();
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/openapi.json differs from the generated document; regenerate it with \
         `STRATA_BLESS=1 cargo test -p strata-api --test openapi` and review the diff"
    );
}

#[test]
fn document_covers_the_prometheus_api() {
    let doc: serde_json::Value =
        serde_json::from_str(&strata_api::openapi_document()).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/{name}/values",
        "/api/v1/metadata",
        "/api/v1/targets",
        "/api/v1/targets/metadata",
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v1/alertmanagers",
        "/api/v1/query_exemplars",
        "/api/v1/format_query",
        "/api/v1/parse_query",
        "/api/v1/status/buildinfo",
        "/api/v1/status/config",
        "/api/v1/status/flags",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/tsdb",
        "/api/v1/status/walreplay",
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/write",
        "/federate",
        "/-/healthy",
        "/-/ready",
        "/-/reload",
        "/-/quit",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    assert!(paths["/api/v1/query"].get("post").is_some());
    assert!(paths["/api/v1/query"].get("get").is_some());
}
