//! Downsampled answers equal raw ones (issue #27), as a property: random series (counters
//! with resets and gaps, gauges with NaNs, irregular intervals, samples on window
//! boundaries) over 32 days are appended, cut into blocks, compacted and downsampled;
//! then `rate`, `increase`, `count/sum/min/max_over_time` over ranges of whole 5m and 1h
//! windows at steps on those grids give the same series and values read raw
//! (`max_source_resolution` 0) and from downsampled blocks (the default), and the same
//! data kept 3 days raw (small raw blocks, downsampled one by one, their downsampled
//! blocks merged) answers the old range as the full copy does. `count`, `min`
//! and `max` must agree bit for bit; `rate`, `increase` and `sum` to 1e-12 relative (their
//! counters here are integers, so in practice exactly).

use std::sync::Arc;

use proptest::prelude::*;
use strata_engine::{Engine, EngineOptions, PromValue, QueryParams};
use strata_storage::{Appender, Db, DownsampleOptions, Labels, Options, SeriesSamples};

const DAY: i64 = 86_400_000;
const START: i64 = 1_700_006_400_000; // a whole day (UTC)

#[derive(Debug, Clone)]
struct Gen {
    counter: bool,
    interval_s: i64,
    /// (gap start as a fraction of the span, gap length in samples)
    gaps: Vec<(u16, u16)>,
    seed: u64,
}

fn series(g: &Gen, i: usize) -> SeriesSamples {
    let name = if g.counter {
        "ds_requests_total"
    } else {
        "ds_temperature"
    };
    let labels = Labels::from_pairs([("__name__", name), ("i", &i.to_string())]);
    let mut rng = g.seed;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let span = 32 * DAY;
    let n = (span / (g.interval_s * 1000)) as usize;
    let mut skip = vec![false; n];
    for &(at, len) in &g.gaps {
        let s = (at as usize * n) / 65_536;
        let e = (s + len as usize).min(n);
        if s < e {
            skip[s..e].fill(true);
        }
    }
    let (mut v, mut out) = (0.0f64, Vec::with_capacity(n));
    for (k, gone) in skip.iter().enumerate() {
        let r = next();
        // Whole intervals, some with a jitter: many samples sit exactly on window ends.
        let jitter = if r % 3 == 0 { (r >> 8) as i64 % 997 } else { 0 };
        let t = START + k as i64 * g.interval_s * 1000 + jitter;
        if g.counter {
            v = if r % 500 == 0 {
                (r >> 20) as f64 % 5.0
            } else {
                v + ((r >> 12) % 50) as f64
            };
        } else {
            v = if r % 211 == 0 {
                f64::NAN
            } else {
                ((r >> 11) % 10_000) as f64 / 7.0 - 300.0
            };
        }
        if !gone {
            out.push((t, v));
        }
    }
    SeriesSamples::floats(labels, out)
}

