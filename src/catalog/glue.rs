//! The Glue Data Catalog: one database per stage (`<prefix>_raw`, ...), one Delta table per
//! lake table, in the form Athena's native Delta reader accepts (`table_type=DELTA`, location),
//! with columns and comments kept in sync with the Delta log and medallion's parameters
//! (owner, contract version, last batch, rows, version, kind).
//!
//! Invariants: `register` is idempotent (create, or update when the table exists: Glue keeps
//! the previous definition as a table version); column comments never exceed Glue's limit.

use async_trait::async_trait;
use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};

use super::{Catalog, CatalogError, ColumnEntry, TableEntry};
use crate::aws::{call, Aws};

/// The Glue catalog of a project.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    aws: Aws,
    owner: String,
}

fn fail(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::File {
        path: "glue".into(),
        message: e.to_string(),
    }
}

/// The owner the tables of a project's Glue catalog name (the data team of
/// `catalog/catalog.yaml`'s `tags.owner`).
pub const OWNER: &str = "academics-data";

const P_DATASET: &str = "medallion.dataset";
const P_KIND: &str = "medallion.kind";
const P_VERSION: &str = "medallion.delta_version";
const P_ROWS: &str = "medallion.rows";
const P_CONTRACT: &str = "medallion.contract_version";
const P_BATCH: &str = "medallion.last_batch";
const P_UPDATED: &str = "medallion.updated_at";

/// Glue keeps at most this many characters of a column comment (longer ones fail the call).
const COMMENT_MAX: usize = 255;

/// A column comment as Glue takes it: cut to [`COMMENT_MAX`] characters, marked with `…`.
fn glue_comment(text: &str) -> String {
    if text.chars().count() <= COMMENT_MAX {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(COMMENT_MAX - 1).collect();
    cut.push('…');
    cut
}

impl GlueCatalog {
    /// A Glue catalog; `owner` goes into every table's parameters.
    pub fn new(aws: Aws, owner: &str) -> Self {
        Self {
            aws,
            owner: owner.to_string(),
        }
    }

    async fn ensure_database(&self, name: &str) -> Result<(), CatalogError> {
        if self.aws.glue.get_database().name(name).send().await.is_ok() {
            return Ok(());
        }
        let input = DatabaseInput::builder()
            .name(name)
            .description("medallion lake stage")
            .build()
            .map_err(fail)?;
        match self
            .aws
            .glue
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(fail(call("glue", "CreateDatabase")(e))),
        }
    }

    fn table_input(&self, name: &str, e: &TableEntry) -> Result<TableInput, CatalogError> {
        let mut sd = StorageDescriptor::builder()
            .location(&e.location)
            .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
            .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
            .serde_info(
                SerDeInfo::builder()
                    .serialization_library(
                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    )
                    .build(),
            );
        for c in &e.schema {
            sd = sd.columns(
                Column::builder()
                    .name(&c.name)
                    .r#type(&c.ty)
                    .comment(glue_comment(&c.comment))
                    .build()
                    .map_err(fail)?,
            );
        }
        TableInput::builder()
            .name(name)
            .description(&e.description)
            .owner(&self.owner)
            .table_type("EXTERNAL_TABLE")
            .storage_descriptor(sd.build())
            .parameters("table_type", "DELTA")
            .parameters("classification", "delta")
            .parameters("owner", &self.owner)
            .parameters(P_DATASET, &e.dataset)
            .parameters(P_KIND, &e.kind)
            .parameters(P_VERSION, e.version.to_string())
            .parameters(P_ROWS, e.rows.to_string())
            .parameters(P_CONTRACT, &e.contract_version)
            .parameters(P_BATCH, e.last_batch.clone().unwrap_or_default())
            .parameters(P_UPDATED, &e.updated_at)
            .build()
            .map_err(fail)
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    fn name(&self) -> &'static str {
        "glue"
    }

    async fn register(&self, entry: TableEntry) -> Result<(), CatalogError> {
        let database = self.aws.database(&entry.stage);
        self.ensure_database(&database).await?;
        let name = entry
            .table
            .split_once('.')
            .map_or(entry.table.as_str(), |(_, t)| t)
            .to_string();
        let input = self.table_input(&name, &entry)?;
        let created = self
            .aws
            .glue
            .create_table()
            .database_name(&database)
            .table_input(input.clone())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                // Glue keeps the previous definition as a table version.
                self.aws
                    .glue
                    .update_table()
                    .database_name(&database)
                    .table_input(input)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| fail(call("glue", "UpdateTable")(e)))
            }
            Err(e) => Err(fail(call("glue", "CreateTable")(e))),
        }
    }

    async fn list(&self) -> Result<Vec<TableEntry>, CatalogError> {
        let mut out = Vec::new();
        for stage in ["raw", "trusted", "curated", "ops"] {
            let database = self.aws.database(stage);
            let tables = match self
                .aws
                .glue
                .get_tables()
                .database_name(&database)
                .send()
                .await
            {
                Ok(t) => t,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_not_found_exception()) =>
                {
                    continue
                }
                Err(e) => return Err(fail(call("glue", "GetTables")(e))),
            };
            for t in tables.table_list() {
                let p = t.parameters().cloned().unwrap_or_default();
                let get = |k: &str| p.get(k).cloned().unwrap_or_default();
                let sd = t.storage_descriptor();
                out.push(TableEntry {
                    dataset: get(P_DATASET),
                    stage: stage.to_string(),
                    kind: get(P_KIND),
                    table: format!("{stage}.{}", t.name()),
                    location: sd
                        .and_then(|s| s.location())
                        .unwrap_or_default()
                        .to_string(),
                    version: get(P_VERSION).parse().unwrap_or(0),
                    rows: get(P_ROWS).parse().unwrap_or(0),
                    schema: sd
                        .map(|s| {
                            s.columns()
                                .iter()
                                .map(|c| ColumnEntry {
                                    name: c.name().to_string(),
                                    ty: c.r#type().unwrap_or_default().to_string(),
                                    comment: c.comment().unwrap_or_default().to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    contract_version: get(P_CONTRACT),
                    last_batch: Some(get(P_BATCH)).filter(|b| !b.is_empty()),
                    description: t.description().unwrap_or_default().to_string(),
                    updated_at: get(P_UPDATED),
                });
            }
        }
        out.sort_by(|a, b| (&a.dataset, &a.stage, &a.kind).cmp(&(&b.dataset, &b.stage, &b.kind)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_fit_glue() {
        assert_eq!(glue_comment("Date of the session."), "Date of the session.");
        let long = "é".repeat(300);
        let cut = glue_comment(&long);
        assert_eq!(cut.chars().count(), COMMENT_MAX);
        assert!(cut.ends_with('…'));
        assert_eq!(glue_comment(&"a".repeat(255)), "a".repeat(255));
    }
}
