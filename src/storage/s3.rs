//! The lake on S3: landing objects under `<prefix>-landing/<dataset>/<sha256>.<ext>` (with a
//! `.meta.json` beside each), Delta tables under `s3://<prefix>-<stage>/<table>/`.
//! Landing puts are conditional (`If-None-Match: *`), so landing is idempotent and immutable.
//!
//! Invariants: the landing time is the caller's (its clock), never read here.

use std::collections::HashMap;
use std::io::Read;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use url::Url;

use super::{Digest, LandOutcome, LandedFile, Result, StorageError, TableStore};
use crate::aws::{call, Aws};
use crate::vocab::Stage;

/// A lake in S3 buckets.
#[derive(Debug, Clone)]
pub struct S3TableStore {
    aws: Aws,
    key_arn: String,
}

fn err(path: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        path: path.to_string(),
        message: e.to_string(),
    }
}

impl S3TableStore {
    /// A store using the project's buckets and KMS key.
    pub fn new(aws: Aws, key_arn: String) -> Self {
        Self { aws, key_arn }
    }

    /// Puts an object with SSE-KMS, only if it does not exist. Returns false if it existed.
    async fn put_new(&self, bucket: &str, key: &str, body: impl Into<ByteStream>) -> Result<bool> {
        let r = self
            .aws
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.key_arn)
            .bucket_key_enabled(true)
            .body(body.into())
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(err(
                &format!("s3://{bucket}/{key}"),
                call("s3", "PutObject")(e),
            )),
        }
    }

    /// Uploads a planned landed file's content, then its manifest (last: a file without one
    /// is invisible and is landed again). Content landed concurrently by another writer is
    /// that writer's landed file.
    async fn publish(&self, file: LandedFile, body: impl Into<ByteStream>) -> Result<LandOutcome> {
        let (dataset, sha256) = (file.dataset.clone(), file.sha256.clone());
        let bucket = self.aws.bucket("landing");
        self.put_new(
            &bucket,
            &format!("{dataset}/{sha256}.{}", file.format),
            body,
        )
        .await?;
        let meta = serde_json::to_vec_pretty(&file).map_err(|e| err(&sha256, e))?;
        if !self
            .put_new(&bucket, &format!("{dataset}/{sha256}.meta.json"), meta)
            .await?
        {
            let listed = self.list_landed(&dataset).await?;
            if let Some(f) = listed.into_iter().find(|f| f.sha256 == sha256) {
                return Ok(LandOutcome::AlreadyLanded(f));
            }
        }
        Ok(LandOutcome::Landed(file))
    }

    /// Deletes object versions under `prefix` (exactly the key `prefix` when `exact`): every
    /// version when `exact`, else the noncurrent versions and delete markers only (the current
    /// objects of a live table stay). Returns how many were deleted.
    async fn delete_all_versions(&self, bucket: &str, prefix: &str, exact: bool) -> Result<u64> {
        let at = format!("s3://{bucket}/{prefix}");
        let mut doomed: Vec<(String, Option<String>)> = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .aws
                .s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .map_err(|e| err(&at, call("s3", "ListObjectVersions")(e)))?;
            for v in page.versions() {
                let key = v.key().unwrap_or_default();
                if (exact && key == prefix) || (!exact && v.is_latest() != Some(true)) {
                    doomed.push((key.to_string(), v.version_id().map(str::to_string)));
                }
            }
            for m in page.delete_markers() {
                let key = m.key().unwrap_or_default();
                if !exact || key == prefix {
                    doomed.push((key.to_string(), m.version_id().map(str::to_string)));
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        for (key, version) in &doomed {
            self.aws
                .s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .send()
                .await
                .map_err(|e| err(&at, call("s3", "DeleteObject")(e)))?;
        }
        Ok(doomed.len() as u64)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        let at = format!("s3://{bucket}/{key}");
        let out = self
            .aws
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| err(&at, call("s3", "GetObject")(e)))?;
        let body = out.body.collect().await.map_err(|e| err(&at, e))?;
        Ok(body.into_bytes().to_vec())
    }
}

