//! Distributed PromQL: three nodes hold the series the front door's ring gives them (one
//! copy each, or three), each runs its worker on a port of its own, and a querier with no
//! data of its own answers every query exactly as one node holding everything does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_engine::distributed::BoundWorker;
use strata_engine::{Engine, EngineOptions, PromValue};
use strata_ring::{Ring, labels_hash};
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

const HOUR: i64 = 3_600_000;

/// Counters, gauges and classic histogram buckets over an hour at 15 s.
fn dataset() -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    let ts = |i: i64| i * 15_000;
    for (j, job) in ["api", "db", "web"].into_iter().enumerate() {
        for inst in 0..8 {
            // Distinct per series, so that no two series tie (topk's order among equals
            // is the order series arrive in, which is not the same on one node and many).
            let seed = (j * 8 + inst) as u64 * 7 + 3;
            let inst = format!("10.0.0.{inst}:9100");
            let counter = (0..=240)
                .map(|i| {
                    (
                        ts(i),
                        (i * (seed as i64 + 1)) as f64 + if i > 120 { 0.0 } else { 5.0 },
                    )
                })
                .collect();
            out.push(SeriesSamples {
                histograms: Vec::new(),
                labels: Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("job", job),
                    ("instance", inst.as_str()),
                    ("code", if seed.is_multiple_of(3) { "500" } else { "200" }),
                ]),
                samples: counter,
            });
            let gauge = (0..=240)
                .map(|i| (ts(i), ((i * 7 + seed as i64) % 50) as f64 * 1.5))
                .collect();
            out.push(SeriesSamples {
                histograms: Vec::new(),
                labels: Labels::from_pairs([
                    ("__name__", "mem_bytes"),
                    ("job", job),
                    ("instance", inst.as_str()),
                ]),
                samples: gauge,
            });
            for (k, le) in ["0.1", "0.5", "1", "+Inf"].into_iter().enumerate() {
                let bucket = (0..=240)
                    .map(|i| (ts(i), (i * (k as i64 + 1) * (seed as i64 % 5 + 1)) as f64))
                    .collect();
                out.push(SeriesSamples {
                    histograms: Vec::new(),
                    labels: Labels::from_pairs([
                        ("__name__", "latency_seconds_bucket"),
                        ("job", job),
                        ("instance", inst.as_str()),
                        ("le", le),
                    ]),
                    samples: bucket,
                });
            }
        }
    }
    out
}

async fn db(series: &[SeriesSamples]) -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = Options::new(dir.path());
    o.retention_time_ms = None;
    let db = Db::open(o).await.expect("open");
    if !series.is_empty() {
        db.append(series).expect("append");
    }
    (dir, db)
}

/// Three nodes holding what the ring gives them at `rf`, their workers serving.
struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    members: Vec<String>,
    workers: Vec<url::Url>,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

async fn cluster(all: &[SeriesSamples], rf: usize) -> Cluster {
    cluster_with(all, rf, EngineOptions::default()).await
}

