//! SQL over HTTP and offline: answers agree with PromQL on the same data (sum by job at a
//! timestamp, per-series counts, `prom_rate` vs `rate`), with reading the Parquet block
//! files directly, and between JSON, CSV and Arrow IPC outputs; `strata sql` reads a live
//! data directory read-only; bad or writing statements are refused with Prometheus's
//! error envelope.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Server, enc, post_write, reqwest, sql_json};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Float64Type, Int8Type, Int64Type};
use datafusion::arrow::ipc::reader::StreamReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use strata_ingest::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};

/// 2 jobs × 3 instances, a counter growing 2/s, sampled every 15 s for one hour.
const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;
const POINTS: i64 = 241;

fn load(port: u16) {
    let mut series = Vec::new();
    for job in ["api", "db"] {
        for inst in 0..3 {
            let base = if job == "api" { 100.0 } else { 1000.0 } * (inst + 1) as f64;
            series.push(TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "requests_total".into(),
                    },
                    Label {
                        name: "instance".into(),
                        value: format!("host-{inst}"),
                    },
                    Label {
                        name: "job".into(),
                        value: job.into(),
                    },
                ],
                samples: (0..POINTS)
                    .map(|k| Sample {
                        timestamp: T0 + k * STEP,
                        value: base + 2.0 * (k * STEP / 1000) as f64,
                    })
                    .collect(),
            });
        }
    }
    let body = encode(&WriteRequest {
        timeseries: series,
        metadata: vec![],
    });
    assert_eq!(post_write(port, body).expect("write"), 204);
}

fn promql(s: &Server, q: &str, t: i64) -> Vec<Value> {
    let r = reqwest::blocking_client()
        .get(s.url(&format!(
            "/api/v1/query?query={}&time={}",
            enc(q),
            t as f64 / 1000.0
        )))
        .send()
        .expect("GET");
    let j: Value = serde_json::from_str(&r.text()).expect("JSON");
    j["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(f64::NAN)
}

#[test]
fn sql_agrees_with_promql_outputs_and_parquet() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    load(s.port);
    let t = T0 + 120 * STEP;

    // sum by (job) at a timestamp.
    let prom: BTreeMap<String, f64> = promql(&s, "sum by (job) (requests_total)", t)
        .iter()
        .map(|r| {
            (
                r["metric"]["job"].as_str().unwrap_or("").to_owned(),
                num(&r["value"][1]),
            )
        })
        .collect();
    let j = sql_json(
        &s,
        &format!(
            "SELECT job, sum(value) AS v FROM requests_total WHERE timestamp = to_timestamp_millis({t}) GROUP BY job ORDER BY job"
        ),
    );
    assert_eq!(j["status"], "success", "{j}");
    assert_eq!(
        j["data"]["columns"][0],
        serde_json::json!({"name": "job", "type": "Utf8"})
    );
    let sql: BTreeMap<String, f64> = j["data"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["job"].as_str().unwrap_or("").to_owned(), num(&r["v"])))
        .collect();
    assert_eq!(prom.len(), 2);
    assert_eq!(sql, prom);

    // Per-series sample counts over the whole hour, against count_over_time.
    let prom = promql(
        &s,
        "sum(count_over_time(requests_total[2h]))",
        T0 + (POINTS - 1) * STEP,
    );
    let j = sql_json(
        &s,
        "SELECT count(*) AS n FROM samples WHERE metric = 'requests_total'",
    );
    assert_eq!(num(&j["data"]["rows"][0]["n"]), num(&prom[0]["value"][1]));
    assert_eq!(num(&j["data"]["rows"][0]["n"]), (6 * POINTS) as f64);

    // prom_rate over the hour of one series = rate() over the same window (no resets,
    // straight line: extrapolation changes nothing).
    let end = T0 + (POINTS - 1) * STEP;
    let prom = promql(
        &s,
        "rate(requests_total{job=\"api\",instance=\"host-0\"}[1h])",
        end,
    );
    let j = sql_json(
        &s,
        &format!(
            "SELECT prom_rate(value, timestamp) AS r FROM requests_total WHERE job = 'api' AND instance = 'host-0' AND timestamp > to_timestamp_millis({})",
            end - 3_600_000
        ),
    );
    let ours = num(&j["data"]["rows"][0]["r"]);
    assert!((ours - 2.0).abs() < 1e-9, "{j}");
    assert!((ours - num(&prom[0]["value"][1])).abs() < 1e-9, "{prom:?}");

    // time_bucket + label columns + IN pushdown.
    let j = sql_json(
        &s,
        "SELECT time_bucket(INTERVAL '30 minutes', timestamp) AS b, count(*) AS n FROM requests_total WHERE instance IN ('host-0', 'host-1') GROUP BY b ORDER BY b",
    );
    let total: f64 = j["data"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| num(&r["n"]))
        .sum();
    assert_eq!(total, (4 * POINTS) as f64, "{j}");

    // CSV and Arrow IPC carry the same answer.
    let q = "SELECT job, max(value) AS m FROM requests_total GROUP BY job ORDER BY job";
    let csv = reqwest::blocking_client()
        .post(s.url("/api/v1/sql"), q.as_bytes().to_vec())
        .header("Content-Type", "application/sql")
        .header("Accept", "text/csv")
        .send()
        .expect("POST")
        .text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "job,m");
    assert_eq!(lines.len(), 3, "{csv}");
    let r = reqwest::blocking_client()
        .post(s.url("/api/v1/sql"), q.as_bytes().to_vec())
        .header("Content-Type", "application/sql")
        .header("Accept", "application/vnd.apache.arrow.stream")
        .send()
        .expect("POST");
    assert!(r.headers.contains("application/vnd.apache.arrow.stream"));
    let reader = StreamReader::try_new(std::io::Cursor::new(r.body.clone()), None).expect("IPC");
    let mut maxes = Vec::new();
    for b in reader {
        let b = b.expect("batch");
        let m = b.column(1).as_primitive::<Float64Type>();
        maxes.extend((0..m.len()).map(|i| m.value(i)));
    }
    let from_csv: Vec<f64> = lines[1..]
        .iter()
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect();
    assert_eq!(maxes, from_csv);

    // The same data straight from the Parquet files after a graceful stop.
    let j = sql_json(
        &s,
        "SELECT sum(value) AS v, count(*) AS n FROM requests_total",
    );
    let (sql_sum, sql_n) = (
        num(&j["data"]["rows"][0]["v"]),
        num(&j["data"]["rows"][0]["n"]),
    );
    s.stop();
    let (mut pq_sum, mut pq_n) = (0.0, 0.0);
    for e in std::fs::read_dir(dir.path().join("blocks"))
        .expect("blocks")
        .flatten()
    {
        let f = std::fs::File::open(e.path().join("samples.parquet")).expect("samples");
        for b in ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader")
        {
            let b = b.expect("batch");
            // The documented decoding of a version 2 samples.parquet, without Strata.
            let col = |n: &str| b.column_by_name(n).expect(n).clone();
            let (m, sh, e, f) = (
                col("value_mantissa"),
                col("value_shift"),
                col("value_exponent"),
                col("value_float"),
            );
            let m = m.as_primitive::<Int64Type>();
            let sh = sh.as_primitive::<Int8Type>();
            let e = e.as_primitive::<Int8Type>();
            let f = f.as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let int = (m.value(i) << sh.value(i)) as f64;
                let p = 10f64.powi(i32::from(e.value(i)).abs());
                pq_sum += match e.value(i) {
                    -128 => f.value(i),
                    x if x >= 0 => int * p,
                    _ => int / p,
                };
            }
            pq_n += b.num_rows() as f64;
        }
    }
    assert_eq!(pq_n, sql_n);
    assert!(
        (pq_sum - sql_sum).abs() < 1e-6 * sql_sum,
        "{pq_sum} vs {sql_sum}"
    );
}

