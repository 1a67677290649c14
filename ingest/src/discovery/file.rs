//! `file_sd_configs`: JSON or YAML files (globs in the last path element), re-read when a
//! file appears, changes or disappears (checked every second) and at least every
//! `refresh_interval`. Each group carries `__meta_filepath`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use strata_config::FileSdConfig;
use tokio::sync::mpsc;

use super::{RawGroup, TargetGroup, Update, to_groups};

/// How often files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

pub(super) async fn run(
    cfg: FileSdConfig,
    job: String,
    generation: u64,
    provider: usize,
    tx: mpsc::Sender<Update>,
) {
    let mut seen: BTreeMap<PathBuf, (Option<SystemTime>, u64)> = BTreeMap::new();
    let mut groups: BTreeMap<PathBuf, Vec<TargetGroup>> = BTreeMap::new();
    let mut last_full = Instant::now();
    let mut first = true;
    loop {
        let full = last_full.elapsed() >= cfg.refresh_interval.as_std();
        if full {
            last_full = Instant::now();
        }
        let files = expand(&cfg.files);
        let mut changed = first || full;
        // Files gone.
        let gone: Vec<PathBuf> = seen
            .keys()
            .filter(|p| !files.contains(p))
            .cloned()
            .collect();
        for p in gone {
            seen.remove(&p);
            groups.remove(&p);
            changed = true;
        }
        for p in &files {
            let stamp = std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().ok(), m.len()));
            let Some(stamp) = stamp else { continue };
            if !full && seen.get(p) == Some(&stamp) {
                continue;
            }
            seen.insert(p.clone(), stamp);
            match read(p) {
                Ok(g) => {
                    groups.insert(p.clone(), g);
                    changed = true;
                }
                Err(e) => {
                    tracing::error!(job = %job, file = %p.display(), error = %e,
                        "file_sd: cannot read target groups; keeping the previous ones");
                }
            }
        }
        if changed {
            let all: Vec<TargetGroup> = groups.values().flatten().cloned().collect();
            let u = Update {
                generation,
                provider,
                groups: all,
            };
            if tx.send(u).await.is_err() {
                return;
            }
        }
        first = false;
        tokio::time::sleep(POLL).await;
    }
}

/// The files the patterns name now (a `*` may appear in the last element).
fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pat in patterns {
        let path = Path::new(pat);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains('*') {
            if path.exists() {
                out.push(path.to_path_buf());
            }
            continue;
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let (pre, post) = name.split_once('*').unwrap_or((name, ""));
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name();
                let Some(n) = n.to_str() else { continue };
                if n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post) {
                    out.push(dir.join(n));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn read(p: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw: Vec<RawGroup> = if ext == "json" {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?
    };
    let path = p.to_string_lossy();
    Ok(to_groups(raw, &path, ("__meta_filepath", &path)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_added_changed_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = dir.path().join("*.json").to_string_lossy().into_owned();
        let cfg: FileSdConfig =
            serde_yaml_ng::from_str(&format!("files: ['{pattern}']")).expect("config");
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(cfg, "j".into(), 1, 3, tx));
        let first = rx.recv().await.expect("update");
        assert_eq!((first.provider, first.groups.len()), (3, 0));
        let f = dir.path().join("a.json");
        std::fs::write(
            &f,
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}]"#,
        )
        .expect("write");
        let u = rx.recv().await.expect("update");
        assert_eq!(u.groups.len(), 1);
        assert_eq!(u.groups[0].targets.len(), 2);
        assert_eq!(u.groups[0].labels["env"], "prod");
        assert_eq!(
            u.groups[0].labels["__meta_filepath"],
            f.to_string_lossy().as_ref()
        );
        std::fs::write(dir.path().join("b.yml"), "- targets: [x:1]\n").expect("write");
        std::fs::remove_file(&f).expect("remove");
        let u = rx.recv().await.expect("update");
        assert!(
            u.groups.is_empty(),
            "a.json removed, b.yml does not match *.json"
        );
        task.abort();
    }
}
