//! Reading a table: SQL over the table registered as `t` in a DataFusion session, whole or
//! streamed in chunks, and row counts.
//!
//! Invariants: a table that does not exist reads as `None` (or 0 rows), never as an error;
//! nothing here writes.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::DeltaTable;

use super::{open, Result, TableLoc};

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
