//! Reading trusted for curated (and the alerts): courses in groups of a bounded number of rows,
//! and a table's rows of those courses read in **one** pass sorted by course, handed out a
//! group at a time.
//!
//! Invariants: a group is a run of consecutive courses in byte order (what [`course_groups`]
//! returns), so a table sorted by `course_id` yields each group's rows as one contiguous run;
//! within a course, rows come in the dataset's [`read_order`] (ending in `record_id`) whatever
//! the file layout, so every build of the same rows sums in the same order and gives the same
//! bits, and a product that needs the rows in that order (attendance's sessions) finds them so
//! and skips its own sort. The sort holds at most `sort_memory_mb` (products.yaml; default
//! [`SORT_MEMORY`]) per table and spills the rest to temporary files (DataFusion's external
//! sort), so memory does not grow with the table.

use std::collections::{BTreeMap, BTreeSet};

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, SchemaRef};
use futures::StreamExt;
use polars::prelude::*;

use super::products;
use crate::frame;
use crate::lake::Lake;
use crate::stage::Result;
use crate::storage::delta::{self, RowStream};
use crate::vocab::Stage;

/// Memory one table's sort by course may hold before it spills sorted runs to disk.
pub const SORT_MEMORY: usize = 256 << 20;

/// The order a dataset's trusted rows are read in: by course first (what the groups need), then
/// attendance in the order its sessions de-duplicate and count streaks in
/// ([`products::SESSION_ORDER`], which starts with the course), and `record_id` last so the
/// order is total.
pub fn read_order(dataset: &str) -> Vec<&'static str> {
    let by: &[&'static str] = match dataset {
        "attendance" => &products::SESSION_ORDER,
        _ => &["course_id"],
    };
    by.iter().copied().chain(["record_id"]).collect()
}

