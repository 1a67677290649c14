//! Silences as Alertmanager keeps them: matchers and a time window; pending before it,
//! active within it, expired after it. Creating and updating follow Alertmanager's rules
//! (a new silence starting in the past starts now; an active silence whose matchers or
//! start change is expired and replaced by a new one, other changes are made in place;
//! the end may not be in the past; at least one matcher must not match the empty string).
//! The set is persisted to one JSON file, rewritten atomically on every change, so a
//! restart forgets nothing; expired silences are dropped after the retention (120 h).
//!
//! In a cluster every change is handed to the [`SilenceHook`] (which gossips it), and the
//! peers' silences are [merged](Silences::merge) as Alertmanager merges them: by id, the
//! later `updatedAt` winning, silences past their retention refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::notifier::config::{MatchOp, Matcher, matches_all};

/// Alertmanager's `--data.retention` default: expired silences are kept this long.
pub const DEFAULT_RETENTION_MS: i64 = 120 * 3_600_000;

/// A silence's state at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// In force.
    Active,
    /// Over (or expired by hand).
    Expired,
}

impl SilenceState {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// One silence.
#[derive(Clone, Debug)]
pub struct Silence {
    /// Id (UUID format).
    pub id: String,
    /// Matchers (all must match).
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms).
    pub ends_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
}

impl Silence {
    /// The state at `now` (ms).
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// What a client asks for (API v2 `postableSilence`).
#[derive(Clone, Debug)]
pub struct SilenceInput {
    /// Update this silence (empty: create).
    pub id: Option<String>,
    /// Matchers.
    pub matchers: Vec<Matcher>,
    /// Start (ms).
    pub starts_at: i64,
    /// End (ms).
    pub ends_at: i64,
    /// Author.
    pub created_by: String,
    /// Comment.
    pub comment: String,
}

/// Why a request on silences failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SilenceError {
    /// Invalid input (400).
    #[error("{0}")]
    Invalid(String),
    /// No such silence (404).
    #[error("silence {0} not found")]
    NotFound(String),
    /// The file could not be written (500).
    #[error("persisting silences: {0}")]
    Persist(String),
}

/// A changed silence, as handed to the [`SilenceHook`].
#[derive(Clone, Copy, Debug)]
pub enum SilenceChange<'a> {
    /// Created, updated, expired or merged from a peer.
    Set(&'a Silence),
    /// Dropped after the retention (the id).
    Removed(&'a str),
}

/// Called with every change, under the set's lock (it must be quick and must not call
/// back into the set).
pub type SilenceHook = Arc<dyn Fn(SilenceChange<'_>) + Send + Sync>;

/// A silence as written to the file and gossiped to peers.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    id: String,
    /// `(name, op, value)` with op `=`, `!=`, `=~`, `!~`.
    matchers: Vec<(String, String, String)>,
    starts_at: i64,
    ends_at: i64,
    updated_at: i64,
    created_by: String,
    comment: String,
}

impl Stored {
    /// The stored form of `s`.
    pub(crate) fn of(s: &Silence) -> Stored {
        Stored {
            id: s.id.clone(),
            matchers: s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), op_str(m.op).to_owned(), m.value.clone()))
                .collect(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: s.updated_at,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        }
    }

    /// The silence, its matchers parsed (an error names the silence).
    pub(crate) fn into_silence(self) -> Result<Silence, String> {
        let mut matchers = Vec::with_capacity(self.matchers.len());
        for (name, op, value) in &self.matchers {
            let op =
                op_parse(op).ok_or_else(|| format!("silence {}: bad operator {op:?}", self.id))?;
            matchers.push(
                Matcher::new(name, op, value).map_err(|e| format!("silence {}: {e}", self.id))?,
            );
        }
        Ok(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

fn op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Eq => "=",
        MatchOp::NotEq => "!=",
        MatchOp::Re => "=~",
        MatchOp::NotRe => "!~",
    }
}

fn op_parse(s: &str) -> Option<MatchOp> {
    Some(match s {
        "=" => MatchOp::Eq,
        "!=" => MatchOp::NotEq,
        "=~" => MatchOp::Re,
        "!~" => MatchOp::NotRe,
        _ => return None,
    })
}

