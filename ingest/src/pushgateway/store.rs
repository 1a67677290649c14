//! The push groups: push (`PUT` replaces the group, `POST` only the pushed families),
//! delete, consistency checks across groups (a metric name keeps one type), the
//! `push_time_seconds`/`push_failure_time_seconds` bookkeeping, an optional TTL, and
//! persistence to one JSON file, read at start, so pushed groups survive a restart.
//!
//! Persistence is debounced as the Pushgateway's (`--persistence.interval`): a change only
//! marks the store dirty; [`PushStore::persist_loop`] rewrites the file (atomically, with
//! an fsync) at most once per interval, and the binary calls [`PushStore::flush`] once more
//! at graceful shutdown, after the HTTP servers stopped. A graceful restart loses nothing;
//! a crash loses at most the changes of the last interval. A push is never refused for a
//! failed write: the error is logged and the write retried at the next interval.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use base64::Engine as _;
use prost::Message as _;

use crate::pushgateway::model::{BodyError, Family, MetricValue, from_proto, parse_text, to_proto};
use crate::pushgateway::proto::decode_delimited;
use crate::pushgateway::render::render_families;

/// Grouping labels.
pub type GroupKey = BTreeMap<String, String>;

/// One push group.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Grouping labels (`job` and the URL's other labels).
    pub labels: GroupKey,
    /// Families by name.
    pub families: BTreeMap<String, Family>,
    /// When each family was last pushed (ms).
    pub family_push_ms: BTreeMap<String, i64>,
    /// Last successful change (ms).
    pub push_time_ms: i64,
    /// Last failed change (ms; 0 = never).
    pub failure_time_ms: i64,
    /// Whether the last push succeeded.
    pub last_push_successful: bool,
}

/// Why a push was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Bad input (400).
    #[error("{0}")]
    BadRequest(String),
    /// The persistence file could not be written.
    #[error("persisting push groups: {0}")]
    Persist(String),
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    labels: GroupKey,
    push_time_ms: i64,
    failure_time_ms: i64,
    last_push_successful: bool,
    family_push_ms: BTreeMap<String, i64>,
    /// The families in text format (without grouping labels).
    text: String,
    /// The families holding native histograms, which the text format cannot carry, as
    /// base64 of delimited protobuf `MetricFamily`s; they replace their text versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    native: String,
}

/// All push groups.
pub struct PushStore {
    groups: Mutex<BTreeMap<GroupKey, Group>>,
    path: Option<PathBuf>,
    ttl_ms: i64,
    /// Set (under the `groups` lock) by every change not yet in the file.
    dirty: AtomicBool,
    /// One file write at a time.
    writing: Mutex<()>,
    /// Woken after every change (the persistence loop).
    dirtied: Notify,
    /// Woken after every change (the ingester ingests at once).
    pub changed: Notify,
}

