//! Notifications of alerts to people: an alert fired or resolved, sent once when it happens.
//!
//! Invariants: a message carries pseudonyms only (never a name, e-mail or raw id), the reason
//! and the recommended action in words; `notify` is called once per change, never on an
//! unchanged rerun (the caller decides what changed).

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use super::MetricsError;

/// Delivers alert changes (JSON documents) to the people who act on them.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Backend name.
    fn name(&self) -> &'static str;
    /// Sends one message per alert change; `subject` is a one-line summary.
    ///
    /// # Errors
    /// When the destination cannot be reached.
    async fn notify(&self, subject: &str, message: &serde_json::Value) -> Result<(), MetricsError>;
}

/// Alert changes appended to a local JSON-lines file (`lake/_metrics/alerts.jsonl`); the
/// `medallion alerts` command prints the alerts table itself.
#[derive(Debug)]
pub struct LogNotifier {
    path: PathBuf,
}

impl LogNotifier {
    /// A log at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &'static str {
        "local alerts log"
    }

    async fn notify(&self, subject: &str, message: &serde_json::Value) -> Result<(), MetricsError> {
        let err = |source| MetricsError {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let line = serde_json::json!({"subject": subject, "message": message});
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        writeln!(f, "{line}").map_err(err)
    }
}
