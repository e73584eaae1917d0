//! Where the lake lives: the landing zone (immutable, content-addressed files) and the Delta
//! tables of raw, trusted and curated.
//!
//! Invariants: a landed file is never modified or deleted; its name is its SHA-256, so landing
//! the same content twice is a no-op. Every Delta commit medallion makes carries an application
//! transaction (`txn`) naming the batch it consumed, so a step can tell what it already did
//! (see [`delta`]).
//!
//! Backends: [`LocalTableStore`] (a folder) and, with the `aws` feature, [`S3TableStore`];
//! [`build`] is the one place that picks between them.

pub mod counting;
pub mod delta;
mod local;
#[cfg(feature = "aws")]
mod s3;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::vocab::Stage;

pub use local::LocalTableStore;
#[cfg(feature = "aws")]
pub use s3::S3TableStore;

/// Result alias for this module.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Errors reading or writing the lake.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Delta table operation failed.
    #[error("delta table {table}: {source}")]
    Delta {
        /// Table location.
        table: String,
        /// The delta-rs error.
        source: Box<deltalake::DeltaTableError>,
    },
    /// A query over a table failed.
    #[error("query on {table}: {message}")]
    Query {
        /// Table location.
        table: String,
        /// What failed.
        message: String,
    },
    /// A landing manifest or catalog file is corrupt.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl StorageError {
    /// Whether a concurrent writer committed first (a Delta commit conflict). Every medallion
    /// write is guarded by its batch's txn, so rerunning the step is safe.
    pub fn is_commit_conflict(&self) -> bool {
        match self {
            Self::Delta { source, .. } => delta::lost_race(source),
            _ => false,
        }
    }
}

/// What one landed file is, as recorded next to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LandedFile {
    /// Dataset it was landed for.
    pub dataset: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// The file name it was delivered under (no directories).
    pub original_name: String,
    /// `csv` or `jsonl`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was landed (RFC 3339, UTC). Batches are processed in this order.
    pub landed_at: String,
    /// Landing sequence number within the dataset (1, 2, ...), for a stable order.
    pub seq: u64,
    /// The content hash of the file this one replaced when a student was erased from it
    /// (`medallion forget`): the batch keeps that file's id, so nothing is promoted twice, and
    /// landing the original bytes again is recognised as already landed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The SHA-256 and size of a file's content: what landing addresses it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

impl Digest {
    /// The digest of content held in memory.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self {
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }

    /// Streams `reader` into `sink` in bounded buffers and returns the digest of what went
    /// through: a file of any size is hashed (and copied) without being held in memory.
    ///
    /// # Errors
    /// I/O errors of either side.
    pub fn copy<R: Read, W: std::io::Write>(mut reader: R, mut sink: W) -> std::io::Result<Self> {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            sink.write_all(&buf[..n])?;
            bytes += n as u64;
        }
        sink.flush()?;
        Ok(Self {
            sha256: hex::encode(hasher.finalize()),
            bytes,
        })
    }
}

impl LandedFile {
    /// What landing `bytes` means, given the files of the dataset `existing` (in landing
    /// order): the file already holding the same content, or the record of the new file
    /// (content-addressed, next in sequence, landed at `landed_at`) that the store then writes.
    pub fn plan(
        dataset: &str,
        original_name: &str,
        format: &str,
        content: &Digest,
        existing: &[LandedFile],
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> LandOutcome {
        let sha256 = content.sha256.clone();
        if let Some(f) = existing
            .iter()
            .find(|f| f.sha256 == sha256 || f.replaces.as_deref() == Some(sha256.as_str()))
        {
            return LandOutcome::AlreadyLanded(f.clone());
        }
        LandOutcome::Landed(Self {
            dataset: dataset.to_string(),
            sha256,
            original_name: original_name.to_string(),
            format: format.to_string(),
            bytes: content.bytes,
            landed_at: landed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            seq: existing.iter().map(|f| f.seq).max().unwrap_or(0) + 1,
            replaces: None,
        })
    }

    /// The record of `bytes` replacing this file (same dataset, name, format, sequence and
    /// batch id; new content hash).
    pub fn replaced_by(&self, bytes: &[u8]) -> LandedFile {
        use sha2::{Digest, Sha256};
        LandedFile {
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            replaces: Some(self.identity().to_string()),
            ..self.clone()
        }
    }

    /// When the file was landed, as recorded in its manifest.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file when the recorded `landed_at` is not an
    /// RFC 3339 instant (read as epoch 0 it would make the rows eligible for purge at once).
    pub fn landed_instant(&self) -> Result<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.landed_at)
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|e| StorageError::Corrupt {
                path: format!(
                    "landing/{}/{} ({})",
                    self.dataset, self.original_name, self.sha256
                ),
                message: format!(
                    "landed_at `{}` is not an RFC 3339 instant: {e}",
                    self.landed_at
                ),
            })
    }

    /// The content hash the batch was named after (the original delivery's).
    pub fn identity(&self) -> &str {
        self.replaces.as_deref().unwrap_or(&self.sha256)
    }

    /// Drops files a replacement supersedes (a crash between writing a replacement and
    /// removing the original leaves both for a moment), then sorts into landing order.
    pub fn settle(files: &mut Vec<LandedFile>) {
        let replaced: Vec<String> = files.iter().filter_map(|f| f.replaces.clone()).collect();
        files.retain(|f| !(f.replaces.is_none() && replaced.contains(&f.sha256)));
        Self::sort(files);
    }

    /// Sorts files into landing order (sequence, then content hash: two landers that raced
    /// for one sequence number still get one stable order).
    pub fn sort(files: &mut [LandedFile]) {
        files.sort_by(|a, b| (a.seq, &a.sha256).cmp(&(b.seq, &b.sha256)));
    }

    /// The batch id of this file: every row derived from it carries it.
    pub fn batch_id(&self) -> String {
        let id = self.identity();
        format!("b{:06}-{}", self.seq, id.get(..12).unwrap_or(id))
    }
}

