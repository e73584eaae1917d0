//! Notifications of alerts to people: an alert fired or resolved, sent once when it happens.
//!
//! Invariants: a message carries pseudonyms only (never a name, e-mail or raw id), the reason
//! and the recommended action in words; `notify` is called once per change, never on an
//! unchanged rerun (the caller decides what changed).

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Erases what the destination still keeps about a student (`medallion forget`), given
    /// their pseudonym; returns how many messages went. Messages already delivered to people
    /// (an SNS e-mail) cannot be recalled: the default keeps nothing and removes nothing.
    ///
    /// # Errors
    /// When the destination cannot be rewritten.
    async fn forget(&self, _pseudonym: &str) -> Result<u64, MetricsError> {
        Ok(0)
    }
}

/// Which [`Notifier`] [`build`] makes, with what that backend needs.
#[derive(Debug, Clone)]
pub enum NotifierConfig {
    /// A JSON-lines log at this path.
    Log {
        /// The log file.
        path: PathBuf,
    },
    /// The project's SNS alerts topic.
    #[cfg(feature = "aws")]
    Sns(Box<crate::aws::Aws>),
}

/// The notifier `cfg` names.
pub fn build(cfg: &NotifierConfig) -> Arc<dyn Notifier> {
    match cfg {
        NotifierConfig::Log { path } => Arc::new(LogNotifier::new(path.clone())),
        #[cfg(feature = "aws")]
        NotifierConfig::Sns(aws) => Arc::new(super::SnsNotifier::new(aws.as_ref().clone())),
    }
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

    async fn forget(&self, pseudonym: &str) -> Result<u64, MetricsError> {
        let err = |source| MetricsError {
            path: self.path.display().to_string(),
            source,
        };
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(err(e)),
        };
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains(pseudonym)).collect();
        let removed = (text.lines().count() - kept.len()) as u64;
        if removed > 0 {
            let tmp = self.path.with_extension("jsonl.tmp");
            let mut body = kept.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            std::fs::write(&tmp, body).map_err(err)?;
            std::fs::rename(&tmp, &self.path).map_err(err)?;
        }
        Ok(removed)
    }
}