#[test]
fn strata_sql_reads_a_live_data_directory_read_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    load(s.port);
    let wal_before: Vec<(String, u64)> = listing(&dir.path().join("wal"));
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["sql", "--format", "csv"])
        .arg(format!("--storage.tsdb.path={}", dir.path().display()))
        .arg("SELECT job, count(*) AS n FROM requests_total GROUP BY job ORDER BY job")
        .output()
        .expect("strata sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("job,n\napi,{}\ndb,{}", 3 * POINTS, 3 * POINTS)
    );
    assert_eq!(
        listing(&dir.path().join("wal")),
        wal_before,
        "the WAL is untouched"
    );
    // The server goes on writing and reading.
    load(s.port);
    let j = sql_json(&s, "SELECT count(*) AS n FROM series");
    assert_eq!(num(&j["data"]["rows"][0]["n"]), 6.0);
    s.stop();
}

fn listing(p: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn bad_and_writing_statements_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = Server::start(dir.path(), &[]);
    load(s.port);
    for (q, status) in [
        ("SELEC 1", 400),
        ("SELECT nope FROM requests_total", 400),
        ("SELECT * FROM no_such_metric", 400),
        ("CREATE TABLE t AS SELECT 1", 400),
        ("DROP TABLE requests_total", 400),
        ("COPY (SELECT 1) TO '/tmp/strata-sql-copy.csv'", 400),
        ("SET datafusion.execution.batch_size = 1", 400),
        ("", 400),
    ] {
        let r = reqwest::blocking_client()
            .post(
                s.url("/api/v1/sql"),
                format!("query={}", enc(q)).into_bytes(),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send()
            .expect("POST");
        assert_eq!(r.status().as_u16(), status, "{q}: {}", r.text());
        let j: Value = serde_json::from_str(&r.text()).expect("JSON");
        assert_eq!(j["status"], "error");
        assert_eq!(j["errorType"], "bad_data", "{q}");
    }
    assert!(!std::path::Path::new("/tmp/strata-sql-copy.csv").exists());
    let j = sql_json(&s, "SELECT count(*) AS n FROM requests_total");
    assert_eq!(
        num(&j["data"]["rows"][0]["n"]),
        (6 * POINTS) as f64,
        "data intact"
    );
    s.stop();
}
