//! The one batch driver of landing → raw and raw → trusted. A step says how it finds, judges
//! and writes one landed file's batch ([`BatchStep`]); the driver runs every pending batch in
//! the same order:
//!
//! pending → judge (the step reads and judges; writes only into pending, uncommitted appends)
//! → held: stop here → dry run: count the books (the plan) and stop → side table committed (rejects, quarantine) → the books →
//! rule results into the ledger → main table committed **last, with the books inside its
//! commit** → books copied into the ledger → metrics → catalog.
//!
//! Invariants (held by this code, not by each step):
//! - nothing of a batch is visible before it is judged whole: a stopped (`fail` rule), held or
//!   dry-run batch commits nothing, and its pending appends are dropped;
//! - the main table's commit carries the batch's txn and its books, so "main table committed"
//!   is "batch done"; a crash between it and the ledger is settled at the next run from the
//!   main table's history ([`settle`]), never counted twice;
//! - every crash point (`<step>:<after-side>`, `before-data`, `after-data`) reruns into the
//!   same tables: each commit is txn-guarded, so it happens once;
//! - a batch a concurrent promotion committed first is not reported twice.

use std::collections::HashSet;
use std::time::Instant;

use async_trait::async_trait;

use super::{crash_point, hold, ColumnComments, Dataset, Lake, Registration, Result, StepOptions};
use crate::ledger::{self, CommitMeta, Hold, HoldRow, PromotionRow, Step};
use crate::metrics::io::IoSnapshot;
use crate::metrics::{Metric, Unit};
use crate::rules::eval::RuleResult;
use crate::storage::delta::{self, TableLoc};
use crate::storage::{LandedFile, StorageError};
use crate::vocab::{commit_key, Stage};

/// What the driver needs of a step's report on one batch.
pub(crate) trait BatchReport: Send {
    /// The batch.
    fn batch_id(&self) -> &str;
    /// Rule results of the batch.
    fn rules(&self) -> &[RuleResult];
    /// Why the batch is held back, if it is.
    fn held(&self) -> Option<&Hold>;
    /// Its row of `_ops/holds` when held.
    fn hold_row(&self, h: &Hold) -> HoldRow;
    /// Whether its tables were written.
    fn committed(&self) -> bool;
    /// The step's own counts of a committed batch, as metrics (name, value, unit); the driver
    /// adds the duration, every rule's pass rate and the cost metrics.
    fn counts(&self) -> Vec<(&'static str, f64, Unit)>;
}

/// A table a step writes, for the catalog.
pub(crate) struct Output {
    /// Table name within the stage.
    pub table: String,
    /// `data`, `rejects`, `quarantine`.
    pub kind: &'static str,
    /// Catalog description.
    pub description: &'static str,
    /// Column comments beyond the contract's.
    pub comments: Option<ColumnComments>,
}

/// One batch step, driven by [`drive`].
#[async_trait]
pub(crate) trait BatchStep: Send {
    /// The step's report on one batch.
    type Report: BatchReport;
    /// A judged batch's uncommitted writes.
    type Pending: Send;
    /// The step (txn ids, commit metadata, books, crash points).
    const STEP: Step;
    /// The stage it writes.
    const STAGE: Stage;
    /// Name of the crash point right after the side table's commit.
    const AFTER_SIDE: &'static str;

