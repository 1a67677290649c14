//! `GET|POST /api/v1/sql`: SQL over the metrics (see `strata_engine::sql`). The query comes
//! as the form field / parameter `query`, or as the raw body with
//! `Content-Type: application/sql`. The answer is JSON by default
//! (`{"status":"success","data":{"columns":[{"name","type"}],"rows":[{column: value}]}}`),
//! an Arrow IPC stream with `Accept: application/vnd.apache.arrow.stream`, or CSV with
//! `Accept: text/csv`. Errors use Prometheus's envelope (`bad_data` 400, `execution` 422,
//! `timeout` 503); a result past `--query.max-samples` rows or
//! `--query.sql-max-result-bytes` bytes, and a query whose operators need more than
//! `--query.max-memory`, are `execution` errors naming the limit. The JSON rows are
//! written by Arrow's JSON writer straight into the response body (column order kept), with
//! no intermediate JSON tree.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::ArrayWriter;
use serde_json::{Value, json};
use std::io::Write;

use strata_engine::sql::{RenderBuf, SqlOutput};

use crate::AppState;
use crate::error::ApiError;
#[allow(unused_imports)]
use crate::openapi::*;
use crate::params::Params;
use crate::query::QueryError;

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// `GET|POST /api/v1/sql`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/sql",
    tag = "sql",
    summary = "Run a read-only SQL query over the metrics (samples, series, one table per metric)",
    params(
        ("query" = Option<String>, Query, description = "SQL text (or the body with Content-Type: application/sql)"),
        ("timeout" = Option<String>, Query, description = "Evaluation timeout (capped by --query.timeout)")
    ),
    request_body(
        description = "A form with the field `query`, or the SQL text itself with Content-Type: application/sql",
        content(
            (SqlForm = "application/x-www-form-urlencoded"),
            (String = "application/sql")
        )
    ),
    responses(
        (status = 200, description = "JSON rows, an Arrow IPC stream or CSV, by Accept", body = SqlResponse),
        (status = 400, description = "Bad SQL", body = ErrorBody),
        (status = 422, description = "Execution error", body = ErrorBody),
        (status = 503, description = "Timeout or not ready", body = ErrorBody)
    )
)]
pub(crate) async fn sql(
    State(s): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_sql_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/sql"));
    let p = Params::from_request(&method, &uri, &headers, &body);
    let text = if is_sql_body {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        p.get("query").unwrap_or_default().to_owned()
    };
    if text.trim().is_empty() {
        return ApiError::BadData("invalid parameter \"query\": empty SQL query".into())
            .into_response();
    }
    let timeout = match p.get("timeout").filter(|t| !t.is_empty()) {
        Some(t) => match crate::query::parse_duration(t) {
            Ok(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms as u64)),
            Ok(_) => None,
            Err(e) => {
                return ApiError::BadData(format!("invalid parameter \"timeout\": {e}"))
                    .into_response();
            }
        },
        None => None,
    };
    let engine = match s.engine() {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let out = match engine.sql(&text, timeout).await {
        Ok(o) => o,
        Err(e) => return QueryError(e).into_response(),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut buf = out.render_buf();
    let (kind, rendered) = if accept.contains(ARROW_STREAM) {
        (ARROW_STREAM, arrow_stream(&out, &mut buf))
    } else if accept.contains("text/csv") {
        ("text/csv; charset=utf-8", csv(&out, &mut buf))
    } else {
        ("application/json", json_rows(&out, &mut buf))
    };
    drop(out);
    match rendered {
        Ok(()) => ([(header::CONTENT_TYPE, kind)], buf.into_inner()).into_response(),
        Err(e) => match buf.refusal() {
            // Past the result cap or the memory pool while rendering: the query's fault.
            Some(why) => QueryError(why).into_response(),
            None => ApiError::Internal(e).into_response(),
        },
    }
}

fn arrow_stream(out: &SqlOutput, buf: &mut RenderBuf) -> Result<(), String> {
    let mut w = StreamWriter::try_new(buf, &out.schema).map_err(|e| e.to_string())?;
    for b in &out.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())
}

