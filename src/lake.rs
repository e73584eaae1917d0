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
}

impl Lake {
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
