//! Parquet landing files, read like CSV: each row becomes text fields under the file's column
//! names, plus the hive partition columns its delivered name carries
//! (`studentVle/code_module=AAA/code_presentation=2013J/part-0.parquet` adds `code_module`
//! and `code_presentation`). The row number (1-based, in file order) stands for the line.
//!
//! Text is faithful to the value: strings as stored, integers and decimals as written by
//! arrow, and a floating-point number with no fractional part without `.0` (R and pandas
//! export ids and day numbers as doubles: `11391.0` is the id `11391`). Nulls stay null.

use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float32Type, Float64Type};
use deltalake::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

/// The name a landed file is delivered under: its file name, or, inside hive partition
/// folders (`key=value`), the table folder, the partition folders and the file name joined
/// with `/`.
pub fn delivered_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "unnamed".into());
    let mut parts = vec![file];
    let mut dir = path.parent();
    while let Some(d) = dir {
        let Some(name) = d.file_name().map(|n| n.to_string_lossy().to_string()) else {
            break;
        };
        let partition = name.contains('=');
        parts.push(name);
        if !partition {
            break;
        }
        dir = d.parent();
    }
    if parts.len() == 2 {
        // No partition folder: the file name alone.
        parts.truncate(1);
    }
    parts.reverse();
    parts.join("/")
}

/// The hive partition columns of a delivered name, `(column, value)` in path order.
pub fn partition_columns(name: &str) -> Vec<(String, String)> {
    name.split('/')
        .filter_map(|seg| seg.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A parquet file being read in batches of text columns.
pub struct ParquetRows {
    reader: ParquetRecordBatchReader,
    /// The file's columns, then the partition columns.
    pub header: Vec<String>,
    partition: Vec<String>,
}

/// One batch: text per column (header order), or the column that could not be read as text.
pub type TextBatch = Result<Vec<Vec<Option<String>>>, (String, String, usize)>;

impl ParquetRows {
    /// Opens `bytes` (a whole parquet file) delivered as `name`, `batch_rows` rows per batch.
    ///
    /// # Errors
    /// Not a parquet file (the message of the parquet reader).
    pub fn open(bytes: Vec<u8>, name: &str, batch_rows: usize) -> Result<Self, String> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .map_err(|e| format!("not a readable parquet file: {e}"))?;
        let mut header: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let parts = partition_columns(name);
        let mut partition = Vec::new();
        for (k, v) in parts {
            if !header.contains(&k) {
                header.push(k);
                partition.push(v);
            }
        }
        let reader = builder
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(|e| format!("not a readable parquet file: {e}"))?;
        Ok(Self {
            reader,
            header,
            partition,
        })
    }

    /// The next batch, `None` at the end.
    ///
    /// # Errors
    /// The outer error is a file that stops being readable (I/O, corrupt pages).
    pub fn next_batch(&mut self) -> Result<Option<TextBatch>, String> {
        let Some(b) = self.reader.next() else {
            return Ok(None);
        };
        let b = b.map_err(|e| format!("reading parquet: {e}"))?;
        let rows = b.num_rows();
        let mut out = Vec::with_capacity(self.header.len());
        for (i, c) in b.columns().iter().enumerate() {
            match text(c) {
                Ok(v) => out.push(v),
                Err(e) => {
                    let name = b.schema().field(i).name().clone();
                    return Ok(Some(Err((name, e, rows))));
                }
            }
        }
        for v in &self.partition {
            out.push(vec![Some(v.clone()); rows]);
        }
        Ok(Some(Ok(out)))
    }
}

fn float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn text(c: &ArrayRef) -> Result<Vec<Option<String>>, String> {
    let n = c.len();
    let mut out = Vec::with_capacity(n);
    match c.data_type() {
        DataType::Float64 => {
            let a = c.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| float(a.value(i))));
            }
        }
        DataType::Float32 => {
            let a = c.as_primitive::<Float32Type>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| float(f64::from(a.value(i)))));
            }
        }
        _ => {
            let s: Arc<dyn Array> =
                cast(c, &DataType::Utf8).map_err(|e| format!("cannot be read as text: {e}"))?;
            let a = s.as_string::<i32>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| a.value(i).to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_names_carry_their_partitions() {
        let p = Path::new(
            "/x/parquet/studentVle/code_module=AAA/code_presentation=2013J/part-0.parquet",
        );
        let name = delivered_name(p);
        assert_eq!(
            name,
            "studentVle/code_module=AAA/code_presentation=2013J/part-0.parquet"
        );
        assert_eq!(
            partition_columns(&name),
            vec![
                ("code_module".to_string(), "AAA".to_string()),
                ("code_presentation".to_string(), "2013J".to_string())
            ]
        );
        assert_eq!(
            delivered_name(Path::new("/x/csv/courses.csv")),
            "courses.csv"
        );
    }

    #[test]
    fn floats_without_fraction_read_as_integers() {
        assert_eq!(float(11391.0), "11391");
        assert_eq!(float(-25.0), "-25");
        assert_eq!(float(2.5), "2.5");
    }
}
