//! Series from outside this database — the `remote_read` endpoints — merged into every read
//! (`Db::select*`, `Db::series`), as Prometheus's fan-out storage merges remote reads into
//! its queries. A sample present both here and there keeps the local value. The source
//! decides what to ask (required matchers, `read_recent`) and deals with its own failures:
//! a remote that is down leaves the local answer (with a warning in the log).

use futures::future::BoxFuture;

use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::read::{ReadCharge, SeriesRange};
use crate::{Result, SeriesSamples, StorageError};

/// A source of series outside the database.
pub trait ExternalSource: Send + Sync {
    /// The series matching `matchers` with their samples in `[mint, maxt]`, given the
    /// oldest sample time the database holds (`None`: empty).
    fn select<'a>(
        &'a self,
        matchers: &'a [Matcher],
        mint: i64,
        maxt: i64,
        local_oldest: Option<i64>,
    ) -> BoxFuture<'a, Vec<SeriesSamples>>;
}

/// Merges `ext` (in `range`, charged to `charge`) into `out`, sorted by labels.
pub(crate) fn merge(
    out: &mut Vec<SeriesSamples>,
    ext: Vec<SeriesSamples>,
    range: Option<&SeriesRange>,
    charge: &dyn ReadCharge,
) -> Result<()> {
    let mut added = false;
    for s in ext {
        if s.is_empty() || range.is_some_and(|r| !r.contains(&s.labels)) {
            continue;
        }
        if !charge.charge(s.samples.len() + crate::read::histogram_weight(&s.histograms)) {
            return Err(StorageError::ReadRefused);
        }
        match out.binary_search_by(|x| x.labels.cmp(&s.labels)) {
            Ok(i) => {
                // Local samples first, so a timestamp in both keeps the local value (of
                // either kind).
                let local = std::mem::take(&mut out[i]);
                let (samples, histograms) = crate::read::merge_kinds(
                    vec![(0, local.samples), (1, s.samples)],
                    vec![(0, local.histograms), (1, s.histograms)],
                );
                out[i] = SeriesSamples {
                    labels: local.labels,
                    samples,
                    histograms,
                };
            }
            Err(_) => {
                out.push(s);
                added = true;
            }
        }
    }
    if added {
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    }
    Ok(())
}

/// The label sets of `ext`, for listings.
pub(crate) fn labels(ext: &[SeriesSamples]) -> impl Iterator<Item = Labels> + '_ {
    ext.iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.labels.clone())
}