/// As [`cluster`], the nodes' engines with `opts` (their limits).
async fn cluster_with(all: &[SeriesSamples], rf: usize, opts: EngineOptions) -> Cluster {
    let members: Vec<String> = (0..3)
        .map(|i| format!("http://ingester-{i}:9090"))
        .collect();
    let ring = Ring::new(&members, rf);
    let mut per: Vec<Vec<SeriesSamples>> = vec![Vec::new(); 3];
    let mut owners = Vec::new();
    for s in all {
        ring.owners(
            labels_hash(s.labels.iter().map(|l| (&*l.name, &*l.value))),
            &mut owners,
        );
        for &o in &owners {
            per[o].push(s.clone());
        }
    }
    let (mut dirs, mut workers, mut stop) = (Vec::new(), Vec::new(), Vec::new());
    for part in per {
        let (dir, db) = db(&part).await;
        let engine = Engine::new(db, opts.clone());
        let bound = BoundWorker::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        workers.push(url::Url::parse(&format!("http://{}", bound.local_addr())).expect("url"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let env = engine.worker_env();
        tokio::spawn(async move {
            let _ = bound
                .serve(env, async {
                    let _ = rx.await;
                })
                .await;
        });
        dirs.push(dir);
        stop.push(tx);
    }
    Cluster {
        _dirs: dirs,
        members,
        workers,
        stop,
    }
}

/// A querier over the cluster `c` whose own storage holds `own`.
async fn querier(c: &Cluster, own: &[SeriesSamples]) -> (tempfile::TempDir, Engine) {
    let (dir, db) = db(own).await;
    let e = Engine::new(db, EngineOptions::default())
        .with_cluster(c.members.clone(), c.workers.clone())
        .expect("cluster");
    (dir, e)
}

const QUERIES: &[&str] = &[
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum(rate(http_requests_total{code=\"500\"}[5m])) / sum(rate(http_requests_total[5m]))",
    "avg by (job) (mem_bytes)",
    "max without (instance) (mem_bytes)",
    "count by (code) (http_requests_total)",
    "topk(3, rate(http_requests_total[10m]))",
    "histogram_quantile(0.9, sum by (le, job) (rate(latency_seconds_bucket[5m])))",
    "mem_bytes > 30",
    "sum by (job) (increase(http_requests_total[1h]))",
    "max_over_time(sum(rate(http_requests_total[5m]))[30m:1m])",
    "stddev by (job) (mem_bytes)",
    "quantile(0.5, mem_bytes)",
    "absent(nothing_here)",
    "count_values(\"v\", mem_bytes)",
    "label_replace(sum by (job) (mem_bytes), \"j\", \"$1\", \"job\", \"(.).*\")",
];

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same(q: &str, a: &PromValue, b: &PromValue) {
    match (a, b) {
        (PromValue::Vector(x), PromValue::Vector(y)) => {
            let mut x: Vec<_> = x.iter().map(|s| (s.labels.clone(), s.t, s.v)).collect();
            let mut y: Vec<_> = y.iter().map(|s| (s.labels.clone(), s.t, s.v)).collect();
            x.sort_by(|a, b| a.0.cmp(&b.0));
            y.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(x.len(), y.len(), "{q}: {x:?}\nvs\n{y:?}");
            for (p, r) in x.iter().zip(&y) {
                assert!(
                    p.0 == r.0 && p.1 == r.1 && close(p.2, r.2),
                    "{q}: {p:?} vs {r:?}"
                );
            }
        }
        (PromValue::Matrix(x), PromValue::Matrix(y)) => {
            assert_eq!(x.len(), y.len(), "{q}");
            for (p, r) in x.iter().zip(y) {
                assert_eq!(p.labels, r.labels, "{q}");
                assert_eq!(p.points.len(), r.points.len(), "{q} {:?}", p.labels);
                for (u, v) in p.points.iter().zip(&r.points) {
                    assert!(
                        u.0 == v.0 && close(u.1, v.1),
                        "{q} {:?}: {u:?} vs {v:?}",
                        p.labels
                    );
                }
            }
        }
        (PromValue::Scalar { t, v }, PromValue::Scalar { t: t2, v: v2 }) => {
            assert!(t == t2 && close(*v, *v2), "{q}")
        }
        _ => panic!("{q}: {a:?} vs {b:?}"),
    }
}

async fn compare(single: &Engine, querier: &Engine) {
    for q in QUERIES {
        let want = single.instant(q, HOUR, None, None).await.expect(q);
        let got = querier.instant(q, HOUR, None, None).await.expect(q);
        assert!(
            !matches!(&want.value, PromValue::Vector(v) if v.is_empty()) || q.starts_with("absent"),
            "{q}: the reference answer is empty"
        );
        same(q, &got.value, &want.value);
        let want = single
            .range(q, HOUR / 2, HOUR, 60_000, None, None)
            .await
            .expect(q);
        let got = querier
            .range(q, HOUR / 2, HOUR, 60_000, None, None)
            .await
            .expect(q);
        same(q, &got.value, &want.value);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_querier_without_data_answers_as_one_node_holding_everything() {
    let all = dataset();
    let (_d, full) = db(&all).await;
    let single = Engine::new(full, EngineOptions::default());
    for rf in [1, 3] {
        let c = cluster(&all, rf).await;
        let (_e, querier) = querier(&c, &[]).await;
        compare(&single, &querier).await;
        let coord = querier.coordinator().expect("coordinator");
        assert!(coord.queries.load(Ordering::Relaxed) >= QUERIES.len() as u64);
        assert_eq!(coord.fallbacks.load(Ordering::Relaxed), 0, "rf {rf}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_alone_runs_two_tasks() {
    let all = dataset();
    let (_d, full) = db(&all).await;
    let single = Engine::new(full, EngineOptions::default());
    let (_w, node) = db(&all).await;
    let engine = Engine::new(node, EngineOptions::default());
    let bound = BoundWorker::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let url = url::Url::parse(&format!("http://{}", bound.local_addr())).expect("url");
    let env = engine.worker_env();
    tokio::spawn(async move { bound.serve(env, std::future::pending()).await });
    let (_e, empty) = db(&[]).await;
    let querier = Engine::new(empty, EngineOptions::default())
        .with_cluster(vec!["http://only:9090".into()], vec![url])
        .expect("cluster");
    compare(&single, &querier).await;
    let coord = querier.coordinator().expect("coordinator");
    assert_eq!(coord.fallbacks.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_down_is_answered_from_the_querier_and_counted() {
    let all = dataset();
    let mut c = cluster(&all, 3).await;
    // The querier's own storage stands for its remote reads of the ingesters.
    let (_d, full) = db(&all).await;
    let single = Engine::new(full, EngineOptions::default());
    let (_q, querier) = querier(&c, &all).await;
    let q = "sum by (job) (rate(http_requests_total[5m]))";
    let _ = c.stop.remove(1).send(());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let got = querier.instant(q, HOUR, None, None).await.expect(q);
    let want = single.instant(q, HOUR, None, None).await.expect(q);
    same(q, &got.value, &want.value);
    let coord = querier.coordinator().expect("coordinator");
    assert_eq!(coord.fallbacks.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_hangs_costs_the_attempt_timeout_then_the_query_is_answered() {
    let all = dataset();
    let mut c = cluster(&all, 3).await;
    // Worker 2 replaced by a port that accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    c.workers[2] =
        url::Url::parse(&format!("http://{}", hang.local_addr().expect("addr"))).expect("url");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let (_d, full) = db(&all).await;
    let single = Engine::new(full, EngineOptions::default());
    let (_q, querier) = querier(&c, &all).await;
    let coord = querier.coordinator().expect("coordinator");
    coord.set_attempt_timeout(std::time::Duration::from_millis(500));
    let q = "sum by (job) (rate(http_requests_total[5m]))";
    let t = std::time::Instant::now();
    let got = querier.instant(q, HOUR, None, None).await.expect(q);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    let want = single.instant(q, HOUR, None, None).await.expect(q);
    same(q, &got.value, &want.value);
    assert_eq!(coord.fallbacks.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_a_task_to_its_own_limits() {
    let all = dataset();
    let opts = EngineOptions {
        max_samples: 1000,
        ..EngineOptions::default()
    };
    let c = cluster_with(&all, 1, opts).await;
    let (_e, querier) = querier(&c, &[]).await;
    // Each worker holds a third of 24 × 241 samples of `mem_bytes` per hour: past 1000.
    let q = "sum(max_over_time(mem_bytes[1h]))";
    let _ = querier.instant(q, HOUR, None, None).await;
    let coord = querier.coordinator().expect("coordinator");
    assert_eq!(coord.queries.load(Ordering::Relaxed), 1);
    assert_eq!(
        coord.fallbacks.load(Ordering::Relaxed),
        1,
        "the workers refused it"
    );
    // A query within the limit runs on them.
    let small = "sum(mem_bytes)";
    querier.instant(small, HOUR, None, None).await.expect(small);
    assert_eq!(coord.fallbacks.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_of_the_workers_reach_the_answer() {
    let all = dataset();
    let c = cluster(&all, 1).await;
    let (_e, querier) = querier(&c, &[]).await;
    // `mem_bytes` is not a counter: rate() says so.
    let out = querier
        .instant("sum(rate(mem_bytes[5m]))", HOUR, None, None)
        .await
        .expect("query");
    assert!(
        out.notes.infos.iter().any(|i| i.contains("mem_bytes")),
        "{:?}",
        out.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planners_warnings_stay_with_a_distributed_answer() {
    let all = dataset();
    let c = cluster(&all, 1).await;
    let (_e, querier) = querier(&c, &[]).await;
    let out = querier
        .range("sort(mem_bytes)", HOUR / 2, HOUR, 60_000, None, None)
        .await
        .expect("query");
    assert!(
        out.notes
            .warnings
            .iter()
            .any(|w| w.contains("sort is ineffective")),
        "{:?}",
        out.notes
    );
    let coord = querier.coordinator().expect("coordinator");
    assert_eq!(coord.queries.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_ingesters_must_pair_up() {
    let (_e, empty) = db(&[]).await;
    let err = Engine::new(empty, EngineOptions::default())
        .with_cluster(
            vec!["http://a:1".into(), "http://b:1".into()],
            vec![url::Url::parse("http://127.0.0.1:1").expect("url")],
        )
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--distributed.worker"), "{err}");
}
