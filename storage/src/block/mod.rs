//! Immutable blocks: a directory `blocks/<ULID>/` of plain Parquet files plus `meta.json`,
//! stored through `object_store` (local filesystem by default). A block keeps its series
//! table and postings in memory; sample reads select exact row ranges of `samples.parquet`
//! from the series' `row_offset`/`num_samples`, so only the pages of wanted series are read.

// `ParquetObjectReader` is deprecated in parquet 59 in favour of a hand-written
// `AsyncFileReader`; it is still what DataFusion 55 itself uses.
#![allow(deprecated)]

mod aggregates;
pub mod decimal;
pub mod histograms;
#[cfg(unix)]
mod local;
pub mod meta;
pub(crate) mod writer;

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, MapArray, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::arrow::async_reader::{
    AsyncFileReader, ParquetObjectReader, ParquetRecordBatchStreamBuilder,
};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::RwLock;
use roaring::RoaringBitmap;

use crate::error::{Result, StorageError};
use crate::index::Postings;
use crate::labels::{LabelPool, Labels, METRIC_NAME};
use crate::matcher::Matcher;
pub use meta::{BlockMeta, Tombstone};
pub use writer::{BlockWriter, EncodedBlock};
pub use writer::{samples_schema, series_schema};

/// One series of a block.
#[derive(Debug, Clone)]
pub struct BlockSeries {
    pub labels: Labels,
    pub row_offset: u64,
    pub num_samples: u32,
}

/// An opened block.
pub struct Block {
    pub meta: BlockMeta,
    dir: Path,
    store: Arc<dyn ObjectStore>,
    series: Vec<BlockSeries>,
    postings: Postings,
    samples_meta: ArrowReaderMetadata,
    /// Whether `samples.parquet` stores values as decimals (version 2) or as one float
    /// column (version 1, and downsampled blocks).
    decimal_values: bool,
    /// Whether any row of a version 2 `samples.parquet` keeps its value as a float (else
    /// `value_float`, all zeros, is not read).
    float_rows: bool,
    samples_size: u64,
    /// `samples.parquet` held open, when the block is in the local data directory.
    #[cfg(unix)]
    local: Option<local::LocalSamples>,
    /// Bytes of all files of the block.
    pub size_bytes: u64,
    tombstones: RwLock<Vec<Tombstone>>,
    /// The page cache, for a block read from object storage.
    cache: Option<Arc<crate::bucket::cache::RangeCache>>,
    /// Whether `series` is in label order (not always once external labels were added).
    sorted: bool,
}

pub(crate) fn block_err(dir: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::Block {
        block: dir.to_string(),
        reason: reason.into(),
    }
}

impl Block {
    /// Writes an encoded block under `root` and opens it (`local`: see [`Block::open`]).
    pub async fn write(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        b: EncodedBlock,
        pool: &LabelPool,
        local: Option<&std::path::Path>,
    ) -> Result<Block> {
        let dir = root.clone().join(b.meta.ulid.as_str());
        store
            .put(&dir.clone().join("samples.parquet"), b.samples.into())
            .await?;
        store
            .put(&dir.clone().join("series.parquet"), b.series.into())
            .await?;
        if let Some(h) = b.histograms {
            store
                .put(&dir.clone().join(histograms::FILE), h.into())
                .await?;
        }
        let meta = serde_json::to_vec_pretty(&b.meta).map_err(|e| StorageError::Json {
            file: "meta.json".into(),
            source: e,
        })?;
        store
            .put(&dir.clone().join("meta.json"), meta.into())
            .await?;
        Block::open(store, dir, pool, local).await
    }

