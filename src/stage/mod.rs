//! One promotion step per stage boundary: landing→raw ([`raw`]) and raw→trusted ([`trusted`]),
//! both run by the one batch driver in `step.rs` (pending → judge → side table → books →
//! main table last with the books in its commit → ledger → metrics → catalog); the quarantine
//! release is in `release.rs`.
//!
//! Invariants every step keeps:
//! - the books balance per batch: `landing rows = raw rows + rejects` and
//!   `raw rows = trusted (new keys) + quarantined + duplicates dropped`;
//! - a batch is written to each table in one Delta commit carrying the batch's txn id; the
//!   step's main table is written last, so a crash leaves the batch "not done" and a rerun
//!   completes the side tables it is missing and never writes any table twice;
//! - a `fail` rule stops the step before anything is written.

pub mod books;
pub mod cast;
pub mod forgotten;
pub mod hold;
mod judge;
mod keys;
pub mod lookup;
pub mod mapping;
pub mod parquet;
pub mod parse;
pub mod raw;
pub mod raw_rules;
mod release;
pub mod retention;
pub(crate) mod step;
pub mod trusted;

use crate::catalog::{CatalogError, ColumnEntry, TableEntry};
use crate::config::pipeline::Pipeline;
use crate::contract::Contract;
use crate::crypto::CryptoError;
use crate::frame::FrameError;
use crate::lake::Lake;
use crate::ledger::{self, LedgerError};
use crate::metrics::MetricsError;
use crate::rules::{RuleSet, RulesError};
use crate::storage::delta::{self, TableLoc};
use crate::storage::StorageError;
use crate::vocab::Stage;
pub use crate::vocab::{comment_in, ColumnComments};

/// Lineage: the landing file's original name.
pub const SOURCE_FILE: &str = "_source_file";
/// Lineage: the 1-based line in the landing file.
pub const SOURCE_LINE: &str = "_source_line";
/// Lineage: SHA-256 of the landing file.
pub const SOURCE_HASH: &str = "_source_hash";
/// Lineage: the batch id.
pub const BATCH_ID: &str = "_batch_id";
/// Lineage: when the landing file was landed (UTC).
pub const INGESTED_AT: &str = "_ingested_at";
/// The lineage columns, in table order.
pub const LINEAGE: [&str; 5] = [SOURCE_FILE, SOURCE_LINE, SOURCE_HASH, BATCH_ID, INGESTED_AT];

/// Comments of the columns medallion adds to every dataset's tables (lineage, identifier
/// checks, quarantine reasons), whatever the contract says.
pub const SHARED_COMMENTS: ColumnComments = &[
    (SOURCE_FILE, "Lineage: landing file name as delivered"),
    (
        SOURCE_LINE,
        "Lineage: line in the landing file (1-based, where the record starts)",
    ),
    (SOURCE_HASH, "Lineage: SHA-256 of the landing file (hex)"),
    (
        BATCH_ID,
        "Lineage: batch id (one batch per landed file); joins ops.promotions and ops.quality_results",
    ),
    (INGESTED_AT, "Lineage: when the file was landed (UTC)"),
    (
        crate::rules::eval::ID_ISSUES,
        "Identifier checks that failed before pseudonymisation (contract.<column>.pattern, comma-separated); null when none",
    ),
    (
        crate::rules::eval::RULE_IDS,
        "Every rule the row failed (rule ids, comma-separated)",
    ),
    (
        crate::rules::eval::FAILURES,
        "Each failure as rule: column=value (identifiers pseudonymised)",
    ),
];

/// Result alias for steps.
pub type Result<T, E = StepError> = std::result::Result<T, E>;

/// Why a step did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A `fail` rule failed: nothing was committed.
    #[error("{dataset}: promotion to {stage} stopped by rule(s) {}{}; nothing was committed (fix the data or the rule, then promote again)", .rules.iter().map(|(r, n)| format!("{r} ({n} failing)")).collect::<Vec<_>>().join(", "), .file.as_deref().map(|f| format!(" in {f}")).unwrap_or_default())]
    Stopped {
        /// Dataset.
        dataset: String,
        /// Target stage.
        stage: Stage,
        /// Failing rules and their failure counts.
        rules: Vec<(String, u64)>,
        /// The landed file judged, when one file was.
        file: Option<String>,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Metrics failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Key provider failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Rule evaluation failed.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// Frame conversion failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// polars failed.
    #[error("polars: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    /// A `source.map` lookup file is missing or unreadable.
    #[error("{dataset}: {message}")]
    Lookup {
        /// Dataset.
        dataset: String,
        /// What is missing and what to do.
        message: String,
    },
    /// Reading a landed file failed.
    #[error("{file}: {source}")]
    Parse {
        /// Landed file (original name and hash).
        file: String,
        /// The error.
        source: parse::ParseError,
    },
}

