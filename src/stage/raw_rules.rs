//! Raw-stage rules: judged over one landed file's rows as they go into raw (pseudonymised
//! text, before any cast), and over the file's header for `schema_match`.
//!
//! Invariants:
//! - judged chunk by chunk = judged whole: every rule but `unique` is tallied as each chunk
//!   streams through ([`Tally`]: row counts add up, dataset measures merge), so memory holds
//!   one chunk's rule columns whatever the file's size;
//! - a `unique` rule needs every row's key at once: only the columns of `unique` rules are
//!   kept for the whole file (none without such a rule);
//! - results come back in the rule set's order; a failed `fail` rule stops the step before
//!   anything is committed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use polars::prelude::DataFrame;

use super::parse::{Chunks, RejectKind};
use super::{Dataset, Result, StepError};
use crate::contract::ColumnType;
use crate::rules::eval::{self, AsOf, RuleResult, Tally};
use crate::rules::{Check, RuleSet};
use crate::vocab::Stage;

/// The columns a rule set reads, as indices into the raw schema and the projected schema.
struct Projection {
    indices: Vec<usize>,
    schema: SchemaRef,
}

impl Projection {
    /// `None` when `rules` is empty (nothing to read).
    fn of(rules: &RuleSet, schema: &SchemaRef) -> Result<Option<Self>> {
        if rules.rules.is_empty() {
            return Ok(None);
        }
        let mut wanted = BTreeSet::new();
        for r in &rules.rules {
            wanted.extend(r.check.columns().into_iter().map(str::to_string));
            if let Some(f) = &r.filter {
                wanted.insert(f.column.clone());
            }
        }
        let mut indices = Vec::with_capacity(wanted.len());
        for c in &wanted {
            indices.push(schema.index_of(c).map_err(|e| StepError::Frame(e.into()))?);
        }
        let projected = schema
            .project(&indices)
            .map_err(|e| StepError::Frame(e.into()))?;
        Ok(Some(Self {
            indices,
            schema: Arc::new(projected),
        }))
    }

    fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        batch
            .project(&self.indices)
            .map_err(|e| StepError::Frame(e.into()))
    }

    /// The frame rules judge: each column is also its own raw twin (raw values are the text
    /// as delivered).
    fn frame(&self, batches: &[RecordBatch]) -> Result<DataFrame> {
        let empty;
        let batches = if batches.is_empty() {
            empty = [RecordBatch::new_empty(self.schema.clone())];
            &empty[..]
        } else {
            batches
        };
        let mut frame = crate::frame::from_batches(&self.schema, batches)?;
        for f in self.schema.fields() {
            let twin = frame
                .column(f.name())?
                .clone()
                .with_name(eval::raw_name(f.name()).into());
            frame.with_column(twin)?;
        }
        Ok(frame)
    }
}

/// Rows of streamed rule columns judged at once (two or three text columns: a few MB).
const TALLY_ROWS: usize = 1 << 18;

/// Every raw column is text.
fn text(_: &str) -> Option<ColumnType> {
    Some(ColumnType::String)
}

/// Judges a landed file's raw rules while it streams into raw.
pub struct RawJudge {
    as_of: AsOf,
    /// Every rule but `unique`: tallied chunk by chunk.
    streamed: RuleSet,
    streamed_cols: Option<Projection>,
    tally: Tally,
    /// The streamed rules' columns of chunks not tallied yet: tallied together once they
    /// reach [`TALLY_ROWS`] (one evaluation per slice, not per parse chunk).
    waiting: Vec<RecordBatch>,
    waiting_rows: usize,
    tally_rows: usize,
    /// `unique` rules: judged at the end over their kept columns.
    whole: RuleSet,
    whole_cols: Option<Projection>,
    kept: Vec<RecordBatch>,
    unexpected_fields: BTreeSet<String>,
}

impl RawJudge {
    /// A judge for `rules` over rows of the raw data `schema`, judged as of `as_of`.
    ///
    /// # Errors
    /// When a rule reads a column the raw table does not hold.
    pub fn new(rules: &RuleSet, schema: &SchemaRef, as_of: AsOf) -> Result<Self> {
        let (whole, streamed): (Vec<_>, Vec<_>) = rules
            .rules
            .iter()
            .cloned()
            .partition(|r| matches!(r.check, Check::Unique { .. }));
        let streamed = RuleSet { rules: streamed };
        let whole = RuleSet { rules: whole };
        Ok(Self {
            as_of,
            streamed_cols: Projection::of(&streamed, schema)?,
            tally: Tally::new(&streamed),
            waiting: Vec::new(),
            waiting_rows: 0,
            tally_rows: TALLY_ROWS,
            streamed,
            whole_cols: Projection::of(&whole, schema)?,
            whole,
            kept: Vec::new(),
            unexpected_fields: BTreeSet::new(),
        })
    }

