//! The streaming scan behind the SQL tables: the selection is listed when the scan is
//! planned (labels only; the count gives DataFusion an estimate of the rows), cut into reads of
//! about [`READ_SAMPLES`] estimated samples (label ranges of the series, and time windows
//! when one series alone is larger), and each read becomes one record batch as the
//! consumer pulls. Only one read's raw samples are in memory at a time, and they are
//! reserved from the query's memory pool (DataFusion's `TaskContext`) as storage decodes
//! them, so a scan over more data than the pool holds fails with "resources exhausted"
//! instead of growing the process, and a small query next to it is not starved.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Statistics;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use crate::db::{Db, SeriesSamples};
use crate::matcher::Matcher;
use crate::read::{ReadCharge, SeriesRange};

/// Estimated samples per read (at one sample per 15 s): about 16 MiB of raw samples.
pub(crate) const READ_SAMPLES: i64 = 1 << 20;
/// Bytes reserved per raw sample decoded: timestamp and value.
const SAMPLE_BYTES: usize = 16;
/// Assumed scrape interval for the estimate, ms.
const INTERVAL_MS: i64 = 15_000;

/// Turns one read's series (samples within the read's window) into a batch of the scan's
/// projected schema.
pub(crate) type BuildBatch =
    dyn Fn(Vec<SeriesSamples>, &SchemaRef) -> DfResult<RecordBatch> + Send + Sync;

/// Turns one read's series aggregates (windows ending within the read's window) into a
/// batch of the scan's projected schema.
pub(crate) type BuildAggregates = dyn Fn(Vec<crate::downsample::SeriesAggregates>, &SchemaRef) -> DfResult<RecordBatch>
    + Send
    + Sync;

/// What a scan reads.
#[derive(Clone)]
enum Source {
    /// Raw samples.
    Raw(Arc<BuildBatch>),
    /// Aggregates at a resolution (downsampled blocks, raw samples elsewhere).
    Aggregates(i64, Arc<BuildAggregates>),
}

/// A table scan that reads storage a part at a time.
pub(crate) struct PartsScan {
    db: Arc<Db>,
    matchers: Arc<Vec<Matcher>>,
    mint: i64,
    maxt: i64,
    table: &'static str,
    schema: SchemaRef,
    source: Source,
    props: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// The reads, planned when the scan is (the label ranges tile the whole label order,
    /// so a series created after planning is still read).
    reads: Arc<Vec<Read>>,
    /// Estimated rows, for the optimizer (join sides, build side of a cross join).
    estimate: usize,
}

impl PartsScan {
    /// A scan of the series `matchers` select over `[mint, maxt]`, producing batches of
    /// `schema` (already projected) with `build`. The series are listed now (labels only)
    /// to plan the reads and estimate the rows.
    pub(crate) async fn new(
        db: Arc<Db>,
        matchers: Vec<Matcher>,
        (mint, maxt): (i64, i64),
        table: &'static str,
        schema: SchemaRef,
        build: Arc<BuildBatch>,
    ) -> crate::Result<Self> {
        Self::of(
            db,
            matchers,
            (mint, maxt),
            table,
            schema,
            Source::Raw(build),
        )
        .await
    }

    /// A scan of the aggregates at resolution `res` of the windows ending in `[mint,
    /// maxt]` of the series `matchers` select.
    pub(crate) async fn aggregates(
        db: Arc<Db>,
        matchers: Vec<Matcher>,
        (mint, maxt): (i64, i64),
        table: &'static str,
        schema: SchemaRef,
        (res, build): (i64, Arc<BuildAggregates>),
    ) -> crate::Result<Self> {
        Self::of(
            db,
            matchers,
            (mint, maxt),
            table,
            schema,
            Source::Aggregates(res, build),
        )
        .await
    }

