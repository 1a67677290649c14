//! Criterion benchmarks of the range-function kernels: one window of a 15s-scrape series
//! per evaluation, as `rate(x[5m])` and `avg_over_time(x[1h])` see it.

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use strata_engine::functions::range::{RangeFn, Window, eval};

fn series(n: usize) -> (Vec<i64>, Vec<f64>) {
    let ts = (0..n as i64).map(|i| i * 15_000).collect();
    let vals = (0..n).map(|i| (i * 7 % 13) as f64 + i as f64).collect();
    (ts, vals)
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("range_fn");
    for (name, f, n) in [
        ("rate_5m", RangeFn::Rate, 20usize),
        ("increase_5m", RangeFn::Increase, 20),
        ("avg_over_time_1h", RangeFn::AvgOverTime, 240),
        ("max_over_time_1h", RangeFn::MaxOverTime, 240),
        ("quantile_over_time_1h", RangeFn::QuantileOverTime, 240),
        ("deriv_1h", RangeFn::Deriv, 240),
    ] {
        let (ts, vals) = series(n);
        let w = Window {
            t: ts[n - 1],
            lo: ts[0] - 1,
            hi: ts[n - 1],
            p0: 0.9,
            p1: 0.0,
            no_resets: false,
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new(name, n), &(ts, vals), |b, (ts, vals)| {
            b.iter(|| eval(f, black_box(ts), black_box(vals), black_box(&w)))
        });
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
