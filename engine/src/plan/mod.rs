//! AST → DataFusion logical plan. Every PromQL operator becomes a [`PromNode`] extension
//! node; constant scalar subtrees fold at plan time.

mod calls;
pub mod node;
mod stats;

use std::sync::Arc;

use datafusion::logical_expr::{Extension, LogicalPlan};
use strata_grammar::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Duration, DurationExpr,
    DurationOp, Expr, Pos, SubqueryExpr, UnaryOp, ValueType, VectorSelector,
};

use crate::error::{EngineError, Result, exec_err};
use crate::functions::instant::scalar_binop;
use crate::functions::range::RangeFn;
use crate::model::{Grid, QueryParams};
pub use node::{AggParam, Extend, F64, HistKind, MapFn, NativeFn, PromNode, PromOp, ScalarArg};

/// A planned subexpression.
pub enum Planned {
    /// A constant scalar.
    Const(f64),
    /// A string.
    Str(String),
    /// An instant vector relation.
    Vector(LogicalPlan),
    /// A scalar relation (series 0, one row per step).
    Scalar(LogicalPlan),
    /// A range vector (raw samples), only at the top of an instant query.
    Matrix(LogicalPlan),
}

/// Plans one query.
pub struct Planner {
    /// Query parameters.
    pub params: QueryParams,
    /// Default subquery resolution (ms).
    pub default_step: i64,
    /// The query text, for annotation positions.
    pub text: Option<String>,
    /// Warnings found while planning.
    pub warnings: std::cell::RefCell<Vec<String>>,
    /// `--query.max-samples`: a subquery with more steps than this is refused here, before
    /// anything runs (its step grid alone would hold more points).
    pub max_samples: u64,
    /// The selectors of the query read for their histograms' statistics only
    /// ([`Planner::for_query`]).
    stats_only: std::collections::HashSet<usize>,
}

fn node(op: PromOp, inputs: Vec<LogicalPlan>) -> LogicalPlan {
    LogicalPlan::Extension(Extension {
        node: Arc::new(PromNode { op, inputs }),
    })
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(i) => unparen(i),
        other => other,
    }
}

impl Planner {
    /// A planner for one query.
    pub fn new(params: QueryParams, default_step: i64, text: Option<String>) -> Planner {
        Planner {
            params,
            default_step,
            text,
            warnings: Default::default(),
            max_samples: u64::MAX,
            stats_only: Default::default(),
        }
    }

    /// The same planner for the query `root` (which must outlive the planning): notes the
    /// selectors Prometheus reads through its `HistogramStatsIterator`.
    pub fn for_query(mut self, root: &Expr) -> Planner {
        self.stats_only = stats::stats_only_selectors(root);
        self
    }

    /// The same planner refusing subqueries of more than `max` steps.
    pub fn with_max_samples(mut self, max: u64) -> Planner {
        self.max_samples = max;
        self
    }

    /// ` (line:col)` of a position, when the query text is known.
    fn pos(&self, p: Pos) -> String {
        match &self.text {
            Some(t) => format!(" ({})", p.line_col(t)),
            None => String::new(),
        }
    }

    /// The relation of a scalar (constant or not) on `grid`.
    fn scalar_relation(&self, p: Planned, grid: Grid) -> Result<LogicalPlan> {
        match p {
            Planned::Const(v) => Ok(node(
                PromOp::Const {
                    grid,
                    value: F64::new(v),
                },
                vec![],
            )),
            Planned::Scalar(p) | Planned::Vector(p) => Ok(p),
            _ => Err(exec_err("expected a scalar")),
        }
    }

    /// A scalar argument of a node whose inputs so far are `inputs`.
    fn scalar_arg(&self, p: Planned, inputs: &mut Vec<LogicalPlan>) -> Result<ScalarArg> {
        match p {
            Planned::Const(v) => Ok(ScalarArg::Const(F64::new(v))),
            Planned::Scalar(plan) => {
                inputs.push(plan);
                Ok(ScalarArg::Child(inputs.len() - 1))
            }
            _ => Err(exec_err("expected a scalar argument")),
        }
    }

    fn vector(&self, e: &Expr, g: Grid) -> Result<LogicalPlan> {
        match self.plan(e, g)? {
            Planned::Vector(p) => Ok(p),
            _ => Err(exec_err(format!("expected an instant vector: {e}"))),
        }
    }

