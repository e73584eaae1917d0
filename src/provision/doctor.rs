//! `medallion aws doctor`: reads the live set-up and reports every drift from what bootstrap
//! creates (the workers' job definition and state machine included), plus Glue tables whose
//! location or columns differ from the Delta table.
//!
//! Invariants: reads only; a missing key stops the check early (nothing else can be verified).

use super::bucket::{bucket_drift, UNVERIFIED_VERSIONING};
use super::Check;
use crate::aws::{Aws, AwsError, BUCKETS};
use crate::catalog::Catalog;

/// Reads the live set-up and reports every drift from what bootstrap creates, plus Glue tables
/// whose location or columns differ from the Delta table. `datasets` (in dependency order) are
/// the ones the workers' state machine promotes.
///
/// # Errors
/// AWS errors.
pub async fn doctor(
    aws: &Aws,
    catalog: &dyn Catalog,
    options: &std::collections::HashMap<String, String>,
    datasets: &[String],
) -> Result<Vec<Check>, AwsError> {
    let mut out = Vec::new();
    let arn = match aws.key_arn().await {
        Ok(a) => a,
        Err(e) => {
            out.push(Check::Drift(e.to_string()));
            return Ok(out);
        }
    };
    let rotating = super::kms::rotation_enabled(aws, &arn).await?;
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
    super::workers::workers_drift(aws, datasets, &mut out).await?;
    Ok(out)
}
