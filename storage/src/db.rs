//! The database: WAL + head + blocks behind one handle. Owns the write path (the
//! [`Appender`]), the read path (`select`), and maintenance: cutting the head into blocks,
//! WAL checkpoints, compaction, retention and deletion.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::RwLock;
use strata_vocab::FloatHistogram;

use crate::block::{Block, BlockWriter, Tombstone};
use crate::error::{Result, StorageError};
use crate::exemplars::{Exemplar, ExemplarError, ExemplarStore};
use crate::head::Head;
use crate::labels::{LabelPool, Labels};
use crate::matcher::Matcher;
use crate::options::Options;
use crate::series::{Appended, Rejection, SeriesData};
use crate::wal::{self, Record, ReplayStats, Wal};

/// Samples of one series, as appended or returned by a query: float samples and native
/// histogram samples side by side (one series may hold both, at different timestamps),
/// as Prometheus's remote-write `TimeSeries` carries them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesSamples {
    pub labels: Labels,
    /// `(timestamp ms, value)`, sorted by time.
    pub samples: Vec<(i64, f64)>,
    /// `(timestamp ms, histogram)`, sorted by time.
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

impl SeriesSamples {
    /// A series of float samples only.
    pub fn floats(labels: Labels, samples: Vec<(i64, f64)>) -> Self {
        SeriesSamples {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }

    /// Whether no sample of either kind is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }

    /// Samples of both kinds.
    pub fn len(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AppendReport {
    /// Samples stored, of both kinds.
    pub appended: u64,
    /// Of `appended`, native histogram samples.
    pub histograms_appended: u64,
    pub duplicates_ignored: u64,
    pub out_of_bounds: u64,
    pub duplicate_timestamp: u64,
    /// The first rejection, described for the client.
    pub first_rejection: Option<String>,
}

/// The only way samples enter storage.
pub trait Appender: Send + Sync {
    /// Appends a batch. When this returns `Ok`, every accepted sample is in the WAL.
    fn append(&self, batch: &[SeriesSamples]) -> Result<AppendReport>;
}

/// Counters of the database (exposed on `/metrics`).
#[derive(Debug, Default)]
pub struct DbMetrics {
    pub blocks_cut: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_failures: AtomicU64,
    pub checkpoints: AtomicU64,
    pub blocks_removed_by_retention: AtomicU64,
    /// Raw blocks downsampled (one per resolution).
    pub downsampled_blocks: AtomicU64,
    /// Blocks rewritten without series past their retention rule.
    pub retention_rule_rewrites: AtomicU64,
    /// Blocks uploaded to object storage.
    pub blocks_uploaded: AtomicU64,
    /// Uploads or bucket listings that failed (retried at the next maintenance).
    pub bucket_failures: AtomicU64,
}

/// A time-series database.
pub struct Db {
    pub(crate) opts: Options,
    pub head: Head,
    pool: Arc<LabelPool>,
    pub(crate) wal: Wal,
    /// Appends hold it shared; head truncation and WAL rotation hold it exclusively.
    gate: RwLock<()>,
    pub(crate) blocks: RwLock<Vec<Arc<Block>>>,
    /// Downsampled blocks (see [`crate::downsample`]), by resolution then time.
    pub(crate) downsampled: RwLock<Vec<Arc<Block>>>,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) blocks_root: Path,
    pub(crate) maintenance: tokio::sync::Mutex<()>,
    /// Woken when the head has grown past what a block cut would take.
    wake: tokio::sync::Notify,
    pub metrics: DbMetrics,
    replay: ReplayStats,
    closed: AtomicBool,
    /// Set while WAL writes fail (disk full, I/O error): the failed batch was rolled back
    /// out of the head, the server reports not ready, and the next write that succeeds
    /// clears it (ingestion resumes by itself once space is back).
    wal_failing: AtomicBool,
    /// Newest sample time of the blocks (i64::MIN without blocks): with the head's it
    /// anchors retention and the oldest sample an append accepts.
    blocks_max_t: std::sync::atomic::AtomicI64,
    /// Series from outside (remote read), merged into every read.
    external: parking_lot::RwLock<Option<std::sync::Arc<dyn crate::external::ExternalSource>>>,
    /// The newest exemplars of all series (see [`crate::exemplars`]).
    pub exemplars: ExemplarStore,
    /// Object storage, when configured (see [`crate::bucket::node`]).
    pub(crate) bucket: Option<crate::bucket::node::NodeBucket>,
    /// HA replica labels merged at read time.
    pub(crate) replicas: crate::dedup::ReplicaLabels,
}

/// What happened to a batch of exemplars.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExemplarReport {
    /// Stored (logged to the WAL and in the buffer).
    pub appended: u64,
    /// Same as the series' newest: not stored, not an error.
    pub duplicates: u64,
    /// Refused (out of order, label set too long, storage disabled).
    pub refused: u64,
    /// The first refusal, described for the client.
    pub first_error: Option<String>,
}

impl Db {
    /// Opens (or creates) the database in `opts.dir`: opens the blocks, then replays the WAL.
    pub async fn open(opts: Options) -> Result<Arc<Db>> {
        if opts.read_only {
            if !opts.dir.is_dir() {
                return Err(StorageError::io(
                    "open",
                    &opts.dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
                ));
            }
        } else {
            std::fs::create_dir_all(&opts.dir)
                .map_err(|e| StorageError::io("create", &opts.dir, e))?;
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&opts.dir)?.with_automatic_cleanup(true));
        let blocks_root = Path::from("blocks");
        let pool = Arc::new(LabelPool::default());
        let blocks = open_blocks(&store, &blocks_root, &pool, &opts).await?;
        let mut downsampled = Vec::new();
        for res in crate::downsample::RESOLUTIONS {
            downsampled
                .extend(open_blocks(&store, &crate::downsample::root(res), &pool, &opts).await?);
        }
        downsampled.sort_by_key(|x| (x.meta.resolution, x.meta.min_time, x.meta.max_time));
        let head = Head::new(pool.clone());
        let exemplars = ExemplarStore::new(opts.max_exemplars, opts.exemplar_ooo_window_ms);
        let wal_dir = opts.dir.join("wal");
        let block_range = opts.block_range_ms;
        let (wal, replay) = tokio::task::block_in_place(|| {
            Wal::open(&wal_dir, opts.read_only, |rec| {
                replay_record(&head, &exemplars, rec, block_range)
            })
        })?;
        head.recompute_range();
        if !replay.corruptions.is_empty() {
            tracing::warn!(corruptions = ?replay.corruptions, "WAL replay cut off corrupt records");
        }
        tracing::info!(
            records = replay.records,
            segments = replay.segments,
            series = head.num_series(),
            blocks = blocks.len(),
            "storage opened"
        );
        let blocks_max_t = blocks
            .iter()
            .map(|b| b.meta.max_time - 1)
            .max()
            .unwrap_or(i64::MIN);
        let bucket = match &opts.bucket {
            Some(o) => Some(crate::bucket::node::NodeBucket::open(o, &opts.dir)?),
            None => None,
        };
        let replicas = crate::dedup::ReplicaLabels::new(opts.replica_labels.clone());
        let db = Arc::new(Db {
            opts,
            head,
            pool,
            wal,
            gate: RwLock::new(()),
            blocks: RwLock::new(blocks),
            downsampled: RwLock::new(downsampled),
            store,
            blocks_root,
            maintenance: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            metrics: DbMetrics::default(),
            replay,
            closed: AtomicBool::new(false),
            wal_failing: AtomicBool::new(false),
            external: parking_lot::RwLock::new(None),
            blocks_max_t: std::sync::atomic::AtomicI64::new(blocks_max_t),
            exemplars,
            bucket,
            replicas,
        });
        // The node's history in the bucket is readable from the start; an unreachable
        // bucket is retried by maintenance.
        match tokio::time::timeout(std::time::Duration::from_secs(10), db.sync_bucket(true)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                db.metrics.bucket_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot list the bucket; retrying at the next maintenance");
            }
            Err(_) => {
                db.metrics.bucket_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "listing the bucket took over 10s; retrying at the next maintenance"
                );
            }
        }
        Ok(db)
    }

    /// Whether the last WAL write failed (disk full, I/O error): appends are refused with
    /// nothing stored until a write succeeds again.
    pub fn wal_failing(&self) -> bool {
        self.wal_failing.load(Ordering::Acquire)
    }

    /// While WAL writes fail, tries an empty record: a success clears the failing state, so
    /// readiness comes back with free space even when no append arrives (a not-ready
    /// server behind a load balancer gets none). Called by the maintenance loop.
    pub fn probe_wal(&self) {
        if !self.wal_failing() || self.opts.read_only {
            return;
        }
        let mut framed = Vec::new();
        wal::encode_samples(&mut framed, &[]);
        if self.wal.write(&framed).is_ok() && self.wal_failing.swap(false, Ordering::AcqRel) {
            tracing::warn!("WAL writes succeed again: ingestion resumed");
        }
    }

    /// Whether an fsync of the WAL ever failed. The kernel may have dropped the pages it
    /// could not write and a later fsync would not say so: the caller must not go on as
    /// if the data were durable (the binary exits, and the restart replays the WAL).
    pub fn wal_fsync_failed(&self) -> bool {
        self.wal.fsync_failed()
    }

    /// The time retention counts back from: the newest sample stored, but never later than
    /// the wall clock (a sample stamped in the future cannot make retention delete today's
    /// data).
    pub fn retention_reference(&self) -> i64 {
        let newest = self
            .blocks_max_t
            .load(Ordering::Acquire)
            .max(self.head.max_time());
        newest.min(now_ms())
    }

    /// Oldest timestamp an append accepts: what retention would not delete at once
    /// (`i64::MIN` without time retention).
    fn retention_floor(&self) -> i64 {
        match self.opts.retention_time_ms {
            Some(ret)
                if self.head.max_time() != i64::MIN
                    || self.blocks_max_t.load(Ordering::Acquire) != i64::MIN =>
            {
                self.retention_reference().saturating_sub(ret)
            }
            _ => i64::MIN,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// What WAL replay found at open.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    /// The open blocks, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// WAL fsyncs so far.
    /// Sets (or, with `None`, removes) the source of external series merged into reads.
    pub fn set_external(&self, source: Option<Arc<dyn crate::external::ExternalSource>>) {
        *self.external.write() = source;
    }

    /// The external source, if any.
    pub(crate) fn external(&self) -> Option<Arc<dyn crate::external::ExternalSource>> {
        self.external.read().clone()
    }

    /// The WAL's directory (read by remote-write queues through [`crate::wal::WalTail`]).
    pub fn wal_dir(&self) -> &std::path::Path {
        self.wal.dir()
    }

    /// Keeps WAL segments from `segment` on (the oldest one a remote-write queue still
    /// needs) when checkpoints delete old segments, within [`crate::wal::KEEP_MAX_BYTES`].
    pub fn keep_wal_from(&self, segment: Option<u64>) {
        self.wal.keep_from(segment);
    }

    pub fn wal_fsyncs(&self) -> u64 {
        self.wal.fsyncs.load(Ordering::Relaxed)
    }

    /// Group commit: fsyncs the WAL if anything was written since the last call.
    pub fn sync_wal(&self) -> Result<()> {
        self.wal.sync()
    }

    /// Whether [`Db::sync_wal`] has work: appends through [`Appender`] since the last sync,
    /// or (when `scraped_too`) scraped samples ([`Db::append_refs`]) too.
    pub fn wal_sync_due(&self, scraped_too: bool) -> bool {
        self.wal.sync_due(scraped_too)
    }

    /// Marks the samples of matching series in `[mint, maxt]` deleted: removed from the
    /// head at once (and logged), recorded as tombstones on blocks until compaction.
    pub async fn delete_series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<()> {
        // Not while a cut copies head data into a block the tombstones would miss.
        let _m = self.maintenance.lock().await;
        {
            // Exclusive: no append may slip between the head delete and its WAL record.
            let _g = self.gate.write();
            let mut logged = Vec::new();
            for s in self.head.select(matchers) {
                s.data.lock().delete(mint, maxt);
                logged.push((s.id, mint, maxt));
            }
            let mut framed = Vec::new();
            wal::encode_tombstones(&mut framed, &logged);
            self.wal.write(&framed)?;
        }
        // A downsampled window holding a deleted sample is deleted whole: the windows
        // `(end − res, end]` with an end in `[mint, maxt + res − 1]`.
        let ds = self.downsampled_blocks();
        for b in self.blocks().iter().chain(ds.iter()) {
            if !b.overlaps(mint, maxt) {
                continue;
            }
            let widen = (b.meta.resolution - 1).max(0);
            let t: Vec<Tombstone> = b
                .select(matchers)
                .iter()
                .map(|id| Tombstone {
                    series_id: id,
                    min_time: mint,
                    max_time: maxt.saturating_add(widen),
                })
                .collect();
            b.add_tombstones(t).await?;
        }
        // The bucket's copies, and the bucket blocks reads include.
        self.delete_in_bucket(matchers, mint, maxt).await
    }

    /// Resolves when appends have made the head big enough for a block cut.
    pub async fn wait_for_work(&self) {
        self.wake.notified().await
    }

    /// Cuts the head into blocks when it spans more than 1.5 block ranges, then compacts
    /// and applies retention. Runs one at a time.
    pub async fn maintain(&self) -> Result<()> {
        if self.opts.read_only {
            return Ok(());
        }
        let _m = self.maintenance.lock().await;
        let changes = || {
            let m = &self.metrics;
            m.blocks_cut.load(Ordering::Relaxed)
                + m.compactions.load(Ordering::Relaxed)
                + m.blocks_removed_by_retention.load(Ordering::Relaxed)
        };
        let before = changes();
        let range = self.opts.block_range_ms;
        loop {
            let (lo, hi) = (self.head.min_time(), self.head.max_time());
            if lo == i64::MAX || hi.saturating_sub(lo) <= range + range / 2 {
                break;
            }
            let boundary = (lo.div_euclid(range) + 1) * range;
            self.cut(boundary).await?;
        }
        self.compact().await?;
        self.downsample().await?;
        self.bucket_round().await;
        let removed = self
            .metrics
            .blocks_removed_by_retention
            .load(Ordering::Relaxed);
        self.apply_retention().await?;
        // The range retention removed locally is read from the bucket from now on.
        if self
            .metrics
            .blocks_removed_by_retention
            .load(Ordering::Relaxed)
            != removed
            && let Err(e) = self.sync_bucket(true).await
        {
            self.metrics.bucket_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "listing the bucket failed; retrying at the next maintenance");
        }
        // Label sets become garbage only when head series or blocks go away.
        if changes() != before {
            self.pool.gc();
        }
        Ok(())
    }

    /// The label-set pool shared by head and blocks.
    pub(crate) fn pool(&self) -> &LabelPool {
        &self.pool
    }

    /// Writes the whole head to blocks and empties the WAL; the graceful-stop path, so a
    /// stopped server's data directory holds only Parquet.
    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) || self.opts.read_only {
            return Ok(());
        }
        let _m = self.maintenance.lock().await;
        let range = self.opts.block_range_ms;
        while self.head.min_time() != i64::MAX {
            let boundary = (self.head.min_time().div_euclid(range) + 1).saturating_mul(range);
            self.cut(boundary).await?;
        }
        self.compact().await?;
        // Shipped before the node stops, within a bound (the rest goes at the next start).
        if self.bucket.is_some()
            && tokio::time::timeout(std::time::Duration::from_secs(60), self.bucket_round())
                .await
                .is_err()
        {
            tracing::warn!(
                "uploading blocks at shutdown took over 60s; the rest is uploaded at the next start"
            );
        }
        self.wal.sync()
    }

    /// Ships the blocks not uploaded yet and refreshes the bucket view; failures are
    /// logged and counted, and retried at the next maintenance.
    async fn bucket_round(&self) {
        if self.bucket.is_none() {
            return;
        }
        let shipped = match self.ship().await {
            Ok(n) => n,
            Err(e) => {
                self.metrics.bucket_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "uploading blocks to the bucket failed; retrying at the next maintenance");
                0
            }
        };
        if let Err(e) = self.sync_bucket(shipped > 0).await {
            self.metrics.bucket_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "listing the bucket failed; retrying at the next maintenance");
        }
    }

    /// Moves every head sample older than `boundary` (aligned to the block range) into
    /// one block, streaming series by series; then truncates the head and checkpoints the
    /// WAL. Samples older than the boundary that arrive meanwhile stay in the head.
    async fn cut(&self, boundary: i64) -> Result<()> {
        let mut series = self.head.all_series();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let copy = series.clone();
        // 1. Copy out and encode, series by series (appends go on meanwhile).
        let encoded = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut w = BlockWriter::new()?;
            let mut buf = Vec::new();
            let mut hbuf = Vec::new();
            for s in &copy {
                buf.clear();
                hbuf.clear();
                s.data.lock().begin_cut(boundary, &mut buf, &mut hbuf);
                w.add_series(s.labels.clone(), &buf, &hbuf)?;
            }
            w.finish(1, Vec::new())
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??;
        // 2. Publish the block.
        if let Some(enc) = encoded {
            let b = Block::write(
                self.store.clone(),
                &self.blocks_root,
                enc,
                &self.pool,
                Some(&self.opts.dir),
            )
            .await?;
            // On disk for real before the WAL that also holds these samples is truncated.
            tokio::task::block_in_place(|| b.fsync_local(&self.opts.dir))?;
            tracing::info!(block = %b.meta.ulid, min_time = b.meta.min_time, max_time = b.meta.max_time,
                samples = b.meta.stats.num_samples, "head cut into block");
            self.publish(vec![Arc::new(b)], &[]);
            self.metrics.blocks_cut.fetch_add(1, Ordering::Relaxed);
        }
        // 3. Drop from the head what the block holds; rotate the WAL.
        let upto = {
            let _g = self.gate.write();
            for s in &series {
                s.data.lock().finish_cut();
            }
            self.head.gc();
            self.wal.rotate()?
        };
        self.head.recompute_range();
        // 4. Checkpoint: the live head stands for every segment below `upto`.
        tokio::task::block_in_place(|| self.wal.checkpoint(upto, |w| self.snapshot_head(w)))?;
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the head as WAL records (series, then samples) to `out`.
    fn snapshot_head(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let series = self.head.all_series();
        let mut framed = Vec::new();
        // Records are cut by bytes, not by count: a series with huge label values must not
        // make a record the reader refuses (replay would stop there).
        let mut recs: Vec<(u32, Vec<(&str, &str)>)> = Vec::new();
        let mut bytes = 0usize;
        for s in &series {
            let labels: Vec<(&str, &str)> =
                s.labels.iter().map(|l| (&*l.name, &*l.value)).collect();
            let size: usize = labels.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
            if !recs.is_empty() && (bytes + size > wal::SERIES_RECORD_BYTES || recs.len() >= 1024) {
                framed.clear();
                wal::encode_series(&mut framed, &recs);
                wal::write_checked(out, &framed)?;
                recs.clear();
                bytes = 0;
            }
            bytes += size;
            recs.push((s.id, labels));
        }
        if !recs.is_empty() {
            framed.clear();
            wal::encode_series(&mut framed, &recs);
            wal::write_checked(out, &framed)?;
        }
        drop(recs);
        let mut batch: Vec<(u32, i64, f64)> = Vec::new();
        let mut flush = |batch: &mut Vec<(u32, i64, f64)>, out: &mut dyn std::io::Write| {
            framed.clear();
            wal::encode_samples(&mut framed, batch);
            batch.clear();
            out.write_all(&framed)
        };
        for s in &series {
            for (t, v) in s.data.lock().all_samples() {
                batch.push((s.id, t, v));
            }
            if batch.len() >= 16 * 1024 {
                flush(&mut batch, out)?;
            }
        }
        if !batch.is_empty() {
            flush(&mut batch, out)?;
        }
        let mut hbatch: Vec<(u32, i64, Arc<FloatHistogram>)> = Vec::new();
        let hflush = |b: &mut Vec<(u32, i64, Arc<FloatHistogram>)>,
                      out: &mut dyn std::io::Write| {
            let mut framed = Vec::new();
            wal::encode_histogram_records(&mut framed, b);
            b.clear();
            out.write_all(&framed)
        };
        for s in &series {
            let mut hs = Vec::new();
            s.data.lock().histograms(i64::MIN, i64::MAX, &mut hs);
            hbatch.extend(hs.into_iter().map(|(t, h)| (s.id, t, h)));
            if hbatch.len() >= wal::HISTOGRAMS_PER_RECORD {
                hflush(&mut hbatch, out)?;
            }
        }
        if !hbatch.is_empty() {
            hflush(&mut hbatch, out)?;
        }
        // The exemplar buffer, whole: it is not tied to the head's series.
        let ex = self.exemplars.all();
        let refs: Vec<(&Labels, &Exemplar)> = ex.iter().map(|(s, e)| (s, e)).collect();
        framed.clear();
        wal::encode_exemplars(&mut framed, &refs);
        out.write_all(&framed)
    }

    /// Replaces `old` blocks by `new` ones in the list (kept sorted by time).
    pub(crate) fn publish(&self, new: Vec<Arc<Block>>, old: &[Arc<Block>]) {
        let mut b = self.blocks.write();
        b.retain(|x| !old.iter().any(|o| Arc::ptr_eq(o, x)));
        b.extend(new);
        b.sort_by_key(|x| (x.meta.min_time, x.meta.max_time));
        let max = b
            .iter()
            .map(|x| x.meta.max_time - 1)
            .max()
            .unwrap_or(i64::MIN);
        self.blocks_max_t.fetch_max(max, Ordering::AcqRel);
    }

    async fn apply_retention(&self) -> Result<()> {
        self.apply_time_retention().await?;
        let Some(limit) = self.opts.retention_size_bytes else {
            return Ok(());
        };
        let blocks = self.blocks();
        let mut drop: Vec<Arc<Block>> = Vec::new();
        let mut total: u64 =
            blocks.iter().map(|b| b.size_bytes).sum::<u64>() + self.wal.disk_bytes();
        for b in &blocks {
            if total <= limit {
                break;
            }
            total = total.saturating_sub(b.size_bytes);
            drop.push(b.clone());
        }
        self.drop_blocks(&drop).await
    }

    /// Bytes of blocks + WAL.
    pub fn disk_bytes(&self) -> u64 {
        self.blocks().iter().map(|b| b.size_bytes).sum::<u64>()
            + self
                .downsampled_blocks()
                .iter()
                .map(|b| b.size_bytes)
                .sum::<u64>()
            + self.wal.disk_bytes()
    }
}