#[async_trait]
impl TableStore for S3TableStore {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn table_url(&self, stage: Stage, table: &str) -> Result<Url> {
        let u = format!("s3://{}/{table}/", self.aws.bucket(stage.as_str()));
        Url::parse(&u).map_err(|e| err(&u, e))
    }

    fn ops_table_url(&self, table: &str) -> Result<Url> {
        let u = format!("s3://{}/{table}/", self.aws.bucket("ops"));
        Url::parse(&u).map_err(|e| err(&u, e))
    }

    fn storage_options(&self) -> HashMap<String, String> {
        self.aws.storage_options(&self.key_arn)
    }

    async fn land(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        bytes: &[u8],
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome> {
        let file = match self
            .plan_landing(
                dataset,
                original_name,
                format,
                &Digest::of(bytes),
                landed_at,
            )
            .await?
        {
            Ok(f) => f,
            Err(already) => return Ok(already),
        };
        self.publish(file, bytes.to_vec()).await
    }

    async fn land_path(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        path: &std::path::Path,
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome> {
        let shown = path.display().to_string();
        // Hashed in one streaming pass, then uploaded from the file: never held in memory.
        let digest = std::fs::File::open(path)
            .and_then(|f| Digest::copy(f, std::io::sink()))
            .map_err(|e| StorageError::Io {
                path: shown.clone(),
                source: e,
            })?;
        let file = match self
            .plan_landing(dataset, original_name, format, &digest, landed_at)
            .await?
        {
            Ok(f) => f,
            Err(already) => return Ok(already),
        };
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| err(&shown, e))?;
        self.publish(file, body).await
    }

    async fn list_landed(&self, dataset: &str) -> Result<Vec<LandedFile>> {
        let bucket = self.aws.bucket("landing");
        let mut keys = Vec::new();
        let mut pages = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(format!("{dataset}/"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                err(
                    &format!("s3://{bucket}/{dataset}/"),
                    call("s3", "ListObjectsV2")(e),
                )
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.ends_with(".meta.json"))
                    .map(str::to_string),
            );
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let bytes = self.get(&bucket, &k).await?;
            out.push(serde_json::from_slice::<LandedFile>(&bytes).map_err(|e| err(&k, e))?);
        }
        LandedFile::settle(&mut out);
        Ok(out)
    }

    async fn replace_landed(&self, old: &LandedFile, bytes: &[u8]) -> Result<LandedFile> {
        let new = old.replaced_by(bytes);
        if new.sha256 == old.sha256 {
            return Ok(new);
        }
        let bucket = self.aws.bucket("landing");
        let ds = &old.dataset;
        self.put_new(
            &bucket,
            &format!("{ds}/{}.{}", new.sha256, new.format),
            bytes.to_vec(),
        )
        .await?;
        let meta = serde_json::to_vec_pretty(&new).map_err(|e| err(&new.sha256, e))?;
        self.put_new(&bucket, &format!("{ds}/{}.meta.json", new.sha256), meta)
            .await?;
        // Every version of the old manifest and data goes: the bucket is versioned.
        for key in [
            format!("{ds}/{}.meta.json", old.sha256),
            format!("{ds}/{}.{}", old.sha256, old.format),
        ] {
            self.delete_all_versions(&bucket, &key, true).await?;
        }
        Ok(new)
    }

    async fn purge_versions(&self, table: &Url) -> Result<u64> {
        let bucket = table.host_str().unwrap_or_default().to_string();
        let prefix = table.path().trim_start_matches('/').to_string();
        self.delete_all_versions(&bucket, &prefix, false).await
    }

    async fn open_landed(&self, file: &LandedFile) -> Result<Box<dyn Read + Send>> {
        let bytes = self
            .get(
                &self.aws.bucket("landing"),
                &format!("{}/{}.{}", file.dataset, file.sha256, file.format),
            )
            .await?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}
