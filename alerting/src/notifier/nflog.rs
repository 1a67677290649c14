//! The notification log: per aggregation group and receiver, which alerts were last
//! notified as firing and resolved, and when — Alertmanager's `nflog` — with the dedup
//! decision of its `DedupStage.needsUpdate`. Persisted to one JSON file on every change,
//! so a restart does not page again for what was already sent.
//!
//! In a cluster every entry logged is handed to the [`NflogHook`] (which gossips it), and
//! the peers' entries are [merged](Nflog::merge) as Alertmanager merges them: per key, the
//! later timestamp winning, entries older than the retention refused — so the node that
//! waits for its turn (`clusterWait`) sees what the first one sent and does not send again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// What was last sent for one (group, receiver).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Fingerprints notified as firing.
    pub firing: BTreeSet<u64>,
    /// Fingerprints notified as resolved.
    pub resolved: BTreeSet<u64>,
    /// When (ms).
    pub at: i64,
}

/// Alertmanager's `needsUpdate`: notify when new alerts fire, when everything notified
/// has resolved, when resolved alerts are new and the receiver sends resolved ones, or
/// when the repeat interval has passed.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    repeat_ms: i64,
    send_resolved: bool,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    e.at < now - repeat_ms
}

/// A change of the log, as handed to the [`NflogHook`].
#[derive(Clone, Copy, Debug)]
pub enum NflogChange<'a> {
    /// An entry logged here or merged from a peer: (key, entry).
    Set(&'a str, &'a Entry),
    /// An entry dropped after the retention (the key).
    Removed(&'a str),
}

