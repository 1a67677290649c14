//! The remote-write sender: one [`queue::Queue`] per `remote_write` entry, each following
//! the WAL (see `queue`), sending remote-write 1.0 requests (`send`), saving where it got
//! to (`position`) and counting with Prometheus's metric names (`metrics`).
//!
//! `protobuf_message` selects Remote Write 1.0 (`prometheus.WriteRequest`, the default;
//! metadata in requests of its own every `send_interval`) or 2.0
//! (`io.prometheus.write.v2.Request`: a symbols table per request, each series carrying
//! its family's metadata). Exemplars go with `send_exemplars`, native histograms with
//! `send_native_histograms` (both off by default, as in Prometheus).

mod metrics;
mod position;
mod queue;
mod send;

use std::path::PathBuf;
use std::sync::Arc;

use md5::{Digest, Md5};
use parking_lot::Mutex;
use strata_config::{Config, RemoteWriteConfig};
use strata_ingest::remote_write::MetricMetadata;
use strata_storage::Db;

pub use queue::saved_position;

/// Where the metadata sent by the queues comes from (the scrape targets' and received
/// families'), set by the server once it runs.
pub type MetadataSource =
    Arc<parking_lot::RwLock<Option<Arc<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>>>>;

/// What every queue shares: the storage it follows, where positions are saved, the WAL
/// pins and the metadata source.
pub(crate) struct QueueEnv {
    pub(crate) db: Arc<Db>,
    pub(crate) data_dir: PathBuf,
    pub(crate) pins: Arc<Pins>,
    pub(crate) metadata: MetadataSource,
}

/// The oldest WAL segment each queue still needs; the WAL keeps segments from the oldest
/// of them on (within its bound).
#[derive(Default)]
pub(crate) struct Pins {
    db: Option<Arc<Db>>,
    segments: Mutex<std::collections::HashMap<String, u64>>,
}

impl Pins {
    /// Queue `key` needs segments from `segment` on (`None`: nothing any more).
    pub(crate) fn set(&self, key: &str, segment: Option<u64>) {
        let mut s = self.segments.lock();
        match segment {
            Some(n) => s.insert(key.to_string(), n),
            None => s.remove(key),
        };
        if let Some(db) = &self.db {
            db.keep_wal_from(s.values().min().copied());
        }
    }
}

/// A `remote_write` entry that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Its settings are unusable (a bad header, TLS file, …).
    #[error("remote_write: {0}")]
    Config(String),
}

/// The `headers` of a `remote_write` or `remote_read` entry, checked.
pub(crate) fn header_map<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<reqwest::header::HeaderMap, RemoteError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        let n = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| RemoteError::Config(format!("header {k:?}: {e}")))?;
        let v = HeaderValue::from_str(v)
            .map_err(|e| RemoteError::Config(format!("header {k:?}: {e}")))?;
        out.insert(n, v);
    }
    Ok(out)
}

/// The queues of every `remote_write` entry.
pub struct RemoteWrite {
    env: QueueEnv,
    queues: tokio::sync::Mutex<Vec<queue::Queue>>,
    /// `(labels, metrics)` of the running queues, for `/metrics`.
    shown: Mutex<Vec<(String, Arc<metrics::QueueMetrics>)>>,
}