    async fn of(
        db: Arc<Db>,
        matchers: Vec<Matcher>,
        (mint, maxt): (i64, i64),
        table: &'static str,
        schema: SchemaRef,
        source: Source,
    ) -> crate::Result<Self> {
        let res = match &source {
            Source::Raw(_) => 0,
            Source::Aggregates(r, _) => *r,
        };
        let labels = if mint > maxt {
            Vec::new()
        } else if res > 0 {
            db.series(&matchers, mint.saturating_sub(res), maxt).await?
        } else {
            db.series(&matchers, mint, maxt).await?
        };
        let (lo, hi) = match res {
            0 => db.time_span().unwrap_or((mint, maxt)),
            _ => db.time_span_at(res).unwrap_or((mint, maxt)),
        };
        let (lo, hi) = (mint.max(lo), maxt.min(hi));
        let reads = plan_reads(&labels, lo, hi);
        let per_series = if lo > hi {
            0
        } else {
            (hi.saturating_sub(lo) / INTERVAL_MS.max(res)).saturating_add(1)
        };
        let estimate =
            usize::try_from(per_series.saturating_mul(labels.len() as i64)).unwrap_or(usize::MAX);
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(PartsScan {
            db,
            matchers: Arc::new(matchers),
            mint,
            maxt,
            table,
            schema,
            source,
            props,
            metrics: ExecutionPlanMetricsSet::new(),
            reads: Arc::new(reads),
            estimate,
        })
    }
}

impl fmt::Debug for PartsScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartsScan")
            .field("table", &self.table)
            .field("matchers", &self.matchers)
            .field("mint", &self.mint)
            .field("maxt", &self.maxt)
            .finish()
    }
}

impl DisplayAs for PartsScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StrataScan: table={}", self.table)?;
        for m in self.matchers.iter() {
            write!(f, ", {m}")?;
        }
        if self.mint != i64::MIN || self.maxt != i64::MAX {
            write!(f, ", time=[{}, {}]", self.mint, self.maxt)?;
        }
        Ok(())
    }
}

/// One read: a label range over a time window.
#[derive(Clone, Debug)]
struct Read {
    range: SeriesRange,
    mint: i64,
    maxt: i64,
}

/// Cuts a selection of `labels` over `[mint, maxt]` into reads of about [`READ_SAMPLES`]
/// estimated samples: label ranges first, then time windows once a range is one series.
fn plan_reads(labels: &[crate::Labels], mint: i64, maxt: i64) -> Vec<Read> {
    if labels.is_empty() || mint > maxt {
        return Vec::new();
    }
    let per_series = (maxt.saturating_sub(mint) / INTERVAL_MS).saturating_add(1);
    let total = per_series.saturating_mul(labels.len() as i64);
    let reads = (total / READ_SAMPLES).saturating_add(1).max(1);
    let parts = usize::try_from(reads)
        .unwrap_or(usize::MAX)
        .min(labels.len());
    let windows = (reads / parts as i64).max(1);
    let width = (maxt.saturating_sub(mint) / windows).saturating_add(1);
    let mut out = Vec::new();
    for range in SeriesRange::split(labels, parts) {
        let mut lo = mint;
        loop {
            let hi = lo.saturating_add(width - 1).min(maxt);
            out.push(Read {
                range: range.clone(),
                mint: lo,
                maxt: hi,
            });
            if hi >= maxt {
                break;
            }
            lo = hi + 1;
        }
    }
    out
}

/// Raw samples reserved from the query's pool as they are decoded; the first refusal kept.
struct PoolCharge<'a> {
    reservation: &'a std::sync::Mutex<MemoryReservation>,
    refusal: std::sync::Mutex<Option<DataFusionError>>,
}

impl ReadCharge for PoolCharge<'_> {
    fn charge(&self, samples: usize) -> bool {
        let Ok(r) = self.reservation.lock() else {
            return false;
        };
        match r.try_grow(samples.saturating_mul(SAMPLE_BYTES)) {
            Ok(()) => true,
            Err(e) => {
                if let Ok(mut slot) = self.refusal.lock() {
                    slot.get_or_insert(e);
                }
                false
            }
        }
    }
}

