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
use super::{ColumnComments, Lake, Result, StepError};
use crate::rules::eval::RuleResult;
use crate::storage::delta::{self, txn_id};

/// Ops table with the books of every batch.
pub const PROMOTIONS: &str = "promotions";
/// Ops table with one row per rule per batch.
pub const QUALITY_RESULTS: &str = "quality_results";

/// Columns of `ops.promotions` with their catalog comments, in table order.
pub const PROMOTIONS_COLUMNS: ColumnComments = &[
    ("dataset", "Dataset the batch belongs to (attendance, grades, students, courses)"),
    (
        "step",
        "Step that wrote the batch: landing-to-raw, raw-to-trusted, quarantine-release, quarantine-purge or forget (an erasure: rows_in landing lines erased = rows_promoted raw rows + rejected rejects erased; quarantined = quarantine rows erased)",
    ),
    (
        "batch_id",
        "Batch id: one per landed file; release-<stamp> for a quarantine release, purge-before-<date> for a purge",
    ),
    (
        "source_file",
        "Landing file name as delivered; empty for releases and purges",
    ),
    (
        "rows_in",
        "Rows the step read: landing data lines (raw), raw rows (trusted), rows released (release) or purged (purge)",
    ),
    (
        "rows_promoted",
        "Rows that reached the target table; for trusted and releases, new record keys only",
    ),
    (
        "rejected",
        "Landing lines rejected as unparseable, to raw.<dataset>_rejects (raw step; 0 otherwise). Raw books: rows_in = rows_promoted + rejected",
    ),
    (
        "quarantined",
        "Rows moved to trusted.<dataset>_quarantine (trusted); rows left in quarantine (release, purge)",
    ),
    (
        "duplicates_dropped",
        "Rows dropped as duplicates or older than the record trusted holds. Trusted books: rows_in = rows_promoted + quarantined + duplicates_dropped",
    ),
    (
        "updated",
        "Existing trusted rows replaced by a newer correction of the same record",
    ),
    (
        "warned_rules",
        "Rules of severity warn that failed on the batch (counted; the rows still promote)",
    ),
    (
        "contract_version",
        "Contract version the batch was judged under (raw-to-trusted; empty for other steps)",
    ),
    ("recorded_at", "When these books were recorded (UTC)"),
];

/// Columns of `ops.quality_results` with their catalog comments, in table order.
pub const QUALITY_RESULTS_COLUMNS: ColumnComments = &[
    ("dataset", "Dataset or curated product the rule judged"),
    ("stage", "Stage judged: raw, trusted or curated"),
    (
        "batch_id",
        "Batch judged; for curated, the last trusted batch the build consumed (<dataset>/<batch>)",
    ),
    (
        "rule_id",
        "Rule id from quality_rules/<dataset>.yaml, or contract.<column>.<check> for the contract's own checks",
    ),
    ("description", "What the rule protects, from its rule file"),
    (
        "severity",
        "warn (failures counted), quarantine (failing rows moved aside) or fail (stops the promotion, nothing committed)",
    ),
    (
        "level",
        "row (judged on every row) or dataset (one check on the whole batch)",
    ),
    ("evaluated", "Rows judged (1 for a dataset-level check)"),
    ("passed", "Rows passing: evaluated - failed"),
    ("failed", "Rows failing (1 or 0 for a dataset-level check)"),
    (
        "failure_rate",
        "failed / evaluated, in 0..1 (0 when nothing was evaluated)",
    ),
    (
        "metric",
        "Measured value of a dataset-level check (e.g. completeness share in 0..1, row count); null for row-level rules",
    ),
    (
        "outcome",
        "passed, warned, quarantined, failed, or skipped (could not be judged: a referenced table does not exist yet, no history)",
    ),
    ("evaluated_at", "When the rules were evaluated (UTC)"),
];

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

/// Records the books of an erasure (`medallion forget`) of one batch, once (by batch txn).
///
/// # Errors
/// Storage errors.
pub async fn record_erasure(lake: &Lake, row: PromotionRow) -> Result<()> {
    record(lake, row).await
}

