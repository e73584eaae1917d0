//! Delta Lake operations medallion needs, over any location delta-rs can reach.
//!
//! Idempotency rests on Delta application transactions: every commit carries
//! `txn(appId = "medallion/<step>/<batch>", version = 1)` in the same atomic commit as the data,
//! so [`has_batch`] after a crash tells exactly whether that table already holds the batch.
//!
//! Files: [`appender`] streams one batch's rows into one commit, [`write`] holds the one-shot
//! writes (append, overwrite, replace, upsert, delete), [`history`] forgets a table's past and
//! [`read`] runs queries; this file holds the table location, the txn checks and the table
//! creation every write shares.

mod appender;
mod history;
mod read;
mod write;

use std::collections::HashMap;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::Transaction;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use super::{Result, StorageError};
use crate::vocab::commit_key;

pub(crate) use appender::lost_race;
pub use appender::{Appender, Guard};
pub use history::{forget_history, vacuum_removed};
pub use read::{
    count_rows, count_where, query, query_stream, query_stream_bounded, register, RowStream,
};
pub use write::{
    append, delete_where, delete_with, overwrite, replace_where, upsert, UpsertCounts,
};

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
    newest_step_commits(loc, steps, usize::MAX).await
}

/// The medallion metadata of the newest `max` commits one of `steps` made to the table, newest
/// first; the history is read only as far back as it takes.
///
/// # Errors
/// delta-rs errors.
pub async fn newest_step_commits(
    loc: &TableLoc,
    steps: &[&str],
    max: usize,
) -> Result<Vec<HashMap<String, serde_json::Value>>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    let Some(table) = open(loc).await? else {
        return Ok(out);
    };
    let mut history = table.history(None);
    while out.len() < max {
        let Some(info) = history.next().await else {
            break;
        };
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
    Ok(version_and_files(loc)
        .await?
        .is_some_and(|(_, files)| files > 0))
}

/// The table's partition columns, `None` when the table does not exist.
///
/// # Errors
/// delta-rs errors.
pub async fn partition_columns(loc: &TableLoc) -> Result<Option<Vec<String>>> {
    Ok(open(loc).await?.and_then(|t| {
        t.snapshot()
            .ok()
            .map(|s| s.metadata().partition_columns().to_vec())
    }))
}

/// The table's version and its id (the id of its metadata, new whenever the table is created
/// again): a table deleted and made again can reach the same version with other rows, never
/// the same id. `None` when the table does not exist.
///
/// # Errors
/// delta-rs errors.
pub async fn version_and_id(loc: &TableLoc) -> Result<Option<(u64, String)>> {
    Ok(open(loc).await?.and_then(|t| {
        let id = t.snapshot().ok()?.metadata().id().to_string();
        t.version().map(|v| (v, id))
    }))
}

/// The table's version and how many data files it holds, read from one snapshot; `None` when
/// the table does not exist.
///
/// # Errors
/// delta-rs errors.
pub async fn version_and_files(loc: &TableLoc) -> Result<Option<(u64, usize)>> {
    Ok(open(loc).await?.and_then(|t| {
        let files = t.snapshot().map(|s| s.log_data().num_files()).unwrap_or(0);
        t.version().map(|v| (v, files))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
    async fn a_table_made_again_at_the_same_version_has_another_id() {
        let (_dir, loc, schema, batch) = fixture();
        append(&loc, schema.clone(), vec![batch.clone()], "app/b1", &[])
            .await
            .expect("append");
        let first = version_and_id(&loc).await.expect("read").expect("table");
        let root = loc.url.to_file_path().expect("path");
        std::fs::remove_dir_all(&root).expect("remove");
        std::fs::create_dir_all(&root).expect("make again");
        append(&loc, schema, vec![batch], "app/b2", &[])
            .await
            .expect("append again");
        let second = version_and_id(&loc).await.expect("read").expect("table");
        assert_eq!(first.0, second.0, "the same version");
        assert_ne!(first.1, second.1, "another table");
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
    async fn a_guarded_append_lands_after_other_writers_only_while_nothing_matches() {
        let (_dir, loc, schema, batch) = fixture();
        append(&loc, schema.clone(), vec![batch], "app/b0", &[])
            .await
            .expect("b0");
        let rows = |v: Vec<i64>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).expect("rows")
        };
        // Another writer commits a row outside the range first: the append lands on top.
        let planned = version(&loc).await.expect("version").expect("table");
        let guard = Guard::NoneMatch {
            version: planned,
            predicate: "n >= 10 AND n <= 12".into(),
        };
        let mut a = Appender::open(&loc, schema.clone(), "app/b1", &[])
            .await
            .expect("open")
            .expect("new batch");
        a.write(rows(vec![10, 11, 12])).await.expect("write");
        append(&loc, schema.clone(), vec![rows(vec![20])], "app/other", &[])
            .await
            .expect("other");
        let landed = a.commit_guarded(&guard).await.expect("guarded commit");
        assert_eq!(landed, Some(planned + 2));
        assert_eq!(count_rows(&loc).await.expect("count"), 7);
        // One that commits a row inside the range first: nothing lands, a commit conflict.
        let planned = version(&loc).await.expect("version").expect("table");
        let guard = Guard::NoneMatch {
            version: planned,
            predicate: "n >= 30 AND n <= 32".into(),
        };
        let mut a = Appender::open(&loc, schema.clone(), "app/b2", &[])
            .await
            .expect("open")
            .expect("new batch");
        a.write(rows(vec![30, 32])).await.expect("write");
        append(&loc, schema.clone(), vec![rows(vec![31])], "app/rival", &[])
            .await
            .expect("rival");
        let err = a
            .commit_guarded(&guard)
            .await
            .expect_err("a matching row landed first");
        assert!(err.is_commit_conflict(), "{err}");
        assert_eq!(count_rows(&loc).await.expect("count"), 8);
        assert!(!has_batch(&loc, "app/b2").await.expect("has"));
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
