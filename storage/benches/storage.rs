//! Criterion benchmarks of the write path: head append (WAL included) and block encoding
//! (Parquet). Figures per sample; compare runs on the same machine only.

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

criterion_group!(benches, append, block_write);
criterion_main!(benches);
