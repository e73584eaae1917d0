//! Quarantine release: every quarantined row re-judged under the current contract and rules;
//! rows that now pass are upserted into trusted and leave quarantine.
//!
//! Invariants: trusted is written first and by primary key, so a crash before the quarantine
//! is rewritten reruns into the same records (never duplicates); only row rules decide a
//! release (dataset rules judged the original batches); the release is booked as a batch.

use std::collections::{HashMap, HashSet};

use polars::prelude::*;
use serde::Serialize;

use super::judge::{BatchJudge, Judged};
use super::trusted::{
    classify, merge_winners, raw_columns, reference_keys, Classified, RELEASE_STEP,
};
use super::{Dataset, Lake, Result};
use crate::frame;
use crate::ledger::{CommitMeta, Step};
use crate::rules::eval::{self, AsOf, FAILURES, RULE_IDS};
use crate::storage::delta::{self, txn_id};
use crate::vocab::{Stage, TableRef};

/// What `quarantine release` did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReleaseReport {
    /// Dataset.
    pub dataset: String,
    /// Quarantined rows re-evaluated.
    pub evaluated: u64,
    /// Rows that now pass every rule and left quarantine.
    pub released: u64,
    /// Of those, new keys in trusted.
    pub inserted: u64,
    /// Of those, newer corrections that replaced a trusted row.
    pub updated: u64,
    /// Released rows dropped as duplicates or older than what trusted holds.
    pub duplicates_dropped: u64,
    /// Rows still failing, left in quarantine.
    pub still_quarantined: u64,
}

/// Re-evaluates every quarantined row under the current contract and rules; rows that now pass
/// are upserted into trusted (by primary key, so a rerun never duplicates them) and then leave
/// quarantine. Trusted is written first: a crash in between leaves the rows in quarantine and
/// the rerun upserts them again as the same records.
///
/// # Errors
/// [`StepError::Stopped`] when a `fail` rule fails; storage errors.
pub async fn release(lake: &Lake, ds: &Dataset, dry_run: bool) -> Result<ReleaseReport> {
    let name = ds.name();
    let q_loc = lake.table_loc(&TableRef::quarantine(name))?;
    let data_loc = lake.loc(Stage::Trusted, name)?;
    let mut report = ReleaseReport {
        dataset: name.to_string(),
        ..ReleaseReport::default()
    };
    let Some((schema, batches)) = delta::query(&q_loc, "SELECT * FROM t").await? else {
        return Ok(report);
    };
    let all = frame::from_batches(&schema, &batches)?;
    report.evaluated = all.height() as u64;
    if all.height() == 0 {
        return Ok(report);
    }
    let raw = all
        .clone()
        .lazy()
        .drop(by_name([RULE_IDS, FAILURES], true, false))
        .collect()?;
    let types = |c: &str| ds.contract.column(c).and_then(|c| c.ty);
    let refs = reference_keys(lake, ds).await?;
    let history = HashMap::new();
    let mut rules = ds.rules.clone();
    // Dataset-level rules judged the original batches; only row rules decide a release.
    rules.rules.retain(|r| r.check.is_row_level());
    let cx = eval::Context {
        as_of: AsOf(lake.clock.now()),
        types: &types,
        history: &history,
        refs: &refs,
        delivered: None,
        batch_unique: None,
    };
    // The quarantine is judged as one chunk: its rows come from many batches.
    let mut judge = BatchJudge::new(ds, &rules, None, None);
    let mut remaining = judge
        .chunk(raw, &raw_columns(ds), &HashSet::new(), &cx)?
        .quarantine;
    let Judged {
        valid,
        in_batch_duplicates: dups,
        ..
    } = judge.finish(&cx)?;
    report.still_quarantined = remaining.height() as u64;
    report.released = report.evaluated - report.still_quarantined;
    if report.released == 0 || dry_run {
        return Ok(report);
    }
    let Classified {
        winners,
        counts,
        duplicates_dropped,
        courses,
        ..
    } = classify(&data_loc, ds, valid, dups).await?;
    report.inserted = counts.inserted;
    report.updated = counts.updated;
    report.duplicates_dropped = duplicates_dropped;
    let stamp = lake.clock.now().timestamp_micros().to_string();
    let app = txn_id(RELEASE_STEP, &stamp);
    // Curated picks a release up like a batch: its label and the courses it touches.
    let meta = CommitMeta::batch(Step::QuarantineRelease, format!("release-{stamp}"))
        .with_courses(courses)
        .entries();
    merge_winners(&data_loc, ds, winners, &app, &meta).await?;
    super::crash_point(RELEASE_STEP, "after-trusted");
    let (rs, rb) = frame::to_batches(&mut remaining)?;
    delta::overwrite(&q_loc, rs, rb, &app, &meta, &[]).await?;
    super::crash_point(RELEASE_STEP, "after-quarantine");
    super::books::record_release(lake, &report, &stamp).await?;
    lake.sync_catalog().await?;
    Ok(report)
}
