//! Writes one block: `series.parquet` (one row per series, sorted by labels; the row number
//! is the block-local series id; `row_offset`/`num_samples` locate its samples),
//! `samples.parquet` (sorted by series then time), and `meta.json` last, so a block without
//! `meta.json` is an unfinished write.
//!
//! `samples.parquet` (block `version` 2) has six columns:
//!
//! | column | type | holds |
//! | --- | --- | --- |
//! | `series_id` | uint32 | the series' row in `series.parquet` |
//! | `timestamp` | timestamp(ms, UTC) | |
//! | `value_mantissa` | int64 | the value as a decimal (see [`super::decimal`]) |
//! | `value_shift` | int8 | the series' binary shift of mantissas |
//! | `value_exponent` | int8 | the series' decimal exponent, or -128 where the value is not a decimal |
//! | `value_float` | float64 | the value where it is not a decimal (NaN, ±Inf, `-0.0`, long fractions), else 0 |
//!
//! so the value is `value_float` where `value_exponent = -128`, else `m * 10^value_exponent`
//! (as `m / 10^-value_exponent` for a negative exponent) with the integer `m =
//! value_mantissa * 2^value_shift`, bit-exact. Where the value is a float the mantissa
//! repeats the previous row's, so deltas stay small. Every column is non-null: a nullable
//! column's writer cuts pages at its own batch size, not where this writer ends them.
//! Readers skip `value_float` when no row group's `value_exponent` reaches -128. Version 1
//! blocks (one float64 `value` column) are still read.
//!
//! Encodings: `DELTA_BINARY_PACKED` for ids, timestamps (regular scrapes give zero
//! delta-of-deltas), mantissas (consecutive values of a series differ by small integers),
//! shifts and exponents; `BYTE_STREAM_SPLIT` for the floats; ZSTD on every column. 1M-row row
//! groups. Pages end at series boundaries, and columns are paged differently:
//! - mantissas: a page per series (a series longer than 4096 rows is cut into equal pages),
//!   so delta packing never spans the jump from one series' values to the next one's (one
//!   such jump widened 128 deltas to 40 bits); series shorter than 64 rows share pages.
//!   A query for some series decompresses those series' mantissas and no others;
//! - the other columns, which cost a few bits per page of regular samples: a page holds
//!   whole series up to at least 16,384 rows, and a longer series is cut into equal pages.
//!   With pages of about 1024 rows their page headers and index entries were a fifth of
//!   the file.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int8Builder, Int64Array, Int64Builder, MapBuilder, StringBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;

use super::decimal;
use crate::block::meta::{BlockMeta, BlockStats, Compaction};
use crate::error::Result;
use crate::labels::{Labels, METRIC_NAME};

/// Rows after which a page of the columns other than mantissas ends at the next series
/// boundary; a longer series is cut into equal pages.
const ROW_PAGE_ROWS: usize = 16 * 1024;
/// Most rows of a series' mantissa page: longer series are cut into equal pages.
const MANTISSA_PAGE_ROWS: usize = 4096;
/// Series with fewer rows share mantissa pages, of about this many rows.
const OWN_PAGE_ROWS: usize = 64;
const SHARED_MANTISSA_ROWS: usize = 1024;
/// Rows the column writers take in one step: more than any write, so each write is one
/// page (see `samples_props`).
const WRITE_BATCH_ROWS: usize = 4 * ROW_PAGE_ROWS;
/// Rows after which a row group ends at the next series boundary.
const ROW_GROUP_ROWS: u64 = 1 << 20;

/// The `samples.parquet` layout this writer produces (`meta.json`'s `version`).
pub(crate) const SAMPLES_VERSION: u32 = 2;

/// Column indexes of `samples.parquet` (version 2).
pub(crate) mod col {
    pub(crate) const SERIES_ID: usize = 0;
    pub(crate) const TIMESTAMP: usize = 1;
    pub(crate) const MANTISSA: usize = 2;
    pub(crate) const SHIFT: usize = 3;
    pub(crate) const EXPONENT: usize = 4;
    pub(crate) const FLOAT: usize = 5;
}

/// The Arrow schema of `samples.parquet`.
pub fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("value_mantissa", DataType::Int64, false),
        Field::new("value_shift", DataType::Int8, false),
        Field::new("value_exponent", DataType::Int8, false),
        Field::new("value_float", DataType::Float64, false),
    ]))
}

/// The `labels` map column (label name → value, `__name__` excluded), as Arrow's
/// `MapBuilder` produces it.
pub(crate) fn labels_field() -> Field {
    Field::new_map(
        "labels",
        "entries",
        Field::new("keys", DataType::Utf8, false),
        Field::new("values", DataType::Utf8, true),
        false,
        false,
    )
}

