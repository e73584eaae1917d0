//! CloudWatch alarms: the ones `catalog/alarms.yaml` lists, and the alerts topic (SSE-KMS)
//! with one alarm per alert rule.
//!
//! Invariants: `PutMetricAlarm` is an upsert, so rerunning bootstrap rewrites each alarm to
//! what the files say; a dataset-scope alarm without a stage is an error naming the file.

use std::path::Path;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use serde::Deserialize;

use super::Check;
use crate::aws::{call, Aws, AwsError};

/// `catalog/alarms.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsFile {
    /// Datasets each alarm is created for.
    pub datasets: Vec<String>,
    /// Alarms.
    pub alarms: Vec<AlarmConfig>,
}

/// One alarm.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmConfig {
    /// Name suffix (`medallion-<dataset>-<name>`).
    pub name: String,
    /// What it means.
    pub description: String,
    /// Metric name.
    pub metric: String,
    /// `dataset` (default): one alarm per listed dataset, on the metric with the Dataset and
    /// Stage dimensions; `project`: one alarm on the metric without dimensions (the project's
    /// total, e.g. the daily cost budget).
    #[serde(default)]
    pub scope: AlarmScope,
    /// Stage dimension (dataset scope).
    #[serde(default)]
    pub stage: Option<String>,
    /// CloudWatch statistic (`Minimum`, `Sum`, `SampleCount`, ...).
    pub statistic: String,
    /// CloudWatch comparison operator.
    pub comparison: String,
    /// Threshold.
    pub threshold: f64,
    /// Period in seconds.
    pub period_seconds: i32,
    /// `breaching`, `notBreaching`, `ignore` or `missing`.
    pub missing_data: String,
}

/// Which metric stream an alarm watches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlarmScope {
    /// Per dataset and stage.
    #[default]
    Dataset,
    /// The project's total.
    Project,
}

/// The CloudWatch alarms of `catalog/alarms.yaml` (one per listed dataset, or one per project).
pub(super) async fn ensure_alarms(
    aws: &Aws,
    alarms: &Path,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    if alarms.exists() {
        let file: AlarmsFile =
            crate::yaml::load(alarms).map_err(|e| AwsError::NotBootstrapped(e.to_string()))?;
        let mut targets = Vec::new();
        for a in &file.alarms {
            match (a.scope, &a.stage) {
                (AlarmScope::Project, _) => {
                    targets.push((format!("medallion-{}", a.name), a, None))
                }
                (AlarmScope::Dataset, Some(stage)) => {
                    for ds in &file.datasets {
                        targets.push((
                            format!("medallion-{ds}-{}", a.name),
                            a,
                            Some((ds.as_str(), stage.as_str())),
                        ));
                    }
                }
                (AlarmScope::Dataset, None) => {
                    return Err(AwsError::NotBootstrapped(format!(
                        "{}: alarm `{}` needs a `stage` (or `scope: project`)",
                        alarms.display(),
                        a.name
                    )))
                }
            }
        }
        for (name, a, dims) in targets {
            if dry {
                out.push(Check::Planned(format!("alarm {name}")));
                continue;
            }
            let mut put = aws
                .cw
                .put_metric_alarm()
                .alarm_name(&name)
                .alarm_description(&a.description)
                .namespace(&aws.cfg.cloudwatch_namespace)
                .metric_name(&a.metric);
            if let Some((ds, stage)) = dims {
                put = put
                    .dimensions(Dimension::builder().name("Dataset").value(ds).build())
                    .dimensions(Dimension::builder().name("Stage").value(stage).build());
            }
            put.statistic(Statistic::from(a.statistic.as_str()))
                .comparison_operator(ComparisonOperator::from(a.comparison.as_str()))
                .threshold(a.threshold)
                .period(a.period_seconds)
                .evaluation_periods(1)
                .treat_missing_data(&a.missing_data)
                .send()
                .await
                .map_err(call("cloudwatch", "PutMetricAlarm"))?;
            out.push(Check::Ok(format!("alarm {name}")));
        }
    }
    Ok(())
}

/// The alerts topic (SSE-KMS with the project key) and one CloudWatch alarm per alert rule
/// (fires on `AlertsFired`, notifies the topic).
pub(super) async fn ensure_alerts(
    aws: &Aws,
    key_arn: Option<&str>,
    rules: &Path,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    let name = aws.alerts_topic();
    let ids: Vec<String> = if rules.is_file() {
        crate::alerts::AlertsConfig::load(rules)
            .map_err(|e| AwsError::NotBootstrapped(e.to_string()))?
            .rules
            .into_iter()
            .map(|r| r.id)
            .collect()
    } else {
        Vec::new()
    };
    let (Some(key_arn), false) = (key_arn, dry) else {
        out.push(Check::Planned(format!("SNS topic {name} (SSE-KMS)")));
        for id in &ids {
            out.push(Check::Planned(format!("alarm medallion-alert-{id}")));
        }
        return Ok(());
    };
    let existed = aws.alerts_topic_arn().await?;
    let topic = aws
        .sns
        .create_topic()
        .name(&name)
        .attributes("KmsMasterKeyId", key_arn)
        .send()
        .await
        .map_err(call("sns", "CreateTopic"))?
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(key_arn)
        .send()
        .await
        .map_err(call("sns", "SetTopicAttributes"))?;
    out.push(if existed.is_some() {
        Check::Ok(format!("SNS topic {name} (SSE-KMS)"))
    } else {
        Check::Changed(format!("SNS topic {name} (SSE-KMS)"))
    });
    for id in ids {
        let alarm = format!("medallion-alert-{id}");
        aws.cw
            .put_metric_alarm()
            .alarm_name(&alarm)
            .alarm_description(format!("Alert rule `{id}` fired (pipelines/alerts.yaml)"))
            .namespace(&aws.cfg.cloudwatch_namespace)
            .metric_name("AlertsFired")
            .dimensions(
                Dimension::builder()
                    .name("Dataset")
                    .value(crate::alerts::TABLE)
                    .build(),
            )
            .dimensions(Dimension::builder().name("Stage").value("curated").build())
            .dimensions(Dimension::builder().name("Rule").value(&id).build())
            .statistic(Statistic::Sum)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .threshold(0.0)
            .period(300)
            .evaluation_periods(1)
            .treat_missing_data("notBreaching")
            .alarm_actions(&topic)
            .send()
            .await
            .map_err(call("cloudwatch", "PutMetricAlarm"))?;
        out.push(Check::Ok(format!("alarm {alarm}")));
    }
    Ok(())
}
