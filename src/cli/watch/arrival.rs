//! One arrived file: routed to its dataset, landed, acknowledged, promoted raw → trusted →
//! curated, and reported in one line.
//!
//! Invariants: a file is acknowledged only once it is landed (from there the lake owns it) or
//! when no pipeline matches its name; a held or failing file yields an [`Outcome`], never an
//! error that would stop the watch.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::control::{with_backoff, Ctl};
use super::route;
use crate::pipeline::{self, PromoteOptions, PromotionSummary};
use crate::project::Project;
use crate::stage::{Dataset, StepError};
use crate::storage::LandOutcome;
use crate::vocab::Stage;

/// What became of one arrived file.
pub(super) enum Outcome {
    /// No pipeline pattern matches the name.
    Unmatched,
    /// Landed (or already landed); `summary` is what its promotion did.
    Done {
        dataset: String,
        batch: String,
        already: Option<String>,
        summary: PromotionSummary,
    },
    /// Held at a stage (stays pending).
    Held {
        dataset: String,
        batch: String,
        stage: &'static str,
        reason: String,
    },
    /// Landed, then a step failed (a `fail` rule, or a backend error after the retries).
    Failed {
        dataset: String,
        batch: String,
        error: String,
    },
    /// Landed; a stop was asked for before its promotion finished.
    Interrupted { dataset: String, batch: String },
}

/// An arrived file's content: in memory (an object fetched from an S3 inbox) or a file on
/// disk (an inbox folder), landed by streaming so that memory does not grow with its size.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrived<'a> {
    /// The content itself (only an S3 inbox delivers it so: unused without the `aws` feature).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    Bytes(&'a [u8]),
    /// A file holding it.
    File(&'a Path),
}

/// Lands the content delivered as `name` for `ds`.
async fn land(
    p: &Project,
    ds: &Dataset,
    name: &str,
    content: Arrived<'_>,
    ctl: &Ctl,
) -> Result<LandOutcome, StepError> {
    let format = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson") => "jsonl",
        Some("csv") => "csv",
        Some("parquet") => "parquet",
        _ => ds.pipeline.source.format.extension(),
    };
    with_backoff("land", ctl, || async {
        let store = &p.lake.store;
        let now = p.lake.clock.now();
        Ok(match content {
            Arrived::Bytes(bytes) => store.land(ds.name(), name, format, bytes, now).await?,
            Arrived::File(path) => store.land_path(ds.name(), name, format, path, now).await?,
        })
    })
    .await
}

