//! The local metrics sink: one JSON line per metric appended to a file under the lake
//! (`lake/_metrics/metrics.jsonl`), each with the namespace and the emit's timestamp.
//!
//! Invariants: the file is only ever appended to, one write per emit; every line of one emit
//! carries the same timestamp, from the sink's clock.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use super::{Metric, MetricsError, MetricsSink};
use crate::clock::{Clock, SystemClock};

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