impl ExecutionPlan for PartsScan {
    fn name(&self) -> &str {
        "StrataScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "StrataScan takes no children".into(),
            ))
        }
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        // At one sample per 15 s: inexact, but of the right order for join planning.
        let mut st = Statistics::new_unknown(&self.schema);
        st.num_rows = Precision::Inexact(self.estimate);
        st.total_byte_size = Precision::Inexact(self.estimate.saturating_mul(24));
        Ok(Arc::new(st))
    }

    fn execute(
        &self,
        partition: usize,
        task: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "StrataScan has one partition, asked for {partition}"
            )));
        }
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let reservation = Arc::new(std::sync::Mutex::new(
            MemoryConsumer::new(format!("StrataScan[{}]", self.table)).register(task.memory_pool()),
        ));
        let (db, ms) = (self.db.clone(), self.matchers.clone());
        let (schema, source) = (self.schema.clone(), self.source.clone());
        // The reads were planned with the scan; they are made as the consumer pulls.
        let reads: Vec<Read> = self.reads.as_ref().clone();
        let batches = futures::stream::iter(reads)
            .then(move |read| {
                let (db, ms, schema, source, reservation, baseline) = (
                    db.clone(),
                    ms.clone(),
                    schema.clone(),
                    source.clone(),
                    reservation.clone(),
                    baseline.clone(),
                );
                async move {
                    let timer = baseline.elapsed_compute().timer();
                    let charge = PoolCharge {
                        reservation: &reservation,
                        refusal: std::sync::Mutex::new(None),
                    };
                    let r = match &source {
                        Source::Raw(build) => db
                            .select_charged(&ms, read.mint, read.maxt, Some(&read.range), &charge)
                            .await
                            .map(|series| build(series, &schema)),
                        Source::Aggregates(res, build) => {
                            let ends = (
                                crate::downsample::window_end(read.mint, *res),
                                read.maxt.saturating_sub(read.maxt.rem_euclid(*res)),
                            );
                            db.select_aggregates(&ms, ends, *res, Some(&read.range), &charge, true)
                                .await
                                .map(|series| build(series.unwrap_or_default(), &schema))
                        }
                    };
                    let batch = match r {
                        Ok(batch) => batch,
                        Err(crate::StorageError::ReadRefused) => Err(charge
                            .refusal
                            .into_inner()
                            .ok()
                            .flatten()
                            .unwrap_or_else(|| {
                                DataFusionError::ResourcesExhausted("storage read refused".into())
                            })),
                        Err(e) => Err(external(e)),
                    };
                    // The raw samples are gone once the batch is built; the batch itself is
                    // the consumer's to account for.
                    if let Ok(res) = reservation.lock() {
                        res.free();
                    }
                    timer.done();
                    batch.inspect(|b| baseline.record_output(b.num_rows()))
                }
            })
            .filter(|b| std::future::ready(b.as_ref().map_or(true, |b| b.num_rows() > 0)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}

fn external(e: crate::StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Labels;

    fn labels(n: usize) -> Vec<Labels> {
        let mut v: Vec<Labels> = (0..n)
            .map(|i| Labels::from_pairs([("__name__", "m"), ("i", &format!("{i:05}"))]))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn reads_tile_the_series_and_the_time_range() {
        for (n, span) in [
            (1, 0),
            (3, 10_000),
            (1000, 86_400_000),
            (2, 400 * 86_400_000),
        ] {
            let ls = labels(n);
            let reads = plan_reads(&ls, 5, 5 + span);
            // Every (series, timestamp) pair is in exactly one read.
            for l in &ls {
                for t in [5, 5 + span / 3, 5 + span] {
                    let hits = reads
                        .iter()
                        .filter(|r| r.range.contains(l) && r.mint <= t && t <= r.maxt)
                        .count();
                    assert_eq!(hits, 1, "n={n} span={span} t={t}");
                }
            }
            let est = |r: &Read| {
                let series = ls.iter().filter(|l| r.range.contains(l)).count() as i64;
                series * ((r.maxt - r.mint) / INTERVAL_MS + 1)
            };
            assert!(
                reads.iter().all(|r| est(r) <= 2 * READ_SAMPLES),
                "n={n} span={span}: a read is too large"
            );
        }
        assert!(plan_reads(&[], 0, 10).is_empty());
        assert!(plan_reads(&labels(3), 10, 0).is_empty());
    }
}