/// Records the books of a landing→raw batch.
///
/// # Errors
/// Storage errors.
pub async fn record_raw(lake: &Lake, r: &RawBatchReport) -> Result<()> {
    record_rules(lake, &r.dataset, "raw", &r.batch_id, &r.rules).await?;
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
            warned_rules: r
                .rules
                .iter()
                .filter(|x| x.outcome == crate::rules::eval::Outcome::Warned)
                .count() as u64,
            contract_version: String::new(),
            recorded_at: String::new(),
        },
    )
    .await
}

/// Records a quarantine release in the books (step `quarantine-release`: rows in = released,
/// promoted = new keys, quarantined = rows still in quarantine).
///
/// # Errors
/// Storage errors.
pub async fn record_release(
    lake: &Lake,
    r: &super::trusted::ReleaseReport,
    stamp: &str,
) -> Result<()> {
    record(
        lake,
        PromotionRow {
            dataset: r.dataset.clone(),
            step: super::trusted::RELEASE_STEP.into(),
            batch_id: format!("release-{stamp}"),
            source_file: String::new(),
            rows_in: r.released,
            rows_promoted: r.inserted,
            rejected: 0,
            quarantined: r.still_quarantined,
            duplicates_dropped: r.duplicates_dropped,
            updated: r.updated,
            warned_rules: 0,
            contract_version: String::new(),
            recorded_at: String::new(),
        },
    )
    .await
}

/// Records a quarantine purge in the books (step `quarantine-purge`: rows in = rows purged,
/// quarantined = rows left), one batch per cutoff day.
///
/// # Errors
/// Storage errors.
pub async fn record_purge(lake: &Lake, r: &super::retention::PurgeReport) -> Result<()> {
    record(
        lake,
        PromotionRow {
            dataset: r.dataset.clone(),
            step: super::retention::STEP.into(),
            batch_id: format!("purge-before-{}", r.cutoff.format("%Y-%m-%d")),
            source_file: String::new(),
            rows_in: r.purged,
            rows_promoted: 0,
            rejected: 0,
            quarantined: r.remaining,
            duplicates_dropped: 0,
            updated: 0,
            warned_rules: 0,
            contract_version: String::new(),
            recorded_at: String::new(),
        },
    )
    .await
}

/// The books of a raw→trusted batch, as one `_ops/promotions` row.
pub fn trusted_books(r: &TrustedBatchReport, contract_version: &str) -> PromotionRow {
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
    }
}

/// Records a books row (once: the row's txn is checked).
///
/// # Errors
/// Storage errors.
pub async fn record_books(lake: &Lake, row: PromotionRow) -> Result<()> {
    record(lake, row).await
}