impl Appender for Db {
    fn append(&self, batch: &[SeriesSamples]) -> Result<AppendReport> {
        let mut w = self.begin_append()?;
        let _g = self.gate.read();
        for s in batch {
            if s.is_empty() {
                continue;
            }
            let series = self
                .head
                .get_or_create(&s.labels, Some(&self.wal))
                .inspect_err(|e| self.note_wal_failure(e))?;
            let d = series.data.lock();
            for &(t, v) in &s.samples {
                w.check(&d, &series.labels, t, v, series.id);
            }
            for (t, h) in &s.histograms {
                w.check_histogram(&d, &series.labels, *t, h, series.id);
            }
        }
        self.finish_append(w, false)
    }
}

thread_local! {
    /// Per-thread buffers of the write path (accepted samples, WAL frame), kept between
    /// appends: scrapes append a few thousand samples every few seconds, and fresh buffers
    /// each time meant fresh (zeroed, page-faulted) memory each time.
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Accepted samples and the WAL frame being built.
type Scratch = (Vec<(u32, i64, f64)>, Vec<u8>);

/// Buffers larger than this are not kept (a large remote-write request stays transient).
const SCRATCH_KEEP: usize = 1 << 16;

/// One append batch in progress: accepted samples for the WAL and the report.
struct AppendWork {
    report: AppendReport,
    accepted: Vec<(u32, i64, f64)>,
    accepted_histograms: Vec<(u32, i64, Arc<FloatHistogram>)>,
    /// Oldest and newest timestamps accepted: retention's floor and the wall clock plus
    /// the future tolerance.
    min_valid: i64,
    max_valid: i64,
    min_ooo: i64,
    range: i64,
    lo: i64,
    hi: i64,
}

impl AppendWork {
    /// Checks one sample against the time bounds and the series as it stands, without
    /// changing it: the head is changed only once the WAL holds the batch
    /// ([`Db::finish_append`]).
    fn check(&mut self, d: &SeriesData, labels: &Labels, t: i64, v: f64, id: u32) {
        if t > self.max_valid || t < self.min_valid {
            let report = &mut self.report;
            report.out_of_bounds += 1;
            if report.first_rejection.is_none() {
                report.first_rejection = Some(if t > self.max_valid {
                    format!(
                        "out of bounds: sample at {t} of {labels} is too far in the future (newest accepted: {})",
                        self.max_valid
                    )
                } else {
                    format!(
                        "out of bounds: sample at {t} of {labels} is older than the retention window (oldest accepted: {})",
                        self.min_valid
                    )
                });
            }
            return;
        }
        match d.check(t, v, self.min_ooo) {
            Ok(Appended::New) => {
                self.accepted.push((id, t, v));
                self.lo = self.lo.min(t);
                self.hi = self.hi.max(t);
            }
            Ok(Appended::Duplicate) => self.report.duplicates_ignored += 1,
            Err(r) => self.reject(r, labels, t),
        }
    }

    /// As [`AppendWork::check`], for a histogram sample.
    fn check_histogram(
        &mut self,
        d: &SeriesData,
        labels: &Labels,
        t: i64,
        h: &Arc<FloatHistogram>,
        id: u32,
    ) {
        if t > self.max_valid || t < self.min_valid {
            // Same wording as floats: one time check.
            return self.check(d, labels, t, 0.0, id);
        }
        match d.check_histogram(t, h, self.min_ooo) {
            Ok(Appended::New) => {
                self.accepted_histograms.push((id, t, h.clone()));
                self.lo = self.lo.min(t);
                self.hi = self.hi.max(t);
            }
            Ok(Appended::Duplicate) => self.report.duplicates_ignored += 1,
            Err(r) => self.reject(r, labels, t),
        }
    }

    fn reject(&mut self, r: Rejection, labels: &Labels, t: i64) {
        note_rejection(&mut self.report, r, labels, t);
    }
}

/// Counts a refused sample, describing the first for the client.
fn note_rejection(report: &mut AppendReport, r: Rejection, labels: &Labels, t: i64) {
    match r {
        Rejection::OutOfBounds => report.out_of_bounds += 1,
        Rejection::DuplicateTimestamp => report.duplicate_timestamp += 1,
    }
    if report.first_rejection.is_none() {
        report.first_rejection = Some(match r {
            Rejection::OutOfBounds => format!(
                "out of bounds: sample at {t} of {labels} is older than the out-of-order window"
            ),
            Rejection::DuplicateTimestamp => {
                format!("duplicate sample for timestamp {t} of {labels} with a different value")
            }
        });
    }
}

impl Db {
    fn begin_append(&self) -> Result<AppendWork> {
        if self.opts.read_only {
            return Err(StorageError::Task(
                "the data directory is open read-only".into(),
            ));
        }
        let max_t = self.head.max_time();
        let min_ooo = if max_t == i64::MIN {
            i64::MIN
        } else {
            max_t.saturating_sub(self.opts.ooo_window_ms)
        };
        let mut accepted = SCRATCH.with(|s| std::mem::take(&mut s.borrow_mut().0));
        accepted.clear();
        let max_valid = match self.opts.max_future_ms {
            Some(f) => now_ms().saturating_add(f),
            None => i64::MAX,
        };
        Ok(AppendWork {
            report: AppendReport::default(),
            accepted,
            accepted_histograms: Vec::new(),
            min_valid: self.retention_floor(),
            max_valid,
            min_ooo,
            range: self.opts.block_range_ms,
            lo: i64::MAX,
            hi: i64::MIN,
        })
    }

    /// Logs the accepted samples to the WAL and updates the head's range and counters.
    fn finish_append(&self, w: AppendWork, lazy: bool) -> Result<AppendReport> {
        let AppendWork {
            mut report,
            accepted,
            accepted_histograms,
            lo,
            hi,
            range,
            ..
        } = w;
        if !accepted.is_empty() || !accepted_histograms.is_empty() {
            let mut framed = SCRATCH.with(|s| std::mem::take(&mut s.borrow_mut().1));
            framed.clear();
            framed.reserve(accepted.len() * 14 + 16);
            // Records of bounded size: the reader's frame limit is never approached.
            for part in accepted.chunks(wal::SAMPLES_PER_RECORD) {
                wal::encode_samples(&mut framed, part);
            }
            wal::encode_histogram_records(&mut framed, &accepted_histograms);
            let written = if lazy {
                self.wal.write_lazy(&framed)
            } else {
                self.wal.write(&framed)
            };
            if framed.capacity() <= SCRATCH_KEEP * 16 {
                SCRATCH.with(|s| s.borrow_mut().1 = framed);
            }
            if let Err(e) = written {
                // Nothing was changed in the head: a refused batch is never visible.
                self.note_wal_failure(&e);
                return Err(e);
            }
            if self.wal_failing.swap(false, Ordering::AcqRel) {
                tracing::warn!("WAL writes succeed again: ingestion resumed");
            }
            // Floats first, as the WAL holds them (replay keeps the same winner).
            let floats = self.apply(&accepted, range, &mut report);
            report.histograms_appended = self.apply_histograms(&accepted_histograms, &mut report);
            report.appended = floats + report.histograms_appended;
            self.head.observe(lo, hi);
            let span = self.head.max_time().saturating_sub(self.head.min_time());
            if span > range + range / 2 {
                self.wake.notify_one();
            }
        }
        if accepted.capacity() <= SCRATCH_KEEP {
            SCRATCH.with(|s| s.borrow_mut().0 = accepted);
        }
        let st = &self.head.stats;
        st.samples_appended
            .fetch_add(report.appended, Ordering::Relaxed);
        st.out_of_bounds
            .fetch_add(report.out_of_bounds, Ordering::Relaxed);
        st.duplicate_timestamp
            .fetch_add(report.duplicate_timestamp, Ordering::Relaxed);
        st.duplicates_ignored
            .fetch_add(report.duplicates_ignored, Ordering::Relaxed);
        Ok(report)
    }

    /// The head id of the series with these labels, created (and logged) if new. With
    /// [`Db::append_refs`] it is the fast path of scraping: labels are resolved once per
    /// series, then every sample goes in by id.
    pub fn series_ref(&self, labels: &Labels) -> Result<u32> {
        let _g = self.gate.read();
        self.head
            .get_or_create(labels, Some(&self.wal))
            .inspect_err(|e| self.note_wal_failure(e))
            .map(|s| s.id)
    }

    /// Puts a logged batch into the head. Checked before it was logged, a sample can only
    /// meet a concurrent append of the same timestamp here: an identical one is a
    /// duplicate, a different value a conflict (both logged: replay keeps the first, as
    /// the head does). Age is not checked again: the WAL holds the sample, so replay would
    /// bring it back anyway.
    fn apply(&self, accepted: &[(u32, i64, f64)], range: i64, report: &mut AppendReport) -> u64 {
        let mut applied = 0;
        let lookup = self.head.lookup();
        for run in accepted.chunk_by(|a, b| a.0 == b.0) {
            let Some(series) = lookup.get(run[0].0) else {
                continue;
            };
            let mut d = series.data.lock();
            for &(_, t, v) in run {
                match d.append(t, v, i64::MIN, range) {
                    Ok(Appended::New) => applied += 1,
                    Ok(Appended::Duplicate) => report.duplicates_ignored += 1,
                    Err(r) => note_rejection(report, r, &series.labels, t),
                }
            }
        }
        applied
    }

    /// As [`Db::apply`], for histogram samples.
    fn apply_histograms(
        &self,
        accepted: &[(u32, i64, Arc<FloatHistogram>)],
        report: &mut AppendReport,
    ) -> u64 {
        let mut applied = 0;
        let lookup = self.head.lookup();
        for (id, t, h) in accepted {
            let Some(series) = lookup.get(*id) else {
                continue;
            };
            match series.data.lock().append_histogram(
                *t,
                h.clone(),
                i64::MIN,
                self.opts.block_range_ms,
            ) {
                Ok(Appended::New) => applied += 1,
                Ok(Appended::Duplicate) => report.duplicates_ignored += 1,
                Err(r) => note_rejection(report, r, &series.labels, *t),
            }
        }
        applied
    }

    fn note_wal_failure(&self, e: &StorageError) {
        if !self.wal_failing.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, "WAL write failed: the batch was refused and nothing of it stored; appends are retried as they come");
        }
    }

    /// Appends samples by head id (from [`Db::series_ref`]). They are in the WAL (the OS)
    /// when this returns and fsynced when [`Db::wal_sync_due`]`(true)` next says so. Ids whose series no longer
    /// exists (removed by head garbage collection meanwhile) are returned, in input order,
    /// with nothing appended for them: the caller resolves their labels again.
    pub fn append_refs(&self, samples: &[(u32, i64, f64)]) -> Result<(AppendReport, Vec<u32>)> {
        let mut w = self.begin_append()?;
        w.accepted.reserve(samples.len());
        let mut unknown = Vec::new();
        let _g = self.gate.read();
        {
            let lookup = self.head.lookup();
            for &(id, t, v) in samples {
                match lookup.get(id) {
                    Some(series) => {
                        let d = series.data.lock();
                        w.check(&d, &series.labels, t, v, id);
                    }
                    None => unknown.push(id),
                }
            }
        }
        Ok((self.finish_append(w, true)?, unknown))
    }
}

