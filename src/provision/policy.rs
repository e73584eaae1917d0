//! The IAM documents medallion installs or prints: the bucket policy (TLS only, SSE-KMS PUTs
//! only) and the least-privilege role policies.
//!
//! Invariants: pure functions of the configuration — no AWS call; every statement names its
//! resources (no `*` but for the CloudWatch read actions, which take none).

use serde_json::json;

use crate::aws::Aws;

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
