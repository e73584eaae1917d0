//! raw → trusted: each raw batch not yet in trusted is cast to the contract's types and judged
//! by every rule in one pass; rows failing a quarantine rule go to
//! `trusted.<dataset>_quarantine` with all their rule ids, the rest are deduplicated by
//! primary key (newest `newestWinsBy` wins, then the later line) and upserted into
//! `trusted.<dataset>`, where an older correction never replaces a newer one.

use std::collections::{BTreeSet, HashMap, HashSet};

use deltalake::arrow::array::RecordBatch;
use futures::StreamExt;
use std::time::Instant;

use polars::prelude::*;
use serde::Serialize;

use super::judge::{unique_sets, BatchJudge, Chunk, Judged};
use super::{keys, Dataset, Lake, Registration, Result, StepOptions, BATCH_ID};
use crate::frame;
use crate::ledger::{self, CommitMeta, Step};
use crate::metrics::io::IoSnapshot;
use crate::metrics::{Metric, Unit};
use crate::rules::eval::{self, AsOf, RuleResult, FAILURES, RULE_IDS};
use crate::rules::Check;
use crate::storage::delta::{self, txn_id, UpsertCounts};
use crate::storage::StorageError;
use crate::vocab::{Stage, TableRef};

/// Catalog description of `trusted.<dataset>_quarantine`.
pub const QUARANTINE_DESCRIPTION: &str =
    "Rows that broke a quarantine rule, with every rule id they failed and the failing values.";

/// Step name used in txn ids and reports.
pub const STEP: &str = Step::RawToTrusted.as_str();

/// Step name of a quarantine release (a trusted commit curated consumes like a batch).
pub const RELEASE_STEP: &str = Step::QuarantineRelease.as_str();
/// Step name of an erasure (`medallion forget`): its trusted commits carry the courses the
/// student was in, so curated recomputes them like a batch.
pub const FORGET_STEP: &str = Step::Forget.as_str();

/// What raw→trusted did with one batch.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedBatchReport {
    /// Dataset.
    pub dataset: String,
    /// Batch id.
    pub batch_id: String,
    /// Landing file the batch came from.
    pub source_file: String,
    /// Raw rows read.
    pub raw_rows: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Duplicates within the batch (same key, older or same record).
    pub in_batch_duplicates: u64,
    /// New keys added to trusted.
    pub inserted: u64,
    /// Existing rows replaced by a newer correction (the old row is dropped).
    pub updated: u64,
    /// Incoming rows older than what trusted holds (dropped).
    pub stale: u64,
    /// `in_batch_duplicates + updated + stale`.
    pub duplicates_dropped: u64,
    /// Per-rule results.
    pub rules: Vec<RuleResult>,
    /// Whether anything was written.
    pub committed: bool,
    /// Why the batch was held back instead of promoted (nothing written; it stays pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<crate::ledger::Hold>,
}

impl TrustedBatchReport {
    /// `raw rows = trusted (new keys) + quarantined + duplicates dropped`.
    pub fn balanced(&self) -> bool {
        !self.committed
            || self.raw_rows == self.inserted + self.quarantined + self.duplicates_dropped
    }

    /// Share of raw rows that passed every quarantine rule.
    pub fn quality_score(&self) -> f64 {
        if self.raw_rows == 0 {
            1.0
        } else {
            1.0 - self.quarantined as f64 / self.raw_rows as f64
        }
    }
}

/// The MERGE condition under which an incoming record replaces the trusted one: newer or
/// equal `newestWinsBy` (a later export of the same instant wins), missing counts as oldest.
fn newer_predicate(ds: &Dataset) -> Option<String> {
    ds.contract
        .newest_wins_by
        .as_ref()
        .map(|c| format!("t.{c} IS NULL OR (s.{c} IS NOT NULL AND s.{c} >= t.{c})"))
}

