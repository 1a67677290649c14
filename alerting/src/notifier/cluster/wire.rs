//! What one node gossips: its silences and notification log entries as key-value pairs of
//! its own chitchat state, and their strict decoding on the receiving side.
//!
//! - `sil/<silence id>` → the silence as JSON (the form of `silences.json`);
//! - `nfl/<xxh3-128 of the log key, hex>` → `{"key", "firing", "resolved", "at"}`, the
//!   log key being `<group key>|<receiver>/<integration>/<index>`;
//! - `ack/<acknowledgement id>` → the acknowledgement as JSON (the form of `acks.json`).
//!
//! A value is at most [`MAX_VALUE_BYTES`]: the gossip carries a node's state in UDP
//! datagrams of at most 64 KiB, and a pair larger than a datagram could never be sent (it
//! would stall the node's updates behind it). A peer's value that does not decode, is
//! larger, names a key of neither kind, or carries a time more than [`MAX_CLOCK_SKEW_MS`]
//! ahead (a broken clock would win every merge) is refused with a [`WireError`].

use serde::{Deserialize, Serialize};

use crate::notifier::acks::{self, Acknowledgement};
use crate::notifier::nflog::Entry;
use crate::notifier::silences::{Silence, Stored};

/// Largest gossiped value (bytes).
pub const MAX_VALUE_BYTES: usize = 32 * 1024;

/// Times further ahead of this node's clock are refused (ms).
pub const MAX_CLOCK_SKEW_MS: i64 = 3_600_000;

/// Prefix of silence keys.
pub(crate) const SILENCE_PREFIX: &str = "sil/";

/// Prefix of notification log keys.
pub(crate) const NFLOG_PREFIX: &str = "nfl/";

/// Prefix of acknowledgement keys.
pub(crate) const ACK_PREFIX: &str = "ack/";

/// Why a gossiped pair was not encoded or was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Larger than a gossiped value may be.
    #[error("{bytes} bytes, more than the {MAX_VALUE_BYTES} a gossiped value may have")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Not a silence, log or acknowledgement key.
    #[error("key {0:?} is not a silence, notification log or acknowledgement key")]
    UnknownKey(String),
    /// Not the JSON expected.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not authenticated with the cluster key.
    #[error("{0}")]
    Seal(#[from] crate::notifier::cluster::seal::SealError),
    /// Decoded, but not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// A decoded peer value.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A silence.
    Silence(Silence),
    /// A notification log entry with its key.
    Nflog(String, Entry),
    /// An acknowledgement.
    Ack(Acknowledgement),
}

#[derive(Serialize, Deserialize)]
struct NflogValue {
    key: String,
    #[serde(flatten)]
    entry: Entry,
}

/// The gossip key of a silence.
pub(crate) fn silence_key(id: &str) -> String {
    format!("{SILENCE_PREFIX}{id}")
}

/// The gossip key of a notification log entry.
pub(crate) fn nflog_key(key: &str) -> String {
    format!(
        "{NFLOG_PREFIX}{:032x}",
        xxhash_rust::xxh3::xxh3_128(key.as_bytes())
    )
}

fn bounded(value: String) -> Result<String, WireError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(WireError::TooLarge { bytes: value.len() });
    }
    Ok(value)
}

/// `(key, value)` of a silence.
pub(crate) fn encode_silence(s: &Silence) -> Result<(String, String), WireError> {
    let value = bounded(serde_json::to_string(&Stored::of(s))?)?;
    Ok((silence_key(&s.id), value))
}

/// The gossip key of an acknowledgement.
pub(crate) fn ack_key(id: &str) -> String {
    format!("{ACK_PREFIX}{id}")
}

/// `(key, value)` of an acknowledgement.
pub(crate) fn encode_ack(a: &Acknowledgement) -> Result<(String, String), WireError> {
    let value = bounded(serde_json::to_string(a)?)?;
    Ok((ack_key(&a.id), value))
}

