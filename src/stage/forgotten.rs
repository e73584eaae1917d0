//! Students erased with `medallion forget`, and the `forgotten_student` rule that holds any row
//! mentioning one of them in quarantine instead of re-admitting it.
//!
//! Invariants:
//! - the lake never records a forgotten student's pseudonym: `_ops/forgotten` keeps a
//!   *tombstone*, the SHA-256 of the pseudonym (itself a keyed HMAC of the id), so a byte
//!   search of the lake for the id, the e-mail or the pseudonym finds nothing;
//! - a later export that mentions a forgotten student is promoted as usual, except that the
//!   student's rows go to quarantine under [`RULE_ID`], counted in the books.

use std::collections::HashSet;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::{Lake, Result, StepError, LINEAGE};
use crate::rules::eval::{Outcome, RuleResult, FAILURES, ID_ISSUES, RULE_IDS};
use crate::rules::Severity;
use crate::storage::delta::{self, txn_id};

/// The ops table of tombstones.
pub const FORGOTTEN: &str = "forgotten";
/// The rule a row mentioning a forgotten student fails.
pub const RULE_ID: &str = "forgotten_student";
/// The column that names a student in every dataset that has one.
pub const STUDENT_ID: &str = "student_id";

/// Columns of `ops.forgotten` with their catalog comments, in table order.
pub const FORGOTTEN_COLUMNS: super::ColumnComments = &[
    (
        "tombstone",
        "SHA-256 (hex) of an erased student's pseudonym; the pseudonym itself is kept nowhere",
    ),
    ("forgotten_at", "When the student was erased (UTC)"),
];

/// The tombstone of a pseudonym: hex SHA-256 (64 characters).
pub fn tombstone(pseudonym: &str) -> String {
    hex::encode(Sha256::digest(pseudonym.as_bytes()))
}

/// A SQL predicate (DataFusion and Trino) selecting the rows of the student whose pseudonym
/// has `tomb` as tombstone, without writing the pseudonym down (predicates are kept in Delta
/// commit history).
pub fn predicate(tomb: &str) -> String {
    format!(
        "encode(sha256({STUDENT_ID}), 'hex') = {}",
        delta::sql_literal(tomb)
    )
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("tombstone", DataType::Utf8, false),
        Field::new(
            "forgotten_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Records a tombstone (once).
///
/// # Errors
/// Storage errors.
pub async fn record(lake: &Lake, tomb: &str) -> Result<()> {
    let now = lake.clock.now().timestamp_micros();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![tomb.to_string()])),
        Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(schema(), cols).map_err(|e| StepError::Frame(e.into()))?;
    let app = txn_id("forget", tomb);
    delta::append(&lake.ops_loc(FORGOTTEN)?, schema(), vec![batch], &app, &[]).await?;
    Ok(())
}

/// Every tombstone.
///
/// # Errors
/// Storage errors.
pub async fn load(lake: &Lake) -> Result<HashSet<String>> {
    let Some((schema, batches)) =
        delta::query(&lake.ops_loc(FORGOTTEN)?, "SELECT tombstone FROM t").await?
    else {
        return Ok(HashSet::new());
    };
    let df = crate::frame::from_batches(&schema, &batches)?;
    Ok(crate::frame::strings_of(&df, "tombstone")?
        .into_iter()
        .collect())
}

/// The rows of `frame` whose `student_id` is a forgotten student; `None` when there are none
/// (or no such column).
///
/// # Errors
/// polars errors.
pub fn mentions(frame: &DataFrame, forgotten: &HashSet<String>) -> Result<Option<BooleanChunked>> {
    if forgotten.is_empty() || frame.column(STUDENT_ID).is_err() {
        return Ok(None);
    }
    let ids = frame
        .column(STUDENT_ID)?
        .as_materialized_series()
        .cast(&polars::prelude::DataType::String)?;
    let mask: BooleanChunked = ids
        .str()?
        .iter()
        .map(|v| Some(v.is_some_and(|p| forgotten.contains(&tombstone(p)))))
        .collect();
    Ok((mask.sum().unwrap_or(0) > 0).then_some(mask))
}

/// Splits the rows of a raw batch that mention a forgotten student off into quarantine rows
/// (raw columns, [`ID_ISSUES`], lineage, [`RULE_IDS`], [`FAILURES`], in `raw_columns` order),
/// with the rule's result. `None` when nothing in the batch is forgotten.
///
/// # Errors
/// polars errors.
pub fn split(
    raw: DataFrame,
    raw_columns: &[String],
    forgotten: &HashSet<String>,
) -> Result<(DataFrame, Option<(DataFrame, RuleResult)>)> {
    let Some(mask) = mentions(&raw, forgotten)? else {
        return Ok((raw, None));
    };
    let hits = mask.sum().unwrap_or(0) as u64;
    let keep = raw.filter(&!&mask)?;
    let mut cols: Vec<Expr> = raw_columns.iter().map(|c| col(c.as_str())).collect();
    cols.push(col(ID_ISSUES));
    cols.extend(LINEAGE.iter().map(|c| col(*c)));
    cols.push(lit(RULE_ID).alias(RULE_IDS));
    cols.push(
        concat_str(
            [lit(format!("{RULE_ID}: {STUDENT_ID}=")), col(STUDENT_ID)],
            "",
            true,
        )
        .alias(FAILURES),
    );
    let held = raw.filter(&mask)?.lazy().select(cols).collect()?;
    let result = RuleResult {
        rule_id: RULE_ID.to_string(),
        description: "A student erased with `medallion forget` is not re-admitted: rows that mention them are held in quarantine.".to_string(),
        severity: Severity::Quarantine,
        level: "row",
        evaluated: raw.height() as u64,
        failed: hits,
        metric: None,
        outcome: Outcome::Quarantined,
    };
    Ok((keep, Some((held, result))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_not_pseudonyms_and_predicates_do_not_name_them() {
        let p = "p_0123456789abcdef0123456789abcdef01234567";
        let t = tombstone(p);
        assert_eq!(t.len(), 64);
        assert!(!t.contains(&p[2..]));
        assert!(!predicate(&t).contains(p));
    }
}
