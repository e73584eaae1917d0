//! The attendance products: `student_course_attendance` and `attendance_weekly`, from
//! trusted.attendance.
//!
//! Invariants: one session per student, course and session date (the newest correction by
//! `recorded_at` wins) before anything is counted; present and late count as attended; every
//! rate is in 0..1 and null when its denominator is 0; weekly cells describing fewer than
//! `small_cell_min` students are suppressed.

use polars::prelude::*;

use super::{count_if, in_order, null_f64, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

/// The order [`sessions`] de-duplicates in and returns its rows in: course, student, session
/// date, correction time. trusted.attendance is read for the products in this order
/// (`curated::read::read_order`), so its sort is usually skipped.
pub const SESSION_ORDER: [&str; 4] = [C, S, "session_date", "recorded_at"];

/// One row per student × course × session date (the newest correction wins), in
/// [`SESSION_ORDER`]. Rows already in that order are not sorted again (checked in one pass).
pub fn sessions(att: &DataFrame) -> Result<DataFrame> {
    let sorted;
    let ordered = if in_order(att, &SESSION_ORDER)? {
        att
    } else {
        sorted = att.sort(SESSION_ORDER, SortMultipleOptions::default())?;
        &sorted
    };
    Ok(ordered.unique_stable(
        Some(&[S.to_string(), C.to_string(), "session_date".to_string()]),
        UniqueKeepStrategy::Last,
        None,
    )?)
}

/// `student_course_attendance`.
pub fn student_course_attendance(att: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    course_attendance_of(sessions(att)?, cfg)
}

/// `student_course_attendance` from the [`sessions`] of trusted.attendance (in
/// [`SESSION_ORDER`]: a student's sessions of a course by date, what the streaks count in).
pub(super) fn course_attendance_of(s: DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    let attended = col("status").is_in(
        lit(Series::new("a".into(), ["present", "late"])).implode(true),
        false,
    );
    let missed = col("status").is_in(
        lit(Series::new("m".into(), ["absent", "excused"])).implode(true),
        false,
    );
    let base = s
        .lazy()
        .with_columns([
            attended.alias("__attended"),
            missed.alias("__missed"),
            col("session_date")
                .max()
                .over([col(C)])?
                .alias("__course_last"),
            col("session_date")
                .min()
                .over([col(C)])?
                .alias("__course_first"),
        ])
        .with_column(
            (col("session_date")
                .cast(DataType::Int32)
                .gt(col("__course_last").cast(DataType::Int32) - lit(21)))
            .alias("__recent"),
        );
    let streaks = base
        .clone()
        .with_column(
            col("__missed")
                .neq(col("__missed").shift(lit(1)))
                .fill_null(lit(true))
                .cast(DataType::UInt32)
                .cum_sum(false)
                .over([col(S), col(C)])?
                .alias("__run"),
        )
        .group_by([col(S), col(C), col("__run")])
        .agg([col("__missed").first().alias("__m"), len().alias("__len")])
        .filter(col("__m"))
        .group_by([col(S), col(C)])
        .agg([col("__len")
            .max()
            .cast(DataType::Int64)
            .alias("longest_absence_streak")]);
    let out = base
        .group_by([col(S), col(C)])
        .agg([
            len().cast(DataType::Int64).alias("sessions"),
            count_if(col("status").eq(lit("present")))
                .cast(DataType::Int64)
                .alias("present"),
            count_if(col("status").eq(lit("absent")))
                .cast(DataType::Int64)
                .alias("absent"),
            count_if(col("status").eq(lit("late")))
                .cast(DataType::Int64)
                .alias("late"),
            count_if(col("status").eq(lit("excused")))
                .cast(DataType::Int64)
                .alias("excused"),
            col("minutes_attended")
                .sum()
                .cast(DataType::Int64)
                .alias("minutes_attended"),
            col("session_date")
                .filter(col("__attended"))
                .max()
                .alias("last_attended_date"),
            count_if(col("__recent")).alias("__rn"),
            count_if(col("__recent").and(col("__attended"))).alias("__ra"),
            count_if(col("__recent").not()).alias("__en"),
            count_if(col("__recent").not().and(col("__attended"))).alias("__ea"),
            col("__course_last").first().alias("__course_last"),
            col("__course_first").first().alias("__course_first"),
        ])
        .join(
            streaks,
            [col(S), col(C)],
            [col(S), col(C)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("longest_absence_streak").fill_null(lit(0i64)),
            ratio(col("present") + col("late"), col("sessions")).alias("attendance_rate"),
            ratio(col("absent") + col("excused"), col("sessions")).alias("absence_rate"),
            ratio(col("__ra"), col("__rn")).alias("recent_rate"),
            ratio(col("__ea"), col("__en")).alias("earlier_rate"),
            // Never attended: counted from the day before the course's first session.
            (col("__course_last").cast(DataType::Int64)
                - col("last_attended_date")
                    .cast(DataType::Int64)
                    .fill_null(col("__course_first").cast(DataType::Int64) - lit(1i64)))
            .alias("days_since_attended"),
        ])
        .with_column(
            col("absence_rate")
                .gt_eq(lit(cfg.at_risk.indicators.chronic_absence.threshold))
                .alias("chronic_absence"),
        )
        .select([
            col(S),
            col(C),
            col("sessions"),
            col("present"),
            col("absent"),
            col("late"),
            col("excused"),
            col("attendance_rate"),
            col("absence_rate"),
            col("minutes_attended"),
            col("longest_absence_streak"),
            col("last_attended_date"),
            col("chronic_absence"),
            col("recent_rate"),
            col("earlier_rate"),
            col("days_since_attended"),
        ])
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// `attendance_weekly`.
pub fn attendance_weekly(att: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    weekly_attendance_of(sessions(att)?, cfg)
}

/// `attendance_weekly` from the [`sessions`] of trusted.attendance.
pub(super) fn weekly_attendance_of(s: DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    let n = cfg.small_cell_min;
    let day = col("session_date").cast(DataType::Int32);
    let week_start = (day.clone()
        - (col("session_date").dt().weekday().cast(DataType::Int32) - lit(1)))
    .cast(DataType::Date);
    let out = s
        .lazy()
        .with_column(week_start.alias("week_start"))
        .group_by([col(C), col("week_start")])
        .agg([
            len().cast(DataType::Int64).alias("student_sessions"),
            count_if(col("status").is_in(
                lit(Series::new("a".into(), ["present", "late"])).implode(true),
                false,
            ))
            .alias("__att"),
            col(S).n_unique().cast(DataType::Int64).alias("students"),
            col(S)
                .filter(col("status").eq(lit("absent")))
                .n_unique()
                .cast(DataType::Int64)
                .alias("absent_students"),
        ])
        .with_columns([
            col("week_start").dt().strftime("%G-W%V").alias("iso_week"),
            col("students").lt(lit(i64::from(n))).alias("suppressed"),
        ])
        .with_columns([
            when(col("suppressed"))
                .then(null_f64())
                .otherwise(ratio(col("__att"), col("student_sessions")))
                .alias("attendance_rate"),
            when(
                col("suppressed").or(col("absent_students")
                    .gt(lit(0))
                    .and(col("absent_students").lt(lit(i64::from(n))))),
            )
            .then(lit(NULL).cast(DataType::Int64))
            .otherwise(col("absent_students"))
            .alias("absent_students"),
            when(col("suppressed"))
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("student_sessions"))
                .alias("student_sessions"),
            when(col("suppressed"))
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("students"))
                .alias("students"),
        ])
        .select([
            col(C),
            col("week_start"),
            col("iso_week"),
            col("student_sessions"),
            col("students"),
            col("attendance_rate"),
            col("absent_students"),
            col("suppressed"),
        ])
        .sort([C, "week_start"], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curated::products::test_support::{num, one, settings};

    /// Sessions of one course: s1 absent three days in a row, the middle one corrected to
    /// present by a later export (so the streak is 1); s2 present twice.
    fn rows(order: &[usize]) -> DataFrame {
        let all: [(&str, i32, i32, &str); 6] = [
            ("s1", 1, 1, "absent"),
            ("s1", 2, 2, "absent"),
            ("s1", 2, 9, "present"),
            ("s1", 3, 3, "absent"),
            ("s2", 1, 1, "present"),
            ("s2", 2, 2, "present"),
        ];
        let pick: Vec<_> = order.iter().map(|&i| all[i]).collect();
        let day = |v: Vec<i32>| Column::new("d".into(), v).cast(&DataType::Date).unwrap();
        DataFrame::new(
            pick.len(),
            vec![
                Column::new(S.into(), pick.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new(C.into(), vec!["C1"; pick.len()]),
                day(pick.iter().map(|r| 20_000 + r.1).collect()).with_name("session_date".into()),
                day(pick.iter().map(|r| 20_000 + r.2).collect()).with_name("recorded_at".into()),
                Column::new(
                    "status".into(),
                    pick.iter().map(|r| r.3).collect::<Vec<_>>(),
                ),
                Column::new("minutes_attended".into(), vec![50i64; pick.len()]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_in_order_are_told_apart_from_rows_out_of_order() {
        let keys = SESSION_ORDER;
        assert!(in_order(&rows(&[0, 1, 2, 3, 4, 5]), &keys).unwrap());
        // Equal keys are in order; a later key may fall when an earlier one rises.
        assert!(in_order(&rows(&[0, 0, 3, 4]), &keys).unwrap());
        assert!(!in_order(&rows(&[0, 2, 1, 3]), &keys).unwrap());
        assert!(!in_order(&rows(&[4, 0]), &keys).unwrap());
        assert!(in_order(&rows(&[]), &keys).unwrap());
        // A null key the order depends on is never taken as in order.
        let mut nulls = rows(&[0, 0]);
        nulls
            .with_column(Column::full_null("recorded_at".into(), 2, &DataType::Date))
            .unwrap();
        assert!(!in_order(&nulls, &keys).unwrap());
    }

    #[test]
    fn sessions_count_the_same_in_any_row_order() {
        let cfg = settings();
        let by_read = student_course_attendance(&rows(&[0, 1, 2, 3, 4, 5]), &cfg).unwrap();
        for order in [[5, 3, 2, 4, 1, 0], [2, 0, 5, 1, 3, 4]] {
            let shuffled = student_course_attendance(&rows(&order), &cfg).unwrap();
            assert!(by_read.equals_missing(&shuffled), "{order:?}: {shuffled}");
        }
        let s1 = one(&by_read, "s1");
        // The newest correction wins: day 2 present, so no three-day streak.
        assert_eq!(num(&s1, "sessions"), Some(3.0));
        assert_eq!(num(&s1, "present"), Some(1.0));
        assert_eq!(num(&s1, "longest_absence_streak"), Some(1.0));
    }

    #[test]
    fn trusted_is_read_in_the_order_sessions_work_in() {
        let read = crate::curated::read_order("attendance");
        assert_eq!(read[..SESSION_ORDER.len()], SESSION_ORDER);
    }
}
