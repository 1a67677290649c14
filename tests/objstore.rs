//! Blocks in object storage, against a real S3 server (moto's, started here):
//! a node uploads its blocks with its external labels, pyarrow reads them from the bucket,
//! a node whose data directory is gone answers the old range from the bucket, a store
//! reads every node's blocks with their external labels (replicas merged), and of two
//! compactors started at once only one compacts.
//!
//! Skipped (and said so) when `moto_server` (PyPI `moto[server]`) is not installed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{Server, eventually, free_port, get_json, now_ms, reqwest};

const BUCKET: &str = "strata-blocks";

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto S3 server with an empty bucket, or `None` (skip) when moto is not installed.
fn moto() -> Option<Moto> {
    if !common::installed("moto_server") {
        eprintln!("skipping: moto_server (PyPI moto[server]) is not installed");
        return None;
    }
    for _ in 0..5 {
        if let Some(m) = moto_on(free_port()) {
            return Some(m);
        }
    }
    panic!("moto_server did not start");
}

/// moto on `port` with an empty bucket, once it answers (`None`: it did not within 20 s).
fn moto_on(port: u16) -> Option<Moto> {
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let m = Moto { child, port };
    let up = eventually(20, || {
        reqwest::blocking_client()
            .request(
                "PUT",
                format!("http://127.0.0.1:{port}/{BUCKET}"),
                Vec::new(),
            )
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200)
    });
    up.then_some(m)
}

fn bucket_file(dir: &Path, port: u16) -> String {
    let p = dir.join("bucket.yml");
    std::fs::write(
        &p,
        format!(
            "type: S3\nconfig:\n  bucket: {BUCKET}\n  endpoint: 127.0.0.1:{port}\n  access_key: test\n  secret_key: test\n  insecure: true\n"
        ),
    )
    .expect("write bucket.yml");
    p.display().to_string()
}

fn config_file(dir: &Path, replica: &str) -> String {
    let p = dir.join(format!("prometheus-{replica}.yml"));
    std::fs::write(
        &p,
        format!(
            "global:\n  scrape_interval: 15s\n  external_labels:\n    cluster: c1\n    replica: {replica}\n"
        ),
    )
    .expect("write config");
    p.display().to_string()
}