    /// Reads and judges one landed file (every landed file of the run's share is offered, in
    /// landing order). `None`: nothing to do for it (not pending, or committed meanwhile). On
    /// a dry run the pending writes hold no appends.
    async fn judge(&mut self, file: &LandedFile) -> Result<Option<(Self::Report, Self::Pending)>>;
    /// Commits the side table (rejects, quarantine) of a judged batch.
    async fn commit_side(&mut self, pending: &mut Self::Pending) -> Result<()>;
    /// The batch's books (whatever must be read to count them, such as the keys the main
    /// table already holds, is read here; nothing is written); the report takes the final
    /// counts. A dry run stops here: its report is the plan, with the counts a real run
    /// would book.
    async fn books(
        &mut self,
        report: &mut Self::Report,
        pending: &mut Self::Pending,
    ) -> Result<PromotionRow>;
    /// Commits the main table, `meta` (with the books) in its commit. `false`: a concurrent
    /// promotion committed this batch first.
    async fn commit_main(
        &mut self,
        report: &Self::Report,
        pending: Self::Pending,
        meta: &CommitMeta,
    ) -> Result<bool>;
    /// The tables the step writes: the main table first.
    fn outputs(&self) -> Vec<Output>;
}

/// Runs `step` over every pending batch of `ds`.
///
/// # Errors
/// The step's errors (a `fail` rule stops it before anything of the batch is committed);
/// storage, catalog and metrics errors.
pub(crate) async fn drive<S: BatchStep>(
    step: &mut S,
    lake: &Lake,
    ds: &Dataset,
    opts: StepOptions,
) -> Result<Vec<S::Report>> {
    let name = ds.name();
    let stage = S::STAGE.as_str();
    let step_name = S::STEP.as_str();
    let mut reports: Vec<S::Report> = Vec::new();
    for file in lake.landed(name).await? {
        let (started, io_start) = (Instant::now(), IoSnapshot::now());
        let Some((mut report, mut pending)) = step.judge(&file).await? else {
            continue;
        };
        let batch = report.batch_id().to_string();
        if let Some(h) = report.held() {
            tracing::warn!(dataset = name, batch = %batch, reason = %h.reason, "Holding the batch back.");
            if !opts.dry_run {
                ledger::holds::record(lake, &report.hold_row(h)).await?;
                lake.metrics.emit(&hold::metrics(name, stage, h)).await?;
            }
            // The pending appends are dropped uncommitted: nothing of this batch is written.
            reports.push(report);
            continue;
        }
        if opts.dry_run {
            step.books(&mut report, &mut pending).await?;
            reports.push(report);
            continue;
        }
        step.commit_side(&mut pending).await?;
        crash_point(step_name, S::AFTER_SIDE);
        let books = step.books(&mut report, &mut pending).await?;
        ledger::record_rules(lake, name, S::STAGE, &batch, report.rules()).await?;
        crash_point(step_name, "before-data");
        let meta = batch_meta(S::STEP, &batch, ds).with_books(books.clone());
        if !step.commit_main(&report, pending, &meta).await? {
            tracing::warn!(dataset = name, batch = %batch, "A concurrent promotion committed this batch first.");
            continue;
        }
        crash_point(step_name, "after-data");
        ledger::record_books(lake, books).await?;
        let metrics = batch_metrics(
            lake,
            (name, S::STAGE),
            report.counts(),
            started.elapsed().as_secs_f64(),
            report.rules(),
            &io_start,
        );
        lake.metrics.emit(&metrics).await?;
        tracing::info!(dataset = name, batch = %batch, step = step_name, "Promoted batch.");
        reports.push(report);
    }
    if let Some(last) = reports.iter().rfind(|r| r.committed()) {
        let last = last.batch_id().to_string();
        for out in step.outputs() {
            lake.register(Registration {
                dataset: name,
                stage: Some(S::STAGE),
                table: &out.table,
                kind: out.kind,
                description: out.description,
                contract: Some(&ds.contract),
                last_batch: Some(&last),
                comments: out.comments,
            })
            .await?;
        }
    }
    Ok(reports)
}

/// The commit metadata every table of a batch is written with: its step, batch and contract
/// version (the main table's commit adds the books).
pub(crate) fn batch_meta(step: Step, batch: &str, ds: &Dataset) -> CommitMeta {
    CommitMeta::batch(step, batch).with_contract(&ds.contract.version)
}

/// The metrics of one committed batch or curated product, in one order for every step: the
/// step's own counts, `DurationSeconds`, every rule's `RulePassRate`, then the cost metrics of
/// the I/O since `io_start`.
pub(crate) fn batch_metrics(
    lake: &Lake,
    (name, stage): (&str, Stage),
    counts: Vec<(&'static str, f64, Unit)>,
    seconds: f64,
    rules: &[RuleResult],
    io_start: &IoSnapshot,
) -> Vec<Metric> {
    let stage = stage.as_str();
    let mut metrics: Vec<Metric> = counts
        .into_iter()
        .map(|(metric, value, unit)| Metric::new(metric, value, unit, name, stage))
        .collect();
    metrics.push(Metric::new(
        "DurationSeconds",
        seconds,
        Unit::Seconds,
        name,
        stage,
    ));
    metrics.extend(rules.iter().map(|r| {
        Metric::new("RulePassRate", r.pass_rate(), Unit::None, name, stage).with_rule(&r.rule_id)
    }));
    metrics.extend(lake.cost_metrics(io_start, name, stage));
    metrics
}

/// The batches `step` has committed to the main table at `loc` (from its history, one read),
/// after copying into the ledger any batch's books that a crash kept from being recorded after
/// its data commit.
///
/// # Errors
/// Storage errors; [`StorageError::Corrupt`] for books in a commit that cannot be read.
pub(crate) async fn settle(
    lake: &Lake,
    ds: &Dataset,
    loc: &TableLoc,
    step: Step,
) -> Result<HashSet<String>> {
    let commits = delta::step_commits(loc, &[step.as_str()]).await?;
    let mut done = HashSet::new();
    let mut recorded = None;
    for info in commits {
        let Some(batch) = CommitMeta::read(&info).batch else {
            continue;
        };
        let batch = batch.as_str();
        done.insert(batch.to_string());
        if !info.contains_key(commit_key::BOOKS) {
            continue;
        }
        if recorded.is_none() {
            recorded = Some(ledger::recorded_batches(lake, ds.name(), step).await?);
        }
        if recorded.as_ref().is_some_and(|r| r.contains(batch)) {
            continue;
        }
        let Some(row) = CommitMeta::read_books(&info).map_err(|e| StorageError::Corrupt {
            path: loc.url.to_string(),
            message: format!("books of batch {batch}: {e}"),
        })?
        else {
            continue;
        };
        tracing::info!(
            dataset = ds.name(),
            batch,
            "Recording books a crash left unrecorded."
        );
        ledger::record_books(lake, row).await?;
    }
    Ok(done)
}