    /// Opens the block in `dir`. `local` is the directory `store` is rooted at when it is
    /// the local filesystem: samples are then read from the file directly.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        pool: &LabelPool,
        local: Option<&std::path::Path>,
    ) -> Result<Block> {
        let meta_bytes = store
            .get(&dir.clone().join("meta.json"))
            .await?
            .bytes()
            .await?;
        let meta: BlockMeta =
            serde_json::from_slice(&meta_bytes).map_err(|e| StorageError::Json {
                file: format!("{dir}/meta.json"),
                source: e,
            })?;
        let tombstones = match store.get(&dir.clone().join("tombstones.json")).await {
            Ok(r) => serde_json::from_slice(&r.bytes().await?).map_err(|e| StorageError::Json {
                file: format!("{dir}/tombstones.json"),
                source: e,
            })?,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let series_bytes = store
            .get(&dir.clone().join("series.parquet"))
            .await?
            .bytes()
            .await?;
        let mut series =
            read_series_table(&series_bytes).map_err(|e| block_err(&dir, e.to_string()))?;
        for s in &mut series {
            s.labels = pool.intern(std::mem::take(&mut s.labels));
        }
        // The row ranges must tile samples.parquet exactly: anything else is corruption
        // (and would make row selection panic).
        let mut next = 0u64;
        for x in &series {
            if x.row_offset != next {
                return Err(block_err(
                    &dir,
                    "series.parquet row ranges are not contiguous",
                ));
            }
            next = next
                .checked_add(u64::from(x.num_samples))
                .ok_or_else(|| block_err(&dir, "series.parquet row ranges overflow"))?;
        }
        if next != meta.stats.num_samples {
            return Err(block_err(
                &dir,
                format!(
                    "series.parquet covers {next} rows, meta.json says {}",
                    meta.stats.num_samples
                ),
            ));
        }
        let mut postings = Postings::default();
        for (i, s) in series.iter().enumerate() {
            postings.add(i as u32, &s.labels);
        }
        let samples_path = dir.clone().join("samples.parquet");
        let head = store.head(&samples_path).await?;
        let mut reader =
            ParquetObjectReader::new(store.clone(), samples_path).with_file_size(head.size);
        let samples_meta = ArrowReaderMetadata::load_async(
            &mut reader,
            ArrowReaderOptions::new().with_page_index(true),
        )
        .await?;
        let size_bytes = head.size + series_bytes.len() as u64 + meta_bytes.len() as u64;
        let decimal_values = samples_meta
            .schema()
            .column_with_name("value_mantissa")
            .is_some();
        let float_rows = decimal_values && has_float_rows(samples_meta.metadata());
        #[cfg(unix)]
        let local = match local {
            Some(root) => {
                let p = root.join(dir.as_ref()).join("samples.parquet");
                let f = std::fs::File::open(&p).map_err(|e| StorageError::io("open", &p, e))?;
                Some(local::LocalSamples::new(f, samples_meta.metadata().clone()))
            }
            None => None,
        };
        #[cfg(not(unix))]
        let _ = local;
        Ok(Block {
            meta,
            dir,
            store,
            series,
            postings,
            samples_meta,
            decimal_values,
            float_rows,
            samples_size: head.size,
            #[cfg(unix)]
            local,
            size_bytes,
            tombstones: RwLock::new(tombstones),
            cache: None,
            sorted: true,
        })
    }

    /// The block with `external` labels added to every series that lacks them (another
    /// node's block read by a store: its series carry that node's external labels, as
    /// Prometheus's and Thanos's external labels are added where a series lacks them).
    pub(crate) fn with_external_labels(
        mut self,
        external: &std::collections::BTreeMap<String, String>,
        pool: &LabelPool,
    ) -> Self {
        if external.is_empty() {
            return self;
        }
        let ext: Vec<crate::labels::Label> = external
            .iter()
            .map(|(k, v)| crate::labels::Label {
                name: Arc::from(k.as_str()),
                value: Arc::from(v.as_str()),
            })
            .collect();
        for s in &mut self.series {
            let mut v: Vec<crate::labels::Label> = s.labels.iter().cloned().collect();
            for e in &ext {
                if s.labels.get(&e.name).is_none() {
                    v.push(e.clone());
                }
            }
            s.labels = pool.intern(Labels::from_labels(v));
        }
        let mut postings = Postings::default();
        for (i, s) in self.series.iter().enumerate() {
            postings.add(i as u32, &s.labels);
        }
        self.postings = postings;
        self.sorted = self.series.is_sorted_by(|a, b| a.labels <= b.labels);
        self
    }

    /// Whether the series are in label order (block-local ids then follow it).
    pub fn labels_sorted(&self) -> bool {
        self.sorted
    }

    /// The block, its file reads going through `cache` (a block in object storage).
    pub(crate) fn with_cache(mut self, cache: Arc<crate::bucket::cache::RangeCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's series, indexed by block-local id.
    pub fn series(&self) -> &[BlockSeries] {
        &self.series
    }

    /// Postings of the block.
    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// Block-local ids of the series the matchers select.
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        self.postings.select(matchers)
    }

    /// Current tombstones.
    pub fn tombstones(&self) -> Vec<Tombstone> {
        self.tombstones.read().clone()
    }

    /// Whether `[mint, maxt]` overlaps the block.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    /// The ids of `ids` that are series of this block, in order.
    fn wanted(&self, ids: &RoaringBitmap) -> Vec<u32> {
        ids.iter()
            .filter(|i| (*i as usize) < self.series.len())
            .collect()
    }

    /// The `samples.parquet` row range of each of `wanted`, and their row selection.
    fn rows_of(&self, wanted: &[u32]) -> (Vec<Range<usize>>, RowSelection) {
        let ranges: Vec<Range<usize>> = wanted
            .iter()
            .map(|&i| {
                let s = &self.series[i as usize];
                s.row_offset as usize..(s.row_offset + s.num_samples as u64) as usize
            })
            .collect();
        let total = self.meta.stats.num_samples as usize;
        let selection = RowSelection::from_consecutive_ranges(ranges.iter().cloned(), total);
        (ranges, selection)
    }

    /// Samples of the given series within `[mint, maxt]`, tombstones applied, per series
    /// in id order (series with no sample left are omitted).
    pub async fn read(
        &self,
        ids: &RoaringBitmap,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(u32, Vec<(i64, f64)>)>> {
        self.read_charged(ids, mint, maxt, &crate::read::Unbounded)
            .await
    }

    /// As [`Block::read`], asking `charge` for room before keeping each decoded run of
    /// samples (so a read stops at the bound, not after decoding everything).
    pub async fn read_charged(
        &self,
        ids: &RoaringBitmap,
        mint: i64,
        maxt: i64,
        charge: &dyn crate::read::ReadCharge,
    ) -> Result<Vec<(u32, Vec<(i64, f64)>)>> {
        let wanted = self.wanted(ids);
        if wanted.is_empty() || !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let (ranges, selection) = self.rows_of(&wanted);
        let reader = self.samples_reader();
        let projection = if self.decimal_values {
            let mut p = vec![
                writer::col::TIMESTAMP,
                writer::col::MANTISSA,
                writer::col::SHIFT,
                writer::col::EXPONENT,
            ];
            if self.float_rows {
                p.push(writer::col::FLOAT);
            }
            p
        } else {
            vec![1, 2]
        };
        let mask = ProjectionMask::roots(self.samples_meta.parquet_schema(), projection);
        let stream =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, self.samples_meta.clone())
                .with_projection(mask)
                .with_row_selection(selection)
                .with_batch_size(16 * 1024)
                .build()?;
        // Batches are filtered to [mint, maxt] as they stream in, so a query over a short
        // window keeps only its samples, not every decoded row of its series.
        let tombs = self.tombstones.read().clone();
        let mut out: Vec<(u32, Vec<(i64, f64)>)> = Vec::with_capacity(wanted.len());
        let mut cur = 0usize; // index into `wanted` / `ranges`
        let mut left = ranges.first().map_or(0, |r| r.len());
        // A series' buffer is sized for the share of its block rows the time range covers
        // (samples spread evenly), not for all of them: one allocation for a read of the
        // whole block, and no more than the read keeps (and charges) for a short window.
        let span = (self.meta.max_time - self.meta.min_time).max(1) as f64;
        let covered = (maxt.min(self.meta.max_time) as f64 - mint.max(self.meta.min_time) as f64
            + 1.0)
            .clamp(0.0, span);
        let share = covered / span;
        let room = |rows: usize| ((rows as f64 * share) as usize + 16).min(rows);
        let mut acc: Vec<(i64, f64)> = Vec::with_capacity(room(left));
        // Ends one series: tombstones applied, kept if any sample is left.
        let flush = |id: u32, acc: &mut Vec<(i64, f64)>, out: &mut Vec<(u32, Vec<(i64, f64)>)>| {
            if !tombs.is_empty() {
                acc.retain(|x| !meta::is_deleted(&tombs, id, x.0));
            }
            if !acc.is_empty() {
                if acc.len() < acc.capacity() / 2 {
                    acc.shrink_to_fit();
                }
                out.push((id, std::mem::take(acc)));
            }
        };
        let mut stream = stream;
        let mut decoded: Vec<f64> = Vec::new();
        while let Some(b) = stream.try_next().await? {
            let Some(t) = b.column(0).as_primitive_opt::<TimestampMillisecondType>() else {
                return Err(block_err(
                    &self.dir,
                    "samples.parquet has unexpected column types",
                ));
            };
            // Version 1 values are read in place; version 2 values are decoded.
            let v: &[f64] = if self.decimal_values {
                decode_values(&b, &mut decoded).map_err(|e| block_err(&self.dir, e))?;
                &decoded
            } else {
                match b.column(1).as_primitive_opt::<Float64Type>() {
                    Some(v) => v.values(),
                    None => {
                        return Err(block_err(
                            &self.dir,
                            "samples.parquet has unexpected column types",
                        ));
                    }
                }
            };
            let t = t.values();
            let mut pos = 0usize;
            while pos < t.len() {
                while left == 0 {
                    flush(wanted[cur], &mut acc, &mut out);
                    cur += 1;
                    left = match ranges.get(cur) {
                        Some(r) => {
                            acc.reserve(room(r.len()));
                            r.len()
                        }
                        None => {
                            return Err(block_err(
                                &self.dir,
                                "samples.parquet has more rows than series.parquet says",
                            ));
                        }
                    };
                }
                let n = left.min(t.len() - pos);
                let (ts, vs) = (&t[pos..pos + n], &v[pos..pos + n]);
                let lo = ts.partition_point(|x| *x < mint);
                let hi = ts.partition_point(|x| *x <= maxt);
                if hi > lo && !charge.charge(hi - lo) {
                    return Err(StorageError::ReadRefused);
                }
                acc.extend(ts[lo..hi].iter().copied().zip(vs[lo..hi].iter().copied()));
                pos += n;
                left -= n;
            }
        }
        // Flush the last series; any series still expecting rows means a short file.
        loop {
            if left != 0 {
                return Err(block_err(
                    &self.dir,
                    "samples.parquet has fewer rows than series.parquet says",
                ));
            }
            flush(wanted[cur], &mut acc, &mut out);
            cur += 1;
            match ranges.get(cur) {
                Some(r) => left = r.len(),
                None => break,
            }
        }
        Ok(out)
    }

    /// Histogram samples of the given series within `[mint, maxt]`, tombstones applied,
    /// per series in id order (series without any are omitted).
    pub async fn read_histograms(
        &self,
        ids: &RoaringBitmap,
        mint: i64,
        maxt: i64,
        charge: &dyn crate::read::ReadCharge,
    ) -> Result<Vec<(u32, Vec<histograms::HistSample>)>> {
        if self.meta.stats.num_histograms == 0 || ids.is_empty() || !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let path = self.dir.clone().join(histograms::FILE);
        let bytes = match &self.cache {
            Some(c) => crate::bucket::cache::get_whole(c, &*self.store, &path).await?,
            None => self.store.get(&path).await?.bytes().await?,
        };
        let tombs = self.tombstones.read().clone();
        histograms::read(bytes, ids, mint, maxt, &tombs, charge).map_err(|e| match e {
            StorageError::ReadRefused => e,
            e => block_err(&self.dir, e.to_string()),
        })
    }

    /// A reader of `samples.parquet`: the open local file, or the object store.
    fn samples_reader(&self) -> Box<dyn AsyncFileReader> {
        #[cfg(unix)]
        if let Some(l) = &self.local {
            return Box::new(l.clone());
        }
        if let Some(cache) = &self.cache {
            return Box::new(crate::bucket::cache::CachedReader {
                store: self.store.clone(),
                path: self.dir.clone().join("samples.parquet"),
                meta: self.samples_meta.metadata().clone(),
                cache: cache.clone(),
            });
        }
        Box::new(
            ParquetObjectReader::new(self.store.clone(), self.dir.clone().join("samples.parquet"))
                .with_file_size(self.samples_size),
        )
    }

    /// Records deleted intervals and persists them in `tombstones.json`.
    pub async fn add_tombstones(&self, new: Vec<Tombstone>) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let all = {
            let mut t = self.tombstones.write();
            t.extend(new);
            t.clone()
        };
        let bytes = serde_json::to_vec(&all).map_err(|e| StorageError::Json {
            file: "tombstones.json".into(),
            source: e,
        })?;
        self.store
            .put(&self.dir.clone().join("tombstones.json"), bytes.into())
            .await?;
        Ok(())
    }

    /// Flushes the block's files and directory to disk (object_store's local backend does
    /// not fsync); `root` is the data directory the store is rooted at.
    pub(crate) fn fsync_local(&self, root: &std::path::Path) -> Result<()> {
        let dir = root.join(self.dir.as_ref());
        let hist = (self.meta.stats.num_histograms > 0).then_some(histograms::FILE);
        for f in ["samples.parquet", "series.parquet", "meta.json"]
            .into_iter()
            .chain(hist)
        {
            let p = dir.join(f);
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| StorageError::io("fsync", &p, e))?;
        }
        let parent = dir.parent().map(std::path::Path::to_path_buf);
        for d in std::iter::once(&dir).chain(parent.as_ref()) {
            std::fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|e| StorageError::io("fsync", d, e))?;
        }
        Ok(())
    }

    /// Deletes the block's files.
    pub(crate) async fn delete(&self) -> Result<()> {
        // meta.json first: a half-deleted block is then an unfinished one, removed on open.
        for f in [
            "meta.json",
            "tombstones.json",
            "series.parquet",
            "samples.parquet",
            histograms::FILE,
        ] {
            match self.store.delete(&self.dir.clone().join(f)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Whether a version 2 `samples.parquet` may hold rows whose value is a float: some row
/// group's `value_exponent` reaches -128, or has no statistics.
fn has_float_rows(meta: &datafusion::parquet::file::metadata::ParquetMetaData) -> bool {
    use datafusion::parquet::file::statistics::Statistics;
    meta.row_groups().iter().any(|rg| {
        match rg
            .columns()
            .get(writer::col::EXPONENT)
            .and_then(|c| c.statistics())
        {
            Some(Statistics::Int32(s)) => s
                .min_opt()
                .is_none_or(|m| *m <= i32::from(decimal::FLOAT_EXPONENT)),
            _ => true,
        }
    })
}

/// The values of a batch of (`timestamp`, `value_mantissa`, `value_shift`,
/// `value_exponent`[, `value_float`]) rows of a version 2 `samples.parquet`, into `out`.
fn decode_values(
    b: &datafusion::arrow::record_batch::RecordBatch,
    out: &mut Vec<f64>,
) -> std::result::Result<(), &'static str> {
    use datafusion::arrow::datatypes::{Int8Type, Int64Type};
    let unexpected = "samples.parquet has unexpected column types";
    let m = b
        .column(1)
        .as_primitive_opt::<Int64Type>()
        .ok_or(unexpected)?;
    let s = b
        .column(2)
        .as_primitive_opt::<Int8Type>()
        .ok_or(unexpected)?;
    let e = b
        .column(3)
        .as_primitive_opt::<Int8Type>()
        .ok_or(unexpected)?;
    let bad = "samples.parquet has a value outside the decimal encoding";
    out.clear();
    out.reserve(b.num_rows());
    let rows = m.values().iter().zip(s.values()).zip(e.values());
    // Without the float column (no row keeps a float), a row marked float is corruption.
    let Some(f) = b.columns().get(4) else {
        for ((&m, &s), &e) in rows {
            out.push(decimal::decode(m, s, e).ok_or(bad)?);
        }
        return Ok(());
    };
    let f = f.as_primitive_opt::<Float64Type>().ok_or(unexpected)?;
    for (((&m, &s), &e), &f) in rows.zip(f.values()) {
        out.push(if e == decimal::FLOAT_EXPONENT {
            f
        } else {
            decimal::decode(m, s, e).ok_or(bad)?
        });
    }
    Ok(())
}

/// Decodes `series.parquet`.
fn read_series_table(bytes: &bytes::Bytes) -> Result<Vec<BlockSeries>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| StorageError::Block {
                    block: "series.parquet".into(),
                    reason: format!("missing column {name}"),
                })
        };
        let metric = col("metric")?;
        let metric = metric
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| bad("metric"))?;
        let labels = col("labels")?;
        let labels = labels
            .as_any()
            .downcast_ref::<MapArray>()
            .ok_or_else(|| bad("labels"))?;
        let offs = col("row_offset")?;
        let offs = offs
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| bad("row_offset"))?;
        let cnts = col("num_samples")?;
        let cnts = cnts
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| bad("num_samples"))?;
        let (Some(keys), Some(vals)) = (
            labels.keys().as_string_opt::<i32>(),
            labels.values().as_string_opt::<i32>(),
        ) else {
            return Err(bad("labels"));
        };
        let offsets = labels.value_offsets();
        for i in 0..batch.num_rows() {
            let mut pairs: Vec<(&str, &str)> = vec![(METRIC_NAME, metric.value(i))];
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                pairs.push((
                    keys.value(j),
                    if vals.is_null(j) { "" } else { vals.value(j) },
                ));
            }
            out.push(BlockSeries {
                labels: Labels::from_pairs(pairs),
                row_offset: offs.value(i),
                num_samples: cnts.value(i),
            });
        }
    }
    Ok(out)
}

