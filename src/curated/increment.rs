//! A day of attendance into curated without reading trusted attendance again.
//!
//! Curated keeps the state `student_course_attendance` is made of in two internal tables
//! ([`TOTALS`], [`RECENT`]; pseudonyms only, never registered in the catalog). When the only
//! pending trusted commits are attendance batches that append (no record replaced, every
//! session after its student's last one in the course, see
//! [`products::attendance_state::advance`]), the attendance products, the at-risk list and the
//! course summary of the touched courses are computed from the state, the batches' own rows,
//! and the stored per-student grade and engagement products — a read proportional to the
//! increment and the number of students, not to the lake. Anything else (a correction, a
//! re-delivery, an erasure, grades or engagement pending, a state that does not cover exactly
//! what the products consumed) takes the rebuild from trusted, which rewrites the state of
//! the courses it rebuilds.
//!
//! Invariants: each state table's newest curated commit records every attendance batch its
//! rows reflect; the increment runs only when both record exactly the batches the products
//! consumed, so a crash between the state's commit and the products' leaves a mismatch that
//! makes the next run rebuild. The state is written before the products.

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;

use super::products::{self, attendance_state, publish, Inputs};
use super::read::{course_filter, order_by, product_columns, sql_list};
use super::{CuratedConfig, STEP};
use crate::frame;
use crate::lake::Lake;
use crate::ledger;
use crate::stage::Result;
use crate::storage::delta;
use crate::vocab::Stage;

/// Per student and course: the attendance totals (see `attendance_state`).
pub const TOTALS: &str = "attendance_totals";
/// The recent attendance sessions of every course.
pub const RECENT: &str = "attendance_recent";
/// The internal state tables (pseudonyms only; an erasure removes the student from them too).
pub const STATE_TABLES: [&str; 2] = [TOTALS, RECENT];

/// The products the increment computes (those that read attendance).
pub(super) const PRODUCTS: [&str; 4] = [
    "student_course_attendance",
    "attendance_weekly",
    "at_risk_students",
    "course_summary",
];

/// The attendance batches (`attendance/<label>`) a state table's rows reflect, from its newest
/// curated commit; `None` without the table or that record (an erasure trims the history:
/// the next attendance batch then rebuilds every course).
///
/// # Errors
/// delta-rs errors.
pub async fn covered(lake: &Lake, table: &str) -> Result<Option<BTreeSet<String>>> {
    let loc = lake.loc(Stage::Curated, table)?;
    // The newest curated commit (an erasure's delete may be newer).
    let newest = delta::newest_step_commits(&loc, &[STEP], 1)
        .await?
        .into_iter()
        .next();
    Ok(newest.and_then(|info| {
        ledger::CommitMeta::read(&info)
            .batches
            .map(|b| b.into_iter().collect())
    }))
}

