//! One-shot writes: append, overwrite, replace-where, upsert (merge by key) and deletes.
//!
//! Invariants: every write is a single Delta commit; a write given an `app_id` records it in
//! that commit, and all but [`overwrite`] first check that the snapshot they build on does not
//! hold it yet (nothing is written when it does); an append, overwrite, replace or upsert with
//! no rows still commits, so its txn is recorded.

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::Transaction;
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;

use super::{commit_props, holds_any, open, open_or_create, Result, TableLoc};

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

/// Replaces the whole table content in one commit that records `app_id`, the table then
/// partitioned by `partition_by` (none: not partitioned).
///
/// # Errors
/// delta-rs errors.
pub async fn overwrite(
    loc: &TableLoc,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    app_id: &str,
    metadata: &[(&str, serde_json::Value)],
    partition_by: &[&str],
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
        .with_partition_columns(partition_by.iter().copied())
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
