//! Each step's report turned into its row of the books (`From<&Report> for PromotionRow`), and
//! the recording of a step's books and rule results in the ledger.
//!
//! Invariants: the conversions live on the stage side, so the ledger imports no step; a row
//! records what the report counted and nothing else (the books balance because the step's
//! counts do: `raw: rows_in = rows_promoted + rejected`, `trusted: rows_in = rows_promoted +
//! quarantined + duplicates_dropped`).

use super::raw::RawBatchReport;
use super::retention::PurgeReport;
use super::trusted::{ReleaseReport, TrustedBatchReport};
use super::Result;
use crate::lake::Lake;
use crate::ledger::books::warned_rules;
use crate::ledger::{self, PromotionRow, Step};

impl From<&RawBatchReport> for PromotionRow {
    fn from(r: &RawBatchReport) -> Self {
        Self {
            source_file: r.source_file.clone(),
            rows_in: r.landing_rows,
            rows_promoted: r.raw_rows,
            rejected: r.rejected,
            warned_rules: warned_rules(&r.rules),
            ..Self::new(Step::LandingToRaw, &r.dataset, &r.batch_id)
        }
    }
}

/// The books of a raw→trusted batch (its contract version is the caller's to add).
impl From<&TrustedBatchReport> for PromotionRow {
    fn from(r: &TrustedBatchReport) -> Self {
        Self {
            source_file: r.source_file.clone(),
            rows_in: r.raw_rows,
            rows_promoted: r.inserted,
            quarantined: r.quarantined,
            duplicates_dropped: r.duplicates_dropped,
            updated: r.updated,
            warned_rules: warned_rules(&r.rules),
            ..Self::new(Step::RawToTrusted, &r.dataset, &r.batch_id)
        }
    }
}

/// A quarantine release (rows in = released, promoted = new keys, quarantined = rows still in
/// quarantine), with the stamp that names its batch.
impl From<(&ReleaseReport, &str)> for PromotionRow {
    fn from((r, stamp): (&ReleaseReport, &str)) -> Self {
        Self {
            rows_in: r.released,
            rows_promoted: r.inserted,
            quarantined: r.still_quarantined,
            duplicates_dropped: r.duplicates_dropped,
            updated: r.updated,
            ..Self::new(
                Step::QuarantineRelease,
                &r.dataset,
                &format!("release-{stamp}"),
            )
        }
    }
}

/// A quarantine purge (rows in = rows purged, quarantined = rows left), one batch per cutoff
/// day.
impl From<&PurgeReport> for PromotionRow {
    fn from(r: &PurgeReport) -> Self {
        let batch = format!("purge-before-{}", r.cutoff.format("%Y-%m-%d"));
        Self {
            rows_in: r.purged,
            quarantined: r.remaining,
            ..Self::new(Step::QuarantinePurge, &r.dataset, &batch)
        }
    }
}

/// The books of a raw→trusted batch judged under `contract_version`.
pub fn trusted_books(r: &TrustedBatchReport, contract_version: &str) -> PromotionRow {
    PromotionRow {
        contract_version: contract_version.to_string(),
        ..r.into()
    }
}

/// Records a quarantine release in the books.
///
/// # Errors
/// Storage errors.
pub async fn record_release(lake: &Lake, r: &ReleaseReport, stamp: &str) -> Result<()> {
    Ok(ledger::record_books(lake, (r, stamp).into()).await?)
}

/// Records a quarantine purge in the books.
///
/// # Errors
/// Storage errors.
pub async fn record_purge(lake: &Lake, r: &PurgeReport) -> Result<()> {
    Ok(ledger::record_books(lake, r.into()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_report_becomes_balanced_books() {
        let r = RawBatchReport {
            dataset: "grades".into(),
            batch_id: "b000001-abc".into(),
            source_file: "grades.csv".into(),
            landing_rows: 10,
            raw_rows: 8,
            rejected: 2,
            rejects_by_kind: Default::default(),
            sample_rejects: Vec::new(),
            rules: Vec::new(),
            committed: true,
            held: None,
        };
        let row = PromotionRow::from(&r);
        assert_eq!(row.step, "landing-to-raw");
        assert_eq!(row.rows_in, row.rows_promoted + row.rejected);
        assert_eq!(row.source_file, "grades.csv");
    }
}
