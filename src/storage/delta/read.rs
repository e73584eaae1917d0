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
    let Some((schema, df)) = planned(loc, sql, SessionContext::new()).await? else {
        return Ok(None);
    };
    let batches = df.collect().await.map_err(|e| loc.query_err(e))?;
    Ok(Some((schema, batches)))
}

/// `sql` planned in `ctx` over the table registered as `t`, with its result schema; `None`
/// without a table.
async fn planned(
    loc: &TableLoc,
    sql: &str,
    ctx: SessionContext,
) -> Result<Option<(SchemaRef, deltalake::datafusion::dataframe::DataFrame)>> {
    let Some(table) = open(loc).await? else {
        return Ok(None);
    };
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
    stream_in(loc, sql, SessionContext::new()).await
}

/// [`query_stream`] with at most about `memory` bytes for the query's sorts: past that,
/// DataFusion sorts what it holds, spills it to a temporary file and merges the files as the
/// stream is read, so an `ORDER BY` over a table of any size holds about `memory` (plus a
/// batch per spilled run), not the table.
///
/// # Errors
/// delta-rs or DataFusion errors (also while the stream is read, e.g. a full disk).
pub async fn query_stream_bounded(
    loc: &TableLoc,
    sql: &str,
    memory: usize,
) -> Result<Option<(SchemaRef, RowStream)>> {
    use deltalake::datafusion::execution::memory_pool::FairSpillPool;
    use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use deltalake::datafusion::prelude::SessionConfig;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory)))
        .build_arc()
        .map_err(|e| loc.query_err(e))?;
    // One partition: one sort, which sets aside (out of the same budget) what merging its
    // spilled runs needs before it holds anything. Two partitions would need a second merge
    // of the two sorted halves, which asks for memory only once the sorts hold theirs and
    // then finds none left.
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_sort_spill_reservation_bytes(memory / 8);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    stream_in(loc, sql, ctx).await
}

async fn stream_in(
    loc: &TableLoc,
    sql: &str,
    ctx: SessionContext,
) -> Result<Option<(SchemaRef, RowStream)>> {
    use futures::StreamExt;
    let Some((schema, df)) = planned(loc, sql, ctx).await? else {
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
    use std::collections::HashMap;

    use deltalake::arrow::array::{AsArray, Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use futures::StreamExt;
    use url::Url;

    #[tokio::test]
    async fn a_sorted_read_larger_than_its_memory_spills_and_yields_every_row_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = TableLoc {
            url: Url::from_directory_path(dir.path()).expect("url"),
            options: HashMap::new(),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("course_id", DataType::Utf8, false),
            Field::new("record_id", DataType::Int64, false),
        ]));
        // 600,000 rows in three commits, in no order: about 15 MB to sort in 4 MB.
        let n = 600_000_i64;
        for part in 0..3 {
            let ids: Vec<i64> = (0..n)
                .filter(|i| i % 3 == part)
                .map(|i| (i * 7_919) % n)
                .collect();
            let courses: Vec<String> = ids.iter().map(|i| format!("C{:03}", i % 101)).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(courses)),
                    Arc::new(Int64Array::from(ids)),
                ],
            )
            .expect("batch");
            super::super::append(&loc, schema.clone(), vec![batch], &format!("t/{part}"), &[])
                .await
                .expect("append");
        }
        let sql = "SELECT course_id, record_id FROM t ORDER BY course_id, record_id";
        let (_, mut rows) = query_stream_bounded(&loc, sql, 4 << 20)
            .await
            .expect("query")
            .expect("table");
        let mut last: Option<(String, i64)> = None;
        let mut seen = 0_i64;
        while let Some(batch) = rows.next().await {
            let batch = batch.expect("batch");
            // DataFusion may hand strings out as views.
            let courses =
                deltalake::arrow::compute::cast(batch.column(0), &DataType::Utf8).expect("cast");
            let courses = courses.as_string::<i32>();
            let ids = batch.column(1).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let row = (courses.value(i).to_string(), ids.value(i));
                assert!(
                    last.as_ref().is_none_or(|l| *l < row),
                    "{last:?} then {row:?}"
                );
                last = Some(row);
                seen += 1;
            }
        }
        assert_eq!(seen, n, "every row comes back once");
    }
}
