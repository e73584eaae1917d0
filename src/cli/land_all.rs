//! `medallion land --all DIR`: every export file under DIR (subfolders and hive partitions
//! included) is landed into every dataset whose pipeline patterns (`source.pattern`,
//! `source.patterns`, `source.map.lookups[].file`) match its delivered name.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Exit, UsageError};
use crate::project::Project;

/// Extensions of export files; anything else under the folder (a SOURCE.md) is ignored.
const EXPORTS: &[&str] = &["csv", "jsonl", "ndjson", "parquet"];

/// Export files under `dir`, recursively, each with its delivered name
/// ([`crate::stage::parquet::delivered_name`]), sorted by path. Hidden entries are skipped.
///
/// # Errors
/// A folder that cannot be listed.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXPORTS.contains(&x))
            {
                let name = crate::stage::parquet::delivered_name(&path);
                out.push((path, name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Lands every export under `dir` into the datasets that want it.
///
/// # Errors
/// An unreadable folder or file, a backend error; a folder with no export any dataset wants
/// is a usage error.
pub async fn land_all(p: &Project, dir: &Path, out: &mut dyn Write) -> Result<Exit> {
    if !dir.is_dir() {
        return Err(UsageError(format!("{}: not a folder", dir.display())).into());
    }
    let files = files_under(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut landed_any = false;
    let mut wanted = vec![false; files.len()];
    for dataset in p.datasets()? {
        let ds = p.dataset(&dataset)?;
        let mut paths = Vec::new();
        for (i, (path, name)) in files.iter().enumerate() {
            if ds.pipeline.wants(name) {
                paths.push(path.clone());
                wanted[i] = true;
            }
        }
        if !paths.is_empty() {
            super::project::land(p, &dataset, &paths, out).await?;
            landed_any = true;
        }
    }
    for ((_, name), w) in files.iter().zip(&wanted) {
        if !w {
            writeln!(out, "ignored  {name}: no dataset's pattern matches it")?;
        }
    }
    if !landed_any {
        return Err(UsageError(format!(
            "{}: no export file matches any dataset's patterns",
            dir.display()
        ))
        .into());
    }
    Ok(Exit::Ok)
}
