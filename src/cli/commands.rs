//! What each verb does. Output goes to the writer `main` passes in; logs go to tracing.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{
    Cli, Command, DemoArgs, Exit, GenerateArgs, OutputFormat, PromoteArgs, QueryArgs, QueryFormat,
    StepCli, TargetStage, UsageError,
};
use crate::config;
use crate::generate::{self, GenerateOptions};
use crate::pipeline::{self, PromoteOptions, PromotionSummary};
use crate::project::{Project, ProjectError};
use crate::report;
use crate::stage::StepError;
use crate::storage::{LandOutcome, Stage};

/// Maps an error to its exit code by what it is, not by its text.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(StepError::Stopped { .. }) = cause.downcast_ref::<StepError>() {
            return Exit::DataStopped;
        }
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<clap::Error>().is_some()
        {
            return Exit::Usage;
        }
        if let Some(q) = cause.downcast_ref::<crate::query::QueryError>() {
            return match q {
                crate::query::QueryError::Table { .. } => Exit::Backend,
                _ => Exit::Usage,
            };
        }
        if let Some(p) = cause.downcast_ref::<ProjectError>() {
            return match p {
                ProjectError::Storage(_) | ProjectError::Aws(_) => Exit::Backend,
                _ => Exit::Usage,
            };
        }
    }
    Exit::Backend
}

fn project_root(flag: Option<&Path>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    match flag {
        Some(p) => Ok(cwd.join(p)),
        None => Ok(config::find_project(&cwd).map_err(ProjectError::from)?),
    }
}