/// Merges the winning rows into trusted in one commit recording `app`; `None` when a
/// concurrent promotion committed `app` first.
async fn merge_winners(
    data_loc: &delta::TableLoc,
    ds: &Dataset,
    mut winners: DataFrame,
    app: &str,
    meta: &[(&str, serde_json::Value)],
) -> Result<Option<UpsertCounts>> {
    let rows = winners.height();
    if rows > 0 && !delta::has_files(data_loc).await? {
        // Every row is new: stream them in slices into one append (no MERGE, and never the
        // whole batch converted at once). A concurrent writer of the same batch is still
        // refused by the txn check.
        let (schema, _) = frame::to_batches(&mut winners.slice(0, 0))?;
        let Some(mut out) = delta::Appender::open(data_loc, schema, app, meta).await? else {
            return Ok(None);
        };
        write_slices(&mut out, &winners, ds.pipeline.trusted.chunk_rows).await?;
        // Onto the empty table only: a concurrent first load makes this a conflict, and the
        // rerun merges by key.
        return Ok(out.commit_into_empty().await?.map(|_| UpsertCounts {
            inserted: rows as u64,
            updated: 0,
        }));
    }
    let newer = newer_predicate(ds);
    let (ws, wb) = frame::to_batches(&mut winners)?;
    let merged = delta::upsert(
        data_loc,
        ws,
        wb,
        &ds.contract.primary_key,
        newer.as_deref(),
        app,
        meta,
    )
    .await?;
    Ok(merged.map(|(_, counts)| counts))
}

/// Writes `rows` into `out` in slices of `step` rows (never the whole frame converted at once).
async fn write_slices(out: &mut delta::Appender, rows: &DataFrame, step: usize) -> Result<()> {
    let step = step.max(1);
    for offset in (0..rows.height()).step_by(step) {
        let mut slice = rows.slice(offset as i64, step);
        for b in frame::to_batches(&mut slice)?.1 {
            out.write(b).await?;
        }
    }
    Ok(())
}

/// Completes a first load whose unique-key rows were streamed into `out`: appends the
/// deduplicated rows held back, then commits with `meta`, unless the table gained files
/// meanwhile (a commit conflict: the rerun merges by key).
async fn append_rest(
    mut out: delta::Appender,
    ds: &Dataset,
    winners: DataFrame,
    streamed: u64,
    meta: &[(&str, serde_json::Value)],
) -> Result<Option<UpsertCounts>> {
    let rows = winners.height();
    write_slices(&mut out, &winners, ds.pipeline.trusted.chunk_rows).await?;
    drop(winners);
    out.set_metadata(meta);
    Ok(out.commit_into_empty().await?.map(|_| UpsertCounts {
        inserted: streamed + rows as u64,
        updated: 0,
    }))
}

/// Keys each `references` rule checks against, read from the referenced trusted tables.
/// A rule whose table does not exist yet is absent from the map (and reported as skipped).
async fn reference_keys(lake: &Lake, ds: &Dataset) -> Result<HashMap<String, Series>> {
    let mut out = HashMap::new();
    for rule in &ds.rules.rules {
        let Check::References {
            column,
            dataset,
            key,
        } = &rule.check
        else {
            continue;
        };
        // By default the referenced column has the same name in the other dataset.
        let key = key.as_deref().unwrap_or(column);
        let loc = lake.loc(Stage::Trusted, dataset)?;
        let sql = format!("SELECT DISTINCT {key} AS k FROM t");
        if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
            let df = frame::from_batches(&schema, &batches)?;
            out.insert(
                rule.id.clone(),
                df.column("k")?.as_materialized_series().clone(),
            );
        }
    }
    Ok(out)
}

/// Splits deduplicated rows into those that change trusted (new keys, newer corrections) and
/// counts them against what trusted holds now; older corrections are dropped.
/// Column whose values a curated product is recomputed by.
pub const COURSE: &str = "course_id";