    /// Whether any rule is to be judged (else chunks need not be shown to it).
    pub fn active(&self) -> bool {
        self.streamed_cols.is_some() || self.whole_cols.is_some()
    }

    /// Notes the fields a JSON-lines file delivered beyond the contract.
    pub fn note_rejects(&mut self, rejects: &[super::parse::Reject]) {
        for r in rejects {
            if r.kind == RejectKind::UnexpectedField {
                if let Some(c) = &r.column {
                    self.unexpected_fields.insert(c.clone());
                }
            }
        }
    }

    /// Judges one chunk written to raw: gathers the streamed rules' columns (tallied per slice
    /// of [`TALLY_ROWS`]) and keeps the columns `unique` rules read.
    ///
    /// # Errors
    /// Arrow projection or polars errors.
    pub fn keep(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(p) = &self.streamed_cols {
            self.waiting.push(p.apply(batch)?);
            self.waiting_rows += batch.num_rows();
            if self.waiting_rows >= self.tally_rows {
                self.tally_waiting()?;
            }
        }
        if let Some(p) = &self.whole_cols {
            self.kept.push(p.apply(batch)?);
        }
        Ok(())
    }

    /// Tallies the streamed rules over the gathered chunks.
    fn tally_waiting(&mut self) -> Result<()> {
        let Some(p) = &self.streamed_cols else {
            return Ok(());
        };
        if self.waiting.is_empty() {
            return Ok(());
        }
        let frame = p.frame(&std::mem::take(&mut self.waiting))?;
        self.waiting_rows = 0;
        let (history, refs) = (HashMap::new(), HashMap::new());
        let cx = self.context(&history, &refs, None);
        // The judged slice (rule ids, failures) is not kept: raw quarantines nothing.
        self.tally.add(frame, &self.streamed, &cx)?;
        Ok(())
    }

