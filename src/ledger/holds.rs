//! `_ops/holds`: one row per batch held back instead of promoted (see `stage::hold` for when
//! a batch is held), and the read of the holds still pending.
//!
//! Invariants: a hold is an event — each attempt is appended under its own txn id (a batch held
//! on two runs has two rows); a batch counts as pending until its step's books record it.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use serde::Serialize;

use super::table::{count, float, instant, instants, strs, text, u64s};
use super::{recorded_batches, Result, Step};
use crate::frame::{f64s_of, strings_of, u64s_of};
use crate::lake::Lake;
use crate::storage::delta::{self, txn_id};
use crate::vocab::ColumnComments;

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

/// Ops table with one row per held attempt (append-only history; the report shows the latest
/// hold of every batch still pending).
pub const HOLDS: &str = "holds";

/// Columns of `ops.holds` with their catalog comments, in table order.
pub const HOLDS_COLUMNS: ColumnComments = &[
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
    /// A hold row (`held_at` is filled on read).
    pub fn new(ds: &str, stage: &str, b: &str, f: &str, rows: u64, bad: u64, h: &Hold) -> Self {
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
    Arc::new(Schema::new(vec![
        text("dataset"),
        text("stage"),
        text("batch_id"),
        text("source_file"),
        count("rows_in"),
        count("bad_rows"),
        float("bad_share", false),
        text("reason"),
        text("advice"),
        instant("held_at"),
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
    let s = |v: &str| strs(vec![v.to_string()]);
    let u = |v: u64| u64s(vec![v]);
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
        instants(vec![now]),
    ];
    let batch = RecordBatch::try_new(holds_schema(), cols)?;
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
        strings_of(&df, "stage")?,
        strings_of(&df, "batch_id")?,
        strings_of(&df, "source_file")?,
    );
    let (reasons, advice, at) = (
        strings_of(&df, "reason")?,
        strings_of(&df, "advice")?,
        strings_of(&df, "held_text")?,
    );
    let (rows, bad) = (u64s_of(&df, "rows_in")?, u64s_of(&df, "bad_rows")?);
    let share = f64s_of(&df, "bad_share")?;
    let raw_done = recorded_batches(lake, dataset, Step::LandingToRaw).await?;
    let trusted_done = recorded_batches(lake, dataset, Step::RawToTrusted).await?;
    let mut latest: BTreeMap<(String, String), HoldRow> = Default::default();
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
