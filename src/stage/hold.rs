//! Holding a whole batch back instead of promoting it.
//!
//! A file that is mostly rejects or mostly quarantine is far more likely a wrong export (an HTML
//! error page, a file of another dataset, garbage bytes) or a contract that does not fit the
//! source (an id pattern stricter than the SIS) than a file of bad records. Promoting it would
//! bury every row in quarantine and exit 0, so nobody looks. Instead the batch is *held*:
//!
//! Invariants:
//! - a held batch commits nothing to the step's tables (data, rejects, quarantine, rule
//!   results, books): it stays pending and the next `promote` judges it again, so fixing the
//!   contract (or rules) and promoting again is all it takes;
//! - the other batches of the run are promoted as usual (a held file never blocks the ones after
//!   it), and the run exits 1 naming every held batch and what to do;
//! - `--accept-held` promotes a held batch anyway, its bad rows going to rejects or quarantine
//!   as the rules say, so nothing is ever lost.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

use super::raw::RawBatchReport;
use super::trusted::TrustedBatchReport;
use super::{ops, Lake, Result, StepError};
use crate::storage::delta::{self, txn_id};

use crate::metrics::{Metric, Unit};
use crate::pipeline::HoldConfig;
use crate::rules::eval::RuleResult;
use crate::rules::Severity;

/// Why a batch was held, and what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hold {
    /// What is wrong with the batch, in words (counts and the limit included).
    pub reason: String,
    /// What the user can do.
    pub advice: String,
    /// The bad share that tripped the hold (1.0 for a file without data rows or usable header).
    pub share: f64,
}

const RAW_ADVICE: &str = "land a corrected file, or fix the contract and promote again; \
`promote --accept-held` keeps the batch's lines as rejects instead";
const TRUSTED_ADVICE: &str = "fix the contract or the rules and promote again (the batch stays \
pending), or land a corrected file; `promote --accept-held` quarantines the rows instead";

/// The hold of a landed file after parsing, if any: no data rows, a header that names none of
/// the contract's columns, or a reject share above the limit.
pub fn at_raw(
    cfg: &HoldConfig,
    landing_rows: u64,
    rejected: u64,
    delivered: Option<&[String]>,
    expected: &[&str],
) -> Option<Hold> {
    if let Some(cols) = delivered {
        if !cols.iter().any(|c| expected.contains(&c.as_str())) {
            let shown: Vec<&str> = cols.iter().take(4).map(String::as_str).collect();
            return Some(Hold {
                reason: format!(
                    "its header names none of the contract's columns (found {}{}; expected {})",
                    if shown.is_empty() {
                        "nothing".to_string()
                    } else {
                        shown
                            .iter()
                            .map(|c| format!("`{}`", truncate(c, 40)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    if cols.len() > 4 { ", ..." } else { "" },
                    expected.join(", ")
                ),
                advice: RAW_ADVICE.to_string(),
                share: 1.0,
            });
        }
    }
    if landing_rows == 0 {
        return Some(Hold {
            reason: "it has no data rows".to_string(),
            advice: RAW_ADVICE.to_string(),
            share: 1.0,
        });
    }
    let share = rejected as f64 / landing_rows as f64;
    (share > cfg.max_reject_share).then(|| Hold {
        reason: format!(
            "{rejected} of {landing_rows} lines ({}) could not be parsed, above the limit of {} \
             (hold.max_reject_share in the pipeline)",
            percent(share),
            percent(cfg.max_reject_share)
        ),
        advice: RAW_ADVICE.to_string(),
        share,
    })
}

/// The hold of a judged batch, if its quarantine share is above the limit (or it has no rows).
pub fn at_trusted(
    cfg: &HoldConfig,
    raw_rows: u64,
    quarantined: u64,
    rules: &[RuleResult],
) -> Option<Hold> {
    // A batch without rows was judged at raw (held there unless accepted): nothing to lose.
    if raw_rows == 0 {
        return None;
    }
    let share = quarantined as f64 / raw_rows as f64;
    if share <= cfg.max_quarantine_share {
        return None;
    }
    let mut worst: Vec<&RuleResult> = rules
        .iter()
        .filter(|r| r.severity == Severity::Quarantine && r.failed > 0)
        .collect();
    worst.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.rule_id.cmp(&b.rule_id)));
    let named: Vec<String> = worst
        .iter()
        .take(3)
        .map(|r| format!("{} ({} rows)", r.rule_id, r.failed))
        .collect();
    Some(Hold {
        reason: format!(
            "{quarantined} of {raw_rows} rows ({}) would be quarantined, above the limit of {} \
             (hold.max_quarantine_share in the pipeline){}",
            percent(share),
            percent(cfg.max_quarantine_share),
            if named.is_empty() {
                String::new()
            } else {
                format!("; most failed: {}", named.join(", "))
            }
        ),
        advice: TRUSTED_ADVICE.to_string(),
        share,
    })
}

/// The metrics of a held batch: `BatchesHeld` (1) and the share that tripped it.
pub fn metrics(dataset: &str, stage: &str, h: &Hold) -> Vec<Metric> {
    vec![
        Metric::new("BatchesHeld", 1.0, Unit::Count, dataset, stage),
        Metric::new("HeldBadShare", h.share, Unit::None, dataset, stage),
    ]
}

/// Ops table with one row per held attempt (append-only history; the report shows the latest
/// hold of every batch still pending).
pub const HOLDS: &str = "holds";

/// Columns of `ops.holds` with their catalog comments, in table order.
pub const HOLDS_COLUMNS: super::ColumnComments = &[
    ("dataset", "Dataset the held batch belongs to"),
    ("stage", "Stage the batch was held at: raw (parsing) or trusted (rules)"),
    ("batch_id", "Batch id of the landed file (it stays pending until promoted)"),
    ("source_file", "Landing file name as delivered"),
    ("rows_in", "Lines (raw) or rows (trusted) the step read from the batch"),
    ("bad_rows", "Of those, rejected (raw) or to be quarantined (trusted)"),
    ("bad_share", "bad_rows / rows_in, 0..1 (1 for a file without data rows or a usable header)"),
    ("reason", "Why the batch was held, in words, with the limit and the rules that failed most"),
    ("advice", "What to do: fix the contract or rules and promote again, land a corrected file, or promote --accept-held"),
    ("held_at", "When the hold was recorded (UTC); a batch held on several runs has one row per run"),
];

/// One row of `_ops/holds`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HoldRow {
    /// Dataset.
    pub dataset: String,
    /// Stage the batch was held at (`raw`, `trusted`).
    pub stage: String,
    /// Batch id.
    pub batch_id: String,
    /// Landing file as delivered.
    pub source_file: String,
    /// Rows (lines) the step read.
    pub rows_in: u64,
    /// Of those, rejected (raw) or to be quarantined (trusted).
    pub bad_rows: u64,
    /// Why, and what to do.
    pub hold: Hold,
    /// When (RFC 3339), filled on read.
    pub held_at: String,
}

