//! Delta Lake operations medallion needs, over any location delta-rs can reach.
//!
//! Idempotency rests on Delta application transactions: every commit carries
//! `txn(appId = "medallion/<step>/<batch>", version = 1)` in the same atomic commit as the data,
//! so [`has_batch`] after a crash tells exactly whether that table already holds the batch.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::Transaction;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use super::{Result, StorageError};

/// A Delta table location and the options to reach it.
#[derive(Debug, Clone)]
pub struct TableLoc {
    /// Table root URL.
    pub url: Url,
    /// delta-rs storage options.
    pub options: HashMap<String, String>,
}

impl TableLoc {
    fn err(&self, e: DeltaTableError) -> StorageError {
        StorageError::Delta {
            table: self.url.to_string(),
            source: Box::new(e),
        }
    }

    fn query_err(&self, e: impl std::fmt::Display) -> StorageError {
        StorageError::Query {
            table: self.url.to_string(),
            message: e.to_string(),
        }
    }
}

/// `value` as a quoted SQL string literal (`'` doubled).
pub fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The application-transaction id recording that `step` consumed `batch`.
pub fn txn_id(step: &str, batch: &str) -> String {
    format!("medallion/{step}/{batch}")
}

/// Opens the table, or `None` when nothing has been written there yet.
///
/// # Errors
/// Any delta-rs error other than "not a table".
pub async fn open(loc: &TableLoc) -> Result<Option<DeltaTable>> {
    match deltalake::open_table_with_storage_options(loc.url.clone(), loc.options.clone()).await {
        Ok(t) => Ok(Some(t)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(loc.err(e)),
    }
}

/// Current version of the table, `None` if it does not exist.
///
/// # Errors
/// delta-rs errors.
pub async fn version(loc: &TableLoc) -> Result<Option<u64>> {
    Ok(open(loc).await?.and_then(|t| t.version()))
}

/// Whether the table already holds the batch (its commit carried the batch's txn).
///
/// # Errors
/// delta-rs errors.
pub async fn has_batch(loc: &TableLoc, app_id: &str) -> Result<bool> {
    let Some(table) = open(loc).await? else {
        return Ok(false);
    };
    let snapshot = table.snapshot().map_err(|e| loc.err(e))?;
    let v = snapshot
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(|e| loc.err(e))?;
    Ok(v.is_some())
}

/// Whether this very snapshot of the table already holds one of `app_ids`. Checked on the
/// snapshot the write builds on: a commit landing after it is caught by Delta's conflict
/// checker (same txn id), one landing before it is seen here, so two concurrent promotions
/// of one batch never both write it.
async fn holds_any(table: &DeltaTable, loc: &TableLoc, app_ids: &[&str]) -> Result<bool> {
    let snapshot = table.snapshot().map_err(|e| loc.err(e))?;
    for app in app_ids {
        if snapshot
            .transaction_version(table.log_store().as_ref(), *app)
            .await
            .map_err(|e| loc.err(e))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn commit_props(app_id: &str, metadata: &[(&str, serde_json::Value)]) -> CommitProperties {
    CommitProperties::default()
        .with_application_transaction(Transaction::new(app_id, 1))
        .with_metadata(metadata.iter().map(|(k, v)| ((*k).to_string(), v.clone())))
}

/// Appends `batches` in one commit that records `app_id`. Creates the table on first write,
/// with `schema` even when there are no rows. Returns the new version, or `None` when the
/// table already holds `app_id` (nothing written).
///
/// # Errors
/// delta-rs errors (including a conflicting concurrent commit).
pub async fn append(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    app_id: &str,
    metadata: &[(&str, serde_json::Value)],
) -> Result<Option<u64>> {
    let table = match open(loc).await? {
        Some(t) if holds_any(&t, loc, &[app_id]).await? => return Ok(None),
        Some(t) => t,
        None => DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone())
            .await
            .map_err(|e| loc.err(e))?,
    };
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    };
    let table = table
        .write(batches)
        .with_save_mode(SaveMode::Append)
        .with_commit_properties(commit_props(app_id, metadata))
        .await
        .map_err(|e| loc.err(e))?;
    Ok(Some(table.version().unwrap_or(0)))
}

/// Writes one batch's rows to a table chunk by chunk (bounded memory) and commits them all
/// in one commit that records the batch's txn. Nothing is visible before [`Appender::commit`].
pub struct Appender {
    loc: TableLoc,
    table: DeltaTable,
    writer: deltalake::writer::RecordBatchWriter,
    rows: u64,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("table", &self.loc.url.as_str())
            .field("rows", &self.rows)
            .finish()
    }
}