/// The batches of `dataset` whose books `step` has recorded (one read of the books).
///
/// # Errors
/// Storage errors.
pub async fn recorded_batches(
    lake: &Lake,
    dataset: &str,
    step: &str,
) -> Result<std::collections::HashSet<String>> {
    let sql = format!(
        "SELECT batch_id FROM t WHERE dataset = {} AND step = {}",
        delta::sql_literal(dataset),
        delta::sql_literal(step)
    );
    let mut out = std::collections::HashSet::new();
    if let Some((schema, batches)) = delta::query(&lake.ops_loc(PROMOTIONS)?, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        out.extend(strings_of(&df, "batch_id")?);
    }
    Ok(out)
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

/// Records one stage's rule results for a batch (nothing when there are none).
///
/// # Errors
/// Storage errors.
pub async fn record_rules(
    lake: &Lake,
    dataset: &str,
    stage: &str,
    batch_id: &str,
    rules: &[RuleResult],
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let loc = lake.ops_loc(QUALITY_RESULTS)?;
    // Trusted results keep their original txn id so lakes written before per-stage
    // results stay idempotent.
    let app = match stage {
        "trusted" => txn_id("quality", &format!("{dataset}/{batch_id}")),
        other => txn_id("quality", &format!("{other}/{dataset}/{batch_id}")),
    };
    if delta::has_batch(&loc, &app).await? {
        return Ok(());
    }
    let n = rules.len();
    let now = lake.clock.now().timestamp_micros();
    let cols: Vec<ArrayRef> = vec![
        strs(vec![dataset.to_string(); n]),
        strs(vec![stage.to_string(); n]),
        strs(vec![batch_id.to_string(); n]),
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

/// One rule's result on one batch, as read back from `_ops/quality_results`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredResult {
    /// Stage judged: raw, trusted or curated.
    pub stage: String,
    /// Batch id.
    pub batch_id: String,
    /// Rule id.
    pub rule_id: String,
    /// What the rule protects.
    pub description: String,
    /// warn, quarantine, fail.
    pub severity: String,
    /// row or dataset.
    pub level: String,
    /// Rows judged.
    pub evaluated: u64,
    /// Rows failing.
    pub failed: u64,
    /// failed / evaluated.
    pub failure_rate: f64,
    /// Dataset-level metric.
    pub metric: Option<f64>,
    /// passed, warned, quarantined, failed, skipped.
    pub outcome: String,
}

/// A dataset's quality history: the books and rule results of every batch, oldest first.
#[derive(Debug, Clone, Serialize, Default)]
pub struct History {
    /// Books of each step and batch.
    pub books: Vec<PromotionRow>,
    /// Rule results of every batch.
    pub results: Vec<StoredResult>,
}

pub(crate) fn strings_of(df: &polars::prelude::DataFrame, c: &str) -> Result<Vec<String>> {
    Ok(df
        .column(c)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

pub(crate) fn u64s_of(df: &polars::prelude::DataFrame, c: &str) -> Result<Vec<u64>> {
    // Delta has no unsigned types: the counts come back as Int64.
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&polars::prelude::DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or_default()).collect())
}

pub(crate) fn f64s_of(df: &polars::prelude::DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    Ok(df.column(c)?.f64()?.iter().collect())
}

/// Reads a dataset's history from the ops tables.
///
/// # Errors
/// Storage errors.
pub async fn history(lake: &Lake, dataset: &str) -> Result<History> {
    let q = delta::sql_literal(dataset);
    let mut h = History::default();
    let sql = format!("SELECT * FROM t WHERE dataset = {q} ORDER BY recorded_at, batch_id");
    if let Some((schema, batches)) = delta::query(&lake.ops_loc(PROMOTIONS)?, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let (steps, ids, files, cv) = (
            strings_of(&df, "step")?,
            strings_of(&df, "batch_id")?,
            strings_of(&df, "source_file")?,
            strings_of(&df, "contract_version")?,
        );
        let (rin, prom, rej, quar, dup, upd, warn) = (
            u64s_of(&df, "rows_in")?,
            u64s_of(&df, "rows_promoted")?,
            u64s_of(&df, "rejected")?,
            u64s_of(&df, "quarantined")?,
            u64s_of(&df, "duplicates_dropped")?,
            u64s_of(&df, "updated")?,
            u64s_of(&df, "warned_rules")?,
        );
        for i in 0..df.height() {
            h.books.push(PromotionRow {
                dataset: dataset.to_string(),
                step: steps[i].clone(),
                batch_id: ids[i].clone(),
                source_file: files[i].clone(),
                rows_in: rin[i],
                rows_promoted: prom[i],
                rejected: rej[i],
                quarantined: quar[i],
                duplicates_dropped: dup[i],
                updated: upd[i],
                warned_rules: warn[i],
                contract_version: cv[i].clone(),
                recorded_at: String::new(),
            });
        }
    }
    let sql = format!("SELECT * FROM t WHERE dataset = {q} ORDER BY evaluated_at, batch_id");
    if let Some((schema, batches)) = delta::query(&lake.ops_loc(QUALITY_RESULTS)?, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let stages = strings_of(&df, "stage")?;
        let (ids, rules, desc, sev, lvl, out) = (
            strings_of(&df, "batch_id")?,
            strings_of(&df, "rule_id")?,
            strings_of(&df, "description")?,
            strings_of(&df, "severity")?,
            strings_of(&df, "level")?,
            strings_of(&df, "outcome")?,
        );
        let (ev, fail) = (u64s_of(&df, "evaluated")?, u64s_of(&df, "failed")?);
        let (rate, metric) = (f64s_of(&df, "failure_rate")?, f64s_of(&df, "metric")?);
        for i in 0..df.height() {
            h.results.push(StoredResult {
                stage: stages[i].clone(),
                batch_id: ids[i].clone(),
                rule_id: rules[i].clone(),
                description: desc[i].clone(),
                severity: sev[i].clone(),
                level: lvl[i].clone(),
                evaluated: ev[i],
                failed: fail[i],
                failure_rate: rate[i].unwrap_or_default(),
                metric: metric[i],
                outcome: out[i].clone(),
            });
        }
    }
    Ok(h)
}

/// Up to `per_rule` quarantined rows of a batch for each rule, as `file:line  failures`.
/// Values are as stored in quarantine, so identifiers are already pseudonymised.
///
/// # Errors
/// Storage errors.
pub async fn quarantine_samples(
    lake: &Lake,
    dataset: &str,
    batch: &str,
    per_rule: usize,
) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
    let loc = lake.table_loc(&crate::vocab::TableRef::quarantine(dataset))?;
    let sql = format!(
        "SELECT _source_file, _source_line, _rule_ids, _failures FROM t WHERE _batch_id = {} ORDER BY _source_line",
        delta::sql_literal(batch)
    );
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let (files, ids, fails) = (
            strings_of(&df, "_source_file")?,
            strings_of(&df, "_rule_ids")?,
            strings_of(&df, "_failures")?,
        );
        let lines: Vec<i64> = df
            .column("_source_line")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or_default())
            .collect();
        for i in 0..df.height() {
            for id in ids[i].split(',') {
                let v = out.entry(id.to_string()).or_default();
                if v.len() < per_rule {
                    v.push(format!("{}:{}  {}", files[i], lines[i], fails[i]));
                }
            }
        }
    }
    Ok(out)
}

