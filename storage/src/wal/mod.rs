//! Write-ahead log: numbered segment files of CRC-framed records, plus a checkpoint that
//! stands for every segment before it. Appends are written to the OS before they are
//! acknowledged (a `kill -9` loses nothing acknowledged); fsync runs as group commit on an
//! interval. Records written with [`Wal::write_lazy`] (scraped samples: a scrape missed in
//! a crash is lost either way, and Prometheus never fsyncs them) do not by themselves
//! make the next group commit due; the caller syncs them on a longer interval. Replay truncates a torn or corrupt tail with a warning and never refuses to
//! start.

mod record;
mod tail;

pub(crate) use record::{
    HISTOGRAMS_PER_RECORD, SAMPLES_PER_RECORD, SERIES_RECORD_BYTES, encode_exemplars,
    encode_histogram_records, encode_samples, encode_series, encode_tombstones,
};
pub use record::{Record, WalExemplar};
pub use tail::{TailRead, WalPosition, WalTail};

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Result, StorageError};

/// A segment is closed and a new one started past this size.
const SEGMENT_SIZE: u64 = 128 << 20;

/// What replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    pub records: u64,
    pub segments: u64,
    /// Human-readable descriptions of corruption that was cut off.
    pub corruptions: Vec<String>,
}

struct Writer {
    file: File,
    segment: u64,
    size: u64,
    /// A failed write left bytes that could not be cut off: write on in a new segment.
    broken: bool,
}

/// The WAL of one data directory.
pub struct Wal {
    dir: PathBuf,
    /// `None` when opened read-only.
    writer: Mutex<Option<Writer>>,
    dirty: AtomicBool,
    /// Something written since the last sync wants the next group commit.
    urgent: AtomicBool,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    /// Set for good by the first failed fsync (see [`Wal::fsync_failed`]).
    fsync_failed: AtomicBool,
    /// The oldest segment a reader still needs ([`Wal::keep_from`]); `u64::MAX`: none.
    keep_from: AtomicU64,
    /// Most bytes of checkpointed segments kept for readers ([`KEEP_MAX_BYTES`]).
    keep_max_bytes: AtomicU64,
}

/// Most bytes of old segments kept for readers that fell behind: past it the oldest go,
/// and the readers skip them.
pub const KEEP_MAX_BYTES: u64 = 1 << 30;

fn segment_name(n: u64) -> String {
    format!("{n:08}")
}

fn checkpoint_name(n: u64) -> String {
    format!("checkpoint.{n:08}")
}

/// Segments `(number, path)` ascending, and the newest checkpoint.
type Listing = (Vec<(u64, PathBuf)>, Option<(u64, PathBuf)>);

/// Where a read stopped on a bad frame: offset and reason.
type BadTail = Option<(u64, String)>;

/// Lists `(number, path)` of segments, ascending, and the newest checkpoint.
fn list(dir: &Path) -> Result<Listing> {
    let mut segs = Vec::new();
    let mut cp: Option<(u64, PathBuf)> = None;
    let rd = fs::read_dir(dir).map_err(|e| StorageError::io("read dir", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io("read dir", dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Ok(n) = name.parse::<u64>() {
            segs.push((n, ent.path()));
        } else if let Some(n) = name
            .strip_prefix("checkpoint.")
            .and_then(|s| s.parse::<u64>().ok())
            && cp.as_ref().is_none_or(|c| c.0 < n)
        {
            cp = Some((n, ent.path()));
        }
    }
    segs.sort();
    Ok((segs, cp))
}

/// Reads the records of one file; a bad frame stops the read. Returns the records, the
/// offset of the first bad byte (if any) and why.
fn read_file(path: &Path) -> Result<(Vec<Record>, BadTail)> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| StorageError::io("read", path, e))?;
    let mut recs = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let bad = |why: &str| Some((pos as u64, why.to_string()));
        if buf.len() - pos < record::HEADER {
            return Ok((recs, bad("torn record header")));
        }
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        if len == 0 || len > record::MAX_PAYLOAD {
            return Ok((recs, bad("bad record length")));
        }
        let start = pos + record::HEADER;
        let Some(payload) = buf.get(start..start + len) else {
            return Ok((recs, bad("torn record")));
        };
        if crc32c::crc32c(payload) != crc {
            return Ok((recs, bad("checksum mismatch")));
        }
        match record::decode(payload) {
            Ok(r) => recs.push(r),
            Err(e) => return Ok((recs, bad(&e))),
        }
        pos = start + len;
    }
    Ok((recs, None))
}

/// Writes framed records of a checkpoint, refusing a frame the reader would refuse.
pub(crate) fn write_checked(out: &mut dyn Write, framed: &[u8]) -> std::io::Result<()> {
    record::check_frames(framed).map_err(std::io::Error::other)?;
    out.write_all(framed)
}

