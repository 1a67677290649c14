//! Buffers shared by all scrape loops. A loop needs its body buffer and its staged samples
//! only while it parses and appends, and only a few loops do that at once, so keeping one
//! of each per target would hold a body (a quarter MB) and a sample buffer (24 bytes per
//! series) resident per target for nothing.

use parking_lot::Mutex;

/// A small pool of reusable vectors.
pub(crate) struct BufferPool<T> {
    items: Mutex<Vec<Vec<T>>>,
    /// Buffers kept.
    keep: usize,
    /// Larger buffers (in elements) are freed rather than kept.
    max_len: usize,
}

impl<T> BufferPool<T> {
    const fn new(keep: usize, max_len: usize) -> Self {
        BufferPool {
            items: Mutex::new(Vec::new()),
            keep,
            max_len,
        }
    }

    /// A buffer (empty, maybe with capacity).
    pub(crate) fn take(&self) -> Vec<T> {
        self.items.lock().pop().unwrap_or_default()
    }

    /// Returns a buffer for reuse.
    pub(crate) fn put(&self, mut b: Vec<T>) {
        if b.capacity() == 0 || b.capacity() > self.max_len {
            return;
        }
        b.clear();
        let mut p = self.items.lock();
        if p.len() < self.keep {
            p.push(b);
        }
    }
}

/// Scrape bodies.
pub(crate) static BODIES: BufferPool<u8> = BufferPool::new(4, 8 << 20);

/// Samples staged between parsing and appending: (series id, timestamp, value).
pub(crate) static STAGED: BufferPool<(u32, i64, f64)> = BufferPool::new(4, 1 << 20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_the_pool_stays_small() {
        let pool: BufferPool<u8> = BufferPool::new(2, 64);
        let mut b = pool.take();
        b.extend_from_slice(b"abc");
        pool.put(b);
        let b = pool.take();
        assert!(b.is_empty() && b.capacity() >= 3);
        pool.put(Vec::with_capacity(1000)); // too large: freed
        pool.put(Vec::new()); // nothing to keep
        assert!(pool.items.lock().is_empty());
        for _ in 0..3 {
            pool.put(Vec::with_capacity(8));
        }
        assert_eq!(pool.items.lock().len(), 2);
    }
}