/// Each rule's dataset-level metric over earlier batches of one stage, oldest first.
///
/// # Errors
/// Storage errors.
pub async fn rule_history(
    lake: &Lake,
    dataset: &str,
    stage: &str,
) -> Result<std::collections::HashMap<String, Vec<f64>>> {
    let loc = lake.ops_loc(QUALITY_RESULTS)?;
    let sql = format!(
        "SELECT rule_id, metric FROM t WHERE dataset = {} AND stage = {} AND metric IS NOT NULL ORDER BY evaluated_at, batch_id",
        delta::sql_literal(dataset),
        delta::sql_literal(stage)
    );
    let mut out: std::collections::HashMap<String, Vec<f64>> = Default::default();
    if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let ids = df.column("rule_id")?.str()?;
        let metrics = df.column("metric")?.f64()?;
        for (id, m) in ids.iter().zip(metrics.iter()) {
            if let (Some(id), Some(m)) = (id, m) {
                out.entry(id.to_string()).or_default().push(m);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::comment_in;

    fn assert_described(schema: &SchemaRef, comments: ColumnComments) {
        let fields: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let listed: Vec<&str> = comments.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            fields, listed,
            "the comment list follows the table's columns"
        );
        for c in fields {
            let text = comment_in(comments, c).unwrap_or_default();
            assert!(!text.is_empty(), "{c} has no comment");
            assert!(text.len() <= 255, "{c}: Glue keeps 255 characters");
        }
    }

    #[test]
    fn every_ops_column_has_a_comment() {
        assert_described(&promotions_schema(), PROMOTIONS_COLUMNS);
        assert_described(&quality_schema(), QUALITY_RESULTS_COLUMNS);
    }
}
