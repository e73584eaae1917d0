//! `_ops/quality_results`: one row per rule per batch (evaluated, passed, failed, failure rate,
//! metric, outcome), and the reads the rules and reports make of it.
//!
//! Invariants: a batch's results for one stage are written once, in one commit, by the batch's
//! txn id (trusted results keep their original id, so lakes written before per-stage results
//! stay idempotent); nothing is written for a batch without rules.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use serde::Serialize;

use super::table::{count, float, instant, instants, strs, text, u64s};
use super::Result;
use crate::frame::strings_of;
use crate::lake::Lake;
use crate::rules::eval::RuleResult;
use crate::storage::delta::{self, txn_id};
use crate::vocab::{ColumnComments, Stage, TableRef};

/// Ops table with one row per rule per batch.
pub const QUALITY_RESULTS: &str = "quality_results";

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

fn quality_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("dataset"),
        text("stage"),
        text("batch_id"),
        text("rule_id"),
        text("description"),
        text("severity"),
        text("level"),
        count("evaluated"),
        count("passed"),
        count("failed"),
        float("failure_rate", false),
        float("metric", true),
        text("outcome"),
        instant("evaluated_at"),
    ]))
}

/// Records one stage's rule results for a batch (nothing when there are none).
///
/// # Errors
/// Storage errors.
pub async fn record_rules(
    lake: &Lake,
    dataset: &str,
    stage: Stage,
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
        Stage::Trusted => txn_id("quality", &format!("{dataset}/{batch_id}")),
        other => txn_id("quality", &format!("{other}/{dataset}/{batch_id}")),
    };
    if delta::has_batch(&loc, &app).await? {
        return Ok(());
    }
    let n = rules.len();
    let now = lake.clock.now().timestamp_micros();
    let cols: Vec<ArrayRef> = vec![
        strs(vec![dataset.to_string(); n]),
        strs(vec![stage.as_str().to_string(); n]),
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
        instants(vec![now; n]),
    ];
    let batch = RecordBatch::try_new(quality_schema(), cols)?;
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
) -> Result<BTreeMap<String, Vec<String>>> {
    let loc = lake.table_loc(&TableRef::quarantine(dataset))?;
    let sql = format!(
        "SELECT _source_file, _source_line, _rule_ids, _failures FROM t WHERE _batch_id = {} ORDER BY _source_line",
        delta::sql_literal(batch)
    );
    let mut out: BTreeMap<String, Vec<String>> = Default::default();
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

/// One row of `trusted.<dataset>_quarantine` as `medallion quarantine` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    /// Landing file as delivered.
    pub source_file: String,
    /// Line in the landing file.
    pub source_line: i64,
    /// Each failure as `rule: column=value` (identifiers pseudonymised).
    pub failures: String,
}

/// How many rows of `dataset`'s quarantine fail `rule` (every row when `None`), and the first
/// `limit` of them in batch and line order.
///
/// # Errors
/// Storage errors.
pub async fn quarantined(
    lake: &Lake,
    dataset: &str,
    rule: Option<&str>,
    limit: usize,
) -> Result<(i64, Vec<QuarantinedRow>)> {
    let loc = lake.table_loc(&TableRef::quarantine(dataset))?;
    let filter = match rule {
        Some(r) => format!(
            "WHERE concat(',', _rule_ids, ',') LIKE '%,{},%'",
            r.replace('\'', "''").replace('%', "")
        ),
        None => String::new(),
    };
    let count_sql = format!("SELECT count(*) AS n FROM t {filter}");
    let total = match delta::query(&loc, &count_sql).await? {
        Some((s, b)) => crate::frame::from_batches(&s, &b)?
            .column("n")?
            .i64()?
            .get(0)
            .unwrap_or(0),
        None => 0,
    };
    let sql = format!("SELECT _source_file, _source_line, _batch_id, _rule_ids, _failures FROM t {filter} ORDER BY _batch_id, _source_line LIMIT {limit}");
    let mut rows = Vec::new();
    if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let files = df.column("_source_file")?.str()?.clone();
        let lines = df.column("_source_line")?.i64()?.clone();
        let fails = df.column("_failures")?.str()?.clone();
        for i in 0..df.height() {
            rows.push(QuarantinedRow {
                source_file: files.get(i).unwrap_or_default().to_string(),
                source_line: lines.get(i).unwrap_or_default(),
                failures: fails.get(i).unwrap_or_default().to_string(),
            });
        }
    }
    Ok((total, rows))
}

/// Each rule's dataset-level metric over earlier batches of one stage, oldest first.
///
/// # Errors
/// Storage errors.
pub async fn rule_history(
    lake: &Lake,
    dataset: &str,
    stage: Stage,
) -> Result<HashMap<String, Vec<f64>>> {
    let loc = lake.ops_loc(QUALITY_RESULTS)?;
    let sql = format!(
        "SELECT rule_id, metric FROM t WHERE dataset = {} AND stage = {} AND metric IS NOT NULL ORDER BY evaluated_at, batch_id",
        delta::sql_literal(dataset),
        delta::sql_literal(stage.as_str())
    );
    let mut out: HashMap<String, Vec<f64>> = Default::default();
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
    use crate::ledger::books::promotions_schema;
    use crate::ledger::books::PROMOTIONS_COLUMNS;
    use crate::vocab::comment_in;

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
