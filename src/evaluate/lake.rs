//! `evaluate at-risk` inside an OULAD project (`medallion init --template oulad`): the list's
//! inputs are read from the lake's trusted tables instead of OULAD's files, then scored by the
//! same code as `--data`.
//!
//! Invariants (the same cut as [`super::Oulad::load`]):
//! - every date is turned back into a day of its course: `date - courses.start_date`;
//! - only what is dated on or before day N is kept: activity days and their clicks by type
//!   (trusted keeps one row per student, site and day), submissions (by
//!   `submitted_at`, their score known from then), withdrawals (`withdrawn_on`); the
//!   assessments' schedule (course, type, due day, weight) is known in advance;
//! - `final_result` is read only as the label.

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;

use super::{Assessment, EvalError, Oulad, Presentation, Result};
use crate::lake::Lake;
use crate::vocab::Stage;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

async fn frame(lake: &Lake, table: &str, sql: &str) -> Result<Option<DataFrame>> {
    let loc = lake
        .loc(Stage::Trusted, table)
        .map_err(|e| lake_err(table, e.to_string()))?;
    let got = crate::storage::delta::query(&loc, sql)
        .await
        .map_err(|e| lake_err(table, e.to_string()))?;
    match got {
        Some((schema, batches)) => Ok(Some(
            crate::frame::from_batches(&schema, &batches)
                .map_err(|e| lake_err(table, e.to_string()))?,
        )),
        None => Ok(None),
    }
}

fn lake_err(table: &str, message: String) -> EvalError {
    EvalError::Read {
        path: format!("trusted.{table}").into(),
        message,
    }
}

fn need(table: &str, df: Option<DataFrame>) -> Result<DataFrame> {
    df.ok_or_else(|| {
        lake_err(
            table,
            "no such table: land OULAD and promote it first (medallion land --all DIR && medallion promote --all --to trusted)".into(),
        )
    })
}

fn strs(df: &DataFrame, c: &str) -> Result<Vec<Option<String>>> {
    Ok(df
        .column(c)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.map(String::from))
        .collect())
}

fn ints(df: &DataFrame, c: &str) -> Result<Vec<Option<i64>>> {
    Ok(df
        .column(c)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .collect())
}

fn floats(df: &DataFrame, c: &str) -> Result<Vec<Option<f64>>> {
    Ok(df
        .column(c)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .collect())
}

fn kind(t: &str) -> &'static str {
    match t {
        "assignment" => "assignment",
        "quiz" => "quiz",
        "project" => "project",
        _ => "exam",
    }
}

