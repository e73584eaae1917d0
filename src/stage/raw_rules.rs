//! Raw-stage rules: judged over one landed file's rows as they go into raw (pseudonymised
//! text, before any cast), and over the file's header for `schema_match`.
//!
//! Only the columns the rules read are kept while the file streams through, so a rule set
//! that reads two columns costs two columns of memory; with no raw rules nothing is kept.

use std::collections::{BTreeSet, HashMap};

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;

use super::parse::{Chunks, RejectKind};
use super::{Dataset, Result, StepError};
use crate::contract::ColumnType;
use crate::rules::eval::{self, AsOf, RuleResult};
use crate::rules::RuleSet;
use crate::vocab::Stage;

/// Collects what raw rules need while a file streams into raw.
pub struct RawJudge {
    indices: Vec<usize>,
    schema: Option<SchemaRef>,
    kept: Vec<RecordBatch>,
    unexpected_fields: BTreeSet<String>,
}

impl RawJudge {
    /// A judge for `rules` over rows of the raw data `schema`.
    ///
    /// # Errors
    /// When a rule reads a column the raw table does not hold.
    pub fn new(rules: &RuleSet, schema: &SchemaRef) -> Result<Self> {
        let mut wanted = BTreeSet::new();
        for r in &rules.rules {
            wanted.extend(r.check.columns().into_iter().map(str::to_string));
            if let Some(f) = &r.filter {
                wanted.insert(f.column.clone());
            }
        }
        let mut indices = Vec::with_capacity(wanted.len());
        for c in &wanted {
            let i = schema.index_of(c).map_err(|e| StepError::Frame(e.into()))?;
            indices.push(i);
        }
        let projected = if rules.rules.is_empty() {
            None
        } else {
            Some(std::sync::Arc::new(
                schema
                    .project(&indices)
                    .map_err(|e| StepError::Frame(e.into()))?,
            ))
        };
        Ok(Self {
            indices,
            schema: projected,
            kept: Vec::new(),
            unexpected_fields: BTreeSet::new(),
        })
    }

    /// Whether any rule is to be judged (else nothing is kept).
    pub fn active(&self) -> bool {
        self.schema.is_some()
    }

    /// Keeps the columns the rules read from one chunk written to raw.
    ///
    /// # Errors
    /// Arrow projection errors.
    pub fn keep(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.active() {
            let b = batch
                .project(&self.indices)
                .map_err(|e| StepError::Frame(e.into()))?;
            self.kept.push(b);
        }
        Ok(())
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

    /// Judges the file: every raw rule's result. A `fail` rule that failed stops the
    /// promotion before anything is committed.
    ///
    /// # Errors
    /// [`StepError::Stopped`]; polars errors.
    pub fn judge<R: std::io::Read>(
        self,
        ds: &Dataset,
        chunks: &Chunks<'_, R>,
        as_of: AsOf,
        history: &HashMap<String, Vec<f64>>,
    ) -> Result<Vec<RuleResult>> {
        let Some(schema) = self.schema else {
            return Ok(Vec::new());
        };
        let delivered: Vec<String> = match chunks.delivered_columns() {
            Some(header) => header.to_vec(),
            // JSON lines: the contract's fields (a missing key is a null value) plus any
            // field the file carried beyond them.
            None => ds
                .contract
                .source
                .iter()
                .map(|c| c.name.clone())
                .chain(self.unexpected_fields)
                .collect(),
        };
        let batches = if self.kept.is_empty() {
            vec![RecordBatch::new_empty(schema.clone())]
        } else {
            self.kept
        };
        let mut frame = crate::frame::from_batches(&schema, &batches)?;
        // Raw values are the text as delivered: each column is its own raw twin.
        for f in schema.fields() {
            let twin = frame
                .column(f.name())?
                .clone()
                .with_name(eval::raw_name(f.name()).into());
            frame.with_column(twin)?;
        }
        let types = |_: &str| Some(ColumnType::String);
        let refs = HashMap::new();
        let cx = eval::Context {
            as_of,
            types: &types,
            history,
            refs: &refs,
            delivered: Some(&delivered),
            batch_unique: None,
        };
        let ev = eval::evaluate(frame, &ds.raw_rules, &cx)?;
        super::stop_on_fail(&ev, ds.name(), Stage::Raw)?;
        Ok(ev.results)
    }
}