/// The silences of this server.
pub struct Silences {
    all: Mutex<BTreeMap<String, Silence>>,
    path: Option<PathBuf>,
    retention_ms: i64,
    hook: OnceLock<SilenceHook>,
}

impl Silences {
    /// Opens the set, reading `path` when it exists.
    pub fn open(path: Option<PathBuf>, retention_ms: i64) -> Result<Silences, String> {
        let mut all = BTreeMap::new();
        if let Some(p) = &path
            && p.exists()
        {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let list: Vec<Stored> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            for s in list {
                let s = s
                    .into_silence()
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                all.insert(s.id.clone(), s);
            }
        }
        Ok(Silences {
            all: Mutex::new(all),
            path,
            retention_ms,
            hook: OnceLock::new(),
        })
    }

    /// Installs the change hook (once; later calls are ignored) and hands it every
    /// silence held, so that what was loaded from the file is announced too.
    pub fn set_hook(&self, hook: SilenceHook) {
        let all = self.all.lock();
        if self.hook.set(hook).is_ok() {
            for s in all.values() {
                self.changed(SilenceChange::Set(s));
            }
        }
    }

    fn changed(&self, c: SilenceChange<'_>) {
        if let Some(h) = self.hook.get() {
            h(c);
        }
    }

    /// How long expired silences are kept (ms).
    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    /// Merges silences received from peers: each replaces the one of its id when it is
    /// newer (later `updatedAt`), or is added; silences expired longer than the retention
    /// ago are refused. Merged silences are handed to the hook (so this node gossips them
    /// on, as Alertmanager propagates what it merged) and persisted once. Returns how many
    /// were merged.
    pub fn merge(&self, incoming: Vec<Silence>, now: i64) -> Result<usize, SilenceError> {
        let mut all = self.all.lock();
        let mut n = 0;
        for s in incoming {
            if now - s.ends_at > self.retention_ms {
                continue;
            }
            if all
                .get(&s.id)
                .is_some_and(|old| old.updated_at >= s.updated_at)
            {
                continue;
            }
            self.changed(SilenceChange::Set(&s));
            all.insert(s.id.clone(), s);
            n += 1;
        }
        if n > 0 {
            self.persist(&all)?;
        }
        Ok(n)
    }

    /// Creates or updates a silence at `now` (ms); returns its id (new when an active
    /// silence had to be replaced).
    pub fn set(&self, input: SilenceInput, now: i64) -> Result<String, SilenceError> {
        validate(&input, now)?;
        let mut all = self.all.lock();
        let mut s = Silence {
            id: String::new(),
            matchers: input.matchers,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            updated_at: now,
            created_by: input.created_by,
            comment: input.comment,
        };
        if let Some(id) = input.id.filter(|i| !i.is_empty()) {
            let old = all
                .get_mut(&id)
                .ok_or_else(|| SilenceError::NotFound(id.clone()))?;
            let state = old.state(now);
            let same_matchers = old.matchers.len() == s.matchers.len()
                && old
                    .matchers
                    .iter()
                    .zip(&s.matchers)
                    .all(|(a, b)| a.name == b.name && a.op == b.op && a.value == b.value);
            let in_place = match state {
                SilenceState::Pending => true,
                SilenceState::Active => same_matchers && s.starts_at == old.starts_at,
                SilenceState::Expired => false,
            };
            if in_place {
                s.id = id.clone();
                if state == SilenceState::Active {
                    s.starts_at = old.starts_at;
                }
                *old = s;
                self.changed(SilenceChange::Set(old));
                self.persist(&all)?;
                return Ok(id);
            }
            if state != SilenceState::Expired {
                old.ends_at = now;
                old.updated_at = now;
                self.changed(SilenceChange::Set(old));
            }
        }
        if s.starts_at < now {
            s.starts_at = now;
        }
        s.id = new_id();
        let id = s.id.clone();
        self.changed(SilenceChange::Set(&s));
        all.insert(id.clone(), s);
        self.persist(&all)?;
        Ok(id)
    }

    /// Expires a silence now.
    pub fn expire(&self, id: &str, now: i64) -> Result<(), SilenceError> {
        let mut all = self.all.lock();
        let s = all
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?;
        match s.state(now) {
            SilenceState::Expired => {
                return Err(SilenceError::Invalid(format!(
                    "silence {id} already expired"
                )));
            }
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
            SilenceState::Active => s.ends_at = now,
        }
        s.updated_at = now;
        self.changed(SilenceChange::Set(s));
        self.persist(&all)
    }