/// A ledger error keeps its kind: a storage error stays [`StepError::Storage`], so a commit
/// conflict on the books is retried like one on any table.
impl From<LedgerError> for StepError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Storage(e) => Self::Storage(e),
            LedgerError::Frame(e) => Self::Frame(e),
        }
    }
}

/// Stops a step when a `fail` rule failed in `ev`: nothing has been committed yet.
///
/// # Errors
/// [`StepError::Stopped`] naming every failed `fail` rule and its failure count.
pub fn stop_on_fail(
    ev: &crate::rules::eval::Evaluation,
    dataset: &str,
    stage: Stage,
) -> Result<()> {
    stop_on_results(&ev.results, dataset, stage)
}

/// [`stop_on_fail`] over rule results.
///
/// # Errors
/// [`StepError::Stopped`] naming every `fail` rule that failed.
pub fn stop_on_results(
    results: &[crate::rules::eval::RuleResult],
    dataset: &str,
    stage: Stage,
) -> Result<()> {
    let rules: Vec<(String, u64)> = results
        .iter()
        .filter(|r| r.outcome == crate::rules::eval::Outcome::Failed)
        .map(|r| (r.rule_id.clone(), r.failed))
        .collect();
    if rules.is_empty() {
        Ok(())
    } else {
        Err(StepError::Stopped {
            dataset: dataset.to_string(),
            stage,
            rules,
            file: None,
        })
    }
}

impl StepError {
    /// Names the landed file a stopped promotion was judging.
    pub fn in_file(self, name: &str) -> Self {
        match self {
            Self::Stopped {
                dataset,
                stage,
                rules,
                ..
            } => Self::Stopped {
                dataset,
                stage,
                rules,
                file: Some(name.to_string()),
            },
            other => other,
        }
    }
}