impl Appender {
    /// Opens the table for appending, creating it (empty, with `schema`) when missing; `None`
    /// when the table already holds `app_id`.
    ///
    /// # Errors
    /// delta-rs errors.
    pub async fn open(
        loc: &TableLoc,
        schema: SchemaRef,
        app_id: &str,
        metadata: &[(&str, serde_json::Value)],
    ) -> Result<Option<Self>> {
        let table = match open(loc).await? {
            Some(t) if holds_any(&t, loc, &[app_id]).await? => return Ok(None),
            Some(t) => t,
            None => {
                let t = DeltaTable::try_from_url_with_storage_options(
                    loc.url.clone(),
                    loc.options.clone(),
                )
                .await
                .map_err(|e| loc.err(e))?;
                t.write(vec![RecordBatch::new_empty(schema)])
                    .with_save_mode(SaveMode::Append)
                    .await
                    .map_err(|e| loc.err(e))?
            }
        };
        let writer = deltalake::writer::RecordBatchWriter::for_table(&table)
            .map_err(|e| loc.err(e))?
            .with_commit_properties(commit_props(app_id, metadata));
        Ok(Some(Self {
            loc: loc.clone(),
            table,
            writer,
            rows: 0,
        }))
    }

    /// Buffers (and spills to data files) one chunk of rows.
    ///
    /// # Errors
    /// delta-rs errors (schema mismatch, storage).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        use deltalake::writer::DeltaWriter;
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).await.map_err(|e| self.loc.err(e))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits every chunk written, with the txn, in one Delta commit. Returns the version.
    ///
    /// # Errors
    /// delta-rs errors (including a conflicting concurrent commit).
    pub async fn commit(mut self) -> Result<u64> {
        use deltalake::writer::DeltaWriter;
        let v = self
            .writer
            .flush_and_commit(&mut self.table)
            .await
            .map_err(|e| self.loc.err(e))?;
        Ok(v as u64)
    }
}

/// Replaces the whole table content in one commit that records `app_id`.
///
/// # Errors
/// delta-rs errors.
pub async fn overwrite(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    app_id: &str,
    metadata: &[(&str, serde_json::Value)],
) -> Result<u64> {
    let table = match open(loc).await? {
        Some(t) => t,
        None => DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone())
            .await
            .map_err(|e| loc.err(e))?,
    };
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    };
    let table = table
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .with_commit_properties(commit_props(app_id, metadata))
        .await
        .map_err(|e| loc.err(e))?;
    Ok(table.version().unwrap_or(0))
}

/// Replaces the rows matching `predicate` with `batches` in one commit that records every
/// txn in `app_ids` (creates the table on first write).
///
/// # Errors
/// delta-rs errors, including rows that do not match the predicate.
pub async fn replace_where(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    predicate: &str,
    app_ids: &[String],
) -> Result<Option<u64>> {
    let txns: Vec<Transaction> = app_ids.iter().map(|a| Transaction::new(a, 1)).collect();
    let props = CommitProperties::default().with_application_transactions(txns);
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    };
    let ids: Vec<&str> = app_ids.iter().map(String::as_str).collect();
    let table = match open(loc).await? {
        Some(t) if holds_any(&t, loc, &ids).await? => return Ok(None),
        Some(t) => t
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate.to_string())
            .with_commit_properties(props),
        None => DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone())
            .await
            .map_err(|e| loc.err(e))?
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(props),
    };
    let table = table.await.map_err(|e| loc.err(e))?;
    Ok(Some(table.version().unwrap_or(0)))
}

