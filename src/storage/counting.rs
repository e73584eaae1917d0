//! An object store that counts the requests it passes on (see [`crate::metrics::io`]), and
//! the hook that puts it under every store delta-rs builds.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Once};

use async_trait::async_trait;
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};
use deltalake::logstore::{
    object_store_factories, ObjectStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::DeltaResult;
use futures::stream::BoxStream;
use url::Url;

use crate::metrics::io::{add, Counter};

/// Counts each request by its S3 billing class, then passes it on unchanged.
#[derive(Debug)]
pub struct CountingStore {
    inner: ObjectStoreRef,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: ObjectStoreRef) -> Self {
        Self { inner }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        add(Counter::S3Write, 1);
        add(Counter::BytesWritten, data.content_length() as u64);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        add(Counter::S3Write, 1);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        add(Counter::S3Write, 1);
        add(Counter::BytesWritten, payload.content_length() as u64);
        tracing::trace!(op = "put", %location);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // CreateMultipartUpload is a POST.
        add(Counter::S3Write, 1);
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountingUpload { inner }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        add(Counter::S3Read, 1);
        tracing::trace!(op = "get", %location);
        let r = self.inner.get_opts(location, options).await?;
        add(
            Counter::BytesRead,
            r.range.end.saturating_sub(r.range.start),
        );
        Ok(r)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        add(Counter::S3Read, ranges.len() as u64);
        tracing::trace!(op = "get_ranges", %location, ranges = ranges.len());
        let got = self.inner.get_ranges(location, ranges).await?;
        add(
            Counter::BytesRead,
            got.iter().map(|b| b.len() as u64).sum::<u64>(),
        );
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // DELETE requests are free on S3.
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        add(Counter::S3Write, 1);
        tracing::trace!(op = "list", prefix = ?prefix);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        add(Counter::S3Write, 1);
        tracing::trace!(op = "list_with_offset", prefix = ?prefix, %offset);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        add(Counter::S3Write, 1);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        add(Counter::S3Write, 1);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        // A copy (and a free delete) on S3; a rename on a local disk.
        add(Counter::S3Write, 1);
        self.inner.rename_opts(from, to, options).await
    }
}

struct CountingFactory {
    inner: Arc<dyn ObjectStoreFactory>,
}

impl ObjectStoreFactory for CountingFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let (store, path) = self.inner.parse_url_opts(url, config)?;
        Ok((Arc::new(CountingStore::new(store)), path))
    }
}

/// Puts a [`CountingStore`] under every local and S3 store delta-rs builds from now on.
/// Idempotent.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let registry = object_store_factories();
        for scheme in ["file", "s3", "s3a"] {
            let Ok(url) = Url::parse(&format!("{scheme}://")) else {
                continue;
            };
            let inner = registry.get(&url).map(|f| f.value().clone());
            if let Some(inner) = inner {
                registry.insert(url, Arc::new(CountingFactory { inner }));
            }
        }
    });
}