impl HoldRow {
    /// The hold of a raw batch.
    pub fn raw(r: &RawBatchReport, h: &Hold) -> Self {
        Self::new(
            &r.dataset,
            "raw",
            &r.batch_id,
            &r.source_file,
            r.landing_rows,
            r.rejected,
            h,
        )
    }

    /// The hold of a trusted batch.
    pub fn trusted(r: &TrustedBatchReport, h: &Hold) -> Self {
        let (b, f) = (&r.batch_id, &r.source_file);
        Self::new(&r.dataset, "trusted", b, f, r.raw_rows, r.quarantined, h)
    }

    fn new(ds: &str, stage: &str, b: &str, f: &str, rows: u64, bad: u64, h: &Hold) -> Self {
        Self {
            dataset: ds.to_string(),
            stage: stage.to_string(),
            batch_id: b.to_string(),
            source_file: f.to_string(),
            rows_in: rows,
            bad_rows: bad,
            hold: h.clone(),
            held_at: String::new(),
        }
    }
}

fn holds_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let u = |n: &str| Field::new(n, DataType::UInt64, false);
    Arc::new(Schema::new(vec![
        s("dataset"),
        s("stage"),
        s("batch_id"),
        s("source_file"),
        u("rows_in"),
        u("bad_rows"),
        Field::new("bad_share", DataType::Float64, false),
        s("reason"),
        s("advice"),
        Field::new(
            "held_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Appends a hold to `_ops/holds` (each attempt is an event: a batch held twice has two rows).
///
/// # Errors
/// Storage errors.
pub async fn record(lake: &Lake, row: &HoldRow) -> Result<()> {
    let loc = lake.ops_loc(HOLDS)?;
    let now = lake.clock.now().timestamp_micros();
    let app = txn_id(
        "hold",
        &format!("{}/{}/{}/{now}", row.stage, row.dataset, row.batch_id),
    );
    let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v.to_string()])) };
    let u = |v: u64| -> ArrayRef { Arc::new(UInt64Array::from(vec![v])) };
    let cols: Vec<ArrayRef> = vec![
        s(&row.dataset),
        s(&row.stage),
        s(&row.batch_id),
        s(&row.source_file),
        u(row.rows_in),
        u(row.bad_rows),
        Arc::new(Float64Array::from(vec![row.hold.share])),
        s(&row.hold.reason),
        s(&row.hold.advice),
        Arc::new(TimestampMicrosecondArray::from(vec![now]).with_timezone("UTC")),
    ];
    let batch =
        RecordBatch::try_new(holds_schema(), cols).map_err(|e| StepError::Frame(e.into()))?;
    delta::append(&loc, holds_schema(), vec![batch], &app, &[]).await?;
    Ok(())
}