impl Oulad {
    /// Reads the list's inputs from the lake's trusted `courses`, `students` (with
    /// `final_result`, `enrolled_on`, `withdrawn_on`: the OULAD template's contract), `grades`
    /// and `engagement`, keeping only what is dated on or before `as_of_day` of each course.
    /// `only` keeps these presentations (`2014J`) or courses (`AAA-2014J`).
    ///
    /// # Errors
    /// A missing table or column (not an OULAD project, or nothing promoted yet).
    pub async fn from_lake(lake: &Lake, as_of_day: i64, only: &[String]) -> Result<Self> {
        let mut o = Oulad::default();
        let keep = |course: &str| {
            only.is_empty()
                || only
                    .iter()
                    .any(|x| x == course || course.rsplit_once('-').is_some_and(|(_, p)| p == x))
        };
        let courses = need(
            "courses",
            frame(
                lake,
                "courses",
                "SELECT course_id, CAST(CAST(start_date AS INT) AS BIGINT) AS s, \
                 CAST(CAST(end_date AS INT) AS BIGINT) AS e FROM t ORDER BY course_id",
            )
            .await?,
        )?;
        let mut start: HashMap<String, i64> = HashMap::new();
        let (ids, s, e) = (
            strs(&courses, "course_id")?,
            ints(&courses, "s")?,
            ints(&courses, "e")?,
        );
        for ((id, s), e) in ids.into_iter().zip(s).zip(e) {
            let (Some(id), Some(s)) = (id, s) else {
                continue;
            };
            if !keep(&id) {
                continue;
            }
            let (module, presentation) = id
                .rsplit_once('-')
                .map_or((id.clone(), String::new()), |(m, p)| {
                    (m.to_string(), p.to_string())
                });
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap_or_default()
                .checked_add_signed(chrono::Duration::days(s))
                .unwrap_or_default();
            o.presentations.push(Presentation {
                module,
                presentation,
                length: e.map_or(0, |e| e - s),
                course: id.clone(),
                start: date,
            });
            start.insert(id, s);
        }
        let day =
            |course: &str, abs: Option<i64>| -> Option<i64> { Some(abs? - start.get(course)?) };
        let students = need(
            "students",
            frame(
                lake,
                "students",
                "SELECT student_id, course_id, final_result, \
                 CAST(CAST(enrolled_on AS INT) AS BIGINT) AS reg, \
                 CAST(CAST(withdrawn_on AS INT) AS BIGINT) AS unreg FROM t",
            )
            .await
            .map_err(|e| {
                lake_err(
                    "students",
                    format!("{e} (evaluate at-risk in a lake needs the OULAD template's students: final_result, enrolled_on, withdrawn_on)"),
                )
            })?,
        )?;
        let (sid, cid, result, reg, unreg) = (
            strs(&students, "student_id")?,
            strs(&students, "course_id")?,
            strs(&students, "final_result")?,
            ints(&students, "reg")?,
            ints(&students, "unreg")?,
        );
        for i in 0..sid.len() {
            let (Some(s), Some(c)) = (&sid[i], &cid[i]) else {
                continue;
            };
            if !start.contains_key(c) {
                continue;
            }
            let key = (c.clone(), s.clone());
            o.results
                .insert(key.clone(), result[i].clone().unwrap_or_default());
            let unreg = day(c, unreg[i]).filter(|d| *d <= as_of_day);
            o.registrations.insert(key, (day(c, reg[i]), unreg));
        }
        if let Some(g) = frame(
            lake,
            "grades",
            "SELECT assessment_id, student_id, course_id, assessment_type, \
             CAST(due_at AS BIGINT) AS due, CAST(submitted_at AS BIGINT) AS sub, score, weight \
             FROM t ORDER BY assessment_id, student_id",
        )
        .await?
        {
            let (aid, sid, cid, kinds) = (
                strs(&g, "assessment_id")?,
                strs(&g, "student_id")?,
                strs(&g, "course_id")?,
                strs(&g, "assessment_type")?,
            );
            let (due, sub, score, weight) = (
                ints(&g, "due")?,
                ints(&g, "sub")?,
                floats(&g, "score")?,
                floats(&g, "weight")?,
            );
            let micros_day = |v: Option<i64>| v.map(|m| m.div_euclid(DAY_MICROS));
            for i in 0..aid.len() {
                let (Some(a), Some(s), Some(c)) = (&aid[i], &sid[i], &cid[i]) else {
                    continue;
                };
                if !start.contains_key(c) {
                    continue;
                }
                if let Some(due) = day(c, micros_day(due[i])) {
                    o.assessments.entry(a.clone()).or_insert(Assessment {
                        course: c.clone(),
                        kind: kind(kinds[i].as_deref().unwrap_or_default()),
                        due,
                        weight: weight[i].unwrap_or(0.0),
                    });
                }
                if let Some(d) = day(c, micros_day(sub[i])).filter(|d| *d <= as_of_day) {
                    o.submissions.insert((a.clone(), s.clone()), (d, score[i]));
                }
            }
            // A submission of an assessment whose schedule is unknown (due date quarantined)
            // cannot be placed, as in --data where it is not in assessments.csv.
            o.submissions
                .retain(|(a, _), _| o.assessments.contains_key(a));
        }
        if let Some(act) = frame(
            lake,
            "engagement",
            "SELECT course_id, student_id, \
             CAST(CAST(activity_date AS INT) AS BIGINT) AS d, activity_type, \
             CAST(SUM(clicks) AS BIGINT) AS n FROM t \
             GROUP BY course_id, student_id, activity_date, activity_type",
        )
        .await?
        {
            let (cid, sid, d, t, n) = (
                strs(&act, "course_id")?,
                strs(&act, "student_id")?,
                ints(&act, "d")?,
                strs(&act, "activity_type")?,
                ints(&act, "n")?,
            );
            for i in 0..cid.len() {
                let (Some(c), Some(s)) = (&cid[i], &sid[i]) else {
                    continue;
                };
                if let Some(d) = day(c, d[i]).filter(|d| *d <= as_of_day) {
                    let key = (c.clone(), s.clone());
                    let t = super::oulad::engagement_type(t[i].as_deref().unwrap_or_default());
                    *o.clicks
                        .entry(key.clone())
                        .or_default()
                        .entry((d, t))
                        .or_default() += n[i].unwrap_or(0);
                    o.activity.entry(key).or_default().push(d);
                }
            }
        }
        for days in o.activity.values_mut() {
            days.sort_unstable();
            days.dedup();
        }
        if let Some(f) = frame(
            lake,
            "engagement",
            "SELECT DISTINCT _source_file AS f FROM t",
        )
        .await?
        {
            o.activity_files = strs(&f, "f")?
                .into_iter()
                .flatten()
                .collect::<BTreeSet<_>>()
                .len();
        }
        Ok(o)
    }
}