/// What a batch does to trusted: the rows that change it, the counts and books, and the
/// courses it touches — the courses of its rows and the courses corrected records leave —
/// which curated recomputes.
struct Classified {
    winners: DataFrame,
    counts: UpsertCounts,
    /// Corrections older than the trusted record (ignored).
    stale: u64,
    /// Repeats within the batch + older records replaced + stale corrections.
    duplicates_dropped: u64,
    courses: BTreeSet<String>,
}

/// `k >= min AND k <= max` for each key column of `rows` whose type has a SQL literal here
/// (text, integers, dates); nothing for an empty frame.
fn key_range(rows: &DataFrame, key: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if rows.height() == 0 {
        return Ok(out);
    }
    for k in key {
        let c = rows.column(k)?.as_materialized_series();
        let literal = |v: AnyValue| -> Option<String> {
            match v {
                AnyValue::String(s) => Some(delta::sql_literal(s)),
                AnyValue::StringOwned(s) => Some(delta::sql_literal(s.as_str())),
                AnyValue::Int32(n) => Some(n.to_string()),
                AnyValue::Int64(n) => Some(n.to_string()),
                AnyValue::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                    .map(|d| format!("DATE '{d}'")),
                _ => None,
            }
        };
        let (lo, hi) = (
            c.min_reduce()?.into_value().into_static(),
            c.max_reduce()?.into_value().into_static(),
        );
        if let (Some(lo), Some(hi)) = (literal(lo), literal(hi)) {
            out.push(format!("{k} >= {lo} AND {k} <= {hi}"));
        }
    }
    Ok(out)
}

/// Classifies a batch's deduplicated rows (`in_batch_duplicates` repeats already dropped)
/// against trusted.
async fn classify(
    data_loc: &delta::TableLoc,
    ds: &Dataset,
    valid: DataFrame,
    in_batch_duplicates: u64,
) -> Result<Classified> {
    let unique = valid.height() as u64;
    let key = &ds.contract.primary_key;
    let has_course = ds.contract.column(COURSE).is_some();
    let mut select: Vec<String> = key.clone();
    if let Some(o) = &ds.contract.newest_wins_by {
        select.push(format!("{o} AS __t_order"));
    }
    if has_course {
        select.push(format!("{COURSE} AS __t_course"));
    }
    let mut sql = format!("SELECT {} FROM t", select.join(", "));
    // Only rows whose key lies within the batch's key range can collide: the range lets Delta
    // skip every file outside it (an increment reads a few files, not the table).
    let range = key_range(&valid, key)?;
    if !range.is_empty() {
        sql.push_str(&format!(" WHERE {}", range.join(" AND ")));
    }
    let existing = match delta::query(data_loc, &sql).await? {
        Some((schema, batches)) => frame::from_batches(&schema, &batches)?,
        None => {
            let n = valid.height() as u64;
            let mut courses = BTreeSet::new();
            frame::distinct_text(&valid, COURSE, &mut courses)?;
            return Ok(Classified {
                winners: valid,
                counts: UpsertCounts {
                    inserted: n,
                    updated: 0,
                },
                stale: 0,
                duplicates_dropped: in_batch_duplicates,
                courses,
            });
        }
    };
    let on: Vec<Expr> = key.iter().map(|k| col(k.as_str())).collect();
    let joined = valid
        .lazy()
        .join(
            existing.lazy().with_column(lit(true).alias("__t_hit")),
            on.clone(),
            on,
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("__t_hit").fill_null(lit(false)))
        .collect()?;
    let newer = match &ds.contract.newest_wins_by {
        Some(o) => col("__t_order").is_null().or(col(o.as_str())
            .is_not_null()
            .and(col(o.as_str()).gt_eq(col("__t_order")))),
        None => lit(true),
    };
    let hit = col("__t_hit");
    let flagged = joined
        .lazy()
        .with_columns([
            hit.clone().not().alias("__insert"),
            hit.and(newer.fill_null(lit(false))).alias("__update"),
        ])
        .collect()?;
    let count =
        |c: &str| -> Result<u64> { Ok(flagged.column(c)?.bool()?.sum().unwrap_or(0) as u64) };
    let counts = UpsertCounts {
        inserted: count("__insert")?,
        updated: count("__update")?,
    };
    let mut drop: Vec<&str> = vec!["__t_hit", "__insert", "__update"];
    if ds.contract.newest_wins_by.is_some() {
        drop.push("__t_order");
    }
    let changing = flagged
        .lazy()
        .filter(col("__insert").or(col("__update")))
        .collect()?;
    let mut courses = BTreeSet::new();
    if has_course {
        drop.push("__t_course");
        frame::distinct_text(&changing, COURSE, &mut courses)?;
        // A correction may move a record to another course: the old one changes too.
        let left = changing
            .clone()
            .lazy()
            .filter(col("__update"))
            .select([col("__t_course")])
            .collect()?;
        frame::distinct_text(&left, "__t_course", &mut courses)?;
    }
    let winners = changing.lazy().drop(by_name(drop, true, false)).collect()?;
    let stale = unique - counts.inserted - counts.updated;
    Ok(Classified {
        winners,
        counts,
        stale,
        duplicates_dropped: in_batch_duplicates + counts.updated + stale,
        courses,
    })
}

