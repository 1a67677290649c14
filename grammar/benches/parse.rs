//! Parse throughput for typical dashboard queries.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};

const QUERIES: &[&str] = &[
    r#"rate(http_requests_total{job="api-server"}[5m])"#,
    r#"sum by (job) (rate(http_requests_total[5m]))"#,
    r#"sum by (job, instance) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (job, instance) (rate(http_requests_total[5m]))"#,
    r#"histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket{job="api"}[5m])))"#,
    r#"histogram_quantile(0.9, sum(rate(grpc_server_handling_seconds_bucket{grpc_service=~"foo.*"}[1m])) by (le))"#,
    r#"100 * (1 - avg by (instance) (irate(node_cpu_seconds_total{mode="idle"}[5m])))"#,
    r#"node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10"#,
    r#"rate(container_cpu_usage_seconds_total{namespace="prod", container!=""}[5m]) * on (namespace, pod) group_left (node) kube_pod_info"#,
    r#"sum without (instance) (rate(process_cpu_seconds_total{job=~"prometheus|alertmanager"}[1m]))"#,
    r#"topk(10, sum by (pod) (container_memory_working_set_bytes{namespace!~"kube-.*"}))"#,
    r#"increase(kube_pod_container_status_restarts_total[1h]) > 3"#,
    r#"up{job="node"} == 0 or absent(up{job="node"})"#,
    r#"predict_linear(node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}[6h], 4 * 3600) < 0"#,
    r#"max_over_time(rate(http_requests_total[5m])[1h:1m] offset 1d)"#,
    r#"label_replace(sum by (service) (rate(requests_total[5m])), "svc", "$1", "service", "(.*)-v[0-9]+")"#,
];

fn bench_parse(c: &mut Criterion) {
    for q in QUERIES {
        assert!(strata_grammar::parse(q).is_ok(), "{q}");
    }
    let bytes: usize = QUERIES.iter().map(|q| q.len()).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(QUERIES.len() as u64));
    group.bench_function("dashboard_queries_15", |b| {
        b.iter(|| {
            for q in QUERIES {
                let _ = black_box(strata_grammar::parse(black_box(q)));
            }
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("dashboard_queries_15_bytes", |b| {
        b.iter(|| {
            for q in QUERIES {
                let _ = black_box(strata_grammar::parse(black_box(q)));
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(5)).sample_size(30);
    targets = bench_parse
}
criterion_main!(benches);
