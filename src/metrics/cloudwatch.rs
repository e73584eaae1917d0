//! Metrics to CloudWatch: one PutMetricData call per 500 data points, dimensions Dataset,
//! Stage (and Rule for rule metrics).
//!
//! Invariants: every data point of one emit carries the same timestamp, from the sink's clock.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::{Metric, MetricsError, MetricsSink, Unit};
use crate::aws::{call, Aws};
use crate::clock::Clock;

/// CloudWatch metrics under the configured namespace.
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    aws: Aws,
    clock: Arc<dyn Clock>,
}

impl CloudWatchSink {
    /// A sink for the project's namespace, stamping data points with `clock`'s time.
    pub fn new(aws: Aws, clock: Arc<dyn Clock>) -> Self {
        Self { aws, clock }
    }
}

fn unit(u: Unit) -> StandardUnit {
    match u {
        Unit::Count => StandardUnit::Count,
        Unit::Seconds => StandardUnit::Seconds,
        Unit::Bytes => StandardUnit::Bytes,
        Unit::None => StandardUnit::None,
    }
}

#[async_trait]
impl MetricsSink for CloudWatchSink {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    async fn emit(&self, metrics: &[Metric]) -> Result<(), MetricsError> {
        let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(self.clock.now().timestamp());
        for chunk in metrics.chunks(500) {
            let data: Vec<MetricDatum> = chunk
                .iter()
                .map(|m| {
                    let mut d = MetricDatum::builder()
                        .metric_name(m.name)
                        .value(m.value)
                        .unit(unit(m.unit))
                        .timestamp(now);
                    for (k, v) in &m.dimensions {
                        d = d.dimensions(Dimension::builder().name(*k).value(v).build());
                    }
                    d.build()
                })
                .collect();
            self.aws
                .cw
                .put_metric_data()
                .namespace(&self.aws.cfg.cloudwatch_namespace)
                .set_metric_data(Some(data))
                .send()
                .await
                .map_err(|e| MetricsError {
                    path: format!("cloudwatch:{}", self.aws.cfg.cloudwatch_namespace),
                    source: std::io::Error::other(call("cloudwatch", "PutMetricData")(e)),
                })?;
        }
        Ok(())
    }
}
