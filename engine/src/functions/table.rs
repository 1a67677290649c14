//! The function table: every PromQL function the engine runs, with how the planner builds
//! its call ([`Builder`]: a range kernel and where its matrix and parameters are, a
//! per-sample kernel, or one of the special builders) and its flags (which range modifiers
//! it accepts). Signatures — argument and return types, arity — are the grammar's table
//! (`strata_grammar::FUNCTIONS`), which type-checks every call before it is planned; the
//! grammar knows no kernels, so the two tables meet by name, and a test holds them to the
//! same names.

use super::date::DateFn;
use super::instant::MathFn;
use super::range::RangeFn;

/// How a call is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    /// A range function: the kernel, the argument holding the range, and the arguments
    /// that are its scalar parameters (constant or evaluated per step).
    Range {
        /// The kernel.
        func: RangeFn,
        /// Index of the range-vector argument.
        matrix: usize,
        /// Indexes of the scalar parameters, in the kernel's order.
        params: &'static [usize],
        /// Warn when the series does not look like a counter (`rate`, `increase`).
        counter_check: bool,
    },
    /// `absent_over_time(m)`: 1 where the range is empty.
    AbsentOverTime,
    /// A per-sample math function of one vector.
    Math(MathFn),
    /// A date field of a vector of timestamps (default `vector(time())`).
    Date(DateFn),
    /// A constant of the evaluation.
    Const(ConstFn),
    /// `time()`.
    Time,
    /// `min_of(a, b)` (`true`) / `max_of(a, b)`.
    Extremum(bool),
    /// `vector(s)`.
    Vector,
    /// `scalar(v)`.
    Scalar,
    /// `timestamp(v)`.
    Timestamp,
    /// `clamp`, `clamp_min`, `clamp_max`, `round`: a vector and scalar arguments.
    Clamp(ClampFn),
    /// `label_replace`.
    LabelReplace,
    /// `label_join`.
    LabelJoin,
    /// `sort*`: rows unchanged (instant results are ordered when shaped).
    Sort,
    /// `info(v, [selector])`.
    Info,
    /// `absent(v)`.
    Absent,
    /// `histogram_quantile`, `histogram_quantiles`, `histogram_fraction` over classic buckets.
    Classic(ClassicFn),
    /// Functions of native histograms: nothing for float samples.
    Native(crate::plan::NativeFn),
}

/// Constants of the evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstFn {
    /// π.
    Pi,
    /// `start()`: the query's start, in seconds.
    Start,
    /// `end()`.
    End,
    /// `step()`.
    Step,
    /// `range()`: end − start.
    Range,
}

/// The vector-and-scalars functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClampFn {
    /// `clamp(v, min, max)`.
    Clamp,
    /// `clamp_min(v, min)`.
    Min,
    /// `clamp_max(v, max)`.
    Max,
    /// `round(v, [to_nearest])`.
    Round,
}

/// The classic-histogram functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassicFn {
    /// `histogram_quantile(φ, v)`.
    Quantile,
    /// `histogram_quantiles(v, label, φ…)`.
    Quantiles,
    /// `histogram_fraction(lower, upper, v)`.
    Fraction,
}

/// One function of the table.
#[derive(Debug)]
pub struct FunctionImpl {
    /// The name, as in the grammar's table.
    pub name: &'static str,
    /// How a call is planned.
    pub builder: Builder,
    /// Accepts an `anchored` range (Prometheus `AnchoredSafeFunctions`).
    pub anchored: bool,
    /// Accepts a `smoothed` range (Prometheus `SmoothedSafeFunctions`).
    pub smoothed: bool,
}

const fn f(name: &'static str, builder: Builder) -> FunctionImpl {
    FunctionImpl {
        name,
        builder,
        anchored: false,
        smoothed: false,
    }
}

const fn range(name: &'static str, func: RangeFn) -> FunctionImpl {
    f(
        name,
        Builder::Range {
            func,
            matrix: 0,
            params: &[],
            counter_check: false,
        },
    )
}

