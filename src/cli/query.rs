//! `medallion query`: SQL on the embedded engine (over the Delta logs, optionally as of a
//! version or time), the interactive shell, or Athena; results rendered as a table, CSV or
//! JSON.
//!
//! Invariants: the embedded engine reads only catalogued tables; `--as-of` needs it; Athena
//! results are converted by the library (`AthenaResult::to_batch`) and rendered like any other.

use std::io::Write;

use anyhow::{Context, Result};

use super::{Exit, QueryArgs, QueryFormat, UsageError};
use crate::project::Project;

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

pub(super) async fn query(p: &Project, a: &QueryArgs, out: &mut dyn Write) -> Result<Exit> {
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
    let cfg =
        p.config.aws.clone().ok_or_else(|| {
            UsageError("Athena needs the `aws:` section in medallion.yaml".into())
        })?;
    let aws = crate::aws::Aws::new(&cfg).await;
    let r = crate::query::athena::run(&aws, sql).await?;
    let (schema, batch) = r.to_batch()?;
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
