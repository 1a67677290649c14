//! Downsampling and retention rules against the real binary (issue #27): 32 days of
//! remote-written series are cut into blocks, compacted and downsampled to 5m and 1h
//! Parquet blocks by the server's own maintenance; the dashboard query
//! `sum by (job) (rate(x[1h]))` at a 1h step gives the same answer from downsampled data
//! as from raw data (`max_source_resolution=0s`) and says which resolution answered; a
//! retention rule (`debug_.*` kept 2 days raw) removes exactly those series' old raw
//! blocks while their downsampled data and every other series stay; the SQL tables
//! `samples_5m`/`samples_1h` and pyarrow read the downsampled blocks.

mod common;

use std::path::Path;
use std::process::Command;

use common::rw1::{TimeSeries, WriteRequest, encode, label};
use common::{Server, enc, get_json, poll, post_write, reqwest};
use serde_json::Value;
use strata_ingest::remote_write::Sample;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const STEP: i64 = 60_000;

fn config(dir: &Path) -> String {
    let p = dir.join("prometheus.yml");
    std::fs::write(
        &p,
        r#"global:
  scrape_interval: 15s
scrape_configs: []
storage:
  tsdb:
    downsample:
      after: 40h
      retention_1h: 400d
    retention_rules:
      - matchers: ['{__name__=~"debug_.*"}']
        raw: 2d
"#,
    )
    .expect("config");
    format!("--config.file={}", p.display())
}

/// `dsx_requests_total{job, instance}` counters (with a reset), `debug_queue_depth{job}`
/// gauges, one sample a minute over `[start, end)`, written a day at a time.
fn load(s: &Server, start: i64, end: i64) {
    let mut t0 = start;
    while t0 < end {
        let t1 = (t0 + DAY).min(end);
        let ts: Vec<i64> = (t0..t1).step_by(STEP as usize).collect();
        let mut series = Vec::new();
        for (job, inst, rate) in [("api", "a", 3.0), ("api", "b", 5.0), ("db", "c", 7.0)] {
            series.push(TimeSeries {
                labels: vec![
                    label("__name__", "dsx_requests_total"),
                    label("instance", inst),
                    label("job", job),
                ],
                samples: ts
                    .iter()
                    .map(|&t| {
                        let k = (t - start) / STEP;
                        // A reset on day 10.
                        let v = if t - start < 10 * DAY { k } else { k - 14_400 };
                        Sample {
                            value: v as f64 * rate,
                            timestamp: t,
                        }
                    })
                    .collect(),
                ..Default::default()
            });
        }
        for job in ["api", "db"] {
            series.push(TimeSeries {
                labels: vec![label("__name__", "debug_queue_depth"), label("job", job)],
                samples: ts
                    .iter()
                    .map(|&t| Sample {
                        value: ((t / STEP) % 17) as f64,
                        timestamp: t,
                    })
                    .collect(),
                ..Default::default()
            });
        }
        let body = encode(&WriteRequest { timeseries: series });
        assert_eq!(post_write(s.port, body).expect("write"), 204);
        t0 = t1;
    }
}

fn metric(s: &Server, name: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn range(s: &Server, q: &str, (start, end, step): (i64, i64, i64), res: &str) -> Value {
    let mut url = format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}",
        enc(q),
        start / 1000,
        end / 1000,
        step / 1000
    );
    if !res.is_empty() {
        url.push_str(&format!("&max_source_resolution={res}"));
    }
    let v = get_json(&s.url(&url));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v
}

