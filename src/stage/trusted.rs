//! raw → trusted: each raw batch not yet in trusted is cast to the contract's types and judged
//! by every rule in one pass; rows failing a quarantine rule go to
//! `trusted.<dataset>_quarantine` with all their rule ids, the rest are deduplicated by
//! primary key (newest `newestWinsBy` wins, then the later line) and upserted into
//! `trusted.<dataset>`, where an older correction never replaces a newer one.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use polars::prelude::*;
use serde::Serialize;

use super::cast::cast_text;
use super::{
    ops, Dataset, Lake, Registration, Result, StepOptions, BATCH_ID, LINEAGE, SOURCE_LINE,
};
use crate::frame;
use crate::metrics::io::IoSnapshot;
use crate::metrics::{Metric, Unit};
use crate::rules::eval::{
    self, raw_name, AsOf, RuleResult, FAILURES, ID_ISSUES, QUARANTINE_FLAG, RULE_IDS,
};
use crate::rules::Check;
use crate::storage::delta::{self, txn_id, UpsertCounts};
use crate::storage::Stage;
use crate::storage::StorageError;

/// Catalog description of `trusted.<dataset>_quarantine`.
pub const QUARANTINE_DESCRIPTION: &str =
    "Rows that broke a quarantine rule, with every rule id they failed and the failing values.";

/// Step name used in txn ids and reports.
pub const STEP: &str = "raw-to-trusted";

/// Step name of a quarantine release (a trusted commit curated consumes like a batch).
pub const RELEASE_STEP: &str = "quarantine-release";
/// Step name of an erasure (`medallion forget`): its trusted commits carry the courses the
/// student was in, so curated recomputes them like a batch.
pub const FORGET_STEP: &str = "forget";

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
    pub held: Option<super::hold::Hold>,
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

/// Builds the evaluation frame: typed columns under their names, text under `__raw_<name>`.
fn typed_frame(ds: &Dataset, mut df: DataFrame) -> Result<DataFrame> {
    for c in &ds.contract.trusted {
        let text = df.column(&c.name)?.as_materialized_series().clone();
        let text = super::cast::null_tokens(&text, &c.null_values)?;
        let typed = match c.ty {
            Some(ty) => cast_text(&text, ty)?,
            None => text.clone(),
        };
        df.with_column(text.with_name(raw_name(&c.name).into()).into_column())?;
        df.with_column(typed.into_column())?;
    }
    Ok(df)
}

fn quarantine_frame(ds: &Dataset, ev: &DataFrame) -> Result<DataFrame> {
    let mut cols: Vec<Expr> = ds
        .contract
        .raw_columns()
        .map(|r| {
            if ds.contract.column(&r.name).is_some() {
                col(raw_name(&r.name).as_str()).alias(r.name.as_str())
            } else {
                col(r.name.as_str())
            }
        })
        .collect();
    cols.push(col(ID_ISSUES));
    cols.extend(LINEAGE.iter().map(|c| col(*c)));
    cols.push(col(RULE_IDS));
    cols.push(col(FAILURES));
    Ok(ev
        .clone()
        .lazy()
        .filter(col(QUARANTINE_FLAG))
        .select(cols)
        .collect()?)
}

fn valid_frame(ds: &Dataset, ev: &DataFrame) -> Result<(DataFrame, u64)> {
    let mut cols: Vec<Expr> = ds
        .contract
        .trusted
        .iter()
        .map(|c| col(c.name.as_str()))
        .collect();
    cols.extend(LINEAGE.iter().map(|c| col(*c)));
    let valid = ev
        .clone()
        .lazy()
        .filter(col(QUARANTINE_FLAG).not())
        .select(cols)
        .collect()?;
    let before = valid.height() as u64;
    let mut order: Vec<PlSmallStr> = Vec::new();
    if let Some(c) = &ds.contract.newest_wins_by {
        order.push(c.as_str().into());
    }
    order.push(SOURCE_LINE.into());
    let descending = vec![true; order.len()];
    let key: Vec<String> = ds.contract.primary_key.clone();
    let deduped = valid
        .sort(
            order,
            SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_nulls_last(true),
        )?
        .unique_stable(Some(&key), UniqueKeepStrategy::First, None)?;
    let dups = before - deduped.height() as u64;
    Ok((deduped, dups))
}

