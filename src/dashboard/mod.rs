//! Dashboards: one YAML per dashboard in `dashboards/`, compiled to a self-contained HTML site
//! (Vega-Lite, vendored), served with a read-only JSON API, or deployed to QuickSight.
//!
//! Invariants: a dashboard is validated in full before anything is built (every problem, each
//! `file:line:column: key.path: message`); only curated tables (and the ops tables of the
//! data-quality page) are ever read, through an engine that registers nothing else; every page
//! says which tables at which Delta versions it holds and how many rows were left out.

pub mod data;
#[cfg(feature = "aws")]
pub mod quicksight;
pub mod serve;
pub mod site;
pub mod spec;
pub mod vega;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use spec::Dashboard;

use crate::query::{Engine, QueryError};
use crate::yaml::YamlError;

/// Errors loading or building dashboards.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// Definitions with problems; every problem of every file.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<YamlError>),
    /// A dashboard name that has no file.
    #[error("no dashboard `{name}` in {} (dashboards: {known})", .dir.display())]
    Unknown {
        /// Name asked for.
        name: String,
        /// The dashboards folder.
        dir: PathBuf,
        /// Names that exist.
        known: String,
    },
    /// Reading the lake failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A file could not be read or written.
    #[error("{}: {message}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Result alias.
pub type Result<T, E = DashboardError> = std::result::Result<T, E>;

/// Names of the dashboards in `dir` (`<name>.yaml`), sorted.
///
/// # Errors
/// The folder cannot be read.
pub fn names(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DashboardError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out: Vec<String> = entries
        .filter_map(|e| {
            let p = e.ok()?.path();
            let yaml = p.extension().is_some_and(|x| x == "yaml" || x == "yml");
            yaml.then(|| p.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The texts of the named queries a dashboard uses (unreadable ones are left out).
pub fn query_texts(d: &Dashboard, queries_dir: &Path) -> BTreeMap<String, String> {
    d.spec
        .datasets
        .values()
        .filter_map(|ds| ds.query.as_ref())
        .filter_map(|q| {
            std::fs::read_to_string(queries_dir.join(format!("{q}.sql")))
                .ok()
                .map(|t| (q.clone(), t))
        })
        .collect()
}

/// Loads and validates dashboards (`names`, or every one when empty), planning each dataset's
/// SQL on `engine` to learn its columns. Every problem of every file is reported at once.
///
/// # Errors
/// [`DashboardError::Invalid`] with every problem; [`DashboardError::Unknown`] for a name
/// without a file.
pub async fn load(
    dir: &Path,
    queries_dir: &Path,
    names_wanted: &[String],
    engine: &Engine,
) -> Result<Vec<Dashboard>> {
    let known = names(dir)?;
    let wanted = if names_wanted.is_empty() {
        known.clone()
    } else {
        for n in names_wanted {
            if !known.contains(n) {
                return Err(DashboardError::Unknown {
                    name: n.clone(),
                    dir: dir.to_path_buf(),
                    known: known.join(", "),
                });
            }
        }
        names_wanted.to_vec()
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for name in &wanted {
        let path = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).map_err(|e| DashboardError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let raw = match spec::parse(&path, &text) {
            Ok(r) => r,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let mut found = Vec::new();
        let mut columns = BTreeMap::new();
        for (id, ds) in &raw.datasets {
            let qtext = ds
                .query
                .as_ref()
                .and_then(|q| std::fs::read_to_string(queries_dir.join(format!("{q}.sql"))).ok());
            let source = spec::check_source(id, ds, qtext.as_deref());
            if !source.is_empty() {
                found.extend(source);
                continue;
            }
            let key = if ds.sql.is_some() {
                "sql"
            } else if ds.query.is_some() {
                "query"
            } else {
                "table"
            };
            let planned = match data::inner_sql(ds, queries_dir) {
                Ok(sql) => data::plan_columns(engine, &sql).await,
                Err(e) => Err(e),
            };
            match planned {
                Ok(c) => {
                    columns.insert(id.clone(), c);
                }
                Err(e) => found.push((format!("datasets.{id}.{key}"), plan_message(&e))),
            }
        }
        match spec::validate(name, &path, &text, raw, columns, found) {
            Ok(d) => out.push(d),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(DashboardError::Invalid(problems))
    }
}

/// A planning error in words a dashboard author can act on.
fn plan_message(e: &QueryError) -> String {
    let m = e.to_string();
    if m.contains("table") && m.contains("not found") {
        format!(
            "{m} (dashboards read curated tables; build them first with `medallion promote --all`)"
        )
    } else {
        m
    }
}
