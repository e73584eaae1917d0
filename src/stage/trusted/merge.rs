//! Writing a judged batch's valid rows into trusted: classified against what trusted holds
//! (new keys, newer corrections, stale corrections), then merged by primary key in one commit
//! or, when trusted holds none of the batch's keys (a first load, a new day), appended.
//!
//! Invariants: an older correction never replaces a newer trusted record (`newestWinsBy`,
//! missing counts as oldest); the counts a batch's books record are those of the classification
//! (checked against the MERGE's own); a first-load append commits only onto the empty table it
//! was planned against, and a streamed append only while trusted still holds no row within the
//! batch's key range, so a concurrent writer of those keys turns it into a rerun that merges
//! by key.

use std::collections::BTreeSet;

use polars::prelude::*;

use super::super::{Dataset, Result};
use crate::frame;
use crate::storage::delta::{self, UpsertCounts};

/// The MERGE condition under which an incoming record replaces the trusted one: newer or
/// equal `newestWinsBy` (a later export of the same instant wins), missing counts as oldest.
fn newer_predicate(ds: &Dataset) -> Option<String> {
    ds.contract
        .newest_wins_by
        .as_ref()
        .map(|c| format!("t.{c} IS NULL OR (s.{c} IS NOT NULL AND s.{c} >= t.{c})"))
}

/// Merges the winning rows into trusted in one commit recording `app`; `None` when a
/// concurrent promotion committed `app` first.
pub(in crate::stage) async fn merge_winners(
    data_loc: &delta::TableLoc,
    ds: &Dataset,
    mut winners: DataFrame,
    app: &str,
    meta: &[(&str, serde_json::Value)],
) -> Result<Option<UpsertCounts>> {
    let rows = winners.height();
    if rows > 0 && !delta::has_files(data_loc).await? {
        // Every row is new: stream them in slices into one append (no MERGE, and never the
        // whole batch converted at once). A concurrent writer of the same batch is still
        // refused by the txn check.
        let (schema, _) = frame::to_batches(&mut winners.slice(0, 0))?;
        let Some(mut out) = delta::Appender::open(data_loc, schema, app, meta).await? else {
            return Ok(None);
        };
        write_slices(&mut out, &winners, ds.pipeline.trusted.chunk_rows).await?;
        // Onto the empty table only: a concurrent first load makes this a conflict, and the
        // rerun merges by key.
        return Ok(out.commit_into_empty().await?.map(|_| UpsertCounts {
            inserted: rows as u64,
            updated: 0,
        }));
    }
    let newer = newer_predicate(ds);
    let (ws, wb) = frame::to_batches(&mut winners)?;
    let merged = delta::upsert(
        data_loc,
        ws,
        wb,
        &ds.contract.primary_key,
        newer.as_deref(),
        app,
        meta,
    )
    .await?;
    Ok(merged.map(|(_, counts)| counts))
}

/// Writes `rows` into `out` in slices of `step` rows (never the whole frame converted at once).
async fn write_slices(out: &mut delta::Appender, rows: &DataFrame, step: usize) -> Result<()> {
    let step = step.max(1);
    for offset in (0..rows.height()).step_by(step) {
        let mut slice = rows.slice(offset as i64, step);
        for b in frame::to_batches(&mut slice)?.1 {
            out.write(b).await?;
        }
    }
    Ok(())
}

/// Completes a batch whose unique-key rows were streamed into `out` (keys trusted did not
/// hold): appends the deduplicated rows held back, then commits with `meta` while `guard`
/// still holds (else a commit conflict: the rerun merges by key).
pub(super) async fn append_rest(
    mut out: delta::Appender,
    ds: &Dataset,
    winners: DataFrame,
    streamed: u64,
    meta: &[(&str, serde_json::Value)],
    guard: &delta::Guard,
) -> Result<Option<UpsertCounts>> {
    let rows = winners.height();
    write_slices(&mut out, &winners, ds.pipeline.trusted.chunk_rows).await?;
    drop(winners);
    out.set_metadata(meta);
    Ok(out.commit_guarded(guard).await?.map(|_| UpsertCounts {
        inserted: streamed + rows as u64,
        updated: 0,
    }))
}

/// Column whose values a curated product is recomputed by.
pub const COURSE: &str = "course_id";

/// What a batch does to trusted: the rows that change it, the counts and books, and the
/// courses it touches — the courses of its rows and the courses corrected records leave —
/// which curated recomputes.
pub(in crate::stage) struct Classified {
    pub(in crate::stage) winners: DataFrame,
    pub(in crate::stage) counts: UpsertCounts,
    /// Corrections older than the trusted record (ignored).
    pub(in crate::stage) stale: u64,
    /// Repeats within the batch + older records replaced + stale corrections.
    pub(in crate::stage) duplicates_dropped: u64,
    pub(in crate::stage) courses: BTreeSet<String>,
}

/// `k >= min AND k <= max` for each key column of `rows` whose type has a SQL literal here
/// (text, integers, dates); nothing for an empty frame.
pub(super) fn key_range(rows: &DataFrame, key: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if rows.height() == 0 {
        return Ok(out);
    }
    for k in key {
        let c = rows.column(k)?.as_materialized_series();
        let literal = |v: AnyValue| -> Option<String> {
            match v {
                AnyValue::String(s) => Some(delta::sql_literal(s)),
                AnyValue::StringOwned(s) => Some(delta::sql_literal(s.as_str())),
                AnyValue::Int32(n) => Some(n.to_string()),
                AnyValue::Int64(n) => Some(n.to_string()),
                AnyValue::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                    .map(|d| format!("DATE '{d}'")),
                _ => None,
            }
        };
        let (lo, hi) = (
            c.min_reduce()?.into_value().into_static(),
            c.max_reduce()?.into_value().into_static(),
        );
        if let (Some(lo), Some(hi)) = (literal(lo), literal(hi)) {
            out.push(format!("{k} >= {lo} AND {k} <= {hi}"));
        }
    }
    Ok(out)
}