/// `(key, value)` of a notification log entry.
pub(crate) fn encode_nflog(key: &str, e: &Entry) -> Result<(String, String), WireError> {
    let v = NflogValue {
        key: key.to_owned(),
        entry: e.clone(),
    };
    let value = bounded(serde_json::to_string(&v)?)?;
    Ok((nflog_key(key), value))
}

/// Decodes a peer's pair, checking it as described in the module doc.
pub(crate) fn decode(key: &str, value: &str, now: i64) -> Result<Decoded, WireError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(WireError::TooLarge { bytes: value.len() });
    }
    if let Some(id) = key.strip_prefix(SILENCE_PREFIX) {
        let s = serde_json::from_str::<Stored>(value)?
            .into_silence()
            .map_err(WireError::Invalid)?;
        check_silence(id, &s, now)?;
        return Ok(Decoded::Silence(s));
    }
    if key.starts_with(NFLOG_PREFIX) {
        let v: NflogValue = serde_json::from_str(value)?;
        if nflog_key(&v.key) != key {
            return Err(WireError::Invalid(format!(
                "key {key:?} is not the hash of the entry's key {:?}",
                v.key
            )));
        }
        if v.entry.at > now + MAX_CLOCK_SKEW_MS {
            return Err(WireError::Invalid(format!(
                "entry {:?} logged at {} ms, ahead of this node's clock",
                v.key, v.entry.at
            )));
        }
        return Ok(Decoded::Nflog(v.key, v.entry));
    }
    if let Some(id) = key.strip_prefix(ACK_PREFIX) {
        let a: Acknowledgement = serde_json::from_str(value)?;
        check_ack(id, &a, now)?;
        return Ok(Decoded::Ack(a));
    }
    Err(WireError::UnknownKey(key.chars().take(64).collect()))
}

fn check_ack(id: &str, a: &Acknowledgement, now: i64) -> Result<(), WireError> {
    let bad = |why: String| Err(WireError::Invalid(format!("acknowledgement {id:?}: {why}")));
    if a.id != id {
        return bad(format!("the value is acknowledgement {:?}", a.id));
    }
    if !is_id(id) {
        return bad("not an acknowledgement id".into());
    }
    if a.fingerprints.is_empty() {
        return bad("no fingerprints".into());
    }
    if a.created_by.chars().count() > acks::MAX_AUTHOR
        || a.comment.chars().count() > acks::MAX_COMMENT
    {
        return bad("author or comment too long".into());
    }
    if a.ends_at < a.starts_at || a.ends_at - a.starts_at > acks::MAX_DURATION_MS {
        return bad("not a valid time range".into());
    }
    if a.updated_at > now + MAX_CLOCK_SKEW_MS || a.starts_at > now + MAX_CLOCK_SKEW_MS {
        return bad("updated ahead of this node's clock".into());
    }
    Ok(())
}