/// A judged batch: rows for quarantine (with their rule ids), valid rows deduplicated by key.
struct Judged {
    quarantine: DataFrame,
    valid: DataFrame,
    in_batch_duplicates: u64,
    results: Vec<RuleResult>,
}

/// Casts, evaluates every rule in one pass, stops on a failing `fail` rule, and splits.
fn judge(
    ds: &Dataset,
    raw: DataFrame,
    rules: &crate::rules::RuleSet,
    cx: &eval::Context,
) -> Result<Judged> {
    let ev = eval::evaluate(typed_frame(ds, raw)?, rules, cx)?;
    super::stop_on_fail(&ev, ds.name(), Stage::Trusted)?;
    let quarantine = quarantine_frame(ds, &ev.frame)?;
    let (valid, in_batch_duplicates) = valid_frame(ds, &ev.frame)?;
    Ok(Judged {
        quarantine,
        valid,
        in_batch_duplicates,
        results: ev.results,
    })
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
    let sql = format!("SELECT {} FROM t", select.join(", "));
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
        let Some(batch) = info.get("medallion.batch").and_then(|v| v.as_str()) else {
            continue;
        };
        done.insert(batch.to_string());
        let Some(books) = info.get("medallion.books") else {
            continue;
        };
        if recorded.is_none() {
            recorded = Some(ops::recorded_batches(lake, ds.name(), STEP).await?);
        }
        if recorded.as_ref().is_some_and(|r| r.contains(batch)) {
            continue;
        }
        let row: ops::PromotionRow =
            serde_json::from_value(books.clone()).map_err(|e| StorageError::Corrupt {
                path: data_loc.url.to_string(),
                message: format!("books of batch {batch}: {e}"),
            })?;
        tracing::info!(
            dataset = ds.name(),
            batch,
            "Recording books a crash left unrecorded."
        );
        ops::record_books(lake, row).await?;
    }
    Ok(done)
}

