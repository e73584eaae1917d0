//! The bridge between polars frames (transforms) and arrow-rs record batches (Delta Lake).
//!
//! polars and delta-rs use two Arrow implementations; both speak the Arrow C Data Interface,
//! so columns cross without copying: polars exports each array and field as the C structs,
//! arrow-rs imports them (and the other way round). Strings leave polars as `LargeUtf8`.
//!
//! Invariants: conversions copy no column data; the column readers ([`strings_of`],
//! [`u64s_of`], [`f64s_of`]) read nulls as empty or zero, never panic on a missing value.

use std::sync::Arc;

use deltalake::arrow::array::{make_array, Array, ArrayRef, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::{CompatLevel, DataFrame, IntoColumn, PlSmallStr, Series};

/// Errors crossing between polars and arrow-rs.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// polars refused an operation.
    #[error("polars: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    /// arrow-rs refused an operation.
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
}

// The Arrow C Data Interface structs of both crates are `#[repr(C)]` twins (same fields, same
// release-callback contract), so moving one into the other is a plain transmute of ownership.
fn schema_to_arrow(s: polars_arrow::ffi::ArrowSchema) -> FFI_ArrowSchema {
    // SAFETY: identical `#[repr(C)]` layout; ownership moves.
    unsafe { std::mem::transmute::<polars_arrow::ffi::ArrowSchema, FFI_ArrowSchema>(s) }
}

fn array_to_arrow(a: polars_arrow::ffi::ArrowArray) -> FFI_ArrowArray {
    // SAFETY: identical `#[repr(C)]` layout; ownership moves.
    unsafe { std::mem::transmute::<polars_arrow::ffi::ArrowArray, FFI_ArrowArray>(a) }
}

fn schema_to_polars(s: FFI_ArrowSchema) -> polars_arrow::ffi::ArrowSchema {
    // SAFETY: identical `#[repr(C)]` layout; ownership moves.
    unsafe { std::mem::transmute::<FFI_ArrowSchema, polars_arrow::ffi::ArrowSchema>(s) }
}

fn array_to_polars(a: FFI_ArrowArray) -> polars_arrow::ffi::ArrowArray {
    // SAFETY: identical `#[repr(C)]` layout; ownership moves.
    unsafe { std::mem::transmute::<FFI_ArrowArray, polars_arrow::ffi::ArrowArray>(a) }
}

/// Converts a polars frame into arrow-rs record batches (one per chunk).
///
/// # Errors
/// When a column's type cannot cross the C interface.
pub fn to_batches(df: &mut DataFrame) -> Result<(SchemaRef, Vec<RecordBatch>), FrameError> {
    df.align_chunks();
    let mut fields = Vec::with_capacity(df.width());
    for c in df.columns() {
        let f = c.field().to_arrow(CompatLevel::oldest());
        let c_schema = schema_to_arrow(polars_arrow::ffi::export_field_to_c(&f));
        fields.push(Field::try_from(&c_schema)?);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut out = Vec::new();
    if df.height() == 0 {
        return Ok((schema, out));
    }
    for chunk in df.iter_chunks(CompatLevel::oldest(), false) {
        let pl_fields: Vec<_> = chunk.schema().iter_values().cloned().collect();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(pl_fields.len());
        for (field, array) in pl_fields.iter().zip(chunk.into_arrays()) {
            let c_schema = schema_to_arrow(polars_arrow::ffi::export_field_to_c(field));
            let c_array = array_to_arrow(polars_arrow::ffi::export_array_to_c(array));
            // SAFETY: the array was just exported by polars and matches its field.
            let data = unsafe { from_ffi(c_array, &c_schema)? };
            arrays.push(make_array(data));
        }
        out.push(RecordBatch::try_new(schema.clone(), arrays)?);
    }
    Ok((schema, out))
}

/// Converts arrow-rs record batches into one polars frame.
///
/// # Errors
/// When a column's type cannot cross the C interface.
pub fn from_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<DataFrame, FrameError> {
    let mut columns: Vec<Series> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let mut chunks = Vec::with_capacity(batches.len());
        for b in batches {
            chunks.push(b.column(i).clone());
        }
        // A Delta table's partition values are read as dictionaries: their values are what a
        // reader means (text, not polars categoricals).
        if let DataType::Dictionary(_, value) = field.data_type() {
            let plain = Field::new(field.name(), (**value).clone(), field.is_nullable());
            let mut decoded = Vec::with_capacity(chunks.len());
            for c in &chunks {
                decoded.push(deltalake::arrow::compute::cast(c, value)?);
            }
            columns.push(series_from_arrow(field.name(), &plain, &decoded)?);
            continue;
        }
        columns.push(series_from_arrow(field.name(), field, &chunks)?);
    }
    let cols = columns.into_iter().map(IntoColumn::into_column).collect();
    Ok(DataFrame::new_infer_height(cols)?)
}