pub(super) async fn open(flag: Option<&Path>) -> Result<Project> {
    Ok(Project::open(&project_root(flag)?).await?)
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command met; [`exit_for`] maps it to an exit code.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit> {
    match super::audit::action_of(&cli.command) {
        Some(action) => {
            super::audit::audited(cli.project.clone(), action, dispatch(cli, out)).await
        }
        None => dispatch(cli, out).await,
    }
}

async fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<Exit> {
    let project = cli.project.as_deref();
    match cli.command {
        Command::Init { dir, template } => init(&dir, &template, out),
        Command::Evaluate {
            what: super::EvaluateWhat::AtRisk(args),
        } => evaluate_at_risk(project, &args, out).await,
        Command::Demo(args) => demo(project, &args, out).await,
        Command::Generate(args) => gen(&args, out),
        Command::Land {
            dataset,
            files,
            all,
        } => match (all, dataset) {
            (Some(dir), _) => super::land_all::land_all(&open(project).await?, &dir, out).await,
            (None, Some(dataset)) => land(&open(project).await?, &dataset, &files, out).await,
            (None, None) => Err(UsageError("name a dataset or --all DIR".into()).into()),
        },
        Command::Promote(args) => {
            let progress = super::progress::enabled(cli.quiet);
            promote(&open(project).await?, &args, progress, out).await
        }
        Command::Status { format } => status(&open(project).await?, format, out).await,
        Command::Report {
            dataset,
            batch,
            stage,
            format,
            output,
        } => {
            report_cmd(
                &open(project).await?,
                &dataset,
                batch.as_deref(),
                stage,
                format,
                output.as_deref(),
                out,
            )
            .await
        }
        Command::Quarantine {
            dataset,
            rule,
            limit,
            action,
        } => match action {
            Some(super::QuarantineAction::Release { dataset, dry_run }) => {
                release(&open(project).await?, &dataset, dry_run, out).await
            }
            Some(super::QuarantineAction::Purge {
                dataset,
                older_than_days,
                dry_run,
            }) => {
                let p = open(project).await?;
                let ds = p.dataset(&dataset)?;
                let days = older_than_days.unwrap_or(p.config.quarantine_retention_days);
                let r =
                    crate::stage::retention::purge_quarantine(&p.lake, &ds, days, dry_run).await?;
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
            None => {
                let dataset = dataset.ok_or_else(|| {
                    UsageError("give a dataset: medallion quarantine DATASET".into())
                })?;
                quarantine_list(&open(project).await?, &dataset, rule.as_deref(), limit, out).await
            }
        },
        Command::Rules {
            action: super::RulesAction::Check,
        } => rules_check(&open(project).await?, out),
        Command::Rules {
            action:
                super::RulesAction::Suggest {
                    dataset,
                    stage,
                    output,
                },
        } => {
            let p = open(project).await?;
            let prof = load_profile(&p, &dataset, stage).await?;
            let yaml = prof.suggest_rules(&dataset, stage.stage().as_str());
            match output {
                Some(path) => {
                    std::fs::write(&path, yaml)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    writeln!(out, "Suggested rules written to {}: review them, then move them into quality_rules/{dataset}.yaml", path.display())?;
                }
                None => write!(out, "{yaml}")?,
            }
            Ok(Exit::Ok)
        }
        Command::Profile {
            dataset,
            stage,
            format,
            output,
        } => {
            let p = open(project).await?;
            let prof = load_profile(&p, &dataset, stage).await?;
            let text = match format {
                super::ReportFormat::Text => prof.text(),
                super::ReportFormat::Json => serde_json::to_string_pretty(&prof)? + "\n",
                super::ReportFormat::Html => prof.html(),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    writeln!(out, "Profile written to {}", path.display())?;
                }
                None => write!(out, "{text}")?,
            }
            Ok(Exit::Ok)
        }
        #[cfg(feature = "aws")]
        Command::Aws { action } => aws_cmd(&project_root(project)?, action, out).await,
        Command::Query(args) => query(&open(project).await?, &args, out).await,
        Command::Scan { stage, format } => {
            super::privacy::scan(&open(project).await?, stage, format, out).await
        }
        Command::Forget {
            student,
            dry_run,
            format,
        } => super::privacy::forget(&open(project).await?, &student, dry_run, format, out).await,
        Command::Audit {
            since,
            action,
            format,
        } => {
            super::audit::show(
                &open(project).await?,
                since.as_deref(),
                action.as_deref(),
                format,
                out,
            )
            .await
        }
        Command::Dashboard { action } => {
            super::dashboard::dashboard(&open(project).await?, action, out).await
        }
        Command::Serve(args) => super::dashboard::serve(&open(project).await?, &args, out).await,
        Command::Watch(args) => {
            super::watch::run(&open(project).await?, &args, cli.quiet, out).await
        }
        Command::Alerts {
            since,
            open: only_open,
            format,
        } => {
            super::alerts::show(
                &open(project).await?,
                since.as_deref(),
                only_open,
                format,
                out,
            )
            .await
        }
        Command::Catalog { table, format } => {
            catalog(&open(project).await?, table.as_deref(), format, out).await
        }
    }
}

fn init(dir: &Path, template: &str, out: &mut dyn Write) -> Result<Exit> {
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

async fn evaluate_at_risk(
    project: Option<&Path>,
    a: &super::EvaluateArgs,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::evaluate;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let settings = match (&a.settings, project) {
        (Some(f), _) => Some(cwd.join(f)),
        (None, Some(p)) => Some(cwd.join(p).join("pipelines/curated/products.yaml")),
        (None, None) => config::find_project(&cwd)
            .ok()
            .map(|root| root.join("pipelines/curated/products.yaml"))
            .filter(|p| p.is_file()),
    };
    let cfg = match &settings {
        Some(f) => crate::curated::CuratedConfig::load(f).map_err(|e| UsageError(e.to_string()))?,
        None => crate::yaml::parse(
            Path::new("templates/oulad/products.yaml"),
            config::OULAD_PRODUCTS,
        )
        .map_err(|e| UsageError(e.to_string()))?,
    };
    let (o, source) = match &a.data {
        Some(data) => {
            let data = cwd.join(data);
            let o = evaluate::Oulad::load(&data, a.as_of_day, &a.presentation)
                .await
                .map_err(|e| UsageError(e.to_string()))?;
            (o, data.display().to_string())
        }
        None => {
            let p = open(project).await?;
            let o = evaluate::Oulad::from_lake(&p.lake, a.as_of_day, &a.presentation)
                .await
                .map_err(|e| UsageError(e.to_string()))?;
            (
                o,
                format!("the lake's trusted tables ({})", p.config.root.display()),
            )
        }
    };
    let used = settings.map_or_else(
        || "the OULAD template's settings".to_string(),
        |p| p.display().to_string(),
    );
    if a.fit {
        let f = evaluate::fit(&o, a.as_of_day, &cfg)?;
        match a.format {
            OutputFormat::Text => write!(out, "{}", evaluate::fit_text(&f))?,
            OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&f)?)?,
        }
        return Ok(Exit::Ok);
    }
    let e = evaluate::at_risk(&o, a.as_of_day, &cfg)?;
    match a.format {
        OutputFormat::Text => {
            write!(out, "{}", evaluate::text(&e))?;
            writeln!(out, "Data: {source}")?;
            writeln!(out, "Settings: {used}")?;
        }
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?,
    }
    Ok(Exit::Ok)
}

