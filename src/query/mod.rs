//! SQL over the lake. Locally: DataFusion (through delta-rs's integration) over every table in
//! the catalog, named `<stage>.<table>` as the catalog names them. DataFusion was chosen over
//! polars SQL because its dialect (window functions, `corr`, CTEs, `date_trunc`) is closest to
//! Athena/Trino. Named queries are written in Trino SQL; the few Trino functions they use that
//! DataFusion lacks are registered on the session (see `trino`), so one named query runs on
//! both engines. On AWS the same SQL runs in Athena ([`athena`], with the `aws` feature).

#[cfg(feature = "aws")]
pub mod athena;
mod trino;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::MemorySchemaProvider;
use deltalake::datafusion::prelude::SessionContext;

use crate::catalog::TableEntry;
use crate::storage::delta::TableLoc;

/// Errors running a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL failed to plan or run.
    #[error("query: {0}")]
    Sql(String),
    /// A table could not be opened.
    #[error("table {table}: {message}")]
    Table {
        /// Catalog name.
        table: String,
        /// What failed.
        message: String,
    },
    /// A named query does not exist or lacks a parameter.
    #[error("{0}")]
    Named(String),
}

/// Which version of each table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The latest version.
    Latest,
    /// A Delta version (tables younger than it are left out).
    Version(u64),
    /// The tables as they were at this instant.
    Time(chrono::DateTime<chrono::Utc>),
}

impl AsOf {
    /// Parses `--as-of`: a version number or an RFC 3339 timestamp.
    ///
    /// # Errors
    /// When it is neither.
    pub fn parse(s: &str) -> Result<Self, QueryError> {
        if let Ok(v) = s.parse::<u64>() {
            return Ok(Self::Version(v));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Self::Time(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                QueryError::Named(format!(
                    "--as-of `{s}` is neither a version number nor an RFC 3339 timestamp"
                ))
            })
    }
}

/// A DataFusion session with every catalog table registered.
pub struct Engine {
    ctx: SessionContext,
    /// Tables registered, by catalog name.
    pub tables: Vec<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tables", &self.tables)
            .finish()
    }
}

impl Engine {
    /// Registers every entry of the catalog (`raw`, `trusted`, `curated`, `ops` schemas).
    ///
    /// # Errors
    /// When a table cannot be opened.
    pub async fn new(
        entries: &[TableEntry],
        options: &std::collections::HashMap<String, String>,
        as_of: AsOf,
    ) -> Result<Self, QueryError> {
        let ctx = SessionContext::new();
        trino::register(&ctx);
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| QueryError::Sql("no default catalog".into()))?;
        let mut tables = Vec::new();
        for e in entries {
            if catalog.schema(&e.stage).is_none() {
                catalog
                    .register_schema(&e.stage, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|err| QueryError::Sql(err.to_string()))?;
            }
            let err = |m: String| QueryError::Table {
                table: e.table.clone(),
                message: m,
            };
            let url = url::Url::parse(&e.location).map_err(|x| err(x.to_string()))?;
            let loc = TableLoc {
                url,
                options: options.clone(),
            };
            let Some(mut table) = crate::storage::delta::open(&loc)
                .await
                .map_err(|x| err(x.to_string()))?
            else {
                continue;
            };
            match as_of {
                AsOf::Latest => {}
                AsOf::Version(v) => {
                    if table.version().is_none_or(|cur| cur < v) {
                        continue;
                    }
                    table
                        .load_version(v)
                        .await
                        .map_err(|x| err(x.to_string()))?;
                }
                AsOf::Time(t) => {
                    if table.load_with_datetime(t).await.is_err() {
                        continue;
                    }
                }
            }
            crate::storage::delta::register(&ctx, &e.table, &table, &loc)
                .await
                .map_err(|x| err(x.to_string()))?;
            tables.push(e.table.clone());
        }
        Ok(Self { ctx, tables })
    }

    /// Runs one SQL statement.
    ///
    /// # Errors
    /// Planning or execution errors, with DataFusion's message.
    pub async fn sql(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| QueryError::Sql(e.to_string()))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df
            .collect()
            .await
            .map_err(|e| QueryError::Sql(e.to_string()))?;
        Ok((schema, batches))
    }
}

/// Loads `catalog/queries/<name>.sql` and fills `${param}` placeholders with quoted literals.
///
/// # Errors
/// Unknown query, a placeholder without a value, or a value given for no placeholder.
pub fn named(
    dir: &Path,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, QueryError> {
    if !crate::vocab::is_valid_name(name) {
        return Err(QueryError::Named(format!("`{name}` is not a query name")));
    }
    let path = dir.join(format!("{name}.sql"));
    let text = std::fs::read_to_string(&path).map_err(|_| {
        let known: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| {
                    e.ok()?
                        .path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                })
                .collect()
            })
            .unwrap_or_default();
        QueryError::Named(format!(
            "no named query `{name}` in {} (known: {})",
            dir.display(),
            known.join(", ")
        ))
    })?;
    fill(&text, params)
}

/// Replaces `${name}` with `'value'` (quotes doubled); every placeholder needs a value.
///
/// # Errors
/// A placeholder without a value, or an unused parameter.
pub fn fill(text: &str, params: &BTreeMap<String, String>) -> Result<String, QueryError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut used = std::collections::BTreeSet::new();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else { break };
        let key = &rest[i + 2..i + j];
        let v = params
            .get(key)
            .ok_or_else(|| QueryError::Named(format!("the query needs --param {key}=VALUE")))?;
        out.push_str(&crate::storage::delta::sql_literal(v));
        used.insert(key.to_string());
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    if let Some(k) = params.keys().find(|k| !used.contains(*k)) {
        return Err(QueryError::Named(format!(
            "the query has no parameter `{k}`"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_quoted_and_checked() {
        let mut p = BTreeMap::new();
        p.insert("course".to_string(), "MAT'101".to_string());
        assert_eq!(
            fill("WHERE c = ${course}", &p).unwrap(),
            "WHERE c = 'MAT''101'"
        );
        assert!(fill("WHERE c = ${other}", &p).is_err());
        assert!(fill("SELECT 1", &p).is_err());
    }

    #[test]
    fn as_of_parses_versions_and_times() {
        assert_eq!(AsOf::parse("3").unwrap(), AsOf::Version(3));
        assert!(matches!(
            AsOf::parse("2026-11-01T00:00:00Z").unwrap(),
            AsOf::Time(_)
        ));
        assert!(AsOf::parse("yesterday").is_err());
    }
}
