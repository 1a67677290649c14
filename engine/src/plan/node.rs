//! The logical plan node of every PromQL operator: plain data (no handles), so plans can be
//! printed with EXPLAIN and later serialised with datafusion-proto.

use std::fmt;
use std::hash::{Hash, Hasher};

use datafusion::common::DFSchemaRef;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, UserDefinedLogicalNodeCore};
use strata_grammar::{AggregateOp, BinaryOp, Cardinality};

use crate::functions::date::DateFn;
use crate::functions::instant::MathFn;
use crate::functions::range::RangeFn;
use crate::model::{Grid, vector_dfschema};

/// An `f64` that is `Eq + Hash` by bit pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct F64(pub u64);

impl F64 {
    /// Wraps a float.
    pub fn new(v: f64) -> F64 {
        F64(v.to_bits())
    }
    /// The float.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// A scalar argument: a constant, or the scalar relation of input `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScalarArg {
    /// A constant.
    Const(F64),
    /// Input number `i` of the node (one row per step, series 0).
    Child(usize),
}

/// A float statistic of each native histogram sample (floats are ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NativeFn {
    /// `histogram_count`.
    Count,
    /// `histogram_sum`.
    Sum,
    /// `histogram_avg`.
    Avg,
    /// `histogram_stddev`.
    Stddev,
    /// `histogram_stdvar`.
    Stdvar,
}

impl NativeFn {
    /// The statistic of `h`.
    pub fn apply(self, h: &strata_vocab::FloatHistogram) -> f64 {
        use strata_vocab::histogram::stats::variance;
        match self {
            NativeFn::Count => h.count,
            NativeFn::Sum => h.sum,
            NativeFn::Avg => h.sum / h.count,
            NativeFn::Stddev => variance(h).sqrt(),
            NativeFn::Stdvar => variance(h),
        }
    }
}

/// A per-sample operation on one vector.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MapFn {
    /// `abs`, `ln`, …
    Math(MathFn),
    /// `hour`, `month`, …
    Date(DateFn),
    /// `clamp(v, min, max)`.
    Clamp,
    /// `clamp_min(v, min)`.
    ClampMin,
    /// `clamp_max(v, max)`.
    ClampMax,
    /// `round(v, to_nearest)`.
    Round,
    /// `timestamp(expr)` of a non-selector: the evaluation time.
    Timestamp,
    /// Value unchanged, `__name__` to be dropped (`timestamp(selector)`).
    DropName,
    /// Unary minus.
    Neg,
    /// vector ⊕ scalar, scalar ⊕ vector and scalar ⊕ scalar.
    Binary {
        /// Operator.
        op: BinaryOp,
        /// The scalar argument is on the left.
        scalar_lhs: bool,
        /// `bool` modifier.
        return_bool: bool,
        /// The expression's position (annotations).
        pos: String,
    },
    /// `label_replace`.
    LabelReplace {
        /// Destination label.
        dst: String,
        /// Replacement template.
        repl: String,
        /// Source label.
        src: String,
        /// Regex (unanchored source text).
        regex: String,
    },
    /// `label_join`.
    LabelJoin {
        /// Destination label.
        dst: String,
        /// Separator.
        sep: String,
        /// Source labels.
        srcs: Vec<String>,
    },
    /// `histogram_count`, `_sum`, `_avg`, `_stddev`, `_stdvar` of native histograms.
    Native(NativeFn),
    /// Rows unchanged (`sort_by_label*`).
    Identity,
    /// Float rows unchanged, histogram rows dropped (`sort`, `sort_desc`).
    Floats,
    /// No rows (`histogram_*` of float samples).
    Nothing,
}

/// The classic-histogram functions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HistKind {
    /// `histogram_quantile(φ, v)`.
    Quantile,
    /// `histogram_quantiles(v, label, φ…)`.
    Quantiles(String),
    /// `histogram_fraction(lower, upper, v)`.
    Fraction,
}

/// The `anchored` / `smoothed` range-selector modifiers, with the lookback delta that
/// bounds how far outside the window their boundary samples may be.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Extend {
    /// A plain left-open window.
    #[default]
    None,
    /// Also the last sample at or before the window start (within the lookback).
    Anchored(i64),
    /// Anchored, plus the first sample after the window end; boundaries interpolated.
    Smoothed(i64),
}

/// The parameter of an aggregation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AggParam {
    /// None.
    None,
    /// `k`, `q`, ratio.
    Scalar(ScalarArg),
    /// `count_values` label.
    Label(String),
}

