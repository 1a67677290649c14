//! Small state files written so a crash leaves either the old or the new content, never a
//! torn one: write a temporary sibling, fsync it, rename it over the target. Used by the
//! push gateway's groups, silences and the notification log.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically (parent directories are created).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_whole_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("sub").join("state.json");
        super::write_atomic(&p, b"one").expect("write");
        super::write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert!(!p.with_extension("tmp").exists());
    }
}