fn same(a: f64, b: f64, exact: bool) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if exact {
        return a.to_bits() == b.to_bits();
    }
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn matrix(v: PromValue) -> Vec<(String, Vec<(i64, f64)>)> {
    match v {
        PromValue::Matrix(m) => m
            .into_iter()
            .map(|s| (format!("{:?}", s.labels), s.points))
            .collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

/// A database holding `batch` appended a day at a time (maintained after each, as a
/// live server would), raw data kept `raw_retention`, downsampled after 2 days.
async fn loaded(
    dir: &std::path::Path,
    batch: &[SeriesSamples],
    raw_retention: Option<i64>,
) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.retention_time_ms = raw_retention;
    o.max_future_ms = None;
    o.downsample = Some(DownsampleOptions {
        after_ms: 2 * DAY,
        retention_5m_ms: Some(400 * DAY),
        retention_1h_ms: Some(400 * DAY),
    });
    let db = Db::open(o).await.expect("open");
    for day in 0..33 {
        let (a, z) = (START + day * DAY, START + (day + 1) * DAY);
        let slice: Vec<SeriesSamples> = batch
            .iter()
            .map(|s| {
                SeriesSamples::floats(
                    s.labels.clone(),
                    s.samples
                        .iter()
                        .copied()
                        .filter(|x| a <= x.0 && x.0 < z)
                        .collect(),
                )
            })
            .collect();
        db.append(&slice).expect("append");
        db.maintain().await.expect("maintain");
    }
    db
}

async fn check(gens: Vec<Gen>) {
    let dir = tempfile::tempdir().expect("tmp");
    let batch: Vec<SeriesSamples> = gens.iter().enumerate().map(|(i, g)| series(g, i)).collect();
    let db = loaded(&dir.path().join("a"), &batch, None).await;
    // The same data with raw data kept 3 days only: small raw blocks, downsampled one by
    // one, their downsampled blocks merged per day (5m) and per 10 days (1h).
    let short = loaded(&dir.path().join("b"), &batch, Some(3 * DAY)).await;
    assert!(
        short
            .downsampled_blocks()
            .iter()
            .any(|b| b.meta.compaction.level > 1),
        "no downsampled blocks were merged"
    );
    assert!(
        short
            .blocks()
            .iter()
            .all(|b| b.meta.min_time >= START + 25 * DAY),
        "raw data older than the retention kept"
    );
    let short_engine = Engine::new(short.clone(), EngineOptions::default());
    assert!(
        !db.downsampled_blocks().is_empty(),
        "nothing was downsampled"
    );
    let engine = Engine::new(db.clone(), EngineOptions::default());
    let name = if gens[0].counter {
        "ds_requests_total"
    } else {
        "ds_temperature"
    };
    let funcs: &[(&str, bool)] = if gens[0].counter {
        &[
            ("rate", false),
            ("increase", false),
            ("count_over_time", true),
        ]
    } else {
        &[
            ("sum_over_time", false),
            ("min_over_time", true),
            ("max_over_time", true),
            ("count_over_time", true),
        ]
    };
    // (range, step, offset): 1h-grid queries, 5m-grid ones, an offset.
    let shapes = [
        ("1h", 3_600_000, ""),
        ("6h", 3 * 3_600_000, ""),
        ("30m", 600_000, ""),
        ("2h", 3_600_000, " offset 1h"),
    ];
    let (start, end) = (START + 3 * DAY, START + 26 * DAY);
    for &(f, exact) in funcs {
        for (range, step, offset) in shapes {
            let q = format!("{f}({name}[{range}]{offset})");
            // 5m-grid queries over a shorter span (fewer points).
            let end = if step < 3_600_000 {
                start + 2 * DAY
            } else {
                end
            };
            let p = |res: i64| QueryParams {
                start,
                end,
                interval: step,
                lookback: 300_000,
                max_source_resolution: res,
            };
            let raw = engine.range_params(&q, p(0), None).await.expect("raw");
            assert!(
                !raw.notes.infos.iter().any(|i| i.contains("downsampled")),
                "{q}: raw read noted downsampling"
            );
            let ds = engine
                .range_params(&q, p(strata_engine::AUTO_RESOLUTION), None)
                .await
                .expect("downsampled");
            assert!(
                ds.notes
                    .infos
                    .iter()
                    .any(|i| i.contains("downsampled data")),
                "{q}: not answered from downsampled data: {:?}",
                ds.notes
            );
            // The short-retention database answers from its merged downsampled blocks
            // exactly as the full one does from its own.
            let other = short_engine
                .range_params(&q, p(strata_engine::AUTO_RESOLUTION), None)
                .await
                .expect("short retention");
            let other = matrix(other.value);
            let (raw, ds) = (matrix(raw.value), matrix(ds.value));
            if end <= START + 26 * DAY {
                assert_eq!(ds.len(), other.len(), "{q}: short-retention series differ");
                for ((dl, dp), (ol, op)) in ds.iter().zip(&other) {
                    assert_eq!(dl, ol, "{q}");
                    assert_eq!(
                        dp.len(),
                        op.len(),
                        "{q} {dl}: short-retention points differ"
                    );
                    for (a, b) in dp.iter().zip(op) {
                        assert!(
                            a.0 == b.0 && same(a.1, b.1, exact),
                            "{q} {dl}: {a:?} vs {b:?}"
                        );
                    }
                }
            }
            assert_eq!(raw.len(), ds.len(), "{q}: series differ");
            for ((rl, rp), (dl, dp)) in raw.iter().zip(&ds) {
                assert_eq!(rl, dl, "{q}");
                assert_eq!(rp.len(), dp.len(), "{q} {rl}: point counts differ");
                for (a, b) in rp.iter().zip(dp) {
                    assert_eq!(a.0, b.0, "{q} {rl}");
                    assert!(
                        same(a.1, b.1, exact),
                        "{q} {rl} at {}: raw {} downsampled {}",
                        a.0,
                        a.1,
                        b.1
                    );
                }
            }
        }
    }
    // A downsampled read is bounded like a raw one: windows count against max_samples.
    let small = Engine::new(
        db.clone(),
        EngineOptions {
            max_samples: 500,
            ..EngineOptions::default()
        },
    );
    let q = format!("count_over_time({name}[1h])");
    let p = QueryParams {
        start,
        end,
        interval: 3_600_000,
        lookback: 300_000,
        max_source_resolution: strata_engine::AUTO_RESOLUTION,
    };
    let e = small.range_params(&q, p, None).await.err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("too many samples")),
        "{q} with max_samples 500: {e:?}"
    );
    drop((engine, short_engine, small));
}

fn gens_of(counter: bool) -> impl Strategy<Value = Gen> {
    (
        prop_oneof![Just(30i64), Just(60), Just(137)],
        prop::collection::vec((any::<u16>(), 0u16..400), 0..4),
        any::<u64>(),
    )
        .prop_map(move |(interval_s, gaps, seed)| Gen {
            counter,
            interval_s,
            gaps,
            seed: seed | 1,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2, ..ProptestConfig::default() })]

    #[test]
    fn counters_agree_downsampled_and_raw(gens in prop::collection::vec(gens_of(true), 1..3)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(check(gens));
    }

    #[test]
    fn gauges_agree_downsampled_and_raw(gens in prop::collection::vec(gens_of(false), 1..3)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(check(gens));
    }
}