/// A range function that also takes `anchored` (and, with `smoothed`, `smoothed`) ranges.
const fn extended(
    name: &'static str,
    func: RangeFn,
    counter_check: bool,
    smoothed: bool,
) -> FunctionImpl {
    FunctionImpl {
        name,
        builder: Builder::Range {
            func,
            matrix: 0,
            params: &[],
            counter_check,
        },
        anchored: true,
        smoothed,
    }
}

const fn math(name: &'static str, m: MathFn) -> FunctionImpl {
    f(name, Builder::Math(m))
}

const fn date(name: &'static str, d: DateFn) -> FunctionImpl {
    f(name, Builder::Date(d))
}

/// Every function, sorted by name.
pub static TABLE: &[FunctionImpl] = &[
    math("abs", MathFn::Abs),
    f("absent", Builder::Absent),
    f("absent_over_time", Builder::AbsentOverTime),
    math("acos", MathFn::Acos),
    math("acosh", MathFn::Acosh),
    math("asin", MathFn::Asin),
    math("asinh", MathFn::Asinh),
    math("atan", MathFn::Atan),
    math("atanh", MathFn::Atanh),
    range("avg_over_time", RangeFn::AvgOverTime),
    math("ceil", MathFn::Ceil),
    extended("changes", RangeFn::Changes, false, false),
    f("clamp", Builder::Clamp(ClampFn::Clamp)),
    f("clamp_max", Builder::Clamp(ClampFn::Max)),
    f("clamp_min", Builder::Clamp(ClampFn::Min)),
    math("cos", MathFn::Cos),
    math("cosh", MathFn::Cosh),
    range("count_over_time", RangeFn::CountOverTime),
    date("day_of_month", DateFn::DayOfMonth),
    date("day_of_week", DateFn::DayOfWeek),
    date("day_of_year", DateFn::DayOfYear),
    date("days_in_month", DateFn::DaysInMonth),
    math("deg", MathFn::Deg),
    extended("delta", RangeFn::Delta, false, true),
    range("deriv", RangeFn::Deriv),
    f(
        "double_exponential_smoothing",
        Builder::Range {
            func: RangeFn::DoubleExponentialSmoothing,
            matrix: 0,
            params: &[1, 2],
            counter_check: false,
        },
    ),
    f("end", Builder::Const(ConstFn::End)),
    math("exp", MathFn::Exp),
    range("first_over_time", RangeFn::FirstOverTime),
    math("floor", MathFn::Floor),
    f("histogram_avg", Builder::Native(crate::plan::NativeFn::Avg)),
    f(
        "histogram_count",
        Builder::Native(crate::plan::NativeFn::Count),
    ),
    f("histogram_fraction", Builder::Classic(ClassicFn::Fraction)),
    f("histogram_quantile", Builder::Classic(ClassicFn::Quantile)),
    f(
        "histogram_quantiles",
        Builder::Classic(ClassicFn::Quantiles),
    ),
    f(
        "histogram_stddev",
        Builder::Native(crate::plan::NativeFn::Stddev),
    ),
    f(
        "histogram_stdvar",
        Builder::Native(crate::plan::NativeFn::Stdvar),
    ),
    f("histogram_sum", Builder::Native(crate::plan::NativeFn::Sum)),
    date("hour", DateFn::Hour),
    range("idelta", RangeFn::Idelta),
    extended("increase", RangeFn::Increase, true, true),
    f("info", Builder::Info),
    range("irate", RangeFn::Irate),
    f("label_join", Builder::LabelJoin),
    f("label_replace", Builder::LabelReplace),
    range("last_over_time", RangeFn::LastOverTime),
    math("ln", MathFn::Ln),
    math("log10", MathFn::Log10),
    math("log2", MathFn::Log2),
    range("mad_over_time", RangeFn::MadOverTime),
    f("max_of", Builder::Extremum(false)),
    range("max_over_time", RangeFn::MaxOverTime),
    f("min_of", Builder::Extremum(true)),
    range("min_over_time", RangeFn::MinOverTime),
    date("minute", DateFn::Minute),
    date("month", DateFn::Month),
    f("pi", Builder::Const(ConstFn::Pi)),
    f(
        "predict_linear",
        Builder::Range {
            func: RangeFn::PredictLinear,
            matrix: 0,
            params: &[1],
            counter_check: false,
        },
    ),
    range("present_over_time", RangeFn::PresentOverTime),
    f(
        "quantile_over_time",
        Builder::Range {
            func: RangeFn::QuantileOverTime,
            matrix: 1,
            params: &[0],
            counter_check: false,
        },
    ),
    math("rad", MathFn::Rad),
    f("range", Builder::Const(ConstFn::Range)),
    extended("rate", RangeFn::Rate, true, true),
    extended("resets", RangeFn::Resets, false, false),
    f("round", Builder::Clamp(ClampFn::Round)),
    f("scalar", Builder::Scalar),
    math("sgn", MathFn::Sgn),
    math("sin", MathFn::Sin),
    math("sinh", MathFn::Sinh),
    f("sort", Builder::Sort),
    f("sort_by_label", Builder::Sort),
    f("sort_by_label_desc", Builder::Sort),
    f("sort_desc", Builder::Sort),
    math("sqrt", MathFn::Sqrt),
    f("start", Builder::Const(ConstFn::Start)),
    range("stddev_over_time", RangeFn::StddevOverTime),
    range("stdvar_over_time", RangeFn::StdvarOverTime),
    f("step", Builder::Const(ConstFn::Step)),
    range("sum_over_time", RangeFn::SumOverTime),
    math("tan", MathFn::Tan),
    math("tanh", MathFn::Tanh),
    f("time", Builder::Time),
    f("timestamp", Builder::Timestamp),
    range("ts_of_first_over_time", RangeFn::TsOfFirstOverTime),
    range("ts_of_last_over_time", RangeFn::TsOfLastOverTime),
    range("ts_of_max_over_time", RangeFn::TsOfMaxOverTime),
    range("ts_of_min_over_time", RangeFn::TsOfMinOverTime),
    f("vector", Builder::Vector),
    date("year", DateFn::Year),
];

