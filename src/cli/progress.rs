//! Per-step progress on a terminal: a spinner while a step runs, then its rows and rows/s.
//! Only when stderr is a TTY and `-q` is off; no colour under `NO_COLOR` (both resolved once,
//! in [`super::config::RunConfig`]). Elsewhere nothing is drawn (the command's own output says
//! what was done).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::Progress;

/// Whether progress is drawn.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// One step's progress.
pub struct Step {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
}

impl Step {
    /// Starts a spinner for `label` (nothing when progress is not drawn).
    pub fn start(progress: Progress, label: &str) -> Self {
        let bar = progress.draw.then(|| {
            let template = if progress.colour {
                "{spinner:.cyan} {msg} [{elapsed}]"
            } else {
                "{spinner} {msg} [{elapsed}]"
            };
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            label: label.to_string(),
            started: Instant::now(),
        }
    }

    /// Ends the step, leaving `label: N rows in S s (R rows/s)` on the terminal.
    pub fn finish(self, rows: u64) {
        let Some(bar) = self.bar else { return };
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        bar.finish_with_message(format!(
            "{}: {rows} rows in {secs:.1} s ({:.0} rows/s)",
            self.label,
            rows as f64 / secs
        ));
    }
}

/// Rows a promotion summary moved (landing rows read into raw, raw rows judged into trusted,
/// rows written to curated).
pub fn rows(s: &crate::pipeline::PromotionSummary) -> u64 {
    s.raw.iter().map(|r| r.landing_rows).sum::<u64>()
        + s.trusted.iter().map(|t| t.raw_rows).sum::<u64>()
        + s.curated.iter().map(|c| c.rows).sum::<u64>()
}