/// `df` with every string column copied into buffers of its own.
///
/// polars keeps strings longer than 12 bytes in shared data buffers: a filter, a join or a
/// group-by hands out views into the buffers of the frame it came from, so keeping a few rows
/// of a big chunk keeps the whole chunk's strings alive. Call this on small frames that are
/// kept while bigger ones come and go (rows held across chunks, per-group results): the copy
/// is proportional to the rows kept, and what they pointed into can be freed.
///
/// # Errors
/// When a column cannot be rebuilt (never for the types the lake uses).
pub fn compact(df: DataFrame) -> Result<DataFrame, FrameError> {
    use polars::prelude::{Column, DataType, StringChunked};
    if !df.columns().iter().any(|c| c.dtype() == &DataType::String) {
        return Ok(df);
    }
    let height = df.height();
    let mut cols: Vec<Column> = Vec::with_capacity(df.width());
    for c in df.columns() {
        if c.dtype() == &DataType::String {
            let ca = c.as_materialized_series().str()?;
            let chunks: Vec<_> = ca.downcast_iter().map(|a| a.clone().gc()).collect();
            let fresh = StringChunked::from_chunk_iter(c.name().clone(), chunks);
            cols.push(fresh.into_column());
        } else {
            cols.push(c.clone());
        }
    }
    Ok(DataFrame::new(height, cols)?)
}

fn series_from_arrow(name: &str, field: &Field, chunks: &[ArrayRef]) -> Result<Series, FrameError> {
    // SAFETY: the schema is exported by arrow-rs just here and is valid.
    let pl_field = unsafe {
        polars_arrow::ffi::import_field_from_c(&schema_to_polars(FFI_ArrowSchema::try_from(
            field,
        )?))?
    };
    let mut pl_chunks = Vec::with_capacity(chunks.len());
    for arr in chunks {
        let (c_array, _) = to_ffi(&arr.to_data())?;
        // SAFETY: exported just above by arrow-rs, for this field's type.
        let pl_array = unsafe {
            polars_arrow::ffi::import_array_from_c(
                array_to_polars(c_array),
                pl_field.dtype().clone(),
            )?
        };
        pl_chunks.push(pl_array);
    }
    if pl_chunks.is_empty() {
        let empty = polars_arrow::array::new_empty_array(pl_field.dtype().clone());
        return Ok(Series::from_arrow(PlSmallStr::from(name), empty)?);
    }
    Ok(Series::from_arrow_chunks(
        PlSmallStr::from(name),
        pl_chunks,
    )?)
}

/// Rows in a list of batches.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Adds the distinct non-null values of `column` (as text) to `out`; nothing when `df` has no
/// such column.
///
/// # Errors
/// When the column cannot be cast to text.
pub fn distinct_text(
    df: &DataFrame,
    column: &str,
    out: &mut std::collections::BTreeSet<String>,
) -> Result<(), FrameError> {
    if let Ok(c) = df.column(column) {
        let s = c
            .as_materialized_series()
            .cast(&polars::prelude::DataType::String)?;
        out.extend(s.str()?.iter().flatten().map(str::to_string));
    }
    Ok(())
}