/// One PromQL operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PromOp {
    /// Raw samples of matching series in `[mint, maxt]` (stale markers kept).
    Selector {
        /// Label matchers.
        matchers: Vec<strata_vocab::LabelMatcher>,
        /// Inclusive lower bound.
        mint: i64,
        /// Inclusive upper bound.
        maxt: i64,
        /// Read for the histograms' count and sum only: "unknown" counter-reset hints
        /// after a series' first sample become "reset" or "not a reset", as Prometheus's
        /// `HistogramStatsIterator` makes them.
        #[serde(default)]
        stats_only: bool,
    },
    /// Instant-vector lookup at each step.
    Instant {
        /// Steps.
        grid: Grid,
        /// Lookback delta.
        lookback: i64,
        /// Offset.
        offset: i64,
        /// Resolved `@`.
        at: Option<i64>,
        /// Emit the sample timestamp instead of its value (`timestamp()`).
        sample_ts: bool,
        /// A histogram sample is an error (`info()`'s info series: "info sample should be
        /// float").
        #[serde(default)]
        floats_only: bool,
        /// `smoothed`: the value interpolated between the samples either side of the step.
        smoothed: bool,
        /// Annotation position of the selector (` (1:1)`).
        pos: String,
    },
    /// A range function over windows `(ref − range, ref]`.
    Range {
        /// Steps.
        grid: Grid,
        /// Window width.
        range: i64,
        /// Offset.
        offset: i64,
        /// Resolved `@`.
        at: Option<i64>,
        /// The function.
        func: RangeFn,
        /// First constant parameter.
        p0: F64,
        /// Second constant parameter.
        p1: F64,
        /// Check for "might not be a counter" (`rate`/`increase`).
        counter_check: bool,
        /// Annotation position of the first argument (` (1:6)`).
        pos: String,
        /// `anchored` / `smoothed`.
        ext: Extend,
        /// Parameters evaluated per step (`quantile_over_time(scalar(q), …)`): when not
        /// empty, they replace `p0`/`p1`; `Child(i)` is input `i` (input 0 is the range).
        params: Vec<ScalarArg>,
    },
    /// A constant at every step (series 0).
    Const {
        /// Steps.
        grid: Grid,
        /// Value.
        value: F64,
    },
    /// `time()` at every step.
    Time {
        /// Steps.
        grid: Grid,
    },
    /// Per-sample function; input 0 is the vector, others are scalar arguments.
    Map {
        /// Steps.
        grid: Grid,
        /// The function.
        func: MapFn,
        /// Scalar arguments.
        args: Vec<ScalarArg>,
    },
    /// `scalar(v)`.
    ScalarOf {
        /// Steps.
        grid: Grid,
    },
    /// vector ⊕ vector.
    Join {
        /// Steps.
        grid: Grid,
        /// Operator.
        op: BinaryOp,
        /// Cardinality.
        card: Cardinality,
        /// `on` (true) or `ignoring`.
        on: bool,
        /// Matching labels.
        labels: Vec<String>,
        /// `group_*` extra labels.
        include: Vec<String>,
        /// `bool`.
        return_bool: bool,
        /// `fill_left` / `fill_right` values (`fill` sets both).
        fill: (Option<F64>, Option<F64>),
        /// The expression's position (annotations).
        pos: String,
    },
    /// An aggregation; input 1 (if any) is the scalar parameter.
    Aggregate {
        /// Steps.
        grid: Grid,
        /// Operator.
        op: AggregateOp,
        /// Grouping labels.
        grouping: Vec<String>,
        /// `without`.
        without: bool,
        /// Parameter.
        param: AggParam,
        /// Annotation position of the parameter.
        pos: String,
    },
    /// `info(v, selector)`: input 0 is `v`, input 1 the info series' sample timestamps.
    Info {
        /// Steps.
        grid: Grid,
        /// `__name__` matchers of the selector (empty: `target_info`).
        names: Vec<strata_vocab::LabelMatcher>,
        /// Data-label matchers of the selector.
        data: Vec<strata_vocab::LabelMatcher>,
    },
    /// `absent(v)` / `absent_over_time(m)`.
    Absent {
        /// Steps.
        grid: Grid,
        /// Labels of the result.
        labels: Vec<(String, String)>,
    },
    /// `histogram_quantile(s)` / `histogram_fraction` on classic buckets; input 0 is the vector.
    Histogram {
        /// Steps.
        grid: Grid,
        /// Which function.
        kind: HistKind,
        /// φ values, or (lower, upper).
        args: Vec<ScalarArg>,
        /// Annotation position of the φ argument (` (1:20)`).
        q_pos: String,
        /// Annotation position of the vector argument.
        v_pos: String,
    },
}

impl PromOp {
    /// The node name in EXPLAIN.
    pub fn name(&self) -> &'static str {
        match self {
            PromOp::Selector { .. } => "PromSelector",
            PromOp::Instant { .. } => "PromInstantVector",
            PromOp::Range { .. } => "PromRangeWindow",
            PromOp::Const { .. } => "PromConst",
            PromOp::Time { .. } => "PromTime",
            PromOp::Map { .. } => "PromMap",
            PromOp::ScalarOf { .. } => "PromScalar",
            PromOp::Join { .. } => "PromJoin",
            PromOp::Aggregate { .. } => "PromAggregate",
            PromOp::Absent { .. } => "PromAbsent",
            PromOp::Info { .. } => "PromInfo",
            PromOp::Histogram { .. } => "PromHistogram",
        }
    }
}

/// The DataFusion logical node wrapping a [`PromOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromNode {
    /// The operator.
    pub op: PromOp,
    /// Its inputs.
    pub inputs: Vec<LogicalPlan>,
}

impl Hash for PromNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.op.hash(state);
        self.inputs.hash(state);
    }
}

impl PartialOrd for PromNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        (self == other).then_some(std::cmp::Ordering::Equal)
    }
}

impl UserDefinedLogicalNodeCore for PromNode {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        self.inputs.iter().collect()
    }

    fn schema(&self) -> &DFSchemaRef {
        static S: std::sync::LazyLock<DFSchemaRef> = std::sync::LazyLock::new(vector_dfschema);
        &S
    }

    fn expressions(&self) -> Vec<DfExpr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {:?}", self.op.name(), self.op)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<DfExpr>,
        inputs: Vec<LogicalPlan>,
    ) -> DfResult<Self> {
        Ok(PromNode {
            op: self.op.clone(),
            inputs,
        })
    }
}
