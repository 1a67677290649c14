//! The series a `ReadRequest` selects, whatever the response type: per query, the
//! matchers (equality matchers on the server's external labels dropped, as Prometheus's
//! `filterExtLabelsFromMatchers`), the storage read within the sample limit and the read
//! memory, and the series' labels with the external labels added (a series' own label
//! wins) and sorted by name. Series without samples are left out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use strata_storage::{Db, MatchOp, Matcher, ReadCharge, StorageError};
use strata_vocab::FloatHistogram;

use super::ReadError;
use super::proto::{self, Label, ReadRequest};

/// One series of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selected {
    /// The series' labels and the external ones, sorted by name.
    pub(crate) labels: Vec<Label>,
    /// `(timestamp ms, value)`, sorted by time.
    pub(crate) samples: Vec<(i64, f64)>,
    /// `(timestamp ms, histogram)`, sorted by time.
    pub(crate) histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

/// Counts samples against the request's limit, and their memory against `memory`.
struct Limit<'a> {
    left: AtomicUsize,
    memory: &'a dyn ReadCharge,
    out_of_memory: AtomicBool,
}

impl ReadCharge for Limit<'_> {
    fn charge(&self, samples: usize) -> bool {
        if self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                l.checked_sub(samples)
            })
            .is_err()
        {
            return false;
        }
        if !self.memory.charge(samples) {
            self.out_of_memory.store(true, Ordering::Release);
            return false;
        }
        true
    }
}

/// The series of each query of `req`, in the queries' order. Samples count against
/// `sample_limit` (0: none) and, as storage decodes them, their memory against `memory`.
pub(crate) async fn select(
    db: &Db,
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
    sample_limit: usize,
    memory: &dyn ReadCharge,
) -> Result<Vec<Vec<Selected>>, ReadError> {
    let limit = Limit {
        left: AtomicUsize::new(if sample_limit == 0 {
            usize::MAX
        } else {
            sample_limit
        }),
        memory,
        out_of_memory: AtomicBool::new(false),
    };
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let matchers = matchers(q, external)?;
        let series = match db
            .select_charged(
                &matchers,
                q.start_timestamp_ms,
                q.end_timestamp_ms,
                None,
                &limit,
            )
            .await
        {
            Ok(s) => s,
            Err(StorageError::ReadRefused) if limit.out_of_memory.load(Ordering::Acquire) => {
                return Err(ReadError::Memory);
            }
            Err(StorageError::ReadRefused) => return Err(ReadError::SampleLimit(sample_limit)),
            Err(e) => return Err(e.into()),
        };
        let selected = series
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut labels: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                for (k, v) in external {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Selected {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| Label { name, value })
                        .collect(),
                    samples: s.samples,
                    histograms: s.histograms,
                }
            })
            .collect();
        results.push(selected);
    }
    Ok(results)
}

/// The storage matchers of `q`.
fn matchers(
    q: &proto::Query,
    external: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>, ReadError> {
    let mut matchers = Vec::with_capacity(q.matchers.len());
    for m in &q.matchers {
        let op = match proto::MatchType::try_from(m.r#type) {
            Ok(proto::MatchType::Eq) => MatchOp::Equal,
            Ok(proto::MatchType::Neq) => MatchOp::NotEqual,
            Ok(proto::MatchType::Re) => MatchOp::Regex,
            Ok(proto::MatchType::Nre) => MatchOp::NotRegex,
            Err(_) => {
                return Err(ReadError::BadRequest(format!(
                    "unknown matcher type {}",
                    m.r#type
                )));
            }
        };
        // A matcher that selects this server's external label value says "this
        // server", not a series label.
        if op == MatchOp::Equal && external.get(&m.name) == Some(&m.value) {
            continue;
        }
        matchers.push(
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ReadError::BadRequest(e.to_string()))?,
        );
    }
    Ok(matchers)
}
