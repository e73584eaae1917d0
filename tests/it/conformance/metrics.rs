//! [`MetricsSink`] conformance: emitting nothing, one batch of metrics and more than one
//! service call's worth all succeed, and every metric emitted can be read back by name from
//! where the sink sends it.

use std::collections::BTreeSet;
use std::sync::Arc;

use medallion::clock::{Clock, FixedClock};
use medallion::metrics::{self, Metric, MetricsConfig, MetricsSink, Unit};

use super::at;

/// The metrics one batch emits (labels with few values: dataset, stage, rule).
fn batch() -> Vec<Metric> {
    vec![
        Metric::new("RowsIn", 12.0, Unit::Count, "courses", "raw"),
        Metric::new("QualityScore", 0.9, Unit::None, "courses", "trusted"),
        Metric::new("RowsQuarantined", 2.0, Unit::Count, "courses", "trusted")
            .with_rule("courses.ends_after_start"),
    ]
}

/// The guarantees of [`MetricsSink`], checked on `sink`; `read_back` names the metrics the
/// destination holds.
fn conforms(
    sink: Arc<dyn MetricsSink>,
    rt: &tokio::runtime::Runtime,
    read_back: impl Fn() -> BTreeSet<String>,
) {
    assert!(!sink.name().is_empty());
    rt.block_on(sink.emit(&[])).expect("emit nothing");
    rt.block_on(sink.emit(&batch())).expect("emit a batch");
    // More data points than one CloudWatch call takes (500).
    let many: Vec<Metric> = (0..620)
        .map(|i| Metric::new("BatchSeconds", f64::from(i), Unit::Seconds, "grades", "raw"))
        .collect();
    rt.block_on(sink.emit(&many)).expect("emit many");
    let names = read_back();
    for want in ["RowsIn", "QualityScore", "RowsQuarantined", "BatchSeconds"] {
        assert!(names.contains(want), "{want} in {names:?}");
    }
}

#[test]
fn metrics_sink_conformance() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(at(1)));
    let path = dir.path().join("_metrics").join("metrics.jsonl");
    let log = metrics::build(&MetricsConfig::Log {
        path: path.clone(),
        namespace: "Medallion".into(),
        clock: clock.clone(),
    });
    assert_eq!(log.name(), "local metrics log");
    conforms(log, &rt, || {
        let text = std::fs::read_to_string(&path).expect("the log");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 3 + 620, "one line per metric, appended");
        assert!(
            lines
                .iter()
                .all(|l| l["timestamp"] == "2026-03-01T08:30:00.000Z"
                    && l["namespace"] == "Medallion")
        );
        lines
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_string))
            .collect()
    });

    #[cfg(feature = "aws")]
    if let Some((_moto, ctx)) = super::aws::context(&rt) {
        let aws = ctx.aws;
        let cw = metrics::build(&MetricsConfig::CloudWatch {
            aws: Box::new(aws.clone()),
            clock,
        });
        assert_eq!(cw.name(), "cloudwatch");
        conforms(cw, &rt, || {
            rt.block_on(async {
                let mut names = BTreeSet::new();
                let mut pages = aws
                    .cw
                    .list_metrics()
                    .namespace(&aws.cfg.cloudwatch_namespace)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    for m in page.expect("ListMetrics").metrics() {
                        names.extend(m.metric_name().map(str::to_string));
                    }
                }
                names
            })
        });
    }
}
