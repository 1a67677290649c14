//! `/metrics`: the process's own metrics in Prometheus text format 0.0.4, with Prometheus's
//! metric names where one exists (so existing dashboards work) and `strata_` otherwise.
//! Names and help texts are constants; label values from configuration (rule group files
//! and names) are escaped by [`strata_ingest::expfmt`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
#[allow(unused_imports)]
use crate::openapi::*;

/// HTTP-level counters.
#[derive(Default, Debug)]
pub(crate) struct HttpCounters {
    pub(crate) remote_write_rejected: AtomicU64,
}

struct Out(String);

impl Out {
    fn metric(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }

    /// A family with one sample per label set (`labels` already formatted: `a="b"`).
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }
}

#[utoipa::path(
    method(get),
    path = "/metrics",
    tag = "lifecycle",
    summary = "Strata's own metrics (Prometheus text format)",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain")
    )
)]
pub(crate) async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let mut o = Out(String::with_capacity(4096));
    let _ = writeln!(
        o.0,
        "# HELP strata_build_info Build information.\n# TYPE strata_build_info gauge\nstrata_build_info{{version=\"{}\",revision=\"{}\"}} 1",
        strata_ingest::expfmt::escape(s.build.version, true),
        strata_ingest::expfmt::escape(s.build.revision, true)
    );
    process_metrics(&mut o, &s);
    if let Some(r) = s.remote_write.get() {
        r.render_metrics(&mut o.0);
    }
    if let Some(d) = s.distributor.get() {
        crate::distributor::metrics(d, &mut o.0);
    }
    if let Some(c) = s.engine.get().and_then(|e| e.coordinator()) {
        o.metric(
            "strata_distributed_queries_total",
            "counter",
            "PromQL queries run across the cluster's workers.",
            c.queries.load(Ordering::Relaxed) as f64,
        );
        o.metric(
            "strata_distributed_fallbacks_total",
            "counter",
            "Distributed PromQL queries the workers could not answer, answered by remote reads of the ingesters instead.",
            c.fallbacks.load(Ordering::Relaxed) as f64,
        );
        o.metric(
            "strata_distributed_replica_reads_total",
            "counter",
            "PromQL queries over samples an ingester may lack (a forward to it failed), answered from every replica by remote read.",
            c.incomplete.load(Ordering::Relaxed) as f64,
        );
    }
    rule_metrics(&mut o, &s);
    notifier_metrics(&mut o, &s);
    o.metric(
        "strata_remote_write_requests_rejected_total",
        "counter",
        "Remote-write requests refused as malformed.",
        s.counters.remote_write_rejected.load(Ordering::Relaxed) as f64,
    );
    if let Some(d) = &s.otlp_delta {
        let st = d.stats();
        o.metric(
            "strata_otlp_delta_streams",
            "gauge",
            "Delta streams being accumulated into cumulative ones (otlp-deltatocumulative).",
            st.streams as f64,
        );
        o.metric(
            "strata_otlp_delta_bytes",
            "gauge",
            "Estimated memory held by the delta-to-cumulative streams.",
            st.bytes as f64,
        );
        o.metric(
            "strata_otlp_delta_points_dropped_total",
            "counter",
            "Delta points dropped: out of order, older than their stream, or past the stream or memory limit.",
            st.dropped_total as f64,
        );
        o.metric(
            "strata_otlp_delta_streams_evicted_total",
            "counter",
            "Delta streams forgotten after being idle for max_stale.",
            st.evicted_total as f64,
        );
    }
    if let Ok(db) = s.db() {
        let h = &db.head;
        let st = &h.stats;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        o.metric(
            "prometheus_tsdb_head_series",
            "gauge",
            "Total number of series in the head block.",
            h.num_series() as f64,
        );
        o.metric(
            "prometheus_tsdb_head_samples_appended_total",
            "counter",
            "Total number of appended samples.",
            load(&st.samples_appended),
        );
        o.metric(
            "prometheus_tsdb_head_series_created_total",
            "counter",
            "Total number of series created in the head.",
            load(&st.series_created),
        );
        o.metric(
            "prometheus_tsdb_head_series_removed_total",
            "counter",
            "Total number of series removed from the head.",
            load(&st.series_removed),
        );
        o.metric(
            "prometheus_tsdb_out_of_bounds_samples_total",
            "counter",
            "Samples refused as older than the out-of-order window.",
            load(&st.out_of_bounds),
        );
        o.metric(
            "strata_tsdb_duplicate_timestamp_samples_total",
            "counter",
            "Samples refused for a different value at an existing timestamp.",
            load(&st.duplicate_timestamp),
        );
        o.metric(
            "strata_tsdb_duplicate_samples_ignored_total",
            "counter",
            "Identical samples appended again (idempotent).",
            load(&st.duplicates_ignored),
        );
        let ex = db.exemplars.stats();
        for (name, kind, help, v) in [
            (
                "prometheus_tsdb_exemplar_exemplars_appended_total",
                "counter",
                "Total number of appended exemplars.",
                ex.appended_total as f64,
            ),
            (
                "prometheus_tsdb_exemplar_exemplars_in_storage",
                "gauge",
                "Number of exemplars currently in circular storage.",
                ex.in_storage as f64,
            ),
            (
                "prometheus_tsdb_exemplar_series_with_exemplars_in_storage",
                "gauge",
                "Number of series with exemplars currently in circular storage.",
                ex.series_in_storage as f64,
            ),
            (
                "prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds",
                "gauge",
                "The timestamp of the oldest exemplar stored in circular storage.",
                ex.oldest_ts_seconds,
            ),
            (
                "prometheus_tsdb_exemplar_max_exemplars",
                "gauge",
                "Total number of exemplars the exemplar storage can store, resizeable.",
                ex.max_exemplars as f64,
            ),
            (
                "prometheus_tsdb_exemplar_out_of_order_exemplars_total",
                "counter",
                "Total number of out of order exemplar ingestion failed attempts.",
                ex.out_of_order_total as f64,
            ),
        ] {
            o.metric(name, kind, help, v);
        }
        o.metric(
            "prometheus_tsdb_wal_fsync_duration_seconds_count",
            "counter",
            "Number of WAL fsyncs.",
            db.wal_fsyncs() as f64,
        );
        let blocks = db.blocks();
        o.metric(
            "prometheus_tsdb_blocks_loaded",
            "gauge",
            "Number of currently loaded data blocks.",
            blocks.len() as f64,
        );
        o.metric(
            "prometheus_tsdb_storage_blocks_bytes",
            "gauge",
            "The number of bytes that are currently used for local storage by all blocks.",
            blocks.iter().map(|b| b.size_bytes).sum::<u64>() as f64,
        );
        let m = &db.metrics;
        o.metric(
            "prometheus_tsdb_compactions_total",
            "counter",
            "Total number of compactions that were executed.",
            load(&m.compactions),
        );
        o.metric(
            "prometheus_tsdb_compactions_failed_total",
            "counter",
            "Total number of compactions that failed.",
            load(&m.compaction_failures),
        );
        o.metric(
            "strata_tsdb_head_cuts_total",
            "counter",
            "Blocks cut from the head.",
            load(&m.blocks_cut),
        );
        o.metric(
            "prometheus_tsdb_checkpoint_creations_total",
            "counter",
            "Total number of WAL checkpoints created.",
            load(&m.checkpoints),
        );
        o.metric(
            "prometheus_tsdb_time_retentions_total",
            "counter",
            "Blocks removed by retention.",
            load(&m.blocks_removed_by_retention),
        );
        o.metric(
            "strata_tsdb_downsampled_blocks_created_total",
            "counter",
            "Downsampled blocks written (one per raw block and resolution).",
            load(&m.downsampled_blocks),
        );
        o.metric(
            "strata_tsdb_retention_rule_rewrites_total",
            "counter",
            "Blocks rewritten without the series past their retention rule.",
            load(&m.retention_rule_rewrites),
        );
        if let Some(bucket) = db.bucket() {
            // Thanos sidecar's and store gateway's names.
            o.metric(
                "thanos_shipper_uploads_total",
                "counter",
                "Blocks uploaded to object storage.",
                load(&m.blocks_uploaded),
            );
            o.metric(
                "strata_objstore_failures_total",
                "counter",
                "Uploads or bucket listings that failed (retried at the next maintenance).",
                load(&m.bucket_failures),
            );
            o.metric(
                "strata_objstore_blocks_loaded",
                "gauge",
                "Blocks of this node read from object storage (not held locally).",
                db.bucket_blocks().len() as f64,
            );
            let c = bucket.cache();
            o.metric(
                "strata_objstore_cache_bytes",
                "gauge",
                "Bytes held by the cache of pages read from object storage.",
                c.bytes() as f64,
            );
            o.metric(
                "strata_objstore_cache_hits_total",
                "counter",
                "Page reads answered from the cache.",
                load(&c.hits),
            );
            o.metric(
                "strata_objstore_cache_misses_total",
                "counter",
                "Page reads that went to object storage.",
                load(&c.misses),
            );
        }
        let ds = db.downsampled_blocks();
        o.family(
            "strata_tsdb_downsampled_blocks",
            "gauge",
            "Downsampled blocks held, by resolution.",
            &strata_storage::downsample::RESOLUTIONS
                .iter()
                .map(|&r| {
                    (
                        format!(
                            "resolution=\"{}\"",
                            strata_storage::downsample::resolution_name(r)
                        ),
                        ds.iter().filter(|b| b.meta.resolution == r).count() as f64,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let min = h.min_time();
        let max = h.max_time();
        if min != i64::MAX {
            o.metric(
                "prometheus_tsdb_head_min_time",
                "gauge",
                "Minimum time bound of the head block.",
                min as f64,
            );
            o.metric(
                "prometheus_tsdb_head_max_time",
                "gauge",
                "Maximum timestamp of the head block.",
                max as f64,
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.0,
    )
}

/// Rule groups and the Alertmanager sender, with Prometheus's names.
fn rule_metrics(o: &mut Out, s: &AppState) {
    let groups = s.rule_groups();
    let mut last = Vec::new();
    let mut evals = Vec::new();
    let mut fails = Vec::new();
    let mut rules = Vec::new();
    let mut interval = Vec::new();
    for g in &groups {
        let key = format!(
            "rule_group=\"{}\"",
            strata_ingest::expfmt::escape(&format!("{};{}", g.file, g.def.name), true)
        );
        let st = g.state.lock().clone();
        last.push((key.clone(), st.eval_seconds));
        evals.push((key.clone(), st.evaluations as f64));
        fails.push((key.clone(), st.failures as f64));
        rules.push((key.clone(), g.rules.len() as f64));
        interval.push((key, g.interval as f64 / 1000.0));
    }
    o.family(
        "prometheus_rule_group_last_duration_seconds",
        "gauge",
        "The duration of the last rule group evaluation.",
        &last,
    );
    o.family(
        "prometheus_rule_evaluations_total",
        "counter",
        "The total number of rule evaluations.",
        &evals,
    );
    o.family(
        "prometheus_rule_evaluation_failures_total",
        "counter",
        "The total number of rule evaluation failures.",
        &fails,
    );
    o.family(
        "prometheus_rule_group_rules",
        "gauge",
        "The number of rules.",
        &rules,
    );
    o.family(
        "prometheus_rule_group_interval_seconds",
        "gauge",
        "The interval of a rule group.",
        &interval,
    );
    if let Some(sender) = s.sender.get() {
        let m = &sender.metrics;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        o.metric(
            "prometheus_notifications_sent_total",
            "counter",
            "Total number of alerts sent (per Alertmanager, summed).",
            load(&m.sent),
        );
        o.metric(
            "prometheus_notifications_errors_total",
            "counter",
            "Total number of errors sending alert notifications (per Alertmanager, summed).",
            load(&m.errors),
        );
        o.metric(
            "prometheus_notifications_dropped_total",
            "counter",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            load(&m.dropped),
        );
        o.metric(
            "prometheus_notifications_queue_length",
            "gauge",
            "The number of alert notifications in the queue.",
            sender.queue_length() as f64,
        );
        o.metric(
            "prometheus_notifications_alertmanagers_discovered",
            "gauge",
            "The number of alertmanagers discovered and active.",
            sender.alertmanagers().0.len() as f64,
        );
    }
}

/// The built-in notifier's counters, with Alertmanager's names.
fn notifier_metrics(o: &mut Out, s: &AppState) {
    let Some(n) = s.notifier.get() else {
        return;
    };
    let m = &n.metrics;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    use strata_alerting::notifier::send::KindCounters;
    let per_kind = |c: fn(&KindCounters) -> &AtomicU64| -> Vec<(String, f64)> {
        m.send
            .iter()
            .map(|(k, v)| (format!("integration=\"{k}\""), load(c(v))))
            .collect()
    };
    o.family(
        "alertmanager_notifications_total",
        "counter",
        "The total number of attempted notifications.",
        &per_kind(|c| &c.notifications),
    );
    o.family(
        "alertmanager_notifications_failed_total",
        "counter",
        "The total number of failed notifications.",
        &per_kind(|c| &c.failed),
    );
    o.family(
        "alertmanager_notification_requests_total",
        "counter",
        "The total number of attempted notification requests.",
        &per_kind(|c| &c.requests),
    );
    o.family(
        "alertmanager_notification_requests_failed_total",
        "counter",
        "The total number of failed notification requests.",
        &per_kind(|c| &c.requests_failed),
    );
    o.family(
        "alertmanager_alerts_received_total",
        "counter",
        "The total number of received alerts.",
        &[
            ("status=\"firing\"".to_owned(), load(&m.received_firing)),
            ("status=\"resolved\"".to_owned(), load(&m.received_resolved)),
        ],
    );
    o.metric(
        "alertmanager_alerts_invalid_total",
        "counter",
        "The total number of received alerts that were invalid.",
        load(&m.invalid),
    );
    o.metric(
        "strata_notifier_notifications_acknowledged_total",
        "counter",
        "Repeat notifications skipped because their alert group is acknowledged.",
        load(&m.acknowledged),
    );
    o.metric(
        "strata_notifier_acknowledgements_forwarded_total",
        "counter",
        "Acknowledgements delivered to PagerDuty and Opsgenie integrations.",
        load(&m.acks_forwarded),
    );
    o.metric(
        "alertmanager_config_last_reload_successful",
        "gauge",
        "Whether the last configuration reload attempt was successful.",
        load(&m.reload_ok),
    );
    let now = strata_alerting::notifier::now_ms();
    o.metric(
        "alertmanager_silences",
        "gauge",
        "Number of active silences.",
        n.silences
            .list()
            .iter()
            .filter(|x| x.state(now) == strata_alerting::notifier::silences::SilenceState::Active)
            .count() as f64,
    );
    cluster_metrics(o, n);
}

/// The notifier's cluster, with Alertmanager's names (`alertmanager_cluster_enabled` is 0
/// without `--cluster.listen-address`, the others are then absent, as in Alertmanager).
fn cluster_metrics(o: &mut Out, n: &strata_alerting::notifier::Notifier) {
    let Some(p) = n.cluster() else {
        o.metric(
            "alertmanager_cluster_enabled",
            "gauge",
            "Indicates whether the clustering is enabled or not.",
            0.0,
        );
        return;
    };
    use strata_alerting::notifier::cluster::ClusterMetrics;
    let m = &p.metrics;
    let get = |c| ClusterMetrics::get(c) as f64;
    o.metric(
        "alertmanager_cluster_enabled",
        "gauge",
        "Indicates whether the clustering is enabled or not.",
        1.0,
    );
    o.metric(
        "alertmanager_cluster_members",
        "gauge",
        "Number indicating current number of members in cluster.",
        p.members().len() as f64,
    );
    o.metric(
        "alertmanager_peer_position",
        "gauge",
        "Position the Alertmanager instance believes it's in. The position determines a peer's behavior in the cluster.",
        p.position() as f64,
    );
    o.family(
        "alertmanager_cluster_peer_info",
        "gauge",
        "A metric with a constant '1' value labeled by peer name.",
        &[(
            format!("peer=\"{}\"", strata_ingest::expfmt::escape(p.name(), true)),
            1.0,
        )],
    );
    o.metric(
        "alertmanager_silences_gossip_messages_propagated_total",
        "counter",
        "Number of received gossip messages that have been further gossiped.",
        get(&m.silences_propagated),
    );
    o.metric(
        "alertmanager_nflog_gossip_messages_propagated_total",
        "counter",
        "Number of received gossip messages that have been further gossiped.",
        get(&m.nflog_propagated),
    );
    o.metric(
        "strata_acks_gossip_messages_propagated_total",
        "counter",
        "Peers' acknowledgements of alert groups merged (and gossiped on).",
        get(&m.acks_propagated),
    );
    o.family(
        "strata_cluster_state_invalid_total",
        "counter",
        "Peers' gossiped silences, notification log entries and acknowledgements refused as invalid.",
        &[
            ("state=\"silences\"".to_owned(), get(&m.silences_invalid)),
            ("state=\"nflog\"".to_owned(), get(&m.nflog_invalid)),
            ("state=\"acks\"".to_owned(), get(&m.acks_invalid)),
            ("state=\"unknown\"".to_owned(), get(&m.unknown_invalid)),
        ],
    );
    o.metric(
        "strata_cluster_state_oversized_total",
        "counter",
        "Local silences, notification log entries and acknowledgements too large to gossip (kept locally).",
        get(&m.oversized),
    );
    o.metric(
        "strata_cluster_unauthenticated_members",
        "gauge",
        "Nodes gossiping with this one whose member token does not verify with --cluster.key-file (not members).",
        get(&m.unauthenticated_members),
    );
}

fn process_metrics(o: &mut Out, s: &AppState) {
    o.metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
            - s.started.elapsed().as_secs_f64())
        .floor(),
    );
    // /proc/self/stat: fields 14 (utime) and 15 (stime) in clock ticks, 24 (rss) in pages.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit(')').next()
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        // After the ')' the first field is the state (field 3), so field n is at n - 3.
        o.metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (num(11) + num(12)) / 100.0,
        );
        o.metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            num(21) * 4096.0,
        );
        o.metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            num(20),
        );
    }
}
