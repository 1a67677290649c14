//! Acknowledgements of firing alert groups (issue #26, beyond Alertmanager): who, why and
//! until when, for one aggregation group (group key and receiver) and the fingerprints of
//! its firing alerts at the time. While an acknowledgement is active and the group's firing
//! set is still the acknowledged one, the dispatcher skips the `repeat_interval` re-sends;
//! a changed group (an alert joins or resolves) notifies as usual.
//!
//! Kept like silences: one JSON file rewritten atomically on every change (a restart
//! forgets nothing), expired acknowledgements dropped after the retention, the number
//! held bounded ([`MAX_ACKS`]). In a cluster they are gossiped like silences: every change
//! goes to the [`AckHook`], and peers' acknowledgements are [`Acks::merge`]d, the later
//! `updated_at` winning, so an acknowledgement made on one node holds on every node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// At most this many acknowledgements are held (expired ones included until collected).
pub const MAX_ACKS: usize = 1000;

/// The longest an acknowledgement may last (30 days, ms).
pub const MAX_DURATION_MS: i64 = 30 * 24 * 3_600_000;

/// The longest comment, in characters.
pub const MAX_COMMENT: usize = 1024;

/// The longest author name, in characters.
pub const MAX_AUTHOR: usize = 256;

/// Expired acknowledgements are kept this long (ms) before collection.
pub const DEFAULT_ACK_RETENTION_MS: i64 = 24 * 3_600_000;

/// One acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Id (UUID format).
    pub id: String,
    /// The dispatcher's group key.
    pub group_key: String,
    /// The group's receiver.
    pub receiver: String,
    /// Fingerprints of the group's firing alerts when acknowledged.
    pub fingerprints: BTreeSet<u64>,
    /// Author.
    pub created_by: String,
    /// Comment (may be empty).
    pub comment: String,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms); moved to the expiry time when expired by hand.
    pub ends_at: i64,
    /// Last change (ms): creation, or expiry by hand or by a newer acknowledgement of the
    /// group. The later one wins when peers' copies are merged. (Files written before it
    /// existed read it as `starts_at`.)
    #[serde(default)]
    pub updated_at: i64,
}

impl Acknowledgement {
    /// Whether it is in force at `now` (ms).
    pub fn active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether it still holds for a group firing `firing` at `now`: active and the
    /// firing set unchanged.
    pub fn covers(&self, firing: &BTreeSet<u64>, now: i64) -> bool {
        self.active(now) && !firing.is_empty() && self.fingerprints == *firing
    }
}

/// What a client asks for.
#[derive(Clone, Debug)]
pub struct AckInput {
    /// The group key.
    pub group_key: String,
    /// The receiver.
    pub receiver: String,
    /// Fingerprints of the group's firing alerts now.
    pub fingerprints: BTreeSet<u64>,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
    /// End (ms).
    pub ends_at: i64,
}

/// Why a request on acknowledgements failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AckError {
    /// Invalid input (400).
    #[error("{0}")]
    Invalid(String),
    /// No such acknowledgement or group (404).
    #[error("{0} not found")]
    NotFound(String),
    /// Too many acknowledgements held (429).
    #[error("too many acknowledgements (at most {0}); expire some first")]
    Limit(usize),
    /// The file could not be written (500).
    #[error("persisting acknowledgements: {0}")]
    Persist(String),
}

