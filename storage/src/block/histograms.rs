//! `histograms.parquet`: the native histogram samples of a block, present only when the
//! block has any. One row per sample, sorted by series then time, in plain columns any
//! Parquet tool reads (DuckDB, pandas, Spark):
//!
//! ```text
//! series_id        uint32          block-local series id (row of series.parquet)
//! timestamp        timestamp(ms, UTC)
//! schema           int32           −4..8 exponential, −53 custom buckets (NHCB)
//! counter_reset_hint int8          0 unknown, 1 reset, 2 not reset, 3 gauge
//! count, sum       float64
//! zero_threshold, zero_count float64
//! positive_index   list<int32>     bucket indexes (exponential: bucket i is (2^((i-1)/2^schema), 2^(i/2^schema)];
//! positive_count   list<float64>   NHCB: bucket i is (custom_values[i-1], custom_values[i]])
//! negative_index   list<int32>     mirrored buckets below zero
//! negative_count   list<float64>
//! custom_values    list<float64>   NHCB upper bounds (without +Inf); empty otherwise
//! ```
//!
//! Encodings: `DELTA_BINARY_PACKED` for the integers, `BYTE_STREAM_SPLIT` for the scalar
//! floats, PLAIN lists, ZSTD pages.
//!
//! The file is read whole and filtered by series and time (histogram samples are few next
//! to float samples; a row-range index like `samples.parquet`'s is a later step).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, AsArray, Float64Builder, Int8Builder, Int32Builder, ListBuilder,
    TimestampMillisecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int8Type, Int32Type, Schema, SchemaRef, TimeUnit,
    TimestampMillisecondType, UInt32Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use roaring::RoaringBitmap;
use strata_vocab::histogram::{CounterResetHint, FloatHistogram};

use crate::block::meta::{Tombstone, is_deleted};
use crate::error::{Result, StorageError};

/// The file name.
pub const FILE: &str = "histograms.parquet";

/// A histogram sample of one series.
pub type HistSample = (i64, Arc<FloatHistogram>);

fn list(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        false,
    )
}

/// The Arrow schema of `histograms.parquet`.
pub fn histograms_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("schema", DataType::Int32, false),
        Field::new("counter_reset_hint", DataType::Int8, false),
        Field::new("count", DataType::Float64, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("zero_threshold", DataType::Float64, false),
        Field::new("zero_count", DataType::Float64, false),
        list("positive_index", DataType::Int32),
        list("positive_count", DataType::Float64),
        list("negative_index", DataType::Int32),
        list("negative_count", DataType::Float64),
        list("custom_values", DataType::Float64),
    ]))
}

/// Collects the histogram rows of a block being written.
#[derive(Default)]
pub(crate) struct HistogramRows {
    ids: UInt32Builder,
    ts: TimestampMillisecondBuilder,
    schema: Int32Builder,
    hint: Int8Builder,
    count: Float64Builder,
    sum: Float64Builder,
    zt: Float64Builder,
    zc: Float64Builder,
    pos_i: ListBuilder<Int32Builder>,
    pos_c: ListBuilder<Float64Builder>,
    neg_i: ListBuilder<Int32Builder>,
    neg_c: ListBuilder<Float64Builder>,
    cv: ListBuilder<Float64Builder>,
    pub(crate) rows: u64,
    /// Rows added since the last flush.
    pending: usize,
    batches: Vec<RecordBatch>,
}

impl HistogramRows {
    /// Adds the samples of block series `id`.
    pub(crate) fn add(&mut self, id: u32, samples: &[HistSample]) -> Result<()> {
        for (t, h) in samples {
            self.ids.append_value(id);
            self.ts.append_value(*t);
            self.schema.append_value(h.schema);
            self.hint.append_value(h.hint as i8);
            self.count.append_value(h.count);
            self.sum.append_value(h.sum);
            self.zt.append_value(h.zero_threshold);
            self.zc.append_value(h.zero_count);
            for (idx, cnt, b) in [
                (&mut self.pos_i, &mut self.pos_c, &h.positive),
                (&mut self.neg_i, &mut self.neg_c, &h.negative),
            ] {
                for &(i, c) in b.iter() {
                    idx.values().append_value(i);
                    cnt.values().append_value(c);
                }
                idx.append(true);
                cnt.append(true);
            }
            for v in h.custom_values.iter() {
                self.cv.values().append_value(*v);
            }
            self.cv.append(true);
            self.rows += 1;
            self.pending += 1;
        }
        if self.pending >= 8192 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.schema.finish()),
            Arc::new(self.hint.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.zt.finish()),
            Arc::new(self.zc.finish()),
            Arc::new(self.pos_i.finish()),
            Arc::new(self.pos_c.finish()),
            Arc::new(self.neg_i.finish()),
            Arc::new(self.neg_c.finish()),
            Arc::new(self.cv.finish()),
        ];
        self.batches
            .push(RecordBatch::try_new(histograms_schema(), cols)?);
        Ok(())
    }

    /// The encoded file, `None` when no row was added.
    pub(crate) fn finish(mut self) -> Result<Option<Bytes>> {
        self.flush()?;
        if self.rows == 0 {
            return Ok(None);
        }
        // As samples.parquet's: no dictionaries, delta-packed integers, byte-stream-split
        // scalar floats. The bucket lists stay PLAIN: a series' consecutive samples repeat
        // most of their bytes, which ZSTD finds (byte-stream-split made them 7% larger).
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_dictionary_enabled(false);
        for c in ["series_id", "timestamp", "schema", "counter_reset_hint"] {
            props = props.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
        }
        for c in ["count", "sum", "zero_threshold", "zero_count"] {
            props = props.set_column_encoding(ColumnPath::from(c), Encoding::BYTE_STREAM_SPLIT);
        }
        let props = props.build();
        let mut w = ArrowWriter::try_new(Vec::new(), histograms_schema(), Some(props))?;
        for b in &self.batches {
            w.write(b)?;
        }
        Ok(Some(Bytes::from(w.into_inner()?)))
    }
}

