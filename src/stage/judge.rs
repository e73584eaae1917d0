//! Judging one raw batch for trusted, in bounded chunks.
//!
//! A batch is cast to the contract's types and judged by every rule chunk by chunk
//! ([`BatchJudge::chunk`]): each chunk's quarantined rows come back at once (the caller streams
//! them into the quarantine table's pending commit). Its valid rows are either kept narrow
//! (trusted columns and the source line; lineage that is the same for the whole batch is kept
//! once, not per row) or, in streaming mode (a batch whose keys trusted does not hold yet:
//! a first load, a new day), handed back at once when
//! their primary key occurs once in the batch, so only rows whose key repeats are kept.
//! [`BatchJudge::finish`] gives the rule results over the whole batch and the kept rows
//! deduplicated by primary key (newest `newestWinsBy` wins, then the later line).
//!
//! Invariants:
//! - judged in chunks = judged whole: row rules add up, dataset rules are measured over every
//!   chunk ([`Tally`]), and a `unique` rule sees repeats across chunks through the batch's
//!   repeated keys found up front ([`super::keys::repeated`]);
//! - every raw row of the batch is counted once: quarantined, or valid (then streamed, kept,
//!   or dropped as an in-batch duplicate of a kept row);
//! - a streamed row's key occurs in no other row of the batch, so dedupe over the kept rows
//!   alone equals dedupe over all valid rows;
//! - memory holds one chunk with its rule columns plus the kept valid rows in trusted form
//!   (in streaming mode only those whose key repeats in the batch).

use std::collections::{HashMap, HashSet};

use polars::prelude::*;

use super::cast::cast_text;
use super::keys::HIT;
use super::{
    Dataset, Result, BATCH_ID, INGESTED_AT, LINEAGE, SOURCE_FILE, SOURCE_HASH, SOURCE_LINE,
};
use crate::frame;
use crate::rules::eval::{
    self, batch_unique_column, raw_name, RuleResult, Tally, FAILURES, ID_ISSUES, QUARANTINE_FLAG,
    RULE_IDS,
};
use crate::rules::{Check, RuleSet};
use crate::vocab::Stage;

/// Lineage columns a raw batch (one landed file) holds the same value in on every row.
const BATCH_CONSTANTS: [&str; 4] = [SOURCE_FILE, SOURCE_HASH, BATCH_ID, INGESTED_AT];

/// A judged batch: its rule results and its valid rows deduplicated by key.
pub(super) struct Judged {
    /// Valid rows, one per key: trusted columns then lineage (in streaming mode only those
    /// held back because their key repeats in the batch).
    pub valid: DataFrame,
    /// Valid rows handed out as they were judged (streaming mode): keys unique in the batch.
    pub streamed: u64,
    /// Valid rows dropped as older repeats of a key within the batch.
    pub in_batch_duplicates: u64,
    /// One result per rule (plus the forgotten-student rule when it held rows).
    pub results: Vec<RuleResult>,
}

/// Builds the evaluation frame: typed columns under their names, text under `__raw_<name>`.
fn typed_frame(ds: &Dataset, mut df: DataFrame) -> Result<DataFrame> {
    for c in &ds.contract.trusted {
        let text = df.column(&c.name)?.as_materialized_series().clone();
        let (text, typed) = typed(ds, &c.name, text)?;
        df.with_column(text.with_name(raw_name(&c.name).into()).into_column())?;
        df.with_column(typed.into_column())?;
    }
    Ok(df)
}

/// A column's delivered text (declared "missing" texts, `nullValues`, made null: they are not
/// type failures) and its value cast to the contract's type.
pub(super) fn typed(ds: &Dataset, column: &str, text: Series) -> Result<(Series, Series)> {
    let Some(c) = ds.contract.column(column) else {
        return Ok((text.clone(), text));
    };
    let text = super::cast::null_tokens(&text, &c.null_values)?;
    let typed = match c.ty {
        Some(ty) => cast_text(&text, ty)?,
        None => text.clone(),
    };
    Ok((text, typed))
}

/// The rows of an evaluated chunk that failed a quarantine rule, as delivered, with their rule
/// ids and failing values.
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

