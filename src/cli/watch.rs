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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use super::config::Progress;
use super::{Exit, OutputFormat, UsageError, WatchArgs};
use crate::pipeline::{self, PromoteOptions, PromotionSummary};
use crate::project::Project;
use crate::stage::{Dataset, StepError};
use crate::storage::LandOutcome;
use crate::vocab::Stage;

/// Attempts of a step that meets a backend error.
const ATTEMPTS: u32 = 4;

/// Shared stop flag and wake-up.
#[derive(Clone)]
pub(crate) struct Ctl {
    /// The curated settings and alert rules, loaded (and validated) when the watch started.
    curated: Arc<crate::curated::CuratedConfig>,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    progress: Progress,
}

impl Ctl {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, or less when a stop is asked for.
    pub(crate) async fn sleep(&self, d: Duration) {
        if self.stopped() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.wake.notified() => {}
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers.
fn signals(quiet: bool, progress: Progress, curated: crate::curated::CuratedConfig) -> Result<Ctl> {
    let ctl = Ctl {
        curated: Arc::new(curated),
        stop: Arc::new(AtomicBool::new(false)),
        wake: Arc::new(tokio::sync::Notify::new()),
        progress,
    };
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let c = ctl.clone();
    tokio::spawn(async move {
        loop {
            #[cfg(unix)]
            let name = tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            #[cfg(not(unix))]
            let name = {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            };
            if c.stop.swap(true, Ordering::SeqCst) {
                eprintln!("{name} again: stopping now (the next start finishes what was pending)");
                std::process::exit(130);
            }
            if !quiet {
                eprintln!("{name}: finishing the current step, then stopping (again to stop now)");
            }
            c.wake.notify_waiters();
        }
    });
    Ok(ctl)
}

/// Runs a step again after a backend error, with exponential backoff; a `fail` rule or a
/// contract stop is not retried.
async fn with_backoff<T, F, Fut>(what: &str, ctl: &Ctl, mut step: F) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StepError>>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e)
                if !matches!(e, StepError::Stopped { .. })
                    && attempt < ATTEMPTS
                    && !ctl.stopped() =>
            {
                tracing::warn!(what, attempt, error = %e, "Backend error; retrying after a pause.");
                ctl.sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What became of one arrived file.
enum Outcome {
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

/// Lands `bytes` delivered as `name` for `ds`.
async fn land(
    p: &Project,
    ds: &Dataset,
    name: &str,
    bytes: &[u8],
    ctl: &Ctl,
) -> Result<LandOutcome, StepError> {
    let format = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson") => "jsonl",
        Some("csv") => "csv",
        Some("parquet") => "parquet",
        _ => ds.pipeline.source.format.extension(),
    };
    with_backoff("land", ctl, || async {
        Ok(p.lake
            .store
            .land(ds.name(), name, format, bytes, p.lake.clock.now())
            .await?)
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
        let step = super::progress::Step::start(ctl.progress, &format!("{} → {name}", ds.name()));
        let s = match with_backoff(name, ctl, || {
            pipeline::promote_step(&p.lake, ds, stage, opts)
        })
        .await
        {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        step.finish(super::progress::rows(&s));
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
    let step = super::progress::Step::start(ctl.progress, "curated products and alerts");
    match with_backoff("curated", ctl, || {
        pipeline::promote_curated(&p.lake, &ctl.curated, false)
    })
    .await
    {
        Ok(s) => {
            step.finish(super::progress::rows(&s));
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
async fn handle(
    p: &Project,
    datasets: &[Dataset],
    name: &str,
    bytes: &[u8],
    ctl: &Ctl,
    ack: impl std::future::Future<Output = Result<()>>,
) -> Result<Outcome> {
    let Some(ds) = route(datasets, name) else {
        ack.await?;
        return Ok(Outcome::Unmatched);
    };
    let (batch, already) = match land(p, ds, name, bytes, ctl).await? {
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

fn report(name: &str, o: &Outcome, out: &mut dyn Write) -> Result<bool> {
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

/// A file seen in the inbox and how long it has looked the same.
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    since: Instant,
}

/// Moves a handled file out of the inbox into `<inbox>/<folder>/` (never overwriting).
fn set_aside(path: &Path, folder: &str) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let target_dir = dir.join(folder);
    std::fs::create_dir_all(&target_dir)
        .with_context(|| format!("cannot create {}", target_dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut target = target_dir.join(&name);
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = target_dir.join(format!("{name}.{n}"));
    }
    std::fs::rename(path, &target)
        .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
}

/// The complete files of the inbox, in the order to take them.
fn scan(
    inbox: &Path,
    seen: &mut HashMap<PathBuf, Seen>,
    settle: Duration,
    datasets: &[Dataset],
) -> Result<Vec<PathBuf>> {
    let mut present = Vec::new();
    let entries =
        std::fs::read_dir(inbox).with_context(|| format!("cannot list {}", inbox.display()))?;
    for e in entries.flatten() {
        let path = e.path();
        let hidden = path.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.starts_with('.') || n.ends_with(".part") || n.ends_with(".tmp") || n.ends_with('~')
        });
        let Ok(meta) = e.metadata() else { continue };
        if hidden || !meta.is_file() {
            continue;
        }
        let (len, modified) = (meta.len(), meta.modified().ok());
        match seen.get_mut(&path) {
            Some(s) if s.len == len && s.modified == modified => {}
            Some(s) => {
                *s = Seen {
                    len,
                    modified,
                    since: Instant::now(),
                };
            }
            None => {
                seen.insert(
                    path.clone(),
                    Seen {
                        len,
                        modified,
                        since: Instant::now(),
                    },
                );
            }
        }
        present.push(path);
    }
    seen.retain(|p, _| present.contains(p));
    let mut ready: Vec<(usize, Option<SystemTime>, PathBuf)> = seen
        .iter()
        .filter(|(_, s)| s.since.elapsed() >= settle)
        .map(|(p, s)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let rank = datasets
                .iter()
                .position(|d| d.pipeline.matches(&name))
                .unwrap_or(usize::MAX);
            (rank, s.modified, p.clone())
        })
        .collect();
    // Reference data first (as `promote --all`), then arrival order, then name.
    ready.sort();
    Ok(ready.into_iter().map(|(_, _, p)| p).collect())
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
        return aws_watch(p, a, &datasets, &ctl, out).await;
    }
    let inbox = a
        .inbox
        .clone()
        .unwrap_or_else(|| p.config.root.join("inbox"));
    let inbox = if inbox.is_absolute() {
        inbox
    } else {
        std::env::current_dir()?.join(inbox)
    };
    std::fs::create_dir_all(&inbox)
        .with_context(|| format!("cannot create {}", inbox.display()))?;
    let settle = Duration::from_millis(a.settle_ms);
    let poll = Duration::from_millis(a.poll_ms.max(50));

    // File-system notifications wake the loop early; polling is the fallback and safety net.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = if a.poll {
        None
    } else {
        use notify::Watcher as _;
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .and_then(|mut w| {
            w.watch(&inbox, notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "File-system notifications unavailable; polling.");
                None
            }
        }
    };
    let how = if watcher.is_some() {
        "file-system notifications".to_string()
    } else {
        format!("polling every {} ms", poll.as_millis())
    };
    writeln!(
        out,
        "Watching {} ({how}); SIGINT/SIGTERM stops after the current step.",
        inbox.display()
    )?;
    out.flush()?;

    let mut ok = catch_up(p, &datasets, &ctl, out).await?;
    let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
    loop {
        if ctl.stopped() {
            break;
        }
        let ready = scan(&inbox, &mut seen, settle, &datasets)?;
        for path in ready {
            if ctl.stopped() {
                break;
            }
            seen.remove(&path);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // Renamed or removed meanwhile: the next scan sees it under its new name.
                Err(_) => continue,
            };
            // A landed export is removed from the inbox: the lake keeps its content-addressed
            // copy, and a copy left here would outlive `medallion forget`. A name no pipeline
            // matches is set aside for a person to look at.
            let matched = route(&datasets, &name).is_some();
            let ack = async {
                if matched {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))
                } else {
                    set_aside(&path, ".unmatched")
                }
            };
            let outcome = match handle(p, &datasets, &name, &bytes, &ctl, ack).await {
                Ok(o) => o,
                Err(e) => {
                    writeln!(out, "{name}: FAILED to land: {e:#} (left in the inbox; retried on the next scan)")?;
                    ok = false;
                    continue;
                }
            };
            ok &= report(&name, &outcome, out)?;
        }
        if a.once && seen.is_empty() {
            break;
        }
        if ctl.stopped() {
            break;
        }
        // Unsettled files are looked at again soon; otherwise wait for an event or the poll.
        let wait = if seen.is_empty() {
            poll
        } else {
            settle.min(poll) / 2 + Duration::from_millis(10)
        };
        tokio::select! {
            _ = rx.recv() => {
                // Coalesce a burst of events.
                tokio::time::sleep(Duration::from_millis(20)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = ctl.sleep(wait) => {}
        }
    }
    drop(watcher);
    writeln!(out, "Stopped.")?;
    out.flush()?;
    Ok(if a.once && !ok {
        Exit::DataStopped
    } else {
        Exit::Ok
    })
}

#[cfg(feature = "aws")]
async fn aws_watch(
    p: &Project,
    a: &WatchArgs,
    datasets: &[Dataset],
    ctl: &Ctl,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::aws::inbox::{S3Inbox, Source};
    let cfg = p
        .config
        .aws
        .clone()
        .ok_or_else(|| UsageError("backend: aws needs an `aws:` section".into()))?;
    let aws = crate::aws::Aws::new(&cfg).await;
    let mut inbox = S3Inbox::open(aws, a.poll, Duration::from_millis(a.poll_ms.max(50))).await?;
    let how = match inbox.source() {
        Source::Queue(url) => format!("SQS queue {url}"),
        Source::Poll => format!("polling every {} ms with a durable cursor", a.poll_ms),
    };
    writeln!(
        out,
        "Watching s3://{}/{} ({how}); SIGINT/SIGTERM stops after the current step.",
        inbox.bucket(),
        crate::aws::inbox::PREFIX
    )?;
    out.flush()?;
    let mut ok = catch_up(p, datasets, ctl, out).await?;
    loop {
        if ctl.stopped() {
            break;
        }
        let mut arrivals = tokio::select! {
            r = inbox.next() => r?,
            _ = ctl.sleep(Duration::from_secs(3600)) => Vec::new(),
        };
        // Reference data first among what arrived together (as the local watch does).
        crate::aws::inbox::order(&mut arrivals, |name| {
            datasets
                .iter()
                .position(|d| d.pipeline.matches(name))
                .unwrap_or(usize::MAX)
        });
        let empty = arrivals.is_empty();
        for arrival in arrivals {
            if ctl.stopped() {
                break;
            }
            let name = arrival.name().to_string();
            let bytes = match inbox.fetch(&arrival).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    // Gone (a duplicate event of an object already handled): nothing to do.
                    inbox.ack(&arrival).await?;
                    continue;
                }
                Err(e) => {
                    writeln!(out, "{name}: FAILED to read: {e} (retried)")?;
                    ok = false;
                    continue;
                }
            };
            let outcome = handle(p, datasets, &name, &bytes, ctl, inbox.ack(&arrival)).await?;
            // Landed: the lake's copy is the one `forget` can rewrite. A name nothing matches
            // stays in the inbox for someone to rename.
            if !matches!(outcome, Outcome::Unmatched) {
                inbox.remove(&arrival).await?;
            }
            ok &= report(&name, &outcome, out)?;
        }
        if a.once && empty {
            break;
        }
    }
    writeln!(out, "Stopped.")?;
    out.flush()?;
    Ok(if a.once && !ok {
        Exit::DataStopped
    } else {
        Exit::Ok
    })
}
