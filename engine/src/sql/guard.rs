//! Bounds on the SQL functions that build more than they are given: `repeat`, `lpad`,
//! `rpad`, `range`, `generate_series` and `array_repeat` turn a few bytes of arguments
//! into an array of any size (`SELECT range(1000000000)` is 8 GB in one value), built
//! before any operator or result cap sees it. [`Bounded`] wraps such a function: before
//! each call it works out from the arguments how many bytes the result may take, and fails
//! with DataFusion's `ResourcesExhausted` (an [`EngineError::OutOfMemory`] to the caller)
//! when that is more than the query memory pool has left.
//!
//! It must not change what the functions answer: every other method delegates.
//!
//! [`EngineError::OutOfMemory`]: crate::EngineError::OutOfMemory

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// How a function's result size follows from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// `repeat(s, n)`: `len(s) × n` bytes.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: `n` characters of up to 4 bytes.
    Pad,
    /// `range([start,] stop [, step])`, `generate_series`: 8 bytes per element.
    Range,
    /// `array_repeat(e, n)`: `n` copies of `e`.
    ArrayRepeat,
}

/// The functions wrapped, by name.
const BOUNDED: [(&str, Kind); 6] = [
    ("repeat", Kind::Repeat),
    ("lpad", Kind::Pad),
    ("rpad", Kind::Pad),
    ("range", Kind::Range),
    ("generate_series", Kind::Range),
    ("array_repeat", Kind::ArrayRepeat),
];

/// Replaces the expanding functions of `ctx` with [`Bounded`] ones over `pool`.
pub(crate) fn bound_expanding_functions(ctx: &SessionContext, pool: &Arc<dyn MemoryPool>) {
    for (name, kind) in BOUNDED {
        if let Ok(inner) = ctx.udf(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded {
                inner,
                kind,
                pool: pool.clone(),
            }));
        }
    }
}

/// A scalar function refused when its result would not fit in the memory pool.
#[derive(Debug)]
pub(crate) struct Bounded {
    inner: Arc<ScalarUDF>,
    kind: Kind,
    pool: Arc<dyn MemoryPool>,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.kind == other.kind
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.kind.hash(state);
    }
}

impl Bounded {
    /// Fails when the call's result may take more than the pool has left.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let need = estimate(self.kind, &args.args, args.number_rows);
        let left = match self.pool.memory_limit() {
            MemoryLimit::Finite(n) => n.saturating_sub(self.pool.reserved()),
            MemoryLimit::Infinite | MemoryLimit::Unknown => return Ok(()),
        };
        if need > left as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build {need} bytes, more than the {left} bytes left in the query memory pool",
                self.inner.name()
            )));
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }
}

/// Upper bound of the bytes a call of `kind` over `args` builds.
fn estimate(kind: Kind, args: &[ColumnarValue], rows: usize) -> u128 {
    // Scalar arguments only: one result value.
    let rows = if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        1
    } else {
        rows
    };
    let arg = |i: usize| args.get(i);
    (0..rows)
        .map(|row| match kind {
            Kind::Repeat => str_len(arg(0), row) as u128 * count(arg(1), row) as u128,
            Kind::Pad => 4 * count(arg(1), row) as u128,
            Kind::Range => 8 * range_len(args, row),
            Kind::ArrayRepeat => {
                let elem = value(arg(0), row).map_or(8, |v| v.size()) as u128;
                elem * count(arg(1), row) as u128
            }
        })
        .sum()
}

/// Argument `v` at `row` as a scalar (for small arguments: counts, bounds, elements).
fn value(v: Option<&ColumnarValue>, row: usize) -> Option<ScalarValue> {
    match v? {
        ColumnarValue::Scalar(s) => Some(s.clone()),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, row).ok(),
    }
}

/// A count argument at `row` (negative and null count as 0).
fn count(v: Option<&ColumnarValue>, row: usize) -> u64 {
    let n = match v {
        Some(ColumnarValue::Array(a)) => match a.as_primitive_opt::<Int64Type>() {
            Some(ints) if ints.is_valid(row) => Some(ints.value(row)),
            Some(_) => None,
            None => as_i64(ScalarValue::try_from_array(a, row).ok()),
        },
        other => as_i64(value(other, row)),
    };
    n.map_or(0, |n| n.max(0) as u64)
}

fn as_i64(v: Option<ScalarValue>) -> Option<i64> {
    match v?.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(n) => n,
        _ => None,
    }
}

