//! Running a dashboard's datasets: the SQL each one becomes, and its rows as JSON.
//!
//! Invariants: the engine a dashboard reads through registers curated tables and the two ops
//! tables only ([`allowed`]), so no raw or trusted row can reach a page even if a query named
//! one; every dataset's rows are bounded (`limit`, default [`DEFAULT_LIMIT`]) and the total
//! is kept so the page can say how many were left out; suppressed count columns blank values
//! 1..small_cell_min in SQL, so both engines (DataFusion here, Athena in QuickSight) agree.

use std::collections::BTreeMap;
use std::path::Path;

use deltalake::arrow;
use deltalake::arrow::datatypes::{DataType, Schema};
use serde::Serialize;

use super::spec::{Column, ColumnKind, Dashboard, RawDataset, DEFAULT_LIMIT, OPS_TABLES};
use crate::catalog::TableEntry;
use crate::query::{AsOf, Engine, QueryError};

/// Whether a catalog table may be read by dashboards and the API (curated data, or the ops
/// tables of the data-quality page).
pub fn allowed(e: &TableEntry) -> bool {
    (e.stage == "curated" && e.kind == "data") || OPS_TABLES.contains(&e.table.as_str())
}

/// A query engine over the tables dashboards may read, and nothing else.
///
/// # Errors
/// A table that cannot be opened.
pub async fn engine(
    entries: &[TableEntry],
    options: &std::collections::HashMap<String, String>,
) -> Result<Engine, QueryError> {
    let readable: Vec<TableEntry> = entries.iter().filter(|e| allowed(e)).cloned().collect();
    Engine::new(&readable, options, AsOf::Latest).await
}

/// The SQL of a dataset before bounding: `WITH src AS (<table or named query>) <sql>`.
///
/// # Errors
/// A named query that does not exist or lacks a parameter.
pub fn inner_sql(ds: &RawDataset, queries_dir: &Path) -> Result<String, QueryError> {
    let base = match (&ds.table, &ds.query) {
        (Some(t), _) => format!("SELECT * FROM {t}"),
        (None, Some(q)) => crate::query::named(queries_dir, q, &ds.params)?
            .trim()
            .trim_end_matches(';')
            .to_string(),
        (None, None) => {
            return Err(QueryError::Named(
                "a dataset needs a table or a query".into(),
            ))
        }
    };
    let body = ds.sql.as_deref().unwrap_or("SELECT * FROM src");
    Ok(format!("WITH src AS (\n{base}\n)\n{}", body.trim()))
}

/// The SQL whose rows reach a page: the inner SQL with suppressed columns blanked, ordered and
/// limited (`bounded`; QuickSight's direct-query datasets are not). `columns` are the inner SQL's.
pub fn final_sql(
    ds: &RawDataset,
    inner: &str,
    columns: &[Column],
    small_cell_min: u32,
    bounded: bool,
) -> String {
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote(&c.name);
            if ds.suppress.contains(&c.name) {
                format!(
                    "CASE WHEN {q} > 0 AND {q} < {small_cell_min} THEN NULL ELSE {q} END AS {q}"
                )
            } else {
                q
            }
        })
        .collect();
    let mut sql = format!("SELECT {} FROM (\n{inner}\n) d", select.join(", "));
    if bounded {
        if let Some(o) = &ds.order_by {
            sql.push_str(&format!(" ORDER BY {o}"));
        }
        sql.push_str(&format!(" LIMIT {}", ds.limit.unwrap_or(DEFAULT_LIMIT)));
    }
    sql
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a chart makes of an Arrow type.
pub fn kind_of(t: &DataType) -> ColumnKind {
    match t {
        DataType::Boolean => ColumnKind::Boolean,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => ColumnKind::Temporal,
        t if t.is_numeric() => ColumnKind::Number,
        _ => ColumnKind::Text,
    }
}

/// Columns of an Arrow schema.
pub fn columns_of(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            kind: kind_of(f.data_type()),
            integer: f.data_type().is_integer(),
        })
        .collect()
}

/// The columns a SQL statement yields, planned without running it.
///
/// # Errors
/// Planning errors.
pub async fn plan_columns(engine: &Engine, sql: &str) -> Result<Vec<Column>, QueryError> {
    let (schema, _) = engine
        .sql(&format!("SELECT * FROM (\n{sql}\n) p LIMIT 0"))
        .await?;
    Ok(columns_of(&schema))
}