    /// One silence.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.all.lock().get(id).cloned()
    }

    /// Every silence (expired ones until the retention drops them).
    pub fn list(&self) -> Vec<Silence> {
        self.all.lock().values().cloned().collect()
    }

    /// Ids of the active silences that match `labels`.
    pub fn silenced_by(&self, labels: &BTreeMap<String, String>, now: i64) -> Vec<String> {
        self.all
            .lock()
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && matches_all(&s.matchers, labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Drops silences expired longer than the retention ago; returns how many.
    pub fn gc(&self, now: i64) -> usize {
        let mut all = self.all.lock();
        let before = all.len();
        all.retain(|id, s| {
            let keep = now - s.ends_at <= self.retention_ms;
            if !keep {
                self.changed(SilenceChange::Removed(id));
            }
            keep
        });
        let n = before - all.len();
        if n > 0 {
            let _ = self.persist(&all);
        }
        n
    }

    fn persist(&self, all: &BTreeMap<String, Silence>) -> Result<(), SilenceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let list: Vec<Stored> = all.values().map(Stored::of).collect();
        let json = serde_json::to_vec(&list).map_err(|e| SilenceError::Persist(e.to_string()))?;
        strata_storage::write_atomic(path, &json)
            .map_err(|e| SilenceError::Persist(format!("{}: {e}", path.display())))
    }
}

fn validate(s: &SilenceInput, now: i64) -> Result<(), SilenceError> {
    if s.matchers.is_empty() {
        return Err(SilenceError::Invalid(
            "at least one matcher required".into(),
        ));
    }
    if s.matchers.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::Invalid(
            "at least one matcher must not match the empty string".into(),
        ));
    }
    if s.ends_at <= s.starts_at {
        return Err(SilenceError::Invalid(
            "end time must not be before start time".into(),
        ));
    }
    if s.ends_at < now {
        return Err(SilenceError::Invalid(
            "end time can't be in the past".into(),
        ));
    }
    if s.created_by.is_empty() {
        return Err(SilenceError::Invalid("missing creator".into()));
    }
    if s.comment.is_empty() {
        return Err(SilenceError::Invalid("missing comment".into()));
    }
    Ok(())
}

