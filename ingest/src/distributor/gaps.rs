//! What each ingester may lack: the sample-time spans of the forwards to it that failed.
//! An acknowledged write is on a quorum of its series' ingesters, not always on all of
//! them; a distributed query reads each series from one ingester only, so a query whose
//! selections overlap such a span is answered from every replica instead (remote reads,
//! merged). Spans closer than [`SLACK_MS`] merge, at most [`MAX_SPANS`] are kept per
//! ingester (the closest pair merged beyond), and they are kept in a file of the front
//! door's data directory, so that a restarted front door still knows them.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Spans this close merge into one.
pub const SLACK_MS: i64 = 5 * 60_000;
/// Spans kept per ingester.
pub const MAX_SPANS: usize = 256;

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct File {
    ingesters: Vec<String>,
    gaps: Vec<Vec<(i64, i64)>>,
}

/// The spans per ingester.
pub struct Gaps {
    ingesters: Vec<String>,
    per: Mutex<Vec<Vec<(i64, i64)>>>,
    file: Option<PathBuf>,
}

impl Gaps {
    /// The gaps of `ingesters`, kept in `file` (read back when it names the same ingesters).
    pub fn new(ingesters: &[String], file: Option<PathBuf>) -> Gaps {
        let mut per = vec![Vec::new(); ingesters.len()];
        if let Some(f) = &file
            && let Ok(bytes) = std::fs::read(f)
        {
            match serde_json::from_slice::<File>(&bytes) {
                Ok(saved) if saved.ingesters == ingesters && saved.gaps.len() == per.len() => {
                    per = saved.gaps;
                }
                Ok(_) => {
                    tracing::info!(file = %f.display(), "ingesters changed: earlier write gaps forgotten")
                }
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "unreadable write gaps ignored")
                }
            }
        }
        Gaps {
            ingesters: ingesters.to_vec(),
            per: Mutex::new(per),
            file,
        }
    }

    /// Ingester `ing` missed samples in `[mint, maxt]`.
    pub fn record(&self, ing: usize, (mint, maxt): (i64, i64)) {
        let mut per = self.per.lock();
        let Some(spans) = per.get_mut(ing) else {
            return;
        };
        if spans.iter().any(|&(a, b)| a <= mint && maxt <= b) {
            return;
        }
        spans.push((mint, maxt));
        normalize(spans);
        if let Some(f) = &self.file {
            save(f, &self.ingesters, &per);
        }
    }

    /// Whether some ingester may lack samples in `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.per
            .lock()
            .iter()
            .flatten()
            .any(|&(a, b)| a <= maxt && mint <= b)
    }

    /// The spans of every ingester.
    pub fn spans(&self) -> Vec<Vec<(i64, i64)>> {
        self.per.lock().clone()
    }
}

/// Sorts and merges `spans`, then merges the closest neighbours down to [`MAX_SPANS`].
fn normalize(spans: &mut Vec<(i64, i64)>) {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for &(a, b) in spans.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(SLACK_MS) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    while out.len() > MAX_SPANS {
        let k = (1..out.len())
            .min_by_key(|&k| out[k].0.saturating_sub(out[k - 1].1))
            .unwrap_or(1);
        out[k - 1].1 = out[k - 1].1.max(out[k].1);
        out.remove(k);
    }
    *spans = out;
}

fn save(f: &Path, ingesters: &[String], per: &[Vec<(i64, i64)>]) {
    let file = File {
        ingesters: ingesters.to_vec(),
        gaps: per.to_vec(),
    };
    let tmp = f.with_extension("tmp");
    let r = serde_json::to_vec(&file)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, f));
    if let Err(e) = r {
        tracing::warn!(file = %f.display(), error = %e, "cannot keep the write gaps");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_merge_stay_bounded_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("gaps.json");
        let ings = vec!["http://a:1".to_string(), "http://b:1".to_string()];
        let g = Gaps::new(&ings, Some(f.clone()));
        assert!(!g.overlaps(i64::MIN, i64::MAX));
        g.record(1, (1000, 2000));
        g.record(1, (2000 + SLACK_MS, 9000 + SLACK_MS));
        assert_eq!(g.spans()[1], vec![(1000, 9000 + SLACK_MS)]);
        assert!(g.overlaps(0, 1000) && !g.overlaps(0, 999));
        for k in 0..2 * MAX_SPANS as i64 {
            g.record(0, (k * 10 * SLACK_MS, k * 10 * SLACK_MS + 1));
        }
        assert_eq!(g.spans()[0].len(), MAX_SPANS);
        // Still covering every span recorded.
        for k in 0..2 * MAX_SPANS as i64 {
            assert!(g.overlaps(k * 10 * SLACK_MS, k * 10 * SLACK_MS));
        }
        let again = Gaps::new(&ings, Some(f.clone()));
        assert_eq!(again.spans(), g.spans());
        // Other ingesters: forgotten.
        let other = Gaps::new(&ings[..1], Some(f));
        assert!(!other.overlaps(i64::MIN, i64::MAX));
    }
}