/// Promotes every raw batch of `ds` not yet in trusted, in landing order.
///
/// # Errors
/// [`StepError::Stopped`] when a `fail` rule fails (nothing written); storage errors.
pub async fn run(lake: &Lake, ds: &Dataset, opts: StepOptions) -> Result<Vec<TrustedBatchReport>> {
    let name = ds.name();
    let raw_loc = lake.loc(Stage::Raw, name)?;
    let data_loc = lake.loc(Stage::Trusted, name)?;
    let q_name = format!("{name}_quarantine");
    let q_loc = lake.loc(Stage::Trusted, &q_name)?;
    let types = |c: &str| ds.contract.column(c).and_then(|c| c.ty);
    // Read on the first pending batch only: a no-op run reads the logs and nothing more.
    let (mut refs, mut history) = (None, None);
    let mut reports = Vec::new();
    // Read each table's history once, not the log once per landed file.
    let in_raw = delta::batches_in_history(&raw_loc, super::raw::STEP).await?;
    let done = settle_books(lake, ds, &data_loc).await?;
    let raw_columns: Vec<String> = ds.contract.raw_columns().map(|r| r.name.clone()).collect();
    // Read once, and only when a batch is pending.
    let (mut forgotten, empty) = (None, std::collections::HashSet::new());
    let empty_refs = HashMap::new();
    for file in lake.store.list_landed(name).await? {
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
        let sql = format!(
            "SELECT * FROM t WHERE {BATCH_ID} = {}",
            delta::sql_literal(&batch)
        );
        let Some((schema, batches)) = delta::query(&raw_loc, &sql).await? else {
            continue;
        };
        let raw = frame::from_batches(&schema, &batches)?;
        let raw_rows = raw.height() as u64;
        if forgotten.is_none() {
            forgotten = Some(super::forgotten::load(lake).await?);
        }
        if refs.is_none() {
            refs = Some(reference_keys(lake, ds).await?);
        }
        let history = match &mut history {
            Some(h) => h,
            None => history.insert(ops::rule_history(lake, name, "trusted").await?),
        };
        let refs = refs.as_ref().unwrap_or(&empty_refs);
        let (raw, held_back) =
            super::forgotten::split(raw, &raw_columns, forgotten.as_ref().unwrap_or(&empty))?;
        let cx = eval::Context {
            as_of: AsOf(lake.clock.now()),
            types: &types,
            history,
            refs,
            delivered: None,
        };
        let Judged {
            mut quarantine,
            valid,
            in_batch_duplicates,
            results,
        } = judge(ds, raw, &ds.rules, &cx).map_err(|e| e.in_file(&file.original_name))?;
        let mut results = results;
        if let Some((rows, result)) = held_back {
            quarantine.vstack_mut(&rows)?;
            results.push(result);
        }
        let quarantined = quarantine.height() as u64;
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
                super::hold::record(lake, &super::hold::HoldRow::trusted(&report, h)).await?;
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
        let meta = [
            ("medallion.step", serde_json::json!(STEP)),
            ("medallion.batch", serde_json::json!(batch)),
            (
                "medallion.contract_version",
                serde_json::json!(ds.contract.version),
            ),
        ];
        if quarantined > 0 && !delta::has_batch(&q_loc, &app).await? {
            let (qs, qb) = frame::to_batches(&mut quarantine)?;
            delta::append(&q_loc, qs, qb, &app, &meta).await?;
        }
        super::crash_point(STEP, "after-quarantine");
        let Classified {
            winners,
            counts,
            stale,
            duplicates_dropped,
            courses,
        } = classify(&data_loc, ds, valid, in_batch_duplicates).await?;
        report.inserted = counts.inserted;
        report.updated = counts.updated;
        (report.stale, report.duplicates_dropped) = (stale, duplicates_dropped);
        // The books travel in the data commit itself (atomic with the rows they count) and
        // are copied into `_ops/promotions` after it; a crash in between is settled by the
        // next run from the commit (see `settle_books`).
        let books = ops::trusted_books(&report, &ds.contract.version);
        let books_json = serde_json::to_value(&books).map_err(|e| StorageError::Corrupt {
            path: data_loc.url.to_string(),
            message: e.to_string(),
        })?;
        let mut meta = meta.to_vec();
        meta.push(("medallion.courses", serde_json::json!(courses)));
        meta.push(("medallion.books", books_json));
        ops::record_rules(lake, name, "trusted", &batch, &report.rules).await?;
        for r in &report.rules {
            if let Some(m) = r.metric {
                history.entry(r.rule_id.clone()).or_default().push(m);
            }
        }
        super::crash_point(STEP, "before-data");
        // The data table is written last: its txn marks the batch done.
        let Some(merged) = merge_winners(&data_loc, ds, winners, &app, &meta).await? else {
            tracing::warn!(dataset = name, batch = %batch, "A concurrent promotion committed this batch first.");
            continue;
        };
        if merged != counts {
            tracing::warn!(dataset = name, batch = %batch, ?merged, expected = ?counts, "Trusted changed during the promotion; the recorded books may be off.");
        }
        super::crash_point(STEP, "after-data");
        ops::record_books(lake, books).await?;
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
    let q_loc = lake.loc(Stage::Trusted, &format!("{name}_quarantine"))?;
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
    let cx = eval::Context {
        as_of: AsOf(lake.clock.now()),
        types: &types,
        history: &history,
        refs: &refs,
        delivered: None,
    };
    let mut rules = ds.rules.clone();
    // Dataset-level rules judged the original batches; only row rules decide a release.
    rules.rules.retain(|r| r.check.is_row_level());
    let Judged {
        quarantine: mut remaining,
        valid,
        in_batch_duplicates: dups,
        ..
    } = judge(ds, raw, &rules, &cx)?;
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
    let meta = [
        ("medallion.step", serde_json::json!(RELEASE_STEP)),
        (
            "medallion.batch",
            serde_json::json!(format!("release-{stamp}")),
        ),
        ("medallion.courses", serde_json::json!(courses)),
    ];
    merge_winners(&data_loc, ds, winners, &app, &meta).await?;
    super::crash_point(RELEASE_STEP, "after-trusted");
    let (rs, rb) = frame::to_batches(&mut remaining)?;
    delta::overwrite(&q_loc, rs, rb, &app, &meta).await?;
    super::crash_point(RELEASE_STEP, "after-quarantine");
    ops::record_release(lake, &report, &stamp).await?;
    lake.sync_catalog().await?;
    Ok(report)
}
