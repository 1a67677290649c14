//! Where a queue stopped: the WAL position up to which every sample was sent (or given up
//! on), kept in `<data>/remote_write/<queue>.json` so a restart resumes there.

use std::path::{Path, PathBuf};

use strata_storage::wal::WalPosition;

/// The file of the queue keyed `key`.
pub(super) fn path(data: &Path, key: &str) -> PathBuf {
    data.join("remote_write").join(format!("{key}.json"))
}

/// The saved position, if any (a missing or unreadable file: none).
pub(super) fn load(file: &Path) -> Option<WalPosition> {
    let text = std::fs::read(file).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Saves `pos` atomically (temporary file, fsync, rename).
pub(super) fn save(file: &Path, pos: WalPosition) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let body = serde_json::to_vec(&pos).map_err(std::io::Error::other)?;
    strata_storage::write_atomic(file, &body)
}
