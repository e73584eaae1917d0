//! `medallion aws bootstrap | doctor | policies`: create or verify the set-up, report drift,
//! print least-privilege IAM policies.

use std::path::Path;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_glue::types::DatabaseInput;
use aws_sdk_kms::types::KeyUsageType;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use serde::Deserialize;
use serde_json::json;

use super::{call, Aws, AwsError, BUCKETS};
use crate::catalog::Catalog;

/// One line of a bootstrap or doctor run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Already right.
    Ok(String),
    /// Created or corrected now.
    Changed(String),
    /// Would be created or corrected (dry run).
    Planned(String),
    /// Wrong (doctor).
    Drift(String),
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok(s) => write!(f, "ok       {s}"),
            Self::Changed(s) => write!(f, "created  {s}"),
            Self::Planned(s) => write!(f, "plan     {s}"),
            Self::Drift(s) => write!(f, "DRIFT    {s}"),
        }
    }
}

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

/// The bucket policy bootstrap installs: TLS only, and PUTs only with SSE-KMS.
pub fn bucket_policy(bucket: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            },
            {
                "Sid": "DenyUnencryptedPuts",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
            }
        ]
    })
}

/// Least-privilege IAM policies per role.
pub fn role_policies(aws: &Aws, key_arn: &str) -> serde_json::Value {
    let b = |p: &str| format!("arn:aws:s3:::{}", aws.bucket(p));
    let objects = |p: &str| format!("arn:aws:s3:::{}/*", aws.bucket(p));
    let glue = |stage: &str| {
        vec![
            "arn:aws:glue:*:*:catalog".to_string(),
            format!("arn:aws:glue:*:*:database/{}", aws.database(stage)),
            format!("arn:aws:glue:*:*:table/{}/*", aws.database(stage)),
        ]
    };
    let every_bucket: Vec<String> = ["landing", "raw", "trusted", "curated", "ops"]
        .iter()
        .flat_map(|p| [b(p), objects(p)])
        .collect();
    let kms = json!({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": key_arn});
    let all_glue: Vec<String> = ["raw", "trusted", "curated", "ops"]
        .iter()
        .flat_map(|s| glue(s))
        .collect();
    let curated_and_ops_glue: Vec<String> =
        ["curated", "ops"].iter().flat_map(|s| glue(s)).collect();
    json!({
        "lander": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": objects("landing")},
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": b("landing")},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": format!("{}/*.meta.json", b("landing"))},
            kms.clone()
        ]},
        "promoter": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [b("landing"), objects("landing")]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
             "Resource": [b("raw"), objects("raw"), b("trusted"), objects("trusted"), b("curated"), objects("curated"), b("ops"), objects("ops")]},
            {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"],
             "Resource": all_glue},
            {"Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": aws.cfg.cloudwatch_namespace}}},
            // `medallion watch`: land from the inbox prefix, then remove every version of it.
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
             "Resource": [objects("landing")]},
            {"Effect": "Allow", "Action": ["s3:ListBucketVersions"], "Resource": b("landing")},
            {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
             "Resource": format!("arn:aws:sqs:*:*:{}", aws.inbox_queue())},
            // Alerts for educators.
            {"Effect": "Allow", "Action": ["sns:Publish", "sns:ListTopics"],
             "Resource": format!("arn:aws:sns:*:*:{}", aws.alerts_topic())},
            kms.clone()
        ]},
        // `medallion forget`: erases a student from every bucket, object versions included.
        "privacy_officer": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"],
             "Resource": every_bucket},
            {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable"],
             "Resource": all_glue.clone()},
            kms.clone()
        ]},
        "analyst": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [b("curated"), objects("curated")]},
            {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"], "Resource": glue("curated")},
            {"Effect": "Allow", "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup"],
             "Resource": "arn:aws:athena:*:*:workgroup/medallion"},
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": key_arn}
        ]},
        // The role QuickSight assumes for the Athena data source of `dashboard deploy`: reads
        // curated (and the ops run history the data-quality dashboard shows), runs queries in
        // the medallion workgroup, writes and reads that workgroup's encrypted results.
        "quicksight_service_role": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": [b("curated"), objects("curated"), b("ops"), format!("{}/quality_results/*", b("ops")), format!("{}/promotions/*", b("ops"))]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
             "Resource": [b("ops"), format!("{}/athena-results/*", b("ops"))]},
            {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
             "Resource": curated_and_ops_glue},
            {"Effect": "Allow", "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup", "athena:ListWorkGroups"],
             "Resource": "arn:aws:athena:*:*:workgroup/medallion"},
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], "Resource": key_arn}
        ]},
        "auditor": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [b("ops"), objects("ops")]},
            {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables"], "Resource": glue("ops")},
            {"Effect": "Allow", "Action": ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics", "cloudwatch:DescribeAlarms"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": key_arn}
        ]}
    })
}

async fn ensure_key(
    aws: &Aws,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<Option<String>, AwsError> {
    let alias = &aws.cfg.kms_key_alias;
    let arn = match aws.key_arn().await {
        Ok(arn) => {
            out.push(Check::Ok(format!("KMS key {alias}")));
            arn
        }
        Err(_) if dry => {
            out.push(Check::Planned(format!(
                "KMS key {alias} (customer managed, rotation on)"
            )));
            return Ok(None);
        }
        Err(_) => {
            let k = aws
                .kms
                .create_key()
                .description("medallion lake key")
                .key_usage(KeyUsageType::EncryptDecrypt)
                .send()
                .await
                .map_err(call("kms", "CreateKey"))?;
            let meta = k
                .key_metadata()
                .ok_or_else(|| AwsError::NotBootstrapped("CreateKey returned no key".into()))?;
            aws.kms
                .create_alias()
                .alias_name(alias)
                .target_key_id(meta.key_id())
                .send()
                .await
                .map_err(call("kms", "CreateAlias"))?;
            out.push(Check::Changed(format!("KMS key {alias}")));
            meta.arn().unwrap_or_default().to_string()
        }
    };
    let rotating = aws
        .kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .map_err(call("kms", "GetKeyRotationStatus"))?
        .key_rotation_enabled();
    if rotating {
        out.push(Check::Ok(format!("KMS key {alias}: rotation on")));
    } else if dry {
        out.push(Check::Planned(format!("KMS key {alias}: turn rotation on")));
    } else {
        aws.kms
            .enable_key_rotation()
            .key_id(&arn)
            .send()
            .await
            .map_err(call("kms", "EnableKeyRotation"))?;
        out.push(Check::Changed(format!("KMS key {alias}: rotation on")));
    }
    Ok(Some(arn))
}

async fn ensure_bucket(
    aws: &Aws,
    purpose: &str,
    key_arn: Option<&str>,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    let bucket = aws.bucket(purpose);
    let exists = aws.s3.head_bucket().bucket(&bucket).send().await.is_ok();
    if !exists {
        if dry {
            out.push(Check::Planned(format!(
                "bucket {bucket} with SSE-KMS, public access blocked, versioning, policy"
            )));
            return Ok(());
        }
        let mut req = aws.s3.create_bucket().bucket(&bucket);
        if aws.cfg.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(aws.cfg.region.as_str()))
                    .build(),
            );
        }
        req.send().await.map_err(call("s3", "CreateBucket"))?;
        out.push(Check::Changed(format!("bucket {bucket}")));
    } else {
        out.push(Check::Ok(format!("bucket {bucket}")));
    }
    let Some(key_arn) = key_arn else {
        return Ok(());
    };
    for problem in bucket_drift(aws, &bucket, key_arn).await? {
        if problem == UNVERIFIED_VERSIONING {
            if !dry {
                let v = VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build();
                aws.s3
                    .put_bucket_versioning()
                    .bucket(&bucket)
                    .versioning_configuration(v)
                    .send()
                    .await
                    .map_err(call("s3", "PutBucketVersioning"))?;
            }
            out.push(Check::Ok(format!(
                "bucket {bucket}: versioning set (the endpoint's answer could not be read back)"
            )));
            continue;
        }
        if dry {
            out.push(Check::Planned(format!("bucket {bucket}: fix {problem}")));
            continue;
        }
        match problem.as_str() {
            "default encryption" => {
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::AwsKms)
                            .kms_master_key_id(key_arn)
                            .build()
                            .map_err(call("s3", "PutBucketEncryption"))?,
                    )
                    .bucket_key_enabled(true)
                    .build();
                let conf = ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(call("s3", "PutBucketEncryption"))?;
                aws.s3
                    .put_bucket_encryption()
                    .bucket(&bucket)
                    .server_side_encryption_configuration(conf)
                    .send()
                    .await
                    .map_err(call("s3", "PutBucketEncryption"))?;
            }
            "public access block" => {
                let pab = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                aws.s3
                    .put_public_access_block()
                    .bucket(&bucket)
                    .public_access_block_configuration(pab)
                    .send()
                    .await
                    .map_err(call("s3", "PutPublicAccessBlock"))?;
            }
            _ => {
                let v = VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build();
                aws.s3
                    .put_bucket_versioning()
                    .bucket(&bucket)
                    .versioning_configuration(v)
                    .send()
                    .await
                    .map_err(call("s3", "PutBucketVersioning"))?;
            }
        }
        out.push(Check::Changed(format!("bucket {bucket}: {problem}")));
    }
    if dry {
        return Ok(());
    }
    if aws.cfg.apply_bucket_policies {
        aws.s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(bucket_policy(&bucket).to_string())
            .send()
            .await
            .map_err(call("s3", "PutBucketPolicy"))?;
        out.push(Check::Ok(format!(
            "bucket {bucket}: TLS-only, encrypted-puts-only policy"
        )));
    }
    // Landing files expire after the landing retention. In the stage buckets Delta never
    // overwrites an object, so the only noncurrent versions are files a VACUUM (a quarantine
    // purge) deleted: they expire after `deleted_object_retention_days`, which makes a purge
    // final. An S3 expiration on live Delta files would corrupt the tables, so there is none.
    let (rule, what) = if purpose == "landing" {
        (
            LifecycleRule::builder()
                .id("landing-retention")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .expiration(
                    LifecycleExpiration::builder()
                        .days(aws.cfg.landing_retention_days)
                        .build(),
                ),
            format!("retention {} days", aws.cfg.landing_retention_days),
        )
    } else {
        (
            LifecycleRule::builder()
                .id("deleted-files-expiry")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(aws.cfg.deleted_object_retention_days)
                        .build(),
                ),
            format!(
                "deleted files expire after {} days",
                aws.cfg.deleted_object_retention_days
            ),
        )
    };
    let rule = rule
        .build()
        .map_err(call("s3", "PutBucketLifecycleConfiguration"))?;
    let conf = BucketLifecycleConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(call("s3", "PutBucketLifecycleConfiguration"))?;
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(conf)
        .send()
        .await
        .map_err(call("s3", "PutBucketLifecycleConfiguration"))?;
    out.push(Check::Ok(format!("bucket {bucket}: {what}")));
    Ok(())
}

const UNVERIFIED_VERSIONING: &str =
    "versioning (unverified: the endpoint's answer could not be read)";

/// What is wrong with a bucket's encryption, public access block and versioning.
async fn bucket_drift(aws: &Aws, bucket: &str, key_arn: &str) -> Result<Vec<String>, AwsError> {
    let mut problems = Vec::new();
    let enc = aws
        .s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .ok();
    let kms_ok = enc
        .as_ref()
        .and_then(|e| e.server_side_encryption_configuration())
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .is_some_and(|d| {
            d.sse_algorithm() == &ServerSideEncryption::AwsKms
                && d.kms_master_key_id()
                    .is_some_and(|k| key_arn.ends_with(k) || k == key_arn || key_arn.contains(k))
        });
    if !kms_ok {
        problems.push("default encryption".to_string());
    }
    let pab = aws
        .s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .ok();
    let pab_ok = pab
        .as_ref()
        .and_then(|p| p.public_access_block_configuration())
        .is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        });
    if !pab_ok {
        problems.push("public access block".to_string());
    }
    match aws.s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) if v.status() == Some(&BucketVersioningStatus::Enabled) => {}
        Ok(_) => problems.push("versioning".to_string()),
        // An answer the SDK cannot read (moto names the XML root differently from S3) is
        // reported as unverified, not as drift.
        Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
            problems.push(UNVERIFIED_VERSIONING.to_string());
        }
        Err(e) => return Err(call("s3", "GetBucketVersioning")(e)),
    }
    Ok(problems)
}

/// Creates or verifies the whole set-up, idempotently.
///
/// # Errors
/// AWS errors.
pub async fn bootstrap(
    aws: &Aws,
    alarms: &Path,
    alert_rules: &Path,
    dry: bool,
) -> Result<Vec<Check>, AwsError> {
    let mut out = Vec::new();
    let arn = ensure_key(aws, dry, &mut out).await?;
    for purpose in BUCKETS {
        ensure_bucket(aws, purpose, arn.as_deref(), dry, &mut out).await?;
    }
    ensure_inbox_queue(aws, dry, &mut out).await?;
    ensure_alerts(aws, arn.as_deref(), alert_rules, dry, &mut out).await?;
    for stage in ["raw", "trusted", "curated", "ops"] {
        let db = aws.database(stage);
        if aws.glue.get_database().name(&db).send().await.is_ok() {
            out.push(Check::Ok(format!("Glue database {db}")));
        } else if dry {
            out.push(Check::Planned(format!("Glue database {db}")));
        } else {
            let input = DatabaseInput::builder()
                .name(&db)
                .description(format!("medallion {stage} stage"))
                .build()
                .map_err(call("glue", "CreateDatabase"))?;
            aws.glue
                .create_database()
                .database_input(input)
                .send()
                .await
                .map_err(call("glue", "CreateDatabase"))?;
            out.push(Check::Changed(format!("Glue database {db}")));
        }
    }
    if let Some(arn) = &arn {
        out.push(super::athena::ensure_workgroup(aws, arn, dry).await?);
    }
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
    Ok(out)
}

/// The SQS queue `medallion watch` reads (SSE-SQS encrypted; S3 can deliver to it) and the
/// landing bucket's object-created notifications for `inbox/` wired to it.
async fn ensure_inbox_queue(aws: &Aws, dry: bool, out: &mut Vec<Check>) -> Result<(), AwsError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = aws.inbox_queue();
    if dry {
        out.push(Check::Planned(format!(
            "SQS queue {name} (encrypted) receiving the landing bucket's inbox/ object-created events"
        )));
        return Ok(());
    }
    let bucket = aws.bucket("landing");
    let existed = aws
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .is_ok();
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(call("sqs", "CreateQueue"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let qarn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(call("sqs", "GetQueueAttributes"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LandingBucketInboxEvents",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": qarn,
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}}
        }]
    });
    aws.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(call("sqs", "SetQueueAttributes"))?;
    out.push(if existed {
        Check::Ok(format!("SQS queue {name}"))
    } else {
        Check::Changed(format!("SQS queue {name}"))
    });
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(super::inbox::PREFIX)
                        .build(),
                )
                .build(),
        )
        .build();
    let queue = QueueConfiguration::builder()
        .id("medallion-inbox")
        .queue_arn(&qarn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .map_err(call("s3", "PutBucketNotificationConfiguration"))?;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .map_err(call("s3", "PutBucketNotificationConfiguration"))?;
    out.push(Check::Ok(format!(
        "bucket {bucket}: inbox/ object-created events go to {name}"
    )));
    Ok(())
}

/// The alerts topic (SSE-KMS with the project key) and one CloudWatch alarm per alert rule
/// (fires on `AlertsFired`, notifies the topic).
async fn ensure_alerts(
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

/// Reads the live set-up and reports every drift from what bootstrap creates, plus Glue tables
/// whose location or columns differ from the Delta table.
///
/// # Errors
/// AWS errors.
pub async fn doctor(
    aws: &Aws,
    catalog: &dyn Catalog,
    options: &std::collections::HashMap<String, String>,
) -> Result<Vec<Check>, AwsError> {
    let mut out = Vec::new();
    let arn = match aws.key_arn().await {
        Ok(a) => a,
        Err(e) => {
            out.push(Check::Drift(e.to_string()));
            return Ok(out);
        }
    };
    let rotating = aws
        .kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .map_err(call("kms", "GetKeyRotationStatus"))?
        .key_rotation_enabled();
    out.push(if rotating {
        Check::Ok("KMS key rotation on".into())
    } else {
        Check::Drift(format!(
            "KMS key {}: rotation is off",
            aws.cfg.kms_key_alias
        ))
    });
    for purpose in BUCKETS {
        let bucket = aws.bucket(purpose);
        if aws.s3.head_bucket().bucket(&bucket).send().await.is_err() {
            out.push(Check::Drift(format!("bucket {bucket} is missing")));
            continue;
        }
        let problems = bucket_drift(aws, &bucket, &arn).await?;
        if problems.iter().all(|p| p == UNVERIFIED_VERSIONING) {
            out.push(Check::Ok(format!(
                "bucket {bucket}: encryption, public access block, versioning"
            )));
        }
        for p in problems {
            if p == UNVERIFIED_VERSIONING {
                out.push(Check::Ok(format!("bucket {bucket}: {p}")));
            } else {
                out.push(Check::Drift(format!(
                    "bucket {bucket}: {p} is not as bootstrap sets it"
                )));
            }
        }
    }
    let entries = catalog
        .list()
        .await
        .map_err(|e| AwsError::NotBootstrapped(e.to_string()))?;
    for e in entries {
        let stage = crate::vocab::Stage::parse(&e.stage);
        let name = e.table.split_once('.').map_or(e.table.as_str(), |(_, t)| t);
        let expected = match stage {
            Some(s) => format!("s3://{}/{name}/", aws.bucket(s.as_str())),
            None => format!("s3://{}/{name}/", aws.bucket("ops")),
        };
        if e.location != expected {
            out.push(Check::Drift(format!(
                "Glue table {}: location {} but the lake has it at {expected}",
                e.table, e.location
            )));
            continue;
        }
        let Ok(url) = url::Url::parse(&expected) else {
            continue;
        };
        let loc = crate::storage::delta::TableLoc {
            url,
            options: options.clone(),
        };
        let schema = crate::storage::delta::query(&loc, "SELECT * FROM t LIMIT 0")
            .await
            .map_err(|x| AwsError::NotBootstrapped(x.to_string()))?;
        let Some((schema, _)) = schema else {
            out.push(Check::Drift(format!(
                "Glue table {}: no Delta table at {expected}",
                e.table
            )));
            continue;
        };
        let delta_cols: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| *n != "__delta_rs_path")
            .collect();
        let glue_cols: Vec<&str> = e.schema.iter().map(|c| c.name.as_str()).collect();
        if delta_cols == glue_cols {
            out.push(Check::Ok(format!(
                "Glue table {} matches its Delta log",
                e.table
            )));
        } else {
            out.push(Check::Drift(format!(
                "Glue table {}: columns {:?} differ from the Delta log's {:?}",
                e.table, glue_cols, delta_cols
            )));
        }
    }
    Ok(out)
}