/// One dataset's rows, ready to inline.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRows {
    /// Columns (name and kind).
    pub columns: Vec<Column>,
    /// Rows as JSON objects.
    pub rows: Vec<serde_json::Value>,
    /// Rows the dataset has before the limit.
    pub total: u64,
    /// The SQL that produced the rows.
    pub sql: String,
}

/// Every dataset of a dashboard, and the versions of the tables read.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardData {
    /// Rows by dataset id.
    pub datasets: BTreeMap<String, DatasetRows>,
    /// `<stage>.<table>` → Delta version read.
    pub tables: BTreeMap<String, u64>,
}

/// Runs a SQL statement and returns its rows as JSON objects.
///
/// # Errors
/// Query errors, or rows that cannot be encoded.
pub async fn rows_json(
    engine: &Engine,
    sql: &str,
) -> Result<(Schema, Vec<serde_json::Value>), QueryError> {
    let (schema, batches) = engine.sql(sql).await?;
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::ArrayWriter::new(&mut buf);
        let refs: Vec<&arrow::array::RecordBatch> = batches.iter().collect();
        w.write_batches(&refs)
            .map_err(|e| QueryError::Sql(e.to_string()))?;
        w.finish().map_err(|e| QueryError::Sql(e.to_string()))?;
    }
    let rows: Vec<serde_json::Value> = if buf.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buf).map_err(|e| QueryError::Sql(e.to_string()))?
    };
    Ok((schema.as_ref().clone(), rows))
}

/// Runs every dataset of `d`.
///
/// # Errors
/// Query errors (the dashboard was validated, so these are backend errors).
pub async fn fetch(
    engine: &Engine,
    d: &Dashboard,
    queries_dir: &Path,
    small_cell_min: u32,
    entries: &[TableEntry],
) -> Result<DashboardData, QueryError> {
    let mut datasets = BTreeMap::new();
    for (id, ds) in &d.spec.datasets {
        let inner = inner_sql(ds, queries_dir)?;
        let cols = d.columns.get(id).cloned().unwrap_or_default();
        let sql = final_sql(ds, &inner, &cols, small_cell_min, true);
        let (_, rows) = rows_json(engine, &sql).await?;
        let (_, count) = rows_json(
            engine,
            &format!("SELECT count(*) AS n FROM (\n{inner}\n) c"),
        )
        .await?;
        let total = count
            .first()
            .and_then(|r| r.get("n"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(rows.len() as u64);
        datasets.insert(
            id.clone(),
            DatasetRows {
                columns: cols,
                rows,
                total,
                sql,
            },
        );
    }
    let queries = super::query_texts(d, queries_dir);
    let tables = d
        .tables(&queries)
        .into_iter()
        .filter_map(|t| {
            entries
                .iter()
                .find(|e| e.table == t)
                .map(|e| (t.clone(), e.version))
        })
        .collect();
    Ok(DashboardData { datasets, tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppressed_columns_are_blanked_in_sql() {
        let ds = RawDataset {
            table: Some("curated.x".into()),
            query: None,
            params: BTreeMap::new(),
            sql: None,
            order_by: Some("n DESC".into()),
            limit: Some(10),
            suppress: vec!["n".into()],
        };
        let cols = vec![
            Column {
                name: "c".into(),
                kind: ColumnKind::Text,
                integer: false,
            },
            Column {
                name: "n".into(),
                kind: ColumnKind::Number,
                integer: true,
            },
        ];
        let inner = inner_sql(&ds, Path::new("/nonexistent")).unwrap();
        assert_eq!(
            inner,
            "WITH src AS (\nSELECT * FROM curated.x\n)\nSELECT * FROM src"
        );
        let sql = final_sql(&ds, &inner, &cols, 5, true);
        assert!(sql.starts_with("SELECT \"c\", CASE WHEN \"n\" > 0 AND \"n\" < 5 THEN NULL ELSE \"n\" END AS \"n\" FROM ("), "{sql}");
        assert!(sql.ends_with(") d ORDER BY n DESC LIMIT 10"), "{sql}");
    }
}
