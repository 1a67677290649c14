//! Sample reads from a block in the local data directory: `samples.parquet` is kept open and
//! read with positioned reads (`pread`) on the querying thread.
//!
//! Through `object_store`'s local backend every read of a query opened the file, stat'ed
//! it and read on the blocking pool, then handed the bytes back to the runtime: for a small
//! query over a block (a few dozen pages) that was a third of its time. A read here is a
//! copy out of the page cache, as Prometheus's reads of its memory-mapped chunks are; a
//! read that misses the page cache waits for the disk on the querying thread, as those do.
//! Blocks in remote object storage are read through `object_store`.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::future::BoxFuture;

/// An open `samples.parquet` and its (already read) metadata.
#[derive(Clone)]
pub(crate) struct LocalSamples {
    file: Arc<File>,
    meta: Arc<ParquetMetaData>,
}

impl LocalSamples {
    pub(crate) fn new(file: File, meta: Arc<ParquetMetaData>) -> Self {
        LocalSamples {
            file: Arc::new(file),
            meta,
        }
    }

    fn read(&self, range: Range<u64>) -> Result<Bytes> {
        let len = usize::try_from(range.end.saturating_sub(range.start))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, range.start)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::from(buf))
    }
}

impl AsyncFileReader for LocalSamples {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(std::future::ready(self.read(range)))
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        let all = ranges.into_iter().map(|r| self.read(r)).collect();
        Box::pin(std::future::ready(all))
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        Box::pin(std::future::ready(Ok(self.meta.clone())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ranges_read_what_the_file_holds_and_short_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let meta = Arc::new(ParquetMetaData::new(
            datafusion::parquet::file::metadata::FileMetaData::new(
                1,
                0,
                None,
                None,
                Arc::new(datafusion::parquet::schema::types::SchemaDescriptor::new(
                    Arc::new(
                        datafusion::parquet::schema::types::Type::group_type_builder("s")
                            .build()
                            .unwrap(),
                    ),
                )),
                None,
            ),
            Vec::new(),
        ));
        let mut r = LocalSamples::new(File::open(&p).unwrap(), meta);
        let got = futures::executor::block_on(r.get_byte_ranges(vec![2..5, 0..1, 9..10])).unwrap();
        assert_eq!(
            got,
            vec![Bytes::from("234"), Bytes::from("0"), Bytes::from("9")]
        );
        assert!(futures::executor::block_on(r.get_bytes(8..12)).is_err());
    }
}
