//! `medallion evaluate at-risk`: the at-risk indicator evaluated on the OULAD data set, with a
//! project's curated settings or the OULAD template's.
//!
//! Invariants: reads files only; never opens or writes a lake.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::config::RunConfig;
use super::{Exit, OutputFormat, UsageError};
use crate::config;

pub(super) async fn at_risk(
    rc: &RunConfig,
    a: &super::EvaluateArgs,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::evaluate;
    let cwd = &rc.cwd;
    let settings = match (&a.settings, &rc.project) {
        (Some(f), _) => Some(cwd.join(f)),
        (None, Some(p)) => Some(p.join("pipelines/curated/products.yaml")),
        (None, None) => config::find_project(cwd)
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
            let p = rc.open().await?;
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
