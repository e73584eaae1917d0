//! The local inbox: a folder scanned (woken early by file-system notifications, polling as the
//! safety net) for files that have settled, each handled as it arrives.
//!
//! Invariants: a file is taken only once its size and modification time have been unchanged
//! for the settle time; files are taken reference data first, then in arrival order, then by
//! name; a landed file is removed from the inbox, an unmatched one moved to `.unmatched/`
//! (never overwriting), and a file that could not be landed stays for the next scan.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use super::arrival::{handle, report, Arrived};
use super::control::Ctl;
use super::{catch_up, route, stopped};
use crate::cli::{Exit, WatchArgs};
use crate::project::Project;
use crate::stage::Dataset;

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

/// Watches the local inbox folder `a.inbox` (default `<project>/inbox`) until stopped.
pub(super) async fn watch(
    p: &Project,
    a: &WatchArgs,
    datasets: &[Dataset],
    ctl: &Ctl,
    out: &mut dyn Write,
) -> Result<Exit> {
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

    let mut ok = catch_up(p, datasets, ctl, out).await?;
    let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
    loop {
        if ctl.stopped() {
            break;
        }
        let ready = scan(&inbox, &mut seen, settle, datasets)?;
        for path in ready {
            if ctl.stopped() {
                break;
            }
            seen.remove(&path);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !path.is_file() {
                // Renamed or removed meanwhile: the next scan sees it under its new name.
                continue;
            }
            // A landed export is removed from the inbox: the lake keeps its content-addressed
            // copy, and a copy left here would outlive `medallion forget`. A name no pipeline
            // matches is set aside for a person to look at.
            let matched = route(datasets, &name).is_some();
            let ack = async {
                if matched {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))
                } else {
                    set_aside(&path, ".unmatched")
                }
            };
            let outcome = match handle(p, datasets, &name, Arrived::File(&path), ctl, ack).await {
                Ok(o) => o,
                // Removed or renamed while it was being landed: the next scan sees it again.
                Err(_) if !path.exists() => continue,
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
    stopped(a, ok, out)
}
