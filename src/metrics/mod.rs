//! Metrics: one event per batch (never per row), labels with few values (dataset, stage, rule;
//! never a student, file or batch id). Locally they go to a JSON-lines log under the lake.
//!
//! Invariants: a sink stamps what it emits with the clock it was given (the project's), never
//! the system time directly; emitting is append-only.
//!
//! Backends: [`LogMetricsSink`] (a JSON-lines file) and, with the `aws` feature,
//! [`CloudWatchSink`]; [`build`] is the one place that picks between them. Alert notifications
//! go through [`Notifier`] ([`notify`]).

#[cfg(feature = "aws")]
mod cloudwatch;
pub mod cost;
pub mod io;
mod log;
pub mod notify;
#[cfg(feature = "aws")]
mod sns;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::Clock;

#[cfg(feature = "aws")]
pub use cloudwatch::CloudWatchSink;
pub use log::LogMetricsSink;
pub use notify::{LogNotifier, Notifier, NotifierConfig};
#[cfg(feature = "aws")]
pub use sns::SnsNotifier;

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

/// Which [`MetricsSink`] [`build`] makes, with what that backend needs.
#[derive(Debug, Clone)]
pub enum MetricsConfig {
    /// A JSON-lines log at `path`, lines under `namespace`, stamped with `clock`'s time.
    Log {
        /// The log file.
        path: PathBuf,
        /// The namespace every line carries.
        namespace: String,
        /// The project's clock.
        clock: Arc<dyn Clock>,
    },
    /// CloudWatch, under the project's namespace, data points stamped with `clock`'s time.
    #[cfg(feature = "aws")]
    CloudWatch {
        /// The clients.
        aws: Box<crate::aws::Aws>,
        /// The project's clock.
        clock: Arc<dyn Clock>,
    },
}

/// The metrics sink `cfg` names.
pub fn build(cfg: &MetricsConfig) -> Arc<dyn MetricsSink> {
    match cfg {
        MetricsConfig::Log {
            path,
            namespace,
            clock,
        } => Arc::new(LogMetricsSink::new(path.clone(), namespace).with_clock(clock.clone())),
        #[cfg(feature = "aws")]
        MetricsConfig::CloudWatch { aws, clock } => {
            Arc::new(CloudWatchSink::new(aws.as_ref().clone(), clock.clone()))
        }
    }
}
