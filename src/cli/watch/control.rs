//! The watch's control: the stop flag the first SIGINT/SIGTERM sets (a second one exits at
//! once), the wake-up that cuts a sleep short, and the retry of a step after a backend error.
//!
//! Invariants: a stop is only ever observed between steps (a running step finishes and
//! commits); a `fail` rule or a contract stop is never retried; a retry never outlives a stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::config::Progress;
use crate::stage::StepError;

/// Attempts of a step that meets a backend error.
const ATTEMPTS: u32 = 4;

/// Shared stop flag and wake-up.
#[derive(Clone)]
pub(crate) struct Ctl {
    /// The curated settings and alert rules, loaded (and validated) when the watch started.
    pub(super) curated: Arc<crate::curated::CuratedConfig>,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    pub(super) progress: Progress,
}

impl Ctl {
    pub(super) fn stopped(&self) -> bool {
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
pub(super) fn signals(
    quiet: bool,
    progress: Progress,
    curated: crate::curated::CuratedConfig,
) -> Result<Ctl> {
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
pub(super) async fn with_backoff<T, F, Fut>(
    what: &str,
    ctl: &Ctl,
    mut step: F,
) -> Result<T, StepError>
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