/// Promotes `ds` through curated, step by step, stopping between steps when asked.
async fn promote_file(p: &Project, ds: &Dataset, batch: &str, ctl: &Ctl) -> Outcome {
    let opts = PromoteOptions {
        to: Stage::Trusted,
        dry_run: false,
        accept_held: false,
    };
    let mut summary = PromotionSummary::default();
    let failed = |e: StepError| Outcome::Failed {
        dataset: ds.name().to_string(),
        batch: batch.to_string(),
        error: e.to_string(),
    };
    let interrupted = || Outcome::Interrupted {
        dataset: ds.name().to_string(),
        batch: batch.to_string(),
    };
    for (stage, name) in [(Stage::Raw, "raw"), (Stage::Trusted, "trusted")] {
        if ctl.stopped() {
            return interrupted();
        }
        let step =
            crate::cli::progress::Step::start(ctl.progress, &format!("{} → {name}", ds.name()));
        let s = match with_backoff(name, ctl, || {
            pipeline::promote_step(&p.lake, ds, stage, opts)
        })
        .await
        {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        step.finish(crate::cli::progress::rows(&s));
        let held = s
            .raw
            .iter()
            .filter(|r| r.batch_id == batch)
            .filter_map(|r| r.held.as_ref())
            .chain(
                s.trusted
                    .iter()
                    .filter(|t| t.batch_id == batch)
                    .filter_map(|t| t.held.as_ref()),
            )
            .next()
            .cloned();
        summary.extend(s);
        if let Some(h) = held {
            return Outcome::Held {
                dataset: ds.name().to_string(),
                batch: batch.to_string(),
                stage: name,
                reason: h.reason,
            };
        }
    }
    if ctl.stopped() {
        return interrupted();
    }
    let step = crate::cli::progress::Step::start(ctl.progress, "curated products and alerts");
    match with_backoff("curated", ctl, || {
        pipeline::promote_curated(&p.lake, &ctl.curated, false)
    })
    .await
    {
        Ok(s) => {
            step.finish(crate::cli::progress::rows(&s));
            summary.extend(s);
        }
        Err(e) => return failed(e),
    }
    Outcome::Done {
        dataset: ds.name().to_string(),
        batch: batch.to_string(),
        already: None,
        summary,
    }
}

/// Lands and promotes one arrived file.
pub(super) async fn handle(
    p: &Project,
    datasets: &[Dataset],
    name: &str,
    content: Arrived<'_>,
    ctl: &Ctl,
    ack: impl std::future::Future<Output = Result<()>>,
) -> Result<Outcome> {
    let Some(ds) = route(datasets, name) else {
        ack.await?;
        return Ok(Outcome::Unmatched);
    };
    let (batch, already) = match land(p, ds, name, content, ctl).await? {
        LandOutcome::Landed(f) => (f.batch_id(), None),
        LandOutcome::AlreadyLanded(f) => (f.batch_id(), Some(f.original_name)),
    };
    // Landed: from here the lake owns the file.
    ack.await?;
    let mut outcome = promote_file(p, ds, &batch, ctl).await;
    if let Outcome::Done { already: a, .. } = &mut outcome {
        *a = already;
    }
    Ok(outcome)
}

pub(super) fn report(name: &str, o: &Outcome, out: &mut dyn Write) -> Result<bool> {
    let ok = match o {
        Outcome::Unmatched => {
            writeln!(
                out,
                "{name}: no pipeline pattern matches this name; not landed (set aside)"
            )?;
            false
        }
        Outcome::Done {
            dataset,
            batch,
            already,
            summary,
        } => {
            let raw = summary.raw.iter().find(|r| &r.batch_id == batch);
            let trusted = summary.trusted.iter().find(|t| &t.batch_id == batch);
            match (already, raw, trusted) {
                (Some(orig), None, None) => writeln!(
                    out,
                    "{name}: same content already landed as {dataset} batch {batch} ({orig}); nothing new to promote"
                )?,
                _ => {
                    let mut parts = Vec::new();
                    if let Some(r) = raw {
                        parts.push(format!(
                            "landing {} = raw {} + rejected {}",
                            r.landing_rows, r.raw_rows, r.rejected
                        ));
                    }
                    if let Some(t) = trusted {
                        parts.push(format!(
                            "raw {} = trusted {} + quarantined {} + duplicates dropped {}",
                            t.raw_rows,
                            t.inserted + t.updated,
                            t.quarantined,
                            t.duplicates_dropped
                        ));
                    }
                    let books = if summary.balanced() {
                        "books balance"
                    } else {
                        "BOOKS DO NOT BALANCE"
                    };
                    writeln!(
                        out,
                        "{name}: promoted as {dataset} batch {batch} through curated: {}; {books}",
                        parts.join("; ")
                    )?;
                }
            }
            let text = crate::report::promotion_text(&PromotionSummary {
                alerts: summary.alerts.clone(),
                ..PromotionSummary::default()
            });
            for line in text.lines().skip(1) {
                writeln!(out, "{line}")?;
            }
            summary.balanced()
        }
        Outcome::Held {
            dataset,
            batch,
            stage,
            reason,
        } => {
            writeln!(
                out,
                "{name}: HELD at {stage} as {dataset} batch {batch}: {reason} (nothing committed; `medallion report {dataset}`)"
            )?;
            false
        }
        Outcome::Failed {
            dataset,
            batch,
            error,
        } => {
            writeln!(out, "{name}: FAILED as {dataset} batch {batch}: {error}")?;
            false
        }
        Outcome::Interrupted { dataset, batch } => {
            writeln!(
                out,
                "{name}: landed as {dataset} batch {batch}; stopped before its promotion finished (the next start resumes it)"
            )?;
            true
        }
    };
    out.flush()?;
    Ok(ok)
}
