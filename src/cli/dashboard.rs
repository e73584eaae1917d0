//! `medallion dashboard list|build|deploy` and `medallion serve`: thin handlers over
//! [`crate::dashboard`].

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{DashboardAction, Exit, OutputFormat, ServeArgs, UsageError};
use crate::dashboard::{self, data, site, spec, DashboardError};
use crate::project::Project;

/// Maps a dashboard error to the CLI's: invalid definitions are usage errors (exit 2).
fn usage(e: DashboardError) -> anyhow::Error {
    match e {
        DashboardError::Invalid(_) | DashboardError::Unknown { .. } => {
            UsageError(e.to_string()).into()
        }
        other => other.into(),
    }
}

/// Validated dashboards with their data, read through the curated-only engine.
/// The dashboards named (every one when empty), with what reading their data needs.
struct Loaded {
    entries: Vec<crate::catalog::TableEntry>,
    engine: crate::query::Engine,
    queries: std::path::PathBuf,
    dashboards: Vec<dashboard::Dashboard>,
    small_cell_min: u32,
}

async fn load(p: &Project, names: &[String]) -> Result<Loaded> {
    let entries = readable_entries(p).await?;
    let engine = data::engine(&entries, &p.lake.store.storage_options()).await?;
    let queries = p.config.catalog.join("queries");
    let dashboards = dashboard::load(&p.config.dashboards, &queries, names, &engine)
        .await
        .map_err(usage)?;
    Ok(Loaded {
        entries,
        engine,
        queries,
        dashboards,
        small_cell_min: p.curated()?.small_cell_min,
    })
}

async fn load_with_data(
    p: &Project,
    names: &[String],
) -> Result<Vec<(dashboard::Dashboard, data::DashboardData)>> {
    let l = load(p, names).await?;
    let mut out = Vec::new();
    for d in l.dashboards {
        let data = data::fetch(&l.engine, &d, &l.queries, l.small_cell_min, &l.entries).await?;
        out.push((d, data));
    }
    Ok(out)
}

/// The catalog's entries, or a usage error when no curated table exists yet.
async fn readable_entries(p: &Project) -> Result<Vec<crate::catalog::TableEntry>> {
    // Versions and row counts from the Delta logs: the page states what it holds.
    let entries = p.lake.live_tables().await?;
    if !entries.iter().any(|e| e.stage == "curated") {
        return Err(UsageError(format!(
            "the lake in {} has no curated tables yet: dashboards read curated data, so run `medallion promote --all` first",
            p.config.lake.display()
        ))
        .into());
    }
    Ok(entries)
}

