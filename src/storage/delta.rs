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
use crate::vocab::commit_key;

/// Commits between two checkpoints of a table medallion creates.
pub const CHECKPOINT_INTERVAL: &str = "10";

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
    // A local table whose folder is gone (deleted by hand, never written) is no table.
    if let Ok(path) = loc.url.to_file_path() {
        if loc.url.scheme() == "file" && !path.exists() {
            return Ok(None);
        }
    }
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

/// The medallion metadata of every commit one of `steps` made to the table, newest first,
/// read from the commit history (written in the same atomic commit as the data and its txn).
///
/// # Errors
/// delta-rs errors.
pub async fn step_commits(
    loc: &TableLoc,
    steps: &[&str],
) -> Result<Vec<HashMap<String, serde_json::Value>>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    let Some(table) = open(loc).await? else {
        return Ok(out);
    };
    let mut history = table.history(None);
    while let Some(info) = history.next().await {
        let info = info.map_err(|e| loc.err(e))?;
        let step = info.info.get(commit_key::STEP).and_then(|v| v.as_str());
        if step.is_some_and(|s| steps.contains(&s)) {
            out.push(info.info);
        }
    }
    Ok(out)
}

/// The batches a step committed to the table, from [`step_commits`]: one read per commit,
/// once per step, instead of a log replay per landed file. Only a positive answer counts: a
/// batch missing here (a trimmed history, a commit without metadata) must still be checked
/// with [`has_batch`].
///
/// # Errors
/// delta-rs errors.
pub async fn batches_in_history(
    loc: &TableLoc,
    step: &str,
) -> Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for info in step_commits(loc, &[step]).await? {
        if let Some(batch) = info.get(commit_key::BATCH).and_then(|v| v.as_str()) {
            out.insert(batch.to_string());
        }
        // A curated build consumes several batches in one commit.
        if let Some(all) = info.get(commit_key::BATCHES).and_then(|v| v.as_array()) {
            out.extend(all.iter().filter_map(|b| b.as_str()).map(str::to_string));
        }
    }
    Ok(out)
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

/// Opens the table, creating it first (schema only, no rows, no txn) when missing.
///
/// Rows are never written in the commit that creates a table: delta-rs commits a creation
/// that lost the race for version 0 at the next version *without* running its conflict
/// checker, so a batch's txn in a creating commit would not stop a concurrent duplicate.
/// The creating commit here never retries; losing the race just means the table exists.
///
/// # Errors
/// delta-rs errors.
pub async fn open_or_create(loc: &TableLoc, schema: SchemaRef) -> Result<DeltaTable> {
    if let Some(t) = open(loc).await? {
        return Ok(t);
    }
    create_empty(loc, schema).await
}

async fn create_empty(loc: &TableLoc, schema: SchemaRef) -> Result<DeltaTable> {
    let handle =
        DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone())
            .await
            .map_err(|e| loc.err(e))?;
    create_with(handle, loc, schema).await
}

/// Creates the table through `handle`, which may have been taken before another writer
/// created it.
async fn create_with(handle: DeltaTable, loc: &TableLoc, schema: SchemaRef) -> Result<DeltaTable> {
    if handle.version().is_some() {
        return Ok(handle);
    }
    let created = handle
        .write(vec![RecordBatch::new_empty(schema)])
        .with_save_mode(SaveMode::Append)
        // A checkpoint every 10 commits bounds what every later open reads from the log
        // (a table gets one commit per batch, so it grows by the day).
        .with_configuration([("delta.checkpointInterval", Some(CHECKPOINT_INTERVAL))])
        .with_commit_properties(CommitProperties::default().with_max_retries(0))
        .await;
    match created {
        Ok(t) => Ok(t),
        Err(e) => match open(loc).await? {
            // Another writer created it between our look and our commit.
            Some(t) => Ok(t),
            None => Err(loc.err(e)),
        },
    }
}

fn commit_props<K: AsRef<str>>(
    app_id: &str,
    metadata: &[(K, serde_json::Value)],
) -> CommitProperties {
    CommitProperties::default()
        .with_application_transaction(Transaction::new(app_id, 1))
        .with_metadata(
            metadata
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.clone())),
        )
}