/// Bytes of string argument `v` at `row` (0 for null or another type).
fn str_len(v: Option<&ColumnarValue>, row: usize) -> usize {
    match v {
        Some(ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        )) => s.len(),
        Some(ColumnarValue::Array(a)) if a.is_valid(row) => {
            if let Some(s) = a.as_string_opt::<i32>() {
                s.value(row).len()
            } else if let Some(s) = a.as_string_opt::<i64>() {
                s.value(row).len()
            } else if let Some(s) = a.as_string_view_opt() {
                s.value(row).len()
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Elements of `range` / `generate_series` at `row`: integers, or dates and timestamps
/// with an interval step (a month counted as 28 days, so the bound is an upper one).
fn range_len(args: &[ColumnarValue], row: usize) -> u128 {
    let vals: Vec<Option<ScalarValue>> = args.iter().map(|a| value(Some(a), row)).collect();
    let (start, stop, step) = match vals.as_slice() {
        [stop] => (Some(ScalarValue::Int64(Some(0))), stop.clone(), None),
        [start, stop] => (start.clone(), stop.clone(), None),
        [start, stop, step] => (start.clone(), stop.clone(), step.clone()),
        _ => return 0,
    };
    let (Some(start), Some(stop)) = (start, stop) else {
        return 0;
    };
    let (Some((lo, unit_ns)), Some((hi, _))) = (position(&start), position(&stop)) else {
        return 0;
    };
    let span = (i128::from(hi) - i128::from(lo)).unsigned_abs();
    let step_units: u128 = match step {
        None => 1,
        Some(ScalarValue::IntervalMonthDayNano(Some(i))) => {
            let ns = i128::from(i.months).abs() * 28 * 86_400_000_000_000
                + i128::from(i.days).abs() * 86_400_000_000_000
                + i128::from(i.nanoseconds).abs();
            (ns as u128 / unit_ns).max(1)
        }
        Some(ScalarValue::IntervalDayTime(Some(i))) => {
            let ns = i128::from(i.days).abs() * 86_400_000_000_000
                + i128::from(i.milliseconds).abs() * 1_000_000;
            (ns as u128 / unit_ns).max(1)
        }
        Some(ScalarValue::IntervalYearMonth(Some(m))) => {
            ((i128::from(m).abs() * 28 * 86_400_000_000_000) as u128 / unit_ns).max(1)
        }
        Some(other) => as_i64(Some(other)).map_or(1, |s| s.unsigned_abs().max(1) as u128),
    };
    span / step_units + 1
}

/// A range bound as a number of units, with the unit's length in nanoseconds (1 for plain
/// integers).
fn position(v: &ScalarValue) -> Option<(i64, u128)> {
    match v {
        ScalarValue::Date32(Some(d)) => Some((i64::from(*d), 86_400_000_000_000)),
        ScalarValue::Date64(Some(ms)) => Some((*ms, 1_000_000)),
        ScalarValue::TimestampSecond(Some(t), _) => Some((*t, 1_000_000_000)),
        ScalarValue::TimestampMillisecond(Some(t), _) => Some((*t, 1_000_000)),
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some((*t, 1_000)),
        ScalarValue::TimestampNanosecond(Some(t), _) => Some((*t, 1)),
        other => as_i64(Some(other.clone())).map(|n| (n, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(v: &[ScalarValue]) -> Vec<ColumnarValue> {
        v.iter().cloned().map(ColumnarValue::Scalar).collect()
    }

    #[test]
    fn estimates_follow_the_arguments() {
        let int = |n| ScalarValue::Int64(Some(n));
        let s = |x: &str| ScalarValue::Utf8(Some(x.into()));
        assert_eq!(
            estimate(Kind::Repeat, &scalars(&[s("ab"), int(10)]), 100),
            20
        );
        assert_eq!(estimate(Kind::Repeat, &scalars(&[s("ab"), int(-3)]), 1), 0);
        assert_eq!(estimate(Kind::Pad, &scalars(&[s("x"), int(5)]), 1), 20);
        assert_eq!(
            estimate(Kind::Range, &scalars(&[int(1_000_000_000)]), 1),
            8_000_000_008
        );
        assert_eq!(
            estimate(Kind::Range, &scalars(&[int(0), int(100), int(10)]), 1),
            88
        );
        let day = ScalarValue::IntervalMonthDayNano(Some(
            datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 1, 0),
        ));
        let dates = [
            ScalarValue::Date32(Some(0)),
            ScalarValue::Date32(Some(365)),
            day,
        ];
        assert_eq!(estimate(Kind::Range, &scalars(&dates), 1), 8 * 366);
        let ns = ScalarValue::IntervalMonthDayNano(Some(
            datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, 0, 1),
        ));
        let ts = [
            ScalarValue::TimestampNanosecond(Some(0), None),
            ScalarValue::TimestampNanosecond(Some(1_000_000_000), None),
            ns,
        ];
        assert_eq!(estimate(Kind::Range, &scalars(&ts), 1), 8 * 1_000_000_001);
        let counts: Arc<dyn Array> =
            Arc::new(datafusion::arrow::array::Int64Array::from(vec![1, 2, 3]));
        let args = vec![
            ColumnarValue::Scalar(s("abc")),
            ColumnarValue::Array(counts),
        ];
        assert_eq!(estimate(Kind::Repeat, &args, 3), 18);
    }
}
