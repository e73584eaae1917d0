//! Quality verbs: `report`, `quarantine` (list, release, purge), `rules check | suggest`,
//! `profile`.
//!
//! Invariants: reads go through the ledger and the library (quarantine listing, the project
//! check); this file only formats; a purge or release prints what it did or, on a dry run,
//! would do.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Exit, UsageError};
use crate::project::Project;
use crate::vocab::{Stage, TableRef};

pub(super) async fn report(
    p: &Project,
    dataset: &str,
    batch: Option<&str>,
    stage: Option<super::StageArg>,
    format: super::ReportFormat,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::report::quality::QualityReport;
    if !crate::curated::PRODUCTS.contains(&dataset) {
        p.dataset(dataset)?;
    }
    let mut history = crate::ledger::history(&p.lake, dataset).await?;
    if let Some(stage) = stage {
        history
            .results
            .retain(|r| r.stage == stage.stage().as_str());
    }
    let held = crate::ledger::holds::pending(&p.lake, dataset).await?;
    let r = match QualityReport::build(dataset, &history, batch, &Default::default()) {
        Ok(probe) => {
            let samples =
                crate::ledger::quarantine_samples(&p.lake, dataset, &probe.batch_id, 5).await?;
            let mut r = QualityReport::build(dataset, &history, Some(&probe.batch_id), &samples)
                .map_err(|e| UsageError(e.to_string()))?;
            r.held = held;
            r
        }
        Err(_) if batch.is_none() && !held.is_empty() => QualityReport::held_only(dataset, held),
        Err(e) => return Err(UsageError(e.to_string()).into()),
    };
    let (text, default_path) = match format {
        super::ReportFormat::Text => (r.text(), None),
        super::ReportFormat::Json => (serde_json::to_string_pretty(&r)? + "\n", None),
        super::ReportFormat::Html => (
            r.html(),
            Some(
                p.config
                    .lake
                    .join("_reports")
                    .join(format!("{dataset}_{}.html", r.batch_id)),
            ),
        ),
    };
    match output.map(Path::to_path_buf).or(default_path) {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "Report written to {}", path.display())?;
        }
        None => write!(out, "{text}")?,
    }
    Ok(Exit::Ok)
}

pub(super) async fn quarantine_list(
    p: &Project,
    dataset: &str,
    rule: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
) -> Result<Exit> {
    let ds = p.dataset(dataset)?;
    let (total, rows) = crate::ledger::quarantined(&p.lake, ds.name(), rule, limit).await?;
    writeln!(
        out,
        "{total} quarantined row(s) in {}{}",
        TableRef::quarantine(ds.name()),
        rule.map(|r| format!(" failing {r}")).unwrap_or_default()
    )?;
    for r in rows {
        writeln!(out, "  {}:{}  {}", r.source_file, r.source_line, r.failures)?;
    }
    Ok(Exit::Ok)
}

pub(super) async fn release(
    p: &Project,
    dataset: &str,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Exit> {
    let ds = p.dataset(dataset)?;
    let r = crate::stage::trusted::release(&p.lake, &ds, dry_run).await?;
    writeln!(
        out,
        "{}: {} quarantined rows re-evaluated; {} now pass ({} new in trusted, {} corrections, {} duplicates dropped); {} still quarantined{}",
        r.dataset, r.evaluated, r.released, r.inserted, r.updated, r.duplicates_dropped, r.still_quarantined,
        if dry_run { " (dry run: nothing written)" } else { "" }
    )?;
    Ok(Exit::Ok)
}

/// `medallion quarantine purge`: deletes quarantined rows older than the retention.
pub(super) async fn purge(
    p: &Project,
    dataset: &str,
    older_than_days: Option<u32>,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Exit> {
    let ds = p.dataset(dataset)?;
    let days = older_than_days.unwrap_or(p.config.quarantine_retention_days);
    let r = crate::stage::retention::purge_quarantine(&p.lake, &ds, days, dry_run).await?;
    writeln!(
        out,
        "{}: {} quarantined rows landed before {} {}; {} remain{}",
        r.dataset,
        r.purged,
        r.cutoff.format("%Y-%m-%d %H:%M UTC"),
        if r.committed {
            format!("purged ({} files removed)", r.files_removed)
        } else if r.purged == 0 {
            "to purge".to_string()
        } else {
            "would be purged".to_string()
        },
        r.remaining,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    )?;
    Ok(Exit::Ok)
}

/// `medallion rules check`: every contract, rules file and pipeline, checked by the library.
pub(super) fn rules_check(p: &Project, out: &mut dyn Write) -> Result<Exit> {
    let c = p.check()?;
    for line in &c.ok {
        writeln!(out, "{line}")?;
    }
    if c.problems.is_empty() {
        writeln!(out, "All contracts, rules and pipelines are valid.")?;
        Ok(Exit::Ok)
    } else {
        Err(UsageError(c.problems.join("\n")).into())
    }
}

/// `medallion rules suggest`: rules proposed from a table's profile.
pub(super) async fn suggest(
    p: &Project,
    dataset: &str,
    stage: super::StageArg,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Exit> {
    let prof = load_profile(p, dataset, stage).await?;
    let yaml = prof.suggest_rules(dataset, stage.stage().as_str());
    match output {
        Some(path) => {
            std::fs::write(path, yaml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "Suggested rules written to {}: review them, then move them into quality_rules/{dataset}.yaml", path.display())?;
        }
        None => write!(out, "{yaml}")?,
    }
    Ok(Exit::Ok)
}

/// `medallion profile`: a table's column profile.
pub(super) async fn profile(
    p: &Project,
    dataset: &str,
    stage: super::StageArg,
    format: super::ReportFormat,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Exit> {
    let prof = load_profile(p, dataset, stage).await?;
    let text = match format {
        super::ReportFormat::Text => prof.text(),
        super::ReportFormat::Json => serde_json::to_string_pretty(&prof)? + "\n",
        super::ReportFormat::Html => prof.html(),
    };
    match output {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "Profile written to {}", path.display())?;
        }
        None => write!(out, "{text}")?,
    }
    Ok(Exit::Ok)
}

/// The profile of a dataset's (or curated product's) table in `stage`.
async fn load_profile(
    p: &Project,
    dataset: &str,
    stage: super::StageArg,
) -> Result<crate::profile::Profile> {
    let stage = stage.stage();
    if stage == Stage::Curated {
        if !crate::curated::PRODUCTS.contains(&dataset) {
            return Err(UsageError(format!(
                "`{dataset}` is not a curated product (products: {})",
                crate::curated::PRODUCTS.join(", ")
            ))
            .into());
        }
    } else {
        p.dataset(dataset)?;
    }
    let df = p.lake.read_table(stage, dataset).await?.ok_or_else(|| {
        UsageError(format!(
            "{stage}.{dataset} does not exist yet: promote the dataset first"
        ))
    })?;
    Ok(crate::profile::profile(&format!("{stage}.{dataset}"), &df)?)
}
