//! WAL record encoding: series, sample batches and tombstones, framed as
//! `[len u32 LE][crc32c u32 LE][payload]` with the record type as the payload's first byte.

use std::sync::Arc;

use strata_vocab::FloatHistogram;

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series: head id and label pairs.
    Series(Vec<(u32, Vec<(String, String)>)>),
    /// Samples: (series id, timestamp ms, value).
    Samples(Vec<(u32, i64, f64)>),
    /// Deleted intervals: (series id, mint, maxt), inclusive.
    Tombstones(Vec<(u32, i64, i64)>),
    /// Native histogram samples: (series id, timestamp ms, histogram).
    Histograms(Vec<(u32, i64, Arc<FloatHistogram>)>),
    /// Exemplars, self-contained (series labels included: the exemplar buffer outlives
    /// head series, and checkpoints rewrite it whole).
    Exemplars(Vec<WalExemplar>),
}

/// One exemplar as the WAL holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct WalExemplar {
    pub series: Vec<(String, String)>,
    pub ts: i64,
    pub value: f64,
    pub has_ts: bool,
    pub labels: Vec<(String, String)>,
}

const T_SERIES: u8 = 1;
const T_SAMPLES: u8 = 2;
const T_TOMBSTONES: u8 = 3;
const T_HISTOGRAMS: u8 = 4;
const T_EXEMPLARS: u8 = 5;

/// Bytes of the frame header.
pub(crate) const HEADER: usize = 8;
/// Largest payload accepted when reading (guards against a corrupt length). The writer
/// refuses any frame past it ([`check_frames`]), so replay never meets a valid record it
/// would refuse.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
/// Series records are cut past this many label bytes (one huge series stays whole).
pub(crate) const SERIES_RECORD_BYTES: usize = 1 << 20;
/// Sample records hold at most this many samples (at most ~1.2 MB).
pub(crate) const SAMPLES_PER_RECORD: usize = 64 * 1024;
/// Histogram records hold at most this many samples (a histogram's binary form is bounded
/// by the ingest paths' bucket limits, so a record stays far below the frame limit).
pub(crate) const HISTOGRAMS_PER_RECORD: usize = 1024;

/// Checks framed records before they are written: every frame whole and within the
/// reader's limit.
pub(crate) fn check_frames(mut b: &[u8]) -> Result<(), String> {
    while !b.is_empty() {
        let Some(h) = b.get(..HEADER) else {
            return Err("torn frame header".into());
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len == 0 || len > MAX_PAYLOAD {
            return Err(format!(
                "a record of {len} bytes is past the WAL's limit of {MAX_PAYLOAD} bytes"
            ));
        }
        b = b.get(HEADER + len..).ok_or("torn frame")?;
    }
    Ok(())
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint overflow".into())
    }

    fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.uvarint()?).map_err(|_| "series id out of range".to_string())
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.uvarint()? as usize;
        if n > self.b.len() {
            return Err("length exceeds record".into());
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or("truncated string")?;
        self.pos += n;
        String::from_utf8(s.to_vec()).map_err(|_| "label is not UTF-8".to_string())
    }

    fn f64(&mut self) -> Result<f64, String> {
        let s = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or("truncated value")?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(f64::from_le_bytes(a))
    }
}

/// Appends the framed encoding of a series record.
pub(crate) fn encode_series(out: &mut Vec<u8>, series: &[(u32, Vec<(&str, &str)>)]) {
    frame(out, |p| {
        p.push(T_SERIES);
        put_uvarint(p, series.len() as u64);
        for (id, labels) in series {
            put_uvarint(p, *id as u64);
            put_uvarint(p, labels.len() as u64);
            for (n, v) in labels {
                put_str(p, n);
                put_str(p, v);
            }
        }
    });
}

/// Appends the framed encoding of a sample batch.
pub(crate) fn encode_samples(out: &mut Vec<u8>, samples: &[(u32, i64, f64)]) {
    frame(out, |p| {
        p.push(T_SAMPLES);
        put_uvarint(p, samples.len() as u64);
        let base = samples.first().map_or(0, |s| s.1);
        put_varint(p, base);
        for &(id, t, v) in samples {
            put_uvarint(p, id as u64);
            put_varint(p, t.wrapping_sub(base));
            p.extend_from_slice(&v.to_le_bytes());
        }
    });
}