fn read_only_err() -> StorageError {
    StorageError::Task("the data directory is open read-only".into())
}

impl Wal {
    /// Opens the WAL in `dir`, replaying checkpoint and segments through `apply` in order.
    /// A corrupt tail is truncated (and reported in the stats); writing then continues in a
    /// fresh segment. `read_only` (another process owns the WAL) changes nothing on disk: a
    /// torn tail is only skipped (it may be a record being written) and no segment is made.
    pub fn open(
        dir: &Path,
        read_only: bool,
        mut apply: impl FnMut(Record),
    ) -> Result<(Wal, ReplayStats)> {
        if !read_only {
            fs::create_dir_all(dir).map_err(|e| StorageError::io("create", dir, e))?;
        } else if !dir.is_dir() {
            return Ok((Wal::new(dir, None), ReplayStats::default()));
        }
        let (segs, cp) = list(dir)?;
        let mut stats = ReplayStats::default();
        let first = cp.as_ref().map_or(0, |c| c.0);
        if let Some((_, path)) = &cp {
            let (recs, bad) = read_file(path)?;
            if let Some((off, why)) = bad {
                stats
                    .corruptions
                    .push(format!("{}: {why} at offset {off}", path.display()));
            }
            stats.records += recs.len() as u64;
            recs.into_iter().for_each(&mut apply);
        }
        let mut last = first;
        for (n, path) in segs.iter().filter(|(n, _)| *n >= first) {
            let (recs, bad) = read_file(path)?;
            stats.segments += 1;
            stats.records += recs.len() as u64;
            recs.into_iter().for_each(&mut apply);
            if let Some((off, why)) = bad
                && !read_only
            {
                tracing::warn!(segment = %path.display(), offset = off, reason = %why,
                    "corrupt WAL tail: truncating it and keeping the records before it");
                stats
                    .corruptions
                    .push(format!("{}: {why} at offset {off}", path.display()));
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| StorageError::io("open", path, e))?;
                f.set_len(off)
                    .map_err(|e| StorageError::io("truncate", path, e))?;
                f.sync_all()
                    .map_err(|e| StorageError::io("fsync", path, e))?;
            }
            last = last.max(*n);
        }
        let next = if segs.is_empty() { first } else { last + 1 };
        let w = if read_only {
            None
        } else {
            Some(Self::create_segment(dir, next)?)
        };
        Ok((Wal::new(dir, w), stats))
    }

    fn new(dir: &Path, writer: Option<Writer>) -> Wal {
        Wal {
            dir: dir.to_path_buf(),
            writer: Mutex::new(writer),
            dirty: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            fsync_failed: AtomicBool::new(false),
            keep_from: AtomicU64::new(u64::MAX),
            keep_max_bytes: AtomicU64::new(KEEP_MAX_BYTES),
        }
    }

    fn create_segment(dir: &Path, n: u64) -> Result<Writer> {
        let path = dir.join(segment_name(n));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        let size = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?
            .len();
        Ok(Writer {
            file,
            segment: n,
            size,
            broken: false,
        })
    }

    /// Writes already-framed records to the current segment (one `write` call: the bytes
    /// are in the OS when this returns); the next group commit fsyncs them.
    pub(crate) fn write(&self, framed: &[u8]) -> Result<()> {
        self.write_inner(framed, true)
    }

    /// As [`Wal::write`], but the records only ride along with the next fsync, whenever
    /// that comes (see [`Wal::sync_due`]).
    pub(crate) fn write_lazy(&self, framed: &[u8]) -> Result<()> {
        self.write_inner(framed, false)
    }

    fn write_inner(&self, framed: &[u8], urgent: bool) -> Result<()> {
        if framed.is_empty() {
            return Ok(());
        }
        record::check_frames(framed).map_err(|reason| StorageError::WalCorrupt {
            path: self.dir.clone(),
            offset: 0,
            reason: format!("refusing to write: {reason}"),
        })?;
        let mut guard = self.writer.lock();
        let w = guard.as_mut().ok_or_else(read_only_err)?;
        if w.size > SEGMENT_SIZE || w.broken {
            self.rotate_locked(w)?;
        }
        let seg = w.segment;
        if let Err(e) = w.file.write_all(framed) {
            // Cut a partial frame off so later records are not stranded behind it; if the
            // cut fails too, the next write starts a fresh segment (replay stops at the
            // torn frame of this one and goes on with the next).
            let size = w.size;
            if w.file.set_len(size).is_err() {
                w.broken = true;
            }
            return Err(StorageError::io(
                "write",
                self.dir.join(segment_name(seg)),
                e,
            ));
        }
        w.size += framed.len() as u64;
        self.dirty.store(true, Ordering::Release);
        if urgent {
            self.urgent.store(true, Ordering::Release);
        }
        self.bytes_written
            .fetch_add(framed.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn rotate_locked(&self, w: &mut Writer) -> Result<()> {
        let seg = w.segment;
        sync_data(&w.file).map_err(|e| {
            self.fsync_failed.store(true, Ordering::Release);
            StorageError::io("fsync", self.dir.join(segment_name(seg)), e)
        })?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        *w = Self::create_segment(&self.dir, seg + 1)?;
        Ok(())
    }

    /// Whether an fsync of a segment ever failed: the data written before it may be gone
    /// from the page cache without a later fsync saying so ("fsyncgate"). Sticky.
    pub fn fsync_failed(&self) -> bool {
        self.fsync_failed.load(Ordering::Acquire)
    }

    /// Whether a sync has work: records written with [`Wal::write`] since the last one, or
    /// (when `lazy_too`) any records at all.
    pub fn sync_due(&self, lazy_too: bool) -> bool {
        self.urgent.load(Ordering::Acquire) || (lazy_too && self.dirty.load(Ordering::Acquire))
    }

    /// Flushes written records to disk if anything was written since the last sync.
    pub fn sync(&self) -> Result<()> {
        self.urgent.store(false, Ordering::Release);
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let guard = self.writer.lock();
        let Some(w) = guard.as_ref() else {
            return Ok(());
        };
        let file = w.file.try_clone();
        let seg = w.segment;
        drop(guard);
        let path = self.dir.join(segment_name(seg));
        file.and_then(|f| sync_data(&f)).map_err(|e| {
            self.fsync_failed.store(true, Ordering::Release);
            StorageError::io("fsync", path, e)
        })?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Starts a new segment and returns its number: every record written before this call
    /// is in a lower-numbered segment.
    pub(crate) fn rotate(&self) -> Result<u64> {
        let mut guard = self.writer.lock();
        let w = guard.as_mut().ok_or_else(read_only_err)?;
        self.rotate_locked(w)?;
        Ok(w.segment)
    }

    /// Writes (through `write`) the checkpoint standing for all segments below `upto`, then
    /// deletes those segments and older checkpoints.
    pub(crate) fn checkpoint(
        &self,
        upto: u64,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let tmp = self.dir.join(format!("{}.tmp", checkpoint_name(upto)));
        let dst = self.dir.join(checkpoint_name(upto));
        let f = File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| StorageError::io("write", &tmp, e))?;
        w.get_ref()
            .sync_all()
            .map_err(|e| StorageError::io("fsync", &tmp, e))?;
        fs::rename(&tmp, &dst).map_err(|e| StorageError::io("rename", &tmp, e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let (segs, _) = list(&self.dir)?;
        // Segments a reader still needs stay, newest first, within the bound; from the
        // first that does not fit on, all go (a reader skips one run of deleted segments,
        // never a hole between kept ones).
        let keep_from = self.keep_from.load(Ordering::Acquire);
        let max = self.keep_max_bytes.load(Ordering::Relaxed);
        let mut kept = 0u64;
        let mut keeping = true;
        for (n, p) in segs.into_iter().rev() {
            if n >= upto {
                continue;
            }
            let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            keeping &= n >= keep_from && kept.saturating_add(size) <= max;
            if keeping {
                kept += size;
                continue;
            }
            fs::remove_file(&p).map_err(|e| StorageError::io("remove", &p, e))?;
        }
        let rd = fs::read_dir(&self.dir).map_err(|e| StorageError::io("read dir", &self.dir, e))?;
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let old = name
                .strip_prefix("checkpoint.")
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|n| n < upto);
            if old || (name.ends_with(".tmp") && ent.path() != tmp) {
                let _ = fs::remove_file(ent.path());
            }
        }
        Ok(())
    }

    /// Keeps segments from `segment` on when checkpoints delete older ones (a reader still
    /// needs them), up to [`KEEP_MAX_BYTES`]; `None` releases them.
    pub fn keep_from(&self, segment: Option<u64>) {
        self.keep_from
            .store(segment.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Sets the bound of [`Wal::keep_from`] (tests: [`KEEP_MAX_BYTES`] is too large to
    /// reach quickly).
    #[cfg(test)]
    pub(crate) fn set_keep_max_bytes(&self, bytes: u64) {
        self.keep_max_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The directory of the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes of the WAL directory.
    pub fn disk_bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// `fdatasync` of a segment. Tests make it fail (the kernel's EIO after a write-back
/// error) with `FAIL_SYNC`.
fn sync_data(f: &File) -> std::io::Result<()> {
    #[cfg(test)]
    if FAIL_SYNC.load(Ordering::Relaxed) {
        return Err(std::io::Error::from_raw_os_error(5));
    }
    f.sync_data()
}

/// Makes every segment fsync fail while set (tests only; nextest runs each test alone).
#[cfg(test)]
pub(crate) static FAIL_SYNC: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests;
