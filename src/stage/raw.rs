//! landing → raw: every landed file not yet in raw is parsed line by line; rows go to
//! `raw.<dataset>` (text, identifiers treated, lineage), unparseable lines to
//! `raw.<dataset>_rejects` (file, line, column, error). One batch per landed file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use deltalake::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

use super::hold;
use super::mapping::LookupTable;
use super::parse::{Chunk, Parser, Reject};
use super::raw_rules::RawJudge;
use super::step::{self, BatchStep, Output};
use super::{
    ColumnComments, Dataset, Lake, Result, StepError, StepOptions, BATCH_ID, INGESTED_AT,
    SOURCE_FILE, SOURCE_HASH, SOURCE_LINE,
};
use crate::crypto::Pseudonymizer;
use crate::ledger::{self, CommitMeta, Hold, HoldRow, PromotionRow, Step};
use crate::metrics::Unit;
use crate::rules::eval::{AsOf, RuleResult, ID_ISSUES};
use crate::storage::delta::{self, txn_id, TableLoc};
use crate::storage::LandedFile;
use crate::vocab::{Stage, TableRef};

/// Step name used in txn ids and reports.
pub const STEP: &str = Step::LandingToRaw.as_str();

/// What landing→raw did with one file.
#[derive(Debug, Clone, Serialize)]
pub struct RawBatchReport {
    /// Dataset.
    pub dataset: String,
    /// Batch id.
    pub batch_id: String,
    /// Landing file as delivered.
    pub source_file: String,
    /// Data lines read.
    pub landing_rows: u64,
    /// Rows written to raw.
    pub raw_rows: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Rejects per error kind.
    pub rejects_by_kind: BTreeMap<String, u64>,
    /// First rejects, for the terminal (file, line, column, error).
    pub sample_rejects: Vec<String>,
    /// Raw-stage rule results (none without raw rules).
    pub rules: Vec<RuleResult>,
    /// Whether anything was written (false on dry runs and held batches).
    pub committed: bool,
    /// Why the batch was held back instead of promoted (nothing written; it stays pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<crate::ledger::Hold>,
}