/// The key of a queue: its `name`, or a hash of its URL; it names the saved position, so a
/// queue whose other settings change resumes where it was.
fn queue_key(cfg: &RemoteWriteConfig) -> String {
    if !cfg.name.is_empty() {
        return sanitize(&cfg.name);
    }
    let digest = Md5::digest(cfg.url.to_string().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The `remote_name` label: the name, or (as Prometheus) the first 6 hex digits of a hash of
/// the entry.
fn remote_name(cfg: &RemoteWriteConfig) -> String {
    if !cfg.name.is_empty() {
        return cfg.name.clone();
    }
    let text = serde_json::to_string(cfg).unwrap_or_default();
    let digest = Md5::digest(text.as_bytes());
    digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl RemoteWrite {
    /// No queues yet; positions are kept under `data_dir`.
    pub fn new(db: Arc<Db>, data_dir: PathBuf) -> Arc<RemoteWrite> {
        Arc::new(RemoteWrite {
            env: QueueEnv {
                db: db.clone(),
                data_dir,
                pins: Arc::new(Pins {
                    db: Some(db),
                    segments: Mutex::new(Default::default()),
                }),
                metadata: Arc::new(parking_lot::RwLock::new(None)),
            },
            queues: tokio::sync::Mutex::new(Vec::new()),
            shown: Mutex::new(Vec::new()),
        })
    }

    /// Runs the `remote_write` entries of `config`: unchanged entries keep running, changed
    /// ones restart (from their saved position), removed ones stop. Every client is built
    /// before anything changes, so a bad entry changes nothing.
    pub async fn apply(&self, config: &Config) -> Result<(), RemoteError> {
        let external: Vec<(String, String)> = config
            .global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut wanted = Vec::new();
        for cfg in &config.remote_write {
            let name = remote_name(cfg);
            let client = send::Client::new(cfg, &name, &self.env.metadata)?;
            warn_unsent(cfg, &name);
            wanted.push((queue_key(cfg), cfg.clone(), client));
        }
        let mut queues = self.queues.lock().await;
        let mut keep = Vec::new();
        for q in std::mem::take(&mut *queues) {
            let same = wanted
                .iter()
                .any(|(k, c, _)| *k == q.key && *c == q.cfg && q.external == external);
            if same {
                keep.push(q);
            } else {
                let key = q.key.clone();
                q.stop().await;
                if !wanted.iter().any(|(k, _, _)| *k == key) {
                    // Gone from the configuration: its segments are not needed any more.
                    self.env.pins.set(&key, None);
                }
            }
        }
        for (key, cfg, client) in wanted {
            if keep.iter().any(|q| q.key == key && q.cfg == cfg) {
                continue;
            }
            tracing::info!(url = %cfg.url, queue = %key, "starting remote write queue");
            keep.push(queue::Queue::start(
                key,
                cfg,
                client,
                external.clone(),
                &self.env,
            ));
        }
        *self.shown.lock() = keep
            .iter()
            .map(|q| {
                let labels = format!(
                    "remote_name=\"{}\",url=\"{}\"",
                    strata_ingest::expfmt::escape(&remote_name(&q.cfg), true),
                    strata_ingest::expfmt::escape(&q.cfg.url.to_string(), true)
                );
                (labels, q.metrics.clone())
            })
            .collect();
        *queues = keep;
        Ok(())
    }

    /// Where the queues take the metadata they send (`metadata_config`).
    pub fn set_metadata_source(&self, f: Arc<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>) {
        *self.env.metadata.write() = Some(f);
    }

    /// Stops every queue, each saving its position.
    pub async fn stop(&self) {
        let mut queues = self.queues.lock().await;
        for q in queues.drain(..) {
            q.stop().await;
        }
        self.shown.lock().clear();
    }

    /// The queues' metrics in the text format.
    pub fn render_metrics(&self, out: &mut String) {
        let shown = self.shown.lock();
        let list: Vec<(String, &metrics::QueueMetrics)> =
            shown.iter().map(|(l, m)| (l.clone(), m.as_ref())).collect();
        let newest = self.env.db.head.max_time();
        metrics::render(out, &list, if newest == i64::MIN { 0 } else { newest });
    }
}

/// Warns about the settings of `cfg` that are accepted but have nothing to act on yet.
fn warn_unsent(cfg: &RemoteWriteConfig, name: &str) {
    if cfg.round_robin_dns {
        tracing::warn!(remote_name = %name, "remote_write round_robin_dns is not supported: the system resolver's order is used");
    }
}

#[cfg(test)]
mod tests;