/// The Arrow schema of `series.parquet`.
pub fn series_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("metric", DataType::Utf8, false),
        labels_field(),
        Field::new("labels_hash", DataType::UInt64, false),
        Field::new("row_offset", DataType::UInt64, false),
        Field::new("num_samples", DataType::UInt32, false),
    ]))
}

fn samples_props() -> Result<WriterProperties> {
    let delta = [
        "series_id",
        "timestamp",
        "value_mantissa",
        "value_shift",
        "value_exponent",
    ];
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_column_encoding(ColumnPath::from("value_float"), Encoding::BYTE_STREAM_SPLIT)
        // Every write is one page: the writer decides where pages end.
        .set_data_page_row_count_limit(1)
        .set_write_batch_size(WRITE_BATCH_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page);
    for c in delta {
        b = b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    // Value pages need no min/max: queries select rows by series and time.
    for c in [
        "value_mantissa",
        "value_shift",
        "value_exponent",
        "value_float",
    ] {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::Chunk);
    }
    Ok(b.build())
}

fn series_props() -> Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build())
}

/// Column builders of the rows not yet handed to a column writer.
struct Pending {
    ids: UInt32Builder,
    ts: TimestampMillisecondBuilder,
    shifts: Int8Builder,
    exps: Int8Builder,
    floats: Float64Builder,
    rows: usize,
    /// Mantissas of short series, which share pages.
    mantissas: Int64Builder,
    mantissa_rows: usize,
}

impl Pending {
    fn new() -> Self {
        Pending {
            ids: UInt32Builder::with_capacity(WRITE_BATCH_ROWS),
            ts: TimestampMillisecondBuilder::with_capacity(WRITE_BATCH_ROWS).with_timezone("UTC"),
            shifts: Int8Builder::with_capacity(WRITE_BATCH_ROWS),
            exps: Int8Builder::with_capacity(WRITE_BATCH_ROWS),
            floats: Float64Builder::with_capacity(WRITE_BATCH_ROWS),
            rows: 0,
            mantissas: Int64Builder::with_capacity(SHARED_MANTISSA_ROWS + OWN_PAGE_ROWS),
            mantissa_rows: 0,
        }
    }
}

/// `samples.parquet` being written: the file, and the column writers of the open row group.
struct SamplesFile {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    cols: Vec<ArrowColumnWriter>,
    row_groups: usize,
    /// Rows of the open row group.
    rows: u64,
}

impl SamplesFile {
    fn new() -> Result<Self> {
        let schema = samples_schema();
        let w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(samples_props()?))?;
        let (file, factory) = w.into_serialized_writer()?;
        let cols = factory.create_column_writers(0)?;
        Ok(SamplesFile {
            file,
            factory,
            schema,
            cols,
            row_groups: 0,
            rows: 0,
        })
    }

    /// Writes `array` to column `c` as one page.
    fn page(&mut self, c: usize, array: ArrayRef) -> Result<()> {
        for leaf in compute_leaves(self.schema.field(c), &array)? {
            self.cols[c].write(&leaf)?;
        }
        Ok(())
    }

    /// Ends the open row group (all columns must hold the same rows).
    fn close_row_group(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        self.row_groups += 1;
        let next = self.factory.create_column_writers(self.row_groups)?;
        let cols = std::mem::replace(&mut self.cols, next);
        let mut rg = self.file.next_row_group()?;
        for c in cols {
            c.close()?.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        self.close_row_group()?;
        Ok(self.file.into_inner()?)
    }
}

/// Streams series (in label order) into the two Parquet files of a block.
pub struct BlockWriter {
    samples: SamplesFile,
    pending: Pending,
    series: Vec<(Labels, u64, u32)>,
    rows: u64,
    hists: super::histograms::HistogramRows,
    min_t: i64,
    max_t: i64,
}

/// The encoded files of a finished block.
pub struct EncodedBlock {
    pub meta: BlockMeta,
    pub series: Bytes,
    pub samples: Bytes,
    /// `histograms.parquet`, when the block has histogram samples.
    pub histograms: Option<Bytes>,
}

impl BlockWriter {
    /// An empty writer.
    pub fn new() -> Result<Self> {
        Ok(BlockWriter {
            samples: SamplesFile::new()?,
            pending: Pending::new(),
            series: Vec::new(),
            rows: 0,
            hists: Default::default(),
            min_t: i64::MAX,
            max_t: i64::MIN,
        })
    }

    /// Adds the next series; calls must come in label order, samples sorted and unique.
    /// A series without samples is skipped.
    pub fn add(&mut self, labels: Labels, samples: &[(i64, f64)]) -> Result<()> {
        self.add_series(labels, samples, &[])
    }