impl Lake {
    /// Refreshes the catalog entry of a table from its Delta log.
    ///
    /// # Errors
    /// Storage or catalog errors.
    pub async fn register(&self, reg: Registration<'_>) -> Result<()> {
        let loc = match reg.stage {
            Some(stage) => self.loc(stage, reg.table)?,
            None => self.ops_loc(reg.table)?,
        };
        let Some(table) = delta::open(&loc).await? else {
            return Ok(());
        };
        let rows = delta::count_rows(&loc).await?;
        let schema = match delta::query(&loc, "SELECT * FROM t LIMIT 0").await? {
            Some((s, _)) => s,
            None => return Ok(()),
        };
        let columns = schema
            .fields()
            .iter()
            .map(|f| ColumnEntry {
                name: f.name().clone(),
                ty: sql_type(f.data_type()),
                comment: reg.comment(f.name()),
            })
            .collect();
        let stage_name = reg.stage.map_or("ops", Stage::as_str);
        self.catalog
            .register(TableEntry {
                dataset: reg.dataset.to_string(),
                stage: stage_name.to_string(),
                kind: reg.kind.to_string(),
                table: format!("{stage_name}.{}", reg.table),
                location: loc.url.to_string(),
                version: table.version().unwrap_or(0),
                rows,
                schema: columns,
                contract_version: reg.contract.map(|c| c.version.clone()).unwrap_or_default(),
                last_batch: reg.last_batch.map(str::to_string),
                description: reg.description.to_string(),
                updated_at: self
                    .clock
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
            .await?;
        Ok(())
    }
}

impl Lake {
    /// Every catalog entry with its version, row count and columns read from the table's own
    /// Delta log: the log is the truth, the catalog only keeps descriptions and comments. Reads
    /// only; a table whose version has not moved costs one log read. The flag says whether the
    /// entry was stale.
    ///
    /// # Errors
    /// Storage or catalog errors.
    pub async fn live_entries(&self) -> Result<Vec<(TableEntry, bool)>> {
        let mut out = Vec::new();
        for mut e in self.catalog.list().await? {
            let Ok(url) = url::Url::parse(&e.location) else {
                tracing::warn!(table = %e.table, location = %e.location, "Catalog entry with an unreadable location.");
                out.push((e, false));
                continue;
            };
            let loc = TableLoc {
                url,
                options: self.store.storage_options(),
            };
            let Some(table) = delta::open(&loc).await? else {
                out.push((e, false));
                continue;
            };
            let version = table.version().unwrap_or(0);
            if version == e.version {
                out.push((e, false));
                continue;
            }
            e.version = version;
            e.rows = delta::count_rows(&loc).await?;
            if let Some((schema, _)) = delta::query(&loc, "SELECT * FROM t LIMIT 0").await? {
                let old = std::mem::take(&mut e.schema);
                e.schema = schema
                    .fields()
                    .iter()
                    .map(|f| ColumnEntry {
                        name: f.name().clone(),
                        ty: sql_type(f.data_type()),
                        comment: old
                            .iter()
                            .find(|c| &c.name == f.name())
                            .map(|c| c.comment.clone())
                            .unwrap_or_default(),
                    })
                    .collect();
            }
            e.updated_at = self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            out.push((e, true));
        }
        Ok(out)
    }

    /// [`Lake::live_entries`] without the staleness flags: what `status` and `catalog` show.
    ///
    /// # Errors
    /// Storage or catalog errors.
    pub async fn live_tables(&self) -> Result<Vec<TableEntry>> {
        Ok(self
            .live_entries()
            .await?
            .into_iter()
            .map(|(e, _)| e)
            .collect())
    }

    /// Brings every catalog entry (local file or Glue) up to its table's Delta log, after the
    /// last commit of a command: the one place that keeps versions and row counts current
    /// whatever wrote the table (a step, a release, a purge, the ops tables written after a
    /// step registered its tables). Returns the entries.
    ///
    /// # Errors
    /// Storage or catalog errors.
    pub async fn sync_catalog(&self) -> Result<Vec<TableEntry>> {
        // Ops tables written for the first time get their full entry; the others (like every
        // table) are refreshed below only when their version moved.
        let known: Vec<String> = self
            .catalog
            .list()
            .await?
            .into_iter()
            .map(|e| e.table)
            .collect();
        self.register_ops_where(|t| !known.iter().any(|k| k == &format!("ops.{t}")))
            .await?;
        let mut entries = Vec::new();
        for (e, stale) in self.live_entries().await? {
            if stale {
                self.catalog.register(e.clone()).await?;
            }
            entries.push(e);
        }
        Ok(entries)
    }

    /// Registers the ops tables `wanted` selects (promotions, quality results, audit,
    /// forgotten, holds) with their descriptions and column comments.
    async fn register_ops_where(&self, wanted: impl Fn(&str) -> bool) -> Result<()> {
        for (table, description, comments) in [
            (ledger::books::PROMOTIONS, "The books of every batch of every step: rows in, promoted, rejected, quarantined, duplicates.", ledger::books::PROMOTIONS_COLUMNS),
            (ledger::quality::QUALITY_RESULTS, "One row per rule per batch: evaluated, passed, failed, failure rate, metric, outcome.", ledger::quality::QUALITY_RESULTS_COLUMNS),
            (crate::audit::AUDIT, "The audit trail: one row per command that changed the lake (time, actor, action, arguments with identifiers replaced by one-way tokens, table versions and row counts before and after, outcome). Append-only.", crate::audit::AUDIT_COLUMNS),
            (forgotten::FORGOTTEN, "Tombstones of students erased with `medallion forget` (SHA-256 of the pseudonym, never the pseudonym): their rows in later exports are held in quarantine.", forgotten::FORGOTTEN_COLUMNS),
            (ledger::holds::HOLDS, "One row per batch held back instead of promoted (mostly rejected or quarantined, no data rows, a foreign header): stage, counts, reason and what to do.", ledger::holds::HOLDS_COLUMNS),
        ] {
            if !wanted(table) {
                continue;
            }
            self.register(Registration {
                dataset: "medallion",
                stage: None,
                table,
                kind: table,
                description,
                contract: None,
                last_batch: None,
                comments: Some(comments),
            })
            .await?;
        }
        Ok(())
    }
}

/// What to register in the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// Dataset or product.
    pub dataset: &'a str,
    /// Stage (None for ops tables).
    pub stage: Option<Stage>,
    /// Table name within the stage.
    pub table: &'a str,
    /// data, rejects, quarantine, ...
    pub kind: &'a str,
    /// Description.
    pub description: &'a str,
    /// Contract (for column comments and version).
    pub contract: Option<&'a Contract>,
    /// Last batch written.
    pub last_batch: Option<&'a str>,
    /// Column comments of columns a contract does not describe (curated products, ops tables,
    /// rejects); they win over the contract's descriptions.
    pub comments: Option<ColumnComments>,
}

impl Registration<'_> {
    /// The catalog comment of `column`: the shared lineage/quarantine comments, then the
    /// table's own list, then the contract's description. A column with none is logged (a
    /// test asserts every shipped table has none missing) and registered with an empty comment.
    fn comment(&self, column: &str) -> String {
        let described = comment_in(SHARED_COMMENTS, column)
            .or_else(|| self.comments.and_then(|c| comment_in(c, column)))
            .map(str::to_string)
            .or_else(|| {
                let c = self.contract?;
                c.column(column)
                    .map(|col| col.description.clone())
                    .or_else(|| {
                        c.source
                            .iter()
                            .find(|s| s.name == column)
                            .map(|s| s.description.clone())
                    })
                    .filter(|d| !d.trim().is_empty())
            });
        described.unwrap_or_else(|| {
            tracing::warn!(
                table = self.table,
                column,
                "Catalog column has no comment: describe it in the contract or the table's column comments."
            );
            String::new()
        })
    }
}