/// A random id in UUID format (from a ULID's 128 random-and-time bits).
pub(crate) fn new_id() -> String {
    let b = ulid::Ulid::new().to_bytes();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::notifier::config::parse_matchers;

    fn input(m: &str, start: i64, end: i64) -> SilenceInput {
        SilenceInput {
            id: None,
            matchers: parse_matchers(m).unwrap(),
            starts_at: start,
            ends_at: end,
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lifecycle_and_matching() {
        let s = Silences::open(None, DEFAULT_RETENTION_MS).unwrap();
        let id = s
            .set(
                input(r#"{alertname="Down",env=~"prod|stage"}"#, 1000, 5000),
                2000,
            )
            .unwrap();
        assert_eq!(id.len(), 36);
        let sil = s.get(&id).unwrap();
        assert_eq!(sil.starts_at, 2000, "a start in the past becomes now");
        let hit = labels(&[("alertname", "Down"), ("env", "prod")]);
        let miss = labels(&[("alertname", "Down"), ("env", "dev")]);
        assert_eq!(s.silenced_by(&hit, 3000), vec![id.clone()]);
        assert!(s.silenced_by(&miss, 3000).is_empty());
        assert!(s.silenced_by(&hit, 6000).is_empty(), "expired by time");
        s.expire(&id, 3000).unwrap();
        assert_eq!(s.get(&id).unwrap().state(3000), SilenceState::Expired);
        assert!(s.expire(&id, 3500).is_err());
        assert_eq!(
            s.expire("nope", 3500),
            Err(SilenceError::NotFound("nope".into()))
        );
        assert_eq!(s.gc(3000 + DEFAULT_RETENTION_MS + 1), 1);
        assert!(s.list().is_empty());
    }

    #[test]
    fn updates_in_place_or_replace() {
        let s = Silences::open(None, DEFAULT_RETENTION_MS).unwrap();
        let id = s.set(input(r#"alertname="A""#, 0, 10_000), 0).unwrap();
        // Longer end, same matchers: in place.
        let mut up = input(r#"alertname="A""#, 0, 20_000);
        up.id = Some(id.clone());
        assert_eq!(s.set(up, 1000).unwrap(), id);
        assert_eq!(s.get(&id).unwrap().ends_at, 20_000);
        // Other matchers while active: the old one expires, a new one replaces it.
        let mut other = input(r#"alertname="B""#, 0, 20_000);
        other.id = Some(id.clone());
        let id2 = s.set(other, 2000).unwrap();
        assert_ne!(id2, id);
        assert_eq!(s.get(&id).unwrap().state(2000), SilenceState::Expired);
        assert_eq!(s.get(&id2).unwrap().state(2000), SilenceState::Active);
        let mut missing = input(r#"alertname="B""#, 0, 20_000);
        missing.id = Some("nope".into());
        assert!(matches!(
            s.set(missing, 2000),
            Err(SilenceError::NotFound(_))
        ));
    }

    #[test]
    fn refuses_what_alertmanager_refuses() {
        let s = Silences::open(None, DEFAULT_RETENTION_MS).unwrap();
        for (m, start, end) in [
            (r#"a=~".*""#, 0, 10),
            (r#"a="b""#, 10, 5),
            (r#"a="b""#, 0, 10),
        ] {
            assert!(
                matches!(
                    s.set(input(m, start, end), 100),
                    Err(SilenceError::Invalid(_))
                ),
                "{m}"
            );
        }
        let mut no_comment = input(r#"a="b""#, 0, 1000);
        no_comment.comment.clear();
        assert!(s.set(no_comment, 0).is_err());
    }

    #[test]
    fn merge_keeps_the_newest_and_drops_what_retention_dropped() {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let s = Silences::open(None, 10_000).unwrap();
        let id = s.set(input(r#"a="b""#, 0, 5_000), 0).unwrap();
        let c = changes.clone();
        s.set_hook(Arc::new(move |ch| {
            c.lock().push(match ch {
                SilenceChange::Set(x) => format!("set {} {}", x.id, x.updated_at),
                SilenceChange::Removed(id) => format!("removed {id}"),
            })
        }));
        // The hook is handed what the set holds.
        assert_eq!(*changes.lock(), vec![format!("set {id} 0")]);
        let mut newer = s.get(&id).unwrap();
        newer.ends_at = 1_000;
        newer.updated_at = 1_000;
        let mut older = newer.clone();
        older.updated_at = 500;
        older.ends_at = 9_000;
        let mut gone = newer.clone();
        gone.id = "gone".into();
        gone.ends_at = -20_000;
        let mut fresh = newer.clone();
        fresh.id = "fresh".into();
        assert_eq!(s.merge(vec![newer, gone, fresh], 2_000).unwrap(), 2);
        assert_eq!(
            s.get(&id).unwrap().ends_at,
            1_000,
            "the later updatedAt wins"
        );
        assert!(s.get("gone").is_none(), "past the retention");
        assert_eq!(s.merge(vec![older], 2_000).unwrap(), 0, "older loses");
        assert_eq!(s.gc(1_000 + 10_001), 2);
        let seen = changes.lock().clone();
        assert_eq!(
            seen[1..],
            [
                format!("set {id} 1000"),
                "set fresh 1000".to_owned(),
                format!("removed {id}"),
                "removed fresh".to_owned(),
            ]
        );
    }

    #[test]
    fn survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let s = Silences::open(Some(path.clone()), DEFAULT_RETENTION_MS).unwrap();
        let id = s
            .set(input(r#"{job="api",instance!~"x.*"}"#, 0, 10_000), 0)
            .unwrap();
        let again = Silences::open(Some(path), DEFAULT_RETENTION_MS).unwrap();
        let sil = again.get(&id).unwrap();
        assert_eq!(sil.matchers.len(), 2);
        assert_eq!(sil.ends_at, 10_000);
        assert_eq!(
            again.silenced_by(&labels(&[("job", "api"), ("instance", "y1")]), 5),
            vec![id]
        );
    }
}