/// Whether both state tables reflect exactly `batches`.
///
/// # Errors
/// delta-rs errors.
pub async fn covers(lake: &Lake, batches: &BTreeSet<String>) -> Result<bool> {
    for t in STATE_TABLES {
        if covered(lake, t).await?.as_ref() != Some(batches) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Replaces the state of `courses` with `totals` and `recent`, one commit per table; with
/// `batches`, records that the state now reflects them (written even when no course changes,
/// so the record stays exact) and deletes the files earlier commits replaced. A commit without
/// the record (a rebuild writes each group of courses as it goes) leaves the state not current
/// until the record follows.
pub(super) async fn write_state(
    lake: &Lake,
    totals: DataFrame,
    recent: DataFrame,
    courses: &BTreeSet<String>,
    batches: Option<&BTreeSet<String>>,
) -> Result<()> {
    let mut meta = ledger::CommitMeta::new(ledger::Step::TrustedToCurated);
    if let Some(b) = batches {
        meta = meta.with_batches(b.iter().cloned().collect());
    }
    let meta = meta.entries();
    for (table, mut df) in [(TOTALS, totals), (RECENT, recent)] {
        let rows = df.height();
        let (schema, data) = frame::to_batches(&mut df)?;
        let loc = lake.loc(Stage::Curated, table)?;
        let predicate = (!courses.is_empty() || rows > 0).then(|| course_filter(courses));
        delta::replace_where(&loc, schema, data, predicate.as_deref(), &[], &meta).await?;
        if batches.is_some() {
            // Every run rewrites the state of the courses it touches: the files it replaced
            // are deleted (no one time-travels the state), so the folder does not grow by a
            // copy of the state a day.
            delta::vacuum_removed(&loc).await?;
        }
    }
    Ok(())
}

/// The rows `sql` selects from the curated table `table`, `None` without the table.
async fn curated_rows(lake: &Lake, table: &str, sql: &str) -> Result<Option<DataFrame>> {
    Ok(
        match delta::query(&lake.loc(Stage::Curated, table)?, sql).await? {
            Some((s, b)) => Some(frame::from_batches(&s, &b)?),
            None => None,
        },
    )
}

/// The state's rows of `courses` (in no particular order: `advance` sorts what needs it),
/// `None` without the table.
async fn read_state(
    lake: &Lake,
    table: &str,
    courses: &BTreeSet<String>,
) -> Result<Option<DataFrame>> {
    let sql = format!("SELECT * FROM t WHERE {}", course_filter(courses));
    curated_rows(lake, table, &sql).await
}

/// A stored product's rows of `courses` in key order, `None` without the table.
async fn read_product(
    lake: &Lake,
    product: &str,
    courses: &BTreeSet<String>,
) -> Result<Option<DataFrame>> {
    let sql = format!(
        "SELECT * FROM t WHERE {} ORDER BY {}",
        course_filter(courses),
        products::key(product).join(", ")
    );
    curated_rows(lake, product, &sql).await
}

/// What the increment built.
pub(super) struct Built {
    /// Each product's rows of the touched courses.
    pub products: HashMap<&'static str, DataFrame>,
    /// The new state of the touched courses.
    pub totals: DataFrame,
    /// The new recent sessions of the touched courses.
    pub recent: DataFrame,
}

/// The products of `courses` after the attendance batches `labels` (already in trusted,
/// consumed by no product yet, each an append of new records), from the state; `None` when
/// the batches are not an append of sessions after the kept ones (then rebuild).
///
/// # Errors
/// Storage and polars errors.
pub(super) async fn build(
    lake: &Lake,
    cfg: &CuratedConfig,
    labels: &BTreeSet<String>,
    courses: &BTreeSet<String>,
    students: Option<&DataFrame>,
) -> Result<Option<Built>> {
    let started = std::time::Instant::now();
    let lap = |what: &str| {
        let secs = started.elapsed().as_secs_f64();
        tracing::debug!(secs, what, "Curated increment.");
    };
    let Some(columns) = product_columns(lake, "attendance").await? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {columns} FROM t WHERE _batch_id IN ({}) ORDER BY {}",
        sql_list(labels),
        order_by("attendance")
    );
    let loc = lake.loc(Stage::Trusted, "attendance")?;
    let Some((schema, batches)) = delta::query(&loc, &sql).await? else {
        return Ok(None);
    };
    let new = products::sessions(&frame::from_batches(&schema, &batches)?)?;
    lap("read the batches' rows");
    let mut touched = BTreeSet::new();
    frame::distinct_text(&new, "course_id", &mut touched)?;
    // The commits' courses are the courses of their rows when they only add records.
    if touched.is_empty() || &touched != courses {
        return Ok(None);
    }
    let (Some(totals), Some(recent)) = (
        read_state(lake, TOTALS, courses).await?,
        read_state(lake, RECENT, courses).await?,
    ) else {
        return Ok(None);
    };
    lap("read the state");
    let Some(adv) = attendance_state::advance(&totals, &recent, &new)? else {
        return Ok(None);
    };
    let attendance =
        attendance_state::product_of(&adv.totals, &adv.recent, cfg).and_then(publish)?;
    // The weeks that changed, after the course's weeks before them as stored.
    let changed = products::weekly_attendance_of(adv.weeks, cfg).and_then(publish)?;
    let mut weekly = match read_product(lake, "attendance_weekly", courses).await? {
        Some(old) => old
            .lazy()
            .join(
                adv.from_week
                    .clone()
                    .lazy()
                    .select([col("course_id"), col("week_start").alias("__from")]),
                [col("course_id")],
                [col("course_id")],
                JoinArgs::new(JoinType::Left),
            )
            .filter(
                col("__from")
                    .is_null()
                    .or(col("week_start").lt(col("__from"))),
            )
            .drop(cols(["__from"]))
            .collect()?,
        None => changed.clear(),
    };
    weekly.vstack_mut(&changed.select(weekly.get_column_names_owned())?)?;
    let weekly = weekly.sort(["course_id", "week_start"], SortMultipleOptions::default())?;
    lap("added the sessions, attendance products");
    let performance = read_product(lake, "student_course_performance", courses).await?;
    let engagement = read_product(lake, "student_course_engagement", courses).await?;
    let at_risk = products::at_risk_students(
        Some(attendance.clone()),
        performance.clone(),
        engagement,
        cfg,
    )
    .and_then(publish)?;
    let summary = products::course_summary(&at_risk, students, cfg).and_then(publish)?;
    let inputs = Inputs {
        attendance: Some(attendance.clone()),
        grades: performance,
        students: students.cloned(),
        engagement: None,
    };
    lap("at-risk list and course summary");
    let mut out = HashMap::new();
    for (name, df) in PRODUCTS
        .into_iter()
        .zip([attendance, weekly, at_risk, summary])
    {
        products::check(name, &df, &inputs)?;
        out.insert(name, df);
    }
    Ok(Some(Built {
        products: out,
        totals: adv.totals,
        recent: adv.recent,
    }))
}

/// The students whose sessions of a course end in at least `n` absences in a row
/// (`student_id`, `course_id`, `streak`; by course and student), from the state, when it
/// reflects every attendance batch trusted holds; `None` otherwise (read trusted instead).
///
/// # Errors
/// Storage and polars errors.
pub async fn trailing_absences(lake: &Lake, n: u32) -> Result<Option<DataFrame>> {
    let all: BTreeSet<String> = super::trusted_commits(lake, "attendance")
        .await?
        .into_iter()
        .map(|(label, _, _)| format!("attendance/{label}"))
        .collect();
    if !covers(lake, &all).await? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT student_id, course_id, trailing_absent AS streak FROM t \
         WHERE trailing_absent >= {n} ORDER BY course_id, student_id"
    );
    curated_rows(lake, TOTALS, &sql).await
}
