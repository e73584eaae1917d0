//! The audit trail: `ops.audit`, an append-only Delta table with one row per command that
//! changed the lake (land, promote, the step binaries, quarantine release and purge, AWS
//! bootstrap, ...): when, who, what (arguments with identifiers pseudonymised), every table
//! whose version moved (versions and row counts before and after), the outcome.
//!
//! Invariants:
//! - append-only: rows are only ever added (each with its own txn), never updated;
//! - never an identifier in clear: arguments are recorded after [`redact`], which replaces the
//!   value of every identifier flag (`--student`) with a keyed one-way token (the tombstone of
//!   its pseudonym, as `ops.forgotten` keeps it: an erased student's pseudonym is nowhere);
//! - a command is audited whatever its outcome (ok, data stopped, error), after it ran.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::lake::Lake;
use crate::stage::{Result, StepError};
use crate::storage::delta::{self, txn_id};

/// The ops table name.
pub const AUDIT: &str = "audit";

/// Columns of `ops.audit` with their catalog comments, in table order.
pub const AUDIT_COLUMNS: crate::vocab::ColumnComments = &[
    ("at", "When the command started (UTC)"),
    ("actor", "Who ran it: $MEDALLION_ACTOR when a scheduler sets it, else the OS user"),
    ("action", "The verb: land, promote, landing-to-raw, raw-to-trusted, trusted-to-curated, quarantine release, quarantine purge, forget, aws bootstrap"),
    ("arguments", "The command line as a JSON list, the value of --student replaced by a one-way token (SHA-256 of its pseudonym)"),
    ("changes", "JSON list of every table (and landing folder, as file counts) whose version or row count moved: table, before {version, rows}, after {version, rows}"),
    ("outcome", "ok, data stopped (exit 1), exit N, or error: the first line of the error"),
];

/// Flags whose value identifies a person: recorded as a pseudonym.
pub const IDENTIFIER_FLAGS: &[&str] = &["--student"];

/// A table's version and row count at one moment (`None`: it did not exist).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableState {
    /// Delta version (for landing: number of landed files).
    pub version: Option<u64>,
    /// Rows (for landing: number of landed files).
    pub rows: Option<u64>,
}

/// The lake's tables (and landing folders) at one moment.
pub type Snapshot = BTreeMap<String, TableState>;

/// How one table changed during a command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableChange {
    /// `<stage>.<table>` or `landing/<dataset>`.
    pub table: String,
    /// Before the command.
    pub before: TableState,
    /// After it.
    pub after: TableState,
}

/// One audited command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRow {
    /// When the command started (RFC 3339).
    pub at: String,
    /// Who ran it (OS user, or `$MEDALLION_ACTOR` when a scheduler sets it).
    pub actor: String,
    /// The verb (`promote`, `land`, `quarantine release`, ...).
    pub action: String,
    /// The arguments, identifiers pseudonymised.
    pub arguments: Vec<String>,
    /// Every table whose version or row count moved.
    pub changes: Vec<TableChange>,
    /// `ok`, `data stopped`, `error: <message>`.
    pub outcome: String,
}

/// Replaces the value of every identifier flag with `pseudonym(value)`.
pub fn redact(args: &[String], pseudonym: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_id = false;
    for a in args {
        if next_is_id {
            out.push(pseudonym(a));
            next_is_id = false;
            continue;
        }
        match IDENTIFIER_FLAGS
            .iter()
            .find(|f| a.starts_with(&format!("{f}=")))
        {
            Some(f) => out.push(format!("{f}={}", pseudonym(&a[f.len() + 1..]))),
            None => {
                next_is_id = IDENTIFIER_FLAGS.contains(&a.as_str());
                out.push(a.clone());
            }
        }
    }
    out
}

/// The versions and row counts of every catalogued table and the landed-file count of every
/// dataset in `datasets`.
///
/// # Errors
/// Storage or catalog errors.
pub async fn snapshot(lake: &Lake, datasets: &[String]) -> Result<Snapshot> {
    let mut s = Snapshot::new();
    for e in lake.live_tables().await? {
        s.insert(
            e.table.clone(),
            TableState {
                version: Some(e.version),
                rows: Some(e.rows),
            },
        );
    }
    for d in datasets {
        let n = lake.store.list_landed(d).await?.len() as u64;
        s.insert(
            format!("landing/{d}"),
            TableState {
                version: Some(n),
                rows: Some(n),
            },
        );
    }
    Ok(s)
}