/// Called with every change, under the log's lock (it must be quick and must not call
/// back into the log).
pub type NflogHook = Arc<dyn Fn(NflogChange<'_>) + Send + Sync>;

/// The log.
pub struct Nflog {
    entries: Mutex<BTreeMap<String, Entry>>,
    path: Option<PathBuf>,
    retention_ms: i64,
    hook: OnceLock<NflogHook>,
}

impl Nflog {
    /// Opens the log, reading `path` when it exists.
    pub fn open(path: Option<PathBuf>, retention_ms: i64) -> Result<Nflog, String> {
        let mut entries = BTreeMap::new();
        if let Some(p) = &path
            && p.exists()
        {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            entries = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(Nflog {
            entries: Mutex::new(entries),
            path,
            retention_ms,
            hook: OnceLock::new(),
        })
    }

    /// Installs the change hook (once; later calls are ignored) and hands it every entry
    /// held, so that what was loaded from the file is announced too.
    pub fn set_hook(&self, hook: NflogHook) {
        let entries = self.entries.lock();
        if self.hook.set(hook).is_ok() {
            for (k, e) in entries.iter() {
                self.changed(NflogChange::Set(k, e));
            }
        }
    }

    fn changed(&self, c: NflogChange<'_>) {
        if let Some(h) = self.hook.get() {
            h(c);
        }
    }

    /// How long entries are kept (ms).
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    /// Merges entries received from peers: each replaces the entry of its key when it is
    /// newer, or is added; entries older than the retention are refused. Merged entries
    /// are handed to the hook and persisted once. Returns how many were merged.
    pub fn merge(&self, incoming: Vec<(String, Entry)>, now: i64) -> Result<usize, String> {
        let mut entries = self.entries.lock();
        let mut n = 0;
        for (k, e) in incoming {
            if now - e.at > self.retention_ms {
                continue;
            }
            if entries.get(&k).is_some_and(|old| old.at >= e.at) {
                continue;
            }
            self.changed(NflogChange::Set(&k, &e));
            entries.insert(k, e);
            n += 1;
        }
        if n > 0 {
            self.persist(&entries)?;
        }
        Ok(n)
    }

    /// The entry of `key` (`<group key>/<receiver>`).
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.entries.lock().get(key).cloned()
    }

    /// Records a successful notification. An entry already newer (a peer's, with its
    /// clock ahead) stays, as in Alertmanager's `Log`.
    pub fn log(&self, key: &str, entry: Entry) -> Result<(), String> {
        let mut e = self.entries.lock();
        if e.get(key).is_some_and(|old| old.at > entry.at) {
            return Ok(());
        }
        self.changed(NflogChange::Set(key, &entry));
        e.insert(key.to_owned(), entry);
        self.persist(&e)
    }

    /// Drops entries older than the retention; returns how many.
    pub fn gc(&self, now: i64) -> usize {
        let mut e = self.entries.lock();
        let before = e.len();
        e.retain(|k, x| {
            let keep = now - x.at <= self.retention_ms;
            if !keep {
                self.changed(NflogChange::Removed(k));
            }
            keep
        });
        let n = before - e.len();
        if n > 0 {
            let _ = self.persist(&e);
        }
        n
    }

    fn persist(&self, entries: &BTreeMap<String, Entry>) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::to_vec(entries).map_err(|e| e.to_string())?;
        strata_storage::write_atomic(path, &json).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn dedup_decisions_as_alertmanager() {
        let repeat = 3_600_000;
        // Never notified: only when something fires.
        assert!(needs_update(None, &set(&[1]), &set(&[]), repeat, true, 0));
        assert!(!needs_update(None, &set(&[]), &set(&[1]), repeat, true, 0));
        let e = Entry {
            firing: set(&[1, 2]),
            resolved: set(&[]),
            at: 1000,
        };
        // Same firing set within the repeat interval: no.
        assert!(!needs_update(
            Some(&e),
            &set(&[1, 2]),
            &set(&[]),
            repeat,
            true,
            2000
        ));
        // A new firing alert: yes.
        assert!(needs_update(
            Some(&e),
            &set(&[1, 3]),
            &set(&[]),
            repeat,
            true,
            2000
        ));
        // One resolved: only for receivers that send resolved ones.
        assert!(needs_update(
            Some(&e),
            &set(&[1]),
            &set(&[2]),
            repeat,
            true,
            2000
        ));
        assert!(!needs_update(
            Some(&e),
            &set(&[1]),
            &set(&[2]),
            repeat,
            false,
            2000
        ));
        // All resolved: yes, whatever send_resolved says (clears the log).
        assert!(needs_update(
            Some(&e),
            &set(&[]),
            &set(&[1, 2]),
            repeat,
            false,
            2000
        ));
        // Repeat interval passed.
        assert!(needs_update(
            Some(&e),
            &set(&[1, 2]),
            &set(&[]),
            repeat,
            true,
            1000 + repeat + 1
        ));
    }

    #[test]
    fn merge_and_log_keep_the_newest() {
        let log = Nflog::open(None, 10_000).unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s = sent.clone();
        log.set_hook(Arc::new(move |c| {
            if let NflogChange::Set(k, e) = c {
                s.lock().push((k.to_owned(), e.at));
            }
        }));
        let e = |at| Entry {
            firing: set(&[1]),
            resolved: set(&[]),
            at,
        };
        log.log("g|r/webhook/0", e(100)).unwrap();
        assert_eq!(
            log.merge(
                vec![
                    ("g|r/webhook/0".into(), e(50)),
                    ("other".into(), e(-20_000)),
                ],
                1_000
            )
            .unwrap(),
            0,
            "older, and past the retention"
        );
        assert_eq!(
            log.merge(vec![("g|r/webhook/0".into(), e(200))], 1_000)
                .unwrap(),
            1
        );
        // A peer's newer entry is not overwritten by an older local one.
        log.log("g|r/webhook/0", e(150)).unwrap();
        assert_eq!(log.get("g|r/webhook/0").map(|x| x.at), Some(200));
        assert_eq!(
            *sent.lock(),
            vec![
                ("g|r/webhook/0".to_owned(), 100),
                ("g|r/webhook/0".to_owned(), 200)
            ]
        );
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nflog.json");
        let log = Nflog::open(Some(p.clone()), 5 * 24 * 3_600_000).unwrap();
        let e = Entry {
            firing: set(&[7]),
            resolved: set(&[]),
            at: 42,
        };
        log.log("{}:{alertname=\"A\"}/hook", e.clone()).unwrap();
        let again = Nflog::open(Some(p), 5 * 24 * 3_600_000).unwrap();
        assert_eq!(again.get("{}:{alertname=\"A\"}/hook"), Some(e));
        assert_eq!(again.gc(42 + 5 * 24 * 3_600_000 + 1), 1);
    }
}
