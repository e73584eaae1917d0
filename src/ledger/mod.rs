//! The ledger: the lake's own history, as Delta tables under `_ops/` — the books of every batch
//! of every step ([`books`]: `promotions`), one row per rule per batch ([`quality`]:
//! `quality_results`), the batches held back ([`holds`]) — and the typed metadata medallion
//! writes into its Delta commits ([`commit`]).
//!
//! Invariants:
//! - the ledger owns these tables: their schemas, column comments, writes and reads live here
//!   and nowhere else;
//! - every books and quality write is idempotent by the batch's txn id (a rerun after a crash
//!   records nothing twice); a hold is an event, one row per attempt;
//! - the ledger imports no step: each step turns its own report into a [`PromotionRow`]
//!   (`From<&Report>`, in `stage::books`), so the arrows run step → ledger only;
//! - commit metadata is built and read through [`CommitMeta`] only, so its keys
//!   ([`crate::vocab::commit_key`]) are spelled once.

pub mod books;
pub mod commit;
pub mod holds;
pub mod quality;
mod table;

use std::fmt;

pub use books::{history, record_books, recorded_batches, History, PromotionRow};
pub use commit::CommitMeta;
pub use holds::{Hold, HoldRow};
pub use quality::{
    quarantine_samples, quarantined, record_rules, rule_history, QuarantinedRow, StoredResult,
};

use crate::frame::FrameError;
use crate::storage::StorageError;

/// Result alias for the ledger.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ops table could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A row could not be built or read back.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl From<polars::prelude::PolarsError> for LedgerError {
    fn from(e: polars::prelude::PolarsError) -> Self {
        Self::Frame(e.into())
    }
}

impl From<deltalake::arrow::error::ArrowError> for LedgerError {
    fn from(e: deltalake::arrow::error::ArrowError) -> Self {
        Self::Frame(e.into())
    }
}

/// The steps that write commits and books. Their names are stored (`ops.promotions.step`,
/// commit metadata, txn ids), so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// landing → raw.
    LandingToRaw,
    /// raw → trusted.
    RawToTrusted,
    /// Quarantined rows released into trusted after a rule or contract fix.
    QuarantineRelease,
    /// Quarantined rows past their retention deleted.
    QuarantinePurge,
    /// A student erased (`medallion forget`).
    Forget,
    /// trusted → curated.
    TrustedToCurated,
    /// Alert states recorded.
    Alerts,
}

impl Step {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LandingToRaw => "landing-to-raw",
            Self::RawToTrusted => "raw-to-trusted",
            Self::QuarantineRelease => "quarantine-release",
            Self::QuarantinePurge => "quarantine-purge",
            Self::Forget => "forget",
            Self::TrustedToCurated => "trusted-to-curated",
            Self::Alerts => "alerts",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