    /// Resolves a duration to milliseconds.
    pub fn duration(&self, d: &Duration) -> Result<i64> {
        match d {
            Duration::Fixed(ms) => Ok(*ms),
            Duration::Expr(e) => {
                let secs = self.duration_expr(e)?;
                let ms = secs * 1e3;
                if !ms.is_finite() || ms.abs() > i64::MAX as f64 {
                    return Err(EngineError::BadData(format!(
                        "duration expression out of range: {secs}"
                    )));
                }
                Ok(ms.round() as i64)
            }
        }
    }

    fn duration_expr(&self, e: &DurationExpr) -> Result<f64> {
        Ok(match e {
            DurationExpr::Number { seconds, .. } => *seconds,
            DurationExpr::Step => self.params.interval as f64 / 1e3,
            DurationExpr::Range => (self.params.end - self.params.start) as f64 / 1e3,
            DurationExpr::Neg(i) => -self.duration_expr(i)?,
            DurationExpr::Paren(i) => self.duration_expr(i)?,
            DurationExpr::Min(a, b) => self.duration_expr(a)?.min(self.duration_expr(b)?),
            DurationExpr::Max(a, b) => self.duration_expr(a)?.max(self.duration_expr(b)?),
            DurationExpr::Binary { op, lhs, rhs } => {
                let (a, b) = (self.duration_expr(lhs)?, self.duration_expr(rhs)?);
                match op {
                    DurationOp::Add => a + b,
                    DurationOp::Sub => a - b,
                    DurationOp::Mul => a * b,
                    DurationOp::Div => {
                        if b == 0.0 {
                            return Err(EngineError::BadData("division by zero".into()));
                        }
                        a / b
                    }
                    DurationOp::Mod => {
                        if b == 0.0 {
                            return Err(EngineError::BadData("modulo by zero".into()));
                        }
                        a % b
                    }
                    DurationOp::Pow => a.powf(b),
                }
            }
        })
    }

    fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(ms) => ms,
            AtModifier::Start => self.params.start,
            AtModifier::End => self.params.end,
        })
    }

    fn selector(
        &self,
        vs: &VectorSelector,
        lo_extra: i64,
        hi_extra: i64,
        g: Grid,
    ) -> Result<(LogicalPlan, i64, Option<i64>)> {
        let offset = vs
            .offset
            .as_ref()
            .map(|d| self.duration(d))
            .transpose()?
            .unwrap_or(0);
        let at = self.at(&vs.at);
        let ref_lo = at.unwrap_or(g.start).saturating_sub(offset);
        let ref_hi = at.unwrap_or(g.end).saturating_sub(offset);
        let matchers = vs.all_matchers();
        let sel = node(
            PromOp::Selector {
                matchers,
                mint: ref_lo.saturating_sub(lo_extra).saturating_add(1),
                maxt: ref_hi.saturating_add(hi_extra),
                stats_only: self.stats_only.contains(&(std::ptr::from_ref(vs) as usize)),
            },
            vec![],
        );
        Ok((sel, offset, at))
    }

    fn subquery_grid(
        &self,
        outer: Grid,
        sq: &SubqueryExpr,
    ) -> Result<(Grid, i64, i64, Option<i64>)> {
        let range = self.duration(&sq.range)?;
        let offset = sq
            .offset
            .as_ref()
            .map(|d| self.duration(d))
            .transpose()?
            .unwrap_or(0);
        let at = self.at(&sq.at);
        let step = match &sq.step {
            Some(d) => self.duration(d)?,
            None => self.default_step,
        };
        if step <= 0 {
            return Err(EngineError::BadData(
                "subquery step must be positive".into(),
            ));
        }
        let (lo, hi) = match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (
                outer.start.saturating_sub(offset),
                outer.end.saturating_sub(offset),
            ),
        };
        let first = lo.saturating_sub(range);
        let mut s = first.div_euclid(step).saturating_mul(step);
        if s <= first {
            s = s.saturating_add(step);
        }
        let grid = Grid {
            start: s,
            end: hi,
            step,
        };
        // Every step of the inner grid is at least one point of the inner relation.
        if grid.len() as u64 > self.max_samples {
            return Err(EngineError::TooManySamples);
        }
        Ok((grid, range, offset, at))
    }

    /// Plans `e` evaluated at the steps of `g`.
    pub fn plan(&self, e: &Expr, g: Grid) -> Result<Planned> {
        match e {
            Expr::NumberLiteral(n) => Ok(Planned::Const(n.value)),
            Expr::StringLiteral(s) => Ok(Planned::Str(s.clone())),
            Expr::Paren(i) => self.plan(i, g),
            Expr::Unary(u) => {
                let inner = self.plan(&u.expr, g)?;
                if u.op == UnaryOp::Pos {
                    return Ok(inner);
                }
                Ok(match inner {
                    Planned::Const(v) => Planned::Const(-v),
                    Planned::Vector(p) => Planned::Vector(self.map(g, MapFn::Neg, vec![p], vec![])),
                    Planned::Scalar(p) => Planned::Scalar(self.map(g, MapFn::Neg, vec![p], vec![])),
                    _ => return Err(exec_err("unary minus of a non-numeric value")),
                })
            }
            Expr::VectorSelector(vs) => Ok(Planned::Vector(self.instant(vs, g, false, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Ok(Planned::Matrix(self.matrix_arg(
                e,
                g,
                RangeFn::Raw,
                [0.0, 0.0],
                (false, String::new()),
            )?)),
            Expr::Call(c) => self.call(c, g),
            Expr::Aggregate(a) => self.aggregate(a, g),
            Expr::Binary(b) => self.binary(b, g),
        }
    }

    fn instant(
        &self,
        vs: &VectorSelector,
        g: Grid,
        sample_ts: bool,
        floats_only: bool,
    ) -> Result<LogicalPlan> {
        let lookback = self.params.lookback;
        // `smoothed` also reads the first sample after the step, within the lookback.
        let ahead = if vs.smoothed { lookback } else { 0 };
        let (sel, offset, at) = self.selector(vs, lookback, ahead, g)?;
        Ok(node(
            PromOp::Instant {
                grid: g,
                lookback,
                offset,
                at,
                sample_ts,
                floats_only,
                smoothed: vs.smoothed,
                pos: self.pos(vs.pos),
            },
            vec![sel],
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn range(
        &self,
        grid: Grid,
        range: i64,
        offset: i64,
        at: Option<i64>,
        func: RangeFn,
        p: [f64; 2],
        check: (bool, String),
        input: LogicalPlan,
    ) -> LogicalPlan {
        node(
            PromOp::Range {
                grid,
                range,
                offset,
                at,
                func,
                p0: F64::new(p[0]),
                p1: F64::new(p[1]),
                counter_check: check.0,
                pos: check.1,
                ext: Extend::None,
                params: Vec::new(),
            },
            vec![input],
        )
    }

    fn map(
        &self,
        grid: Grid,
        func: MapFn,
        inputs: Vec<LogicalPlan>,
        args: Vec<ScalarArg>,
    ) -> LogicalPlan {
        node(PromOp::Map { grid, func, args }, inputs)
    }

    /// Plans a range-vector argument (`m[r]` or a subquery) for a range function.
    fn matrix_arg(
        &self,
        e: &Expr,
        g: Grid,
        func: RangeFn,
        p: [f64; 2],
        check: (bool, String),
    ) -> Result<LogicalPlan> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let range = self.duration(&ms.range)?;
                let lb = self.params.lookback;
                let ext = match (ms.selector.anchored, ms.selector.smoothed) {
                    (_, true) => Extend::Smoothed(lb),
                    (true, false) => Extend::Anchored(lb),
                    _ => Extend::None,
                };
                let (lo, hi) = match ext {
                    Extend::None => (range, 0),
                    Extend::Anchored(_) => (range + lb, 0),
                    Extend::Smoothed(_) => (range + lb, lb),
                };
                let (sel, offset, at) = self.selector(&ms.selector, lo, hi, g)?;
                let plan = self.range(g, range, offset, at, func, p, check, sel);
                Ok(with_extend(plan, ext))
            }
            Expr::Subquery(sq) => {
                let (inner_grid, range, offset, at) = self.subquery_grid(g, sq)?;
                let inner = self.vector(&sq.expr, inner_grid)?;
                Ok(self.range(g, range, offset, at, func, p, check.clone(), inner))
            }
            other => Err(exec_err(format!("expected a range vector, got {other}"))),
        }
    }

    fn string_arg(&self, e: &Expr) -> Result<String> {
        match unparen(e) {
            Expr::StringLiteral(s) => Ok(s.clone()),
            other => Err(exec_err(format!("expected a string literal, got {other}"))),
        }
    }

    fn map_vector(&self, e: &Expr, g: Grid, f: MapFn) -> Result<Planned> {
        let v = self.vector(e, g)?;
        Ok(Planned::Vector(self.map(g, f, vec![v], vec![])))
    }

    fn aggregate(&self, a: &AggregateExpr, g: Grid) -> Result<Planned> {
        let mut inputs = vec![self.vector(&a.expr, g)?];
        let param = match &a.param {
            None => AggParam::None,
            Some(p) => match self.plan(p, g)? {
                Planned::Str(s) => AggParam::Label(s),
                other => AggParam::Scalar(self.scalar_arg(other, &mut inputs)?),
            },
        };
        if a.op == AggregateOp::CountValues
            && let AggParam::Label(l) = &param
            && !valid_label_name(l)
        {
            return Err(exec_err(format!("invalid label name {l:?}")));
        }
        let mut grouping = a.grouping.clone();
        grouping.sort();
        grouping.dedup();
        Ok(Planned::Vector(node(
            PromOp::Aggregate {
                grid: g,
                op: a.op,
                grouping,
                without: a.without,
                param,
                pos: self.pos(a.param_pos),
            },
            inputs,
        )))
    }

    fn binary(&self, b: &BinaryExpr, g: Grid) -> Result<Planned> {
        let lhs = self.plan(&b.lhs, g)?;
        let rhs = self.plan(&b.rhs, g)?;
        let op = b.op;
        match (lhs, rhs) {
            (Planned::Const(l), Planned::Const(r)) => Ok(Planned::Const(scalar_binop(op, l, r))),
            (Planned::Vector(l), Planned::Vector(r)) => {
                let m = b
                    .matching
                    .clone()
                    .unwrap_or(strata_grammar::VectorMatching {
                        card: if op.is_set_operator() {
                            strata_grammar::Cardinality::ManyToMany
                        } else {
                            strata_grammar::Cardinality::OneToOne
                        },
                        on: false,
                        labels: vec![],
                        include: vec![],
                        fill_lhs: None,
                        fill_rhs: None,
                    });
                let mut labels = m.labels.clone();
                labels.sort();
                Ok(Planned::Vector(node(
                    PromOp::Join {
                        grid: g,
                        op,
                        card: m.card,
                        on: m.on,
                        labels,
                        include: m.include.clone(),
                        return_bool: b.return_bool,
                        fill: (m.fill_lhs.map(F64::new), m.fill_rhs.map(F64::new)),
                        pos: self.pos(b.pos),
                    },
                    vec![l, r],
                )))
            }
            (Planned::Vector(v), s @ (Planned::Const(_) | Planned::Scalar(_))) => {
                let mut inputs = vec![v];
                let arg = self.scalar_arg(s, &mut inputs)?;
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::Binary {
                        op,
                        scalar_lhs: false,
                        return_bool: b.return_bool,
                        pos: self.pos(b.pos),
                    },
                    inputs,
                    vec![arg],
                )))
            }
            (s @ (Planned::Const(_) | Planned::Scalar(_)), Planned::Vector(v)) => {
                let mut inputs = vec![v];
                let arg = self.scalar_arg(s, &mut inputs)?;
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::Binary {
                        op,
                        scalar_lhs: true,
                        return_bool: b.return_bool,
                        pos: self.pos(b.pos),
                    },
                    inputs,
                    vec![arg],
                )))
            }
            (Planned::Scalar(l), r @ (Planned::Const(_) | Planned::Scalar(_))) => {
                let mut inputs = vec![l];
                let arg = self.scalar_arg(r, &mut inputs)?;
                Ok(Planned::Scalar(self.map(
                    g,
                    MapFn::Binary {
                        op,
                        scalar_lhs: false,
                        return_bool: b.return_bool,
                        pos: self.pos(b.pos),
                    },
                    inputs,
                    vec![arg],
                )))
            }
            (Planned::Const(l), Planned::Scalar(r)) => Ok(Planned::Scalar(self.map(
                g,
                MapFn::Binary {
                    op,
                    scalar_lhs: true,
                    return_bool: b.return_bool,
                    pos: self.pos(b.pos),
                },
                vec![r],
                vec![ScalarArg::Const(F64::new(l))],
            ))),
            _ => Err(exec_err(format!(
                "invalid operands of binary operator {}",
                op.as_str()
            ))),
        }
    }
}