fn gen(a: &GenerateArgs, out: &mut dyn Write) -> Result<Exit> {
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
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = crate::stage::parquet::delivered_name(&path);
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => "jsonl",
            Some("csv") => "csv",
            Some("parquet") => "parquet",
            _ => ds.pipeline.source.format.extension(),
        };
        match p.lake.store.land(dataset, &name, format, &bytes).await? {
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

async fn promote_all(
    p: &Project,
    datasets: &[String],
    opts: PromoteOptions,
    progress: bool,
) -> Result<PromotionSummary> {
    use super::progress::{rows, Step};
    let mut summary = PromotionSummary::default();
    for name in datasets {
        let ds = p.dataset(name)?;
        for stage in [Stage::Raw, Stage::Trusted] {
            if opts.to < stage {
                continue;
            }
            let step = Step::start(progress, &format!("{name} → {stage}"));
            let s = pipeline::promote_step(&p.lake, &ds, stage, opts).await?;
            step.finish(rows(&s));
            summary.extend(s);
        }
    }
    if opts.to == Stage::Curated {
        let step = Step::start(progress, "curated products and alerts");
        let s = pipeline::promote_curated(&p.lake, &p.curated()?, opts.dry_run).await?;
        step.finish(rows(&s));
        summary.extend(s);
    }
    Ok(summary)
}

pub(super) fn print_summary(
    s: &PromotionSummary,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        OutputFormat::Text => write!(out, "{}", report::promotion_text(s))?,
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(s)?)?,
    }
    Ok(())
}

async fn promote(
    p: &Project,
    a: &PromoteArgs,
    progress: bool,
    out: &mut dyn Write,
) -> Result<Exit> {
    let datasets = if a.all {
        p.datasets()?
    } else {
        a.datasets.clone()
    };
    let to = match a.to {
        TargetStage::Raw => Stage::Raw,
        TargetStage::Trusted => Stage::Trusted,
        TargetStage::Curated => Stage::Curated,
    };
    let opts = PromoteOptions {
        to,
        dry_run: a.dry_run,
        accept_held: a.accept_held,
    };
    let s = promote_all(p, &datasets, opts, progress).await?;
    print_summary(&s, a.format, out)?;
    Ok(exit_of(&s))
}

/// 3 when the books do not balance, 1 when a batch was held back, else 0.
fn exit_of(s: &PromotionSummary) -> Exit {
    if !s.balanced() {
        Exit::Backend
    } else if s.held() {
        Exit::DataStopped
    } else {
        Exit::Ok
    }
}