/// The `unique` rules whose repeats must be found across a batch's chunks, with their columns.
pub(super) fn unique_sets(rules: &RuleSet) -> Vec<(String, Vec<String>)> {
    rules
        .rules
        .iter()
        .filter_map(|r| match &r.check {
            Check::Unique { columns } => Some((r.id.clone(), columns.clone())),
            _ => None,
        })
        .collect()
}

/// What judging one chunk gives back at once.
pub(super) struct Chunk {
    /// Quarantined rows as delivered, with rule ids and failures.
    pub quarantine: DataFrame,
    /// Streaming mode: valid rows whose primary key occurs once in the whole batch, ready to
    /// write (trusted columns then lineage); `None` otherwise.
    pub ready: Option<DataFrame>,
}

/// Judges one batch chunk by chunk.
pub(super) struct BatchJudge<'a> {
    ds: &'a Dataset,
    rules: &'a RuleSet,
    tally: Tally,
    /// Repeated keys per `unique` rule, when the batch is judged in more than one chunk.
    repeats: Option<HashMap<String, DataFrame>>,
    /// Streaming mode: the primary-key tuples repeated in the batch. Valid rows with another
    /// key (or no null in it) are handed out per chunk; the rest are kept for [`Self::finish`].
    held_keys: Option<DataFrame>,
    streamed: u64,
    /// Valid rows per chunk, without the batch constants.
    valid: Vec<DataFrame>,
    /// Lineage columns constant over the batch, with their value.
    constants: Vec<Column>,
    /// The forgotten-student rule's result, summed over the chunks.
    forgotten: Option<RuleResult>,
    rows: u64,
}

impl<'a> BatchJudge<'a> {
    /// A judge for one batch; `repeats` (per `unique` rule, from [`super::keys::repeated`])
    /// when it spans several chunks; `held_keys` (the batch's repeated primary keys) to hand
    /// valid rows out per chunk instead of keeping them.
    pub fn new(
        ds: &'a Dataset,
        rules: &'a RuleSet,
        repeats: Option<HashMap<String, DataFrame>>,
        held_keys: Option<DataFrame>,
    ) -> Self {
        Self {
            ds,
            rules,
            tally: Tally::new(rules),
            repeats,
            held_keys,
            streamed: 0,
            valid: Vec::new(),
            constants: Vec::new(),
            forgotten: None,
            rows: 0,
        }
    }

    /// The `unique` rules whose repeats are marked across the batch.
    pub fn batch_unique(&self) -> Option<HashSet<String>> {
        self.repeats.as_ref().map(|r| r.keys().cloned().collect())
    }

    /// Judges one chunk of raw rows: returns its quarantined rows (as delivered, with rule ids
    /// and failures) and, in streaming mode, its valid rows of keys unique in the batch; keeps
    /// its other valid rows.
    ///
    /// # Errors
    /// polars errors.
    pub fn chunk(
        &mut self,
        raw: DataFrame,
        raw_columns: &[String],
        forgotten: &HashSet<String>,
        cx: &eval::Context,
    ) -> Result<Chunk> {
        self.rows += raw.height() as u64;
        let (raw, held) = super::forgotten::split(raw, raw_columns, forgotten)?;
        let mut frame = typed_frame(self.ds, raw)?;
        if let Some(repeats) = &self.repeats {
            frame = mark_repeats(frame, self.rules, repeats)?;
        }
        let ev = self.tally.add(frame, self.rules, cx)?;
        let mut quarantine = quarantine_frame(self.ds, &ev)?;
        if let Some((rows, result)) = held {
            quarantine.vstack_mut(&rows)?;
            match &mut self.forgotten {
                Some(r) => r.failed += result.failed,
                None => self.forgotten = Some(result),
            }
        }
        if let Some(r) = &mut self.forgotten {
            // Judged over every row of the batch, like the rules.
            r.evaluated = self.rows;
        }
        let ready = self.keep_valid(&ev)?;
        Ok(Chunk { quarantine, ready })
    }

