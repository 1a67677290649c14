//! Planning a function call: the function table ([`crate::functions::table`]) says how
//! each function is built — a range kernel over its matrix argument with its parameters, a
//! per-sample kernel, or one of the builders here — and which range modifiers it accepts.

use datafusion::logical_expr::LogicalPlan;
use strata_grammar::{Call, Expr, VectorSelector};
use strata_vocab::{LabelMatcher, MatchOp};

use super::node::{F64, HistKind, MapFn, PromOp, ScalarArg};
use super::{
    Planned, Planner, absent_labels, info_time, node, unparen, valid_label_name, with_params,
};
use crate::error::{Result, exec_err};
use crate::functions::range::RangeFn;
use crate::functions::table::{self, Builder, ClampFn, ClassicFn, ConstFn, FunctionImpl};
use crate::model::Grid;

impl Planner {
    /// Plans a call of a function of the table.
    pub(super) fn call(&self, c: &Call, g: Grid) -> Result<Planned> {
        let name = c.func.name;
        let args = &c.args;
        let Some(f) = table::lookup(name) else {
            return Err(exec_err(format!(
                "function \"{name}\" is not supported by this version of Strata"
            )));
        };
        check_extended_range(f, args)?;
        match f.builder {
            Builder::Range {
                func,
                matrix,
                params,
                counter_check,
            } => self.call_range(c, g, func, (matrix, params), counter_check),
            Builder::AbsentOverTime => {
                let plan = self.call_range_plan(c, g, RangeFn::PresentOverTime, (0, &[]), false)?;
                let labels = absent_labels(unparen(&args[0]));
                Ok(Planned::Vector(node(
                    PromOp::Absent { grid: g, labels },
                    vec![plan],
                )))
            }
            Builder::Math(m) => self.map_vector(&args[0], g, MapFn::Math(m)),
            Builder::Date(d) => {
                let input = match args.first() {
                    Some(a) => self.plan(a, g)?,
                    None => Planned::Scalar(node(PromOp::Time { grid: g }, vec![])),
                };
                let input = match input {
                    Planned::Vector(p) | Planned::Scalar(p) => p,
                    Planned::Const(v) => self.scalar_relation(Planned::Const(v), g)?,
                    _ => return Err(exec_err("bad argument")),
                };
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::Date(d),
                    vec![input],
                    vec![],
                )))
            }
            Builder::Time => Ok(Planned::Scalar(node(PromOp::Time { grid: g }, vec![]))),
            Builder::Const(ConstFn::Pi) => Ok(Planned::Const(std::f64::consts::PI)),
            Builder::Const(ConstFn::Start) => Ok(Planned::Const(self.params.start as f64 / 1e3)),
            Builder::Const(ConstFn::End) => Ok(Planned::Const(self.params.end as f64 / 1e3)),
            Builder::Const(ConstFn::Step) => Ok(Planned::Const(self.params.interval as f64 / 1e3)),
            Builder::Const(ConstFn::Range) => Ok(Planned::Const(
                (self.params.end - self.params.start) as f64 / 1e3,
            )),
            Builder::Extremum(min) => {
                // Go's math.Min / math.Max (symmetric, NaN wins): per step unless both
                // arguments are constants, as `clamp_max` / `clamp_min` of one by the other.
                match (self.plan(&args[0], g)?, self.plan(&args[1], g)?) {
                    (Planned::Const(a), Planned::Const(b)) => Ok(Planned::Const(if min {
                        crate::functions::go_min(a, b)
                    } else {
                        crate::functions::go_max(a, b)
                    })),
                    (Planned::Scalar(s), other) | (other, Planned::Scalar(s)) => {
                        let mut inputs = vec![s];
                        let arg = self.scalar_arg(other, &mut inputs)?;
                        let f = if min {
                            MapFn::ClampMax
                        } else {
                            MapFn::ClampMin
                        };
                        Ok(Planned::Scalar(self.map(g, f, inputs, vec![arg])))
                    }
                    _ => Err(exec_err(format!("{name}() takes two scalars"))),
                }
            }
            Builder::Vector => match self.plan(&args[0], g)? {
                Planned::Const(v) => {
                    Ok(Planned::Vector(self.scalar_relation(Planned::Const(v), g)?))
                }
                Planned::Scalar(p) => Ok(Planned::Vector(p)),
                _ => Err(exec_err("vector() needs a scalar")),
            },
            Builder::Scalar => {
                let v = self.vector(&args[0], g)?;
                Ok(Planned::Scalar(node(PromOp::ScalarOf { grid: g }, vec![v])))
            }
            Builder::Timestamp => {
                if let Expr::VectorSelector(vs) = unparen(&args[0]) {
                    let p = self.instant(vs, g, true, false)?;
                    return Ok(Planned::Vector(self.map(
                        g,
                        MapFn::DropName,
                        vec![p],
                        vec![],
                    )));
                }
                self.map_vector(&args[0], g, MapFn::Timestamp)
            }
            Builder::Clamp(kind) => {
                let mut inputs = vec![self.vector(&args[0], g)?];
                let mut sargs = Vec::new();
                for a in &args[1..] {
                    let p = self.plan(a, g)?;
                    sargs.push(self.scalar_arg(p, &mut inputs)?);
                }
                let func = match kind {
                    ClampFn::Clamp => MapFn::Clamp,
                    ClampFn::Min => MapFn::ClampMin,
                    ClampFn::Max => MapFn::ClampMax,
                    ClampFn::Round => {
                        if sargs.is_empty() {
                            sargs.push(ScalarArg::Const(F64::new(1.0)));
                        }
                        MapFn::Round
                    }
                };
                Ok(Planned::Vector(self.map(g, func, inputs, sargs)))
            }
            Builder::LabelReplace => {
                let v = self.vector(&args[0], g)?;
                let dst = self.string_arg(&args[1])?;
                let repl = self.string_arg(&args[2])?;
                let src = self.string_arg(&args[3])?;
                let regex = self.string_arg(&args[4])?;
                if let Err(e) = strata_vocab::pattern::compile_anchored(&regex) {
                    return Err(exec_err(format!(
                        "invalid regular expression in label_replace(): {regex}: {e}"
                    )));
                }
                if !valid_label_name(&dst) {
                    return Err(exec_err(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::LabelReplace {
                        dst,
                        repl,
                        src,
                        regex,
                    },
                    vec![v],
                    vec![],
                )))
            }
            Builder::LabelJoin => {
                let v = self.vector(&args[0], g)?;
                let dst = self.string_arg(&args[1])?;
                let sep = self.string_arg(&args[2])?;
                let srcs = args[3..]
                    .iter()
                    .map(|a| self.string_arg(a))
                    .collect::<Result<Vec<_>>>()?;
                if !valid_label_name(&dst) {
                    return Err(exec_err(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                for s in &srcs {
                    if !valid_label_name(s) {
                        return Err(exec_err(format!(
                            "invalid source label name in label_join(): {s}"
                        )));
                    }
                }
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::LabelJoin { dst, sep, srcs },
                    vec![v],
                    vec![],
                )))
            }
            Builder::Sort => {
                if self.params.interval != 0 {
                    self.warnings.borrow_mut().push(format!(
                        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels{}",
                        self.pos(c.pos)
                    ));
                }
                let v = self.vector(&args[0], g)?;
                // `sort` and `sort_desc` order float samples and drop histograms;
                // `sort_by_label*` keep every sample.
                let f = if c.func.name.starts_with("sort_by_label") {
                    MapFn::Identity
                } else {
                    MapFn::Floats
                };
                Ok(Planned::Vector(self.map(g, f, vec![v], vec![])))
            }
            Builder::Info => {
                let v = self.vector(&args[0], g)?;
                let mut names: Vec<LabelMatcher> = Vec::new();
                let mut data = Vec::new();
                if let Some(Expr::VectorSelector(vs)) = args.get(1).map(unparen) {
                    for m in vs.all_matchers() {
                        if m.name == "__name__" {
                            names.push(m);
                        } else {
                            data.push(m);
                        }
                    }
                }
                let mut matchers: Vec<LabelMatcher> =
                    names.iter().chain(data.iter()).cloned().collect();
                // Prometheus `effectiveInfoNameMatchers`: no name matcher means
                // `target_info`; only negative ones are narrowed to `.+_info` names.
                let positive = names
                    .iter()
                    .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex));
                let implied = match (names.is_empty(), positive) {
                    (true, _) => Some(LabelMatcher::equal("__name__", "target_info")),
                    (false, false) => {
                        Some(LabelMatcher::new("__name__", MatchOp::Regex, ".+_info"))
                    }
                    (false, true) => None,
                };
                if let Some(m) = implied {
                    matchers.push(m.clone());
                    names.insert(0, m);
                }
                // The info series are looked up at the `@` time and offset of the first
                // selector of the argument (Prometheus `infoSelectTimestampAndOffset`).
                let (at, offset) = info_time(&args[0]);
                let sel = VectorSelector {
                    matchers,
                    at,
                    offset: offset.map(strata_grammar::Duration::Expr),
                    ..VectorSelector::default()
                };
                let info = self.instant(&sel, g, true, true)?;
                Ok(Planned::Vector(node(
                    PromOp::Info {
                        grid: g,
                        names,
                        data,
                    },
                    vec![v, info],
                )))
            }
            Builder::Absent => {
                let v = self.vector(&args[0], g)?;
                let labels = absent_labels(unparen(&args[0]));
                Ok(Planned::Vector(node(
                    PromOp::Absent { grid: g, labels },
                    vec![v],
                )))
            }
            Builder::Classic(kind) => {
                let at = |i: usize| self.pos(c.arg_pos.get(i).copied().unwrap_or(c.pos));
                let (kind, vi, sargs, q_pos) = match kind {
                    ClassicFn::Quantile => (HistKind::Quantile, 1, vec![&args[0]], at(0)),
                    ClassicFn::Fraction => (HistKind::Fraction, 2, vec![&args[0], &args[1]], at(0)),
                    ClassicFn::Quantiles => (
                        HistKind::Quantiles(self.string_arg(&args[1])?),
                        0,
                        args[2..].iter().collect(),
                        at(2),
                    ),
                };
                let mut inputs = vec![self.vector(&args[vi], g)?];
                let mut hargs = Vec::new();
                for a in sargs {
                    let p = self.plan(a, g)?;
                    hargs.push(self.scalar_arg(p, &mut inputs)?);
                }
                Ok(Planned::Vector(node(
                    PromOp::Histogram {
                        grid: g,
                        kind,
                        args: hargs,
                        q_pos,
                        v_pos: at(vi),
                    },
                    inputs,
                )))
            }
            Builder::Native(f) => {
                let v = self.vector(args.last().unwrap_or(&args[0]), g)?;
                Ok(Planned::Vector(self.map(
                    g,
                    MapFn::Native(f),
                    vec![v],
                    vec![],
                )))
            }
        }
    }

    /// A range function over argument `at.0` with scalar parameters `at.1`.
    fn call_range(
        &self,
        c: &Call,
        g: Grid,
        func: RangeFn,
        at: (usize, &[usize]),
        counter_check: bool,
    ) -> Result<Planned> {
        self.call_range_plan(c, g, func, at, counter_check)
            .map(Planned::Vector)
    }

    fn call_range_plan(
        &self,
        c: &Call,
        g: Grid,
        func: RangeFn,
        (matrix, params): (usize, &[usize]),
        counter_check: bool,
    ) -> Result<LogicalPlan> {
        let args = &c.args;
        // Scalar parameters may be any expression, evaluated at every step (Prometheus
        // reads `vectorVals[i][0].F` per step); constants stay constants.
        let mut p = [0.0, 0.0];
        let mut per_step: Vec<ScalarArg> = Vec::new();
        let mut extra: Vec<LogicalPlan> = Vec::new();
        let planned: Vec<Planned> = params
            .iter()
            .map(|&i| self.plan(&args[i], g))
            .collect::<Result<_>>()?;
        if planned.iter().all(|x| matches!(x, Planned::Const(_))) {
            for (i, x) in planned.iter().enumerate() {
                if let Planned::Const(v) = x {
                    p[i] = *v;
                }
            }
        } else {
            // Input 0 is the range; the parameters' plans follow it.
            let mut inputs = vec![LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: crate::model::vector_dfschema(),
                },
            )];
            for x in planned {
                per_step.push(self.scalar_arg(x, &mut inputs)?);
            }
            extra = inputs.split_off(1);
        }
        let pos = self.pos(c.arg_pos.first().copied().unwrap_or(c.pos));
        let plan = self.matrix_arg(&args[matrix], g, func, p, (counter_check, pos))?;
        Ok(with_params(plan, per_step, extra))
    }
}

/// Prometheus refuses an `anchored` or `smoothed` range argument to a function that does
/// not take it (its `AnchoredSafeFunctions` / `SmoothedSafeFunctions`), as an execution
/// error raised before any data is read.
fn check_extended_range(f: &FunctionImpl, args: &[Expr]) -> Result<()> {
    for a in args {
        let Expr::MatrixSelector(ms) = unparen(a) else {
            continue;
        };
        let (what, ok, smoothed) = if ms.selector.anchored {
            ("anchored", f.anchored, false)
        } else if ms.selector.smoothed {
            ("smoothed", f.smoothed, true)
        } else {
            continue;
        };
        if !ok {
            return Err(exec_err(format!(
                "{what} modifier can only be used with: {} - not with {}",
                table::accepting(smoothed).join(", "),
                f.name
            )));
        }
    }
    Ok(())
}