fn bad(col: &str) -> StorageError {
    StorageError::Block {
        block: "series.parquet".into(),
        reason: format!("column {col} has an unexpected type"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use object_store::memory::InMemory;
    use proptest::prelude::*;

    use super::*;

    /// Values a series may hold: short decimals, page-sized byte counts, and any bits at
    /// all (NaN payloads such as stale markers, ±Inf, -0.0, long fractions).
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-100_000i64..100_000).prop_map(|m| m as f64 / 1000.0),
            (0u64..1 << 30).prop_map(|p| (p * 4096) as f64),
            (0u64..1 << 20).prop_map(|c| c as f64),
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(-0.0),
        ]
    }

    fn decimal() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-100_000i64..100_000).prop_map(|m| m as f64 / 1000.0),
            (0u64..1 << 30).prop_map(|p| (p * 4096) as f64),
        ]
    }

    /// Series of any values, or of decimals only (then `value_float` is not read).
    fn series() -> impl Strategy<Value = Vec<Vec<f64>>> {
        prop_oneof![
            proptest::collection::vec(proptest::collection::vec(value(), 1..300), 1..12),
            proptest::collection::vec(proptest::collection::vec(decimal(), 1..300), 1..12),
        ]
    }

    /// A block written before values were decimals: `samples.parquet` with one float64
    /// `value` column, `meta.json` version 1.
    #[tokio::test]
    async fn version_1_blocks_are_still_read() {
        use datafusion::arrow::array::{ArrayRef, Float64Array, TimestampMillisecondArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        use datafusion::arrow::record_batch::RecordBatch;
        use datafusion::parquet::arrow::ArrowWriter;

        let schema = Arc::new(Schema::new(vec![
            Field::new("series_id", DataType::UInt32, false),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("value", DataType::Float64, false),
        ]));
        let vals = [1.5, f64::from_bits(0x7ff0_0000_0000_0002), -0.0, 7.0];
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(vec![0, 0, 1, 1])),
            Arc::new(
                TimestampMillisecondArray::from(vec![1000, 2000, 1000, 3000]).with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from(vals.to_vec())),
        ];
        let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), None).unwrap();
        w.write(&RecordBatch::try_new(schema, cols).unwrap())
            .unwrap();
        let samples = w.into_inner().unwrap();
        let l = |i: &str| Labels::from_pairs([("__name__", "m"), ("i", i)]);
        let series = writer::encode_series(&[(l("a"), 0, 2), (l("b"), 2, 2)]).unwrap();
        let meta = r#"{"ulid":"old","minTime":1000,"maxTime":3001,"stats":{"numSamples":4,"numSeries":2},"compaction":{"level":1,"sources":["old"]},"version":1}"#.to_string();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dir = Path::from("blocks/old");
        for (f, b) in [
            ("samples.parquet", samples),
            ("series.parquet", series),
            ("meta.json", meta.into_bytes()),
        ] {
            store.put(&dir.clone().join(f), b.into()).await.unwrap();
        }
        let b = Block::open(store, dir, &LabelPool::default(), None)
            .await
            .unwrap();
        let ids: RoaringBitmap = [0u32, 1].into_iter().collect();
        let got = b.read(&ids, 0, 5000).await.unwrap();
        let bits: Vec<(u32, Vec<(i64, u64)>)> = got
            .into_iter()
            .map(|(id, s)| (id, s.iter().map(|x| (x.0, x.1.to_bits())).collect()))
            .collect();
        let v = |i: usize| vals[i].to_bits();
        assert_eq!(
            bits,
            vec![
                (0, vec![(1000, v(0)), (2000, v(1))]),
                (1, vec![(1000, v(2)), (3000, v(3))])
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// What a block is written with is what it reads back, bit for bit, whole and in
        /// time windows.
        #[test]
        fn samples_round_trip_bit_exact(all in series(), lo in 0i64..300, len in 0i64..300) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut w = BlockWriter::new().unwrap();
                let mut want = Vec::new();
                for (i, vals) in all.iter().enumerate() {
                    let labels = Labels::from_pairs([("__name__", "m"), ("i", &format!("{i:03}"))]);
                    let samples: Vec<(i64, f64)> =
                        vals.iter().enumerate().map(|(k, &v)| (k as i64 * 1000, v)).collect();
                    w.add(labels, &samples).unwrap();
                    want.push(samples);
                }
                let enc = w.finish(1, Vec::new()).unwrap().unwrap();
                let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                let pool = LabelPool::default();
                let b = Block::write(store, &Path::from("blocks"), enc, &pool, None).await.unwrap();
                let floats = all
                    .iter()
                    .any(|v| decimal::encode_series(v).mantissas.iter().any(Option::is_none));
                prop_assert_eq!(b.float_rows, floats);
                let ids: RoaringBitmap = (0..all.len() as u32).collect();
                let (mint, maxt) = (lo * 1000, (lo + len) * 1000);
                let got = b.read(&ids, mint, maxt).await.unwrap();
                let bits = |s: &[(i64, f64)]| s.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>();
                let mut expect = Vec::new();
                for (i, s) in want.iter().enumerate() {
                    let keep: Vec<(i64, f64)> =
                        s.iter().copied().filter(|x| x.0 >= mint && x.0 <= maxt).collect();
                    if !keep.is_empty() {
                        expect.push((i as u32, bits(&keep)));
                    }
                }
                let got: Vec<(u32, Vec<(i64, u64)>)> =
                    got.into_iter().map(|(id, s)| (id, bits(&s))).collect();
                prop_assert_eq!(got, expect);
                Ok(())
            })?;
        }
    }
}
