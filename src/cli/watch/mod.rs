//! `medallion watch`: land and promote every export as it arrives.
//!
//! Invariants:
//! - a file is taken only once it is complete (locally: size and modification time unchanged
//!   for `--settle-ms`; on S3: the object-created event, or a listed object);
//! - each file goes to the first dataset (dependency order) whose pipeline pattern matches its
//!   name; it is landed (content-addressed: a re-delivered, renamed or touched copy lands as
//!   the batch it already is), then promoted raw → trusted → curated through the same steps as
//!   `medallion promote`, one batch per file, files in arrival order (reference data first
//!   among files complete at the same time);
//! - a file is acknowledged (removed from the inbox once landed, its queue message deleted, the poll
//!   cursor advanced) once it is landed: from there the lake owns it, and a restart promotes
//!   whatever is still pending before it watches again;
//! - a held or failing file is reported and does not stop the others; backend errors are
//!   retried with backoff;
//! - the first SIGINT/SIGTERM lets the current step finish (every step commits atomically and
//!   is txn-guarded) and stops before the next one; a second one exits at once, which is as
//!   safe as a crash (the steps are crash-safe).
//!
//! Files: [`control`] (stop, wake-up, retries), [`arrival`] (one file: land, promote, report),
//! [`folder`] (the local inbox), [`s3`] (the landing bucket's `inbox/` prefix).

mod arrival;
mod control;
mod folder;
#[cfg(feature = "aws")]
mod s3;

use std::io::Write;

use anyhow::Result;

use super::config::Progress;
#[cfg(feature = "aws")]
use super::UsageError;
use super::{Exit, OutputFormat, WatchArgs};
use crate::pipeline::{self, PromoteOptions, PromotionSummary};
use crate::project::Project;
use crate::stage::Dataset;
use crate::vocab::Stage;
use control::{signals, with_backoff, Ctl};

/// The datasets, in dependency order.
fn datasets(p: &Project) -> Result<Vec<Dataset>> {
    let mut out = Vec::new();
    for d in p.datasets()? {
        out.push(p.dataset(&d)?);
    }
    Ok(out)
}

fn route<'a>(datasets: &'a [Dataset], name: &str) -> Option<&'a Dataset> {
    datasets.iter().find(|d| d.pipeline.wants(name))
}

/// Promotes whatever is pending (an interrupted run's batches) before watching.
async fn catch_up(
    p: &Project,
    datasets: &[Dataset],
    ctl: &Ctl,
    out: &mut dyn Write,
) -> Result<bool> {
    let mut summary = PromotionSummary::default();
    let mut ok = true;
    let opts = PromoteOptions {
        to: Stage::Trusted,
        dry_run: false,
        accept_held: false,
    };
    for ds in datasets {
        if ctl.stopped() {
            return Ok(ok);
        }
        match with_backoff("resume", ctl, || pipeline::promote(&p.lake, ds, opts)).await {
            Ok(s) => summary.extend(s),
            Err(e) => {
                writeln!(out, "resume {}: FAILED: {e}", ds.name())?;
                ok = false;
            }
        }
    }
    if ctl.stopped() {
        return Ok(ok);
    }
    let s = with_backoff("resume", ctl, || {
        pipeline::promote_curated(&p.lake, &ctl.curated, false)
    })
    .await?;
    summary.extend(s);
    if !summary.is_empty() {
        writeln!(out, "Resuming: promoting what an earlier run left pending.")?;
        super::promote::print_summary(&summary, OutputFormat::Text, out)?;
    } else if let Some(a) = &summary.alerts {
        if !a.fired.is_empty() || !a.resolved.is_empty() {
            super::promote::print_summary(&summary, OutputFormat::Text, out)?;
        }
    }
    out.flush()?;
    Ok(ok && summary.balanced())
}

/// `medallion watch`.
///
/// # Errors
/// Configuration errors, or an inbox that cannot be read.
pub async fn run(
    p: &Project,
    a: &WatchArgs,
    quiet: bool,
    progress: Progress,
    out: &mut dyn Write,
) -> Result<Exit> {
    let ctl = signals(quiet, progress, p.curated()?)?;
    let datasets = datasets(p)?;
    #[cfg(feature = "aws")]
    if p.config.backend == crate::config::Backend::Aws {
        if a.inbox.is_some() {
            return Err(UsageError("--inbox is a local folder; on the AWS backend the inbox is the landing bucket's `inbox/` prefix".into()).into());
        }
        return s3::watch(p, a, &datasets, &ctl, out).await;
    }
    folder::watch(p, a, &datasets, &ctl, out).await
}

/// Says the watch stopped; with `--once`, a file that did not go through is exit 1.
fn stopped(a: &WatchArgs, ok: bool, out: &mut dyn Write) -> Result<Exit> {
    writeln!(out, "Stopped.")?;
    out.flush()?;
    Ok(if a.once && !ok {
        Exit::DataStopped
    } else {
        Exit::Ok
    })
}
