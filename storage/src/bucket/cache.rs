//! The page cache of blocks read from object storage: byte ranges of their files (the
//! Parquet pages a query selects, a whole `histograms.parquet`), least recently used
//! first out, bounded in bytes. A block's footer and page index are read once, when the
//! block is opened, and kept with it (the "footer cache").
//!
//! Keys are exact ranges: the Parquet reader asks for the same page ranges whenever a
//! query selects the same series of a block, which is what dashboards repeat.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;

type Key = (Arc<str>, u64, u64);

/// A byte-bounded LRU cache of object ranges.
pub struct RangeCache {
    max_bytes: u64,
    inner: Mutex<(lru::LruCache<Key, Bytes>, u64)>,
    /// Lookups answered from the cache, and lookups that went to the store.
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl std::fmt::Debug for RangeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeCache")
            .field("max_bytes", &self.max_bytes)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl RangeCache {
    /// A cache holding at most `max_bytes` (0: nothing is cached).
    pub fn new(max_bytes: u64) -> Self {
        RangeCache {
            max_bytes,
            inner: Mutex::new((lru::LruCache::unbounded(), 0)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().1
    }

    fn get(&self, key: &Key) -> Option<Bytes> {
        let got = self.inner.lock().0.get(key).cloned();
        match got {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        got
    }

    fn put(&self, key: Key, value: Bytes) {
        let size = value.len() as u64;
        // A range bigger than a quarter of the cache would flush everything else.
        if size == 0 || size > self.max_bytes / 4 {
            return;
        }
        let mut g = self.inner.lock();
        let (lru, bytes) = &mut *g;
        if let Some(old) = lru.put(key, value) {
            *bytes -= old.len() as u64;
        }
        *bytes += size;
        while *bytes > self.max_bytes {
            match lru.pop_lru() {
                Some((_, v)) => *bytes -= v.len() as u64,
                None => break,
            }
        }
    }

    /// `ranges` of `path`, from the cache where held, the rest in one request to the store
    /// (which coalesces nearby ranges).
    pub async fn get_ranges(
        &self,
        store: &dyn ObjectStore,
        path: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let name: Arc<str> = Arc::from(path.as_ref());
        let mut out: Vec<Option<Bytes>> = ranges
            .iter()
            .map(|r| self.get(&(name.clone(), r.start, r.end)))
            .collect();
        let missing: Vec<usize> = (0..ranges.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let want: Vec<Range<u64>> = missing.iter().map(|&i| ranges[i].clone()).collect();
            let got = store.get_ranges(path, &want).await?;
            for (&i, b) in missing.iter().zip(got) {
                self.put((name.clone(), ranges[i].start, ranges[i].end), b.clone());
                out[i] = Some(b);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}

/// A reader of a remote `samples.parquet` through the cache, with its metadata read at open.
#[derive(Clone)]
pub(crate) struct CachedReader {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: Path,
    pub(crate) meta: Arc<ParquetMetaData>,
    pub(crate) cache: Arc<RangeCache>,
}

impl AsyncFileReader for CachedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        Box::pin(async move {
            let mut v = self
                .cache
                .get_ranges(&*self.store, &self.path, std::slice::from_ref(&range))
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            Ok(v.pop().unwrap_or_default())
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        Box::pin(async move {
            self.cache
                .get_ranges(&*self.store, &self.path, &ranges)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        Box::pin(std::future::ready(Ok(self.meta.clone())))
    }
}

/// The whole object at `path` (`size` bytes) through the cache.
pub(crate) async fn get_whole(
    cache: &RangeCache,
    store: &dyn ObjectStore,
    path: &Path,
) -> object_store::Result<Bytes> {
    let size = store.head(path).await?.size;
    let mut v = cache
        .get_ranges(store, path, std::slice::from_ref(&(0..size)))
        .await?;
    Ok(v.pop().unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn ranges_come_from_the_cache_and_bytes_stay_bounded() {
        let store = InMemory::new();
        let p = Path::from("b/samples.parquet");
        let data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        store.put(&p, data.clone().into()).await.unwrap();
        let cache = RangeCache::new(1000);
        let got = cache
            .get_ranges(&store, &p, &[0..100, 200..300])
            .await
            .unwrap();
        assert_eq!(&got[0][..], &data[0..100]);
        assert_eq!(&got[1][..], &data[200..300]);
        assert_eq!(cache.misses.load(Ordering::Relaxed), 2);
        let again = cache
            .get_ranges(&store, &p, std::slice::from_ref(&(200..300)))
            .await
            .unwrap();
        assert_eq!(&again[0][..], &data[200..300]);
        assert_eq!(cache.hits.load(Ordering::Relaxed), 1);
        // Many ranges: the oldest are evicted, the total stays within the bound.
        for i in 0..40u64 {
            cache
                .get_ranges(&store, &p, std::slice::from_ref(&(i * 50..i * 50 + 200)))
                .await
                .unwrap();
            assert!(cache.bytes() <= 1000);
        }
        // Too big for the cache: served, not kept.
        let big = cache
            .get_ranges(&store, &p, std::slice::from_ref(&(0..4096)))
            .await
            .unwrap();
        assert_eq!(big[0].len(), 4096);
        assert!(cache.bytes() <= 1000);
    }
}
