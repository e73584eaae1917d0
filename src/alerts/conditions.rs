//! What each rule's condition holds for now: the students (or courses) it fires on, with the
//! measured value, read from the trusted and curated tables.
//!
//! Invariants: a rule whose input table does not exist yet is reported as skipped (`Err(why)`),
//! never as "holds for nobody"; attendance is read a few whole courses at a time, so memory
//! stays bounded; the subjects come out in (course, student) order.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::{float, numbers_as_floats, read, text, AlertRule, Condition, Hit, C, S};
use crate::curated::{products, ByCourse};
use crate::lake::Lake;
use crate::stage::Result;
use crate::storage::delta;
use crate::vocab::Stage;

/// Trusted attendance rows read at once by `absent_in_a_row` (whole courses, about this many).
const GROUP_ROWS: u64 = 1 << 20;

/// Students absent at least `sessions` sessions of a course in a row, up to their newest
/// session of it, from the attendance rows of some courses.
fn absent_in_a_row(att: &DataFrame, sessions: u32) -> Result<Vec<Hit>> {
    let s = products::sessions(att)?;
    let key = [col(S), col(C)];
    let last = s
        .clone()
        .lazy()
        .filter(col("status").neq(lit("absent")))
        .group_by(key.clone())
        .agg([col("session_date").max().alias("__last")]);
    let df = s
        .lazy()
        .join(
            last,
            key.clone(),
            key.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .filter(
            col("status").eq(lit("absent")).and(
                col("__last")
                    .is_null()
                    .or(col("session_date").gt(col("__last"))),
            ),
        )
        .group_by(key)
        .agg([len().cast(DataType::Int64).alias("streak")])
        .filter(col("streak").gt_eq(lit(i64::from(sessions))))
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    streak_hits(df)
}

/// A hit per row of (`student_id`, `course_id`, `streak`).
fn streak_hits(df: DataFrame) -> Result<Vec<Hit>> {
    let df = numbers_as_floats(df)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(Hit {
            student: text(&df, S, i)?,
            course: text(&df, C, i)?,
            value: float(&df, "streak", i)?.unwrap_or_default(),
            reasons: String::new(),
            actions: String::new(),
        });
    }
    Ok(out)
}

