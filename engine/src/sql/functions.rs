//! PromQL-flavoured SQL functions: `prom_rate(value, timestamp)`, an aggregate (and so
//! also a window function) giving the per-second increase of a counter over the rows it
//! sees, with counter resets handled as PromQL's `rate` does (no extrapolation: the rows
//! are the window); and `time_bucket(interval, timestamp)`, TimescaleDB's name for
//! DataFusion's `date_bin`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ScalarUDF, Signature, TypeSignature, Volatility,
};

/// `time_bucket(interval, timestamp [, origin])`: `date_bin` under TimescaleDB's name.
pub fn time_bucket() -> ScalarUDF {
    datafusion::functions::datetime::date_bin()
        .as_ref()
        .clone()
        .with_aliases(["time_bucket"])
}

/// `prom_rate(value, timestamp)`.
pub fn prom_rate() -> AggregateUDF {
    AggregateUDF::from(PromRate::new())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PromRate {
    signature: Signature,
}

impl PromRate {
    fn new() -> Self {
        let ts = |tz: Option<Arc<str>>| DataType::Timestamp(TimeUnit::Millisecond, tz);
        PromRate {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Float64, ts(Some("UTC".into()))]),
                    TypeSignature::Exact(vec![DataType::Float64, ts(None)]),
                    TypeSignature::Exact(vec![DataType::Float64, DataType::Int64]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for PromRate {
    fn name(&self) -> &str {
        "prom_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RateAcc::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, t: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(t, true))),
                true,
            ))
        };
        Ok(vec![
            list("ts", DataType::Int64),
            list("values", DataType::Float64),
        ])
    }
}

/// The samples seen: `(timestamp ms, value)`.
#[derive(Debug, Default)]
struct RateAcc {
    points: Vec<(i64, f64)>,
}

fn as_millis(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Int64 => a.clone(),
        _ => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
    })
}

impl RateAcc {
    fn add(&mut self, ts: &Int64Array, vals: &Float64Array) {
        for i in 0..ts.len().min(vals.len()) {
            if ts.is_valid(i) && vals.is_valid(i) {
                self.points.push((ts.value(i), vals.value(i)));
            }
        }
    }
}

impl Accumulator for RateAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let vals = values[0].as_primitive::<Float64Type>();
        let ts = as_millis(&values[1])?;
        self.add(ts.as_primitive::<Int64Type>(), vals);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut p = self.points.clone();
        p.sort_by_key(|x| x.0);
        if p.len() < 2 {
            return Ok(ScalarValue::Float64(None));
        }
        let mut increase = 0.0;
        for w in p.windows(2) {
            let (prev, cur) = (w[0].1, w[1].1);
            increase += if cur < prev { cur } else { cur - prev };
        }
        let secs = (p[p.len() - 1].0 - p[0].0) as f64 / 1000.0;
        Ok(ScalarValue::Float64((secs > 0.0).then(|| increase / secs)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.points.capacity() * 16
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ts: Vec<ScalarValue> = self
            .points
            .iter()
            .map(|p| ScalarValue::Int64(Some(p.0)))
            .collect();
        let vs: Vec<ScalarValue> = self
            .points
            .iter()
            .map(|p| ScalarValue::Float64(Some(p.1)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&ts, &DataType::Int64)),
            ScalarValue::List(ScalarValue::new_list_nullable(&vs, &DataType::Float64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let ts: &ListArray = states[0].as_list::<i32>();
        let vs: &ListArray = states[1].as_list::<i32>();
        for i in 0..ts.len() {
            if ts.is_null(i) || vs.is_null(i) {
                continue;
            }
            let t = ts.value(i);
            let v = vs.value(i);
            self.add(
                t.as_primitive::<Int64Type>(),
                v.as_primitive::<Float64Type>(),
            );
        }
        Ok(())
    }
}
