//! Running a dataset's steps up to a target stage.

use serde::Serialize;

use crate::curated::{self, CuratedConfig, CuratedReport};
use crate::stage::raw::{self, RawBatchReport};
use crate::stage::trusted::{self, TrustedBatchReport};
use crate::stage::{Dataset, Lake, Result, StepOptions};
use crate::storage::Stage;

/// Options of one `promote` run.
#[derive(Debug, Clone, Copy)]
pub struct PromoteOptions {
    /// Last stage to reach.
    pub to: Stage,
    /// Compute and report only.
    pub dry_run: bool,
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
}

impl PromotionSummary {
    /// Whether every batch's books balance.
    pub fn balanced(&self) -> bool {
        self.raw.iter().all(RawBatchReport::balanced)
            && self.trusted.iter().all(TrustedBatchReport::balanced)
    }

    /// Whether the run found nothing to do.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.trusted.is_empty() && self.curated.is_empty()
    }

    /// Appends another summary.
    pub fn extend(&mut self, other: PromotionSummary) {
        self.raw.extend(other.raw);
        self.trusted.extend(other.trusted);
        self.curated.extend(other.curated);
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
    let curated = curated::run(lake, cfg, StepOptions { dry_run }).await?;
    Ok(PromotionSummary {
        curated,
        ..PromotionSummary::default()
    })
}

/// Promotes `ds` through every step up to `opts.to` (trusted at most: curated products span
/// datasets, see [`promote_curated`]).
///
/// # Errors
/// A `fail` rule ([`crate::stage::StepError::Stopped`]) or a backend error.
pub async fn promote(lake: &Lake, ds: &Dataset, opts: PromoteOptions) -> Result<PromotionSummary> {
    let step = StepOptions {
        dry_run: opts.dry_run,
    };
    let mut summary = PromotionSummary::default();
    if opts.to >= Stage::Raw {
        summary.raw = raw::run(lake, ds, step).await?;
    }
    if opts.to >= Stage::Trusted {
        summary.trusted = trusted::run(lake, ds, step).await?;
    }
    Ok(summary)
}