/// Outcome of landing one file.
#[derive(Debug, Clone)]
pub enum LandOutcome {
    /// Newly landed.
    Landed(LandedFile),
    /// The same content was already in landing.
    AlreadyLanded(LandedFile),
}

/// Stores landing files and locates Delta tables.
///
/// Guarantees: `land` is idempotent by content; landed files are immutable; `list_landed`
/// returns files in landing order.
#[async_trait]
pub trait TableStore: Send + Sync + fmt::Debug {
    /// Backend name for messages.
    fn name(&self) -> &'static str;
    /// Location of a Delta table.
    ///
    /// # Errors
    /// When the location cannot be formed.
    fn table_url(&self, stage: Stage, table: &str) -> Result<Url>;
    /// Location of an internal (ops) table such as the quality results.
    ///
    /// # Errors
    /// When the location cannot be formed.
    fn ops_table_url(&self, table: &str) -> Result<Url>;
    /// Options delta-rs needs to reach the storage (empty locally).
    fn storage_options(&self) -> HashMap<String, String>;
    /// Copies `bytes` into landing under a content-addressed name, recording `landed_at` (the
    /// caller's clock) when the content is new.
    ///
    /// # Errors
    /// I/O errors.
    async fn land(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        bytes: &[u8],
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome>;
    /// Lands the file at `path` as [`Self::land`] does, streaming it: memory stays bounded
    /// whatever the file's size.
    ///
    /// # Errors
    /// I/O errors (reading `path` included, naming it).
    async fn land_path(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        path: &std::path::Path,
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<LandOutcome>;
    /// The new landed file `content` delivered as `original_name` becomes, or (`Err`) the
    /// outcome naming the landed file that already holds it: the one place a store decides
    /// "new or already landed" before writing anything.
    ///
    /// # Errors
    /// I/O errors or a corrupt manifest.
    async fn plan_landing(
        &self,
        dataset: &str,
        original_name: &str,
        format: &str,
        content: &Digest,
        landed_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<std::result::Result<LandedFile, LandOutcome>> {
        let existing = self.list_landed(dataset).await?;
        Ok(
            match LandedFile::plan(
                dataset,
                original_name,
                format,
                content,
                &existing,
                landed_at,
            ) {
                LandOutcome::Landed(f) => Ok(f),
                already => Err(already),
            },
        )
    }
    /// Landed files of a dataset, in landing order.
    ///
    /// # Errors
    /// I/O errors or a corrupt manifest.
    async fn list_landed(&self, dataset: &str) -> Result<Vec<LandedFile>>;
    /// Opens a landed file for streaming reads.
    ///
    /// # Errors
    /// I/O errors.
    async fn open_landed(&self, file: &LandedFile) -> Result<Box<dyn Read + Send>>;
    /// Replaces a landed file's content (erasure): writes `bytes` and the manifest of
    /// [`LandedFile::replaced_by`], then removes the old file and manifest — on versioned
    /// storage every version of them. Idempotent, and crash-safe by [`LandedFile::settle`].
    ///
    /// # Errors
    /// I/O errors.
    async fn replace_landed(&self, old: &LandedFile, bytes: &[u8]) -> Result<LandedFile>;
    /// Removes every noncurrent object version and delete marker under a table's location, so
    /// files a vacuum removed cannot be restored (a no-op where storage keeps no versions).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// Storage errors.
    async fn purge_versions(&self, _table: &Url) -> Result<u64> {
        Ok(0)
    }
}

/// Which [`TableStore`] [`build`] makes, with what that backend needs.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// A folder lake rooted here (created when needed).
    Local {
        /// The lake folder.
        root: PathBuf,
    },
    /// The project's S3 buckets, every object encrypted with its KMS key.
    #[cfg(feature = "aws")]
    S3(Box<crate::aws::AwsContext>),
}

/// The table store `cfg` names.
///
/// # Errors
/// A local lake folder that cannot be created or resolved.
pub fn build(cfg: &StoreConfig) -> Result<Arc<dyn TableStore>> {
    Ok(match cfg {
        StoreConfig::Local { root } => Arc::new(LocalTableStore::new(root)?),
        #[cfg(feature = "aws")]
        StoreConfig::S3(ctx) => Arc::new(S3TableStore::new(ctx.aws.clone(), ctx.key_arn.clone())),
    })
}