/// The batches already in trusted (from its history, one read), after copying into the books
/// any batch's books that a crash kept from being recorded after its data commit.
async fn settle_books(
    lake: &Lake,
    ds: &Dataset,
    data_loc: &delta::TableLoc,
) -> Result<std::collections::HashSet<String>> {
    let commits = delta::step_commits(data_loc, &[STEP]).await?;
    let mut done = std::collections::HashSet::new();
    let mut recorded = None;
    for info in commits {
        let Some(batch) = CommitMeta::read(&info).batch else {
            continue;
        };
        let batch = batch.as_str();
        done.insert(batch.to_string());
        if !info.contains_key(crate::vocab::commit_key::BOOKS) {
            continue;
        }
        if recorded.is_none() {
            recorded = Some(ledger::recorded_batches(lake, ds.name(), Step::RawToTrusted).await?);
        }
        if recorded.as_ref().is_some_and(|r| r.contains(batch)) {
            continue;
        }
        let Some(row) = CommitMeta::read_books(&info).map_err(|e| StorageError::Corrupt {
            path: data_loc.url.to_string(),
            message: format!("books of batch {batch}: {e}"),
        })?
        else {
            continue;
        };
        tracing::info!(
            dataset = ds.name(),
            batch,
            "Recording books a crash left unrecorded."
        );
        ledger::record_books(lake, row).await?;
    }
    Ok(done)
}

fn raw_columns(ds: &Dataset) -> Vec<String> {
    ds.contract.raw_columns().map(|r| r.name.clone()).collect()
}

