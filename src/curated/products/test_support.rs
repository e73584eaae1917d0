//! Fixtures the product tests share: settings with hand-countable weights, attendance and
//! performance rows of two courses, and readers of one student's row.
//!
//! Invariants: test-only; the fixtures are fixed, so the hand-counted expectations of the
//! tests hold.

use polars::prelude::*;

use super::{C, S};
use crate::curated::CuratedConfig;

pub(super) fn settings() -> CuratedConfig {
    let mut cfg: CuratedConfig =
        serde_yaml::from_str(include_str!("../../../pipelines/curated/products.yaml")).unwrap();
    let a = &mut cfg.at_risk;
    a.pass_mark.courses.insert("C1".into(), 40.0);
    a.levels.medium = 1.0;
    a.levels.high = 3.0;
    let i = &mut a.indicators;
    for ind in [
        &mut i.low_grade,
        &mut i.low_grade_for_course,
        &mut i.declining_trend,
        &mut i.low_completion,
        &mut i.low_attendance_for_course,
        &mut i.no_recent_activity,
        &mut i.falling_attendance,
    ] {
        ind.weight = 1.0;
    }
    i.chronic_absence.weight = 0.0;
    // Indicators with their own tests below: off here, so the hand-counted scores stay.
    i.late_submissions.weight = 0.0;
    i.low_recent_engagement_for_course.weight = 0.0;
    cfg
}

/// C1: five students, d disengaging, c failing with unweighted grades; C2: three students
/// whose attendance all fell over a break.
pub(super) fn inputs() -> (DataFrame, DataFrame) {
    let f = |v: &[f64]| v.to_vec();
    let att = DataFrame::new(
        8,
        vec![
            Column::new(S.into(), ["a", "b", "c", "d", "e", "x", "y", "z"]),
            Column::new(C.into(), ["C1", "C1", "C1", "C1", "C1", "C2", "C2", "C2"]),
            Column::new("sessions".into(), [10i64, 10, 10, 10, 10, 10, 10, 10]),
            Column::new("absent".into(), [0i64, 0, 1, 5, 2, 4, 4, 4]),
            Column::new("excused".into(), [0i64; 8]),
            Column::new(
                "attendance_rate".into(),
                f(&[1.0, 1.0, 0.9, 0.5, 0.8, 0.6, 0.6, 0.6]),
            ),
            Column::new(
                "absence_rate".into(),
                f(&[0.0, 0.0, 0.1, 0.5, 0.2, 0.4, 0.4, 0.4]),
            ),
            Column::new(
                "recent_rate".into(),
                f(&[1.0, 1.0, 0.9, 0.2, 0.8, 0.3, 0.3, 0.3]),
            ),
            Column::new(
                "earlier_rate".into(),
                f(&[1.0, 1.0, 0.9, 0.8, 0.8, 0.9, 0.9, 0.9]),
            ),
            Column::new("days_since_attended".into(), [0i64, 0, 0, 20, 2, 3, 3, 3]),
        ],
    )
    .unwrap();
    let perf = DataFrame::new(
        5,
        vec![
            Column::new(S.into(), ["a", "b", "c", "d", "e"]),
            Column::new(C.into(), ["C1"; 5]),
            Column::new(
                "weighted_grade".into(),
                [Some(80.0), Some(75.0), None, Some(50.0), Some(90.0)],
            ),
            Column::new(
                "average_score_pct".into(),
                f(&[80.0, 75.0, 35.0, 50.0, 90.0]),
            ),
            Column::new("grade_trend".into(), [None::<f64>; 5]),
            Column::new("completion_rate".into(), f(&[1.0, 1.0, 1.0, 0.5, 1.0])),
            Column::new("missing".into(), [0i64, 0, 0, 2, 0]),
            Column::new("due".into(), [4i64; 5]),
            Column::new("late".into(), [0i64; 5]),
        ],
    )
    .unwrap();
    (att, perf)
}

pub(super) fn one(df: &DataFrame, student: &str) -> DataFrame {
    let m = df.column(S).unwrap().str().unwrap().equal(student);
    df.filter(&m).unwrap()
}

pub(super) fn num(df: &DataFrame, c: &str) -> Option<f64> {
    df.column(c)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
}

pub(super) fn text(df: &DataFrame, c: &str) -> String {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap_or("")
        .to_string()
}

pub(super) fn flag(df: &DataFrame, c: &str) -> bool {
    df.column(c).unwrap().bool().unwrap().get(0).unwrap()
}