/// A silence or acknowledgement id: a UUID's alphabet, at most 64 bytes.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn check_silence(id: &str, s: &Silence, now: i64) -> Result<(), WireError> {
    let bad = |why: String| Err(WireError::Invalid(format!("silence {id:?}: {why}")));
    if s.id != id {
        return bad(format!("the value is silence {:?}", s.id));
    }
    if !is_id(id) {
        return bad("not a silence id".into());
    }
    if s.matchers.is_empty() {
        return bad("no matchers".into());
    }
    if s.ends_at < s.starts_at {
        return bad("ends before it starts".into());
    }
    if s.updated_at > now + MAX_CLOCK_SKEW_MS {
        return bad("updated ahead of this node's clock".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::notifier::config::parse_matchers;

    fn silence(id: &str) -> Silence {
        Silence {
            id: id.into(),
            matchers: parse_matchers(r#"{alertname="Down",env=~"prod|stage"}"#).unwrap(),
            starts_at: 1_000,
            ends_at: 5_000,
            updated_at: 1_000,
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    #[test]
    fn silences_and_log_entries_round_trip() {
        let s = silence("0190a1b2-c3d4-e5f6-0718-293a4b5c6d7e");
        let (k, v) = encode_silence(&s).unwrap();
        assert_eq!(k, "sil/0190a1b2-c3d4-e5f6-0718-293a4b5c6d7e");
        let Decoded::Silence(back) = decode(&k, &v, 2_000).unwrap() else {
            panic!("not a silence");
        };
        assert_eq!(back.matchers.len(), 2);
        assert_eq!((back.ends_at, back.updated_at), (5_000, 1_000));

        let e = Entry {
            firing: [1, u64::MAX].into_iter().collect(),
            resolved: [7].into_iter().collect(),
            at: 1_500,
        };
        let key = r#"{}/{team="db"}:{alertname="Down"}|hook/webhook/0"#;
        let (k, v) = encode_nflog(key, &e).unwrap();
        assert!(k.starts_with("nfl/") && k.len() == 4 + 32, "{k}");
        let Decoded::Nflog(bk, be) = decode(&k, &v, 2_000).unwrap() else {
            panic!("not a log entry");
        };
        assert_eq!((bk.as_str(), be), (key, e));
    }

    #[test]
    fn garbage_is_refused_not_merged() {
        let now = 10_000;
        let (k, v) = encode_silence(&silence("abc")).unwrap();
        for (key, value) in [
            ("sil/abc", "not json"),
            ("sil/abc", r#"{"id":"abc"}"#),
            ("sil/other", v.as_str()),
            ("nfl/00", r#"{"key":"k","firing":[],"resolved":[],"at":1}"#),
            ("whatever", "{}"),
            (k.as_str(), &"x".repeat(MAX_VALUE_BYTES + 1)),
        ] {
            assert!(decode(key, value, now).is_err(), "{key} {value:.40}");
        }
        // A bad regex in a matcher, and a time from the future.
        let bad_re = v.replace("prod|stage", "(");
        assert!(decode(&k, &bad_re, now).is_err());
        let mut future = silence("abc");
        future.updated_at = now + MAX_CLOCK_SKEW_MS + 1;
        let (k, v) = encode_silence(&future).unwrap();
        assert!(matches!(decode(&k, &v, now), Err(WireError::Invalid(_))));
    }

    fn ack(id: &str) -> Acknowledgement {
        Acknowledgement {
            id: id.into(),
            group_key: r#"{}:{alertname="Down"}"#.into(),
            receiver: "hook".into(),
            fingerprints: [3, 9].into_iter().collect(),
            created_by: "me".into(),
            comment: "on it".into(),
            starts_at: 1_000,
            ends_at: 9_000,
            updated_at: 1_000,
        }
    }

    #[test]
    fn acknowledgements_round_trip_and_garbage_is_refused() {
        let a = ack("0190a1b2-c3d4");
        let (k, v) = encode_ack(&a).unwrap();
        assert_eq!(k, "ack/0190a1b2-c3d4");
        let Decoded::Ack(back) = decode(&k, &v, 2_000).unwrap() else {
            panic!("not an acknowledgement");
        };
        assert_eq!(back, a);
        let mut bad = Vec::new();
        let mut x = ack("0190a1b2-c3d4");
        x.fingerprints.clear();
        bad.push(x);
        let mut x = ack("0190a1b2-c3d4");
        x.ends_at = 0;
        bad.push(x);
        let mut x = ack("0190a1b2-c3d4");
        x.updated_at = 2_000 + MAX_CLOCK_SKEW_MS + 1;
        bad.push(x);
        let mut x = ack("0190a1b2-c3d4");
        x.comment = "c".repeat(acks::MAX_COMMENT + 1);
        bad.push(x);
        for x in bad {
            let (k, v) = encode_ack(&x).unwrap();
            assert!(matches!(decode(&k, &v, 2_000), Err(WireError::Invalid(_))));
        }
        assert!(decode("ack/other", &v, 2_000).is_err());
        assert!(decode("ack/a b", &v, 2_000).is_err());
        assert!(decode(&k, "{}", 2_000).is_err());
    }

    #[test]
    fn oversized_values_are_not_encoded() {
        let mut s = silence("abc");
        s.comment = "x".repeat(MAX_VALUE_BYTES);
        assert!(matches!(
            encode_silence(&s),
            Err(WireError::TooLarge { .. })
        ));
    }
}
