//! Quarantine retention: quarantined rows hold pseudonymised but still personal data, so they
//! are kept for `quarantine_retention_days` (medallion.yaml) and then purged — deleted from the
//! Delta table and their files physically removed. The purge is recorded in the books
//! (`_ops/promotions`, step `quarantine-purge`) so the history still adds up.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{Dataset, Lake, Result, INGESTED_AT};
use crate::metrics::{Metric, Unit};
use crate::storage::delta;
use crate::vocab::TableRef;

/// Step name in the books.
pub const STEP: &str = crate::ledger::Step::QuarantinePurge.as_str();

/// What a purge did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    /// Dataset.
    pub dataset: String,
    /// Rows landed before this instant (UTC midnight) are purged.
    pub cutoff: DateTime<Utc>,
    /// Rows purged (or that would be).
    pub purged: u64,
    /// Data files physically removed.
    pub files_removed: u64,
    /// Rows left in quarantine.
    pub remaining: u64,
    /// Whether anything was written.
    pub committed: bool,
}

/// The purge cutoff: midnight UTC `days` days before `now`, so every run of one day purges the
/// same rows and records the same batch.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let day = (now - Duration::days(i64::from(days))).date_naive();
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(now)
}

/// Purges the quarantined rows of `ds` landed more than `days` days ago.
///
/// # Errors
/// Storage errors.
pub async fn purge_quarantine(
    lake: &Lake,
    ds: &Dataset,
    days: u32,
    dry_run: bool,
) -> Result<PurgeReport> {
    let name = ds.name();
    let loc = lake.table_loc(&TableRef::quarantine(name))?;
    let cut = cutoff(lake.clock.now(), days);
    let predicate = format!("{INGESTED_AT} < '{}'", cut.format("%Y-%m-%dT%H:%M:%SZ"));
    let old = delta::count_where(&loc, Some(&predicate)).await?;
    let total = delta::count_where(&loc, None).await?;
    let mut report = PurgeReport {
        dataset: name.to_string(),
        cutoff: cut,
        purged: old,
        files_removed: 0,
        remaining: total - old.min(total),
        committed: false,
    };
    if dry_run {
        return Ok(report);
    }
    if old > 0 {
        // Books first, with a batch id fixed by the cutoff day: a crash before the delete reruns
        // into the same (already recorded) batch.
        super::books::record_purge(lake, &report).await?;
        super::crash_point(STEP, "after-books");
        delta::delete_where(&loc, &predicate).await?;
        super::crash_point(STEP, "after-delete");
    }
    // Always, so a purge a crash cut off between the delete and the file removal is finished by
    // the next run: the purged rows' files go, and no earlier version can bring them back.
    report.files_removed = delta::vacuum_removed(&loc).await?;
    report.committed = old > 0 || report.files_removed > 0;
    if !report.committed {
        return Ok(report);
    }
    lake.sync_catalog().await?;
    if old > 0 {
        lake.metrics
            .emit(&[Metric::new(
                "RowsPurged",
                report.purged as f64,
                Unit::Count,
                name,
                "trusted",
            )])
            .await?;
    }
    tracing::info!(dataset = name, purged = report.purged, cutoff = %cut, "Purged old quarantined rows.");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_a_day_boundary() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T17:45:00Z")
            .map(|d| d.with_timezone(&Utc))
            .expect("time");
        assert_eq!(cutoff(now, 0).to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(cutoff(now, 30).to_rfc3339(), "2026-10-24T00:00:00+00:00");
    }
}
