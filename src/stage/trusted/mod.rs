//! raw → trusted: each raw batch not yet in trusted is cast to the contract's types and judged
//! by every rule in one pass; rows failing a quarantine rule go to
//! `trusted.<dataset>_quarantine` with all their rule ids, the rest are deduplicated by
//! primary key (newest `newestWinsBy` wins, then the later line) and upserted into
//! `trusted.<dataset>`, where an older correction never replaces a newer one.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use deltalake::arrow::array::RecordBatch;
use futures::StreamExt;
use polars::prelude::*;
use serde::Serialize;

use super::judge::{unique_sets, BatchJudge, Chunk, Judged};
use super::step::{self, BatchStep, Output};
use super::{keys, Dataset, Lake, Result, StepOptions, BATCH_ID};
use crate::frame;
use crate::ledger::{self, CommitMeta, Hold, HoldRow, PromotionRow, Step};
use crate::metrics::Unit;
use crate::rules::eval::{self, AsOf, RuleResult};
use crate::rules::Check;
use crate::storage::delta::{self, txn_id, TableLoc};
use crate::storage::LandedFile;
use crate::vocab::{Stage, TableRef};

mod merge;

pub use super::release::{release, ReleaseReport};
use merge::append_rest;
pub use merge::COURSE;
pub(super) use merge::{classify, merge_winners, Classified};

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

/// Keys each `references` rule checks against, read from the referenced trusted tables.
/// A rule whose table does not exist yet is absent from the map (and reported as skipped).
pub(super) async fn reference_keys(lake: &Lake, ds: &Dataset) -> Result<HashMap<String, Series>> {
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

pub(super) fn raw_columns(ds: &Dataset) -> Vec<String> {
    ds.contract.raw_columns().map(|r| r.name.clone()).collect()
}

/// Promotes every raw batch of `ds` not yet in trusted, in landing order.
///
/// # Errors
/// [`StepError::Stopped`] when a `fail` rule fails (nothing written); storage errors.
pub async fn run(lake: &Lake, ds: &Dataset, opts: StepOptions) -> Result<Vec<TrustedBatchReport>> {
    let mut step = TrustedStep::open(lake, ds, opts).await?;
    step::drive(&mut step, lake, ds, opts).await
}

/// raw → trusted as a [`BatchStep`].
struct TrustedStep<'a> {
    lake: &'a Lake,
    ds: &'a Dataset,
    opts: StepOptions,
    raw_loc: TableLoc,
    data_loc: TableLoc,
    q_loc: TableLoc,
    /// Batches in raw and in trusted (each table's history, read once).
    in_raw: HashSet<String>,
    done: HashSet<String>,
    raw_columns: Vec<String>,
    /// `unique` rules: (rule id, key columns).
    unique: Vec<(String, Vec<String>)>,
    /// Read on the first pending batch only: a no-op run reads the logs and nothing more.
    forgotten: Option<HashSet<String>>,
    refs: Option<HashMap<String, Series>>,
    history: Option<HashMap<String, Vec<f64>>>,
}

/// A judged batch's uncommitted writes (none on a dry run) and what its books are counted from.
struct TrustedPending {
    q_out: Option<delta::Appender>,
    /// Streamed valid rows (keys unique in the batch and new to trusted), with what must
    /// still hold of trusted when they are committed.
    d_out: Option<(delta::Appender, delta::Guard)>,
    /// Valid rows held back for the dedupe against trusted, one per key.
    valid: DataFrame,
    streamed: u64,
    streamed_courses: BTreeSet<String>,
    /// Set by the books: what the main commit writes.
    classified: Option<Classified>,
}

impl<'a> TrustedStep<'a> {
    /// Whether a batch can stream its valid rows into trusted, and what must still hold at
    /// the commit: trusted has no data file (a first load), or no trusted row lies within the
    /// range of the batch's primary keys (`bounds`) at the `planned` version and file count —
    /// then no row of the batch can match a trusted record, and its valid rows are all inserts.
    async fn stream_guard(
        &self,
        planned: Option<(u64, usize)>,
        bounds: &DataFrame,
    ) -> Result<Option<delta::Guard>> {
        let version = match planned {
            Some((version, files)) if files > 0 => version,
            _ => return Ok(Some(delta::Guard::Empty)),
        };
        let range = merge::key_range(bounds, &self.ds.contract.primary_key)?;
        if range.is_empty() {
            return Ok(None);
        }
        let predicate = range.join(" AND ");
        if delta::count_where(&self.data_loc, Some(&predicate)).await? > 0 {
            return Ok(None);
        }
        Ok(Some(delta::Guard::NoneMatch { version, predicate }))
    }

