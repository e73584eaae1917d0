//! The list's inputs on day N: who is on the list (and who is reported apart), the
//! trusted-shaped attendance, grades and engagement frames of its students, and the products
//! the pipeline builds from them.
//!
//! Invariants: a student whose registration ended on or before day N, or who registered after
//! it, is not on the list; frames are built in (presentation, student, day) order; a score is
//! known (graded) on day N; the products are built by the pipeline's own code
//! (`curated::products`) and settings.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, NaiveTime};
use polars::prelude::*;

use super::{Apart, Assessment, Built, EvalError, Member, Oulad, Result};
use crate::curated::products;
use crate::curated::CuratedConfig;

pub(super) fn members(o: &Oulad, n: i64) -> (Vec<Member>, BTreeMap<String, Apart>) {
    let mut out = Vec::new();
    let mut apart: BTreeMap<String, Apart> = BTreeMap::new();
    for ((c, s), result) in &o.results {
        let (reg, unreg) = o
            .registrations
            .get(&(c.clone(), s.clone()))
            .copied()
            .unwrap_or_default();
        let a = apart.entry(c.clone()).or_default();
        if unreg.is_some() {
            a.withdrawn_by_day += 1;
            continue;
        }
        if reg.is_some_and(|r| r > n) {
            a.not_registered_yet += 1;
            continue;
        }
        out.push(Member {
            course: c.clone(),
            student: s.clone(),
            first_day: reg.unwrap_or(0).max(0),
            positive: result == "Fail" || result == "Withdrawn",
        });
    }
    (out, apart)
}

fn at(start: NaiveDate, day: i64) -> i64 {
    (start + Duration::days(day))
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default())
        .and_utc()
        .timestamp_micros()
}

fn ts_series(name: &str, v: Vec<Option<i64>>) -> Result<Column> {
    Ok(Series::new(name.into(), v)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))?
        .into_column())
}

/// The trusted-shaped attendance and grades frames of the list's students.
fn frames(o: &Oulad, list: &[Member], n: i64) -> Result<(DataFrame, DataFrame)> {
    let starts: HashMap<String, NaiveDate> = o
        .presentations
        .iter()
        .map(|p| (p.course_id(), p.start()))
        .collect();
    let (mut s, mut c, mut date, mut status, mut rec) = (vec![], vec![], vec![], vec![], vec![]);
    for m in list {
        let start = starts[&m.course];
        let days = o
            .activity
            .get(&(m.course.clone(), m.student.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for d in m.first_day..=n {
            s.push(m.student.clone());
            c.push(m.course.clone());
            date.push((start + Duration::days(d) - NaiveDate::default()).num_days() as i32);
            status.push(if days.binary_search(&d).is_ok() {
                "present"
            } else {
                "absent"
            });
            rec.push(Some(at(start, d)));
        }
    }
    let epoch = (NaiveDate::default() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
        .num_days() as i32;
    let rows = s.len();
    let attendance = DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Series::new(
                "session_date".into(),
                date.into_iter().map(|d| d + epoch).collect::<Vec<i32>>(),
            )
            .cast(&DataType::Date)?
            .into_column(),
            Column::new("status".into(), status),
            Column::new("minutes_attended".into(), vec![0i64; rows]),
            ts_series("recorded_at", rec)?,
        ],
    )?;
    let mut by_course: BTreeMap<&str, Vec<(&String, &Assessment)>> = BTreeMap::new();
    for (aid, a) in &o.assessments {
        by_course
            .entry(a.course.as_str())
            .or_default()
            .push((aid, a));
    }
    let (mut s, mut c, mut kind, mut due, mut sub, mut graded, mut score, mut weight) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for m in list {
        let start = starts[&m.course];
        for (aid, a) in by_course.get(m.course.as_str()).into_iter().flatten() {
            let got = o.submissions.get(&((*aid).clone(), m.student.clone()));
            s.push(m.student.clone());
            c.push(m.course.clone());
            kind.push(a.kind);
            due.push(Some(at(start, a.due)));
            sub.push(got.map(|(d, _)| at(start, *d)));
            let sc = got.and_then(|(_, sc)| *sc);
            graded.push(sc.map(|_| at(start, n)));
            score.push(sc);
            weight.push(a.weight);
        }
    }
    let rows = s.len();
    let grades = DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Column::new("assessment_type".into(), kind),
            ts_series("due_at", due)?,
            ts_series("submitted_at", sub)?,
            ts_series("graded_at", graded)?,
            Column::new("score".into(), score),
            Column::new("max_score".into(), vec![100.0f64; rows]),
            Column::new("weight".into(), weight),
        ],
    )?;
    Ok((attendance, grades))
}

/// The trusted-shaped engagement rows of the list's students (one per student, course, day and
/// activity type; OULAD has no time on task), or `None` when no activity was read.
pub(super) fn engagement_frame(o: &Oulad, list: &[Member]) -> Result<Option<DataFrame>> {
    if o.clicks.is_empty() {
        return Ok(None);
    }
    let starts: HashMap<String, NaiveDate> = o
        .presentations
        .iter()
        .map(|p| (p.course_id(), p.start()))
        .collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let (mut s, mut c, mut date, mut kind, mut clicks) = (vec![], vec![], vec![], vec![], vec![]);
    for m in list {
        let start = starts[&m.course];
        let key = (m.course.clone(), m.student.clone());
        for ((d, t), n) in o.clicks.get(&key).into_iter().flatten() {
            s.push(m.student.clone());
            c.push(m.course.clone());
            date.push((start + Duration::days(*d) - epoch).num_days() as i32);
            kind.push(*t);
            clicks.push(*n);
        }
    }
    let rows = s.len();
    Ok(Some(DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Series::new("activity_date".into(), date)
                .cast(&DataType::Date)?
                .into_column(),
            Column::new("activity_type".into(), kind),
            Column::new("clicks".into(), clicks),
            Series::new("minutes".into(), vec![None::<i64>; rows]).into_column(),
        ],
    )?))
}

pub(super) fn build(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Built> {
    let (list, apart) = members(o, n);
    if list.is_empty() {
        return Err(EvalError::Empty(n));
    }
    let (att, grades) = frames(o, &list, n)?;
    let attendance = products::student_course_attendance(&att, cfg).and_then(products::publish)?;
    let performance = products::student_course_performance(&grades).and_then(products::publish)?;
    let engagement = match engagement_frame(o, &list)? {
        Some(e) => Some(products::student_course_engagement(&e).and_then(products::publish)?),
        None => None,
    };
    Ok(Built {
        list,
        apart,
        attendance,
        performance,
        engagement,
    })
}