impl Db {
    /// As [`Db::append_exemplars`], for series given by head id (the scrape path). Ids
    /// whose series is gone are skipped.
    pub fn append_exemplar_refs(&self, batch: &[(u32, Exemplar)]) -> Result<ExemplarReport> {
        let with_labels: Vec<(Labels, Exemplar)> = {
            let lookup = self.head.lookup();
            batch
                .iter()
                .filter_map(|(id, e)| lookup.get(*id).map(|s| (s.labels.clone(), e.clone())))
                .collect()
        };
        self.append_exemplars(&with_labels)
    }

    /// Stores exemplars of series (Prometheus's `AppendExemplar`): each is checked against
    /// the buffer's rules, the accepted ones are logged to the WAL, then put in the buffer.
    /// Refusals are counted, not errors: the samples they came with are stored regardless.
    pub fn append_exemplars(&self, batch: &[(Labels, Exemplar)]) -> Result<ExemplarReport> {
        let mut report = ExemplarReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        if self.opts.read_only {
            return Err(StorageError::Task(
                "the data directory is open read-only".into(),
            ));
        }
        let refuse = |report: &mut ExemplarReport, e: ExemplarError| {
            report.refused += 1;
            if report.first_error.is_none() {
                report.first_error = Some(e.to_string());
            }
        };
        let mut accepted: Vec<(&Labels, &Exemplar)> = Vec::with_capacity(batch.len());
        for (series, e) in batch {
            match self.exemplars.validate(series, e) {
                Ok(true) => accepted.push((series, e)),
                Ok(false) => report.duplicates += 1,
                Err(err) => refuse(&mut report, err),
            }
        }
        if accepted.is_empty() {
            return Ok(report);
        }
        let mut framed = Vec::new();
        wal::encode_exemplars(&mut framed, &accepted);
        {
            let _g = self.gate.read();
            self.wal
                .write_lazy(&framed)
                .inspect_err(|e| self.note_wal_failure(e))?;
        }
        for (series, e) in accepted {
            match self.exemplars.add(series, e.clone()) {
                Ok(true) => report.appended += 1,
                Ok(false) => report.duplicates += 1,
                Err(err) => refuse(&mut report, err),
            }
        }
        Ok(report)
    }
}