impl PushStore {
    /// Opens the store, reading `path` when it exists. `ttl_ms` > 0 expires groups not
    /// pushed to for that long.
    pub fn open(path: Option<PathBuf>, ttl_ms: i64) -> Result<Arc<PushStore>, String> {
        let mut groups = BTreeMap::new();
        if let Some(p) = &path
            && p.exists()
        {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let list: Vec<Persisted> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            for g in list {
                let fams = match parse_persisted(&g) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(file = %p.display(), group = ?g.labels, error = ?e,
                            "skipping a persisted push group that does not parse");
                        continue;
                    }
                };
                groups.insert(
                    g.labels.clone(),
                    Group {
                        labels: g.labels,
                        families: fams.into_iter().map(|f| (f.name.clone(), f)).collect(),
                        family_push_ms: g.family_push_ms,
                        push_time_ms: g.push_time_ms,
                        failure_time_ms: g.failure_time_ms,
                        last_push_successful: g.last_push_successful,
                    },
                );
            }
        }
        Ok(Arc::new(PushStore {
            groups: Mutex::new(groups),
            path,
            ttl_ms,
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
            dirtied: Notify::new(),
            changed: Notify::new(),
        }))
    }

    /// Applies a push to group `key`: `replace` for `PUT` (the whole group), else `POST`
    /// (families of the same name). A refused push changes no metric, only the group's
    /// failure time.
    pub fn push(
        &self,
        key: GroupKey,
        body: Result<Vec<Family>, BodyError>,
        replace: bool,
        now_ms: i64,
    ) -> Result<(), PushError> {
        let mut groups = self.groups.lock();
        let result = body
            .map_err(|e| match e {
                BodyError::Malformed(m) => format!("failed to parse text: {m}"),
                BodyError::Invalid(m) => {
                    format!("pushed metrics are invalid or inconsistent with existing metrics: {m}")
                }
            })
            .and_then(|fams| check_consistency(&groups, &key, &fams).map(|()| fams));
        let fams = match result {
            Ok(f) => f,
            Err(msg) => {
                if let Some(g) = groups.get_mut(&key) {
                    g.failure_time_ms = now_ms;
                    g.last_push_successful = false;
                    self.mark_dirty();
                }
                return Err(PushError::BadRequest(msg));
            }
        };
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            labels: key,
            families: BTreeMap::new(),
            family_push_ms: BTreeMap::new(),
            push_time_ms: now_ms,
            failure_time_ms: 0,
            last_push_successful: true,
        });
        if replace {
            g.families.clear();
            g.family_push_ms.clear();
        }
        for f in fams {
            if f.metrics.is_empty() {
                continue;
            }
            g.family_push_ms.insert(f.name.clone(), now_ms);
            g.families.insert(f.name.clone(), f);
        }
        g.push_time_ms = now_ms;
        g.last_push_successful = true;
        self.mark_dirty();
        drop(groups);
        self.changed.notify_one();
        Ok(())
    }

    /// Deletes a group (absent groups are fine).
    pub fn delete(&self, key: &GroupKey) {
        let mut groups = self.groups.lock();
        groups.remove(key);
        self.mark_dirty();
        drop(groups);
        self.changed.notify_one();
    }

    /// Deletes every group.
    pub fn wipe(&self) {
        let mut groups = self.groups.lock();
        groups.clear();
        self.mark_dirty();
        drop(groups);
        self.changed.notify_one();
    }

    /// Removes groups older than the TTL; returns how many.
    pub fn expire(&self, now_ms: i64) -> usize {
        if self.ttl_ms <= 0 {
            return 0;
        }
        let mut groups = self.groups.lock();
        let before = groups.len();
        groups.retain(|_, g| now_ms - g.push_time_ms <= self.ttl_ms);
        let n = before - groups.len();
        if n > 0 {
            self.mark_dirty();
        }
        n
    }

    /// A copy of every group, in grouping-key order.
    pub fn snapshot(&self) -> Vec<Group> {
        self.groups.lock().values().cloned().collect()
    }

    /// Called with the `groups` lock held, after a change.
    fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
        self.dirtied.notify_one();
    }

    /// Writes the persistence file now if anything changed since the last write (a no-op
    /// without a file). Blocks on the fsync: call it off the async workers.
    pub fn flush(&self) -> Result<(), PushError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let _one = self.writing.lock();
        let json = {
            let groups = self.groups.lock();
            if !self.dirty.swap(false, Ordering::AcqRel) {
                return Ok(());
            }
            serde_json::to_vec(&persisted(&groups))
        };
        let written = json
            .map_err(|e| PushError::Persist(e.to_string()))
            .and_then(|json| {
                strata_storage::write_atomic(path, &json)
                    .map_err(|e| PushError::Persist(format!("{}: {e}", path.display())))
            });
        if written.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        written
    }

    /// Rewrites the persistence file at most once per `interval`: after a change, once
    /// `interval` has passed since the previous write (the first one counting from start),
    /// as the Pushgateway's persistence loop. A failed write is logged and retried an
    /// interval later. Returns when `stop` turns true *without* writing: the caller calls
    /// [`PushStore::flush`] once no more pushes can arrive.
    pub async fn persist_loop(
        self: Arc<Self>,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.path.is_none() {
            return;
        }
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.dirtied.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep_until(last + interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            last = tokio::time::Instant::now();
            let store = self.clone();
            let failed = match tokio::task::spawn_blocking(move || store.flush()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(error) = failed {
                tracing::error!(%error, "persisting push groups failed; retrying in one interval");
                self.dirtied.notify_one();
            }
        }
    }
}

