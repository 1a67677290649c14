//! The push ingester: stores every pushed series at each `scrape_interval` (and at once
//! after a push or delete), with staleness markers for series that left, as Prometheus
//! scraping a Pushgateway with `honor_labels: true` would, with `scrape_native_histograms`
//! and `always_scrape_classic_histograms` on: a pushed native histogram is stored as a
//! native histogram sample under the family name, and its classic series only when it has
//! classic buckets too. A native histogram series that leaves ends with a float staleness
//! marker (Prometheus writes a stale histogram; both end the series for queries).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use strata_storage::{Appender, Db, Labels, STALE_NAN, SeriesSamples};

use crate::pushgateway::render::{histogram_samples, samples};
use crate::pushgateway::store::PushStore;

/// Runs until `stop` turns true. `interval_ms` may change (reload).
pub async fn run(
    store: Arc<PushStore>,
    db: Arc<Db>,
    interval_ms: Arc<AtomicI64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut prev: HashSet<Labels> = HashSet::new();
    loop {
        let wait = Duration::from_millis(interval_ms.load(Ordering::Relaxed).max(1000) as u64);
        let pushed = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = store.changed.notified() => true,
            _ = stop.wait_for(|s| *s) => return,
        };
        if pushed {
            // Coalesce bursts of pushes.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = crate::scrape::scrape_loop::wall_ms();
        store.expire(now);
        let mut cur = HashSet::new();
        let mut batch = Vec::new();
        let groups = store.snapshot();
        for (l, v) in samples(&groups) {
            let labels = Labels::from_pairs(l);
            cur.insert(labels.clone());
            batch.push(SeriesSamples {
                histograms: Vec::new(),
                labels,
                samples: vec![(now, v)],
            });
        }
        for (l, h) in histogram_samples(&groups) {
            let labels = Labels::from_pairs(l);
            cur.insert(labels.clone());
            batch.push(SeriesSamples {
                histograms: vec![(now, h)],
                labels,
                samples: Vec::new(),
            });
        }
        for gone in prev.difference(&cur) {
            batch.push(SeriesSamples {
                histograms: Vec::new(),
                labels: gone.clone(),
                samples: vec![(now, STALE_NAN)],
            });
        }
        if !batch.is_empty() {
            let d = db.clone();
            match tokio::task::spawn_blocking(move || d.append(&batch)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "storing pushed metrics failed"),
                Err(e) => tracing::warn!(error = %e, "storing pushed metrics failed"),
            }
        }
        prev = cur;
    }
}