/// The subjects for which `rule` holds now, or `Err(why)` when it cannot be evaluated.
pub(super) async fn hits(
    lake: &Lake,
    rule: &AlertRule,
) -> Result<std::result::Result<(Vec<Hit>, f64), String>> {
    let now = lake.clock.now();
    let mut out = Vec::new();
    let threshold;
    match &rule.when {
        Condition::AbsentInARow { sessions } => {
            threshold = f64::from(*sessions);
            let loc = lake.loc(Stage::Trusted, "attendance")?;
            if delta::open(&loc).await?.is_none() {
                return Ok(Err("trusted.attendance does not exist yet".into()));
            }
            // The runs of absences at the end of each student's sessions are kept with the
            // curated attendance state; read trusted only when the state is not current.
            if let Some(df) = crate::curated::increment::trailing_absences(lake, *sessions).await? {
                return Ok(Ok((streak_hits(df)?, threshold)));
            }
            // A few courses at a time from one sorted read: a run of absences is within one
            // course, and memory stays bounded whatever the size of the lake.
            let datasets = BTreeSet::from(["attendance"]);
            let groups = crate::curated::course_groups(lake, None, &datasets, GROUP_ROWS).await?;
            let all: BTreeSet<String> = groups.iter().flatten().cloned().collect();
            let columns = "student_id, course_id, session_date, status, recorded_at, record_id";
            if let Some(mut att) = ByCourse::open(
                lake,
                "attendance",
                columns,
                &all,
                crate::curated::SORT_MEMORY,
            )
            .await?
            {
                for group in groups.iter().filter(|g| !g.is_empty()) {
                    let rows = att.through(group.last().map(String::as_str)).await?;
                    out.extend(absent_in_a_row(&rows, *sessions)?);
                }
            }
            out.sort_by(|a, b| (&a.course, &a.student).cmp(&(&b.course, &b.student)));
        }
        Condition::NoActivity { days, table, at } => {
            threshold = f64::from(*days);
            let (stage, name) = table.split_once('.').unwrap_or(("trusted", table));
            let stage = Stage::parse(stage).unwrap_or(Stage::Trusted);
            let loc = lake.loc(stage, name)?;
            let Some((schema, _)) = delta::query(&loc, "SELECT * FROM t LIMIT 0").await? else {
                return Ok(Err(format!("{table} does not exist")));
            };
            for c in [S, at.as_str()] {
                if schema.field_with_name(c).is_err() {
                    return Ok(Err(format!("{table} has no column `{c}`")));
                }
            }
            let sql = format!(
                "SELECT student_id, to_unixtime(max(\"{}\")) AS last_s FROM t WHERE student_id IS NOT NULL GROUP BY student_id ORDER BY student_id",
                at.replace('"', "")
            );
            let Some(df) = read(lake, stage, name, &sql).await? else {
                return Ok(Err(format!("{table} does not exist")));
            };
            for i in 0..df.height() {
                let Some(last) = float(&df, "last_s", i)? else {
                    continue;
                };
                let idle = (now.timestamp() as f64 - last) / 86_400.0;
                if idle >= threshold {
                    out.push(Hit {
                        student: text(&df, S, i)?,
                        course: None,
                        value: idle.floor(),
                        reasons: String::new(),
                        actions: String::new(),
                    });
                }
            }
        }
        Condition::RiskRoseToHigh => {
            threshold = 0.0;
            let Some(df) = read(
                lake,
                Stage::Curated,
                "at_risk_students",
                "SELECT student_id, course_id, risk_score, reasons, actions FROM t WHERE risk_level = 'high' ORDER BY course_id, student_id",
            )
            .await?
            else {
                return Ok(Err("curated.at_risk_students does not exist yet".into()));
            };
            for i in 0..df.height() {
                out.push(Hit {
                    student: text(&df, S, i)?,
                    course: text(&df, C, i)?,
                    value: float(&df, "risk_score", i)?.unwrap_or_default(),
                    reasons: text(&df, "reasons", i)?.unwrap_or_default(),
                    actions: text(&df, "actions", i)?.unwrap_or_default(),
                });
            }
        }
        Condition::MissedAssessments { count } => {
            threshold = f64::from(*count);
            let Some(df) = read(
                lake,
                Stage::Curated,
                "student_course_performance",
                &format!("SELECT student_id, course_id, missing FROM t WHERE missing >= {count} ORDER BY course_id, student_id"),
            )
            .await?
            else {
                return Ok(Err("curated.student_course_performance does not exist yet".into()));
            };
            for i in 0..df.height() {
                out.push(Hit {
                    student: text(&df, S, i)?,
                    course: text(&df, C, i)?,
                    value: float(&df, "missing", i)?.unwrap_or_default(),
                    reasons: String::new(),
                    actions: String::new(),
                });
            }
        }
        Condition::WeeklyAttendanceFell { points } => {
            threshold = *points;
            let Some(df) = read(
                lake,
                Stage::Curated,
                "attendance_weekly",
                "SELECT course_id, attendance_rate FROM t WHERE NOT suppressed AND attendance_rate IS NOT NULL ORDER BY course_id, week_start",
            )
            .await?
            else {
                return Ok(Err("curated.attendance_weekly does not exist yet".into()));
            };
            let mut weeks: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for i in 0..df.height() {
                if let (Some(c), Some(r)) = (text(&df, C, i)?, float(&df, "attendance_rate", i)?) {
                    weeks.entry(c).or_default().push(r);
                }
            }
            for (course, rates) in weeks {
                if let [.., before, last] = rates[..] {
                    let fell = (before - last) * 100.0;
                    if fell >= *points - 1e-9 {
                        out.push(Hit {
                            student: None,
                            course: Some(course),
                            value: (fell * 10.0).round() / 10.0,
                            reasons: String::new(),
                            actions: String::new(),
                        });
                    }
                }
            }
        }
    }
    Ok(Ok((out, threshold)))
}