/// The text column `c` of `df`, nulls as empty strings.
///
/// # Errors
/// When the column is missing or not text.
pub fn strings_of(df: &DataFrame, c: &str) -> Result<Vec<String>, FrameError> {
    Ok(df
        .column(c)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// The count column `c` of `df` as `u64`, nulls as 0 (Delta has no unsigned types: counts come
/// back as Int64).
///
/// # Errors
/// When the column is missing or not numeric.
pub fn u64s_of(df: &DataFrame, c: &str) -> Result<Vec<u64>, FrameError> {
    let s = df
        .column(c)?
        .as_materialized_series()
        .cast(&polars::prelude::DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or_default()).collect())
}

/// The float column `c` of `df`.
///
/// # Errors
/// When the column is missing or not `f64`.
pub fn f64s_of(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>, FrameError> {
    Ok(df.column(c)?.f64()?.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn partition_values_read_as_dictionaries_become_text() {
        use deltalake::arrow::array::DictionaryArray;
        use deltalake::arrow::datatypes::{DataType as A, Field as F, Int32Type};
        let dict: DictionaryArray<Int32Type> =
            vec![Some("open"), None, Some("resolved"), Some("open")]
                .into_iter()
                .collect();
        let field = F::new(
            "status",
            A::Dictionary(Box::new(A::Int32), Box::new(A::Utf8)),
            true,
        );
        let schema = Arc::new(deltalake::arrow::datatypes::Schema::new(vec![field]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(dict)]).unwrap();
        let df = from_batches(&schema, &[batch]).unwrap();
        let s = df.column("status").unwrap().str().unwrap();
        let got: Vec<Option<&str>> = (0..s.len()).map(|i| s.get(i)).collect();
        assert_eq!(got, [Some("open"), None, Some("resolved"), Some("open")]);
    }

    #[test]
    fn compact_frees_what_a_filter_pointed_into() {
        let long: Vec<String> = (0..20_000)
            .map(|i| format!("a-string-longer-than-12-bytes-{i:08}"))
            .collect();
        let df = df!("s" => long, "i" => (0..20_000i64).collect::<Vec<_>>()).unwrap();
        let mask = df
            .column("i")
            .unwrap()
            .as_materialized_series()
            .lt(3)
            .unwrap();
        let kept = df.filter(&mask).unwrap();
        let buffers = |d: &DataFrame| -> usize {
            d.column("s")
                .unwrap()
                .as_materialized_series()
                .str()
                .unwrap()
                .downcast_iter()
                .map(|a| a.total_buffer_len())
                .sum()
        };
        // The filtered rows still point into the whole column's buffers.
        assert!(buffers(&kept) > 100_000, "{}", buffers(&kept));
        let compacted = compact(kept.clone()).unwrap();
        assert!(buffers(&compacted) < 1_000, "{}", buffers(&compacted));
        assert!(compacted.equals_missing(&kept));
        assert_eq!(compacted.get_column_names(), kept.get_column_names());
    }

    #[test]
    fn round_trip_keeps_types_and_values() {
        let mut df = df!(
            "s" => ["a", "b", "c"],
            "i" => [1i64, 2, 3],
            "f" => [Some(1.5f64), None, Some(3.0)],
        )
        .unwrap();
        let (schema, batches) = to_batches(&mut df).unwrap();
        assert_eq!(row_count(&batches), 3);
        let back = from_batches(&schema, &batches).unwrap();
        assert_eq!(back.height(), 3);
        assert!(back.column("f").unwrap().null_count() == 1);
        assert_eq!(back.column("s").unwrap().str().unwrap().get(2), Some("c"));
    }

    #[test]
    fn empty_frame_keeps_schema() {
        let mut df = df!("s" => Vec::<String>::new(), "i" => Vec::<i64>::new()).unwrap();
        let (schema, batches) = to_batches(&mut df).unwrap();
        assert_eq!(schema.fields().len(), 2);
        assert_eq!(row_count(&batches), 0);
    }
}
