//! The data model every plan node shares: the step grid, the vector relation
//! `(series u32, ts i64, value f64, hist binary?)`, and the per-query series registry that maps
//! series ids to label sets (labels never travel in columns).

use datafusion::common::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DFSchema, DFSchemaRef};
use parking_lot::{Mutex, RwLock};
use strata_storage::{Db, Labels};

use crate::error::{EngineError, Result};
use crate::memory::Budget;
pub use crate::rows::{Rows, SeriesRuns};

/// The series id of scalar relations (labels `{}`).
pub const SCALAR_SERIES: u32 = 0;
/// Bit pattern of Prometheus's staleness marker.
pub const STALE_NAN: u64 = strata_storage::STALE_NAN.to_bits();

/// True if `v` is a staleness marker.
#[inline]
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

/// Evaluation steps: `start, start+step, …, ≤ end` (ms). An instant query is one step.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub struct Grid {
    /// First step.
    pub start: i64,
    /// Last step (inclusive bound).
    pub end: i64,
    /// Step width, > 0.
    pub step: i64,
}

impl Grid {
    /// Number of steps.
    pub fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            0
        } else {
            let steps = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
            usize::try_from(steps).map_or(usize::MAX, |n| n.saturating_add(1))
        }
    }

    /// True when the grid has no step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The step times.
    pub fn steps(&self) -> impl Iterator<Item = i64> + use<> {
        let g = *self;
        (0..g.len()).map(move |i| g.start + i as i64 * g.step)
    }

    /// Index of the step at `ts`, if `ts` is on the grid.
    pub fn index(&self, ts: i64) -> Option<usize> {
        if ts < self.start || ts > self.end || (ts - self.start) % self.step != 0 {
            None
        } else {
            Some(((ts - self.start) / self.step) as usize)
        }
    }
}

/// Query-wide parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryParams {
    /// Query start (ms).
    pub start: i64,
    /// Query end (ms).
    pub end: i64,
    /// Step (ms); 0 for an instant query.
    pub interval: i64,
    /// Lookback delta (ms).
    pub lookback: i64,
    /// The coarsest downsampled resolution (ms) range functions may read
    /// (`max_source_resolution`): 0 reads raw data only, [`AUTO_RESOLUTION`] any.
    pub max_source_resolution: i64,
}

/// `max_source_resolution=auto`: whatever resolution gives the same answer.
pub const AUTO_RESOLUTION: i64 = i64::MAX;

impl QueryParams {
    /// The top-level grid.
    pub fn grid(&self) -> Grid {
        Grid {
            start: self.start,
            end: self.end,
            step: self.interval.max(1),
        }
    }
}

/// Labels of a series and whether `__name__` must be dropped from the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesMeta {
    /// The labels.
    pub labels: Labels,
    /// Delayed `__name__` removal flag.
    pub drop_name: bool,
}

#[derive(Default)]
struct RegistryInner {
    metas: Vec<SeriesMeta>,
    ids: HashMap<SeriesMeta, u32>,
}

impl RegistryInner {
    fn get_or_insert(&mut self, meta: SeriesMeta) -> u32 {
        if let Some(id) = self.ids.get(&meta) {
            return *id;
        }
        let id = self.metas.len() as u32;
        self.metas.push(meta.clone());
        self.ids.insert(meta, id);
        id
    }
}

/// Per-query map of series ids to labels. Id 0 is the scalar series `{}`.
pub struct SeriesRegistry {
    inner: RwLock<RegistryInner>,
}

impl Default for SeriesRegistry {
    fn default() -> Self {
        let r = SeriesRegistry {
            inner: RwLock::new(RegistryInner::default()),
        };
        r.intern(Labels::default(), false);
        r
    }
}

impl SeriesRegistry {
    /// The id of `labels` with `drop_name`, allocating one on first sight.
    pub fn intern(&self, labels: Labels, drop_name: bool) -> u32 {
        let meta = SeriesMeta { labels, drop_name };
        if let Some(id) = self.inner.read().ids.get(&meta) {
            return *id;
        }
        self.inner.write().get_or_insert(meta)
    }