/// Promotes every raw batch of `ds` not yet in trusted, in landing order.
///
/// # Errors
/// [`StepError::Stopped`] when a `fail` rule fails (nothing written); storage errors.
pub async fn run(lake: &Lake, ds: &Dataset, opts: StepOptions) -> Result<Vec<TrustedBatchReport>> {
    let name = ds.name();
    let raw_loc = lake.loc(Stage::Raw, name)?;
    let data_loc = lake.loc(Stage::Trusted, name)?;
    let q_name = TableRef::quarantine(name).name();
    let q_loc = lake.loc(Stage::Trusted, &q_name)?;
    let types = |c: &str| ds.contract.column(c).and_then(|c| c.ty);
    // Read on the first pending batch only: a no-op run reads the logs and nothing more.
    let (mut refs, mut history) = (None, None);
    let mut reports = Vec::new();
    // Read each table's history once, not the log once per landed file.
    let in_raw = delta::batches_in_history(&raw_loc, super::raw::STEP).await?;
    let done = settle_books(lake, ds, &data_loc).await?;
    let raw_columns = raw_columns(ds);
    // Read once, and only when a batch is pending.
    let (mut forgotten, empty) = (None, std::collections::HashSet::new());
    let empty_refs = HashMap::new();
    let unique = unique_sets(&ds.rules);
    for file in lake.landed(name).await? {
        let batch = file.batch_id();
        let app = txn_id(STEP, &batch);
        if done.contains(&batch) {
            continue;
        }
        if !in_raw.contains(&batch)
            && !delta::has_batch(&raw_loc, &txn_id(super::raw::STEP, &batch)).await?
        {
            continue;
        }
        if delta::has_batch(&data_loc, &app).await? {
            continue;
        }
        let started = Instant::now();
        let io_start = IoSnapshot::now();
        let batch_pred = format!("{BATCH_ID} = {}", delta::sql_literal(&batch));
        let Some((schema, mut stream)) =
            delta::query_stream(&raw_loc, &format!("SELECT * FROM t WHERE {batch_pred}")).await?
        else {
            continue;
        };
        if forgotten.is_none() {
            forgotten = Some(super::forgotten::load(lake).await?);
        }
        if refs.is_none() {
            refs = Some(reference_keys(lake, ds).await?);
        }
        let history = match &mut history {
            Some(h) => h,
            None => history.insert(ledger::rule_history(lake, name, Stage::Trusted).await?),
        };
        let refs = refs.as_ref().unwrap_or(&empty_refs);
        let forgotten = forgotten.as_ref().unwrap_or(&empty);
        let chunk_rows = ds.pipeline.trusted.chunk_rows;
        let chunked = delta::count_where(&raw_loc, Some(&batch_pred)).await? > chunk_rows as u64;
        // A table's first load streams its valid rows into the data commit as they are
        // judged; only rows whose key repeats in the batch wait to be deduplicated at the end.
        let stream_valid = chunked && !delta::has_files(&data_loc).await?;
        // A batch judged in more than one chunk needs its repeated keys up front: per
        // `unique` rule, and the primary key's when streaming.
        let mut sets: Vec<Vec<String>> = if chunked {
            unique.iter().map(|(_, c)| c.clone()).collect()
        } else {
            Vec::new()
        };
        if stream_valid {
            sets.push(ds.contract.primary_key.clone());
        }
        let mut found = if sets.is_empty() {
            Vec::new()
        } else {
            keys::repeated(&raw_loc, ds, &sets, &batch_pred, forgotten).await?
        };
        let held_keys = if stream_valid { found.pop() } else { None };
        let repeats = (chunked && !unique.is_empty())
            .then(|| unique.iter().map(|(id, _)| id.clone()).zip(found).collect());
        let mut judge = BatchJudge::new(ds, &ds.rules, repeats, held_keys);
        let batch_unique = judge.batch_unique();
        let cx = eval::Context {
            as_of: AsOf(lake.clock.now()),
            types: &types,
            history,
            refs,
            delivered: None,
            batch_unique: batch_unique.as_ref(),
        };
        let commit =
            CommitMeta::batch(Step::RawToTrusted, &batch).with_contract(&ds.contract.version);
        let meta = commit.entries();
        // Quarantined rows stream into the quarantine table's pending commit, chunk by chunk;
        // it is committed only once the whole batch is judged and neither stopped nor held.
        let mut q_writable = !opts.dry_run && !delta::has_batch(&q_loc, &app).await?;
        let mut q_out: Option<delta::Appender> = None;
        // Streamed valid rows go into the data table's pending commit, committed last.
        let mut d_writable = stream_valid && !opts.dry_run;
        let mut d_out: Option<delta::Appender> = None;
        let mut streamed_courses = BTreeSet::new();
        let (mut raw_rows, mut quarantined) = (0u64, 0u64);
        let mut pending: Vec<RecordBatch> = Vec::new();
        let (mut pending_rows, mut judged_any) = (0usize, false);
        loop {
            let next = stream.next().await.transpose()?;
            let done = next.is_none();
            if let Some(b) = next {
                pending_rows += b.num_rows();
                pending.push(b);
            }
            if done && pending.is_empty() && judged_any {
                break;
            }
            if !done && pending_rows < chunk_rows {
                continue;
            }
            if pending.is_empty() {
                pending.push(RecordBatch::new_empty(schema.clone()));
            }
            let raw = frame::from_batches(&schema, &pending)?;
            pending.clear();
            pending_rows = 0;
            judged_any = true;
            raw_rows += raw.height() as u64;
            let Chunk {
                quarantine: mut q,
                ready,
            } = judge
                .chunk(raw, &raw_columns, forgotten, &cx)
                .map_err(|e| e.in_file(&file.original_name))?;
            if let Some(mut ready) = ready.filter(|r| r.height() > 0) {
                frame::distinct_text(&ready, COURSE, &mut streamed_courses)?;
                if d_writable {
                    let (rs, rb) = frame::to_batches(&mut ready)?;
                    if d_out.is_none() {
                        d_out = delta::Appender::open(&data_loc, rs, &app, &meta).await?;
                        d_writable = d_out.is_some();
                    }
                    if let Some(out) = d_out.as_mut() {
                        for b in rb {
                            out.write(b).await?;
                        }
                    }
                }
            }
            quarantined += q.height() as u64;
            if q.height() > 0 && q_writable {
                let (qs, qb) = frame::to_batches(&mut q)?;
                if q_out.is_none() {
                    q_out = delta::Appender::open(&q_loc, qs, &app, &meta).await?;
                    q_writable = q_out.is_some();
                }
                if let Some(out) = q_out.as_mut() {
                    for b in qb {
                        out.write(b).await?;
                    }
                }
            }
            if done {
                break;
            }
        }
        let Judged {
            valid,
            streamed,
            in_batch_duplicates,
            results,
        } = judge
            .finish(&cx)
            .map_err(|e| e.in_file(&file.original_name))?;
        let mut report = TrustedBatchReport {
            dataset: name.to_string(),
            batch_id: batch.clone(),
            source_file: file.original_name.clone(),
            raw_rows,
            quarantined,
            in_batch_duplicates,
            inserted: 0,
            updated: 0,
            stale: 0,
            duplicates_dropped: in_batch_duplicates,
            rules: results,
            committed: !opts.dry_run,
            held: None,
        };
        if !opts.accept_held {
            report.held =
                super::hold::at_trusted(&ds.pipeline.hold, raw_rows, quarantined, &report.rules);
        }
        if let Some(h) = &report.held {
            report.committed = false;
            tracing::warn!(dataset = name, batch = %batch, reason = %h.reason, "Holding the batch back.");
            if !opts.dry_run {
                ledger::holds::record(lake, &ledger::HoldRow::trusted(&report, h)).await?;
                lake.metrics
                    .emit(&super::hold::metrics(name, "trusted", h))
                    .await?;
            }
            reports.push(report);
            continue;
        }
        if opts.dry_run {
            reports.push(report);
            continue;
        }
        if let Some(out) = q_out {
            out.commit().await?;
        }
        super::crash_point(STEP, "after-quarantine");
        let Classified {
            winners,
            mut counts,
            stale,
            duplicates_dropped,
            mut courses,
        } = classify(&data_loc, ds, valid, in_batch_duplicates).await?;
        // Streamed rows are new keys of a table that had none (checked again at the commit).
        counts.inserted += streamed;
        courses.extend(streamed_courses);
        report.inserted = counts.inserted;
        report.updated = counts.updated;
        (report.stale, report.duplicates_dropped) = (stale, duplicates_dropped);
        // The books travel in the data commit itself (atomic with the rows they count) and
        // are copied into `_ops/promotions` after it; a crash in between is settled by the
        // next run from the commit (see `settle_books`).
        let books = super::books::trusted_books(&report, &ds.contract.version);
        let meta = commit
            .with_courses(courses)
            .with_books(books.clone())
            .entries();
        ledger::record_rules(lake, name, Stage::Trusted, &batch, &report.rules).await?;
        for r in &report.rules {
            if let Some(m) = r.metric {
                history.entry(r.rule_id.clone()).or_default().push(m);
            }
        }
        super::crash_point(STEP, "before-data");
        // The data table is written last: its txn marks the batch done.
        let merged = match d_out {
            Some(out) => append_rest(out, ds, winners, streamed, &meta).await?,
            None => merge_winners(&data_loc, ds, winners, &app, &meta).await?,
        };
        let Some(merged) = merged else {
            tracing::warn!(dataset = name, batch = %batch, "A concurrent promotion committed this batch first.");
            continue;
        };
        if merged != counts {
            tracing::warn!(dataset = name, batch = %batch, ?merged, expected = ?counts, "Trusted changed during the promotion; the recorded books may be off.");
        }
        super::crash_point(STEP, "after-data");
        ledger::record_books(lake, books).await?;
        let mut metrics = vec![
            Metric::new("RowsIn", raw_rows as f64, Unit::Count, name, "trusted"),
            Metric::new(
                "RowsPromoted",
                report.inserted as f64,
                Unit::Count,
                name,
                "trusted",
            ),
            Metric::new(
                "RowsQuarantined",
                quarantined as f64,
                Unit::Count,
                name,
                "trusted",
            ),
            Metric::new(
                "DuplicatesDropped",
                report.duplicates_dropped as f64,
                Unit::Count,
                name,
                "trusted",
            ),
            Metric::new(
                "QualityScore",
                report.quality_score(),
                Unit::None,
                name,
                "trusted",
            ),
            Metric::new(
                "QuarantineRate",
                if raw_rows == 0 {
                    0.0
                } else {
                    quarantined as f64 / raw_rows as f64
                },
                Unit::None,
                name,
                "trusted",
            ),
            Metric::new(
                "DurationSeconds",
                started.elapsed().as_secs_f64(),
                Unit::Seconds,
                name,
                "trusted",
            ),
        ];
        for r in &report.rules {
            metrics.push(
                Metric::new("RulePassRate", r.pass_rate(), Unit::None, name, "trusted")
                    .with_rule(&r.rule_id),
            );
        }
        metrics.extend(lake.cost_metrics(&io_start, name, "trusted"));
        lake.metrics.emit(&metrics).await?;
        tracing::info!(dataset = name, batch = %batch, inserted = report.inserted, quarantined, "Promoted batch to trusted.");
        reports.push(report);
    }
    if !opts.dry_run && reports.iter().any(|r| r.committed) {
        let last = reports
            .iter()
            .rfind(|r| r.committed)
            .map(|r| r.batch_id.clone());
        let contract = Some(&ds.contract);
        lake.register(Registration {
            dataset: name,
            stage: Some(Stage::Trusted),
            table: name,
            kind: "data",
            description: "Typed, deduplicated, contract-conformant rows; the newest correction of each record.",
            contract,
            last_batch: last.as_deref(),
            comments: None,
        })
        .await?;
        lake.register(Registration {
            dataset: name,
            stage: Some(Stage::Trusted),
            table: &q_name,
            kind: "quarantine",
            description: QUARANTINE_DESCRIPTION,
            contract,
            last_batch: last.as_deref(),
            comments: None,
        })
        .await?;
    }
    Ok(reports)
}