fn bad(reason: &str) -> StorageError {
    StorageError::Task(format!("{FILE}: {reason}"))
}

/// The samples of the series in `ids` within `[mint, maxt]`, tombstones applied, per
/// series id in ascending order.
pub(crate) fn read(
    bytes: Bytes,
    ids: &RoaringBitmap,
    mint: i64,
    maxt: i64,
    tombs: &[Tombstone],
    charge: &dyn crate::read::ReadCharge,
) -> Result<Vec<(u32, Vec<HistSample>)>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(8192)
        .build()?;
    let mut out: Vec<(u32, Vec<HistSample>)> = Vec::new();
    for batch in reader {
        let b = batch?;
        if b.num_columns() != 13 {
            return Err(bad("unexpected columns"));
        }
        let col = |i: usize| b.column(i);
        let ids_a = col(0)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("series_id"))?;
        let ts = col(1)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| bad("timestamp"))?;
        let schema = col(2)
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| bad("schema"))?;
        let hint = col(3)
            .as_primitive_opt::<Int8Type>()
            .ok_or_else(|| bad("counter_reset_hint"))?;
        let f = |i: usize, n: &str| {
            col(i)
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| bad(n))
        };
        let (count, sum, zt, zc) = (
            f(4, "count")?,
            f(5, "sum")?,
            f(6, "zero_threshold")?,
            f(7, "zero_count")?,
        );
        let l = |i: usize, n: &str| col(i).as_list_opt::<i32>().ok_or_else(|| bad(n));
        let (pi, pc, ni, nc, cv) = (
            l(8, "positive_index")?,
            l(9, "positive_count")?,
            l(10, "negative_index")?,
            l(11, "negative_count")?,
            l(12, "custom_values")?,
        );
        let mut kept = 0usize;
        let mut weight = 0usize;
        for r in 0..b.num_rows() {
            let (id, t) = (ids_a.value(r), ts.value(r));
            if t < mint || t > maxt || !ids.contains(id) || is_deleted(tombs, id, t) {
                continue;
            }
            let buckets = |ia: &datafusion::arrow::array::ListArray,
                           ca: &datafusion::arrow::array::ListArray|
             -> Result<Vec<(i32, f64)>> {
                let iv = ia.value(r);
                let cvals = ca.value(r);
                let iv = iv
                    .as_primitive_opt::<Int32Type>()
                    .ok_or_else(|| bad("bucket index"))?;
                let cvals = cvals
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| bad("bucket count"))?;
                if iv.len() != cvals.len() {
                    return Err(bad("bucket index and count lists differ in length"));
                }
                Ok(iv
                    .values()
                    .iter()
                    .copied()
                    .zip(cvals.values().iter().copied())
                    .collect())
            };
            let custom = cv.value(r);
            let custom = custom
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| bad("custom_values"))?;
            let h = FloatHistogram {
                hint: CounterResetHint::from_u8(hint.value(r) as u8),
                schema: schema.value(r),
                zero_threshold: zt.value(r),
                zero_count: zc.value(r),
                count: count.value(r),
                sum: sum.value(r),
                positive: buckets(pi, pc)?,
                negative: buckets(ni, nc)?,
                custom_values: Arc::from(custom.values().to_vec()),
            };
            kept += 1;
            weight += h.size_bytes().div_ceil(16);
            match out.last_mut() {
                Some(last) if last.0 == id => last.1.push((t, Arc::new(h))),
                _ => out.push((id, vec![(t, Arc::new(h))])),
            }
        }
        if kept > 0 && !charge.charge(weight) {
            return Err(StorageError::ReadRefused);
        }
    }
    Ok(out)
}