fn csv(out: &SqlOutput, buf: &mut RenderBuf) -> Result<(), String> {
    if out.batches.is_empty() {
        let names: Vec<&str> = out
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        return writeln!(buf, "{}", names.join(",")).map_err(|e| e.to_string());
    }
    let mut w = WriterBuilder::new().with_header(true).build(buf);
    for b in &out.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn json_rows(out: &SqlOutput, buf: &mut RenderBuf) -> Result<(), String> {
    let columns: Vec<Value> = out
        .schema
        .fields()
        .iter()
        .map(|f| {
            // Label columns are dictionary-encoded; their values are what the client sees.
            let t = match f.data_type() {
                DataType::Dictionary(_, v) => v.to_string(),
                other => other.to_string(),
            };
            json!({"name": f.name(), "type": t})
        })
        .collect();
    let err = |e: std::io::Error| e.to_string();
    buf.write_all(br#"{"status":"success","data":{"columns":"#)
        .map_err(err)?;
    serde_json::to_writer(&mut *buf, &columns).map_err(|e| e.to_string())?;
    buf.write_all(br#","rows":"#).map_err(err)?;
    if out.batches.iter().all(|b| b.num_rows() == 0) {
        buf.write_all(b"[]").map_err(err)?;
    } else {
        let mut w = ArrayWriter::new(&mut *buf);
        let refs: Vec<&_> = out.batches.iter().collect();
        w.write_batches(&refs).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    buf.write_all(b"}}").map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQL output of `q` over an empty database, with a result cap of `limit` bytes.
    fn output_capped(q: &str, limit: usize) -> SqlOutput {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!(
            "strata-sql-json-{}-{}",
            std::process::id(),
            q.len()
        ));
        let out = rt.block_on(async {
            let db = strata_storage::Db::open(strata_storage::Options::new(&dir))
                .await
                .expect("db");
            let opts = strata_engine::EngineOptions {
                sql_max_result_bytes: limit,
                ..strata_engine::EngineOptions::default()
            };
            let engine = strata_engine::Engine::new(db, opts);
            engine.sql(q, None).await.expect("sql")
        });
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn output(q: &str) -> SqlOutput {
        output_capped(q, strata_engine::sql::DEFAULT_MAX_RESULT_BYTES)
    }

    fn json(out: &SqlOutput) -> Vec<u8> {
        let mut buf = out.render_buf();
        json_rows(out, &mut buf).expect("json");
        buf.into_inner()
    }

    #[test]
    fn json_rows_are_one_valid_document() {
        let out = output("SELECT 1 AS a, 'x' AS b, CAST('NaN' AS DOUBLE) AS c");
        let v: Value = serde_json::from_slice(&json(&out)).expect("valid");
        assert_eq!(v["data"]["rows"], json!([{"a": 1, "b": "x", "c": null}]));
        assert_eq!(
            v["data"]["columns"][1],
            json!({"name": "b", "type": "Utf8"})
        );
        let out = output("SELECT 1 AS a WHERE false");
        let v: Value = serde_json::from_slice(&json(&out)).expect("valid");
        assert_eq!(v["data"]["rows"], json!([]));
        assert_eq!(v["status"], "success");
    }

    /// A dictionary column is small as Arrow and large as text: rendering is capped too.
    #[test]
    fn text_rendering_past_the_cap_is_refused() {
        let q = "SELECT arrow_cast(repeat('x', 10000), 'Dictionary(Int32, Utf8)') AS d \
                 FROM generate_series(1, 200)";
        let out = output_capped(q, 64 << 10);
        assert!(
            out.bytes() < 64 << 10,
            "the Arrow result fits: {}",
            out.bytes()
        );
        type Render = fn(&SqlOutput, &mut RenderBuf) -> Result<(), String>;
        // Arrow IPC sends each dictionary once: it stays small and is not refused.
        let mut buf = out.render_buf();
        arrow_stream(&out, &mut buf).expect("arrow fits");
        for render in [json_rows as Render, csv] {
            let mut buf = out.render_buf();
            let r = render(&out, &mut buf);
            assert!(r.is_err());
            let why = buf.refusal().expect("refused by the cap");
            assert_eq!(why.error_type(), "execution");
        }
    }
}