async fn status(p: &Project, format: OutputFormat, out: &mut dyn Write) -> Result<Exit> {
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

async fn catalog(
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

async fn demo(flag: Option<&Path>, a: &DemoArgs, out: &mut dyn Write) -> Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let root = match flag {
        Some(p) => {
            let root = cwd.join(p);
            if !root.join(config::CONFIG_FILE).is_file() {
                config::scaffold(&root).map_err(ProjectError::from)?;
            }
            root
        }
        None => match config::find_project(&cwd) {
            Ok(r) => r,
            Err(_) => {
                let root = cwd.join("medallion-demo");
                config::scaffold(&root).map_err(ProjectError::from)?;
                writeln!(out, "No project here: created one in {}", root.display())?;
                root
            }
        },
    };
    let p = Project::open(&root).await?;
    let inbox = root.join("landing-inbox");
    // The demo's term ends yesterday, so freshness rules see fresh data.
    let start = chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(a.days));
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
    let s = promote_all(&p, &datasets, opts, super::progress::enabled(false)).await?;
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

pub(super) fn render(
    schema: &deltalake::arrow::datatypes::SchemaRef,
    batches: &[deltalake::arrow::array::RecordBatch],
    format: QueryFormat,
    out: &mut dyn Write,
) -> Result<()> {
    use deltalake::arrow;
    match format {
        QueryFormat::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "(no rows; columns: {})", names.join(", "))?;
            } else {
                writeln!(
                    out,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(batches)?
                )?;
            }
        }
        QueryFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for b in batches {
                w.write(b)?;
            }
        }
        QueryFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            let refs: Vec<&arrow::array::RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)?;
            w.finish()?;
            writeln!(out)?;
        }
    }
    Ok(())
}

async fn query(p: &Project, a: &QueryArgs, out: &mut dyn Write) -> Result<Exit> {
    use crate::query::{self as q, AsOf, Engine};
    let as_of = match &a.as_of {
        Some(s) => AsOf::parse(s).map_err(|e| UsageError(e.to_string()))?,
        None => AsOf::Latest,
    };
    let mut params = std::collections::BTreeMap::new();
    for kv in &a.params {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--param `{kv}` is not KEY=VALUE")))?;
        params.insert(k.to_string(), v.to_string());
    }
    let sql = match (&a.sql, &a.named) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(n)) => Some(
            q::named(&p.config.catalog.join("queries"), n, &params)
                .map_err(|e| UsageError(e.to_string()))?,
        ),
        (None, None) => None,
    };
    let athena = match a.engine {
        super::QueryEngine::Athena => true,
        super::QueryEngine::Local => false,
        super::QueryEngine::Auto => p.config.backend == crate::config::Backend::Aws,
    };
    if athena {
        let sql = sql.ok_or_else(|| {
            UsageError("the shell runs on the embedded engine: add --engine local".into())
        })?;
        if a.as_of.is_some() {
            return Err(
                UsageError("--as-of needs the embedded engine (--engine local)".into()).into(),
            );
        }
        return athena_query(p, &sql, a, out).await;
    }
    let entries = p.lake.catalog.list().await?;
    let engine = Engine::new(&entries, &p.lake.store.storage_options(), as_of).await?;
    let Some(sql) = sql else {
        return super::shell::run(
            &engine,
            &entries,
            a.format,
            &p.config.root.join(".medallion/query_history"),
            out,
        )
        .await;
    };
    let (schema, batches) = engine.sql(&sql).await?;
    match &a.output {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            render(&schema, &batches, a.format, &mut f)?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            writeln!(out, "{rows} rows written to {}", path.display())?;
        }
        None => render(&schema, &batches, a.format, out)?,
    }
    Ok(Exit::Ok)
}

