//! Running a dataset's steps up to a target stage.
//!
//! Invariants: a step that loses a Delta commit race (on any table, the ledger's included: its
//! storage errors keep their kind) is run again, up to a bound, and skips what the winner
//! committed.

use serde::Serialize;

use crate::curated::{self, CuratedConfig, CuratedReport};
use crate::lake::Lake;
use crate::stage::raw::{self, RawBatchReport};
use crate::stage::trusted::{self, TrustedBatchReport};
use crate::stage::{Dataset, Result, StepOptions};
use crate::vocab::Stage;

/// Options of one `promote` run.
#[derive(Debug, Clone, Copy)]
pub struct PromoteOptions {
    /// Last stage to reach.
    pub to: Stage,
    /// Compute and report only.
    pub dry_run: bool,
    /// Promote batches that would be held back.
    pub accept_held: bool,
}

/// Everything one promotion did, per dataset, per batch.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PromotionSummary {
    /// landing→raw batches.
    pub raw: Vec<RawBatchReport>,
    /// raw→trusted batches.
    pub trusted: Vec<TrustedBatchReport>,
    /// trusted→curated products rebuilt.
    pub curated: Vec<CuratedReport>,
    /// What the alert rules changed after the curated build (none without rules or on a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<crate::alerts::AlertsReport>,
}

impl PromotionSummary {
    /// Whether every batch's books balance.
    pub fn balanced(&self) -> bool {
        self.raw.iter().all(RawBatchReport::balanced)
            && self.trusted.iter().all(TrustedBatchReport::balanced)
    }

    /// Whether a batch was held back (the run exits 1 after promoting the others).
    pub fn held(&self) -> bool {
        self.raw.iter().any(|r| r.held.is_some()) || self.trusted.iter().any(|t| t.held.is_some())
    }

    /// Whether the run found nothing to do.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.trusted.is_empty() && self.curated.is_empty()
    }

    /// Whether the run wrote anything (a committed batch or product, a recorded hold, an alert
    /// fired or resolved): only then is the catalog brought up to the Delta logs, so a no-op
    /// promotion reads the logs and nothing more.
    pub fn wrote(&self) -> bool {
        self.raw.iter().any(|r| r.committed || r.held.is_some())
            || self.trusted.iter().any(|t| t.committed || t.held.is_some())
            || self.curated.iter().any(|c| c.committed)
            || self
                .alerts
                .as_ref()
                .is_some_and(|a| !a.fired.is_empty() || !a.resolved.is_empty())
    }

    /// Appends another summary.
    pub fn extend(&mut self, other: PromotionSummary) {
        self.raw.extend(other.raw);
        self.trusted.extend(other.trusted);
        self.curated.extend(other.curated);
        if other.alerts.is_some() {
            self.alerts = other.alerts;
        }
    }
}

/// Builds the curated products from whatever trusted holds that they have not consumed.
///
/// # Errors
/// A curated rule stopping the step, or a backend error.
pub async fn promote_curated(
    lake: &Lake,
    cfg: &CuratedConfig,
    dry_run: bool,
) -> Result<PromotionSummary> {
    let curated = retry_conflicts("curated", || {
        curated::run(
            lake,
            cfg,
            StepOptions {
                dry_run,
                accept_held: false,
            },
        )
    })
    .await?;
    // Alerts are evaluated after every curated run in which anything they read changed
    // (built here or by a run that crashed before evaluating), or time-based rules moved on
    // an hour; an unchanged state is not read again and writes nothing.
    let alerts = match (&cfg.alerts, dry_run) {
        (Some(rules), false) => crate::alerts::evaluate_if_changed(lake, rules).await?,
        _ => None,
    };
    let summary = PromotionSummary {
        curated,
        alerts,
        ..PromotionSummary::default()
    };
    if summary.wrote() {
        lake.sync_catalog().await?;
    }
    Ok(summary)
}

/// Promotes `ds` through every step up to `opts.to` (trusted at most: curated products span
/// datasets, see [`promote_curated`]).
///
/// # Errors
/// A `fail` rule ([`crate::stage::StepError::Stopped`]) or a backend error.
pub async fn promote(lake: &Lake, ds: &Dataset, opts: PromoteOptions) -> Result<PromotionSummary> {
    let mut summary = PromotionSummary::default();
    if opts.to >= Stage::Raw {
        summary.extend(promote_step(lake, ds, Stage::Raw, opts).await?);
    }
    if opts.to >= Stage::Trusted {
        summary.extend(promote_step(lake, ds, Stage::Trusted, opts).await?);
    }
    Ok(summary)
}

/// Runs the one step of `ds` that writes `into` (raw or trusted), retrying a lost commit race
/// like [`promote`]: the stage binaries and `medallion promote` share this path.
///
/// # Errors
/// As [`promote`].
pub async fn promote_step(
    lake: &Lake,
    ds: &Dataset,
    into: Stage,
    opts: PromoteOptions,
) -> Result<PromotionSummary> {
    let step = StepOptions {
        dry_run: opts.dry_run,
        accept_held: opts.accept_held,
    };
    let mut summary = PromotionSummary::default();
    match into {
        Stage::Raw => summary.raw = retry_conflicts(ds.name(), || raw::run(lake, ds, step)).await?,
        Stage::Trusted => {
            summary.trusted = retry_conflicts(ds.name(), || trusted::run(lake, ds, step)).await?
        }
        _ => {}
    }
    if summary.wrote() {
        lake.sync_catalog().await?;
    }
    Ok(summary)
}

/// Attempts a step gets when concurrent promotions keep committing first.
const ATTEMPTS: u32 = 5;

/// Runs a step again when a concurrent promotion of the same dataset committed first: every
/// write is guarded by its batch's txn, so the rerun skips what the other process committed and
/// does the rest. Batches this process committed before the conflict are in the books, not in
/// the returned reports.
async fn retry_conflicts<T, F, Fut>(dataset: &str, mut step: F) -> Result<Vec<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(crate::stage::StepError::Storage(e))
                if e.is_commit_conflict() && attempt < ATTEMPTS =>
            {
                tracing::warn!(dataset, attempt, error = %e, "A concurrent promotion committed first; running the step again.");
                // Back off (with jitter) so the rerun starts after the other writer's step
                // rather than racing it table by table again.
                let jitter: u64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0..100);
                tokio::time::sleep(std::time::Duration::from_millis(
                    150 * u64::from(attempt) + jitter,
                ))
                .await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
