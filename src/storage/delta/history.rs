//! Forgetting a table's past: a lite vacuum of the data files earlier commits removed, then
//! a checkpoint and the removal of every older log file.
//!
//! Invariants: only data files the log names as removed are deleted (never a concurrent
//! writer's uncommitted files); transaction ids survive in the checkpoint, so every "done"
//! check still holds once the history is gone.

use super::{open, Result, TableLoc};

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