/// Appends histogram samples as records of at most [`HISTOGRAMS_PER_RECORD`] samples and
/// about 16 MiB each (one histogram larger than that gets a record of its own).
pub(crate) fn encode_histogram_records(
    out: &mut Vec<u8>,
    samples: &[(u32, i64, Arc<FloatHistogram>)],
) {
    const RECORD_BYTES: usize = 16 << 20;
    let mut start = 0;
    let mut bytes = 0;
    for (i, s) in samples.iter().enumerate() {
        let size = s.2.size_bytes();
        if i > start && (i - start >= HISTOGRAMS_PER_RECORD || bytes + size > RECORD_BYTES) {
            encode_histograms(out, &samples[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < samples.len() {
        encode_histograms(out, &samples[start..]);
    }
}

/// Appends the framed encoding of a histogram sample batch: per sample the series id,
/// the timestamp (delta to the first) and the histogram's binary form, length-prefixed.
pub(crate) fn encode_histograms(out: &mut Vec<u8>, samples: &[(u32, i64, Arc<FloatHistogram>)]) {
    frame(out, |p| {
        p.push(T_HISTOGRAMS);
        put_uvarint(p, samples.len() as u64);
        let base = samples.first().map_or(0, |s| s.1);
        put_varint(p, base);
        let mut h = Vec::new();
        for (id, t, v) in samples {
            put_uvarint(p, u64::from(*id));
            put_varint(p, t.wrapping_sub(base));
            h.clear();
            v.encode_into(&mut h);
            put_uvarint(p, h.len() as u64);
            p.extend_from_slice(&h);
        }
    });
}

/// Exemplar records hold at most this many exemplars (each at most a few KiB: the label
/// set is bounded by 128 characters, the series labels by the ingest paths).
pub(crate) const EXEMPLARS_PER_RECORD: usize = 1024;

/// Appends exemplars as framed records of at most [`EXEMPLARS_PER_RECORD`] each.
pub(crate) fn encode_exemplars(out: &mut Vec<u8>, items: &[(&crate::Labels, &crate::Exemplar)]) {
    for part in items.chunks(EXEMPLARS_PER_RECORD) {
        frame(out, |p| {
            p.push(T_EXEMPLARS);
            put_uvarint(p, part.len() as u64);
            for (series, e) in part {
                put_uvarint(p, series.len() as u64);
                for l in series.iter() {
                    put_str(p, &l.name);
                    put_str(p, &l.value);
                }
                put_varint(p, e.ts);
                p.extend_from_slice(&e.value.to_le_bytes());
                p.push(u8::from(e.has_ts));
                put_uvarint(p, e.labels.len() as u64);
                for l in e.labels.iter() {
                    put_str(p, &l.name);
                    put_str(p, &l.value);
                }
            }
        });
    }
}

/// Appends the framed encoding of a tombstone record.
pub(crate) fn encode_tombstones(out: &mut Vec<u8>, t: &[(u32, i64, i64)]) {
    frame(out, |p| {
        p.push(T_TOMBSTONES);
        put_uvarint(p, t.len() as u64);
        for &(id, a, b) in t {
            put_uvarint(p, id as u64);
            put_varint(p, a);
            put_varint(p, b);
        }
    });
}

fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    body(out);
    let payload = &out[start + HEADER..];
    // A payload past u32 would wrap: saturate so `check_frames` refuses it.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes one payload (after the CRC has been checked).
pub(crate) fn decode(payload: &[u8]) -> Result<Record, String> {
    let (&ty, rest) = payload.split_first().ok_or("empty record")?;
    let mut r = Reader { b: rest, pos: 0 };
    let rec = match ty {
        T_SERIES => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.u32()?;
                let k = r.len()?;
                let mut labels = Vec::with_capacity(k);
                for _ in 0..k {
                    labels.push((r.str()?, r.str()?));
                }
                v.push((id, labels));
            }
            Record::Series(v)
        }
        T_SAMPLES => {
            let n = r.len()?;
            let base = r.varint()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.u32()?;
                let t = base.wrapping_add(r.varint()?);
                v.push((id, t, r.f64()?));
            }
            Record::Samples(v)
        }
        T_TOMBSTONES => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push((r.u32()?, r.varint()?, r.varint()?));
            }
            Record::Tombstones(v)
        }
        T_HISTOGRAMS => {
            let n = r.len()?;
            let base = r.varint()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.u32()?;
                let t = base.wrapping_add(r.varint()?);
                let len = r.len()?;
                let bytes = r.b.get(r.pos..r.pos + len).ok_or("truncated histogram")?;
                r.pos += len;
                let h = FloatHistogram::decode(bytes).map_err(|e| e.to_string())?;
                v.push((id, t, Arc::new(h)));
            }
            Record::Histograms(v)
        }
        T_EXEMPLARS => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = r.len()?;
                let mut series = Vec::with_capacity(k);
                for _ in 0..k {
                    series.push((r.str()?, r.str()?));
                }
                let ts = r.varint()?;
                let value = r.f64()?;
                let has_ts = *r.b.get(r.pos).ok_or("truncated exemplar")? != 0;
                r.pos += 1;
                let k = r.len()?;
                let mut labels = Vec::with_capacity(k);
                for _ in 0..k {
                    labels.push((r.str()?, r.str()?));
                }
                v.push(WalExemplar {
                    series,
                    ts,
                    value,
                    has_ts,
                    labels,
                });
            }
            Record::Exemplars(v)
        }
        other => return Err(format!("unknown record type {other}")),
    };
    if r.pos != rest.len() {
        return Err("trailing bytes in record".into());
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all_types() {
        let mut buf = Vec::new();
        let labels = [("__name__", "up"), ("job", "x")];
        encode_series(&mut buf, &[(7u32, labels.to_vec())]);
        encode_samples(
            &mut buf,
            &[(7, 1000, 1.5), (7, 900, f64::NAN), (3, -5, 0.0)],
        );
        encode_tombstones(&mut buf, &[(7, 0, 100)]);
        let mut pos = 0;
        let mut recs = Vec::new();
        while pos < buf.len() {
            let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4")) as usize;
            let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4"));
            let p = &buf[pos + 8..pos + 8 + len];
            assert_eq!(crc, crc32c::crc32c(p));
            recs.push(decode(p).expect("decode"));
            pos += 8 + len;
        }
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[0],
            Record::Series(vec![(
                7,
                vec![("__name__".into(), "up".into()), ("job".into(), "x".into())]
            )])
        );
        match &recs[1] {
            Record::Samples(s) => {
                assert_eq!(s.len(), 3);
                assert_eq!(s[1].1, 900);
                assert!(s[1].2.is_nan());
                assert_eq!(s[2], (3, -5, 0.0));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(recs[2], Record::Tombstones(vec![(7, 0, 100)]));
    }

    #[test]
    fn garbage_does_not_panic() {
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..64u8)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let _ = decode(&junk);
        }
    }
}
