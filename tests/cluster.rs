//! Several nodes on one machine: HA replicas deduplicated by a querier
//! (`--query.replica-label`), and a front door (`--distributor.ingester`) replicating remote
//! writes to ingesters so that an acknowledged sample survives kill -9 of any one of them,
//! and answering queries from the ingesters — by running them on the ingesters' workers
//! (`--distributed.worker`), or by remote reads.

mod common;

use std::path::Path;

use common::{Exporter, Server, eventually, free_port, get_json, now_ms, reqwest};

/// A querier: a node that stores nothing itself and reads `nodes` by remote read.
fn querier(dir: &Path, name: &str, nodes: &[u16], extra: &[&str]) -> Server {
    let mut cfg = String::from("global:\n  scrape_interval: 15s\nremote_read:\n");
    for p in nodes {
        cfg.push_str(&format!(
            "  - url: http://127.0.0.1:{p}/api/v1/read\n    read_recent: true\n    remote_timeout: 2s\n"
        ));
    }
    let f = dir.join(format!("{name}.yml"));
    std::fs::write(&f, cfg).expect("write config");
    let mut args = vec![format!("--config.file={}", f.display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&dir.join(format!("{name}-data")), &args)
}

fn result(s: &Server, q: &str, at: f64) -> Vec<serde_json::Value> {
    let v = get_json(&s.url(&format!("/api/v1/query?query={}&time={at}", common::enc(q))));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value(r: &[serde_json::Value]) -> f64 {
    r.first()
        .and_then(|x| x["value"][1].as_str())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_querier_deduplicates_replicas_and_a_killed_replica_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start("# TYPE ha_test_requests counter\nha_test_requests 42\n");
    let replica = |name: &str| {
        let f = dir.path().join(format!("{name}.yml"));
        std::fs::write(
            &f,
            format!(
                "global:\n  scrape_interval: 1s\n  external_labels:\n    replica: {name}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
                exporter.addr()
            ),
        )
        .expect("write config");
        Server::start(
            &dir.path().join(format!("{name}-data")),
            &[&format!("--config.file={}", f.display())],
        )
    };
    let a = replica("a");
    let b = replica("b");
    let q = querier(
        dir.path(),
        "querier",
        &[a.port, b.port],
        &["--query.replica-label=replica"],
    );
    let raw = querier(dir.path(), "raw", &[a.port, b.port], &[]);
    // Both replicas scrape for a while.
    assert!(eventually(30, || {
        value(&result(
            &q,
            "count_over_time(ha_test_requests[30s])",
            now_ms() as f64 / 1000.0,
        )) >= 8.0
    }));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let both = now_ms() as f64 / 1000.0;
    // Without deduplication the querier sees two series, one per replica.
    let r = result(&raw, "ha_test_requests", both);
    assert_eq!(r.len(), 2, "{r:?}");
    // With it: one series, without the replica label, one sample per scrape interval.
    let r = result(&q, "ha_test_requests", both);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0]["metric"].get("replica").is_none(), "{r:?}");
    let per_8s = value(&result(&q, "count_over_time(ha_test_requests[8s])", both));
    assert!(
        (6.0..=10.0).contains(&per_8s),
        "{per_8s} samples in 8s at 1s"
    );
    // Replica a dies mid-stream; b goes on.
    a.kill9();
    std::thread::sleep(std::time::Duration::from_secs(8));
    let after = now_ms() as f64 / 1000.0;
    let r = result(&q, "ha_test_requests", after);
    assert_eq!(r.len(), 1, "{r:?}");
    // Complete: a sample every second through the kill, and still none doubled.
    let v = get_json(&q.url(&format!(
        "/api/v1/query_range?query={}&start={}&end={after}&step=1",
        common::enc("count_over_time(ha_test_requests[3s])"),
        both - 4.0
    )));
    let points = v["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(points.len() >= 12, "{v}");
    for p in &points {
        let n: f64 = p[1].as_str().and_then(|x| x.parse().ok()).unwrap_or(0.0);
        assert!(
            (2.0..=4.0).contains(&n),
            "{n} samples in 3s at {}: {v}",
            p[0]
        );
    }
    drop(b);
}

/// A front door (and querier) over `ingesters`.
fn front_door(dir: &Path, ingesters: &[u16], rf: usize) -> Server {
    front_door_with(dir, ingesters, rf, &[])
}

/// A front door over `ingesters` whose queries run on their `workers`.
fn front_door_with(dir: &Path, ingesters: &[u16], rf: usize, workers: &[u16]) -> Server {
    let mut args = vec![
        format!("--distributor.replication-factor={rf}"),
        "--distributor.remote-timeout=5s".to_owned(),
    ];
    for p in ingesters {
        args.push(format!("--distributor.ingester=http://127.0.0.1:{p}"));
    }
    for p in workers {
        args.push(format!("--distributed.worker=http://127.0.0.1:{p}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&dir.join("front-door"), &args)
}

#[test]
fn an_acknowledged_write_survives_kill9_of_any_single_ingester() {
    for victim in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let ingesters: Vec<Server> = (0..3)
            .map(|i| Server::start(&dir.path().join(format!("ingester-{i}")), &[]))
            .collect();
        let ports: Vec<u16> = ingesters.iter().map(|s| s.port).collect();
        let d = front_door(dir.path(), &ports, 3);
        let t0 = now_ms() - 600_000;
        let mut acked = 0u64;
        let mut ingesters: Vec<Option<Server>> = ingesters.into_iter().map(Some).collect();
        for i in 0..30 {
            if i == 12 {
                ingesters[victim].take().expect("victim").kill9();
            }
            let body = common::write_body(0..20, t0 + i * 1000, 1, 1000);
            match common::post_write(d.port, body).expect("write") {
                204 => acked += 20,
                s => panic!("write {i} answered {s} with one ingester down (quorum 2 of 3)"),
            }
        }
        // Every acknowledged sample is readable through the front door (from the two
        // survivors), each once.
        let at = (t0 + 40_000) as f64 / 1000.0;
        let n = value(&result(&d, "sum(count_over_time({job=\"crash\"}[2m]))", at));
        assert_eq!(n, acked as f64, "victim {victim}");
        // A request of metadata only reaches the ingesters too.
        let meta = strata_ingest::remote_write::WriteRequest {
            timeseries: Vec::new(),
            metadata: vec![strata_ingest::remote_write::MetricMetadata {
                r#type: 1,
                metric_family_name: "test_metric_0".into(),
                help: "Written through the front door.".into(),
                unit: String::new(),
            }],
        };
        let body = strata_ingest::remote_write::encode(&meta);
        assert_eq!(common::post_write(d.port, body).expect("write"), 204);
        for s in ingesters.iter().flatten() {
            let m = get_json(&s.url("/api/v1/metadata?metric=test_metric_0"));
            assert_eq!(
                m["data"]["test_metric_0"][0]["help"], "Written through the front door.",
                "{m}"
            );
        }
        // A second ingester down: no quorum, so no acknowledgement (503, retried by senders).
        let second = (victim + 1) % 3;
        ingesters[second].take().expect("second").kill9();
        let body = common::write_body(0..20, t0 + 31_000, 1, 1000);
        assert_eq!(common::post_write(d.port, body).expect("write"), 503);
        // A body past the remote-write limit is refused before it is read on (413).
        if victim == 0 {
            let big = vec![0u8; strata_ingest::remote_write::MAX_DECOMPRESSED + 1];
            assert_eq!(common::post_write(d.port, big).expect("write"), 413);
        }
        // A malformed body is the sender's error.
        assert_eq!(
            common::post_write(d.port, b"not snappy".to_vec()).expect("write"),
            400
        );
        let m = reqwest::blocking_client()
            .get(d.url("/metrics"))
            .send()
            .expect("metrics")
            .text();
        assert!(m.contains("strata_distributor_unavailable_total 1"), "{m}");
    }
}

fn counter(s: &Server, name: &str) -> f64 {
    let m = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from\n{m}"))
}

#[test]
fn a_front_door_runs_queries_on_the_ingesters_workers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut ingesters: Vec<Option<Server>> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            Some(Server::start(
                &dir.path().join(format!("ingester-{i}")),
                &[&format!("--distributed.listen-address=127.0.0.1:{w}")],
            ))
        })
        .collect();
    let ports: Vec<u16> = ingesters.iter().flatten().map(|s| s.port).collect();
    let d = front_door_with(dir.path(), &ports, 3, &workers);
    let t0 = now_ms() - 600_000;
    let write = |i: i64| {
        let body = common::write_body(0..20, t0 + i * 1000, 1, 1000);
        assert_eq!(
            common::post_write(d.port, body).expect("write"),
            204,
            "write {i}"
        );
    };
    for i in 0..30 {
        write(i);
    }
    let at = (t0 + 40_000) as f64 / 1000.0;
    let count = |q: &str| value(&result(&d, q, at));
    // Every ingester holds every series (replication factor 3), and each is read once.
    assert_eq!(count("sum(count_over_time({job=\"crash\"}[2m]))"), 600.0);
    assert_eq!(count("count(count by (__name__) ({job=\"crash\"}))"), 7.0);
    assert_eq!(count("max(test_metric_3)"), 17_000.0);
    let r = result(&d, "sum by (instance) (rate(test_metric_0[1m]))", at);
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(counter(&d, "strata_distributed_queries_total") >= 4.0);
    assert_eq!(counter(&d, "strata_distributed_fallbacks_total"), 0.0);
    // An ingester killed: its worker is gone, and queries are answered by remote reads
    // of the two left, counted.
    ingesters[1].take().expect("ingester").kill9();
    assert_eq!(count("sum(count_over_time({job=\"crash\"}[2m]))"), 600.0);
    assert!(counter(&d, "strata_distributed_fallbacks_total") >= 1.0);
    // Writes go on (quorum 2 of 3); the dead ingester misses them, so a query over them
    // reads every replica, and sees them all.
    for i in 30..35 {
        write(i);
    }
    let at = (t0 + 45_000) as f64 / 1000.0;
    let n = value(&result(&d, "sum(count_over_time({job=\"crash\"}[2m]))", at));
    assert_eq!(n, 700.0);
    let gaps = std::fs::read_to_string(dir.path().join("front-door/distributor-gaps.json"))
        .expect("the gaps are kept");
    assert!(gaps.contains(&(t0 + 30_000).to_string()), "{gaps}");
    assert!(counter(&d, "strata_distributed_replica_reads_total") >= 1.0);
}