/// The tables whose state differs between two snapshots.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<TableChange> {
    let none = TableState {
        version: None,
        rows: None,
    };
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|t| {
            let b = before.get(t).copied().unwrap_or(none);
            let a = after.get(t).copied().unwrap_or(none);
            (a != b).then(|| TableChange {
                table: t.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

fn schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("actor"),
        s("action"),
        s("arguments"),
        s("changes"),
        s("outcome"),
    ]))
}

/// Appends one row to `ops.audit`.
///
/// # Errors
/// Storage errors.
pub async fn record(lake: &Lake, started: DateTime<Utc>, row: &AuditRow) -> Result<()> {
    let loc = lake.ops_loc(AUDIT)?;
    let s = |v: String| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from(vec![started.timestamp_micros()]).with_timezone("UTC"),
        ),
        s(row.actor.clone()),
        s(row.action.clone()),
        s(json(&row.arguments)),
        s(json(&row.changes)),
        s(row.outcome.clone()),
    ];
    let batch = RecordBatch::try_new(schema(), cols).map_err(|e| StepError::Frame(e.into()))?;
    let app = txn_id(
        "audit",
        &format!(
            "{}/{}/{}",
            started.timestamp_micros(),
            std::process::id(),
            row.action
        ),
    );
    delta::append(&loc, schema(), vec![batch], &app, &[]).await?;
    Ok(())
}

/// Audit fields as JSON text (plain strings and numbers: serialising them cannot fail).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The audit rows at or after `since`, of `action` when given, oldest first.
///
/// # Errors
/// Storage errors.
pub async fn read(
    lake: &Lake,
    since: Option<DateTime<Utc>>,
    action: Option<&str>,
) -> Result<Vec<AuditRow>> {
    let mut filters = Vec::new();
    if let Some(t) = since {
        filters.push(format!(
            "at >= TIMESTAMP '{}'",
            t.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        ));
    }
    if let Some(a) = action {
        filters.push(format!("action = {}", delta::sql_literal(a)));
    }
    let sql = format!(
        "SELECT CAST(at AS VARCHAR) AS at_text, actor, action, arguments, changes, outcome FROM t{} ORDER BY at",
        if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        }
    );
    let Some((schema, batches)) = delta::query(&lake.ops_loc(AUDIT)?, &sql).await? else {
        return Ok(Vec::new());
    };
    let df = crate::frame::from_batches(&schema, &batches)?;
    let col = |c: &str| crate::frame::strings_of(&df, c);
    let (at, actor, act, args, ch, out) = (
        col("at_text")?,
        col("actor")?,
        col("action")?,
        col("arguments")?,
        col("changes")?,
        col("outcome")?,
    );
    Ok((0..df.height())
        .map(|i| AuditRow {
            at: at[i].clone(),
            actor: actor[i].clone(),
            action: act[i].clone(),
            arguments: serde_json::from_str(&args[i]).unwrap_or_default(),
            changes: serde_json::from_str(&ch[i]).unwrap_or_default(),
            outcome: out[i].clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_flags_are_pseudonymised_in_both_spellings() {
        let args: Vec<String> = [
            "forget",
            "--student",
            "S000123",
            "--student=S9",
            "--dry-run",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        let out = redact(&args, &|v| format!("p_{}", v.len()));
        assert_eq!(
            out,
            ["forget", "--student", "p_7", "--student=p_2", "--dry-run"]
        );
    }

    #[test]
    fn changes_list_only_what_moved() {
        let st = |v: u64| TableState {
            version: Some(v),
            rows: Some(v * 10),
        };
        let before = Snapshot::from([("a".to_string(), st(1)), ("b".to_string(), st(2))]);
        let after = Snapshot::from([
            ("a".to_string(), st(1)),
            ("b".to_string(), st(3)),
            ("c".to_string(), st(0)),
        ]);
        let c = changes(&before, &after);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].table, "b");
        assert_eq!(c[1].before.version, None);
    }
}