#[cfg(feature = "aws")]
async fn athena_query(p: &Project, sql: &str, a: &QueryArgs, out: &mut dyn Write) -> Result<Exit> {
    use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    let cfg =
        p.config.aws.clone().ok_or_else(|| {
            UsageError("Athena needs the `aws:` section in medallion.yaml".into())
        })?;
    let aws = crate::aws::Aws::new(&cfg).await;
    let r = crate::aws::athena::run(&aws, sql).await?;
    let schema = std::sync::Arc::new(Schema::new(
        r.columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = (0..r.columns.len())
        .map(|i| {
            std::sync::Arc::new(StringArray::from(
                r.rows
                    .iter()
                    .map(|row| row.get(i).cloned().flatten())
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let batch = if r.columns.is_empty() {
        RecordBatch::new_empty(schema.clone())
    } else {
        RecordBatch::try_new(schema.clone(), cols)?
    };
    let cost = match &p.lake.prices {
        Some(prices) => format!(
            "estimated cost ${:.6}",
            prices.athena_query(u64::try_from(r.bytes_scanned).unwrap_or(0))
        ),
        None => "no price table (catalog/prices.yaml) for a cost estimate".to_string(),
    };
    let stats = format!(
        "Athena {}: {} rows, {} bytes scanned, {cost}",
        r.query_id,
        r.rows.len(),
        r.bytes_scanned,
    );
    match &a.output {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            render(&schema, &[batch], a.format, &mut f)?;
            writeln!(out, "{stats}; written to {}", path.display())?;
        }
        None => {
            render(&schema, &[batch], a.format, out)?;
            if a.format == QueryFormat::Table {
                writeln!(out, "{stats}")?;
            } else {
                eprintln!("{stats}");
            }
        }
    }
    Ok(Exit::Ok)
}

#[cfg(not(feature = "aws"))]
async fn athena_query(
    _p: &Project,
    _sql: &str,
    _a: &QueryArgs,
    _out: &mut dyn Write,
) -> Result<Exit> {
    Err(UsageError("this medallion was built without the `aws` feature".into()).into())
}

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
    let loc = p.lake.loc(stage, dataset)?;
    let (schema, batches) = crate::storage::delta::query(&loc, "SELECT * FROM t")
        .await?
        .ok_or_else(|| {
            UsageError(format!(
                "{stage}.{dataset} does not exist yet: promote the dataset first"
            ))
        })?;
    let df = crate::frame::from_batches(&schema, &batches)?;
    Ok(crate::profile::profile(&format!("{stage}.{dataset}"), &df)?)
}

async fn report_cmd(
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
    let mut history = crate::stage::ops::history(&p.lake, dataset).await?;
    if let Some(stage) = stage {
        history
            .results
            .retain(|r| r.stage == stage.stage().as_str());
    }
    let held = crate::stage::hold::pending(&p.lake, dataset).await?;
    let r = match QualityReport::build(dataset, &history, batch, &Default::default()) {
        Ok(probe) => {
            let samples =
                crate::stage::ops::quarantine_samples(&p.lake, dataset, &probe.batch_id, 5).await?;
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

async fn quarantine_list(
    p: &Project,
    dataset: &str,
    rule: Option<&str>,
    limit: usize,
    out: &mut dyn Write,
) -> Result<Exit> {
    let ds = p.dataset(dataset)?;
    let loc = p
        .lake
        .loc(Stage::Trusted, &format!("{}_quarantine", ds.name()))?;
    let filter = match rule {
        Some(r) => format!(
            "WHERE concat(',', _rule_ids, ',') LIKE '%,{},%'",
            r.replace('\'', "''").replace('%', "")
        ),
        None => String::new(),
    };
    let count_sql = format!("SELECT count(*) AS n FROM t {filter}");
    let total = match crate::storage::delta::query(&loc, &count_sql).await? {
        Some((s, b)) => crate::frame::from_batches(&s, &b)?
            .column("n")?
            .i64()?
            .get(0)
            .unwrap_or(0),
        None => 0,
    };
    writeln!(
        out,
        "{total} quarantined row(s) in trusted.{}_quarantine{}",
        ds.name(),
        rule.map(|r| format!(" failing {r}")).unwrap_or_default()
    )?;
    let sql = format!("SELECT _source_file, _source_line, _batch_id, _rule_ids, _failures FROM t {filter} ORDER BY _batch_id, _source_line LIMIT {limit}");
    if let Some((schema, batches)) = crate::storage::delta::query(&loc, &sql).await? {
        let df = crate::frame::from_batches(&schema, &batches)?;
        let files = df.column("_source_file")?.str()?.clone();
        let lines = df.column("_source_line")?.i64()?.clone();
        let fails = df.column("_failures")?.str()?.clone();
        for i in 0..df.height() {
            writeln!(
                out,
                "  {}:{}  {}",
                files.get(i).unwrap_or_default(),
                lines.get(i).unwrap_or_default(),
                fails.get(i).unwrap_or_default()
            )?;
        }
    }
    Ok(Exit::Ok)
}

async fn release(p: &Project, dataset: &str, dry_run: bool, out: &mut dyn Write) -> Result<Exit> {
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

fn rules_check(p: &Project, out: &mut dyn Write) -> Result<Exit> {
    let mut problems = Vec::new();
    let datasets = p.datasets()?;
    for d in &datasets {
        match p.dataset(d) {
            Ok(ds) => writeln!(
                out,
                "ok  {d}: contract v{}, {} raw rules, {} trusted rules ({} from the contract)",
                ds.contract.version,
                ds.raw_rules.rules.len(),
                ds.rules.rules.len(),
                ds.rules
                    .rules
                    .iter()
                    .filter(|r| r.id.starts_with("contract."))
                    .count()
            )?,
            Err(e) => problems.push(e.to_string()),
        }
    }
    match p.curated() {
        Ok(cfg) => product_rules_check(p, &cfg, &mut problems, out)?,
        Err(e) => problems.push(e.to_string()),
    }
    // A rules file nobody reads is a mistake worth naming.
    if let Ok(entries) = std::fs::read_dir(&p.config.quality_rules) {
        for e in entries.flatten() {
            let path = e.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if yaml
                && !datasets.iter().any(|d| d == stem)
                && !crate::curated::PRODUCTS.contains(&stem)
            {
                problems.push(format!(
                    "{}: no dataset or curated product is named `{stem}` (datasets: {}; products: {})",
                    path.display(),
                    datasets.join(", "),
                    crate::curated::PRODUCTS.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        writeln!(out, "All contracts, rules and pipelines are valid.")?;
        Ok(Exit::Ok)
    } else {
        Err(UsageError(problems.join("\n")).into())
    }
}

/// Checks each curated product's rules file against the product's columns.
fn product_rules_check(
    p: &Project,
    cfg: &crate::curated::CuratedConfig,
    problems: &mut Vec<String>,
    out: &mut dyn Write,
) -> Result<()> {
    let contract = |d: &str| p.dataset(d).map(|ds| ds.contract);
    let (Ok(att), Ok(gr), Ok(st)) = (
        contract("attendance"),
        contract("grades"),
        contract("students"),
    ) else {
        // Already reported above.
        return Ok(());
    };
    for product in crate::curated::PRODUCTS {
        let path = p.config.quality_rules.join(format!("{product}.yaml"));
        if !path.exists() {
            continue;
        }
        let engagement = contract("engagement").ok();
        let columns = match crate::curated::rules::product_columns(
            product,
            cfg,
            &att,
            &gr,
            &st,
            engagement.as_ref(),
        ) {
            Ok(c) => c,
            // A product over a dataset this project does not have (engagement) is not built.
            Err(_) if engagement.is_none() => continue,
            Err(e) => return Err(e.into()),
        };
        match crate::rules::RuleSet::load_product(&path, product, &columns) {
            Ok(rs) => writeln!(out, "ok  {product}: {} curated rules", rs.rules.len())?,
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok(())
}

#[cfg(feature = "aws")]
async fn aws_cmd(root: &Path, action: super::AwsAction, out: &mut dyn Write) -> Result<Exit> {
    use crate::aws::{setup, Aws};
    let config = crate::config::ProjectConfig::load(root).map_err(ProjectError::from)?;
    let cfg = config.aws.clone().ok_or_else(|| {
        UsageError(format!(
            "{}: add an `aws:` section (and `backend: aws`) first",
            root.join(config::CONFIG_FILE).display()
        ))
    })?;
    let aws = Aws::new(&cfg).await;
    match action {
        super::AwsAction::Bootstrap { dry_run } => {
            for c in setup::bootstrap(
                &aws,
                &config.catalog.join("alarms.yaml"),
                &config.pipelines.join(crate::alerts::FILE),
                dry_run,
            )
            .await?
            {
                writeln!(out, "{c}")?;
            }
            Ok(Exit::Ok)
        }
        super::AwsAction::Doctor => {
            let p = Project::open(root).await?;
            let checks = setup::doctor(
                &aws,
                p.lake.catalog.as_ref(),
                &p.lake.store.storage_options(),
            )
            .await?;
            let drift = checks
                .iter()
                .filter(|c| matches!(c, setup::Check::Drift(_)))
                .count();
            for c in &checks {
                writeln!(out, "{c}")?;
            }
            if drift == 0 {
                writeln!(out, "No drift.")?;
                Ok(Exit::Ok)
            } else {
                writeln!(
                    out,
                    "{drift} problem(s): run `medallion aws bootstrap` to fix what it manages."
                )?;
                Ok(Exit::Backend)
            }
        }
        super::AwsAction::Policies => {
            let arn = aws.key_arn().await.unwrap_or_else(|_| {
                format!("arn:aws:kms:{}:ACCOUNT:{}", cfg.region, cfg.kms_key_alias)
            });
            let mut doc = setup::role_policies(&aws, &arn);
            let buckets: serde_json::Map<String, serde_json::Value> = crate::aws::BUCKETS
                .iter()
                .map(|b| (aws.bucket(b), setup::bucket_policy(&aws.bucket(b))))
                .collect();
            doc["bucket_policies"] = serde_json::Value::Object(buckets);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            Ok(Exit::Ok)
        }
    }
}

/// Entry of the stage binaries: runs one step for the given (or all) datasets.
///
/// # Errors
/// As [`run`].
pub async fn run_step(cli: StepCli, to: Stage, out: &mut dyn Write) -> Result<Exit> {
    if cli.dry_run {
        return step(cli, to, out).await;
    }
    let action = match to {
        Stage::Raw => "landing-to-raw",
        Stage::Trusted => "raw-to-trusted",
        _ => "trusted-to-curated",
    };
    super::audit::audited(cli.project.clone(), action, step(cli, to, out)).await
}

async fn step(cli: StepCli, to: Stage, out: &mut dyn Write) -> Result<Exit> {
    let p = open(cli.project.as_deref()).await?;
    let datasets = if cli.datasets.is_empty() {
        p.datasets()?
    } else {
        cli.datasets.clone()
    };
    let mut summary = PromotionSummary::default();
    if to == Stage::Curated {
        let s = pipeline::promote_curated(&p.lake, &p.curated()?, cli.dry_run).await?;
        print_summary(&s, cli.format, out)?;
        return Ok(Exit::Ok);
    }
    for name in &datasets {
        let ds = p.dataset(name)?;
        let opts = PromoteOptions {
            to,
            dry_run: cli.dry_run,
            accept_held: cli.accept_held,
        };
        summary.extend(pipeline::promote_step(&p.lake, &ds, to, opts).await?);
    }
    print_summary(&summary, cli.format, out)?;
    Ok(exit_of(&summary))
}
