//! Which key tuples repeat within one raw batch, found without holding the batch's keys, and
//! the range the batch's keys span.
//!
//! A first streamed pass over the batch's key columns keeps one 64-bit hash per row and key
//! set; hashes seen twice or more are candidates. A second pass keeps only the rows whose hash
//! is a candidate and groups their typed key tuples exactly, so a hash collision is never taken
//! for a repeat.
//!
//! Invariants:
//! - for each key set the result is exactly the typed key tuples (every column present) that
//!   occur more than once in the batch, rows of forgotten students left out;
//! - memory holds 8 bytes per row and key set, plus the candidates' key tuples (a batch with
//!   no repeats is never read twice);
//! - the bounds hold, per key column, the least and greatest typed value of the rows read
//!   (nulls left out), so every key of the batch lies within them.

use std::collections::HashSet;
use std::hash::BuildHasher;

use futures::StreamExt;
use polars::prelude::*;

use super::{judge, Dataset, Result};
use crate::frame;
use crate::storage::delta::{self, TableLoc};

/// Marker column of the repeated key tuples returned (always `true`).
pub(super) const HIT: &str = "__hit";

/// The fixed hasher: equal tuples give equal hashes within and across passes.
fn hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6d65_6461_6c6c_696f)
}

/// Mixes `s`'s values into `hashes` row by row; a null clears the row's `present` flag.
fn mix(s: &Series, hashes: &mut [u64], present: &mut [bool]) -> Result<()> {
    let h = hasher();
    let s = s.to_physical_repr().into_owned();
    let mut put = |i: usize, v: Option<u64>| match v {
        Some(v) => hashes[i] = h.hash_one((hashes[i], v)),
        None => present[i] = false,
    };
    match s.dtype() {
        DataType::String => {
            for (i, v) in s.str()?.iter().enumerate() {
                put(i, v.map(|v| h.hash_one(v)));
            }
        }
        dt if dt.is_integer() || dt.is_bool() => {
            let s = s.cast(&DataType::Int64)?;
            for (i, v) in s.i64()?.iter().enumerate() {
                put(i, v.map(|v| v as u64));
            }
        }
        dt if dt.is_float() => {
            let s = s.cast(&DataType::Float64)?;
            for (i, v) in s.f64()?.iter().enumerate() {
                put(i, v.map(f64::to_bits));
            }
        }
        _ => {
            let s = s.cast(&DataType::String)?;
            for (i, v) in s.str()?.iter().enumerate() {
                put(i, v.map(|v| h.hash_one(v)));
            }
        }
    }
    Ok(())
}

/// `columns` of a chunk of raw rows, typed as the contract says.
fn typed_keys(ds: &Dataset, raw: &DataFrame, columns: &[String]) -> Result<DataFrame> {
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let text = raw.column(c)?.as_materialized_series().clone();
        out.push(judge::typed(ds, c, text)?.1.into_column());
    }
    Ok(DataFrame::new_infer_height(out)?)
}

/// One hash per row of `keys`, and whether every key column of the row is present.
fn hashes(keys: &DataFrame) -> Result<(Vec<u64>, Vec<bool>)> {
    let n = keys.height();
    let (mut hashes, mut present) = (vec![0u64; n], vec![true; n]);
    for c in keys.columns() {
        mix(c.as_materialized_series(), &mut hashes, &mut present)?;
    }
    Ok((hashes, present))
}

/// A raw chunk without the rows of forgotten students.
fn without_forgotten(chunk: DataFrame, forgotten: &HashSet<String>) -> Result<DataFrame> {
    Ok(match super::forgotten::mentions(&chunk, forgotten)? {
        Some(mask) => chunk.filter(&!&mask)?,
        None => chunk,
    })
}

/// One key set's repeats and range within a batch.
pub(super) struct KeySet {
    /// The typed key tuples occurring more than once: the key columns and [`HIT`] (no rows
    /// when none repeats).
    pub repeated: DataFrame,
    /// The key columns' least and greatest values, as rows (each column's minimum and maximum
    /// over these rows are the batch's); no rows when the batch has none.
    pub bounds: DataFrame,
}

/// Each chunk's least and greatest value per column of `keys` (two rows), added to `acc`.
fn add_bounds(acc: &mut Option<DataFrame>, keys: &DataFrame) -> Result<()> {
    if keys.height() == 0 {
        return Ok(());
    }
    let names = keys.get_column_names_owned();
    let each = |f: fn(Expr) -> Expr| -> Result<DataFrame> {
        let per_column: Vec<Expr> = names.iter().map(|c| f(col(c.clone()))).collect();
        Ok(keys.clone().lazy().select(per_column).collect()?)
    };
    let (lo, hi) = (each(Expr::min)?, each(Expr::max)?);
    match acc {
        Some(a) => {
            a.vstack_mut_owned(lo)?;
            a.vstack_mut_owned(hi)?;
        }
        None => {
            let mut a = lo;
            a.vstack_mut_owned(hi)?;
            *acc = Some(a);
        }
    }
    Ok(())
}

