//! Writes a downsampled block: `series.parquet` as a raw block's, and `samples.parquet`
//! with one row per series and window:
//!
//! | column | type | |
//! | --- | --- | --- |
//! | `series_id` | uint32 | row number in `series.parquet` |
//! | `timestamp` | timestamp(ms, UTC) | the window's end (it covers `(end − resolution, end]`) |
//! | `value` | float64 | the window's last value |
//! | `count` | uint32 | samples in the window |
//! | `sum`, `min`, `max` | float64 | of the window's values (`sum` compensated) |
//! | `first_timestamp`, `first_value` | timestamp, float64 | the window's first sample |
//! | `last_timestamp` | timestamp | the window's last sample's time |
//! | `counter_correction` | float64 | sum of the values before each counter reset in the window |
//!
//! Encodings as raw blocks': delta-packed ids and times, byte-stream-split floats, ZSTD.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, TimestampMillisecondBuilder, UInt32Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use super::Aggregate;
use crate::block::EncodedBlock;
use crate::block::meta::{BlockMeta, BlockStats, Compaction};
use crate::block::writer::encode_series;
use crate::error::Result;
use crate::labels::Labels;

/// Rows buffered before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;

/// The Arrow schema of a downsampled block's `samples.parquet`.
pub fn aggregates_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("timestamp", ts(), false),
        Field::new("value", DataType::Float64, false),
        Field::new("count", DataType::UInt32, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
        Field::new("first_timestamp", ts(), false),
        Field::new("first_value", DataType::Float64, false),
        Field::new("last_timestamp", ts(), false),
        Field::new("counter_correction", DataType::Float64, false),
    ]))
}

fn props() -> Result<WriterProperties> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_statistics_enabled(EnabledStatistics::Page);
    for c in [
        "series_id",
        "timestamp",
        "count",
        "first_timestamp",
        "last_timestamp",
    ] {
        b = b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    for c in [
        "value",
        "sum",
        "min",
        "max",
        "first_value",
        "counter_correction",
    ] {
        b = b.set_column_encoding(ColumnPath::from(c), Encoding::BYTE_STREAM_SPLIT);
    }
    Ok(b.build())
}

/// Streams series (in label order) with their aggregates into a downsampled block.
pub struct AggregateWriter {
    w: ArrowWriter<Vec<u8>>,
    ids: UInt32Builder,
    end: TimestampMillisecondBuilder,
    last_v: Float64Builder,
    count: UInt32Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    first_t: TimestampMillisecondBuilder,
    first_v: Float64Builder,
    last_t: TimestampMillisecondBuilder,
    corr: Float64Builder,
    pending: usize,
    series: Vec<(Labels, u64, u32)>,
    rows: u64,
}

fn ts_builder() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC")
}

impl AggregateWriter {
    /// An empty writer.
    pub fn new() -> Result<Self> {
        let f = || Float64Builder::with_capacity(BATCH_ROWS);
        Ok(AggregateWriter {
            w: ArrowWriter::try_new(Vec::new(), aggregates_schema(), Some(props()?))?,
            ids: UInt32Builder::with_capacity(BATCH_ROWS),
            end: ts_builder(),
            last_v: f(),
            count: UInt32Builder::with_capacity(BATCH_ROWS),
            sum: f(),
            min: f(),
            max: f(),
            first_t: ts_builder(),
            first_v: f(),
            last_t: ts_builder(),
            corr: f(),
            pending: 0,
            series: Vec::new(),
            rows: 0,
        })
    }

    /// Adds the next series (label order) with its aggregates (window order); a series
    /// without any is skipped.
    pub fn add(&mut self, labels: Labels, aggs: &[Aggregate]) -> Result<()> {
        if aggs.is_empty() {
            return Ok(());
        }
        let id = self.series.len() as u32;
        self.series.push((labels, self.rows, aggs.len() as u32));
        for a in aggs {
            self.ids.append_value(id);
            self.end.append_value(a.end);
            self.last_v.append_value(a.last_v);
            self.count.append_value(a.count);
            self.sum.append_value(a.sum);
            self.min.append_value(a.min);
            self.max.append_value(a.max);
            self.first_t.append_value(a.first_t);
            self.first_v.append_value(a.first_v);
            self.last_t.append_value(a.last_t);
            self.corr.append_value(a.counter_correction);
        }
        self.pending += aggs.len();
        self.rows += aggs.len() as u64;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.last_v.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.first_t.finish()),
            Arc::new(self.first_v.finish()),
            Arc::new(self.last_t.finish()),
            Arc::new(self.corr.finish()),
        ];
        self.w
            .write(&RecordBatch::try_new(aggregates_schema(), cols)?)?;
        self.pending = 0;
        Ok(())
    }

    /// Finishes the block of resolution `res` covering the raw samples of `[min_time,
    /// max_time)`, made from the raw blocks `sources`. `None` when no series was added.
    pub fn finish(
        mut self,
        res: i64,
        (min_time, max_time): (i64, i64),
        sources: Vec<String>,
    ) -> Result<Option<EncodedBlock>> {
        self.flush()?;
        if self.series.is_empty() {
            return Ok(None);
        }
        let samples = self.w.into_inner()?;
        let series = encode_series(&self.series)?;
        let meta = BlockMeta {
            ulid: ulid::Ulid::new().to_string(),
            min_time,
            max_time,
            stats: BlockStats {
                num_samples: self.rows,
                num_series: self.series.len() as u64,
                num_histograms: 0,
            },
            compaction: Compaction { level: 1, sources },
            version: 1,
            resolution: res,
            thanos: None,
        };
        Ok(Some(EncodedBlock {
            meta,
            series: Bytes::from(series),
            samples: Bytes::from(samples),
            histograms: None,
        }))
    }
}