/// The `@` and offset the info series of `info(e)` are looked up with: those of the first
/// vector selector of `e` (in Prometheus's `parser.Inspect` order); while it has no `@`,
/// the offsets of the subqueries around it are added, outwards, until one with an `@`.
fn info_time(
    e: &Expr,
) -> (
    Option<strata_grammar::AtModifier>,
    Option<strata_grammar::DurationExpr>,
) {
    fn first<'a>(
        e: &'a Expr,
        path: &mut Vec<&'a SubqueryExpr>,
    ) -> Option<(&'a VectorSelector, Vec<&'a SubqueryExpr>)> {
        match e {
            Expr::VectorSelector(vs) => Some((vs, path.clone())),
            Expr::MatrixSelector(ms) => Some((&ms.selector, path.clone())),
            Expr::Subquery(sq) => {
                path.push(sq);
                let r = first(&sq.expr, path);
                path.pop();
                r
            }
            Expr::Call(c) => c.args.iter().find_map(|a| first(a, path)),
            Expr::Aggregate(a) => {
                first(&a.expr, path).or_else(|| a.param.as_deref().and_then(|p| first(p, path)))
            }
            Expr::Binary(b) => first(&b.lhs, path).or_else(|| first(&b.rhs, path)),
            Expr::Unary(u) => first(&u.expr, path),
            Expr::Paren(x) => first(x, path),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => None,
        }
    }
    let Some((vs, path)) = first(e, &mut Vec::new()) else {
        return (None, None);
    };
    let as_expr = |d: &strata_grammar::Duration| match d {
        strata_grammar::Duration::Fixed(ms) => strata_grammar::DurationExpr::Number {
            seconds: *ms as f64 / 1000.0,
            duration: true,
        },
        strata_grammar::Duration::Expr(x) => x.clone(),
    };
    let mut at = vs.at;
    let mut offset = vs.offset.as_ref().map(as_expr);
    for sq in path.iter().rev() {
        if at.is_some() {
            break;
        }
        if let Some(o) = &sq.offset {
            offset = Some(match offset {
                None => as_expr(o),
                Some(prev) => strata_grammar::DurationExpr::Binary {
                    op: strata_grammar::DurationOp::Add,
                    lhs: Box::new(prev),
                    rhs: Box::new(as_expr(o)),
                },
            });
        }
        at = sq.at;
    }
    (at, offset)
}

