//! The framing of a streamed remote-read answer (Prometheus's `storage/remote/chunked.go`):
//! each `ChunkedReadResponse` message goes as
//!
//! ```text
//! | message length: uvarint | CRC32 Castagnoli of the message: u32 big-endian | message |
//! ```
//!
//! with no compression around it. [`frame`] writes one; [`FrameReader`] takes the body as
//! it arrives and hands out whole messages, refusing one longer than its limit before
//! reading it and one whose checksum does not match.

/// The `Content-Type` of a streamed answer.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Why a stream of frames is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame longer than the reader's limit.
    #[error("frame of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// A frame whose message does not have the checksum it came with.
    #[error("corrupted frame: checksum mismatch")]
    Checksum,
    /// A length that is not a uvarint.
    #[error("frame length is not a valid uvarint")]
    BadLength,
    /// The stream ends inside a frame.
    #[error("the stream ends inside a frame ({0} bytes left over)")]
    Truncated(usize),
}

/// `message` framed: its length, its checksum, itself.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 14);
    let mut n = message.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(&crc32c::crc32c(message).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Splits a byte stream into the messages of its frames.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    start: usize,
    limit: u64,
}

impl FrameReader {
    /// A reader refusing frames of more than `limit` bytes.
    pub fn new(limit: u64) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Adds the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `None` until its last byte has arrived.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some((size, len_bytes)) = uvarint(rest)? else {
            return Ok(None);
        };
        if size > self.limit {
            return Err(FrameError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        // `size` is within the limit, which a caller keeps far below `usize::MAX`.
        let size = usize::try_from(size).map_err(|_| FrameError::BadLength)?;
        let Some(whole) = len_bytes.checked_add(4).and_then(|h| h.checked_add(size)) else {
            return Err(FrameError::BadLength);
        };
        if rest.len() < whole {
            return Ok(None);
        }
        let crc = u32::from_be_bytes([
            rest[len_bytes],
            rest[len_bytes + 1],
            rest[len_bytes + 2],
            rest[len_bytes + 3],
        ]);
        let begin = self.start + len_bytes + 4;
        self.start += whole;
        let message = &self.buf[begin..begin + size];
        if crc32c::crc32c(message) != crc {
            return Err(FrameError::Checksum);
        }
        Ok(Some(message))
    }

    /// Checks that the stream ended between frames.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() - self.start {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

/// A uvarint at the start of `b` and its length; `None` when `b` ends inside it.
fn uvarint(b: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err(FrameError::BadLength);
            }
            return Ok(Some((x | (u64::from(byte) << (7 * i)), i + 1)));
        }
        x |= u64::from(byte & 0x7f) << (7 * i);
    }
    if b.len() >= 10 {
        return Err(FrameError::BadLength);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(stream: &[u8], limit: u64, step: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut r = FrameReader::new(limit);
        let mut out = Vec::new();
        for part in stream.chunks(step.max(1)) {
            r.push(part);
            while let Some(m) = r.next_message()? {
                out.push(m.to_vec());
            }
        }
        r.finish()?;
        Ok(out)
    }

    #[test]
    fn frames_are_read_back_however_the_stream_is_cut() {
        let messages: Vec<Vec<u8>> = vec![b"test1".to_vec(), vec![7; 300], b"x".to_vec()];
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        for step in [1, 2, 3, 7, 64, stream.len()] {
            assert_eq!(read_all(&stream, 1000, step), Ok(messages.clone()));
        }
    }

    #[test]
    fn the_layout_is_prometheus_chunked_writer() {
        // As Prometheus's ChunkedWriter writes "twelve bytes": its length, its CRC32C
        // big-endian, the bytes.
        let f = frame(b"twelve bytes");
        assert_eq!(f[0], 12);
        assert_eq!(&f[1..5], &crc32c::crc32c(b"twelve bytes").to_be_bytes()[..]);
        assert_eq!(&f[5..], b"twelve bytes");
        // The CRC32C check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn oversized_corrupted_and_cut_streams_are_errors() {
        let f = frame(b"twelve bytes");
        assert_eq!(
            read_all(&f, 11, 100),
            Err(FrameError::TooLarge {
                size: 12,
                limit: 11
            })
        );
        let mut bad = f.clone();
        bad[7] ^= 1;
        assert_eq!(read_all(&bad, 100, 100), Err(FrameError::Checksum));
        assert_eq!(
            read_all(&f[..f.len() - 1], 100, 100),
            Err(FrameError::Truncated(f.len() - 1))
        );
        assert_eq!(read_all(&[0xff; 11], 100, 100), Err(FrameError::BadLength));
    }
}