/// Row counts of an upsert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    /// New keys.
    pub inserted: u64,
    /// Existing keys replaced by a newer record.
    pub updated: u64,
}

/// Upserts `batches` into the table by `key` columns: a source row replaces the target row
/// with its key when `newer_sql` (over aliases `s` and `t`) holds, and is inserted when the key
/// is new. One commit recording `app_id`. The source must hold at most one row per key.
///
/// # Errors
/// delta-rs errors.
pub async fn upsert(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    key: &[String],
    newer_sql: Option<&str>,
    app_id: &str,
    metadata: &[(&str, serde_json::Value)],
) -> Result<Option<(u64, UpsertCounts)>> {
    let Some(table) = open(loc).await? else {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let Some(v) = append(loc, schema, batches, app_id, metadata).await? else {
            return Ok(None);
        };
        return Ok(Some((
            v,
            UpsertCounts {
                inserted: rows,
                updated: 0,
            },
        )));
    };
    if holds_any(&table, loc, &[app_id]).await? {
        return Ok(None);
    }
    let ctx = SessionContext::new();
    // An empty source still needs its schema, or the merge cannot resolve `s.<column>`.
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema.clone())]
    } else {
        batches
    };
    let source = ctx.read_batches(batches).map_err(|e| loc.query_err(e))?;
    let on = key
        .iter()
        .map(|k| format!("t.{k} = s.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let cols_update = columns.clone();
    let cols_insert = columns;
    let newer = newer_sql.map(str::to_string);
    let (table, metrics) = table
        .merge(source, on.as_str())
        .with_source_alias("s")
        .with_target_alias("t")
        .with_commit_properties(commit_props(app_id, metadata))
        .when_matched_update(move |u| {
            let mut u = match &newer {
                Some(p) => u.predicate(p.as_str()),
                None => u,
            };
            for c in &cols_update {
                u = u.update(c.as_str(), format!("s.{c}"));
            }
            u
        })
        .map_err(|e| loc.err(e))?
        .when_not_matched_insert(move |i| {
            let mut i = i;
            for c in &cols_insert {
                i = i.set(c.as_str(), format!("s.{c}"));
            }
            i
        })
        .map_err(|e| loc.err(e))?
        .await
        .map_err(|e| loc.err(e))?;
    Ok(Some((
        table.version().unwrap_or(0),
        UpsertCounts {
            inserted: metrics.num_target_rows_inserted as u64,
            updated: metrics.num_target_rows_updated as u64,
        },
    )))
}

/// Runs `sql` over the table registered as `t` and returns the schema and rows.
///
/// # Errors
/// delta-rs or DataFusion errors.
pub async fn query(loc: &TableLoc, sql: &str) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
    let Some(table) = open(loc).await? else {
        return Ok(None);
    };
    let ctx = SessionContext::new();
    register(&ctx, "t", &table, loc).await?;
    let df = ctx.sql(sql).await.map_err(|e| loc.query_err(e))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| loc.query_err(e))?;
    Ok(Some((schema, batches)))
}

/// Registers a Delta table in a DataFusion session under `name`.
///
/// # Errors
/// delta-rs or DataFusion errors.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    table: &DeltaTable,
    loc: &TableLoc,
) -> Result<()> {
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| loc.err(e))?;
    let provider = table.table_provider().await.map_err(|e| loc.query_err(e))?;
    ctx.register_table(name, provider)
        .map_err(|e| loc.query_err(e))?;
    Ok(())
}

/// Number of rows in the table (0 when it does not exist).
///
/// # Errors
/// delta-rs or DataFusion errors.
pub async fn count_rows(loc: &TableLoc) -> Result<u64> {
    let Some((_, batches)) = query(loc, "SELECT count(*) AS n FROM t").await? else {
        return Ok(0);
    };
    let n = batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<deltalake::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(n as u64)
}