/// A changed acknowledgement, as handed to the [`AckHook`].
#[derive(Clone, Copy, Debug)]
pub enum AckChange<'a> {
    /// Created, expired or merged from a peer.
    Set(&'a Acknowledgement),
    /// Dropped after the retention (the id).
    Removed(&'a str),
}

/// Called with every change, under the set's lock (it must be quick and must not call
/// back into the set).
pub type AckHook = Arc<dyn Fn(AckChange<'_>) + Send + Sync>;

/// The acknowledgements of this server.
pub struct Acks {
    all: Mutex<BTreeMap<String, Acknowledgement>>,
    path: Option<PathBuf>,
    retention_ms: i64,
    hook: OnceLock<AckHook>,
}

impl Acks {
    /// Opens the set, reading `path` when it exists.
    pub fn open(path: Option<PathBuf>, retention_ms: i64) -> Result<Acks, String> {
        let mut all = BTreeMap::new();
        if let Some(p) = &path
            && p.exists()
        {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let list: Vec<Acknowledgement> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            for mut a in list {
                if a.updated_at == 0 {
                    a.updated_at = a.starts_at;
                }
                all.insert(a.id.clone(), a);
            }
        }
        Ok(Acks {
            all: Mutex::new(all),
            path,
            retention_ms,
            hook: OnceLock::new(),
        })
    }

    /// Installs the change hook (once; later calls are ignored) and hands it every
    /// acknowledgement held.
    pub fn set_hook(&self, hook: AckHook) {
        let all = self.all.lock();
        if self.hook.set(hook).is_ok() {
            for a in all.values() {
                self.changed(AckChange::Set(a));
            }
        }
    }

    fn changed(&self, c: AckChange<'_>) {
        if let Some(h) = self.hook.get() {
            h(c);
        }
    }

    /// Merges acknowledgements received from peers: each replaces the one of its id when
    /// it is newer (later `updated_at`; on a tie the earlier end, so an expiry wins), or
    /// is added while fewer than [`MAX_ACKS`] are held; ones expired longer than the
    /// retention ago are refused. Merged ones are handed to the hook (gossiped on) and
    /// persisted once. Returns how many were merged.
    pub fn merge(&self, incoming: Vec<Acknowledgement>, now: i64) -> Result<usize, AckError> {
        let mut all = self.all.lock();
        let mut n = 0;
        for a in incoming {
            if now - a.ends_at > self.retention_ms {
                continue;
            }
            match all.get(&a.id) {
                Some(old) if (old.updated_at, -old.ends_at) >= (a.updated_at, -a.ends_at) => {
                    continue;
                }
                None if all.len() >= MAX_ACKS => {
                    all.retain(|_, x| x.ends_at > now);
                    if all.len() >= MAX_ACKS {
                        tracing::warn!(id = %a.id, "a peer's acknowledgement not merged: {MAX_ACKS} held");
                        continue;
                    }
                }
                _ => {}
            }
            self.changed(AckChange::Set(&a));
            all.insert(a.id.clone(), a);
            n += 1;
        }
        if n > 0 {
            self.persist(&all)?;
        }
        Ok(n)
    }

    /// Creates an acknowledgement at `now` (ms); an active one of the same group is
    /// expired (replaced). Returns the new one.
    pub fn create(&self, input: AckInput, now: i64) -> Result<Acknowledgement, AckError> {
        validate(&input, now)?;
        let mut all = self.all.lock();
        if all.len() >= MAX_ACKS {
            all.retain(|_, a| a.ends_at > now);
            if all.len() >= MAX_ACKS {
                return Err(AckError::Limit(MAX_ACKS));
            }
        }
        for a in all.values_mut() {
            if a.group_key == input.group_key && a.receiver == input.receiver && a.active(now) {
                a.ends_at = now;
                a.updated_at = now;
                if let Some(h) = self.hook.get() {
                    h(AckChange::Set(a));
                }
            }
        }
        let ack = Acknowledgement {
            id: crate::notifier::silences::new_id(),
            group_key: input.group_key,
            receiver: input.receiver,
            fingerprints: input.fingerprints,
            created_by: input.created_by,
            comment: input.comment,
            starts_at: now,
            ends_at: input.ends_at,
            updated_at: now,
        };
        self.changed(AckChange::Set(&ack));
        all.insert(ack.id.clone(), ack.clone());
        self.persist(&all)?;
        Ok(ack)
    }

    /// Expires an acknowledgement now.
    pub fn expire(&self, id: &str, now: i64) -> Result<(), AckError> {
        let mut all = self.all.lock();
        let a = all
            .get_mut(id)
            .ok_or_else(|| AckError::NotFound(format!("acknowledgement {id}")))?;
        if !a.active(now) {
            return Err(AckError::Invalid(format!(
                "acknowledgement {id} already expired"
            )));
        }
        a.ends_at = now;
        a.updated_at = now;
        if let Some(h) = self.hook.get() {
            h(AckChange::Set(a));
        }
        self.persist(&all)
    }

    /// One acknowledgement.
    pub fn get(&self, id: &str) -> Option<Acknowledgement> {
        self.all.lock().get(id).cloned()
    }

    /// Every acknowledgement held, by id.
    pub fn list(&self) -> Vec<Acknowledgement> {
        self.all.lock().values().cloned().collect()
    }

    /// The active acknowledgement of a group at `now` (the latest when several).
    pub fn active_for(&self, group_key: &str, receiver: &str, now: i64) -> Option<Acknowledgement> {
        self.all
            .lock()
            .values()
            .filter(|a| a.group_key == group_key && a.receiver == receiver && a.active(now))
            .max_by_key(|a| a.starts_at)
            .cloned()
    }

    /// Drops acknowledgements expired longer than the retention ago; returns how many.
    pub fn gc(&self, now: i64) -> usize {
        let mut all = self.all.lock();
        let before = all.len();
        all.retain(|id, a| {
            let keep = now - a.ends_at <= self.retention_ms;
            if !keep {
                self.changed(AckChange::Removed(id));
            }
            keep
        });
        let n = before - all.len();
        if n > 0
            && let Err(e) = self.persist(&all)
        {
            tracing::warn!(error = %e, "collecting acknowledgements");
        }
        n
    }

    fn persist(&self, all: &BTreeMap<String, Acknowledgement>) -> Result<(), AckError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let list: Vec<&Acknowledgement> = all.values().collect();
        let json = serde_json::to_vec(&list).map_err(|e| AckError::Persist(e.to_string()))?;
        strata_storage::write_atomic(path, &json)
            .map_err(|e| AckError::Persist(format!("{}: {e}", path.display())))
    }
}

fn validate(a: &AckInput, now: i64) -> Result<(), AckError> {
    let invalid = |m: &str| Err(AckError::Invalid(m.to_owned()));
    if a.created_by.trim().is_empty() {
        return invalid("createdBy is required");
    }
    if a.created_by.chars().count() > MAX_AUTHOR {
        return Err(AckError::Invalid(format!(
            "createdBy is longer than {MAX_AUTHOR} characters"
        )));
    }
    if a.comment.chars().count() > MAX_COMMENT {
        return Err(AckError::Invalid(format!(
            "comment is longer than {MAX_COMMENT} characters"
        )));
    }
    if a.ends_at <= now {
        return invalid("endsAt must be in the future");
    }
    if a.ends_at - now > MAX_DURATION_MS {
        return invalid("endsAt is more than 30 days ahead");
    }
    if a.fingerprints.is_empty() {
        return invalid("the group has no firing alerts");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn input(key: &str, fps: &[u64], end: i64) -> AckInput {
        AckInput {
            group_key: key.into(),
            receiver: "r".into(),
            fingerprints: fps.iter().copied().collect(),
            created_by: "me".into(),
            comment: "looking".into(),
            ends_at: end,
        }
    }

    #[test]
    fn lifecycle_covers_and_replaces() {
        let acks = Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap();
        let a = acks.create(input("k", &[1, 2], 5000), 1000).unwrap();
        let fps: BTreeSet<u64> = [1, 2].into();
        assert!(a.covers(&fps, 2000));
        assert!(!a.covers(&[1, 2, 3].into(), 2000));
        assert!(!a.covers(&fps, 5000));
        let b = acks.create(input("k", &[1, 2], 9000), 2000).unwrap();
        assert_eq!(acks.active_for("k", "r", 2500).unwrap().id, b.id);
        assert!(!acks.get(&a.id).unwrap().active(2500));
        acks.expire(&b.id, 3000).unwrap();
        assert!(acks.active_for("k", "r", 3000).is_none());
        assert!(matches!(
            acks.expire(&b.id, 3000),
            Err(AckError::Invalid(_))
        ));
        assert!(matches!(
            acks.expire("nope", 3000),
            Err(AckError::NotFound(_))
        ));
        assert_eq!(acks.gc(3000 + DEFAULT_ACK_RETENTION_MS + 1), 2);
    }

    #[test]
    fn validation() {
        let acks = Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap();
        let mut i = input("k", &[1], 5000);
        i.created_by = " ".into();
        assert!(matches!(acks.create(i, 1000), Err(AckError::Invalid(_))));
        assert!(acks.create(input("k", &[1], 500), 1000).is_err());
        assert!(
            acks.create(input("k", &[1], MAX_DURATION_MS + 2000), 1000)
                .is_err()
        );
        assert!(acks.create(input("k", &[], 5000), 1000).is_err());
        let mut i = input("k", &[1], 5000);
        i.comment = "x".repeat(MAX_COMMENT + 1);
        assert!(acks.create(i, 1000).is_err());
    }

    #[test]
    fn bounded() {
        let acks = Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap();
        for i in 0..MAX_ACKS {
            acks.create(input(&format!("k{i}"), &[1], 5000), 1000)
                .unwrap();
        }
        assert_eq!(
            acks.create(input("more", &[1], 5000), 1000),
            Err(AckError::Limit(MAX_ACKS))
        );
        // Expired ones make room.
        assert!(acks.create(input("more", &[1], 9000), 6000).is_ok());
        // Peers' acknowledgements are held to the same bound: while the active ones
        // fill it, a new one is not merged.
        let full = Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap();
        for i in 0..MAX_ACKS {
            full.create(input(&format!("k{i}"), &[1], 50_000), 1000)
                .unwrap();
        }
        let mut peer = acks.list()[0].clone();
        peer.id = "from-a-peer".into();
        peer.ends_at = 50_000;
        peer.updated_at = 2000;
        assert_eq!(full.merge(vec![peer], 2000).unwrap(), 0);
        assert_eq!(full.list().len(), MAX_ACKS);
    }

    #[test]
    fn merge_keeps_the_newest_and_hooks_every_change() {
        let acks = Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = seen.clone();
        acks.set_hook(Arc::new(move |c| {
            s.lock().push(match c {
                AckChange::Set(a) => format!("set {} {}", a.ends_at, a.updated_at),
                AckChange::Removed(_) => "removed".into(),
            });
        }));
        let a = acks.create(input("k", &[1], 5000), 1000).unwrap();
        // A peer's older copy loses; its expiry (later update) wins; a tie keeps the
        // earlier end.
        let mut older = a.clone();
        older.updated_at = 500;
        older.ends_at = 9000;
        assert_eq!(acks.merge(vec![older], 2000).unwrap(), 0);
        let mut expired = a.clone();
        expired.ends_at = 1500;
        expired.updated_at = 1500;
        assert_eq!(acks.merge(vec![expired.clone()], 2000).unwrap(), 1);
        let mut tie = expired.clone();
        tie.ends_at = 4000;
        assert_eq!(acks.merge(vec![tie], 2000).unwrap(), 0);
        assert_eq!(acks.get(&a.id).unwrap().ends_at, 1500);
        // Past the retention: refused.
        let mut old = a.clone();
        old.id = "other".into();
        assert_eq!(
            acks.merge(vec![old], 5000 + DEFAULT_ACK_RETENTION_MS + 1)
                .unwrap(),
            0
        );
        acks.gc(1500 + DEFAULT_ACK_RETENTION_MS + 1);
        assert_eq!(
            *seen.lock(),
            vec!["set 5000 1000", "set 1500 1500", "removed"]
        );
    }

    #[test]
    fn persisted() {
        let dir = std::env::temp_dir().join(format!("strata-acks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("acks.json");
        let acks = Acks::open(Some(path.clone()), DEFAULT_ACK_RETENTION_MS).unwrap();
        let a = acks.create(input("k", &[1, 7], 5000), 1000).unwrap();
        let again = Acks::open(Some(path), DEFAULT_ACK_RETENTION_MS).unwrap();
        assert_eq!(again.get(&a.id), Some(a));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