    /// Keeps a chunk's valid rows (trusted columns and lineage), batch constants once; in
    /// streaming mode returns those whose key is unique in the batch instead of keeping them.
    fn keep_valid(&mut self, ev: &DataFrame) -> Result<Option<DataFrame>> {
        let mut cols: Vec<Expr> = self
            .ds
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
        let (ready, mut valid) = match &self.held_keys {
            Some(held) => {
                let (ready, kept) = split_held(valid, &self.ds.contract.primary_key, held)?;
                self.streamed += ready.height() as u64;
                (Some(ready), kept)
            }
            None => (None, valid),
        };
        if self.valid.is_empty() && self.constants.is_empty() && valid.height() > 0 {
            for name in BATCH_CONSTANTS {
                let c = valid.column(name)?;
                if c.null_count() == 0 && c.n_unique()? == 1 {
                    let value = c.get(0)?.into_static();
                    self.constants.push(Column::new_scalar(
                        name.into(),
                        Scalar::new(c.dtype().clone(), value),
                        1,
                    ));
                }
            }
        }
        let (mut i, mut reverted) = (0, false);
        while i < self.constants.len() {
            let k = &self.constants[i];
            let c = valid.column(k.name())?;
            let same = c.null_count() == 0
                && (c.is_empty() || (c.n_unique()? == 1 && c.get(0)? == k.get(0)?));
            if same {
                valid.drop_in_place(k.name())?;
                i += 1;
            } else {
                // Not constant after all (never within one landed file): back to per row.
                let k = self.constants.remove(i);
                for kept in &mut self.valid {
                    let n = kept.height();
                    kept.with_column(k.new_from_index(0, n))?;
                }
                reverted = true;
            }
        }
        if reverted {
            // Every kept chunk in one column order, so they stack.
            let order: Vec<PlSmallStr> = valid.get_column_names_owned();
            for kept in &mut self.valid {
                *kept = kept.select(order.clone())?;
            }
        }
        if valid.height() > 0 {
            // Kept until the batch ends: copied out of the chunk's string buffers, or every
            // chunk with one kept row would stay in memory whole.
            self.valid.push(frame::compact(valid)?);
        }
        Ok(ready)
    }

    /// Rule results over the whole batch (stopping on a failed `fail` rule) and the valid rows
    /// deduplicated by key.
    ///
    /// # Errors
    /// [`super::StepError::Stopped`]; polars errors.
    pub fn finish(self, cx: &eval::Context) -> Result<Judged> {
        let mut results = self.tally.results(self.rules, cx);
        super::stop_on_results(&results, self.ds.name(), Stage::Trusted)?;
        if let Some(r) = self.forgotten {
            results.push(r);
        }
        let mut chunks = self.valid.into_iter();
        let mut valid = match chunks.next() {
            Some(first) => first,
            None => {
                return Ok(Judged {
                    valid: empty_valid(self.ds)?,
                    streamed: self.streamed,
                    in_batch_duplicates: 0,
                    results,
                })
            }
        };
        for c in chunks {
            valid.vstack_mut_owned(c)?;
        }
        let (valid, in_batch_duplicates) = dedupe(self.ds, valid)?;
        let height = valid.height();
        let mut valid = valid;
        for k in self.constants {
            valid.with_column(k.new_from_index(0, height))?;
        }
        let order: Vec<PlSmallStr> = self
            .ds
            .contract
            .trusted
            .iter()
            .map(|c| PlSmallStr::from(c.name.as_str()))
            .chain(LINEAGE.iter().map(|c| PlSmallStr::from(*c)))
            .collect();
        Ok(Judged {
            valid: valid.select(order)?,
            streamed: self.streamed,
            in_batch_duplicates,
            results,
        })
    }
}

