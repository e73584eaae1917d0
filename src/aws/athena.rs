//! SQL on AWS through Athena: the query runs in the project's workgroup (results SSE-KMS
//! encrypted in the ops bucket), is polled with backoff, and its results are read page by page.
//! Table names are written as in the catalog (`curated.at_risk_students`) and mapped to the
//! Glue databases (`<prefix>_curated.at_risk_students`), so named queries run on both engines.

use std::time::Duration;

use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, QueryExecutionState, ResultConfiguration,
    WorkGroupConfiguration,
};

use super::{call, Aws, AwsError};

/// The workgroup medallion queries run in.
pub const WORKGROUP: &str = "medallion";

/// A finished Athena query.
#[derive(Debug, Clone)]
pub struct AthenaResult {
    /// Query execution id.
    pub query_id: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, values as text (None = null).
    pub rows: Vec<Vec<Option<String>>>,
    /// Bytes Athena scanned.
    pub bytes_scanned: i64,
}

/// Rewrites `<stage>.<table>` to `<glue prefix>_<stage>.<table>`.
pub fn qualify(aws: &Aws, sql: &str) -> String {
    let re = regex::Regex::new(r"\b(raw|trusted|curated|ops)\.([A-Za-z_][A-Za-z0-9_]*)")
        .unwrap_or_else(|_| unreachable!("static regex"));
    re.replace_all(sql, |c: &regex::Captures| {
        format!("{}.{}", aws.database(&c[1]), &c[2])
    })
    .into_owned()
}

/// Where query results go: the ops bucket, encrypted with the project key.
pub fn results_location(aws: &Aws) -> String {
    format!("s3://{}/athena-results/", aws.bucket("ops"))
}

/// Creates or verifies the workgroup (results encrypted with SSE-KMS, configuration enforced).
///
/// # Errors
/// AWS errors.
pub async fn ensure_workgroup(
    aws: &Aws,
    key_arn: &str,
    dry: bool,
) -> Result<super::setup::Check, AwsError> {
    use super::setup::Check;
    // moto answers GetWorkGroup for an unknown name with an empty body: check the name.
    let existing = aws
        .athena
        .get_work_group()
        .work_group(WORKGROUP)
        .send()
        .await
        .ok()
        .filter(|w| w.work_group().is_some_and(|g| g.name() == WORKGROUP));
    let encrypted = existing
        .as_ref()
        .and_then(|w| w.work_group())
        .and_then(|w| w.configuration())
        .and_then(|c| c.result_configuration())
        .and_then(|r| r.encryption_configuration())
        .is_some_and(|e| e.encryption_option() == &EncryptionOption::SseKms);
    if encrypted {
        return Ok(Check::Ok(format!(
            "Athena workgroup {WORKGROUP}: results SSE-KMS"
        )));
    }
    if dry {
        return Ok(Check::Planned(format!(
            "Athena workgroup {WORKGROUP} with SSE-KMS results in {}",
            results_location(aws)
        )));
    }
    let enc = EncryptionConfiguration::builder()
        .encryption_option(EncryptionOption::SseKms)
        .kms_key(key_arn)
        .build()
        .map_err(call("athena", "CreateWorkGroup"))?;
    let conf = WorkGroupConfiguration::builder()
        .result_configuration(
            ResultConfiguration::builder()
                .output_location(results_location(aws))
                .encryption_configuration(enc)
                .build(),
        )
        .enforce_work_group_configuration(true)
        .publish_cloud_watch_metrics_enabled(true)
        .build();
    if existing.is_some() {
        aws.athena
            .update_work_group()
            .work_group(WORKGROUP)
            .configuration_updates(
                aws_sdk_athena::types::WorkGroupConfigurationUpdates::builder()
                    .result_configuration_updates(
                        aws_sdk_athena::types::ResultConfigurationUpdates::builder()
                            .output_location(results_location(aws))
                            .encryption_configuration(
                                conf.result_configuration()
                                    .and_then(|r| r.encryption_configuration())
                                    .cloned()
                                    .ok_or_else(|| {
                                        AwsError::NotBootstrapped("no encryption".into())
                                    })?,
                            )
                            .build(),
                    )
                    .enforce_work_group_configuration(true)
                    .build(),
            )
            .send()
            .await
            .map_err(call("athena", "UpdateWorkGroup"))?;
    } else {
        aws.athena
            .create_work_group()
            .name(WORKGROUP)
            .description("medallion queries; results SSE-KMS in the ops bucket")
            .configuration(conf)
            .send()
            .await
            .map_err(call("athena", "CreateWorkGroup"))?;
    }
    Ok(Check::Changed(format!(
        "Athena workgroup {WORKGROUP}: results SSE-KMS"
    )))
}

/// Runs `sql` in the workgroup and reads every result page.
///
/// # Errors
/// A failed or cancelled query (with Athena's reason), or AWS errors.
pub async fn run(aws: &Aws, sql: &str) -> Result<AthenaResult, AwsError> {
    let start = aws
        .athena
        .start_query_execution()
        .query_string(qualify(aws, sql))
        .work_group(WORKGROUP)
        .send()
        .await
        .map_err(call("athena", "StartQueryExecution"))?;
    let id = start.query_execution_id().unwrap_or_default().to_string();
    let mut wait = Duration::from_millis(100);
    let execution = loop {
        let q = aws
            .athena
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(call("athena", "GetQueryExecution"))?;
        let exec = q
            .query_execution()
            .cloned()
            .ok_or_else(|| AwsError::NotBootstrapped(format!("query {id} vanished")))?;
        match exec.status().and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => break exec,
            Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                let why = exec
                    .status()
                    .and_then(|s| s.state_change_reason())
                    .unwrap_or("no reason given")
                    .to_string();
                return Err(AwsError::Call {
                    service: "athena",
                    operation: "query",
                    message: why,
                });
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    };
    let bytes_scanned = execution
        .statistics()
        .and_then(|s| s.data_scanned_in_bytes())
        .unwrap_or(0);
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut pages = aws
        .athena
        .get_query_results()
        .query_execution_id(&id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(call("athena", "GetQueryResults"))?;
        let Some(rs) = page.result_set() else {
            continue;
        };
        if columns.is_empty() {
            columns = rs
                .result_set_metadata()
                .map(|m| {
                    m.column_info()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect()
                })
                .unwrap_or_default();
        }
        for r in rs.rows() {
            let values: Vec<Option<String>> = r
                .data()
                .iter()
                .map(|d| d.var_char_value().map(str::to_string))
                .collect();
            // Athena repeats the header as the first row of a SELECT's results.
            if rows.is_empty()
                && values
                    .iter()
                    .map(|v| v.as_deref().unwrap_or(""))
                    .eq(columns.iter().map(String::as_str))
            {
                continue;
            }
            rows.push(values);
        }
    }
    Ok(AthenaResult {
        query_id: id,
        columns,
        rows,
        bytes_scanned,
    })
}
