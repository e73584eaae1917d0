//! One generated CSV export being written: its header, its records and their line numbers,
//! and the timestamps written in it.
//!
//! Invariants: the line a record is reported on is the line it is written on (fields never
//! contain newlines); an export without data rows is removed, not left empty.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};

use super::GenerateError;

pub(super) struct Out {
    path: PathBuf,
    name: String,
    w: csv::Writer<std::io::BufWriter<std::fs::File>>,
    line: u64,
    rows: u64,
}

impl Out {
    pub(super) fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self, GenerateError> {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).map_err(|source| GenerateError {
            path: path.clone(),
            source,
        })?;
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(std::io::BufWriter::new(f));
        w.write_record(header).map_err(|e| GenerateError {
            path: path.clone(),
            source: e.into(),
        })?;
        Ok(Self {
            path,
            name: name.to_string(),
            w,
            line: 1,
            rows: 0,
        })
    }

    /// Writes a record; returns its line. Fields never contain newlines.
    pub(super) fn row<T: AsRef<[u8]>>(&mut self, fields: &[T]) -> Result<u64, GenerateError> {
        self.w.write_record(fields).map_err(|e| GenerateError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        self.line += 1;
        self.rows += 1;
        Ok(self.line)
    }

    /// Flushes the file; an export without data rows (a term too short for any assessment to
    /// be due) is not written at all, as a source system would send nothing (and medallion
    /// would hold an empty file).
    pub(super) fn finish(mut self) -> Result<Option<(String, u64)>, GenerateError> {
        self.w.flush().map_err(|source| GenerateError {
            path: self.path.clone(),
            source,
        })?;
        if self.rows == 0 {
            drop(self.w);
            std::fs::remove_file(&self.path).map_err(|source| GenerateError {
                path: self.path.clone(),
                source,
            })?;
            return Ok(None);
        }
        Ok(Some((self.name, self.rows)))
    }
}

pub(super) fn ts(d: NaiveDate, minutes: i64, offset: bool) -> String {
    let t = d.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::minutes(minutes);
    if offset {
        // The same instant written with a +01:00 offset, as some exporters do.
        format!(
            "{}+01:00",
            (t + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S")
        )
    } else {
        format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}