    /// Ids of many label sets at once, in order (one lock): `(id, id of the name-dropped
    /// twin)`, the twin only interned when `drop_name` (else it is the id itself).
    pub fn intern_all(&self, labels: &[Labels], drop_name: bool) -> Vec<(u32, u32)> {
        let mut w = self.inner.write();
        labels
            .iter()
            .map(|l| {
                let meta = |drop_name| SeriesMeta {
                    labels: l.clone(),
                    drop_name,
                };
                let id = w.get_or_insert(meta(false));
                let twin = if drop_name {
                    w.get_or_insert(meta(true))
                } else {
                    id
                };
                (id, twin)
            })
            .collect()
    }

    /// Labels and flag of `id`.
    pub fn get(&self, id: u32) -> SeriesMeta {
        self.inner.read().metas[id as usize].clone()
    }

    /// The same labels with the drop flag set.
    pub fn with_drop_name(&self, id: u32) -> u32 {
        let m = self.get(id);
        if m.drop_name {
            id
        } else {
            self.intern(m.labels, true)
        }
    }
}

/// Per-query state shared by all execution nodes.
pub struct QueryContext {
    /// The database.
    pub db: Arc<Db>,
    /// Series ids of this query.
    pub registry: SeriesRegistry,
    /// Query parameters.
    pub params: QueryParams,
    /// Points and bytes held, against `--query.max-samples` and `--query.max-memory`.
    pub budget: Budget,
    /// Warnings and infos collected during evaluation.
    pub notes: Mutex<Annotations>,
    /// When the query must stop (`--query.timeout` / `timeout`).
    pub deadline: std::time::Instant,
    /// `--enable-feature=type-and-unit-labels`.
    pub type_and_unit_labels: bool,
    /// Label-range parts every selection is cut into, if fixed
    /// ([`EngineOptions::selection_parts`](crate::EngineOptions::selection_parts)).
    pub parts: Option<usize>,
    /// The cluster the query is planned for, when it runs distributed (this node is its
    /// coordinator): selections are not listed here, and reads run on the workers.
    pub layout: Option<Arc<crate::distributed::Layout>>,
    /// The series this node reads, when it runs a task of a distributed query.
    pub shard: Option<Arc<crate::distributed::Shard>>,
}

impl QueryContext {
    /// Fails with [`EngineError::Timeout`] once the deadline has passed; kernels call this
    /// between series and steps so a long query stops without an await point.
    pub fn check_deadline(&self) -> Result<()> {
        if std::time::Instant::now() >= self.deadline {
            return Err(EngineError::Timeout);
        }
        Ok(())
    }

    /// Whether this node reads the series `labels` (every series, unless it runs one task
    /// of a distributed query).
    pub fn owns(&self, labels: &Labels) -> bool {
        self.shard.as_ref().is_none_or(|s| s.owns(labels))
    }

    /// The storage filter of the series this node reads, when it runs one task of a
    /// distributed query.
    pub fn series_filter(&self) -> Option<strata_storage::SeriesFilter> {
        let shard = self.shard.clone()?;
        Some(strata_storage::SeriesFilter(Arc::new(move |l| {
            shard.owns(l)
        })))
    }

    /// Records a warning.
    pub fn warn(&self, msg: String) {
        let mut n = self.notes.lock();
        if !n.warnings.contains(&msg) {
            n.warnings.push(msg);
        }
    }

    /// Records an info.
    pub fn info(&self, msg: String) {
        let mut n = self.notes.lock();
        if !n.infos.contains(&msg) {
            n.infos.push(msg);
        }
    }
}

/// Warnings and infos of a query.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Annotations {
    /// `warnings`.
    pub warnings: Vec<String>,
    /// `infos`.
    pub infos: Vec<String>,
}

/// The Arrow schema of every PromQL relation.
pub fn vector_schema() -> SchemaRef {
    static S: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("series", DataType::UInt32, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
            // A native histogram value (binary form), null on float rows.
            Field::new("hist", DataType::Binary, true),
        ]))
    });
    S.clone()
}

/// The DataFusion logical schema of every PromQL relation.
pub fn vector_dfschema() -> DFSchemaRef {
    static S: LazyLock<DFSchemaRef> = LazyLock::new(|| {
        Arc::new(DFSchema::try_from(vector_schema().as_ref().clone()).expect("static schema"))
    });
    S.clone()
}
