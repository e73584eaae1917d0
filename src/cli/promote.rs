//! Promotion verbs: `medallion promote` (every stage up to the target) and the stage binaries
//! (`landing-to-raw`, `raw-to-trusted`, `trusted-to-curated`: one stage), both through
//! [`pipeline::promote_step`] (which retries a lost commit race) and one summary printer.
//!
//! Invariants: the exit code says 3 when the books do not balance, 1 when a batch was held
//! back or a `fail` rule stopped it, else 0.

use std::io::Write;

use anyhow::Result;

use super::config::{Progress, RunConfig};
use super::{Exit, OutputFormat, PromoteArgs, StepCli, TargetStage};
use crate::ledger;
use crate::pipeline::{self, PromoteOptions, PromotionSummary};
use crate::project::Project;
use crate::report;
use crate::vocab::Stage;

pub(super) async fn promote_all(
    p: &Project,
    datasets: &[String],
    opts: PromoteOptions,
    progress: Progress,
) -> Result<PromotionSummary> {
    use super::progress::{rows, Step};
    let mut summary = PromotionSummary::default();
    for name in datasets {
        let ds = p.dataset(name)?;
        for stage in [Stage::Raw, Stage::Trusted] {
            if opts.to < stage {
                continue;
            }
            let step = Step::start(progress, &format!("{name} → {stage}"));
            let s = pipeline::promote_step(&p.lake, &ds, stage, opts).await?;
            step.finish(rows(&s));
            summary.extend(s);
        }
    }
    if opts.to == Stage::Curated {
        let step = Step::start(progress, "curated products and alerts");
        let s = pipeline::promote_curated(&p.lake, &p.curated()?, opts.dry_run).await?;
        step.finish(rows(&s));
        summary.extend(s);
    }
    Ok(summary)
}

pub(super) fn print_summary(
    s: &PromotionSummary,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        OutputFormat::Text => write!(out, "{}", report::promotion_text(s))?,
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(s)?)?,
    }
    Ok(())
}

pub(super) async fn promote(
    p: &Project,
    a: &PromoteArgs,
    progress: Progress,
    out: &mut dyn Write,
) -> Result<Exit> {
    let datasets = if a.all {
        p.datasets()?
    } else {
        a.datasets.clone()
    };
    let to = match a.to {
        TargetStage::Raw => Stage::Raw,
        TargetStage::Trusted => Stage::Trusted,
        TargetStage::Curated => Stage::Curated,
    };
    let opts = a.run.options(to);
    let mut p = p.clone();
    p.lake.only = a.run.selector();
    let s = promote_all(&p, &datasets, opts, progress).await?;
    print_summary(&s, a.run.format, out)?;
    Ok(exit_of(&s))
}

/// 3 when the books do not balance, 1 when a batch was held back, else 0.
pub(super) fn exit_of(s: &PromotionSummary) -> Exit {
    if !s.balanced() {
        Exit::Backend
    } else if s.held() {
        Exit::DataStopped
    } else {
        Exit::Ok
    }
}

/// Entry of the stage binaries: runs one step for the given (or all) datasets.
///
/// # Errors
/// As [`run`].
pub async fn run_step(cli: StepCli, to: Stage, out: &mut dyn Write) -> Result<Exit> {
    let rc = RunConfig::resolve(cli.project.as_deref(), false)?;
    if cli.run.dry_run {
        return step(&rc, cli, to, out).await;
    }
    let action = match to {
        Stage::Raw => ledger::Step::LandingToRaw,
        Stage::Trusted => ledger::Step::RawToTrusted,
        _ => ledger::Step::TrustedToCurated,
    };
    super::audit::audited(&rc, action.as_str(), step(&rc, cli, to, out)).await
}

async fn step(rc: &RunConfig, cli: StepCli, to: Stage, out: &mut dyn Write) -> Result<Exit> {
    let mut p = rc.open().await?;
    p.lake.only = cli.run.selector();
    let datasets = if cli.datasets.is_empty() {
        p.datasets()?
    } else {
        cli.datasets.clone()
    };
    let mut summary = PromotionSummary::default();
    if to == Stage::Curated {
        let s = pipeline::promote_curated(&p.lake, &p.curated()?, cli.run.dry_run).await?;
        print_summary(&s, cli.run.format, out)?;
        return Ok(Exit::Ok);
    }
    for name in &datasets {
        let ds = p.dataset(name)?;
        summary.extend(pipeline::promote_step(&p.lake, &ds, to, cli.run.options(to)).await?);
    }
    print_summary(&summary, cli.run.format, out)?;
    Ok(exit_of(&summary))
}