/// A node's flags: the bucket, its configuration, a 1s bucket sync, and `extra`.
fn node_flags(bucket: &str, cfg: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("--objstore.config-file={bucket}"),
        format!("--config.file={cfg}"),
        "--objstore.sync-interval=1s".to_owned(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `series` series, one sample a minute over `[t0, t1)`, written in slices.
fn write(port: u16, series: usize, t0: i64, t1: i64) {
    let per = ((t1 - t0) / 60_000) as usize;
    let mut k = 0;
    while k < per {
        let n = 60.min(per - k);
        let body = common::write_body(0..series, t0 + k as i64 * 60_000, n, 60_000);
        assert_eq!(common::post_write(port, body).expect("write"), 204);
        k += n;
    }
}

fn metric(s: &Server, name: &str) -> f64 {
    let text = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .map(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Samples of all series over the last 13h as the server sees them.
fn count(s: &Server, at: i64) -> f64 {
    let v = get_json(&s.url(&format!(
        "/api/v1/query?query=sum(count_over_time({{job=%22crash%22}}[13h]))&time={}",
        at as f64 / 1000.0
    )));
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0)
}

fn query_range(s: &Server, start: i64, end: i64) -> serde_json::Value {
    let v = get_json(&s.url(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=60",
        common::enc("{job=\"crash\"}"),
        start as f64 / 1000.0,
        end as f64 / 1000.0
    )));
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].clone()
}

/// Python with pyarrow lists the bucket, checks every block's meta.json and reads its
/// samples.parquet from S3; prints `blocks rows`.
fn pyarrow_read(port: u16) -> Option<(u64, u64)> {
    let probe = Command::new("python3")
        .args(["-c", "import pyarrow.fs, pyarrow.parquet"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping the pyarrow check: python3 with pyarrow is not installed");
        return None;
    }
    let script = format!(
        r#"
import json, pyarrow.fs as fs, pyarrow.parquet as pq
s3 = fs.S3FileSystem(endpoint_override="127.0.0.1:{port}", scheme="http", access_key="test", secret_key="test", region="us-east-1")
metas = {{}}
for d in s3.get_file_info(fs.FileSelector("{BUCKET}")):
    if d.type != fs.FileType.Directory:
        continue
    with s3.open_input_file(d.path + "/meta.json") as f:
        metas[d.path] = json.load(f)
# A block whose compaction sources another block holds as well is superseded by it.
src = {{p: set(m["compaction"]["sources"]) for p, m in metas.items()}}
live = [p for p in metas if not any(q != p and src[p] <= src[q] and (src[p] < src[q] or metas[q]["ulid"] > metas[p]["ulid"]) for q in metas)]
blocks = rows = 0
for p in live:
    meta = metas[p]
    assert meta["thanos"]["labels"] == {{"cluster": "c1", "replica": "a"}}, meta
    t = pq.read_table(p + "/samples.parquet", filesystem=s3)
    assert t.num_rows == meta["stats"]["numSamples"], (t.num_rows, meta)
    assert t.column_names[:3] == ["series_id", "timestamp", "value_mantissa"], t.column_names
    blocks += 1
    rows += t.num_rows
print(blocks, rows)
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|x| x.parse::<u64>().unwrap_or(0));
    Some((it.next()?, it.next()?))
}

/// A node over the bucket of `moto` (external labels of replica "a") given `extra` flags,
/// written `series` series over the last 12h.
struct Written {
    dir: tempfile::TempDir,
    bucket: String,
    data: std::path::PathBuf,
    flags: Vec<String>,
    server: Server,
    now: i64,
    t0: i64,
    /// The samples the node counts.
    total: f64,
}

fn written_node(moto: &Moto, series: usize, extra: &[&str]) -> Written {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = bucket_file(dir.path(), moto.port);
    let cfg = config_file(dir.path(), "a");
    let data = dir.path().join("data");
    let flags = node_flags(&bucket, &cfg, extra);
    let server = Server::start(&data, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let now = now_ms();
    let t0 = (now - 12 * 3_600_000) / 60_000 * 60_000;
    write(server.port, series, t0, now);
    let total = count(&server, now);
    Written {
        dir,
        bucket,
        data,
        flags,
        server,
        now,
        t0,
        total,
    }
}

#[test]
fn blocks_reach_the_bucket_and_a_node_without_its_data_answers_from_it() {
    let Some(moto) = moto() else { return };
    let series = 20;
    let Written {
        dir,
        bucket,
        data,
        flags,
        server: s,
        now,
        t0,
        total,
    } = written_node(&moto, series, &[]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    assert!(total > 0.0);
    // The head spans 12h: maintenance cuts blocks, and ships them.
    assert!(
        eventually(60, || metric(&s, "thanos_shipper_uploads_total") >= 2.0),
        "no block uploaded"
    );
    let old = query_range(&s, t0, t0 + 3 * 3_600_000);
    assert_eq!(old.as_array().map(Vec::len), Some(series));
    // A graceful stop writes the rest of the head to blocks and ships them too.
    s.stop();
    if let Some((blocks, rows)) = pyarrow_read(moto.port) {
        eprintln!("pyarrow read {rows} samples in {blocks} blocks from the bucket");
        assert!(blocks >= 1, "{blocks} blocks");
        assert_eq!(rows as f64, total, "every sample is in the bucket");
    }
    // The data directory is lost; a node with the same external labels reads it all back.
    std::fs::remove_dir_all(&data).expect("remove data");
    let s = Server::start(&data, &flags);
    assert_eq!(count(&s, now), total);
    assert_eq!(query_range(&s, t0, t0 + 3 * 3_600_000), old);
    assert!(metric(&s, "strata_objstore_blocks_loaded") >= 1.0);
    // Read twice: the second read of the same pages is served by the cache.
    let misses = metric(&s, "strata_objstore_cache_misses_total");
    assert_eq!(query_range(&s, t0, t0 + 3 * 3_600_000), old);
    assert_eq!(metric(&s, "strata_objstore_cache_misses_total"), misses);
    assert!(metric(&s, "strata_objstore_cache_hits_total") > 0.0);
    // A node with other external labels does not take this node's blocks for its own.
    s.stop();
    let cfg_b = config_file(dir.path(), "b");
    let data_b = dir.path().join("data-b");
    let s = Server::start(
        &data_b,
        &[
            &format!("--objstore.config-file={bucket}"),
            &format!("--config.file={cfg_b}"),
        ],
    );
    assert_eq!(count(&s, now), 0.0);
    // Replica b gets the same data and ships it too.
    write(s.port, series, t0, now);
    s.stop();
    // A store over the whole bucket: every node's blocks, their series labelled with the
    // node's external labels; with --query.replica-label the two replicas are one.
    let store = |data: &str, extra: &[&str]| {
        let mut args = vec![
            format!("--objstore.config-file={bucket}"),
            "--objstore.read-all-blocks".to_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(&dir.path().join(data), &args)
    };
    let s = store("store-raw", &[]);
    assert_eq!(count(&s, now), 2.0 * total);
    let r = get_json(&s.url(&format!(
        "/api/v1/query?query=count+by+(cluster,replica)({{job=%22crash%22}})&time={}",
        now as f64 / 1000.0 - 60.0
    )));
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["data"]["result"][0]["metric"]["cluster"], "c1", "{r}");
    s.stop();
    let s = store("store-dedup", &["--query.replica-label=replica"]);
    assert_eq!(count(&s, now), total);
    let r = query_range(&s, t0, t0 + 3 * 3_600_000);
    assert_eq!(r.as_array().map(Vec::len), Some(series));
    assert!(r[0]["metric"].get("replica").is_none() && r[0]["metric"]["cluster"] == "c1");
    s.stop();
}

#[test]
fn two_compactors_started_at_once_never_both_compact() {
    let Some(moto) = moto() else { return };
    // 20h retention: the node's own blocks stay 2h (its compaction goes up to a tenth of
    // retention), so the bucket gets level-1 blocks to compact.
    let w = written_node(&moto, 10, &["--storage.tsdb.retention.time=20h"]);
    let (bucket, data, now, total) = (&w.bucket, &w.data, w.now, w.total);
    let flags: Vec<&str> = w.flags.iter().map(String::as_str).collect();
    w.server.stop();
    let compact = || {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "compact",
                &format!("--objstore.config-file={bucket}"),
                "--delete-delay=0s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strata compact")
    };
    let (a, b) = (compact(), compact());
    let outs = [
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    ];
    let mut compactions = 0;
    let mut ran = 0;
    for o in &outs {
        match o.status.code() {
            Some(0) => {
                ran += 1;
                let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
                compactions += r["compactions"].as_u64().unwrap_or(0);
            }
            Some(3) => assert!(
                String::from_utf8_lossy(&o.stderr).contains("holds the bucket's lease"),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            other => panic!(
                "strata compact exited with {other:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
    assert!(ran >= 1);
    // The 6h windows the data covers were merged once, not once per compactor.
    assert!(compactions >= 1, "nothing compacted");
    eprintln!("{ran} compactor(s) ran, {compactions} compaction(s)");
    let again = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "compact",
            &format!("--objstore.config-file={bucket}"),
            "--delete-delay=0s",
        ])
        .output()
        .expect("strata compact");
    assert!(again.status.success());
    let r: serde_json::Value = serde_json::from_slice(&again.stdout).expect("report JSON");
    assert_eq!(r["compactions"], 0, "{r}");
    assert_eq!(r["marked_superseded"], 0, "{r}");
    // Every sample is still there, read from the compacted bucket by a fresh node.
    std::fs::remove_dir_all(data).expect("remove data");
    let s = Server::start(data, &flags);
    assert_eq!(count(&s, now), total);
    s.stop();
    // A held lease: the compactor says so and exits with 3.
    let lease = format!(
        "{{\"holder\":\"other\",\"acquired\":{},\"expires\":{}}}",
        now_ms(),
        now_ms() + 600_000
    );
    let put = reqwest::blocking_client()
        .request(
            "PUT",
            format!(
                "http://127.0.0.1:{}/{BUCKET}/compactor-lease.json",
                moto.port
            ),
            lease.into_bytes(),
        )
        .send()
        .expect("put lease");
    assert_eq!(put.status().as_u16(), 200);
    let held = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["compact", &format!("--objstore.config-file={bucket}")])
        .output()
        .expect("strata compact");
    assert_eq!(held.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&held.stderr).contains("other"));
}

/// A bucket that is down neither stops a node from starting and ingesting nor loses
/// blocks: uploads are retried until it is back.
#[test]
fn a_bucket_down_at_start_gets_the_blocks_once_it_is_back() {
    if !common::installed("moto_server") {
        eprintln!("skipping: moto_server (PyPI moto[server]) is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bucket = bucket_file(dir.path(), port);
    let cfg = config_file(dir.path(), "a");
    let flags = node_flags(&bucket, &cfg, &[]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = Server::start(&dir.path().join("data"), &flags);
    let now = now_ms();
    let t0 = (now - 12 * 3_600_000) / 60_000 * 60_000;
    write(s.port, 5, t0, now);
    assert!(
        eventually(90, || metric(&s, "strata_objstore_failures_total") >= 1.0),
        "no failed upload counted"
    );
    assert_eq!(metric(&s, "thanos_shipper_uploads_total"), 0.0);
    // The bucket comes up on its address: the blocks follow.
    let _moto = moto_on(port).expect("moto_server did not start");
    assert!(
        eventually(120, || metric(&s, "thanos_shipper_uploads_total") >= 1.0),
        "blocks not uploaded once the bucket was back"
    );
    assert!(count(&s, now) > 0.0);
    s.stop();
}

/// A deletion (`delete_series`) reaches the bucket: a node that lost its data directory
/// reads the history back from the bucket without the deleted series.
#[test]
fn a_deletion_reaches_the_bucket() {
    let Some(moto) = moto() else { return };
    let series = 20;
    let w = written_node(&moto, series, &["--web.enable-admin-api"]);
    let (s, now, total, data) = (w.server, w.now, w.total, w.data);
    let flags: Vec<&str> = w.flags.iter().map(String::as_str).collect();
    assert!(
        eventually(60, || metric(&s, "thanos_shipper_uploads_total") >= 2.0),
        "no block uploaded"
    );
    let r = reqwest::blocking_client()
        .post(
            s.url(&format!(
                "/api/v1/admin/tsdb/delete_series?match[]={}",
                common::enc("{instance=\"host-3\"}")
            )),
            Vec::new(),
        )
        .send()
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204, "{}", r.text());
    let left = total - total / series as f64;
    assert_eq!(count(&s, now), left);
    s.stop();
    // The local copies are gone: what the bucket holds has the deletion.
    std::fs::remove_dir_all(&data).expect("remove data");
    let s = Server::start(&data, &flags);
    assert_eq!(count(&s, now), left);
    s.stop();
}
