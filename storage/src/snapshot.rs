//! Snapshots (`/api/v1/admin/tsdb/snapshot`): a directory `snapshots/<name>/` holding every
//! block (hard links: no copy, and blocks are immutable) and, unless skipped, the head
//! written as one more block, so the snapshot is a complete data directory of its own.

use std::path::{Path, PathBuf};

use crate::block::BlockWriter;
use crate::db::Db;
use crate::error::{Result, StorageError};

impl Db {
    /// Creates `snapshots/<name>` and returns its name.
    pub async fn snapshot(&self, with_head: bool) -> Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!("{now}-{}", ulid::Ulid::new().to_string().to_lowercase());
        let root = self.opts.dir.join("snapshots").join(&name);
        let blocks_dir = root.join("blocks");
        std::fs::create_dir_all(&blocks_dir)
            .map_err(|e| StorageError::io("create", &blocks_dir, e))?;
        for b in self.blocks() {
            let src = self.opts.dir.join(b.dir().as_ref());
            let dst = blocks_dir.join(&b.meta.ulid);
            link_dir(&src, &dst)?;
        }
        if with_head {
            let mut series = self.head.all_series();
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let encoded = tokio::task::spawn_blocking(move || -> Result<_> {
                let mut w = BlockWriter::new()?;
                for s in &series {
                    let (samples, hists) = {
                        let d = s.data.lock();
                        let mut h = Vec::new();
                        d.histograms(i64::MIN, i64::MAX, &mut h);
                        (d.all_samples(), h)
                    };
                    w.add_series(s.labels.clone(), &samples, &hists)?;
                }
                w.finish(1, Vec::new())
            })
            .await
            .map_err(|e| StorageError::Task(e.to_string()))??;
            if let Some(enc) = encoded {
                let dir = blocks_dir.join(&enc.meta.ulid);
                std::fs::create_dir_all(&dir).map_err(|e| StorageError::io("create", &dir, e))?;
                write(&dir.join("samples.parquet"), &enc.samples)?;
                write(&dir.join("series.parquet"), &enc.series)?;
                if let Some(h) = &enc.histograms {
                    write(&dir.join(crate::block::histograms::FILE), h)?;
                }
                let meta =
                    serde_json::to_vec_pretty(&enc.meta).map_err(|e| StorageError::Json {
                        file: "meta.json".into(),
                        source: e,
                    })?;
                write(&dir.join("meta.json"), &meta)?;
            }
        }
        Ok(name)
    }

    /// Where snapshots are written.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.opts.dir.join("snapshots")
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| StorageError::io("write", path, e))
}

fn link_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| StorageError::io("create", dst, e))?;
    let rd = std::fs::read_dir(src).map_err(|e| StorageError::io("read dir", src, e))?;
    for ent in rd.flatten() {
        let to = dst.join(ent.file_name());
        std::fs::hard_link(ent.path(), &to)
            .or_else(|_| std::fs::copy(ent.path(), &to).map(|_| ()))
            .map_err(|e| StorageError::io("link", &to, e))?;
    }
    Ok(())
}