/// The groups as written to the persistence file.
fn persisted(groups: &BTreeMap<GroupKey, Group>) -> Vec<Persisted> {
    groups
        .values()
        .map(|g| {
            let mut text = String::new();
            render_families(g.families.values(), &BTreeMap::new(), &mut text);
            let mut native = Vec::new();
            for f in g.families.values().filter(|f| has_native(f)) {
                // Encoding into a Vec cannot run out of room.
                let _ = to_proto(f).encode_length_delimited(&mut native);
            }
            let native = if native.is_empty() {
                String::new()
            } else {
                base64::engine::general_purpose::STANDARD.encode(native)
            };
            Persisted {
                native,
                labels: g.labels.clone(),
                push_time_ms: g.push_time_ms,
                failure_time_ms: g.failure_time_ms,
                last_push_successful: g.last_push_successful,
                family_push_ms: g.family_push_ms.clone(),
                text,
            }
        })
        .collect()
}

/// Whether a family holds a native histogram.
fn has_native(f: &Family) -> bool {
    f.metrics.iter().any(|m| {
        matches!(
            m.value,
            MetricValue::Histogram {
                native: Some(_),
                ..
            }
        )
    })
}

/// The families of a persisted group: the text, with the native-histogram families
/// decoded from their protobuf form in place of their text versions.
fn parse_persisted(g: &Persisted) -> Result<Vec<Family>, BodyError> {
    let mut fams = parse_text(g.text.as_bytes())?;
    if g.native.is_empty() {
        return Ok(fams);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&g.native)
        .map_err(|e| BodyError::Malformed(format!("native histograms: {e}")))?;
    let native = from_proto(
        decode_delimited(&bytes).map_err(BodyError::Malformed)?,
        false,
    )?;
    for n in native {
        match fams.iter_mut().find(|f| f.name == n.name) {
            Some(f) => *f = n,
            None => fams.push(n),
        }
    }
    Ok(fams)
}