    fn context<'a>(
        &self,
        history: &'a HashMap<String, Vec<f64>>,
        refs: &'a HashMap<String, polars::prelude::Series>,
        delivered: Option<&'a [String]>,
    ) -> eval::Context<'a> {
        eval::Context {
            as_of: self.as_of,
            types: &text,
            history,
            refs,
            delivered,
            batch_unique: None,
        }
    }

    /// Judges the file: every raw rule's result, in the rule set's order. A `fail` rule that
    /// failed stops the promotion before anything is committed.
    ///
    /// # Errors
    /// [`StepError::Stopped`]; polars errors.
    pub fn judge<R: std::io::Read>(
        mut self,
        ds: &Dataset,
        chunks: &Chunks<'_, R>,
        history: &HashMap<String, Vec<f64>>,
    ) -> Result<Vec<RuleResult>> {
        if !self.active() {
            return Ok(Vec::new());
        }
        let delivered: Vec<String> = match chunks.delivered_columns() {
            Some(header) => header.to_vec(),
            // JSON lines: the contract's fields (a missing key is a null value) plus any
            // field the file carried beyond them.
            None => ds
                .contract
                .source
                .iter()
                .map(|c| c.name.clone())
                .chain(std::mem::take(&mut self.unexpected_fields))
                .collect(),
        };
        let results = self.results(&ds.raw_rules, &delivered, history)?;
        super::stop_on_results(&results, ds.name(), Stage::Raw)?;
        Ok(results)
    }

    /// Every rule's result over the chunks seen, in the order of `rules` (the set the judge
    /// was made for), with the file's `delivered` columns.
    fn results(
        mut self,
        rules: &RuleSet,
        delivered: &[String],
        history: &HashMap<String, Vec<f64>>,
    ) -> Result<Vec<RuleResult>> {
        self.tally_waiting()?;
        let refs = HashMap::new();
        let cx = self.context(history, &refs, Some(delivered));
        let mut by_id: HashMap<String, RuleResult> = HashMap::new();
        if let Some(p) = &self.streamed_cols {
            let mut tally = std::mem::replace(&mut self.tally, Tally::new(&RuleSet::default()));
            // A file without rows is judged over an empty frame (its columns still count).
            if tally.height() == 0 {
                tally.add(p.frame(&[])?, &self.streamed, &cx)?;
            }
            for r in tally.results(&self.streamed, &cx) {
                by_id.insert(r.rule_id.clone(), r);
            }
        }
        if let Some(p) = &self.whole_cols {
            let frame = p.frame(&self.kept)?;
            for r in eval::evaluate(frame, &self.whole, &cx)?.results {
                by_id.insert(r.rule_id.clone(), r);
            }
        }
        Ok(rules
            .rules
            .iter()
            .filter_map(|r| by_id.remove(&r.id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Rule, Severity};
    use deltalake::arrow::array::StringArray;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    fn rule(id: &str, check: Check) -> Rule {
        Rule {
            id: id.into(),
            description: id.into(),
            check,
            filter: None,
            severity: Severity::Warn,
        }
    }

    fn rules() -> RuleSet {
        RuleSet {
            rules: vec![
                rule(
                    "ids_present",
                    Check::Completeness {
                        column: "record_id".into(),
                        min: 0.99,
                    },
                ),
                rule(
                    "one_per_id",
                    Check::Unique {
                        columns: vec!["record_id".into()],
                    },
                ),
                rule(
                    "iso_date",
                    Check::Pattern {
                        column: "day".into(),
                        regex: r"^\d{4}-\d{2}-\d{2}$".into(),
                    },
                ),
                rule(
                    "header",
                    Check::SchemaMatch {
                        columns: ["record_id", "day", "note"].map(String::from).to_vec(),
                        allow_extra: false,
                    },
                ),
            ],
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("record_id", DataType::Utf8, true),
            Field::new("day", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
        ]))
    }

    /// 300 rows: every 7th id missing, ids repeating across far-apart rows, every 11th date
    /// malformed.
    fn rows(from: usize, to: usize) -> RecordBatch {
        let ids: Vec<Option<String>> = (from..to)
            .map(|i| (i % 7 != 0).then(|| format!("r{}", i % 250)))
            .collect();
        let days: Vec<String> = (from..to)
            .map(|i| {
                if i % 11 == 0 {
                    "5/11/2026".to_string()
                } else {
                    format!("2026-11-{:02}", 1 + i % 28)
                }
            })
            .collect();
        let notes: Vec<String> = (from..to).map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(days)),
                Arc::new(StringArray::from(notes)),
            ],
        )
        .expect("batch")
    }

    fn judged(chunks: &[(usize, usize)]) -> Vec<RuleResult> {
        let set = rules();
        let mut judge = RawJudge::new(&set, &schema(), AsOf(chrono::Utc::now())).expect("judge");
        // Tallied in slices of two chunks or so, as a large file is.
        judge.tally_rows = 100;
        for &(from, to) in chunks {
            judge.keep(&rows(from, to)).expect("chunk");
        }
        let delivered: Vec<String> = ["record_id", "day", "note"].map(String::from).to_vec();
        judge
            .results(&set, &delivered, &HashMap::new())
            .expect("results")
    }

    #[test]
    fn judged_in_chunks_equals_judged_whole() {
        let whole = judged(&[(0, 300)]);
        let chunked = judged(&[(0, 64), (64, 128), (128, 200), (200, 300)]);
        assert_eq!(format!("{whole:?}"), format!("{chunked:?}"));
        let ids: Vec<&str> = whole.iter().map(|r| r.rule_id.as_str()).collect();
        assert_eq!(ids, ["ids_present", "one_per_id", "iso_date", "header"]);
        // 43 of 300 ids missing: completeness 0.857 < 0.99.
        assert_eq!(whole[0].failed, 1);
        // Ids r0..r49 repeat at rows 250..299 (those present in both).
        assert!(whole[1].failed > 0, "{:?}", whole[1]);
        assert_eq!(whole[2].failed, 28, "{:?}", whole[2]);
        assert_eq!(whole[3].failed, 0);
    }

    #[test]
    fn a_file_without_rows_is_judged_over_nothing() {
        let results = judged(&[]);
        assert_eq!(results.len(), 4);
        assert!(results
            .iter()
            .all(|r| r.failed == 0 || r.rule_id == "ids_present"));
    }
}
