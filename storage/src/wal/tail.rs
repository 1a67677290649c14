//! Following the WAL as it is written, for the remote-write queues (Prometheus's WAL
//! watcher): a [`WalTail`] reads the records after a [`WalPosition`], segment by segment,
//! stopping before a record that is still being written, and learns the labels of every
//! series from the checkpoint and the segments before its start. Segments a tail still
//! needs are kept by the writer ([`crate::Db::keep_wal_from`]) up to a bound.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{Record, list, read_file, record};
use crate::error::{Result, StorageError};

/// A place in the WAL: a segment and a byte offset in it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct WalPosition {
    /// Segment number.
    pub segment: u64,
    /// Bytes of the segment before the position.
    pub offset: u64,
}

/// Reads a data directory's WAL from a position on, as it grows.
#[derive(Debug)]
pub struct WalTail {
    dir: PathBuf,
    pos: WalPosition,
    /// Records skipped because their segments were gone (the tail fell behind the bound).
    pub skipped_segments: u64,
}

/// What [`WalTail::read`] found.
#[derive(Debug, Default)]
pub struct TailRead {
    /// The records, in order.
    pub records: Vec<Record>,
    /// The position after the last record read.
    pub end: WalPosition,
    /// The records start with the series of a checkpoint the tail passed: series not in it
    /// are gone (a reader may forget them).
    pub checkpoint: bool,
}

impl WalTail {
    /// The end of the WAL in `dir` now: where a tail that sends only new samples starts.
    pub fn end(dir: &Path) -> Result<WalPosition> {
        let (segs, cp) = list(dir)?;
        Ok(match segs.last() {
            Some((n, p)) => WalPosition {
                segment: *n,
                offset: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            },
            None => WalPosition {
                segment: cp.map_or(0, |c| c.0),
                offset: 0,
            },
        })
    }

    /// A tail of the WAL in `dir` starting at `start`, and the series records of everything
    /// before it (the checkpoint's and the segments' before `start`), for the labels of the
    /// series the records after `start` refer to.
    ///
    /// A checkpoint stands for the segments before its number: its series records are
    /// applied when the tail reaches that number (or at once, when the tail starts after
    /// it), so that segments kept for the tail from before a checkpoint are read with the
    /// labels they were written with.
    pub fn open(dir: &Path, start: WalPosition) -> Result<(WalTail, Vec<Record>)> {
        let (segs, cp) = list(dir)?;
        let mut series = Vec::new();
        let from = match &cp {
            Some((c, p)) if *c <= start.segment => {
                series.extend(series_of(p)?);
                *c
            }
            _ => 0,
        };
        for (n, p) in segs
            .iter()
            .filter(|(n, _)| *n >= from && *n <= start.segment)
        {
            let recs = if *n < start.segment {
                read_file(p)?.0
            } else {
                read_prefix(p, start.offset)?
            };
            series.extend(recs.into_iter().filter(|r| matches!(r, Record::Series(_))));
        }
        Ok((
            WalTail {
                dir: dir.to_path_buf(),
                pos: start,
                skipped_segments: 0,
            },
            series,
        ))
    }

    /// Where the next read starts.
    pub fn position(&self) -> WalPosition {
        self.pos
    }

    /// Reads whole records after the position, about `max_bytes` of them: to the end of the
    /// current segment, then on into the next one once it exists. A record still being
    /// written (a torn tail) is left for a later read. A segment deleted before it was read
    /// (the tail fell behind) is skipped and counted.
    pub fn read(&mut self, max_bytes: usize) -> Result<TailRead> {
        let (segs, cp) = list(&self.dir)?;
        let mut out = TailRead {
            records: Vec::new(),
            end: self.pos,
            checkpoint: false,
        };
        let Some(idx) = segs.iter().position(|(n, _)| *n >= self.pos.segment) else {
            return Ok(out);
        };
        let (n, path) = &segs[idx];
        if *n > self.pos.segment {
            self.skipped_segments += n - self.pos.segment;
            out.checkpoint = self.enter(self.pos.segment, *n, &cp, &mut out.records)?;
        }
        let (records, used) = read_from(path, self.pos.offset, max_bytes.max(record::HEADER))?;
        self.pos.offset += used;
        out.records.extend(records);
        if used == 0
            && let Some((next, _)) = segs.get(idx + 1)
        {
            // The writer moved on: this segment is complete (anything left in it is a
            // torn tail the writer abandoned).
            // Only at the start of a read: the checkpoint's series come first.
            if out.records.is_empty() {
                // Segments between the two were deleted (the writer keeps none past a
                // hole, but a tail must not pass one silently).
                self.skipped_segments += next - n - 1;
                out.checkpoint = self.enter(*n, *next, &cp, &mut out.records)?;
            }
        }
        out.end = self.pos;
        Ok(out)
    }

    /// Moves from segment `from` to the start of segment `to`, applying the series of a
    /// checkpoint taken in between; whether there was one.
    fn enter(
        &mut self,
        from: u64,
        to: u64,
        cp: &Option<(u64, PathBuf)>,
        out: &mut Vec<Record>,
    ) -> Result<bool> {
        let mut crossed = false;
        if let Some((c, p)) = cp
            && from < *c
            && *c <= to
        {
            out.extend(series_of(p)?);
            crossed = true;
        }
        self.pos = WalPosition {
            segment: to,
            offset: 0,
        };
        Ok(crossed)
    }
}

/// The series records of a checkpoint.
fn series_of(path: &Path) -> Result<Vec<Record>> {
    let (recs, _) = read_file(path)?;
    Ok(recs
        .into_iter()
        .filter(|r| matches!(r, Record::Series(_)))
        .collect())
}

/// The records of `path` before `offset`.
fn read_prefix(path: &Path, offset: u64) -> Result<Vec<Record>> {
    let (recs, _) = read_from(path, 0, offset as usize)?;
    Ok(recs)
}

/// The whole records of `path` starting at `offset`, reading about `max_bytes` (more if a
/// single record is larger), and the bytes they took.
fn read_from(path: &Path, offset: u64, max_bytes: usize) -> Result<(Vec<Record>, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(StorageError::io("open", path, e)),
    };
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| StorageError::io("seek", path, e))?;
    let mut buf = Vec::new();
    (&mut f)
        .take(max_bytes as u64)
        .read_to_end(&mut buf)
        .map_err(|e| StorageError::io("read", path, e))?;
    let mut recs = Vec::new();
    let mut pos = 0usize;
    loop {
        if buf.len() - pos < record::HEADER {
            break;
        }
        let h = &buf[pos..pos + record::HEADER];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len == 0 || len > record::MAX_PAYLOAD {
            break;
        }
        let start = pos + record::HEADER;
        if buf.len() < start + len {
            if pos == 0 {
                // One record larger than the read: read it whole.
                let mut rest = Vec::new();
                (&mut f)
                    .take((start + len - buf.len()) as u64)
                    .read_to_end(&mut rest)
                    .map_err(|e| StorageError::io("read", path, e))?;
                buf.extend_from_slice(&rest);
                if buf.len() < start + len {
                    break;
                }
            } else {
                break;
            }
        }
        let payload = &buf[start..start + len];
        if crc32c::crc32c(payload) != crc {
            // Being written, or corrupt: the writer's replay decides; stop here.
            break;
        }
        match record::decode(payload) {
            Ok(r) => recs.push(r),
            Err(_) => break,
        }
        pos = start + len;
    }
    Ok((recs, pos as u64))
}