/// The wall clock in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn replay_record(head: &Head, exemplars: &ExemplarStore, rec: Record, block_range: i64) {
    match rec {
        Record::Exemplars(v) => {
            for e in v {
                // Refusals (a smaller buffer now, out of order) are the buffer's rules.
                let _ = exemplars.add(
                    &Labels::from_pairs(e.series),
                    Exemplar {
                        labels: Labels::from_pairs(e.labels),
                        value: e.value,
                        ts: e.ts,
                        has_ts: e.has_ts,
                    },
                );
            }
        }
        Record::Series(v) => {
            for (id, pairs) in v {
                head.create_with_id(id, &Labels::from_pairs(pairs));
            }
        }
        Record::Samples(v) => {
            let mut lo = i64::MAX;
            let mut hi = i64::MIN;
            for (id, t, val) in v {
                if let Some(s) = head.series(id) {
                    // Replay accepts any age: these samples were acknowledged.
                    if s.data.lock().append(t, val, i64::MIN, block_range).is_ok() {
                        lo = lo.min(t);
                        hi = hi.max(t);
                    }
                }
            }
            if lo <= hi {
                head.observe(lo, hi);
            }
        }
        Record::Histograms(v) => {
            let mut lo = i64::MAX;
            let mut hi = i64::MIN;
            for (id, t, h) in v {
                if let Some(s) = head.series(id)
                    && s.data
                        .lock()
                        .append_histogram(t, h, i64::MIN, block_range)
                        .is_ok()
                {
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
            }
            if lo <= hi {
                head.observe(lo, hi);
            }
        }
        Record::Tombstones(v) => {
            for (id, a, b) in v {
                if let Some(s) = head.series(id) {
                    s.data.lock().delete(a, b);
                }
            }
        }
    }
}

async fn open_blocks(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pool: &LabelPool,
    opts: &Options,
) -> Result<Vec<Arc<Block>>> {
    let listing = match store.list_with_delimiter(Some(root)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut blocks = Vec::new();
    for dir in listing.common_prefixes {
        match Block::open(store.clone(), dir.clone(), pool, Some(&opts.dir)).await {
            Ok(b) => blocks.push(Arc::new(b)),
            // Read-only beside a server, a block without meta.json may be one being written.
            Err(StorageError::ObjectStore(object_store::Error::NotFound { .. }))
                if opts.read_only => {}
            Err(StorageError::ObjectStore(object_store::Error::NotFound { .. })) => {
                tracing::warn!(block = %dir, "removing unfinished block (no meta.json)");
                let files = store.list_with_delimiter(Some(&dir)).await?;
                for f in files.objects {
                    store.delete(&f.location).await?;
                }
            }
            Err(e) => {
                tracing::error!(block = %dir, error = %e, "cannot open block; leaving it in place and skipping it");
            }
        }
    }
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    Ok(blocks)
}