fn built_at(p: &Project) -> String {
    p.lake.clock.now().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `medallion dashboard ...`.
///
/// # Errors
/// Invalid definitions (exit 2), lake or AWS errors.
pub async fn dashboard(p: &Project, action: DashboardAction, out: &mut dyn Write) -> Result<Exit> {
    match action {
        DashboardAction::List { format } => list(p, format, out),
        DashboardAction::Build { names, out: dir } => {
            let loaded = load_with_data(p, &names).await?;
            let s = site::build(&loaded, &built_at(p));
            s.write(&dir).map_err(usage)?;
            for (d, data) in &loaded {
                let rows: usize = data.datasets.values().map(|r| r.rows.len()).sum();
                let tables: Vec<String> = data
                    .tables
                    .iter()
                    .map(|(t, v)| format!("{t} v{v}"))
                    .collect();
                writeln!(
                    out,
                    "{}.html  {}: {} visuals, {rows} rows inlined from {}",
                    d.name,
                    d.spec.title,
                    d.visuals().count(),
                    tables.join(", ")
                )?;
            }
            writeln!(
                out,
                "Site written to {} (open {}; it needs no network)",
                dir.display(),
                dir.join("index.html").display()
            )?;
            Ok(Exit::Ok)
        }
        DashboardAction::Deploy { names, dry_run } => {
            deploy(p, &names, dry_run.as_deref(), out).await
        }
    }
}

fn list(p: &Project, format: OutputFormat, out: &mut dyn Write) -> Result<Exit> {
    let dir = &p.config.dashboards;
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for name in dashboard::names(dir).map_err(usage)? {
        let path = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match spec::parse(&path, &text) {
            Ok(raw) => {
                let reads: Vec<String> = raw
                    .datasets
                    .values()
                    .map(|d| match (&d.table, &d.query) {
                        (Some(t), _) => t.clone(),
                        (_, Some(q)) => format!("query {q}"),
                        _ => "?".into(),
                    })
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let visuals: usize = raw.sheets.iter().map(|s| s.visuals.len()).sum();
                items.push(serde_json::json!({
                    "name": name, "title": raw.title, "description": raw.description,
                    "reads": reads, "sheets": raw.sheets.len(), "visuals": visuals,
                    "filters": raw.filters.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                }));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?,
        OutputFormat::Text => {
            for i in &items {
                let reads: Vec<&str> = i["reads"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:<14} {} ({} sheets, {} visuals): reads {}",
                    i["name"].as_str().unwrap_or_default(),
                    i["title"].as_str().unwrap_or_default(),
                    i["sheets"],
                    i["visuals"],
                    reads.join(", ")
                )?;
            }
        }
    }
    if problems.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(UsageError(problems.join("\n")).into())
    }
}

/// `medallion serve`.
///
/// # Errors
/// The bind policy (exit 2), invalid dashboards, socket errors.
pub async fn serve(
    p: &Project,
    a: &ServeArgs,
    token: Option<&str>,
    out: &mut dyn Write,
) -> Result<Exit> {
    use dashboard::serve as s;
    let addr = std::net::SocketAddr::new(a.bind, a.port);
    s::check_bind(addr, token).map_err(|e| UsageError(e.to_string()))?;
    let loaded = load_with_data(p, &[]).await?;
    let app = Arc::new(s::App {
        site: site::build(&loaded, &built_at(p)),
        catalog: p.lake.catalog.clone(),
        options: p.lake.store.storage_options(),
        queries_dir: p.config.catalog.join("queries"),
        token: token.map(str::to_string),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    writeln!(
        out,
        "Serving {} dashboards and the read-only API on http://{local}/ (API: /api/v1/tables, /api/v1/tables/<stage>.<table>, /api/v1/query/<name>){}",
        loaded.len(),
        if token.is_some() { "; bearer token required" } else { "" }
    )?;
    out.flush()?;
    s::serve(listener, app).await?;
    Ok(Exit::Ok)
}

#[cfg(feature = "aws")]
async fn deploy(
    p: &Project,
    names: &[String],
    dry_run: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::dashboard::quicksight::{self as qs, Target};
    let cfg = p.config.aws.clone().ok_or_else(|| {
        UsageError("dashboard deploy needs the `aws:` section of medallion.yaml".into())
    })?;
    let q = cfg.quicksight.clone().ok_or_else(|| {
        UsageError(
            "dashboard deploy needs `aws.quicksight: {account_id: \"111122223333\", principal: <QuickSight user or group ARN>}` in medallion.yaml"
                .into(),
        )
    })?;
    let target = Target {
        account_id: q.account_id.clone(),
        region: cfg.region.clone(),
        principal: q.principal.clone(),
        workgroup: crate::query::athena::WORKGROUP.to_string(),
        glue_prefix: cfg.glue_database_prefix.clone(),
        role_arn: q.role_arn.clone(),
    };
    let l = load(p, names).await?;
    let (ds, queries, min) = (&l.dashboards, &l.queries, l.small_cell_min);
    let mut all = Vec::new();
    for d in ds {
        all.push((d.name.clone(), qs::requests(&target, d, queries, min)?));
    }
    let source = qs::data_source(&target);
    if let Some(dir) = dry_run {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let write = |name: &str, v: &serde_json::Value| -> Result<String> {
            let path = dir.join(name);
            std::fs::write(&path, serde_json::to_string_pretty(v)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(format!("file://{}", path.display()))
        };
        let f = write("data-source.json", &source)?;
        writeln!(
            out,
            "aws quicksight create-data-source --cli-input-json {f}"
        )?;
        for (name, r) in &all {
            for (id, v) in &r.data_sets {
                let f = write(&format!("data-set-{id}.json"), v)?;
                writeln!(out, "aws quicksight create-data-set --cli-input-json {f}")?;
            }
            let f = write(&format!("dashboard-{name}.json"), &r.dashboard)?;
            writeln!(out, "aws quicksight create-dashboard --cli-input-json {f}")?;
        }
        writeln!(
            out,
            "Dry run: {} requests written to {} (nothing was called). Use update-* with the same files when they exist.",
            1 + all.iter().map(|(_, r)| r.data_sets.len() + 1).sum::<usize>(),
            dir.display()
        )?;
        return Ok(Exit::Ok);
    }
    let aws = crate::aws::Aws::new(&cfg).await;
    for line in qs::deploy(&aws, &target, &source, &all).await? {
        writeln!(out, "{line}")?;
    }
    Ok(Exit::Ok)
}

#[cfg(not(feature = "aws"))]
async fn deploy(
    _p: &Project,
    _names: &[String],
    _dry_run: Option<&Path>,
    _out: &mut dyn Write,
) -> Result<Exit> {
    Err(UsageError("this medallion was built without the `aws` feature".into()).into())
}