/// The function called `name`.
pub fn lookup(name: &str) -> Option<&'static FunctionImpl> {
    TABLE
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &TABLE[i])
}

/// The names of the functions that accept the `anchored` (or, with `smoothed`, the
/// `smoothed`) modifier, in name order.
pub fn accepting(smoothed: bool) -> Vec<&'static str> {
    TABLE
        .iter()
        .filter(|f| if smoothed { f.smoothed } else { f.anchored })
        .map(|f| f.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grammar's signatures and this table name the same functions (so every call the
    /// type checker accepts has a builder), sorted, once each.
    #[test]
    fn every_grammar_function_has_a_builder_and_no_other() {
        assert!(TABLE.windows(2).all(|w| w[0].name < w[1].name), "sorted");
        let grammar: Vec<&str> = strata_grammar::FUNCTIONS.iter().map(|f| f.name).collect();
        let ours: Vec<&str> = TABLE.iter().map(|f| f.name).collect();
        let missing: Vec<_> = grammar.iter().filter(|n| lookup(n).is_none()).collect();
        let extra: Vec<_> = ours
            .iter()
            .filter(|n| strata_grammar::get_function(n).is_none())
            .collect();
        assert!(missing.is_empty(), "no builder for {missing:?}");
        assert!(extra.is_empty(), "not in the grammar: {extra:?}");
        assert_eq!(
            accepting(false),
            ["changes", "delta", "increase", "rate", "resets"]
        );
        assert_eq!(accepting(true), ["delta", "increase", "rate"]);
        // A range parameter index points at a scalar argument, the matrix at a range.
        for t in TABLE {
            if let Builder::Range { matrix, params, .. } = t.builder {
                let sig = strata_grammar::get_function(t.name).map(|s| s.arg_types);
                let Some(sig) = sig else { continue };
                assert_eq!(sig[matrix], strata_grammar::ValueType::Matrix, "{}", t.name);
                for &p in params {
                    assert_eq!(sig[p], strata_grammar::ValueType::Scalar, "{}", t.name);
                }
            }
        }
    }
}