/// Classifies a batch's deduplicated rows (`in_batch_duplicates` repeats already dropped)
/// against trusted: splits them into those that change trusted (new keys, newer corrections)
/// and counts them against what trusted holds now; older corrections are dropped.
pub(in crate::stage) async fn classify(
    data_loc: &delta::TableLoc,
    ds: &Dataset,
    valid: DataFrame,
    in_batch_duplicates: u64,
) -> Result<Classified> {
    let unique = valid.height() as u64;
    if unique == 0 {
        // Nothing to classify (every row streamed, or none valid): trusted is not read (with
        // no key range, the read below would be of every key trusted holds).
        return Ok(Classified {
            winners: valid,
            counts: UpsertCounts::default(),
            stale: 0,
            duplicates_dropped: in_batch_duplicates,
            courses: BTreeSet::new(),
        });
    }
    let key = &ds.contract.primary_key;
    let has_course = ds.contract.column(COURSE).is_some();
    let mut select: Vec<String> = key.clone();
    if let Some(o) = &ds.contract.newest_wins_by {
        select.push(format!("{o} AS __t_order"));
    }
    if has_course {
        select.push(format!("{COURSE} AS __t_course"));
    }
    let mut sql = format!("SELECT {} FROM t", select.join(", "));
    // Only rows whose key lies within the batch's key range can collide: the range lets Delta
    // skip every file outside it (an increment reads a few files, not the table).
    let range = key_range(&valid, key)?;
    if !range.is_empty() {
        sql.push_str(&format!(" WHERE {}", range.join(" AND ")));
    }
    let existing = match delta::query(data_loc, &sql).await? {
        Some((schema, batches)) => frame::from_batches(&schema, &batches)?,
        None => {
            let n = valid.height() as u64;
            let mut courses = BTreeSet::new();
            frame::distinct_text(&valid, COURSE, &mut courses)?;
            return Ok(Classified {
                winners: valid,
                counts: UpsertCounts {
                    inserted: n,
                    updated: 0,
                },
                stale: 0,
                duplicates_dropped: in_batch_duplicates,
                courses,
            });
        }
    };
    let on: Vec<Expr> = key.iter().map(|k| col(k.as_str())).collect();
    let joined = valid
        .lazy()
        .join(
            existing.lazy().with_column(lit(true).alias("__t_hit")),
            on.clone(),
            on,
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("__t_hit").fill_null(lit(false)))
        .collect()?;
    let newer = match &ds.contract.newest_wins_by {
        Some(o) => col("__t_order").is_null().or(col(o.as_str())
            .is_not_null()
            .and(col(o.as_str()).gt_eq(col("__t_order")))),
        None => lit(true),
    };
    let hit = col("__t_hit");
    let flagged = joined
        .lazy()
        .with_columns([
            hit.clone().not().alias("__insert"),
            hit.and(newer.fill_null(lit(false))).alias("__update"),
        ])
        .collect()?;
    let count =
        |c: &str| -> Result<u64> { Ok(flagged.column(c)?.bool()?.sum().unwrap_or(0) as u64) };
    let counts = UpsertCounts {
        inserted: count("__insert")?,
        updated: count("__update")?,
    };
    let mut drop: Vec<&str> = vec!["__t_hit", "__insert", "__update"];
    if ds.contract.newest_wins_by.is_some() {
        drop.push("__t_order");
    }
    let changing = flagged
        .lazy()
        .filter(col("__insert").or(col("__update")))
        .collect()?;
    let mut courses = BTreeSet::new();
    if has_course {
        drop.push("__t_course");
        frame::distinct_text(&changing, COURSE, &mut courses)?;
        // A correction may move a record to another course: the old one changes too.
        let left = changing
            .clone()
            .lazy()
            .filter(col("__update"))
            .select([col("__t_course")])
            .collect()?;
        frame::distinct_text(&left, "__t_course", &mut courses)?;
    }
    let winners = changing.lazy().drop(by_name(drop, true, false)).collect()?;
    let stale = unique - counts.inserted - counts.updated;
    Ok(Classified {
        winners,
        counts,
        stale,
        duplicates_dropped: in_batch_duplicates + counts.updated + stale,
        courses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Stage;

    /// A batch whose rows all streamed into trusted leaves nothing to classify: trusted is not
    /// read (it once was, whole, with no key range to narrow the read: 10 s and 2.7 GB for a
    /// day promoted into a 10M-row lake).
    #[tokio::test]
    async fn nothing_to_classify_reads_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::config::scaffold(dir.path()).expect("scaffold");
        let project = crate::project::Project::open(dir.path())
            .await
            .expect("project");
        let ds = project.dataset("attendance").expect("dataset");
        let loc = project.lake.loc(Stage::Trusted, "attendance").expect("loc");
        // A table any read of which fails.
        let log = loc.url.to_file_path().expect("path").join("_delta_log");
        std::fs::create_dir_all(&log).expect("log dir");
        std::fs::write(log.join("00000000000000000000.json"), "not a commit\n").expect("log");
        assert!(delta::query(&loc, "SELECT * FROM t").await.is_err());
        let empty = DataFrame::empty_with_schema(&Schema::from_iter([Field::new(
            "record_id".into(),
            DataType::String,
        )]));
        let c = classify(&loc, &ds, empty, 3).await.expect("not read");
        assert_eq!(c.counts, UpsertCounts::default());
        assert_eq!((c.stale, c.duplicates_dropped), (0, 3));
        assert!(c.winners.height() == 0 && c.courses.is_empty());
    }
}
