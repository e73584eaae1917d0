//! landing → raw: every landed file not yet in raw is parsed line by line; rows go to
//! `raw.<dataset>` (text, identifiers treated, lineage), unparseable lines to
//! `raw.<dataset>_rejects` (file, line, column, error). One batch per landed file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use deltalake::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

use super::hold;
use super::parse::{Chunk, Parser, Reject};
use super::raw_rules::RawJudge;
use super::{
    ColumnComments, Dataset, Lake, Registration, Result, StepError, StepOptions, BATCH_ID,
    INGESTED_AT, SOURCE_FILE, SOURCE_HASH, SOURCE_LINE,
};
use crate::ledger::{self, CommitMeta, Step};
use crate::metrics::io::IoSnapshot;
use crate::metrics::{Metric, Unit};
use crate::rules::eval::{AsOf, RuleResult, ID_ISSUES};
use crate::storage::delta::{self, txn_id};
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
    let name = ds.name();
    let data_loc = lake.loc(Stage::Raw, name)?;
    let rejects_name = TableRef::rejects(name).name();
    let rejects_loc = lake.loc(Stage::Raw, &rejects_name)?;
    let keys = lake.keys.pseudonymization_key().await?;
    let schema = data_schema(ds);
    // Read on the first pending file only: a no-op run reads the logs and nothing more.
    let mut history = None;
    let mut reports = Vec::new();
    let done = delta::batches_in_history(&data_loc, STEP).await?;
    // Every landed file (lookups are joined from any of them), but only this run's share
    // promoted.
    let landed = lake.store.list_landed(name).await?;
    let mine = lake.landed(name).await?;
    let mut loaded: Option<Vec<super::mapping::LookupTable>> = None;
    for file in mine {
        let batch = file.batch_id();
        let app = txn_id(STEP, &batch);
        // A `source.map` lookup file is joined into the data files, not promoted itself.
        if ds.pipeline.is_lookup(&file.original_name)
            || done.contains(&batch)
            || delta::has_batch(&data_loc, &app).await?
        {
            continue;
        }
        let lookups: &[super::mapping::LookupTable] = match &mut loaded {
            Some(l) => l,
            None => loaded.insert(super::lookup::load(lake, ds, &landed).await?),
        };
        let started = Instant::now();
        let history = match &mut history {
            Some(h) => h,
            None => history.insert(ledger::rule_history(lake, name, Stage::Raw).await?),
        };
        let io_start = IoSnapshot::now();
        let lin = Lineage::of(&file)?;
        let mut parser = Parser::new(&ds.contract, &keys, ds.pipeline.raw.chunk_rows);
        if let Some(spec) = &ds.pipeline.mapping {
            parser = parser.with_mapping(spec, lookups);
        }
        let meta = CommitMeta::batch(Step::LandingToRaw, &batch)
            .with_contract(&ds.contract.version)
            .entries();
        let reader = lake.store.open_landed(&file).await?;
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
            match delta::Appender::open(&data_loc, schema.clone(), &app, &meta).await? {
                Some(a) => data = Some(a),
                // A concurrent promotion committed this batch since the check above.
                None => continue,
            }
        }
        let mut write_rejects = !opts.dry_run && !delta::has_batch(&rejects_loc, &app).await?;
        let mut rejects_out: Option<delta::Appender> = None;
        let (mut rows, mut rejected) = (0u64, 0u64);
        let mut by_kind = BTreeMap::new();
        let mut sample: Vec<String> = Vec::new();
        let mut judge = RawJudge::new(&ds.raw_rules, &schema, AsOf(lake.clock.now()))?;
        while let Some(chunk) = chunks.next_chunk().map_err(parse_err)? {
            judge.note_rejects(&chunk.rejects);
            for r in &chunk.rejects {
                *by_kind.entry(r.kind.as_str().to_string()).or_insert(0u64) += 1;
                if sample.len() < 5 {
                    let col = r
                        .column
                        .as_deref()
                        .map(|c| format!(" column `{c}`:"))
                        .unwrap_or_default();
                    sample.push(format!(
                        "{}:{}:{col} {}: {}",
                        file.original_name,
                        r.line,
                        r.kind.as_str(),
                        r.message
                    ));
                }
            }
            rejected += chunk.rejects.len() as u64;
            if write_rejects && !chunk.rejects.is_empty() {
                if rejects_out.is_none() {
                    rejects_out =
                        delta::Appender::open(&rejects_loc, rejects_schema(), &app, &meta).await?;
                    write_rejects = rejects_out.is_some();
                }
                if let Some(out) = rejects_out.as_mut() {
                    out.write(rejects_batch(&lin, &chunk.rejects)?).await?;
                }
            }
            rows += chunk.len() as u64;
            if !chunk.is_empty() && (data.is_some() || judge.active()) {
                let b = data_batch(&schema, &lin, chunk)?;
                judge.keep(&b)?;
                if let Some(out) = data.as_mut() {
                    out.write(b).await?;
                }
            }
        }
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
        let report = RawBatchReport {
            dataset: name.to_string(),
            batch_id: batch.clone(),
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
        tracing::info!(dataset = name, batch = %batch, rows, rejected, "Parsed landed file.");
        if let Some(h) = &report.held {
            tracing::warn!(dataset = name, batch = %batch, reason = %h.reason, "Holding the batch back.");
            if !opts.dry_run {
                ledger::holds::record(lake, &ledger::HoldRow::raw(&report, h)).await?;
                lake.metrics.emit(&hold::metrics(name, "raw", h)).await?;
            }
            // The pending appenders are dropped uncommitted: nothing of this batch is written.
            reports.push(report);
            continue;
        }
        let Some(data) = data else {
            reports.push(report);
            continue;
        };
        if let Some(out) = rejects_out {
            out.commit().await?;
        }
        super::crash_point(STEP, "after-rejects");
        super::books::record_raw(lake, &report).await?;
        // The data table is committed last: its txn marks the batch done.
        if data.commit().await?.is_none() {
            // A concurrent promotion committed this batch first; its books are the same.
            continue;
        }
        let mut metrics = vec![
            Metric::new(
                "RowsIn",
                report.landing_rows as f64,
                Unit::Count,
                name,
                "raw",
            ),
            Metric::new(
                "RowsPromoted",
                report.raw_rows as f64,
                Unit::Count,
                name,
                "raw",
            ),
            Metric::new(
                "RowsRejected",
                report.rejected as f64,
                Unit::Count,
                name,
                "raw",
            ),
            Metric::new(
                "DurationSeconds",
                started.elapsed().as_secs_f64(),
                Unit::Seconds,
                name,
                "raw",
            ),
        ];
        metrics.extend(report.rules.iter().map(|r| {
            Metric::new("RulePassRate", r.pass_rate(), Unit::None, name, "raw")
                .with_rule(&r.rule_id)
        }));
        metrics.extend(lake.cost_metrics(&io_start, name, "raw"));
        lake.metrics.emit(&metrics).await?;
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
            stage: Some(Stage::Raw),
            table: name,
            kind: "data",
            description:
                "Every landing row parsed as text, direct identifiers pseudonymised, with lineage.",
            contract,
            last_batch: last.as_deref(),
            comments: None,
        })
        .await?;
        lake.register(Registration {
            dataset: name,
            stage: Some(Stage::Raw),
            table: &rejects_name,
            kind: "rejects",
            description:
                "Landing lines that could not be parsed, with file, line, column and error.",
            contract,
            last_batch: last.as_deref(),
            comments: Some(REJECTS_COLUMNS),
        })
        .await?;
    }
    Ok(reports)
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
