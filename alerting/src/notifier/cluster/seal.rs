//! Authentication of the gossip with a shared key (`--cluster.key-file`, a Strata
//! extension: Alertmanager offers TLS between peers with `--cluster.tls-config`, which the
//! gossip library's UDP transport cannot carry).
//!
//! With a key, every value a node gossips is sealed as `<HMAC-SHA256 hex>.<value>`, the
//! MAC covering the pair's key and value (a value cannot be moved to another key), and
//! each node gossips a `member` token, the MAC of its name, generation and address. Peers
//! merge only values whose MAC verifies and count as members only nodes whose token
//! does: a host that can reach the gossip port but does not hold the key can neither
//! inject silences, acknowledgements or log entries nor take a position in the cluster.
//! Values are authenticated, not encrypted: keep the gossip on a private network all the
//! same. Replayed values are harmless: merges keep the newest version of each.
//!
//! Nodes with different keys (or one with a key and one without) share nothing; their
//! values are counted in `strata_cluster_state_invalid_total` and logged.

use std::path::Path;

use ring::hmac;

use crate::notifier::cluster::error::ClusterError;

/// The shortest key accepted (bytes, after trimming surrounding whitespace).
pub const MIN_KEY_BYTES: usize = 16;

/// The largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Gossip key of the member token.
pub(crate) const MEMBER_KEY: &str = "member";

/// The cluster's shared key.
pub struct Seal {
    key: hmac::Key,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(<secret>)")
    }
}

/// Why a sealed value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// No `<mac>.` prefix.
    #[error("not sealed with a cluster key")]
    Unsealed,
    /// The MAC does not verify.
    #[error("its MAC does not verify with this node's cluster key")]
    BadMac,
}

impl Seal {
    /// A seal with `secret` (at least [`MIN_KEY_BYTES`]).
    pub fn new(secret: &[u8]) -> Option<Seal> {
        (secret.len() >= MIN_KEY_BYTES).then(|| Seal {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// Reads the key from `path` (surrounding whitespace trimmed).
    pub fn read(path: &Path) -> Result<Seal, ClusterError> {
        let bad = |reason: String| ClusterError::Flag {
            flag: "key-file",
            value: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(bad(format!("larger than {MAX_KEY_FILE_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Seal::new(bytes.trim_ascii())
            .ok_or_else(|| bad(format!("the key must have at least {MIN_KEY_BYTES} bytes")))
    }

    fn mac(&self, key: &str, value: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(key.len() as u64).to_le_bytes());
        ctx.update(key.as_bytes());
        ctx.update(value.as_bytes());
        ctx.sign()
    }

    /// `value` sealed for gossip under `key`.
    pub(crate) fn seal(&self, key: &str, value: &str) -> String {
        let tag = self.mac(key, value);
        let mut out = hex(tag.as_ref());
        out.push('.');
        out.push_str(value);
        out
    }

    /// The value of a sealed pair, once its MAC verifies.
    pub(crate) fn open<'a>(&self, key: &str, sealed: &'a str) -> Result<&'a str, SealError> {
        let (mac, value) = sealed.split_once('.').ok_or(SealError::Unsealed)?;
        let mac = unhex(mac).ok_or(SealError::Unsealed)?;
        let mut ctx = Vec::with_capacity(8 + key.len() + value.len());
        ctx.extend_from_slice(&(key.len() as u64).to_le_bytes());
        ctx.extend_from_slice(key.as_bytes());
        ctx.extend_from_slice(value.as_bytes());
        hmac::verify(&self.key, &ctx, &mac).map_err(|_| SealError::BadMac)?;
        Ok(value)
    }

    /// The member token of a node (its `member` value, sealed).
    pub(crate) fn member_token(&self, name: &str, generation: u64, addr: &str) -> String {
        self.seal(MEMBER_KEY, &format!("{name}/{generation}/{addr}"))
    }

    /// Whether `token` is the member token of that node.
    pub(crate) fn is_member(&self, token: &str, name: &str, generation: u64, addr: &str) -> bool {
        self.open(MEMBER_KEY, token)
            .is_ok_and(|v| v == format!("{name}/{generation}/{addr}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_pair_key() {
        let a = Seal::new(b"0123456789abcdef-one").unwrap();
        let b = Seal::new(b"0123456789abcdef-two").unwrap();
        let sealed = a.seal("sil/x", r#"{"id":"x"}"#);
        assert_eq!(a.open("sil/x", &sealed), Ok(r#"{"id":"x"}"#));
        assert_eq!(b.open("sil/x", &sealed), Err(SealError::BadMac));
        assert_eq!(a.open("sil/y", &sealed), Err(SealError::BadMac));
        let tampered = sealed.replace("\"x\"", "\"z\"");
        assert_eq!(a.open("sil/x", &tampered), Err(SealError::BadMac));
        assert_eq!(a.open("sil/x", r#"{"id":"x"}"#), Err(SealError::Unsealed));
        assert_eq!(a.open("sil/x", "zz.{}"), Err(SealError::Unsealed));
        assert!(Seal::new(b"short").is_none());

        let t = a.member_token("01J", 7, "127.0.0.1:9094");
        assert!(a.is_member(&t, "01J", 7, "127.0.0.1:9094"));
        assert!(!a.is_member(&t, "01K", 7, "127.0.0.1:9094"));
        assert!(!a.is_member(&t, "01J", 8, "127.0.0.1:9094"));
        assert!(!b.is_member(&t, "01J", 7, "127.0.0.1:9094"));
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "too short\n").unwrap();
        let e = Seal::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("--cluster.key-file") && e.contains("16 bytes"),
            "{e}"
        );
        std::fs::write(&p, "  a-long-enough-shared-secret\n").unwrap();
        assert!(Seal::read(&p).is_ok());
        assert!(Seal::read(&dir.path().join("missing")).is_err());
        std::fs::write(&p, "k".repeat(MAX_KEY_FILE_BYTES as usize + 1)).unwrap();
        let e = Seal::read(&p).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