/// A metric name keeps one type across all groups.
fn check_consistency(
    groups: &BTreeMap<GroupKey, Group>,
    key: &GroupKey,
    fams: &[Family],
) -> Result<(), String> {
    for f in fams {
        if f.name == "push_time_seconds" || f.name == "push_failure_time_seconds" {
            return Err(format!(
                "pushed metrics are invalid or inconsistent with existing metrics: {} is reserved for the push gateway",
                f.name
            ));
        }
        for (k, g) in groups {
            if k == key {
                continue;
            }
            if let Some(other) = g.families.get(&f.name)
                && other.kind != f.kind
            {
                return Err(format!(
                    "pushed metrics are invalid or inconsistent with existing metrics: collected metric {:?} is of type {} but a metric of the same name in group {:?} is of type {}",
                    f.name,
                    f.kind.as_str(),
                    g.labels,
                    other.kind.as_str()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(job: &str) -> GroupKey {
        GroupKey::from([("job".to_owned(), job.to_owned())])
    }

    #[test]
    fn put_post_delete_and_conflicts() {
        let s = PushStore::open(None, 0).unwrap();
        s.push(
            key("a"),
            parse_text(b"# TYPE g gauge\ng{k=\"1\"} 1\nc 2\n"),
            true,
            1000,
        )
        .unwrap();
        s.push(
            key("a"),
            parse_text(b"# TYPE g gauge\ng{k=\"2\"} 3\n"),
            false,
            2000,
        )
        .unwrap();
        let g = &s.snapshot()[0];
        assert_eq!(g.families.len(), 2, "POST keeps c");
        assert_eq!(g.families["g"].metrics.len(), 1, "POST replaces g whole");
        assert_eq!(g.push_time_ms, 2000);
        let e = s
            .push(key("b"), parse_text(b"# TYPE g counter\ng 1\n"), true, 3000)
            .unwrap_err();
        assert!(e.to_string().contains("type"), "{e}");
        assert!(s.snapshot().iter().all(|g| g.labels != key("b")));
        s.push(key("a"), parse_text(b"g 1 123\n"), true, 4000)
            .unwrap_err();
        let g = &s.snapshot()[0];
        assert_eq!(g.failure_time_ms, 4000);
        assert!(!g.last_push_successful);
        assert_eq!(g.families.len(), 2, "refused push leaves metrics");
        s.delete(&key("a"));
        assert!(s.snapshot().is_empty());
    }

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.json");
        let s = PushStore::open(Some(path.clone()), 0).unwrap();
        let body = b"# HELP h Help.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# TYPE g gauge\ng NaN\n";
        s.push(key("a"), parse_text(body), true, 1000).unwrap();
        assert!(!path.exists(), "a push only marks the store dirty");
        s.flush().unwrap();
        let written = std::fs::read(&path).unwrap();
        s.flush().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            written,
            "nothing new: no write"
        );
        let before = s.snapshot();
        let again = PushStore::open(Some(path), 0).unwrap();
        let after = again.snapshot();
        assert_eq!(before.len(), after.len());
        assert_eq!(before[0].labels, after[0].labels);
        assert_eq!(before[0].families["h"], after[0].families["h"]);
        assert_eq!(after[0].push_time_ms, 1000);
    }

    #[test]
    fn native_histograms_survive_a_reload() {
        use crate::pushgateway::proto::{BucketSpan, Histogram, Metric, MetricFamily};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.json");
        let s = PushStore::open(Some(path.clone()), 0).unwrap();
        let fam = |kind: i32| MetricFamily {
            name: Some("nh".into()),
            help: Some("Native.".into()),
            r#type: Some(kind),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count_float: Some(2.5),
                    sample_sum: Some(1.0),
                    schema: Some(2),
                    positive_span: vec![BucketSpan {
                        offset: Some(-1),
                        length: Some(2),
                    }],
                    positive_count: vec![1.5, 1.0],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        };
        let body = from_proto(vec![fam(5)], false);
        s.push(key("a"), body, true, 1000).unwrap();
        s.push(key("a"), parse_text(b"g 1\n"), false, 2000).unwrap();
        s.flush().unwrap();
        let before = s.snapshot();
        let MetricValue::Histogram {
            native: Some(h), ..
        } = &before[0].families["nh"].metrics[0].value
        else {
            panic!("no native histogram: {before:?}");
        };
        assert_eq!(h.hint, strata_vocab::CounterResetHint::Gauge);
        let after = PushStore::open(Some(path), 0).unwrap().snapshot();
        assert_eq!(before[0].families, after[0].families);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn persist_loop_writes_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.json");
        let s = PushStore::open(Some(path.clone()), 0).unwrap();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(s.clone().persist_loop(Duration::from_secs(1), rx));
        for i in 0..50 {
            let body = format!("x {i}\n");
            s.push(key("a"), parse_text(body.as_bytes()), true, i)
                .unwrap();
        }
        assert!(!path.exists(), "written before the interval passed");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !path.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let again = PushStore::open(Some(path.clone()), 0).unwrap();
        assert_eq!(
            again.snapshot()[0].push_time_ms,
            49,
            "the last push, in one write"
        );
        s.delete(&key("a"));
        let _ = stop.send(true);
        task.await.unwrap();
        assert_eq!(
            PushStore::open(Some(path.clone()), 0)
                .unwrap()
                .snapshot()
                .len(),
            1
        );
        s.flush().unwrap();
        assert!(
            PushStore::open(Some(path), 0)
                .unwrap()
                .snapshot()
                .is_empty()
        );
    }

    #[test]
    fn ttl_expires_old_groups() {
        let s = PushStore::open(None, 10_000).unwrap();
        s.push(key("a"), parse_text(b"x 1\n"), true, 0).unwrap();
        s.push(key("b"), parse_text(b"x 1\n"), true, 5_000).unwrap();
        assert_eq!(s.expire(12_000), 1);
        assert_eq!(s.snapshot()[0].labels, key("b"));
    }
}
