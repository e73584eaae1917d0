//! Loading the lookup files a dataset's `source.map` joins: for each lookup, the newest landed
//! file of the dataset whose delivered name matches its pattern.

use std::io::Read;

use super::mapping::LookupTable;
use super::{Dataset, Lake, Result, StepError};
use crate::storage::LandedFile;

/// Reads a landed file whole.
///
/// # Errors
/// I/O errors.
pub fn read_all(mut reader: impl Read) -> Result<Vec<u8>, super::parse::ParseError> {
    let mut buf = Vec::new();
    reader
        .read_to_end(&mut buf)
        .map_err(super::parse::ParseError::from)?;
    Ok(buf)
}

/// The lookup tables of `ds` (in `source.map.lookups` order), from its `landed` files; empty
/// without a mapping.
///
/// # Errors
/// [`StepError::Lookup`] when a lookup has no landed file or cannot be read.
pub async fn load(lake: &Lake, ds: &Dataset, landed: &[LandedFile]) -> Result<Vec<LookupTable>> {
    let Some(spec) = &ds.pipeline.mapping else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(spec.lookups.len());
    for l in &spec.lookups {
        let newest = landed
            .iter()
            .filter(|f| {
                crate::config::pipeline::wildcard(l.file.as_bytes(), f.original_name.as_bytes())
            })
            .max_by_key(|f| f.seq);
        let Some(file) = newest else {
            return Err(StepError::Lookup {
                dataset: ds.name().to_string(),
                message: format!(
                    "source.map.lookups `{}`: no landed file matches `{}`; land it first (medallion land {} FILE)",
                    l.name,
                    l.file,
                    ds.name()
                ),
            });
        };
        let reader = lake.store.open_landed(file).await?;
        let table = LookupTable::csv(&file.original_name, reader, &l.key).map_err(|message| {
            StepError::Lookup {
                dataset: ds.name().to_string(),
                message: format!("source.map.lookups `{}`: {message}", l.name),
            }
        })?;
        tracing::debug!(dataset = ds.name(), lookup = %l.name, rows = table.rows.len(), "Loaded lookup file.");
        out.push(table);
    }
    Ok(out)
}