fn sql(s: &Server, q: &str) -> Value {
    let r = reqwest::blocking_client()
        .post(
            s.url("/api/v1/sql"),
            format!("query={}", enc(q)).into_bytes(),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send()
        .expect("POST");
    let v: Value = serde_json::from_str(&r.text()).expect("JSON");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v
}

/// Column `v` of the first row of an SQL answer, as a number.
fn sql_number(s: &Server, q: &str) -> f64 {
    let v = sql(s, q);
    let cell = &v["data"]["rows"][0]["v"];
    cell.as_f64()
        .or_else(|| cell.as_str().and_then(|x| x.parse().ok()))
        .unwrap_or_else(|| panic!("{q}: {v}"))
}

#[test]
fn thirty_days_downsampled_answer_as_raw_and_retention_rules_apply() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let cfg = config(dir.path());
    let s = Server::start(
        &data,
        &[
            &cfg,
            "--storage.tsdb.retention.time=60d",
            "--web.enable-admin-api",
        ],
    );
    let end = (common::now_ms() - HOUR) / HOUR * HOUR;
    let start = end - 32 * DAY;
    load(&s, start, end);
    // The server's maintenance downsamples, compacts and applies the rule in passes:
    // settled once the debug series' raw data is past the rule and nothing changed for
    // a few seconds.
    let oldest = |m: &str| {
        sql_number(
            &s,
            &format!(
                "SELECT CAST(min(timestamp) AS BIGINT) AS v FROM samples WHERE metric = '{m}'"
            ),
        ) as i64
    };
    let mut last = String::new();
    let mut since = std::time::Instant::now();
    let done = poll(240, || {
        let state = format!(
            "{} {} {}",
            metric(&s, "strata_tsdb_downsampled_blocks{resolution=\"1h\"}"),
            metric(&s, "strata_tsdb_retention_rule_rewrites_total"),
            metric(&s, "prometheus_tsdb_compactions_total"),
        );
        if state != last {
            since = std::time::Instant::now();
            last = state;
        }
        // Maintenance runs every 5 s: unchanged over more than one pass.
        (metric(&s, "strata_tsdb_downsampled_blocks{resolution=\"1h\"}") > 0.0
            && oldest("debug_queue_depth") > start + 20 * DAY
            && since.elapsed() > std::time::Duration::from_secs(6))
        .then_some(())
    });
    assert!(done.is_some(), "not settled: {last}");

    // 1. The dashboard query over the downsampled days, raw and downsampled.
    let q = "sum by (job) (rate(dsx_requests_total[1h]))";
    let span = (start + 2 * DAY, end - 3 * DAY, HOUR);
    let raw = range(&s, q, span, "0s");
    let ds = range(&s, q, span, "");
    let infos = ds["infos"].to_string();
    assert!(
        infos.contains("downsampled data at 1h resolution"),
        "{infos}"
    );
    assert!(!raw["infos"].to_string().contains("downsampled"), "{raw}");
    let (r, d) = (&raw["data"]["result"], &ds["data"]["result"]);
    assert_eq!(r.as_array().map(Vec::len), Some(2), "{raw}");
    assert_eq!(r, d, "downsampled and raw answers differ");
    // A 5m grid (shorter range) reads the 5m resolution.
    let span5 = (start + 3 * DAY, start + 4 * DAY, 300_000);
    let q5 = "max_over_time(dsx_requests_total[15m])";
    let ds5 = range(&s, q5, span5, "");
    assert!(
        ds5["infos"].to_string().contains("at 5m resolution"),
        "{ds5}"
    );
    assert_eq!(range(&s, q5, span5, "0s")["data"], ds5["data"]);
    // Capped by the parameter; a bad one is refused.
    let capped = range(&s, q, span, "5m");
    assert!(
        capped["infos"].to_string().contains("at 5m resolution"),
        "{capped}"
    );
    assert_eq!(capped["data"]["result"], raw["data"]["result"]);
    let bad = get_json(
        &s.url("/api/v1/query_range?query=up&start=0&end=60&step=15&max_source_resolution=soon"),
    );
    assert_eq!(bad["errorType"], "bad_data", "{bad}");

    // 2. The retention rule: debug_ series lost their raw blocks older than 2 days (block
    // granular: a block goes once all of it is older), the other series kept all theirs,
    // and the debug series' downsampled data remains.
    assert_eq!(
        oldest("dsx_requests_total"),
        start,
        "a kept series lost data"
    );
    let cutoff = end - STEP - 2 * DAY;
    let debug_oldest = oldest("debug_queue_depth");
    assert!(
        debug_oldest > start + 20 * DAY && debug_oldest <= cutoff,
        "debug raw data starts at {} days",
        (debug_oldest - start) as f64 / DAY as f64
    );
    let old = range(
        &s,
        "max_over_time(debug_queue_depth[1h])",
        (start + 2 * DAY, start + 5 * DAY, HOUR),
        "",
    );
    assert_eq!(
        old["data"]["result"][0]["values"].as_array().map(Vec::len),
        Some(73),
        "the downsampled debug data is gone: {old}"
    );
    assert_eq!(
        range(
            &s,
            "max_over_time(debug_queue_depth[1h])",
            (start + 2 * DAY, start + 5 * DAY, HOUR),
            "0s"
        )["data"]["result"],
        serde_json::json!([]),
        "raw debug data older than the rule survived"
    );

    // 3. SQL: the 1h table's counts add up to the raw samples of the same windows.
    let (a, z) = (start + 3 * DAY, start + 6 * DAY);
    let ds_count = sql_number(
        &s,
        &format!(
            "SELECT CAST(sum(count) AS BIGINT) AS v FROM samples_1h WHERE metric = 'dsx_requests_total' \
             AND timestamp > to_timestamp_millis({a}) AND timestamp <= to_timestamp_millis({z})"
        ),
    );
    let raw_count = sql_number(
        &s,
        &format!(
            "SELECT count(*) AS v FROM samples WHERE metric = 'dsx_requests_total' \
             AND timestamp > to_timestamp_millis({}) AND timestamp <= to_timestamp_millis({})",
            a - HOUR,
            z - HOUR
        ),
    );
    assert_eq!(
        ds_count, raw_count,
        "samples_1h counts differ from raw samples"
    );
    assert_eq!(ds_count, (3 * DAY / STEP * 3) as f64);

    // 4. Deleting a series deletes its downsampled windows too.
    let del = reqwest::blocking_client()
        .post(
            s.url(&format!(
                "/api/v1/admin/tsdb/delete_series?match[]={}",
                enc(r#"dsx_requests_total{job="db"}"#)
            )),
            Vec::new(),
        )
        .send()
        .expect("delete");
    assert_eq!(del.status().as_u16(), 204, "{}", del.text());
    let after = range(&s, q, span, "");
    assert!(
        after["infos"].to_string().contains("downsampled data"),
        "{after}"
    );
    let jobs: Vec<&str> = after["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["metric"]["job"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        jobs,
        vec!["api"],
        "a deleted series is still answered: {after}"
    );
    s.stop();

    // 5. pyarrow reads the downsampled blocks: one row per series and window.
    let probe = Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .status();
    if !matches!(probe, Ok(st) if st.success()) {
        eprintln!("SKIP pyarrow check: python3 with pyarrow is not installed");
        return;
    }
    let script = format!(
        "import pyarrow.parquet as pq, glob, json\n\
         files = glob.glob('{0}/downsampled/1h/*/samples.parquet')\n\
         t = pq.read_table(files[0])\n\
         assert t.column_names == ['series_id','timestamp','value','count','sum','min','max','first_timestamp','first_value','last_timestamp','counter_correction'], t.column_names\n\
         s = pq.read_table(files[0].replace('samples.parquet', 'series.parquet')).to_pylist()\n\
         ends = [x.timestamp() for x in t.column('timestamp').to_pylist()]\n\
         assert all(int(e) % 3600 == 0 for e in ends)\n\
         print(json.dumps({{'files': len(files), 'rows': t.num_rows, 'metrics': sorted(set(x['metric'] for x in s)), 'max_count': max(t.column('count').to_pylist())}}))",
        data.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["files"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert_eq!(v["max_count"], 60, "{v}");
    assert_eq!(
        v["metrics"],
        serde_json::json!(["debug_queue_depth", "dsx_requests_total"]),
        "{v}"
    );
}
