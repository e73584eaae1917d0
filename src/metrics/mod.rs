//! Metrics: one event per batch (never per row), labels with few values (dataset, stage, rule;
//! never a student, file or batch id). Locally they go to a JSON-lines log under the lake.
//!
//! Invariants: a sink stamps what it emits with the clock it was given (the project's), never
//! the system time directly; emitting is append-only.

pub mod cost;
pub mod io;
pub mod notify;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};

pub use notify::{LogNotifier, Notifier};

/// Errors emitting metrics.
#[derive(Debug, thiserror::Error)]
#[error("metrics log {path}: {source}")]
pub struct MetricsError {
    /// The log path.
    pub path: String,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Unit of a metric value (CloudWatch spelling).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Seconds.
    Seconds,
    /// A ratio 0..1 (CloudWatch has no ratio unit; `None`).
    None,
    /// Bytes.
    Bytes,
}

/// One metric datum.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Metric name (`RowsQuarantined`).
    pub name: &'static str,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: Unit,
    /// Dimensions (name, value).
    pub dimensions: Vec<(&'static str, String)>,
}

impl Metric {
    /// A metric with Dataset and Stage dimensions.
    pub fn new(name: &'static str, value: f64, unit: Unit, dataset: &str, stage: &str) -> Self {
        Self {
            name,
            value,
            unit,
            dimensions: vec![
                ("Dataset", dataset.to_string()),
                ("Stage", stage.to_string()),
            ],
        }
    }

    /// Adds the Rule dimension.
    pub fn with_rule(mut self, rule: &str) -> Self {
        self.dimensions.push(("Rule", rule.to_string()));
        self
    }
}

/// Receives metrics, once per batch.
#[async_trait]
pub trait MetricsSink: Send + Sync + fmt::Debug {
    /// Backend name.
    fn name(&self) -> &'static str;
    /// Emits a batch of metrics.
    ///
    /// # Errors
    /// When the sink cannot be written.
    async fn emit(&self, metrics: &[Metric]) -> Result<(), MetricsError>;
}

/// Metrics appended to a local JSON-lines file.
#[derive(Debug)]
pub struct LogMetricsSink {
    path: PathBuf,
    namespace: String,
    clock: Arc<dyn Clock>,
}

impl LogMetricsSink {
    /// A log at `path`, stamped with the system clock.
    pub fn new(path: PathBuf, namespace: &str) -> Self {
        Self {
            path,
            namespace: namespace.to_string(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Stamps lines with `clock`'s time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    namespace: &'a str,
    #[serde(flatten)]
    metric: &'a Metric,
}

#[async_trait]
impl MetricsSink for LogMetricsSink {
    fn name(&self) -> &'static str {
        "local metrics log"
    }

    async fn emit(&self, metrics: &[Metric]) -> Result<(), MetricsError> {
        let err = |source| MetricsError {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let timestamp = self
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut buf = Vec::new();
        for m in metrics {
            let line = Line {
                timestamp: timestamp.clone(),
                namespace: &self.namespace,
                metric: m,
            };
            serde_json::to_writer(&mut buf, &line).map_err(|e| err(std::io::Error::other(e)))?;
            buf.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        f.write_all(&buf).map_err(err)
    }
}
