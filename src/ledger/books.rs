//! `_ops/promotions`: the books of every batch of every step — rows in, promoted, rejected,
//! quarantined, duplicates dropped, updated.
//!
//! Invariants: one row per (step, dataset, batch), written once (the row's txn id is checked
//! first), so recording the books again after a crash is a no-op; the books balance per step
//! (`raw: rows_in = rows_promoted + rejected`, `trusted: rows_in = rows_promoted + quarantined +
//! duplicates_dropped`) — the steps guarantee it, the ledger stores what it is given.

use std::collections::HashSet;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch};
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::quality::{self, StoredResult};
use super::table::{count, instant, instants, strs, text, u64s};
use super::{Result, Step};
use crate::frame::{f64s_of, strings_of, u64s_of};
use crate::lake::Lake;
use crate::rules::eval::{Outcome, RuleResult};
use crate::storage::delta::{self, txn_id};
use crate::vocab::ColumnComments;

/// Ops table with the books of every batch.
pub const PROMOTIONS: &str = "promotions";
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

impl PromotionRow {
    /// An empty row of `step`'s books for one batch (every count 0), to fill in.
    pub fn new(step: Step, dataset: &str, batch_id: &str) -> Self {
        Self {
            dataset: dataset.to_string(),
            step: step.as_str().to_string(),
            batch_id: batch_id.to_string(),
            source_file: String::new(),
            rows_in: 0,
            rows_promoted: 0,
            rejected: 0,
            quarantined: 0,
            duplicates_dropped: 0,
            updated: 0,
            warned_rules: 0,
            contract_version: String::new(),
            recorded_at: String::new(),
        }
    }
}

/// How many rules of severity warn failed.
pub fn warned_rules(rules: &[RuleResult]) -> u64 {
    rules
        .iter()
        .filter(|x| x.outcome == Outcome::Warned)
        .count() as u64
}

pub(super) fn promotions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("dataset"),
        text("step"),
        text("batch_id"),
        text("source_file"),
        count("rows_in"),
        count("rows_promoted"),
        count("rejected"),
        count("quarantined"),
        count("duplicates_dropped"),
        count("updated"),
        count("warned_rules"),
        text("contract_version"),
        instant("recorded_at"),
    ]))
}

/// Records a books row (once: the row's txn is checked).
///
/// # Errors
/// Storage errors.
pub async fn record_books(lake: &Lake, row: PromotionRow) -> Result<()> {
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
        instants(vec![now]),
    ];
    let batch = RecordBatch::try_new(promotions_schema(), cols)?;
    delta::append(&loc, promotions_schema(), vec![batch], &app, &[]).await?;
    Ok(())
}

/// The batches of `dataset` whose books `step` has recorded (one read of the books).
///
/// # Errors
/// Storage errors.
pub async fn recorded_batches(lake: &Lake, dataset: &str, step: Step) -> Result<HashSet<String>> {
    let sql = format!(
        "SELECT batch_id FROM t WHERE dataset = {} AND step = {}",
        delta::sql_literal(dataset),
        delta::sql_literal(step.as_str())
    );
    let mut out = HashSet::new();
    if let Some((schema, batches)) = delta::query(&lake.ops_loc(PROMOTIONS)?, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        out.extend(strings_of(&df, "batch_id")?);
    }
    Ok(out)
}

/// A dataset's quality history: the books and rule results of every batch, oldest first.
#[derive(Debug, Clone, Serialize, Default)]
pub struct History {
    /// Books of each step and batch.
    pub books: Vec<PromotionRow>,
    /// Rule results of every batch.
    pub results: Vec<StoredResult>,
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
    if let Some((schema, batches)) =
        delta::query(&lake.ops_loc(quality::QUALITY_RESULTS)?, &sql).await?
    {
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