/// What `quarantine release` did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReleaseReport {
    /// Dataset.
    pub dataset: String,
    /// Quarantined rows re-evaluated.
    pub evaluated: u64,
    /// Rows that now pass every rule and left quarantine.
    pub released: u64,
    /// Of those, new keys in trusted.
    pub inserted: u64,
    /// Of those, newer corrections that replaced a trusted row.
    pub updated: u64,
    /// Released rows dropped as duplicates or older than what trusted holds.
    pub duplicates_dropped: u64,
    /// Rows still failing, left in quarantine.
    pub still_quarantined: u64,
}

/// Re-evaluates every quarantined row under the current contract and rules; rows that now pass
/// are upserted into trusted (by primary key, so a rerun never duplicates them) and then leave
/// quarantine. Trusted is written first: a crash in between leaves the rows in quarantine and
/// the rerun upserts them again as the same records.
///
/// # Errors
/// [`StepError::Stopped`] when a `fail` rule fails; storage errors.
pub async fn release(lake: &Lake, ds: &Dataset, dry_run: bool) -> Result<ReleaseReport> {
    let name = ds.name();
    let q_loc = lake.table_loc(&TableRef::quarantine(name))?;
    let data_loc = lake.loc(Stage::Trusted, name)?;
    let mut report = ReleaseReport {
        dataset: name.to_string(),
        ..ReleaseReport::default()
    };
    let Some((schema, batches)) = delta::query(&q_loc, "SELECT * FROM t").await? else {
        return Ok(report);
    };
    let all = frame::from_batches(&schema, &batches)?;
    report.evaluated = all.height() as u64;
    if all.height() == 0 {
        return Ok(report);
    }
    let raw = all
        .clone()
        .lazy()
        .drop(by_name([RULE_IDS, FAILURES], true, false))
        .collect()?;
    let types = |c: &str| ds.contract.column(c).and_then(|c| c.ty);
    let refs = reference_keys(lake, ds).await?;
    let history = HashMap::new();
    let mut rules = ds.rules.clone();
    // Dataset-level rules judged the original batches; only row rules decide a release.
    rules.rules.retain(|r| r.check.is_row_level());
    let cx = eval::Context {
        as_of: AsOf(lake.clock.now()),
        types: &types,
        history: &history,
        refs: &refs,
        delivered: None,
        batch_unique: None,
    };
    // The quarantine is judged as one chunk: its rows come from many batches.
    let mut judge = BatchJudge::new(ds, &rules, None, None);
    let mut remaining = judge
        .chunk(raw, &raw_columns(ds), &HashSet::new(), &cx)?
        .quarantine;
    let Judged {
        valid,
        in_batch_duplicates: dups,
        ..
    } = judge.finish(&cx)?;
    report.still_quarantined = remaining.height() as u64;
    report.released = report.evaluated - report.still_quarantined;
    if report.released == 0 || dry_run {
        return Ok(report);
    }
    let Classified {
        winners,
        counts,
        duplicates_dropped,
        courses,
        ..
    } = classify(&data_loc, ds, valid, dups).await?;
    report.inserted = counts.inserted;
    report.updated = counts.updated;
    report.duplicates_dropped = duplicates_dropped;
    let stamp = lake.clock.now().timestamp_micros().to_string();
    let app = txn_id(RELEASE_STEP, &stamp);
    // Curated picks a release up like a batch: its label and the courses it touches.
    let meta = CommitMeta::batch(Step::QuarantineRelease, format!("release-{stamp}"))
        .with_courses(courses)
        .entries();
    merge_winners(&data_loc, ds, winners, &app, &meta).await?;
    super::crash_point(RELEASE_STEP, "after-trusted");
    let (rs, rb) = frame::to_batches(&mut remaining)?;
    delta::overwrite(&q_loc, rs, rb, &app, &meta).await?;
    super::crash_point(RELEASE_STEP, "after-quarantine");
    super::books::record_release(lake, &report, &stamp).await?;
    lake.sync_catalog().await?;
    Ok(report)
}
