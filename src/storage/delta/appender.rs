//! [`Appender`]: one batch's rows written to a table chunk by chunk (bounded memory) and
//! committed in one Delta commit that records the batch's txn.
//!
//! Invariants: nothing is visible before the commit; a table that does not exist yet is
//! created only at commit, so an appender dropped without committing leaves no table and no
//! version behind; a batch the table already holds is not written again.

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::{DeltaTable, DeltaTableError};

use super::{commit_props, holds_any, open, open_or_create, Result, TableLoc};

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
        self.finish(Some(&Guard::Empty)).await
    }

    /// [`Self::commit`] while `guard` still holds of the table it lands on (see [`Guard`]); a
    /// commit that lost the race to another writer is retried onto the newer version when the
    /// guard still holds there. When it no longer holds, nothing is committed and a commit
    /// conflict is returned (the step reruns the batch, merging by key).
    ///
    /// # Errors
    /// The conflict; delta-rs errors.
    pub async fn commit_guarded(self, guard: &Guard) -> Result<Option<u64>> {
        self.finish(Some(guard)).await
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
        self.finish(None).await
    }

    /// Commits; with a guard, only onto a table the guard holds of, checked again whenever
    /// another commit landed first (delta-rs' own retry is off, so no commit lands on a
    /// version that was not checked).
    async fn finish(mut self, guard: Option<&Guard>) -> Result<Option<u64>> {
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
        let Some(mut writer) = self.writer.take() else {
            return Err(self
                .loc
                .err(DeltaTableError::Generic("appender without a writer".into())));
        };
        let Some(guard) = guard else {
            let v = writer
                .flush_and_commit(&mut table)
                .await
                .map_err(|e| self.loc.err(e))?;
            return Ok(Some(v));
        };
        let props = commit_props(&self.app_id, &self.metadata).with_max_retries(0);
        writer = writer.with_commit_properties(props);
        let mut checked = match guard {
            Guard::Empty => None,
            Guard::NoneMatch { version, .. } => Some(*version),
        };
        let mut attempt = 1;
        loop {
            if attempt > 1 {
                table.update_state().await.map_err(|e| self.loc.err(e))?;
                if holds_any(&table, &self.loc, &[self.app_id.as_str()]).await? {
                    return Ok(None);
                }
            }
            let version = table.version().unwrap_or(0);
            let holds = match guard {
                Guard::Empty => {
                    table
                        .snapshot()
                        .map(|s| s.log_data().num_files())
                        .unwrap_or(0)
                        == 0
                }
                Guard::NoneMatch { predicate, .. } => {
                    // Rows committed since the check may match: count again (the count reads
                    // the newest version, so none there means none at `version` either).
                    checked == Some(version)
                        || super::read::count_where(&self.loc, Some(predicate.as_str())).await? == 0
                }
            };
            if !holds {
                return Err(self.loc.err(DeltaTableError::VersionAlreadyExists(version)));
            }
            checked = Some(version);
            match writer.flush_and_commit(&mut table).await {
                Ok(v) => return Ok(Some(v)),
                // Another commit took the version: its data stays staged for the next try.
                Err(e) if lost_race(&e) && attempt < GUARDED_ATTEMPTS => attempt += 1,
                Err(e) => return Err(self.loc.err(e)),
            }
        }
    }
}

/// What a guarded append ([`Appender::commit_guarded`]) requires of the table it commits onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The table holds no data file (a first load).
    Empty,
    /// No row of the table matches `predicate` (SQL over the table's columns), as checked at
    /// `version`: a later commit is accepted only when it added no matching row.
    NoneMatch {
        /// The version the predicate was checked at.
        version: u64,
        /// The predicate no row may match.
        predicate: String,
    },
}

/// Tries a guarded commit gets when other writers keep committing first.
const GUARDED_ATTEMPTS: u32 = 8;

/// Whether a commit failed only because another writer committed that version first.
pub(crate) fn lost_race(e: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(_)
                    | TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
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
