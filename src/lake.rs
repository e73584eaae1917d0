//! The lake a command works on: its backends (store, catalog, metrics, keys, notifier), its
//! clock and its price table, and the locations of its tables.
//!
//! Invariants: a [`Lake`] is built once per command (by `Project::open`) and only cloned
//! after; steps, the ledger, privacy and reports reach storage, catalog, metrics and keys only
//! through it, so one run sees one clock and one set of backends. Locations are formed here
//! from [`Stage`] and [`TableRef`], never from strings pasted elsewhere.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::crypto::KeyProvider;
use crate::metrics::MetricsSink;
use crate::storage::delta::TableLoc;
use crate::storage::{Result, TableStore};
use crate::vocab::{Stage, TableRef};

/// The backends a step works through.
#[derive(Debug, Clone)]
pub struct Lake {
    /// Landing files and table locations.
    pub store: Arc<dyn TableStore>,
    /// Table catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Metrics sink.
    pub metrics: Arc<dyn MetricsSink>,
    /// Pseudonymisation keys.
    pub keys: Arc<dyn KeyProvider>,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Price table for the cost metrics (`None`: no cost metrics).
    pub prices: Option<Arc<crate::metrics::cost::Prices>>,
    /// Where alert changes are sent (a local log, or SNS on AWS).
    pub notifier: Arc<dyn crate::metrics::Notifier>,
    /// A worker's share of the landed files (`None`: every landed file).
    pub only: Option<BatchSelector>,
}

/// Which landed file a worker promotes (one per worker: an AWS Batch array child or a Step
/// Functions Map iteration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchSelector {
    /// The landed file with this batch id or original file name.
    Id(String),
    /// The n-th landed file of the dataset, in landing order (0-based, as
    /// `AWS_BATCH_JOB_ARRAY_INDEX`).
    Index(usize),
}

impl Lake {
    /// Every row of table `name` in `stage` as one frame; `None` when the table does not exist
    /// yet.
    ///
    /// # Errors
    /// Storage errors; a table whose rows do not convert.
    pub async fn read_table(
        &self,
        stage: Stage,
        name: &str,
    ) -> Result<Option<polars::prelude::DataFrame>> {
        let loc = self.loc(stage, name)?;
        let Some((schema, batches)) = crate::storage::delta::query(&loc, "SELECT * FROM t").await?
        else {
            return Ok(None);
        };
        crate::frame::from_batches(&schema, &batches)
            .map(Some)
            .map_err(|e| crate::storage::StorageError::Corrupt {
                path: loc.url.to_string(),
                message: e.to_string(),
            })
    }

    /// The landed files of `dataset` this run promotes, in landing order: all of them, or the
    /// one [`Lake::only`] selects (none when it selects nothing).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn landed(&self, dataset: &str) -> Result<Vec<crate::storage::LandedFile>> {
        let all = self.store.list_landed(dataset).await?;
        Ok(match &self.only {
            None => all,
            Some(BatchSelector::Index(i)) => all.into_iter().skip(*i).take(1).collect(),
            Some(BatchSelector::Id(id)) => all
                .into_iter()
                .filter(|f| &f.batch_id() == id || &f.original_name == id)
                .collect(),
        })
    }

    /// The cost metrics of the work counted since `start`, for one dataset (or product) and
    /// stage; none without a price table.
    pub fn cost_metrics(
        &self,
        start: &crate::metrics::io::IoSnapshot,
        dataset: &str,
        stage: &str,
    ) -> Vec<crate::metrics::Metric> {
        match &self.prices {
            Some(p) => p.cost(start.elapsed()).metrics(dataset, stage),
            None => Vec::new(),
        }
    }

    /// Location of a stage table.
    ///
    /// # Errors
    /// When the store cannot form it.
    pub fn loc(&self, stage: Stage, table: &str) -> Result<TableLoc> {
        Ok(TableLoc {
            url: self.store.table_url(stage, table)?,
            options: self.store.storage_options(),
        })
    }

    /// Location of a dataset's table (data, rejects or quarantine).
    ///
    /// # Errors
    /// When the store cannot form it.
    pub fn table_loc(&self, table: &TableRef) -> Result<TableLoc> {
        self.loc(table.stage, &table.name())
    }

    /// Location of an ops table (quality results, promotions).
    ///
    /// # Errors
    /// When the store cannot form it.
    pub fn ops_loc(&self, table: &str) -> Result<TableLoc> {
        Ok(TableLoc {
            url: self.store.ops_table_url(table)?,
            options: self.store.storage_options(),
        })
    }
}
