//! SQL on AWS through Athena: the query runs in the project's workgroup (results SSE-KMS
//! encrypted in the ops bucket), is polled with backoff, and its results are read page by page.
//! Table names are written as in the catalog (`curated.at_risk_students`) and mapped to the
//! Glue databases (`<prefix>_curated.at_risk_students`), so named queries run on both engines.
//!
//! Invariants: queries only — the workgroup is created and verified by
//! [`crate::provision`]; results become Arrow here ([`AthenaResult::to_batch`]), all text.

use std::time::Duration;

use aws_sdk_athena::types::QueryExecutionState;

use crate::aws::{call, Aws, AwsError};

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

impl AthenaResult {
    /// The rows as one Arrow batch of text columns (Athena returns text; nulls stay null).
    ///
    /// # Errors
    /// When the rows do not fit the columns.
    pub fn to_batch(
        &self,
    ) -> Result<
        (
            deltalake::arrow::datatypes::SchemaRef,
            deltalake::arrow::array::RecordBatch,
        ),
        deltalake::arrow::error::ArrowError,
    > {
        use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
        use deltalake::arrow::datatypes::{DataType, Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let cols: Vec<ArrayRef> = (0..self.columns.len())
            .map(|i| {
                std::sync::Arc::new(StringArray::from(
                    self.rows
                        .iter()
                        .map(|row| row.get(i).cloned().flatten())
                        .collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        let batch = if self.columns.is_empty() {
            RecordBatch::new_empty(schema.clone())
        } else {
            RecordBatch::try_new(schema.clone(), cols)?
        };
        Ok((schema, batch))
    }
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
