//! `medallion scan`: the privacy verbs' command-line side (thin: the work is in
//! [`crate::privacy`]).

use std::io::Write;

use anyhow::Result;

use super::{Exit, OutputFormat, StageArg};
use crate::project::Project;

/// Scans landing and every table (of `stage` only, when given) for identifiers in clear; exit 1
/// when any table past landing holds any (raw included: it is pseudonymised on the way in).
///
/// # Errors
/// Project, storage or output errors.
pub async fn scan(
    p: &Project,
    stage: Option<StageArg>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Exit> {
    let mut contracts = Vec::new();
    for name in p.datasets()? {
        contracts.push(p.dataset(&name)?.contract);
    }
    let tables: Vec<_> = p
        .lake
        .live_tables()
        .await?
        .into_iter()
        .filter(|e| stage.is_none_or(|s| e.stage == s.stage().as_str()))
        .collect();
    let mut r = crate::privacy::scan::scan(&p.lake, &contracts, &tables).await?;
    if stage.is_some() {
        r.findings.retain(|f| f.stage != "landing");
    }
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?,
        OutputFormat::Text => {
            writeln!(
                out,
                "Scanned {} landed files and {} tables for {} known direct identifiers (values never shown).",
                r.landing_files_scanned, r.tables_scanned, r.known_identifiers
            )?;
            let landing: Vec<_> = r.findings.iter().filter(|f| f.stage == "landing").collect();
            if !landing.is_empty() {
                writeln!(out, "In landing (expected: exports arrive in clear):")?;
                for f in landing {
                    writeln!(out, "  {:<28} {:<20} {:>8}", f.table, f.column, f.count)?;
                }
            }
            let past: Vec<_> = r.past_landing().collect();
            if past.is_empty() {
                writeln!(out, "Past landing: no identifier in clear.")?;
            } else {
                writeln!(out, "Past landing (identifiers in clear):")?;
                writeln!(
                    out,
                    "  {:<36} {:<20} {:<14} {:>8}",
                    "table", "column", "kind", "values"
                )?;
                for f in past {
                    let kind = serde_json::to_value(f.kind)?;
                    writeln!(
                        out,
                        "  {:<36} {:<20} {:<14} {:>8}",
                        f.table,
                        f.column,
                        kind.as_str().unwrap_or_default(),
                        f.count
                    )?;
                }
            }
        }
    }
    Ok(if r.leaks() {
        Exit::DataStopped
    } else {
        Exit::Ok
    })
}

/// `medallion forget --student ID`.
///
/// # Errors
/// Project, storage or output errors.
pub async fn forget(
    p: &Project,
    student: &str,
    dry_run: bool,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Exit> {
    if student.trim().is_empty() {
        return Err(super::UsageError("--student needs the student's id".into()).into());
    }
    let mut datasets = Vec::new();
    for name in p.datasets()? {
        datasets.push(p.dataset(&name)?);
    }
    let r =
        crate::privacy::forget::forget(&p.lake, &datasets, &p.curated()?, student, dry_run).await?;
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?,
        OutputFormat::Text => {
            let verb = if dry_run { "would erase" } else { "erased" };
            if r.tables.is_empty() && r.landing.is_empty() {
                writeln!(out, "Nothing in the lake mentions that student.")?;
            }
            for (table, n) in &r.tables {
                writeln!(out, "{verb} {n:>6} rows from {table}")?;
            }
            for l in &r.landing {
                writeln!(
                    out,
                    "{verb} {:>6} lines from landing/{} file {} (batch {})",
                    l.lines.len(),
                    l.dataset,
                    l.source_file,
                    l.batch_id
                )?;
            }
            if !r.courses.is_empty() {
                writeln!(
                    out,
                    "{} curated rows of {} course(s)",
                    if dry_run {
                        "would recompute"
                    } else {
                        "recomputed"
                    },
                    r.courses.len()
                )?;
            }
            if r.committed {
                writeln!(
                    out,
                    "removed {} superseded files and {} old object versions: no earlier version holds the student",
                    r.files_removed, r.versions_removed
                )?;
            }
        }
    }
    Ok(Exit::Ok)
}