/// For each key set, the typed key tuples repeated within the rows of `raw_loc` matching
/// `batch_pred`, and the range they span.
///
/// # Errors
/// Storage and polars errors.
pub(super) async fn repeated(
    raw_loc: &TableLoc,
    ds: &Dataset,
    sets: &[Vec<String>],
    batch_pred: &str,
    forgotten: &HashSet<String>,
) -> Result<Vec<KeySet>> {
    let mut read: Vec<String> = Vec::new();
    for c in sets.iter().flatten() {
        if !read.contains(c) {
            read.push(c.clone());
        }
    }
    let student = super::forgotten::STUDENT_ID;
    if !forgotten.is_empty()
        && !read.iter().any(|c| c == student)
        && ds.contract.raw_columns().any(|r| r.name == student)
    {
        read.push(student.to_string());
    }
    let sql = format!("SELECT {} FROM t WHERE {batch_pred}", read.join(", "));
    let mut bounds: Vec<Option<DataFrame>> = vec![None; sets.len()];
    let result = |repeated: Vec<DataFrame>, bounds: Vec<Option<DataFrame>>| -> Vec<KeySet> {
        repeated
            .into_iter()
            .zip(bounds)
            .map(|(repeated, b)| KeySet {
                repeated,
                bounds: b.unwrap_or_else(DataFrame::empty),
            })
            .collect()
    };
    let none = || -> Vec<DataFrame> { sets.iter().map(|_| DataFrame::empty()).collect() };

    // Pass 1: a hash per row and set, and the sets' bounds.
    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); sets.len()];
    let Some((schema, mut stream)) = delta::query_stream(raw_loc, &sql).await? else {
        return Ok(result(none(), bounds));
    };
    while let Some(b) = stream.next().await.transpose()? {
        let chunk = without_forgotten(frame::from_batches(&schema, &[b])?, forgotten)?;
        for ((set, out), range) in sets.iter().zip(seen.iter_mut()).zip(bounds.iter_mut()) {
            let keys = typed_keys(ds, &chunk, set)?;
            add_bounds(range, &keys)?;
            let (h, present) = hashes(&keys)?;
            out.extend(h.iter().zip(&present).filter(|(_, p)| **p).map(|(h, _)| *h));
        }
    }
    let candidates: Vec<HashSet<u64>> = seen
        .into_iter()
        .map(|mut h| {
            h.sort_unstable();
            h.windows(2)
                .filter(|w| w[0] == w[1])
                .map(|w| w[0])
                .collect()
        })
        .collect();
    if candidates.iter().all(HashSet::is_empty) {
        return Ok(result(none(), bounds));
    }

    // Pass 2: the candidates' key tuples, counted exactly.
    let mut kept: Vec<Option<DataFrame>> = vec![None; sets.len()];
    let Some((schema, mut stream)) = delta::query_stream(raw_loc, &sql).await? else {
        return Ok(result(none(), bounds));
    };
    while let Some(b) = stream.next().await.transpose()? {
        let chunk = without_forgotten(frame::from_batches(&schema, &[b])?, forgotten)?;
        for ((set, cands), out) in sets.iter().zip(&candidates).zip(kept.iter_mut()) {
            if cands.is_empty() {
                continue;
            }
            let keys = typed_keys(ds, &chunk, set)?;
            let (h, present) = hashes(&keys)?;
            let mask: BooleanChunked = h
                .iter()
                .zip(&present)
                .map(|(h, p)| Some(*p && cands.contains(h)))
                .collect();
            let hits = frame::compact(keys.filter(&mask)?)?;
            match out {
                Some(o) => {
                    o.vstack_mut_owned(hits)?;
                }
                None => *out = Some(hits),
            }
        }
    }
    let mut repeated = Vec::with_capacity(sets.len());
    for (set, keys) in sets.iter().zip(kept) {
        let Some(keys) = keys else {
            repeated.push(DataFrame::empty());
            continue;
        };
        let by: Vec<Expr> = set.iter().map(|c| col(c.as_str())).collect();
        repeated.push(
            keys.lazy()
                .group_by(by)
                .agg([len().alias("__n")])
                .filter(col("__n").gt(lit(1)))
                .select([all().exclude_cols(["__n"]).as_expr(), lit(true).alias(HIT)])
                .collect()?,
        );
    }
    Ok(result(repeated, bounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tuples_hash_equal_and_nulls_are_absent() {
        let df = df!(
            "a" => [Some("x"), Some("x"), Some("y"), None],
            "b" => [Some(1i64), Some(1), Some(1), Some(1)],
        )
        .expect("frame");
        let (h, present) = hashes(&df).expect("hashes");
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], h[2]);
        assert_eq!(present, vec![true, true, true, false]);
    }

    #[test]
    fn column_order_matters_for_the_hash() {
        let ab = df!("a" => ["p"], "b" => ["q"]).expect("frame");
        let ba = df!("a" => ["q"], "b" => ["p"]).expect("frame");
        assert_ne!(hashes(&ab).expect("h").0, hashes(&ba).expect("h").0);
    }
}
