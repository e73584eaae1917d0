//! The table catalog: every table medallion writes, with stage, kind, location, schema,
//! contract version, row count and last batch. Locally a JSON file under the lake.
//!
//! `register` is idempotent (it replaces the entry of the same table).
//!
//! Backends: [`FileCatalog`] (a JSON file) and, with the `aws` feature, [`GlueCatalog`];
//! [`build`] is the one place that picks between them.

mod file;
#[cfg(feature = "aws")]
mod glue;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use file::FileCatalog;
#[cfg(feature = "aws")]
pub use glue::{GlueCatalog, OWNER};

/// Errors reading or writing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog file could not be read or written.
    #[error("catalog {path}: {message}")]
    File {
        /// Catalog path.
        path: String,
        /// What failed.
        message: String,
    },
}

/// One column as the catalog shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnEntry {
    /// Column name.
    pub name: String,
    /// SQL type name.
    #[serde(rename = "type")]
    pub ty: String,
    /// Description.
    #[serde(default)]
    pub comment: String,
}

/// One table in the catalog. The `status --format json` output is a list of these (stable).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableEntry {
    /// Dataset (or curated product) the table belongs to.
    pub dataset: String,
    /// Stage: raw, trusted, curated.
    pub stage: String,
    /// data, rejects, quarantine, quality_results, promotions.
    pub kind: String,
    /// Catalog name, `<stage>.<table>`.
    pub table: String,
    /// URI of the Delta table.
    pub location: String,
    /// Delta table version.
    pub version: u64,
    /// Row count at that version.
    pub rows: u64,
    /// Columns.
    pub schema: Vec<ColumnEntry>,
    /// Contract version the table was written under.
    pub contract_version: String,
    /// Last batch written.
    pub last_batch: Option<String>,
    /// What the table holds.
    pub description: String,
    /// When this entry was last written (RFC 3339).
    pub updated_at: String,
}

/// Registers tables and lists them.
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// Backend name.
    fn name(&self) -> &'static str;
    /// Adds or replaces the entry for `entry.table`.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    async fn register(&self, entry: TableEntry) -> Result<(), CatalogError>;
    /// Every entry, ordered by dataset, stage, kind.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    async fn list(&self) -> Result<Vec<TableEntry>, CatalogError>;
}

/// Which [`Catalog`] [`build`] makes, with what that backend needs.
#[derive(Debug, Clone)]
pub enum CatalogConfig {
    /// A JSON file at this path.
    File {
        /// The catalog file.
        path: PathBuf,
    },
    /// The Glue Data Catalog of the project, `owner` in every table's parameters.
    #[cfg(feature = "aws")]
    Glue {
        /// The clients.
        aws: Box<crate::aws::Aws>,
        /// The tables' owner.
        owner: String,
    },
}

/// The catalog `cfg` names.
pub fn build(cfg: &CatalogConfig) -> Arc<dyn Catalog> {
    match cfg {
        CatalogConfig::File { path } => Arc::new(FileCatalog::new(path.clone())),
        #[cfg(feature = "aws")]
        CatalogConfig::Glue { aws, owner } => {
            Arc::new(GlueCatalog::new(aws.as_ref().clone(), owner))
        }
    }
}