    async fn open(lake: &'a Lake, ds: &'a Dataset, opts: StepOptions) -> Result<Self> {
        let name = ds.name();
        let raw_loc = lake.loc(Stage::Raw, name)?;
        let data_loc = lake.loc(Stage::Trusted, name)?;
        let in_raw = delta::batches_in_history(&raw_loc, super::raw::STEP).await?;
        let done = step::settle(lake, ds, &data_loc, Step::RawToTrusted).await?;
        Ok(Self {
            lake,
            ds,
            opts,
            q_loc: lake.loc(Stage::Trusted, &TableRef::quarantine(name).name())?,
            raw_loc,
            data_loc,
            in_raw,
            done,
            raw_columns: raw_columns(ds),
            unique: unique_sets(&ds.rules),
            forgotten: None,
            refs: None,
            history: None,
        })
    }
}

#[async_trait]
impl BatchStep for TrustedStep<'_> {
    type Report = TrustedBatchReport;
    type Pending = TrustedPending;
    const STEP: Step = Step::RawToTrusted;
    const STAGE: Stage = Stage::Trusted;
    const AFTER_SIDE: &'static str = "after-quarantine";

    async fn judge(
        &mut self,
        file: &LandedFile,
    ) -> Result<Option<(TrustedBatchReport, TrustedPending)>> {
        let (lake, ds, opts) = (self.lake, self.ds, self.opts);
        let name = ds.name();
        let batch = file.batch_id();
        let app = txn_id(STEP, &batch);
        if self.done.contains(&batch) {
            return Ok(None);
        }
        if !self.in_raw.contains(&batch)
            && !delta::has_batch(&self.raw_loc, &txn_id(super::raw::STEP, &batch)).await?
        {
            return Ok(None);
        }
        if delta::has_batch(&self.data_loc, &app).await? {
            return Ok(None);
        }
        let batch_pred = format!("{BATCH_ID} = {}", delta::sql_literal(&batch));
        let Some((schema, mut stream)) = delta::query_stream(
            &self.raw_loc,
            &format!("SELECT * FROM t WHERE {batch_pred}"),
        )
        .await?
        else {
            return Ok(None);
        };
        if self.forgotten.is_none() {
            self.forgotten = Some(super::forgotten::load(lake).await?);
        }
        if self.refs.is_none() {
            self.refs = Some(reference_keys(lake, ds).await?);
        }
        if self.history.is_none() {
            self.history = Some(ledger::rule_history(lake, name, Stage::Trusted).await?);
        }
        let (Some(forgotten), Some(refs), Some(history)) =
            (&self.forgotten, &self.refs, &self.history)
        else {
            return Ok(None);
        };
        let types = |c: &str| ds.contract.column(c).and_then(|c| c.ty);
        let chunk_rows = ds.pipeline.trusted.chunk_rows;
        let chunked =
            delta::count_where(&self.raw_loc, Some(&batch_pred)).await? > chunk_rows as u64;
        // The version trusted is planned against: read before the keys are checked against it.
        let planned = if chunked {
            delta::version_and_files(&self.data_loc).await?
        } else {
            None
        };
        // A batch judged in more than one chunk needs its repeated keys up front: per
        // `unique` rule, and the primary key's (with the range the batch's keys span).
        let mut sets: Vec<Vec<String>> = if chunked {
            self.unique.iter().map(|(_, c)| c.clone()).collect()
        } else {
            Vec::new()
        };
        if chunked {
            sets.push(ds.contract.primary_key.clone());
        }
        let mut found = if sets.is_empty() {
            Vec::new()
        } else {
            keys::repeated(&self.raw_loc, ds, &sets, &batch_pred, forgotten).await?
        };
        let primary = if chunked { found.pop() } else { None };
        // A batch none of whose keys trusted holds yet (a first load, a new day, a new term)
        // streams its valid rows into the data commit as they are judged; only rows whose key
        // repeats in the batch wait to be deduplicated at the end.
        let guard = match &primary {
            Some(keys) => self.stream_guard(planned, &keys.bounds).await?,
            None => None,
        };
        let held_keys = match (&guard, primary) {
            (Some(_), Some(keys)) => Some(keys.repeated),
            _ => None,
        };
        let stream_valid = held_keys.is_some();
        let repeats = (chunked && !self.unique.is_empty()).then(|| {
            self.unique
                .iter()
                .map(|(id, _)| id.clone())
                .zip(found.into_iter().map(|k| k.repeated))
                .collect()
        });
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
        // Opened with the batch's txn; the books join the data commit's metadata at the end.
        let meta = step::batch_meta(Step::RawToTrusted, &batch, ds).entries();
        // Quarantined rows stream into the quarantine table's pending commit, chunk by chunk;
        // it is committed only once the whole batch is judged and neither stopped nor held.
        let mut q_writable = !opts.dry_run && !delta::has_batch(&self.q_loc, &app).await?;
        let mut q_out: Option<delta::Appender> = None;
        // Streamed valid rows go into the data table's pending commit, committed last.
        let mut d_writable = stream_valid && !opts.dry_run;
        let mut d_out: Option<(delta::Appender, delta::Guard)> = None;
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
                .chunk(raw, &self.raw_columns, forgotten, &cx)
                .map_err(|e| e.in_file(&file.original_name))?;
            if let Some(mut ready) = ready.filter(|r| r.height() > 0) {
                frame::distinct_text(&ready, COURSE, &mut streamed_courses)?;
                if d_writable {
                    let (rs, rb) = frame::to_batches(&mut ready)?;
                    if d_out.is_none() {
                        d_out = delta::Appender::open(&self.data_loc, rs, &app, &meta)
                            .await?
                            .zip(guard.clone());
                        d_writable = d_out.is_some();
                    }
                    if let Some((out, _)) = d_out.as_mut() {
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
                    q_out = delta::Appender::open(&self.q_loc, qs, &app, &meta).await?;
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
            batch_id: batch,
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
        if report.held.is_some() {
            report.committed = false;
        }
        let pending = TrustedPending {
            q_out,
            d_out,
            valid,
            streamed,
            streamed_courses,
            classified: None,
        };
        Ok(Some((report, pending)))
    }

    async fn commit_side(&mut self, pending: &mut TrustedPending) -> Result<()> {
        if let Some(out) = pending.q_out.take() {
            out.commit().await?;
        }
        Ok(())
    }

    async fn books(
        &mut self,
        report: &mut TrustedBatchReport,
        pending: &mut TrustedPending,
    ) -> Result<PromotionRow> {
        let valid = std::mem::take(&mut pending.valid);
        let mut classified =
            classify(&self.data_loc, self.ds, valid, report.in_batch_duplicates).await?;
        // Streamed rows are keys trusted did not hold (checked again at the commit).
        classified.counts.inserted += pending.streamed;
        classified
            .courses
            .extend(std::mem::take(&mut pending.streamed_courses));
        report.inserted = classified.counts.inserted;
        report.updated = classified.counts.updated;
        (report.stale, report.duplicates_dropped) =
            (classified.stale, classified.duplicates_dropped);
        pending.classified = Some(classified);
        if let Some(history) = self.history.as_mut() {
            for r in &report.rules {
                if let Some(m) = r.metric {
                    history.entry(r.rule_id.clone()).or_default().push(m);
                }
            }
        }
        Ok(super::books::trusted_books(
            report,
            &self.ds.contract.version,
        ))
    }

    async fn commit_main(
        &mut self,
        report: &TrustedBatchReport,
        pending: TrustedPending,
        meta: &CommitMeta,
    ) -> Result<bool> {
        let Some(Classified {
            winners,
            counts,
            courses,
            ..
        }) = pending.classified
        else {
            return Ok(false);
        };
        let meta = meta.clone().with_courses(courses).entries();
        let app = txn_id(STEP, &report.batch_id);
        let merged = match pending.d_out {
            Some((out, guard)) => {
                append_rest(out, self.ds, winners, pending.streamed, &meta, &guard).await?
            }
            None => merge_winners(&self.data_loc, self.ds, winners, &app, &meta).await?,
        };
        let Some(merged) = merged else {
            return Ok(false);
        };
        if merged != counts {
            tracing::warn!(dataset = self.ds.name(), batch = %report.batch_id, ?merged, expected = ?counts, "Trusted changed during the promotion; the recorded books may be off.");
        }
        Ok(true)
    }

    fn outputs(&self) -> Vec<Output> {
        let name = self.ds.name();
        vec![
            Output {
                table: name.to_string(),
                kind: "data",
                description: "Typed, deduplicated, contract-conformant rows; the newest correction of each record.",
                comments: None,
            },
            Output {
                table: TableRef::quarantine(name).name(),
                kind: "quarantine",
                description: QUARANTINE_DESCRIPTION,
                comments: None,
            },
        ]
    }
}

impl step::BatchReport for TrustedBatchReport {
    fn batch_id(&self) -> &str {
        &self.batch_id
    }

    fn rules(&self) -> &[RuleResult] {
        &self.rules
    }

    fn held(&self) -> Option<&Hold> {
        self.held.as_ref()
    }

    fn hold_row(&self, h: &Hold) -> HoldRow {
        HoldRow::trusted(self, h)
    }

    fn committed(&self) -> bool {
        self.committed
    }

    fn counts(&self) -> Vec<(&'static str, f64, Unit)> {
        let quarantine_rate = if self.raw_rows == 0 {
            0.0
        } else {
            self.quarantined as f64 / self.raw_rows as f64
        };
        vec![
            ("RowsIn", self.raw_rows as f64, Unit::Count),
            ("RowsPromoted", self.inserted as f64, Unit::Count),
            ("RowsQuarantined", self.quarantined as f64, Unit::Count),
            (
                "DuplicatesDropped",
                self.duplicates_dropped as f64,
                Unit::Count,
            ),
            ("QualityScore", self.quality_score(), Unit::None),
            ("QuarantineRate", quarantine_rate, Unit::None),
        ]
    }
}
