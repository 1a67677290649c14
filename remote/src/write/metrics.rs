//! The counters of one queue, rendered with Prometheus's `prometheus_remote_storage_*`
//! names and `remote_name` / `url` labels, so existing remote-write dashboards work.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the send-duration histogram (Prometheus's buckets).
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// What one queue counts.
#[derive(Debug, Default)]
pub(super) struct QueueMetrics {
    /// Samples sent (accepted by the receiver).
    pub(super) samples: AtomicU64,
    /// Exemplars sent (accepted by the receiver), with `send_exemplars`.
    pub(super) exemplars: AtomicU64,
    /// Samples that failed with an unrecoverable error (not retried).
    pub(super) failed: AtomicU64,
    /// Samples sent again after a recoverable error.
    pub(super) retried: AtomicU64,
    /// Samples dropped before sending (relabeling, unknown series, `sample_age_limit`).
    pub(super) dropped: AtomicU64,
    /// Samples read from the WAL and not yet sent.
    pub(super) pending: AtomicI64,
    /// Compressed bytes sent.
    pub(super) bytes: AtomicU64,
    /// Shards running, desired, and the configured bounds.
    pub(super) shards: AtomicU64,
    pub(super) shards_desired: AtomicU64,
    pub(super) shards_min: AtomicU64,
    pub(super) shards_max: AtomicU64,
    /// Newest sample timestamp (ms) read from the WAL, and sent.
    pub(super) highest_read_ms: AtomicI64,
    pub(super) highest_sent_ms: AtomicI64,
    /// Metadata entries sent, refused for good, retried; bytes sent.
    pub(super) metadata: AtomicU64,
    pub(super) metadata_failed: AtomicU64,
    pub(super) metadata_retried: AtomicU64,
    pub(super) metadata_bytes: AtomicU64,
    /// WAL segment being read.
    pub(super) segment: AtomicU64,
    /// WAL segments skipped because they were deleted before they were read.
    pub(super) segments_skipped: AtomicU64,
    /// Time spent sending batches, retries and their pauses included (µs).
    busy_us: AtomicU64,
    /// Send durations: per-bucket counts, total count and sum (µs).
    sends: [AtomicU64; BUCKETS.len()],
    sends_count: AtomicU64,
    sends_sum_us: AtomicU64,
}

