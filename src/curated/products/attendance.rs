//! The attendance products: `student_course_attendance` and `attendance_weekly`, from
//! trusted.attendance.
//!
//! Invariants: one session per student, course and session date (the newest correction by
//! `recorded_at` wins) before anything is counted; present and late count as attended; every
//! rate is in 0..1 and null when its denominator is 0; weekly cells describing fewer than
//! `small_cell_min` students are suppressed.

use polars::prelude::*;

use super::{count_if, null_f64, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

/// One row per student × course × session date (the newest correction wins).
pub fn sessions(att: &DataFrame) -> Result<DataFrame> {
    let sorted = att.sort(
        [S, C, "session_date", "recorded_at"],
        SortMultipleOptions::default(),
    )?;
    Ok(sorted.unique_stable(
        Some(&[S.to_string(), C.to_string(), "session_date".to_string()]),
        UniqueKeepStrategy::Last,
        None,
    )?)
}

/// `student_course_attendance`.
pub fn student_course_attendance(att: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    course_attendance_of(sessions(att)?, cfg)
}

/// `student_course_attendance` from the [`sessions`] of trusted.attendance.
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
        .sort([S, C, "session_date"], SortMultipleOptions::default())
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