    /// Adds the next series with its float and histogram samples (each sorted and unique
    /// by time). A series without samples is skipped.
    pub fn add_series(
        &mut self,
        labels: Labels,
        samples: &[(i64, f64)],
        histograms: &[super::histograms::HistSample],
    ) -> Result<()> {
        if samples.is_empty() && histograms.is_empty() {
            return Ok(());
        }
        let id = self.series.len() as u32;
        if let (Some(first), Some(last)) = (histograms.first(), histograms.last()) {
            self.hists.add(id, histograms)?;
            self.min_t = self.min_t.min(first.0);
            self.max_t = self.max_t.max(last.0);
        }
        if samples.is_empty() {
            self.series.push((labels, self.rows, 0));
            return Ok(());
        }
        self.series.push((labels, self.rows, samples.len() as u32));
        let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let dec = decimal::encode_series(&values);
        // Where the value is a float the mantissa repeats the previous one: a zero delta.
        let mut last = 0i64;
        let mantissas: Vec<i64> = dec
            .mantissas
            .iter()
            .map(|m| {
                last = m.unwrap_or(last);
                last
            })
            .collect();
        self.add_mantissas(&mantissas)?;
        // The other columns: a series longer than a page is cut into equal pages.
        let pages = samples.len().div_ceil(ROW_PAGE_ROWS);
        let per_page = samples.len().div_ceil(pages);
        let parts = samples.chunks(per_page).zip(dec.mantissas.chunks(per_page));
        for (i, (part, mants)) in parts.enumerate() {
            // Short series before a long one share its first page.
            if i > 0 {
                self.flush_rows()?;
            }
            let p = &mut self.pending;
            for (&(t, v), m) in part.iter().zip(mants) {
                p.ids.append_value(id);
                p.ts.append_value(t);
                p.shifts.append_value(dec.shift);
                if m.is_some() {
                    p.exps.append_value(dec.exponent);
                    p.floats.append_value(0.0);
                } else {
                    p.exps.append_value(decimal::FLOAT_EXPONENT);
                    p.floats.append_value(v);
                }
            }
            p.rows += part.len();
        }
        // The page ends here, at a series boundary, once it holds enough rows.
        if pages > 1 || self.pending.rows >= ROW_PAGE_ROWS {
            self.flush_rows()?;
        }
        self.rows += samples.len() as u64;
        self.samples.rows += samples.len() as u64;
        self.min_t = self.min_t.min(samples[0].0);
        self.max_t = self.max_t.max(samples[samples.len() - 1].0);
        if self.samples.rows >= ROW_GROUP_ROWS {
            self.flush_rows()?;
            self.flush_mantissas()?;
            self.samples.close_row_group()?;
        }
        Ok(())
    }

    /// Writes the pending rows of every column but the mantissas as one page each.
    fn flush_rows(&mut self) -> Result<()> {
        if self.pending.rows == 0 {
            return Ok(());
        }
        let p = &mut self.pending;
        let cols: [(usize, ArrayRef); 5] = [
            (col::SERIES_ID, Arc::new(p.ids.finish())),
            (col::TIMESTAMP, Arc::new(p.ts.finish())),
            (col::SHIFT, Arc::new(p.shifts.finish())),
            (col::EXPONENT, Arc::new(p.exps.finish())),
            (col::FLOAT, Arc::new(p.floats.finish())),
        ];
        p.rows = 0;
        for (c, a) in cols {
            self.samples.page(c, a)?;
        }
        Ok(())
    }

    /// Adds one series' mantissas: pages of their own (equal pages of at most
    /// `MANTISSA_PAGE_ROWS`), or for a short series shared pages.
    fn add_mantissas(&mut self, mantissas: &[i64]) -> Result<()> {
        if mantissas.len() < OWN_PAGE_ROWS {
            self.pending.mantissas.append_slice(mantissas);
            self.pending.mantissa_rows += mantissas.len();
            if self.pending.mantissa_rows >= SHARED_MANTISSA_ROWS {
                self.flush_mantissas()?;
            }
            return Ok(());
        }
        self.flush_mantissas()?;
        let pages = mantissas.len().div_ceil(MANTISSA_PAGE_ROWS);
        for part in mantissas.chunks(mantissas.len().div_ceil(pages)) {
            let a = Arc::new(Int64Array::from(part.to_vec()));
            self.samples.page(col::MANTISSA, a)?;
        }
        Ok(())
    }

