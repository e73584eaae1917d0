//! The lake's buckets: SSE-KMS by default with the project key, public access blocked,
//! versioning on, a lifecycle that expires noncurrent versions; and the drift check of each.
//!
//! Invariants: an existing bucket is corrected in place, never recreated; drift is reported in
//! words, one problem per setting.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};

use super::{bucket_policy, Check};
use crate::aws::{call, Aws, AwsError};

pub(super) async fn ensure_bucket(
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

pub(super) const UNVERIFIED_VERSIONING: &str =
    "versioning (unverified: the endpoint's answer could not be read)";

/// What is wrong with a bucket's encryption, public access block and versioning.
pub(super) async fn bucket_drift(
    aws: &Aws,
    bucket: &str,
    key_arn: &str,
) -> Result<Vec<String>, AwsError> {
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
