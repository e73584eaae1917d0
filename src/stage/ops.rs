//! The lake's own history, as Delta tables under `_ops/`: `promotions` (the books of every
//! batch of every step) and `quality_results` (one row per rule per batch). Reports read them,
//! so a report is queryable history, not a loose file. Each write is idempotent by batch txn.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use super::raw::RawBatchReport;
use super::trusted::TrustedBatchReport;
use super::{Lake, Result, StepError};
use crate::storage::delta::{self, txn_id};

/// Ops table with the books of every batch.
pub const PROMOTIONS: &str = "promotions";
/// Ops table with one row per rule per batch.
pub const QUALITY_RESULTS: &str = "quality_results";

/// One row of `_ops/promotions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromotionRow {
    /// Dataset.
    pub dataset: String,
    /// Step (`landing-to-raw`, `raw-to-trusted`).
    pub step: String,
    /// Batch id.
    pub batch_id: String,
    /// Landing file as delivered.
    pub source_file: String,
    /// Rows read by the step.
    pub rows_in: u64,
    /// Rows that reached the target table (new keys, for trusted).
    pub rows_promoted: u64,
    /// Lines rejected (raw).
    pub rejected: u64,
    /// Rows quarantined (trusted).
    pub quarantined: u64,
    /// Rows dropped as duplicates or superseded (trusted).
    pub duplicates_dropped: u64,
    /// Existing rows replaced by a newer correction (trusted).
    pub updated: u64,
    /// Rules with warnings.
    pub warned_rules: u64,
    /// Contract version.
    pub contract_version: String,
    /// When recorded (RFC 3339).
    pub recorded_at: String,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn promotions_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let u = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        s("dataset"),
        s("step"),
        s("batch_id"),
        s("source_file"),
        u("rows_in"),
        u("rows_promoted"),
        u("rejected"),
        u("quarantined"),
        u("duplicates_dropped"),
        u("updated"),
        u("warned_rules"),
        s("contract_version"),
        Field::new("recorded_at", ts(), false),
    ]))
}

fn strs(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn u64s(v: Vec<u64>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}

async fn record(lake: &Lake, row: PromotionRow) -> Result<()> {
    let loc = lake.ops_loc(PROMOTIONS)?;
    let app = txn_id(
        &format!("report-{}", row.step),
        &format!("{}/{}", row.dataset, row.batch_id),
    );
    if delta::has_batch(&loc, &app).await? {
        return Ok(());
    }
    let now = lake.clock.now().timestamp_micros();
    let cols: Vec<ArrayRef> = vec![
        strs(vec![row.dataset]),
        strs(vec![row.step]),
        strs(vec![row.batch_id]),
        strs(vec![row.source_file]),
        u64s(vec![row.rows_in]),
        u64s(vec![row.rows_promoted]),
        u64s(vec![row.rejected]),
        u64s(vec![row.quarantined]),
        u64s(vec![row.duplicates_dropped]),
        u64s(vec![row.updated]),
        u64s(vec![row.warned_rules]),
        strs(vec![row.contract_version]),
        Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
    ];
    let batch =
        RecordBatch::try_new(promotions_schema(), cols).map_err(|e| StepError::Frame(e.into()))?;
    delta::append(&loc, promotions_schema(), vec![batch], &app, &[]).await?;
    Ok(())
}

/// Records the books of a landing→raw batch.
///
/// # Errors
/// Storage errors.
pub async fn record_raw(lake: &Lake, r: &RawBatchReport) -> Result<()> {
    record(
        lake,
        PromotionRow {
            dataset: r.dataset.clone(),
            step: super::raw::STEP.into(),
            batch_id: r.batch_id.clone(),
            source_file: r.source_file.clone(),
            rows_in: r.landing_rows,
            rows_promoted: r.raw_rows,
            rejected: r.rejected,
            quarantined: 0,
            duplicates_dropped: 0,
            updated: 0,
            warned_rules: 0,
            contract_version: String::new(),
            recorded_at: String::new(),
        },
    )
    .await
}

/// Records the books and rule results of a raw→trusted batch.
///
/// # Errors
/// Storage errors.
pub async fn record_trusted(
    lake: &Lake,
    r: &TrustedBatchReport,
    contract_version: &str,
) -> Result<()> {
    record_rules(lake, r).await?;
    record(
        lake,
        PromotionRow {
            dataset: r.dataset.clone(),
            step: super::trusted::STEP.into(),
            batch_id: r.batch_id.clone(),
            source_file: r.source_file.clone(),
            rows_in: r.raw_rows,
            rows_promoted: r.inserted,
            rejected: 0,
            quarantined: r.quarantined,
            duplicates_dropped: r.duplicates_dropped,
            updated: r.updated,
            warned_rules: r
                .rules
                .iter()
                .filter(|x| x.outcome == crate::rules::eval::Outcome::Warned)
                .count() as u64,
            contract_version: contract_version.to_string(),
            recorded_at: String::new(),
        },
    )
    .await
}

fn quality_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let u = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        s("dataset"),
        s("stage"),
        s("batch_id"),
        s("rule_id"),
        s("description"),
        s("severity"),
        s("level"),
        u("evaluated"),
        u("passed"),
        u("failed"),
        Field::new("failure_rate", DataType::Float64, false),
        Field::new("metric", DataType::Float64, true),
        s("outcome"),
        Field::new("evaluated_at", ts(), false),
    ]))
}

async fn record_rules(lake: &Lake, r: &TrustedBatchReport) -> Result<()> {
    let loc = lake.ops_loc(QUALITY_RESULTS)?;
    let app = txn_id("quality", &format!("{}/{}", r.dataset, r.batch_id));
    if delta::has_batch(&loc, &app).await? {
        return Ok(());
    }
    let n = r.rules.len();
    let now = lake.clock.now().timestamp_micros();
    let rules = &r.rules;
    let cols: Vec<ArrayRef> = vec![
        strs(vec![r.dataset.clone(); n]),
        strs(vec!["trusted".to_string(); n]),
        strs(vec![r.batch_id.clone(); n]),
        strs(rules.iter().map(|x| x.rule_id.clone()).collect()),
        strs(rules.iter().map(|x| x.description.clone()).collect()),
        strs(
            rules
                .iter()
                .map(|x| x.severity.as_str().to_string())
                .collect(),
        ),
        strs(rules.iter().map(|x| x.level.to_string()).collect()),
        u64s(rules.iter().map(|x| x.evaluated).collect()),
        u64s(
            rules
                .iter()
                .map(|x| x.evaluated.saturating_sub(x.failed))
                .collect(),
        ),
        u64s(rules.iter().map(|x| x.failed).collect()),
        Arc::new(Float64Array::from(
            rules
                .iter()
                .map(|x| 1.0 - x.pass_rate())
                .collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rules.iter().map(|x| x.metric).collect::<Vec<_>>(),
        )),
        strs(
            rules
                .iter()
                .map(|x| x.outcome.as_str().to_string())
                .collect(),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    let batch =
        RecordBatch::try_new(quality_schema(), cols).map_err(|e| StepError::Frame(e.into()))?;
    delta::append(&loc, quality_schema(), vec![batch], &app, &[]).await?;
    Ok(())
}
