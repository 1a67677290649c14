//! Criterion benchmarks of the write path: head append (WAL included) and block encoding
//! (Parquet), and of the decimal value encoding: encoding a series, decoding, and a block's
//! read path. Figures per sample; compare runs on the same machine only. The encoded size
//! per sample of each kind of value is printed once (`bytes/sample`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_storage::block::BlockWriter;
use strata_storage::{Appender, Db, Labels, Options, SeriesSamples};

const SERIES: usize = 1000;
const PER_SERIES: usize = 10;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("http_requests_total_{}", i % 10)),
        ("instance", format!("host-{}:9100", i / 10)),
        ("job", "node".to_string()),
        ("method", ["GET", "POST"][i % 2].to_string()),
    ])
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let dir = tempfile::tempdir().expect("tmp");
    let mut opts = Options::new(dir.path());
    opts.block_range_ms = i64::MAX / 4; // never cut during the bench
    let db = rt.block_on(Db::open(opts)).expect("open");
    let names: Vec<Labels> = (0..SERIES).map(labels).collect();
    let mut t = 1_700_000_000_000i64;
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements((SERIES * PER_SERIES) as u64));
    g.bench_function("append_10k_samples_1k_series", |b| {
        b.iter(|| {
            let batch: Vec<SeriesSamples> = names
                .iter()
                .enumerate()
                .map(|(i, l)| SeriesSamples {
                    histograms: Vec::new(),
                    labels: l.clone(),
                    samples: (0..PER_SERIES)
                        .map(|k| (t + k as i64 * 15_000, (i + k) as f64))
                        .collect(),
                })
                .collect();
            t += PER_SERIES as i64 * 15_000;
            db.append(&batch).expect("append")
        })
    });
    g.finish();
}

fn block_write(c: &mut Criterion) {
    // 1000 series x 480 samples (2h at 15s): counters with small integer increments.
    let data: Vec<(Labels, Vec<(i64, f64)>)> = {
        let mut v: Vec<(Labels, Vec<(i64, f64)>)> = (0..SERIES)
            .map(|i| {
                let s = (0..480)
                    .map(|k| {
                        (
                            1_700_000_000_000 + k as i64 * 15_000,
                            (k * (i % 7 + 1)) as f64,
                        )
                    })
                    .collect();
                (labels(i), s)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements((SERIES * 480) as u64));
    g.sample_size(10);
    g.bench_function("encode_480k_samples", |b| {
        b.iter(|| {
            let mut w = BlockWriter::new().expect("writer");
            for (l, s) in &data {
                w.add(l.clone(), s).expect("add");
            }
            let enc = w.finish(1, Vec::new()).expect("finish").expect("block");
            enc.samples.len() + enc.series.len()
        })
    });
    g.finish();
}

/// A deterministic xorshift generator (the benches need no `rand`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 480 values (2h at 15 s) of one kind: counters with random increments, sums of
/// milliseconds as seconds (three decimals), byte gauges in pages of 4096, and random
/// floats (which stay IEEE-754).
fn values(kind: &str, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut acc = r.below(1_000_000) as f64;
    (0..480)
        .map(|_| match kind {
            "counter" => {
                acc += r.below(40) as f64;
                acc
            }
            "sum_ms" => {
                acc += r.below(20_000) as f64;
                acc / 1000.0
            }
            "gauge_4k" => ((1 << 20) + r.below(4096) * 4096) as f64,
            _ => f64::from_bits(0x3ff0_0000_0000_0000 | (r.next() >> 12)),
        })
        .collect()
}

const KINDS: [&str; 4] = ["counter", "sum_ms", "gauge_4k", "random"];

fn decimals(c: &mut Criterion) {
    use strata_storage::block::decimal;
    let mut g = c.benchmark_group("decimal");
    for kind in KINDS {
        let series: Vec<Vec<f64>> = (0..100).map(|i| values(kind, i)).collect();
        g.throughput(Throughput::Elements((100 * 480) as u64));
        g.bench_function(format!("encode_series_{kind}"), |b| {
            b.iter(|| {
                series
                    .iter()
                    .map(|s| decimal::encode_series(s).mantissas.len())
                    .sum::<usize>()
            })
        });
        let enc: Vec<decimal::SeriesDecimals> =
            series.iter().map(|s| decimal::encode_series(s)).collect();
        g.bench_function(format!("decode_{kind}"), |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for s in &enc {
                    for m in s.mantissas.iter().flatten() {
                        sum += decimal::decode(*m, s.shift, s.exponent).unwrap_or(0.0);
                    }
                }
                sum
            })
        });
    }
    g.finish();
}

fn block_read(c: &mut Criterion) {
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use strata_storage::block::Block;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    for kind in KINDS {
        let mut names: Vec<Labels> = (0..SERIES).map(labels).collect();
        names.sort();
        let mut w = BlockWriter::new().expect("writer");
        for (i, l) in names.iter().enumerate() {
            let s: Vec<(i64, f64)> = values(kind, i as u64)
                .into_iter()
                .enumerate()
                .map(|(k, v)| (1_700_000_000_000 + k as i64 * 15_000, v))
                .collect();
            w.add(l.clone(), &s).expect("add");
        }
        let enc = w.finish(1, Vec::new()).expect("finish").expect("block");
        eprintln!(
            "block of {SERIES} {kind} series x 480: samples.parquet {:.3} bytes/sample",
            enc.samples.len() as f64 / (SERIES * 480) as f64
        );
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let pool = strata_storage::LabelPool::default();
        let block = rt
            .block_on(Block::write(store, &Path::from("b"), enc, &pool, None))
            .expect("write");
        let ids: roaring::RoaringBitmap = (0..SERIES as u32).collect();
        g.throughput(Throughput::Elements((SERIES * 480) as u64));
        g.bench_function(format!("read_480k_samples_{kind}"), |b| {
            b.iter(|| {
                rt.block_on(block.read(&ids, i64::MIN, i64::MAX))
                    .expect("read")
                    .len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, append, block_write, decimals, block_read);
criterion_main!(benches);