/// Whether the table exists and holds at least one data file.
///
/// # Errors
/// delta-rs errors.
pub async fn has_files(loc: &TableLoc) -> Result<bool> {
    Ok(match open(loc).await? {
        Some(t) => t
            .snapshot()
            .map(|s| s.log_data().num_files() > 0)
            .unwrap_or(false),
        None => false,
    })
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
    let table = open_or_create(loc, schema.clone()).await?;
    if holds_any(&table, loc, &[app_id]).await? {
        return Ok(None);
    }
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
/// in one commit that records the batch's txn. Nothing is visible before [`Appender::commit`],
/// and a table that does not exist yet is only created then: an appender dropped without
/// committing leaves no table and no version behind.
pub struct Appender {
    loc: TableLoc,
    schema: SchemaRef,
    app_id: String,
    table: Option<DeltaTable>,
    /// `None` only while its commit properties are being replaced.
    writer: Option<deltalake::writer::RecordBatchWriter>,
    /// The commit's metadata.
    metadata: Vec<(String, serde_json::Value)>,
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
    /// Prepares an append of `app_id`'s rows; `None` when the table already holds `app_id`.
    ///
    /// # Errors
    /// delta-rs errors.
    pub async fn open(
        loc: &TableLoc,
        schema: SchemaRef,
        app_id: &str,
        metadata: &[(&str, serde_json::Value)],
    ) -> Result<Option<Self>> {
        let table = open(loc).await?;
        if let Some(t) = &table {
            if holds_any(t, loc, &[app_id]).await? {
                return Ok(None);
            }
        }
        let writer = match &table {
            Some(t) => deltalake::writer::RecordBatchWriter::for_table(t),
            None => deltalake::writer::RecordBatchWriter::try_new(
                loc.url.as_str(),
                schema.clone(),
                None,
                Some(loc.options.clone()),
            ),
        }
        .map_err(|e| loc.err(e))?
        // Files roll at this size, so no data file of a large batch is held whole.
        .with_target_file_size(TARGET_FILE_BYTES)
        .with_commit_properties(commit_props(app_id, metadata));
        Ok(Some(Self {
            loc: loc.clone(),
            schema,
            app_id: app_id.to_string(),
            table,
            writer: Some(writer),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
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
        let writer = self.writer.as_mut().ok_or_else(|| {
            self.loc
                .err(DeltaTableError::Generic("appender without a writer".into()))
        })?;
        let target = writer.arrow_schema();
        let batch = if batch.schema() == target {
            batch
        } else {
            conform(&batch, &target).map_err(|e| self.loc.err(DeltaTableError::Generic(e)))?
        };
        writer.write(batch).await.map_err(|e| self.loc.err(e))
    }

    /// Replaces the commit's metadata (what is known only once every row is written, such
    /// as the batch's books).
    pub fn set_metadata(&mut self, metadata: &[(&str, serde_json::Value)]) {
        self.metadata = metadata
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let props = commit_props(&self.app_id, &self.metadata);
        self.writer = self.writer.take().map(|w| w.with_commit_properties(props));
    }

    /// [`Self::commit`], unless the table gained data files since this append was planned
    /// against an empty table: then nothing is committed and a commit conflict is returned
    /// (the step reruns the batch, merging by key).
    ///
    /// # Errors
    /// The conflict; delta-rs errors.
    pub async fn commit_into_empty(self) -> Result<Option<u64>> {
        self.finish(true).await
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits every chunk written, with the txn, in one Delta commit (creating the table
    /// first when it does not exist). Returns the version, or `None` when a concurrent
    /// writer committed the batch first (nothing committed here).
    ///
    /// # Errors
    /// delta-rs errors (including a conflicting concurrent commit).
    pub async fn commit(self) -> Result<Option<u64>> {
        self.finish(false).await
    }

    /// Commits; with `into_empty`, only onto the empty table this append was planned against:
    /// a table that has data files, or any commit landing between that state and this one,
    /// is a commit conflict (no retry onto the newer version).
    async fn finish(mut self, into_empty: bool) -> Result<Option<u64>> {
        use deltalake::writer::DeltaWriter;
        let mut table = match self.table.take() {
            Some(t) => t,
            None => {
                let t = open_or_create(&self.loc, self.schema.clone()).await?;
                if holds_any(&t, &self.loc, &[self.app_id.as_str()]).await? {
                    return Ok(None);
                }
                t
            }
        };
        if into_empty {
            let files = table
                .snapshot()
                .map(|s| s.log_data().num_files())
                .unwrap_or(0);
            if files > 0 {
                let version = table.version().unwrap_or(0);
                return Err(self.loc.err(DeltaTableError::VersionAlreadyExists(version)));
            }
            if let Some(w) = self.writer.take() {
                let props = commit_props(&self.app_id, &self.metadata).with_max_retries(0);
                self.writer = Some(w.with_commit_properties(props));
            }
        }
        let Some(mut writer) = self.writer.take() else {
            return Err(self
                .loc
                .err(DeltaTableError::Generic("appender without a writer".into())));
        };
        let v = writer
            .flush_and_commit(&mut table)
            .await
            .map_err(|e| self.loc.err(e))?;
        Ok(Some(v as u64))
    }
}

/// Size at which an [`Appender`] closes a data file and starts the next.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

/// `batch` with the columns and types of `target` (by name): polars hands over large strings
/// where an existing table holds strings, and the streaming writer does not cast on its own.
fn conform(batch: &RecordBatch, target: &SchemaRef) -> std::result::Result<RecordBatch, String> {
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = batch
            .column_by_name(field.name())
            .ok_or_else(|| format!("column `{}` is missing from the rows written", field.name()))?;
        columns.push(if column.data_type() == field.data_type() {
            column.clone()
        } else {
            deltalake::arrow::compute::cast(column, field.data_type()).map_err(|e| e.to_string())?
        });
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())
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
/// txn in `app_ids` (creates the table on first write). With no predicate nothing is
/// replaced and `batches` are appended.
///
/// # Errors
/// delta-rs errors, including rows that do not match the predicate.
pub async fn replace_where(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    predicate: Option<&str>,
    app_ids: &[String],
    metadata: &[(&str, serde_json::Value)],
) -> Result<Option<u64>> {
    let txns: Vec<Transaction> = app_ids.iter().map(|a| Transaction::new(a, 1)).collect();
    let props = CommitProperties::default()
        .with_application_transactions(txns)
        .with_metadata(metadata.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
    let batches = if batches.is_empty() {
        vec![RecordBatch::new_empty(schema.clone())]
    } else {
        batches
    };
    let ids: Vec<&str> = app_ids.iter().map(String::as_str).collect();
    let table = open_or_create(loc, schema).await?;
    if holds_any(&table, loc, &ids).await? {
        return Ok(None);
    }
    let write = table.write(batches).with_commit_properties(props);
    let write = match predicate {
        Some(p) => write
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(p.to_string()),
        None => write.with_save_mode(SaveMode::Append),
    };
    let table = write.await.map_err(|e| loc.err(e))?;
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
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        // A merge with nothing to merge commits nothing, so it would not record the txn.
        let v = append(loc, schema, Vec::new(), app_id, metadata).await?;
        return Ok(v.map(|v| (v, UpsertCounts::default())));
    }
    let table = open_or_create(loc, schema.clone()).await?;
    if holds_any(&table, loc, &[app_id]).await? {
        return Ok(None);
    }
    let empty = table
        .snapshot()
        .map(|s| s.log_data().num_files() == 0)
        .unwrap_or(false);
    if empty {
        // Every row is new: an append is the merge's result at a fraction of its cost. A
        // concurrent writer of the same batch is still refused by the txn conflict check.
        // Onto the empty state only: a commit landing in between is a conflict (the step
        // reruns and merges), never an append beside another writer's rows of the same keys.
        let table = table
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit_props(app_id, metadata).with_max_retries(0))
            .await
            .map_err(|e| loc.err(e))?;
        return Ok(Some((
            table.version().unwrap_or(0),
            UpsertCounts {
                inserted: rows as u64,
                updated: 0,
            },
        )));
    }
    let ctx = SessionContext::new();
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

/// Deletes the rows matching `predicate` in one commit (no-op without a table).
///
/// # Errors
/// delta-rs errors.
pub async fn delete_where(loc: &TableLoc, predicate: &str) -> Result<()> {
    let Some(table) = open(loc).await? else {
        return Ok(());
    };
    table
        .delete()
        .with_predicate(predicate.to_string())
        .await
        .map_err(|e| loc.err(e))?;
    Ok(())
}

/// Deletes the rows matching `predicate` in one commit carrying `app_id` and `metadata`, unless
/// the table already holds `app_id`; returns whether a commit was made. (The predicate is kept
/// in the commit's history: never put an identifier in it.)
///
/// # Errors
/// delta-rs errors.
pub async fn delete_with(
    loc: &TableLoc,
    predicate: &str,
    app_id: &str,
    metadata: &[(&str, serde_json::Value)],
) -> Result<bool> {
    let Some(table) = open(loc).await? else {
        return Ok(false);
    };
    if holds_any(&table, loc, &[app_id]).await? {
        return Ok(false);
    }
    table
        .delete()
        .with_predicate(predicate.to_string())
        .with_commit_properties(commit_props(app_id, metadata))
        .await
        .map_err(|e| loc.err(e))?;
    Ok(true)
}

/// Makes the table's past unreadable: removes the data files earlier commits removed (lite
/// vacuum, no retention), writes a checkpoint at the current version and deletes every older
/// commit and checkpoint file, so neither time travel nor the log (statistics, predicates)
/// holds what was deleted. Transaction ids survive in the checkpoint, so every "done" check
/// still holds. Returns the data files removed.
///
/// # Errors
/// delta-rs errors.
pub async fn forget_history(loc: &TableLoc) -> Result<u64> {
    let removed = vacuum_removed(loc).await?;
    let Some(table) = open(loc).await? else {
        return Ok(removed);
    };
    let Some(version) = table.version() else {
        return Ok(removed);
    };
    deltalake::checkpoints::create_checkpoint(&table, None)
        .await
        .map_err(|e| loc.err(e))?;
    let cutoff = chrono::Utc::now().timestamp_millis() + 60_000;
    deltalake::checkpoints::cleanup_expired_logs_for(
        version,
        table.log_store().as_ref(),
        cutoff,
        None,
    )
    .await
    .map_err(|e| loc.err(e))?;
    Ok(removed)
}

/// Removes the data files that earlier commits removed from the table (Delta's lite vacuum with
/// no retention), so no earlier version can bring their rows back; returns how many. Files not
/// yet committed by a concurrent writer are never touched (lite mode only removes files the log
/// names).
///
/// # Errors
/// delta-rs errors.
pub async fn vacuum_removed(loc: &TableLoc) -> Result<u64> {
    let Some(table) = open(loc).await? else {
        return Ok(0);
    };
    let (_, vacuumed) = table
        .vacuum()
        .with_mode(deltalake::operations::vacuum::VacuumMode::Lite)
        .with_retention_period(chrono::Duration::zero())
        .with_enforce_retention_duration(false)
        .await
        .map_err(|e| loc.err(e))?;
    Ok(vacuumed.files_deleted.len() as u64)
}

/// Runs `sql` over the table registered as `t` and returns the schema and rows.
///
/// # Errors
/// delta-rs or DataFusion errors.
pub async fn query(loc: &TableLoc, sql: &str) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
    let Some((schema, df)) = planned(loc, sql).await? else {
        return Ok(None);
    };
    let batches = df.collect().await.map_err(|e| loc.query_err(e))?;
    Ok(Some((schema, batches)))
}

/// `sql` planned over the table registered as `t`, with its result schema; `None` without a
/// table.
async fn planned(
    loc: &TableLoc,
    sql: &str,
) -> Result<Option<(SchemaRef, deltalake::datafusion::dataframe::DataFrame)>> {
    let Some(table) = open(loc).await? else {
        return Ok(None);
    };
    let ctx = SessionContext::new();
    register(&ctx, "t", &table, loc).await?;
    let df = ctx.sql(sql).await.map_err(|e| loc.query_err(e))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    Ok(Some((schema, df)))
}

/// Runs `sql` over the table registered as `t` and returns its rows as a stream, so a caller
/// can work through a large result in bounded chunks instead of holding it whole.
///
/// # Errors
/// delta-rs or DataFusion errors (also while the stream is read).
pub async fn query_stream(loc: &TableLoc, sql: &str) -> Result<Option<(SchemaRef, RowStream)>> {
    use futures::StreamExt;
    let Some((schema, df)) = planned(loc, sql).await? else {
        return Ok(None);
    };
    let stream = df.execute_stream().await.map_err(|e| loc.query_err(e))?;
    let loc = loc.clone();
    let rows = stream.map(move |b| b.map_err(|e| loc.query_err(e)));
    Ok(Some((schema, Box::pin(rows))))
}

/// Record batches of a streamed query, in order.
pub type RowStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch>> + Send>>;

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
    count_where(loc, None).await
}

/// Number of rows matching `predicate` (all rows without one; 0 when the table does not exist).
///
/// # Errors
/// delta-rs or DataFusion errors.
pub async fn count_where(loc: &TableLoc, predicate: Option<&str>) -> Result<u64> {
    let sql = match predicate {
        Some(p) => format!("SELECT count(*) AS n FROM t WHERE {p}"),
        None => "SELECT count(*) AS n FROM t".to_string(),
    };
    let Some((_, batches)) = query(loc, &sql).await? else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::Int64Array;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    fn fixture() -> (tempfile::TempDir, TableLoc, SchemaRef, RecordBatch) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Url::from_directory_path(dir.path()).expect("url");
        let loc = TableLoc {
            url,
            options: HashMap::new(),
        };
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1_i64, 2, 3]))],
        )
        .expect("batch");
        (dir, loc, schema, batch)
    }

    #[tokio::test]
    async fn a_creation_that_lost_the_race_commits_nothing() {
        let (_dir, loc, schema, _) = fixture();
        let handle =
            || DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone());
        // Two writers both look before the table exists.
        let (a, b) = (handle().await.expect("a"), handle().await.expect("b"));
        create_with(a, &loc, schema.clone()).await.expect("first");
        // The second must not commit a second creation.
        let t = create_with(b, &loc, schema).await.expect("second");
        assert_eq!(t.version(), Some(0));
        assert_eq!(version(&loc).await.expect("version"), Some(0));
    }

    #[tokio::test]
    async fn a_batch_is_appended_once_even_when_both_writers_saw_no_table() {
        let (_dir, loc, schema, batch) = fixture();
        let handle =
            || DeltaTable::try_from_url_with_storage_options(loc.url.clone(), loc.options.clone());
        let (a, b) = (handle().await.expect("a"), handle().await.expect("b"));
        // Writer a creates the table and appends the batch.
        let a = create_with(a, &loc, schema.clone())
            .await
            .expect("create a");
        assert!(!holds_any(&a, &loc, &["app/b1"]).await.expect("holds"));
        a.write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit_props::<&str>("app/b1", &[]))
            .await
            .expect("append a");
        // Writer b, which looked before the table existed, now sees the batch and skips it.
        let b = create_with(b, &loc, schema).await.expect("create b");
        assert!(holds_any(&b, &loc, &["app/b1"]).await.expect("holds"));
        assert_eq!(count_rows(&loc).await.expect("count"), 3);
        assert_eq!(version(&loc).await.expect("version"), Some(1));
    }

    #[tokio::test]
    async fn a_stale_writer_of_the_same_batch_is_refused_by_the_conflict_check() {
        let (_dir, loc, schema, batch) = fixture();
        let stale = open_or_create(&loc, schema.clone()).await.expect("create");
        append(&loc, schema, vec![batch.clone()], "app/b1", &[])
            .await
            .expect("append");
        let lost = stale
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(commit_props::<&str>("app/b1", &[]))
            .await;
        assert!(
            lost.is_err(),
            "a concurrent duplicate of a batch was committed"
        );
        assert_eq!(count_rows(&loc).await.expect("count"), 3);
    }

    #[tokio::test]
    async fn every_write_records_its_batch_even_with_no_rows() {
        let (_dir, loc, schema, batch) = fixture();
        let key = vec!["n".to_string()];
        let upserted = upsert(&loc, schema.clone(), vec![], &key, None, "app/empty", &[])
            .await
            .expect("upsert on a new table");
        assert!(upserted.is_some());
        assert!(has_batch(&loc, "app/empty").await.expect("has"));
        upsert(&loc, schema.clone(), vec![batch], &key, None, "app/b1", &[])
            .await
            .expect("upsert rows");
        upsert(&loc, schema.clone(), vec![], &key, None, "app/empty2", &[])
            .await
            .expect("upsert on an existing table");
        assert!(has_batch(&loc, "app/empty2").await.expect("has"));
        let ids = vec!["app/rw".to_string()];
        replace_where(&loc, schema.clone(), vec![], Some("n = 7"), &ids, &[])
            .await
            .expect("replace nothing");
        assert!(has_batch(&loc, "app/rw").await.expect("has"));
        let ids = vec!["app/none".to_string()];
        replace_where(&loc, schema, vec![], None, &ids, &[])
            .await
            .expect("replace nothing");
        assert!(has_batch(&loc, "app/none").await.expect("has"));
        assert_eq!(count_rows(&loc).await.expect("count"), 3);
    }

    #[tokio::test]
    async fn an_appender_dropped_before_commit_leaves_no_table() {
        let (_dir, loc, schema, batch) = fixture();
        let mut a = Appender::open(&loc, schema.clone(), "app/b1", &[])
            .await
            .expect("open")
            .expect("new batch");
        a.write(batch.clone()).await.expect("write");
        drop(a);
        assert_eq!(version(&loc).await.expect("version"), None);
        let mut a = Appender::open(&loc, schema.clone(), "app/b1", &[])
            .await
            .expect("open")
            .expect("new batch");
        a.write(batch).await.expect("write");
        assert!(a.commit().await.expect("commit").is_some());
        assert_eq!(count_rows(&loc).await.expect("count"), 3);
        assert!(Appender::open(&loc, schema, "app/b1", &[])
            .await
            .expect("open")
            .is_none());
    }

    #[tokio::test]
    async fn history_names_the_batches_each_step_committed() {
        let (_dir, loc, schema, batch) = fixture();
        assert!(batches_in_history(&loc, "load")
            .await
            .expect("none")
            .is_empty());
        let meta = |b: &str| {
            [
                (commit_key::STEP, serde_json::json!("load")),
                (commit_key::BATCH, serde_json::json!(b)),
            ]
        };
        append(
            &loc,
            schema.clone(),
            vec![batch.clone()],
            "a/1",
            &meta("b1"),
        )
        .await
        .expect("b1");
        append(&loc, schema.clone(), vec![], "a/2", &meta("b2"))
            .await
            .expect("b2 without rows");
        append(&loc, schema.clone(), vec![], "a/3", &[])
            .await
            .expect("no metadata");
        let built = [
            (commit_key::STEP, serde_json::json!("build")),
            (commit_key::BATCHES, serde_json::json!(["x/b1", "x/b2"])),
        ];
        replace_where(
            &loc,
            schema,
            vec![batch],
            Some("n > 0"),
            &["c/1".into()],
            &built,
        )
        .await
        .expect("build");
        let loads = batches_in_history(&loc, "load").await.expect("loads");
        assert_eq!(loads.len(), 2);
        assert!(loads.contains("b1") && loads.contains("b2"));
        let builds = batches_in_history(&loc, "build").await.expect("builds");
        assert!(builds.contains("x/b1") && builds.contains("x/b2") && builds.len() == 2);
    }
}