fn sql_type(dt: &deltalake::arrow::datatypes::DataType) -> String {
    use deltalake::arrow::datatypes::DataType as D;
    match dt {
        D::Utf8 | D::LargeUtf8 | D::Utf8View => "string".into(),
        D::Int64 => "bigint".into(),
        D::Int32 => "int".into(),
        D::Float64 => "double".into(),
        D::Boolean => "boolean".into(),
        D::Date32 => "date".into(),
        D::Timestamp(_, _) => "timestamp".into(),
        // A partition column is scanned as a dictionary of its values.
        D::Dictionary(_, value) => sql_type(value),
        other => other.to_string().to_lowercase(),
    }
}

/// Crash-test hook: when `MEDALLION_CRASH_AT` names this point (`<step>:<point>`), the process
/// aborts here, as a power cut would. Used by the crash-and-rerun tests of the real binary;
/// without the variable it does nothing.
pub fn crash_point(step: &str, point: &str) {
    if let Ok(want) = std::env::var("MEDALLION_CRASH_AT") {
        if want == format!("{step}:{point}") {
            tracing::error!(step, point, "Crashing on purpose (MEDALLION_CRASH_AT).");
            std::process::abort();
        }
    }
}

/// A dataset ready to promote: its contract, rules and pipeline.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The contract.
    pub contract: Contract,
    /// Rules for the promotion into trusted (contract rules included).
    pub rules: RuleSet,
    /// Rules for the promotion into raw.
    pub raw_rules: RuleSet,
    /// The pipeline.
    pub pipeline: Pipeline,
}

impl Dataset {
    /// Dataset name.
    pub fn name(&self) -> &str {
        &self.contract.dataset
    }
}

/// How a step behaves in this run.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    /// Compute and report, write nothing.
    pub dry_run: bool,
    /// Promote batches that would be held (see [`hold`]): their bad rows go to rejects or
    /// quarantine as the rules say.
    pub accept_held: bool,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_partition_column_is_catalogued_as_its_values_type() {
        use deltalake::arrow::datatypes::DataType as D;
        let partition = D::Dictionary(Box::new(D::UInt16), Box::new(D::Utf8));
        assert_eq!(sql_type(&partition), "string");
        assert_eq!(sql_type(&D::Utf8View), "string");
    }

    #[test]
    fn every_shared_column_has_a_comment() {
        let shared = LINEAGE.iter().copied().chain([
            crate::rules::eval::ID_ISSUES,
            crate::rules::eval::RULE_IDS,
            crate::rules::eval::FAILURES,
        ]);
        for c in shared {
            let text = comment_in(SHARED_COMMENTS, c).unwrap_or_default();
            assert!(!text.is_empty(), "{c} has no comment");
            assert!(text.len() <= 255, "{c}: Glue keeps 255 characters");
        }
    }

    #[test]
    fn every_shipped_contract_column_has_a_description() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for ds in ["attendance", "grades", "students", "courses"] {
            let c = crate::contract::load(&root.join(format!("contracts/{ds}.yaml")))
                .expect("contract");
            let reg = Registration {
                dataset: ds,
                stage: Some(Stage::Trusted),
                table: ds,
                kind: "data",
                description: "",
                contract: Some(&c),
                last_batch: None,
                comments: None,
            };
            let columns = c
                .source
                .iter()
                .map(|s| s.name.as_str())
                .chain(c.trusted.iter().map(|t| t.name.as_str()));
            for col in columns {
                assert!(
                    !reg.comment(col).is_empty(),
                    "{ds}.{col} has no description"
                );
            }
        }
    }

    #[test]
    fn the_table_list_wins_and_an_empty_entry_falls_through() {
        const LIST: ColumnComments = &[("a", "Listed"), ("b", " ")];
        let reg = Registration {
            dataset: "d",
            stage: None,
            table: "t",
            kind: "data",
            description: "",
            contract: None,
            last_batch: None,
            comments: Some(LIST),
        };
        assert_eq!(reg.comment("a"), "Listed");
        assert_eq!(reg.comment("b"), "");
        assert_eq!(reg.comment("c"), "");
        assert_eq!(
            reg.comment(SOURCE_LINE),
            "Lineage: line in the landing file (1-based, where the record starts)"
        );
    }
}