/// Gives a range node parameters evaluated per step, `extra` being their inputs (after the
/// range itself).
fn with_params(plan: LogicalPlan, params: Vec<ScalarArg>, extra: Vec<LogicalPlan>) -> LogicalPlan {
    if params.is_empty() {
        return plan;
    }
    if let LogicalPlan::Extension(x) = &plan
        && let Some(n) = x.node.as_any().downcast_ref::<PromNode>()
        && let PromOp::Range { .. } = &n.op
    {
        let mut n = n.clone();
        if let PromOp::Range { params: p, .. } = &mut n.op {
            *p = params;
        }
        n.inputs.extend(extra);
        return LogicalPlan::Extension(Extension { node: Arc::new(n) });
    }
    plan
}

/// Sets the `anchored` / `smoothed` mode of a range node.
fn with_extend(plan: LogicalPlan, e: Extend) -> LogicalPlan {
    if let LogicalPlan::Extension(x) = &plan
        && let Some(n) = x.node.as_any().downcast_ref::<PromNode>()
        && let PromOp::Range { .. } = &n.op
    {
        let mut n = n.clone();
        if let PromOp::Range { ext, .. } = &mut n.op {
            *ext = e;
        }
        return LogicalPlan::Extension(Extension { node: Arc::new(n) });
    }
    plan
}

/// Labels of `absent(...)`'s result (Prometheus `createLabelsForAbsentFunction`).
fn absent_labels(e: &Expr) -> Vec<(String, String)> {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.selector,
        _ => return vec![],
    };
    // Prometheus `createLabelsForAbsentFunction`: the first `=` matcher of a name sets it,
    // any other matcher of that name removes it.
    let mut out: Vec<(String, String)> = Vec::new();
    let mut has: Vec<String> = Vec::new();
    for m in vs.all_matchers() {
        if m.name == "__name__" {
            continue;
        }
        if m.op == strata_grammar::MatchOp::Equal && !has.contains(&m.name) {
            out.retain(|(n, _)| *n != m.name);
            out.push((m.name.clone(), m.value.clone()));
            has.push(m.name.clone());
        } else {
            out.retain(|(n, _)| *n != m.name);
        }
    }
    out
}

/// Prometheus 3.x label-name rule: any non-empty valid UTF-8. String literals with invalid
/// UTF-8 (`"\xff"`) reach the engine with U+FFFD in place of the bad bytes.
pub fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{FFFD}')
}

/// The value type an expression evaluates to, for the result shape.
pub fn top_type(e: &Expr) -> ValueType {
    e.value_type()
}

/// Whether the set operator `op` is `and`/`or`/`unless`.
pub fn is_set(op: BinaryOp) -> bool {
    op.is_set_operator()
}