    /// Writes the pending mantissas as one page.
    fn flush_mantissas(&mut self) -> Result<()> {
        if self.pending.mantissa_rows == 0 {
            return Ok(());
        }
        let a = Arc::new(self.pending.mantissas.finish());
        self.pending.mantissa_rows = 0;
        self.samples.page(col::MANTISSA, a)
    }

    /// Finishes both files. `None` when no sample was added.
    pub fn finish(mut self, level: u32, sources: Vec<String>) -> Result<Option<EncodedBlock>> {
        self.flush_rows()?;
        self.flush_mantissas()?;
        if self.series.is_empty() {
            return Ok(None);
        }
        let samples = self.samples.finish()?;
        let series = encode_series(&self.series)?;
        let num_histograms = self.hists.rows;
        let histograms = self.hists.finish()?;
        let ulid = ulid::Ulid::new().to_string();
        let meta = BlockMeta {
            ulid: ulid.clone(),
            min_time: self.min_t,
            max_time: self.max_t.saturating_add(1),
            stats: BlockStats {
                num_samples: self.rows,
                num_series: self.series.len() as u64,
                num_histograms,
            },
            compaction: Compaction {
                level,
                sources: if sources.is_empty() {
                    vec![ulid]
                } else {
                    sources
                },
            },
            version: SAMPLES_VERSION,
            resolution: 0,
            thanos: None,
        };
        Ok(Some(EncodedBlock {
            meta,
            series: Bytes::from(series),
            samples: Bytes::from(samples),
            histograms,
        }))
    }
}

pub(crate) fn encode_series(series: &[(Labels, u64, u32)]) -> Result<Vec<u8>> {
    let n = series.len();
    let mut ids = UInt32Builder::with_capacity(n);
    let mut metric = StringBuilder::new();
    let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut hashes = UInt64Builder::with_capacity(n);
    let mut offsets = UInt64Builder::with_capacity(n);
    let mut counts = UInt32Builder::with_capacity(n);
    for (i, (l, off, cnt)) in series.iter().enumerate() {
        ids.append_value(i as u32);
        metric.append_value(l.metric_name());
        for lab in l.iter().filter(|x| &*x.name != METRIC_NAME) {
            labels.keys().append_value(&lab.name);
            labels.values().append_value(&lab.value);
        }
        labels.append(true)?;
        hashes.append_value(l.stable_hash());
        offsets.append_value(*off);
        counts.append_value(*cnt);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(ids.finish()),
        Arc::new(metric.finish()),
        Arc::new(labels.finish()),
        Arc::new(hashes.finish()),
        Arc::new(offsets.finish()),
        Arc::new(counts.finish()),
    ];
    let batch = RecordBatch::try_new(series_schema(), cols)?;
    let mut w = ArrowWriter::try_new(Vec::new(), series_schema(), Some(series_props()?))?;
    w.write(&batch)?;
    Ok(w.into_inner()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use datafusion::parquet::file::reader::FileReader;
    use datafusion::parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};

    use super::*;

    #[test]
    fn pages_end_at_series_boundaries() {
        let lengths = [5usize, 6000, 6000, 6000, 3, 40_000, 700, 700];
        let mut w = BlockWriter::new().unwrap();
        for (i, &n) in lengths.iter().enumerate() {
            let labels = Labels::from_pairs([("__name__", "m"), ("i", &format!("{i:02}"))]);
            let samples: Vec<(i64, f64)> = (0..n).map(|k| (k as i64 * 15_000, k as f64)).collect();
            w.add(labels, &samples).unwrap();
        }
        let block = w.finish(1, Vec::new()).unwrap().unwrap();
        let opts = ReadOptionsBuilder::new().with_page_index().build();
        let r = SerializedFileReader::new_with_options(block.samples, opts).unwrap();
        let index = r.metadata().offset_index().unwrap();
        // Whole series up to 16,384+ rows; the 40,000-row series in three equal pages (the
        // 3-row series before it joins the first).
        let want = [0i64, 18_005, 31_342, 44_676, 58_008];
        // Mantissas: pages of at most 4096 rows of one series each; the 5- and 3-row
        // series have pages of their own, ended by the next long series.
        let mut mantissas = vec![0i64, 5, 3005, 6005, 9005, 12_005, 15_005, 18_005];
        mantissas.extend((0..10).map(|k| 18_008 + k * 4000));
        mantissas.extend([58_008, 58_708]);
        assert_eq!(index.len(), 1, "one row group");
        for (c, column) in index[0].iter().enumerate() {
            let starts: Vec<i64> = column
                .page_locations()
                .iter()
                .map(|p| p.first_row_index)
                .collect();
            if c == col::MANTISSA {
                assert_eq!(starts, mantissas);
            } else {
                assert_eq!(starts, want, "column {c}");
            }
        }
    }
}