/// The latest hold of every batch of `dataset` that is still pending (not promoted since).
///
/// # Errors
/// Storage errors.
pub async fn pending(lake: &Lake, dataset: &str) -> Result<Vec<HoldRow>> {
    let sql = format!(
        "SELECT *, CAST(held_at AS VARCHAR) AS held_text FROM t WHERE dataset = {} ORDER BY held_at",
        delta::sql_literal(dataset)
    );
    let Some((schema, batches)) = delta::query(&lake.ops_loc(HOLDS)?, &sql).await? else {
        return Ok(Vec::new());
    };
    let df = crate::frame::from_batches(&schema, &batches)?;
    let (stages, ids, files) = (
        ops::strings_of(&df, "stage")?,
        ops::strings_of(&df, "batch_id")?,
        ops::strings_of(&df, "source_file")?,
    );
    let (reasons, advice, at) = (
        ops::strings_of(&df, "reason")?,
        ops::strings_of(&df, "advice")?,
        ops::strings_of(&df, "held_text")?,
    );
    let (rows, bad) = (
        ops::u64s_of(&df, "rows_in")?,
        ops::u64s_of(&df, "bad_rows")?,
    );
    let share = ops::f64s_of(&df, "bad_share")?;
    let raw_done = ops::recorded_batches(lake, dataset, super::raw::STEP).await?;
    let trusted_done = ops::recorded_batches(lake, dataset, super::trusted::STEP).await?;
    let mut latest: std::collections::BTreeMap<(String, String), HoldRow> = Default::default();
    for i in 0..df.height() {
        let done = match stages[i].as_str() {
            "raw" => &raw_done,
            _ => &trusted_done,
        };
        if done.contains(&ids[i]) {
            continue;
        }
        let mut row = HoldRow::new(
            dataset,
            &stages[i],
            &ids[i],
            &files[i],
            rows[i],
            bad[i],
            &Hold {
                reason: reasons[i].clone(),
                advice: advice[i].clone(),
                share: share[i].unwrap_or(1.0),
            },
        );
        row.held_at = at[i].clone();
        latest.insert((stages[i].clone(), ids[i].clone()), row);
    }
    Ok(latest.into_values().collect())
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn truncate(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match clean.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [&str; 2] = ["record_id", "student_id"];

    #[test]
    fn empty_file_and_foreign_header_are_held() {
        let cfg = HoldConfig::default();
        assert!(at_raw(&cfg, 0, 0, None, &COLS)
            .unwrap()
            .reason
            .contains("no data rows"));
        let html = vec!["<!DOCTYPE html>".to_string()];
        let h = at_raw(&cfg, 3, 3, Some(&html), &COLS).unwrap();
        assert!(h.reason.contains("none of the contract's columns"), "{h:?}");
        assert!(h.reason.contains("`<!DOCTYPE html>`"), "{h:?}");
    }

    #[test]
    fn reject_share_over_the_limit_is_held_and_at_the_limit_is_not() {
        let cfg = HoldConfig::default();
        let cols = vec!["record_id".to_string(), "oops".to_string()];
        assert!(at_raw(&cfg, 10, 5, Some(&cols), &COLS).is_none());
        let h = at_raw(&cfg, 10, 6, Some(&cols), &COLS).unwrap();
        assert!(h.reason.starts_with("6 of 10 lines (60.0%)"), "{h:?}");
        assert!((h.share - 0.6).abs() < 1e-12);
    }

    #[test]
    fn quarantine_share_names_the_rules_that_failed_most() {
        let cfg = HoldConfig {
            max_reject_share: 0.5,
            max_quarantine_share: 0.2,
        };
        assert!(at_trusted(&cfg, 10, 2, &[]).is_none());
        let h = at_trusted(&cfg, 10, 3, &[]).unwrap();
        assert!(h.reason.contains("limit of 20.0%"), "{h:?}");
        assert!(at_trusted(&cfg, 0, 0, &[]).is_none());
    }
}
