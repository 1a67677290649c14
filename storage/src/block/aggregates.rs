//! Reads of a downsampled block (see [`crate::downsample`]): its `samples.parquet` holds,
//! per series and window, the window's end as `timestamp`, its last value as `value` (so a
//! plain reader sees one sample per window) and the aggregates in further columns.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt32Type};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use futures::TryStreamExt;
use roaring::RoaringBitmap;

use super::{Block, block_err, meta};
use crate::downsample::Aggregate;
use crate::error::{Result, StorageError};

/// What one window weighs against a read's bound, in raw samples (16 bytes each): an
/// [`Aggregate`] is 72 bytes.
pub(crate) const AGGREGATE_WEIGHT: usize = 5;

impl Block {
    /// The aggregates of the given series whose window ends lie in `[mint, maxt]`,
    /// tombstones applied (by window end), per series in id order (series without any
    /// are omitted), each window charged as [`AGGREGATE_WEIGHT`] samples. Only for
    /// downsampled blocks (`meta.resolution > 0`).
    pub async fn read_aggregates(
        &self,
        ids: &RoaringBitmap,
        mint: i64,
        maxt: i64,
        charge: &dyn crate::read::ReadCharge,
    ) -> Result<Vec<(u32, Vec<Aggregate>)>> {
        let res = self.meta.resolution;
        if res <= 0 {
            return Err(block_err(&self.dir, "not a downsampled block"));
        }
        let wanted = self.wanted(ids);
        let (first_end, last_end) = (
            crate::downsample::window_end(self.meta.min_time, res),
            crate::downsample::window_end(self.meta.max_time - 1, res),
        );
        if wanted.is_empty() || maxt < first_end || mint > last_end {
            return Ok(Vec::new());
        }
        let (ranges, selection) = self.rows_of(&wanted);
        let mask = ProjectionMask::roots(self.samples_meta.parquet_schema(), 1..=10);
        let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(
            self.samples_reader(),
            self.samples_meta.clone(),
        )
        .with_projection(mask)
        .with_row_selection(selection)
        .with_batch_size(16 * 1024)
        .build()?;
        let tombs = self.tombstones.read().clone();
        let mut out: Vec<(u32, Vec<Aggregate>)> = Vec::with_capacity(wanted.len());
        let (mut cur, mut left) = (0usize, ranges.first().map_or(0, |r| r.len()));
        let mut acc: Vec<Aggregate> = Vec::new();
        let bad = || block_err(&self.dir, "samples.parquet is not a downsampled block's");
        while let Some(b) = stream.try_next().await? {
            if b.num_columns() != 10 {
                return Err(bad());
            }
            let ts = |i: usize| {
                b.column(i)
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .map(|a| a.values())
                    .ok_or_else(bad)
            };
            let f = |i: usize| {
                b.column(i)
                    .as_primitive_opt::<Float64Type>()
                    .map(|a| a.values())
                    .ok_or_else(bad)
            };
            let (end, last_v) = (ts(0)?, f(1)?);
            let count = b
                .column(2)
                .as_primitive_opt::<UInt32Type>()
                .map(|a| a.values())
                .ok_or_else(bad)?;
            let (sum, min, max) = (f(3)?, f(4)?, f(5)?);
            let (first_t, first_v, last_t, corr) = (ts(6)?, f(7)?, ts(8)?, f(9)?);
            for k in 0..b.num_rows() {
                while left == 0 {
                    flush(wanted[cur], &mut acc, &mut out, &tombs);
                    cur += 1;
                    left = ranges.get(cur).map(|r| r.len()).ok_or_else(|| {
                        block_err(
                            &self.dir,
                            "samples.parquet has more rows than series.parquet says",
                        )
                    })?;
                }
                left -= 1;
                if end[k] < mint || end[k] > maxt {
                    continue;
                }
                if !charge.charge(AGGREGATE_WEIGHT) {
                    return Err(StorageError::ReadRefused);
                }
                acc.push(Aggregate {
                    end: end[k],
                    count: count[k],
                    sum: sum[k],
                    min: min[k],
                    max: max[k],
                    first_t: first_t[k],
                    first_v: first_v[k],
                    last_t: last_t[k],
                    last_v: last_v[k],
                    counter_correction: corr[k],
                });
            }
        }
        loop {
            if left != 0 {
                return Err(block_err(
                    &self.dir,
                    "samples.parquet has fewer rows than series.parquet says",
                ));
            }
            flush(wanted[cur], &mut acc, &mut out, &tombs);
            cur += 1;
            match ranges.get(cur) {
                Some(r) => left = r.len(),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Ends one series' run: tombstones applied, kept if anything is left.
fn flush(
    id: u32,
    acc: &mut Vec<Aggregate>,
    out: &mut Vec<(u32, Vec<Aggregate>)>,
    tombs: &[meta::Tombstone],
) {
    if !tombs.is_empty() {
        acc.retain(|a| !meta::is_deleted(tombs, id, a.end));
    }
    if !acc.is_empty() {
        out.push((id, std::mem::take(acc)));
    }
}