impl QueueMetrics {
    /// Records one send attempt that took `d`.
    pub(super) fn observe_send(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(&self.sends) {
            if s <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sends_count.fetch_add(1, Ordering::Relaxed);
        self.sends_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds the time one batch took to send, retries included.
    pub(super) fn add_busy(&self, d: std::time::Duration) {
        self.busy_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Seconds spent sending batches, retries included.
    pub(super) fn busy_secs(&self) -> f64 {
        self.busy_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Total seconds spent sending and sends made.
    pub(super) fn send_totals(&self) -> (f64, u64) {
        (
            self.sends_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.sends_count.load(Ordering::Relaxed),
        )
    }
}

/// Text exposition of every queue's metrics: `(labels, metrics)` with labels already
/// escaped (`remote_name="…",url="…"`).
/// `newest_ms` is the newest sample stored (the head's newest time).
pub(super) fn render(out: &mut String, queues: &[(String, &QueueMetrics)], newest_ms: i64) {
    if queues.is_empty() {
        return;
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    // The newest sample stored, as Prometheus's (it counts what is appended, not what the
    // queues have read): with each queue's highest sent timestamp, the usual "remote write
    // behind" alert, which so fires while a receiver is down.
    let newest = queues
        .iter()
        .map(|(_, m)| m.highest_read_ms.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0)
        .max(newest_ms);
    let name = "prometheus_remote_storage_highest_timestamp_in_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.\n# TYPE {name} gauge\n{name} {}",
        newest as f64 / 1e3
    );
    let family =
        |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&QueueMetrics) -> f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, m) in queues {
                let _ = writeln!(out, "{name}{{{labels}}} {}", f(m));
            }
        };
    family(
        out,
        "prometheus_remote_storage_samples_total",
        "counter",
        "Total number of samples sent to remote storage.",
        &|m| load(&m.samples),
    );
    family(
        out,
        "prometheus_remote_storage_exemplars_total",
        "counter",
        "Total number of exemplars sent to remote storage.",
        &|m| load(&m.exemplars),
    );
    family(
        out,
        "prometheus_remote_storage_samples_failed_total",
        "counter",
        "Total number of samples which failed on send to remote storage, non-recoverable errors.",
        &|m| load(&m.failed),
    );
    family(
        out,
        "prometheus_remote_storage_samples_retried_total",
        "counter",
        "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
        &|m| load(&m.retried),
    );
    family(
        out,
        "prometheus_remote_storage_samples_dropped_total",
        "counter",
        "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.",
        &|m| load(&m.dropped),
    );
    family(
        out,
        "prometheus_remote_storage_samples_pending",
        "gauge",
        "The number of samples pending in the queues shards to be sent to the remote storage.",
        &|m| m.pending.load(Ordering::Relaxed) as f64,
    );
    family(
        out,
        "prometheus_remote_storage_bytes_total",
        "counter",
        "The total number of bytes of data (not metadata) sent by the queue after compression.",
        &|m| load(&m.bytes),
    );
    family(
        out,
        "prometheus_remote_storage_shards",
        "gauge",
        "The number of shards used for parallel sending to the remote storage.",
        &|m| load(&m.shards),
    );
    family(
        out,
        "prometheus_remote_storage_shards_desired",
        "gauge",
        "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
        &|m| load(&m.shards_desired),
    );
    family(
        out,
        "prometheus_remote_storage_shards_min",
        "gauge",
        "The minimum number of shards that the queue is allowed to run.",
        &|m| load(&m.shards_min),
    );
    family(
        out,
        "prometheus_remote_storage_shards_max",
        "gauge",
        "The maximum number of shards that the queue is allowed to run.",
        &|m| load(&m.shards_max),
    );
    family(
        out,
        "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
        "gauge",
        "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
        &|m| m.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1e3,
    );
    family(
        out,
        "prometheus_remote_storage_queue_highest_read_timestamp_seconds",
        "gauge",
        "Timestamp from a WAL sample, the highest timestamp read by this queue, in seconds since epoch.",
        &|m| m.highest_read_ms.load(Ordering::Relaxed) as f64 / 1e3,
    );
    family(
        out,
        "prometheus_remote_storage_metadata_total",
        "counter",
        "Total number of metadata entries sent to remote storage.",
        &|m| load(&m.metadata),
    );
    family(
        out,
        "prometheus_remote_storage_metadata_failed_total",
        "counter",
        "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.",
        &|m| load(&m.metadata_failed),
    );
    family(
        out,
        "prometheus_remote_storage_metadata_retried_total",
        "counter",
        "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.",
        &|m| load(&m.metadata_retried),
    );
    family(
        out,
        "prometheus_remote_storage_metadata_bytes_total",
        "counter",
        "The total number of bytes of metadata sent by the queue after compression.",
        &|m| load(&m.metadata_bytes),
    );
    family(
        out,
        "prometheus_wal_watcher_current_segment",
        "gauge",
        "Current segment the WAL watcher is reading records from.",
        &|m| load(&m.segment),
    );
    family(
        out,
        "strata_remote_storage_wal_segments_skipped_total",
        "counter",
        "WAL segments deleted before this queue read them (it fell behind the WAL's bound).",
        &|m| load(&m.segments_skipped),
    );
    let name = "prometheus_remote_storage_sent_batch_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Duration of send calls to the remote storage.\n# TYPE {name} histogram"
    );
    for (labels, m) in queues {
        for (b, c) in BUCKETS.iter().zip(&m.sends) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {}", load(c));
        }
        let (sum, count) = m.send_totals();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}