/// No valid rows, in the trusted schema.
fn empty_valid(ds: &Dataset) -> Result<DataFrame> {
    let mut cols = Vec::new();
    for c in &ds.contract.trusted {
        let text = Series::new_empty(c.name.as_str().into(), &DataType::String);
        cols.push(match c.ty {
            Some(ty) => cast_text(&text, ty)?.into_column(),
            None => text.into_column(),
        });
    }
    cols.push(Series::new_empty(SOURCE_FILE.into(), &DataType::String).into_column());
    cols.push(Series::new_empty(SOURCE_LINE.into(), &DataType::Int64).into_column());
    cols.push(Series::new_empty(SOURCE_HASH.into(), &DataType::String).into_column());
    cols.push(Series::new_empty(BATCH_ID.into(), &DataType::String).into_column());
    cols.push(
        Series::new_empty(
            INGESTED_AT.into(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(polars::prelude::TimeZone::UTC)),
        )
        .into_column(),
    );
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Splits valid rows into those whose primary key occurs once in the batch (not in `held`,
/// no null in it) and the rest.
fn split_held(
    valid: DataFrame,
    key: &[String],
    held: &DataFrame,
) -> Result<(DataFrame, DataFrame)> {
    let any_null = key
        .iter()
        .fold(lit(false), |acc, k| acc.or(col(k.as_str()).is_null()));
    let marked = if held.height() == 0 {
        valid.lazy().with_column(any_null.alias(HELD))
    } else {
        let on: Vec<Expr> = key.iter().map(|c| col(c.as_str())).collect();
        let mut args = JoinArgs::new(JoinType::Left);
        args.maintain_order = MaintainOrderJoin::Left;
        valid
            .lazy()
            .join(held.clone().lazy(), on.clone(), on, args)
            .with_column(col(HIT).fill_null(lit(false)).or(any_null).alias(HELD))
            .drop(by_name([HIT], true, false))
    }
    .collect()?;
    let part = |keep: Expr| -> Result<DataFrame> {
        Ok(marked
            .clone()
            .lazy()
            .filter(keep)
            .drop(by_name([HELD], true, false))
            .collect()?)
    };
    Ok((part(col(HELD).not())?, part(col(HELD))?))
}

/// Marker of a valid row kept back for deduplication at the end of the batch.
const HELD: &str = "__held";

/// Marks, per `unique` rule, the rows whose key repeats anywhere in the batch.
fn mark_repeats(
    mut frame: DataFrame,
    rules: &RuleSet,
    repeats: &HashMap<String, DataFrame>,
) -> Result<DataFrame> {
    for rule in &rules.rules {
        let (Check::Unique { columns }, Some(keys)) = (&rule.check, repeats.get(&rule.id)) else {
            continue;
        };
        let name = batch_unique_column(&rule.id);
        if keys.height() == 0 {
            let n = frame.height();
            frame.with_column(Column::new_scalar(name.into(), Scalar::from(false), n))?;
            continue;
        }
        let on: Vec<Expr> = columns.iter().map(|c| col(c.as_str())).collect();
        let mut args = JoinArgs::new(JoinType::Left);
        args.maintain_order = MaintainOrderJoin::Left;
        frame = frame
            .lazy()
            .join(keys.clone().lazy(), on.clone(), on, args)
            .with_column(col(HIT).fill_null(lit(false)).alias(name.as_str()))
            .drop(by_name([HIT], true, false))
            .collect()?;
    }
    Ok(frame)
}

/// Drops older repeats of a key: the newest `newestWinsBy` wins (missing counts as oldest),
/// then the later line. Sorts only the key columns, not the rows.
fn dedupe(ds: &Dataset, valid: DataFrame) -> Result<(DataFrame, u64)> {
    let key = &ds.contract.primary_key;
    let mut narrow: Vec<PlSmallStr> = key.iter().map(|k| k.as_str().into()).collect();
    let mut order: Vec<PlSmallStr> = Vec::new();
    if let Some(c) = &ds.contract.newest_wins_by {
        if !key.contains(c) {
            narrow.push(c.as_str().into());
        }
        order.push(c.as_str().into());
    }
    narrow.push(SOURCE_LINE.into());
    order.push(SOURCE_LINE.into());
    let before = valid.height();
    let index = valid.select(narrow)?.with_row_index("__row".into(), None)?;
    let descending = vec![true; order.len()];
    let winners = index
        .sort(
            order,
            SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_nulls_last(true),
        )?
        .unique_stable(Some(key.as_slice()), UniqueKeepStrategy::First, None)?;
    if winners.height() == before {
        return Ok((valid, 0));
    }
    let rows = winners
        .column("__row")?
        .as_materialized_series()
        .sort(SortOptions::default())?;
    let deduped = valid.take(rows.idx()?)?;
    let dropped = (before - deduped.height()) as u64;
    Ok((deduped, dropped))
}