/// SQL `ORDER BY` terms for a dataset's [`read_order`]. ASC NULLS FIRST: the order polars sorts
/// in, so an in-order frame stays in order.
pub(super) fn order_by(dataset: &str) -> String {
    read_order(dataset)
        .iter()
        .map(|c| format!("\"{c}\" ASC NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `values` as a SQL list of string literals.
pub(super) fn sql_list(values: &BTreeSet<String>) -> String {
    values
        .iter()
        .map(|v| delta::sql_literal(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `course_id IN (...)`, or `false` when no course is touched (an empty batch still has to be
/// recorded as consumed).
pub(super) fn course_filter(courses: &BTreeSet<String>) -> String {
    if courses.is_empty() {
        "false".to_string()
    } else {
        format!("course_id IN ({})", sql_list(courses))
    }
}

/// `courses` (every course of `datasets` when `None`) in groups of about `budget` trusted
/// rows (over `datasets`), in course order; a course larger than the budget is a group of its
/// own. Always at least one group (possibly empty).
///
/// # Errors
/// Storage and polars errors.
pub async fn course_groups(
    lake: &Lake,
    courses: Option<&BTreeSet<String>>,
    datasets: &BTreeSet<&str>,
    budget: u64,
) -> Result<Vec<BTreeSet<String>>> {
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    for ds in datasets {
        let loc = lake.loc(Stage::Trusted, ds)?;
        let filter = courses.map_or_else(|| "TRUE".to_string(), course_filter);
        let sql =
            format!("SELECT course_id, count(*) AS n FROM t WHERE {filter} GROUP BY course_id");
        if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
            let df = frame::from_batches(&schema, &batches)?;
            let n = df
                .column("n")?
                .as_materialized_series()
                .cast(&DataType::UInt64)?;
            let ids = df
                .column("course_id")?
                .as_materialized_series()
                .cast(&DataType::String)?;
            for (c, n) in ids.str()?.iter().zip(n.u64()?.iter()) {
                if let (Some(c), Some(n)) = (c, n) {
                    *rows.entry(c.to_string()).or_default() += n;
                }
            }
        }
    }
    let all: BTreeSet<String> = match courses {
        Some(c) => c.clone(),
        None => rows.keys().cloned().collect(),
    };
    let mut groups = Vec::new();
    let (mut group, mut size) = (BTreeSet::new(), 0u64);
    for c in &all {
        let n = rows.get(c).copied().unwrap_or(0);
        if !group.is_empty() && size + n > budget {
            groups.push(std::mem::take(&mut group));
            size = 0;
        }
        group.insert(c.clone());
        size += n;
    }
    if !group.is_empty() || groups.is_empty() {
        groups.push(group);
    }
    Ok(groups)
}

/// `df`'s rows of `courses` (all of them when `df` holds no other course).
pub(super) fn only_courses(
    df: &Option<DataFrame>,
    courses: &BTreeSet<String>,
) -> Result<Option<DataFrame>> {
    let Some(df) = df else {
        return Ok(None);
    };
    let list: Vec<&str> = courses.iter().map(String::as_str).collect();
    let keep = Series::new("courses".into(), list);
    Ok(Some(
        df.clone()
            .lazy()
            .filter(
                col("course_id")
                    .cast(DataType::String)
                    .is_in(lit(keep).implode(false), false),
            )
            .collect()?,
    ))
}

/// The columns curated reads of a trusted table, quoted for SQL: every column but the lineage,
/// which no product reads (a file hash and name per row would be most of what is read and
/// held). `None` when the table does not exist yet.
pub(super) async fn product_columns(lake: &Lake, dataset: &str) -> Result<Option<String>> {
    let loc = lake.loc(Stage::Trusted, dataset)?;
    let Some((schema, _)) = delta::query(&loc, "SELECT * FROM t LIMIT 0").await? else {
        return Ok(None);
    };
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| !crate::stage::LINEAGE.contains(&f.name().as_str()))
        .map(|f| format!("\"{}\"", f.name().replace('"', "\"\"")))
        .collect();
    Ok(Some(columns.join(", ")))
}

/// One trusted table's rows of some courses, read once in the dataset's [`read_order`] (by
/// course first) and handed out group by group ([`ByCourse::through`]), in course order.
pub struct ByCourse {
    schema: SchemaRef,
    rows: RowStream,
    /// Rows read past the last course handed out: the start of the next group.
    held: Option<RecordBatch>,
}

impl ByCourse {
    /// Starts reading `columns` (SQL, among the table's columns) of `dataset`'s trusted rows of
    /// `courses`, in [`read_order`]. `None` when the table does not exist.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn open(
        lake: &Lake,
        dataset: &str,
        columns: &str,
        courses: &BTreeSet<String>,
        memory: usize,
    ) -> Result<Option<Self>> {
        let loc = lake.loc(Stage::Trusted, dataset)?;
        let sql = format!(
            "SELECT {columns} FROM t WHERE {} ORDER BY {}",
            course_filter(courses),
            order_by(dataset)
        );
        Ok(delta::query_stream_bounded(&loc, &sql, memory)
            .await?
            .map(|(schema, rows)| Self {
                schema,
                rows,
                held: None,
            }))
    }

    /// The rows not handed out yet of the courses up to and including `last` (byte order);
    /// with `None`, no rows (the table's columns).
    ///
    /// # Errors
    /// Storage errors while the stream is read; polars errors.
    pub async fn through(&mut self, last: Option<&str>) -> Result<DataFrame> {
        let mut out = Vec::new();
        if let Some(last) = last {
            loop {
                let batch = match self.held.take() {
                    Some(b) => b,
                    None => match self.rows.next().await {
                        Some(b) => b?,
                        None => break,
                    },
                };
                let n = rows_through(&batch, last)?;
                if n == batch.num_rows() {
                    out.push(batch);
                    continue;
                }
                if n > 0 {
                    out.push(batch.slice(0, n));
                }
                self.held = Some(batch.slice(n, batch.num_rows() - n));
                break;
            }
        }
        Ok(frame::from_batches(&self.schema, &out)?)
    }
}

/// How many leading rows of `batch` (sorted by `course_id`) are of courses up to `last`.
fn rows_through(batch: &RecordBatch, last: &str) -> Result<usize> {
    let Some(ids) = batch.column_by_name("course_id") else {
        return Err(PolarsError::ColumnNotFound("course_id".into()).into());
    };
    let ids = cast(ids, &ArrowType::Utf8).map_err(frame::FrameError::from)?;
    let ids = ids.as_string::<i32>();
    // Binary search for the first row past `last`.
    let (mut lo, mut hi) = (0, batch.num_rows());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ids.value(mid) <= last {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