impl RawBatchReport {
    /// `landing rows = raw rows + rejects`.
    pub fn balanced(&self) -> bool {
        self.landing_rows == self.raw_rows + self.rejected
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn lineage_fields() -> Vec<Field> {
    vec![
        Field::new(SOURCE_FILE, DataType::Utf8, false),
        Field::new(SOURCE_LINE, DataType::Int64, false),
        Field::new(SOURCE_HASH, DataType::Utf8, false),
        Field::new(BATCH_ID, DataType::Utf8, false),
        Field::new(INGESTED_AT, ts_type(), false),
    ]
}

/// Schema of `raw.<dataset>`.
pub fn data_schema(ds: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> = ds
        .contract
        .raw_columns()
        .map(|c| Field::new(&c.name, DataType::Utf8, true))
        .collect();
    fields.push(Field::new(ID_ISSUES, DataType::Utf8, true));
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
}

/// `raw.<dataset>_rejects`: why the line was rejected ([`super::parse::RejectKind`]).
pub const ERROR_KIND: &str = "error_kind";
/// `raw.<dataset>_rejects`: the column concerned, when one is.
pub const ERROR_COLUMN: &str = "error_column";
/// `raw.<dataset>_rejects`: the error in words.
pub const ERROR_MESSAGE: &str = "error_message";

/// Comments of the rejects' own columns (the lineage columns are described for every table).
pub const REJECTS_COLUMNS: ColumnComments = &[
    (
        ERROR_KIND,
        "Why the line was rejected: ragged_line (field count differs from the header), invalid_utf8, schema_drift (header does not match the contract), invalid_json, unexpected_field (JSON key not in the contract), unmappable (source.map)",
    ),
    (
        ERROR_COLUMN,
        "Column the error concerns, as named in the contract; null when the error is about the whole line",
    ),
    (
        ERROR_MESSAGE,
        "The parse error in words; never the line's content, which may hold identifiers in clear",
    ),
];

/// Schema of `raw.<dataset>_rejects`.
pub fn rejects_schema() -> SchemaRef {
    let mut fields = lineage_fields();
    fields.push(Field::new(ERROR_KIND, DataType::Utf8, false));
    fields.push(Field::new(ERROR_COLUMN, DataType::Utf8, true));
    fields.push(Field::new(ERROR_MESSAGE, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

struct Lineage {
    file: String,
    hash: String,
    batch: String,
    ingested_micros: i64,
}

impl Lineage {
    fn of(f: &LandedFile) -> Result<Self> {
        let ingested_micros = f.landed_instant()?.timestamp_micros();
        Ok(Self {
            file: f.original_name.clone(),
            hash: f.sha256.clone(),
            batch: f.batch_id(),
            ingested_micros,
        })
    }

    fn columns(&self, lines: Vec<i64>) -> Vec<ArrayRef> {
        let n = lines.len();
        vec![
            Arc::new(StringArray::from(vec![self.file.as_str(); n])),
            Arc::new(Int64Array::from(lines)),
            Arc::new(StringArray::from(vec![self.hash.as_str(); n])),
            Arc::new(StringArray::from(vec![self.batch.as_str(); n])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![self.ingested_micros; n]).with_timezone("UTC"),
            ),
        ]
    }
}

fn data_batch(schema: &SchemaRef, lin: &Lineage, chunk: Chunk) -> Result<RecordBatch> {
    let mut cols: Vec<ArrayRef> = chunk
        .columns
        .into_iter()
        .map(|v| Arc::new(StringArray::from(v)) as ArrayRef)
        .collect();
    cols.push(Arc::new(StringArray::from(chunk.id_issues)));
    cols.extend(lin.columns(chunk.lines));
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| StepError::Frame(e.into()))
}

fn rejects_batch(lin: &Lineage, rejects: &[Reject]) -> Result<RecordBatch> {
    let mut cols = lin.columns(rejects.iter().map(|r| r.line as i64).collect());
    cols.push(Arc::new(StringArray::from(
        rejects.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(StringArray::from(
        rejects.iter().map(|r| r.column.clone()).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(StringArray::from(
        rejects
            .iter()
            .map(|r| r.message.clone())
            .collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(rejects_schema(), cols).map_err(|e| StepError::Frame(e.into()))
}

/// Promotes every landed file of `ds` not yet in raw.
///
/// # Errors
/// Storage, parse (I/O), catalog or metrics errors. Bad lines are never errors: they are rejects.
pub async fn run(lake: &Lake, ds: &Dataset, opts: StepOptions) -> Result<Vec<RawBatchReport>> {
    let mut step = RawStep::open(lake, ds, opts).await?;
    step::drive(&mut step, lake, ds, opts).await
}

/// landing → raw as a [`BatchStep`].
struct RawStep<'a> {
    lake: &'a Lake,
    ds: &'a Dataset,
    opts: StepOptions,
    data_loc: TableLoc,
    rejects_loc: TableLoc,
    keys: Pseudonymizer,
    schema: SchemaRef,
    /// Batches already in raw (its history, read once).
    done: HashSet<String>,
    /// Raw rule metrics of earlier batches; read on the first pending file only.
    history: Option<HashMap<String, Vec<f64>>>,
    /// `source.map` lookup tables, joined from any landed file; loaded on first need.
    lookups: Option<Vec<LookupTable>>,
}

/// A judged file's uncommitted appends (none on a dry run).
struct RawPending {
    data: Option<delta::Appender>,
    rejects: Option<delta::Appender>,
}

impl<'a> RawStep<'a> {
    async fn open(lake: &'a Lake, ds: &'a Dataset, opts: StepOptions) -> Result<Self> {
        let name = ds.name();
        let data_loc = lake.loc(Stage::Raw, name)?;
        let done = step::settle(lake, ds, &data_loc, Step::LandingToRaw).await?;
        Ok(Self {
            lake,
            ds,
            opts,
            rejects_loc: lake.loc(Stage::Raw, &TableRef::rejects(name).name())?,
            data_loc,
            keys: lake.keys.pseudonymization_key().await?,
            schema: data_schema(ds),
            done,
            history: None,
            lookups: None,
        })
    }
}

#[async_trait]
impl BatchStep for RawStep<'_> {
    type Report = RawBatchReport;
    type Pending = RawPending;
    const STEP: Step = Step::LandingToRaw;
    const STAGE: Stage = Stage::Raw;
    const AFTER_SIDE: &'static str = "after-rejects";

    async fn judge(&mut self, file: &LandedFile) -> Result<Option<(RawBatchReport, RawPending)>> {
        let (lake, ds, opts) = (self.lake, self.ds, self.opts);
        let name = ds.name();
        let batch = file.batch_id();
        let app = txn_id(STEP, &batch);
        // A `source.map` lookup file is joined into the data files, not promoted itself.
        if ds.pipeline.is_lookup(&file.original_name)
            || self.done.contains(&batch)
            || delta::has_batch(&self.data_loc, &app).await?
        {
            return Ok(None);
        }
        if self.lookups.is_none() {
            // Every landed file (lookups are joined from any of them), not only this run's.
            let landed = lake.store.list_landed(name).await?;
            self.lookups = Some(super::lookup::load(lake, ds, &landed).await?);
        }
        if self.history.is_none() {
            self.history = Some(ledger::rule_history(lake, name, Stage::Raw).await?);
        }
        let lin = Lineage::of(file)?;
        let mut parser = Parser::new(&ds.contract, &self.keys, ds.pipeline.raw.chunk_rows);
        if let Some(spec) = &ds.pipeline.mapping {
            parser = parser.with_mapping(spec, self.lookups.as_deref().unwrap_or_default());
        }
        // Opened with the batch's txn; the books join the data commit's metadata at the end.
        let meta = step::batch_meta(Step::LandingToRaw, &batch, ds).entries();
        let reader = lake.store.open_landed(file).await?;
        let parse_err = |source| StepError::Parse {
            file: format!("{} ({})", file.original_name, &file.sha256[..12]),
            source,
        };
        let mut chunks = match file.format.as_str() {
            "jsonl" => parser.jsonl(reader),
            "parquet" => parser
                .parquet(
                    super::lookup::read_all(reader).map_err(parse_err)?,
                    &file.original_name,
                )
                .map_err(parse_err)?,
            _ => parser.csv(reader),
        };
        // Rows stream into the data table's pending commit; rejects into the rejects table's
        // (created only when there is one). Memory stays bounded by the chunk size.
        let mut data = None;
        if !opts.dry_run {
            match delta::Appender::open(&self.data_loc, self.schema.clone(), &app, &meta).await? {
                Some(a) => data = Some(a),
                // A concurrent promotion committed this batch since the check above.
                None => return Ok(None),
            }
        }
        let mut write_rejects = !opts.dry_run && !delta::has_batch(&self.rejects_loc, &app).await?;
        let mut rejects_out: Option<delta::Appender> = None;
        let (mut rows, mut rejected) = (0u64, 0u64);
        let mut by_kind = BTreeMap::new();
        let mut sample: Vec<String> = Vec::new();
        let mut judge = RawJudge::new(&ds.raw_rules, &self.schema, AsOf(lake.clock.now()))?;
        while let Some(chunk) = chunks.next_chunk().map_err(parse_err)? {
            judge.note_rejects(&chunk.rejects);
            for r in &chunk.rejects {
                *by_kind.entry(r.kind.as_str().to_string()).or_insert(0u64) += 1;
                if sample.len() < 5 {
                    sample.push(sample_reject(&file.original_name, r));
                }
            }
            rejected += chunk.rejects.len() as u64;
            if write_rejects && !chunk.rejects.is_empty() {
                if rejects_out.is_none() {
                    rejects_out =
                        delta::Appender::open(&self.rejects_loc, rejects_schema(), &app, &meta)
                            .await?;
                    write_rejects = rejects_out.is_some();
                }
                if let Some(out) = rejects_out.as_mut() {
                    out.write(rejects_batch(&lin, &chunk.rejects)?).await?;
                }
            }
            rows += chunk.len() as u64;
            if !chunk.is_empty() && (data.is_some() || judge.active()) {
                let b = data_batch(&self.schema, &lin, chunk)?;
                judge.keep(&b)?;
                if let Some(out) = data.as_mut() {
                    out.write(b).await?;
                }
            }
        }
        let history = self.history.get_or_insert_with(HashMap::new);
        // Judged before anything is committed: a `fail` rule leaves every table as it was.
        let rules = judge
            .judge(ds, &chunks, history)
            .map_err(|e| e.in_file(&file.original_name))?;
        for r in &rules {
            if let Some(m) = r.metric {
                history.entry(r.rule_id.clone()).or_default().push(m);
            }
        }
        let expected: Vec<&str> = ds.contract.source.iter().map(|c| c.name.as_str()).collect();
        let held = if opts.accept_held {
            None
        } else {
            hold::at_raw(
                &ds.pipeline.hold,
                rows + rejected,
                rejected,
                chunks.delivered_columns(),
                &expected,
            )
        };
        tracing::info!(dataset = name, batch = %batch, rows, rejected, "Parsed landed file.");
        let report = RawBatchReport {
            dataset: name.to_string(),
            batch_id: batch,
            source_file: file.original_name.clone(),
            landing_rows: rows + rejected,
            raw_rows: rows,
            rejected,
            rejects_by_kind: by_kind,
            sample_rejects: sample,
            rules,
            committed: !opts.dry_run && held.is_none(),
            held,
        };
        let pending = RawPending {
            data,
            rejects: rejects_out,
        };
        Ok(Some((report, pending)))
    }

    async fn commit_side(&mut self, pending: &mut RawPending) -> Result<()> {
        if let Some(out) = pending.rejects.take() {
            out.commit().await?;
        }
        Ok(())
    }

    async fn books(
        &mut self,
        report: &mut RawBatchReport,
        _pending: &mut RawPending,
    ) -> Result<PromotionRow> {
        Ok(PromotionRow::from(&*report))
    }

    async fn commit_main(
        &mut self,
        _report: &RawBatchReport,
        pending: RawPending,
        meta: &CommitMeta,
    ) -> Result<bool> {
        let Some(mut data) = pending.data else {
            return Ok(false);
        };
        data.set_metadata(&meta.entries());
        Ok(data.commit().await?.is_some())
    }

    fn outputs(&self) -> Vec<Output> {
        let name = self.ds.name();
        vec![
            Output {
                table: name.to_string(),
                kind: "data",
                description:
                    "Every landing row parsed as text, direct identifiers pseudonymised, with lineage.",
                comments: None,
            },
            Output {
                table: TableRef::rejects(name).name(),
                kind: "rejects",
                description:
                    "Landing lines that could not be parsed, with file, line, column and error.",
                comments: Some(REJECTS_COLUMNS),
            },
        ]
    }
}

/// One reject as shown on the terminal: `file:line: column `c`: kind: message`.
fn sample_reject(file: &str, r: &Reject) -> String {
    let col = r
        .column
        .as_deref()
        .map(|c| format!(" column `{c}`:"))
        .unwrap_or_default();
    format!("{file}:{}:{col} {}: {}", r.line, r.kind.as_str(), r.message)
}

impl step::BatchReport for RawBatchReport {
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
        HoldRow::raw(self, h)
    }

    fn committed(&self) -> bool {
        self.committed
    }

    fn counts(&self) -> Vec<(&'static str, f64, Unit)> {
        vec![
            ("RowsIn", self.landing_rows as f64, Unit::Count),
            ("RowsPromoted", self.raw_rows as f64, Unit::Count),
            ("RowsRejected", self.rejected as f64, Unit::Count),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{comment_in, SHARED_COMMENTS};

    #[test]
    fn every_rejects_column_has_a_comment() {
        for f in rejects_schema().fields() {
            let c = f.name().as_str();
            let text = comment_in(SHARED_COMMENTS, c)
                .or_else(|| comment_in(REJECTS_COLUMNS, c))
                .unwrap_or_default();
            assert!(!text.is_empty(), "{c} has no comment");
            assert!(text.len() <= 255, "{c}: Glue keeps 255 characters");
        }
    }

    #[test]
    fn the_error_kind_comment_names_every_kind() {
        use super::super::parse::RejectKind as K;
        let text = comment_in(REJECTS_COLUMNS, ERROR_KIND).unwrap_or_default();
        for k in [
            K::RaggedLine,
            K::InvalidUtf8,
            K::SchemaDrift,
            K::InvalidJson,
            K::UnexpectedField,
            K::Unmappable,
        ] {
            assert!(text.contains(k.as_str()), "{}", k.as_str());
        }
    }
}
