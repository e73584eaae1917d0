//! Verbs on the project and its landing zone: `init`, `generate`, `demo`, `land`, `status`,
//! `catalog`.
//!
//! Invariants: output goes to the writer given; landing is content-addressed (the same bytes
//! land once); `status` and `catalog` show what the Delta logs say, not a possibly stale
//! catalog.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::config::{Progress, RunConfig};
use super::promote::{exit_of, print_summary, promote_all};
use super::{DemoArgs, Exit, GenerateArgs, OutputFormat, UsageError};
use crate::config;
use crate::generate::{self, GenerateOptions};
use crate::pipeline::PromoteOptions;
use crate::project::{Project, ProjectError};
use crate::report;
use crate::storage::LandOutcome;
use crate::vocab::Stage;

pub(super) fn init(dir: &Path, template: &str, out: &mut dyn Write) -> Result<Exit> {
    if !config::TEMPLATES.contains(&template) {
        return Err(UsageError(format!(
            "--template {template}: unknown template; known: {}",
            config::TEMPLATES.join(", ")
        ))
        .into());
    }
    let written = config::scaffold_template(dir, template).map_err(ProjectError::from)?;
    writeln!(
        out,
        "Project in {} ({} files written, existing files kept).",
        dir.display(),
        written.len()
    )?;
    writeln!(
        out,
        "Next: cd {} && medallion generate --out landing && medallion land attendance landing",
        dir.display()
    )?;
    Ok(Exit::Ok)
}

pub(super) fn generate(a: &GenerateArgs, out: &mut dyn Write) -> Result<Exit> {
    if !(0.0..=1.0).contains(&a.defect_rate) {
        return Err(UsageError(format!(
            "--defect-rate {} is not within 0..1",
            a.defect_rate
        ))
        .into());
    }
    let o = GenerateOptions {
        students: a.students,
        days: a.days,
        seed: a.seed,
        defect_rate: a.defect_rate,
        start: a.start,
        ..GenerateOptions::default()
    };
    let g = generate::generate(&a.out, &o)?;
    for (name, rows) in &g.files {
        writeln!(out, "{:>9} rows  {}", rows, a.out.join(name).display())?;
    }
    writeln!(
        out,
        "{} injected defects listed in {}; {} corrections",
        g.defects,
        a.out.join("defects.jsonl").display(),
        g.corrections
    )?;
    Ok(Exit::Ok)
}

pub(super) async fn land(
    p: &Project,
    dataset: &str,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> Result<Exit> {
    let ds = p.dataset(dataset)?;
    let mut paths = Vec::new();
    for f in files {
        if f.is_dir() {
            // Hive partitions are found in subfolders; lookup files of source.map come along.
            let mut found: Vec<PathBuf> = super::land_all::files_under(f)
                .with_context(|| format!("cannot list {}", f.display()))?
                .into_iter()
                .filter(|(_, name)| ds.pipeline.wants(name))
                .map(|(path, _)| path)
                .collect();
            found.sort();
            if found.is_empty() {
                writeln!(
                    out,
                    "No file in {} matches `{}`.",
                    f.display(),
                    ds.pipeline.source.pattern
                )?;
            }
            paths.extend(found);
        } else if f.is_file() {
            paths.push(f.clone());
        } else {
            return Err(UsageError(format!("{}: no such file or folder", f.display())).into());
        }
    }
    for path in paths {
        let name = crate::stage::parquet::delivered_name(&path);
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => "jsonl",
            Some("csv") => "csv",
            Some("parquet") => "parquet",
            _ => ds.pipeline.source.format.extension(),
        };
        match p
            .lake
            .store
            .land_path(dataset, &name, format, &path, p.lake.clock.now())
            .await?
        {
            LandOutcome::Landed(f) => {
                writeln!(
                    out,
                    "landed   {name} as {dataset} batch {} ({} bytes)",
                    f.batch_id(),
                    f.bytes
                )?;
            }
            LandOutcome::AlreadyLanded(f) => {
                writeln!(
                    out,
                    "skipped  {name}: same content already landed as batch {} ({})",
                    f.batch_id(),
                    f.original_name
                )?;
            }
        }
    }
    Ok(Exit::Ok)
}

pub(super) async fn status(p: &Project, format: OutputFormat, out: &mut dyn Write) -> Result<Exit> {
    let entries = p.lake.live_tables().await?;
    match format {
        OutputFormat::Text => write!(out, "{}", report::status_text(&entries))?,
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report::status_json(&entries))?
        )?,
    }
    Ok(Exit::Ok)
}

pub(super) async fn catalog(
    p: &Project,
    table: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Exit> {
    let entries = p.lake.live_tables().await?;
    let chosen: Vec<_> = match table {
        None => entries,
        Some(t) => {
            let hit: Vec<_> = entries.into_iter().filter(|e| e.table == t).collect();
            if hit.is_empty() {
                return Err(UsageError(format!(
                    "no table `{t}` in the catalog (see `medallion status`)"
                ))
                .into());
            }
            hit
        }
    };
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&chosen)?)?,
        OutputFormat::Text => {
            for e in &chosen {
                writeln!(out, "{}", report::table_text(e))?;
            }
        }
    }
    Ok(Exit::Ok)
}

pub(super) async fn demo(rc: &RunConfig, a: &DemoArgs, out: &mut dyn Write) -> Result<Exit> {
    let root = match &rc.project {
        Some(root) => {
            let root = root.clone();
            if !root.join(config::CONFIG_FILE).is_file() {
                config::scaffold(&root).map_err(ProjectError::from)?;
            }
            root
        }
        None => match config::find_project(&rc.cwd) {
            Ok(r) => r,
            Err(_) => {
                let root = rc.cwd.join("medallion-demo");
                config::scaffold(&root).map_err(ProjectError::from)?;
                writeln!(out, "No project here: created one in {}", root.display())?;
                root
            }
        },
    };
    let p = rc.open_at(&root).await?;
    let inbox = root.join("landing-inbox");
    // The demo's term ends yesterday, so freshness rules see fresh data.
    let start = p.lake.clock.now().date_naive() - chrono::Duration::days(i64::from(a.days));
    let o = GenerateOptions {
        students: a.students,
        days: a.days,
        defect_rate: a.defect_rate,
        start,
        ..GenerateOptions::default()
    };
    let g = generate::generate(&inbox, &o)?;
    writeln!(
        out,
        "Generated {} exports in {} ({} injected defects).",
        g.files.len(),
        inbox.display(),
        g.defects
    )?;
    let datasets = p.datasets()?;
    for d in &datasets {
        land(&p, d, std::slice::from_ref(&inbox), &mut std::io::sink()).await?;
    }
    let opts = PromoteOptions {
        to: Stage::Curated,
        dry_run: false,
        accept_held: false,
    };
    let progress = Progress {
        draw: super::progress::enabled(false),
        colour: rc.progress.colour,
    };
    let s = promote_all(&p, &datasets, opts, progress).await?;
    print_summary(&s, OutputFormat::Text, out)?;
    writeln!(out)?;
    status(&p, OutputFormat::Text, out).await?;
    writeln!(
        out,
        "\nLake: {}\nCatalog: {}\nMetrics: {}",
        p.config.lake.display(),
        p.config.lake.join("_catalog/catalog.json").display(),
        p.config.lake.join("_metrics/metrics.jsonl").display()
    )?;
    Ok(exit_of(&s))
}
