//! The product computations, as polars expressions over trusted frames. Definitions follow
//! DESIGN.md "Metric definitions"; every rate is in 0..1 and null when its denominator is 0.

use polars::prelude::*;

use super::{CuratedConfig, Indicator};
use crate::rules::eval::none_if_empty;
use crate::stage::{ColumnComments, Result, StepError};
use crate::vocab::Stage;

const S: &str = "student_id";
const C: &str = "course_id";
const MICROS_PER_DAY: f64 = 86_400_000_000.0;
/// The window of `recent_clicks`: the course's last this many days of activity.
const RECENT_DAYS: i32 = 14;

/// Trusted rows of the touched courses.
#[derive(Debug, Default)]
pub struct Inputs {
    /// trusted.attendance rows (None when the table does not exist yet).
    pub attendance: Option<DataFrame>,
    /// trusted.grades rows.
    pub grades: Option<DataFrame>,
    /// trusted.students (student_id, status).
    pub students: Option<DataFrame>,
    /// trusted.engagement rows.
    pub engagement: Option<DataFrame>,
}

/// Catalog description of a product.
pub fn description(product: &str) -> &'static str {
    match product {
        "student_course_attendance" => "Per student and course: sessions, present/absent/late/excused, attendance and absence rates, minutes, longest absence streak, chronic-absence flag. For the course's educators only.",
        "attendance_weekly" => "Per course and ISO week: student-sessions, attendance rate, absent students. Cells describing fewer than small_cell_min students are suppressed.",
        "student_course_performance" => "Per student and course: due, submitted, on-time, late, missing; completion, on-time and late rates; average, median, standard deviation and weighted grade; trend; learning gain. For the course's educators only.",
        "at_risk_students" => "Per student and course: risk score and level (low, medium, high), the reasons in words and a recommended action per reason. For the course's educators only.",
        "student_course_engagement" => "Per student and course: active days, active days per week, clicks by activity type, time on task, last active date, days since last activity, and an engagement score 0-100 relative to the course. For the course's educators only.",
        "engagement_weekly" => "Per course and ISO week: active students, active student-days, clicks. Cells describing fewer than small_cell_min students are suppressed.",
        "course_summary" => "Per course: enrolled, active, average grade, grade distribution A-F, pass rate, average attendance, at-risk counts by level. Counts below small_cell_min are suppressed.",
        _ => "",
    }
}

/// Comment of the student key, the same in every per-student product.
const STUDENT_KEY: &str =
    "Pseudonymised student id (keyed HMAC of the SIS id, never in clear); joins across products";
/// Comment of the course key, the same in every product.
const COURSE_KEY: &str = "Course id as exported by the SIS; joins trusted.courses";
/// A count a small-cell product may hide, described.
macro_rules! small_count {
    ($what:literal) => {
        concat!(
            $what,
            "; null when suppressed or between 1 and small_cell_min - 1 (small-cell suppression)"
        )
    };
}

/// `student_course_attendance` columns with their catalog comments, in table order.
pub const STUDENT_COURSE_ATTENDANCE_COLUMNS: ColumnComments = &[
    (S, STUDENT_KEY),
    (C, COURSE_KEY),
    ("sessions", "Sessions of the student in the course: one per session date, the newest correction (recorded_at) wins"),
    ("present", "Sessions with status present"),
    ("absent", "Sessions with status absent"),
    ("late", "Sessions with status late (count as attended)"),
    ("excused", "Sessions with status excused (count as sessions, not as attended)"),
    ("attendance_rate", "(present + late) / sessions, in 0..1; null when sessions = 0"),
    ("absence_rate", "(absent + excused) / sessions, in 0..1; null when sessions = 0"),
    ("minutes_attended", "Sum of minutes_attended over the sessions (minutes; each session 0..240)"),
    ("longest_absence_streak", "Most consecutive sessions (by date) absent or excused; 0 when none"),
    ("last_attended_date", "Date of the last session present or late; null when never attended"),
    ("chronic_absence", "True when absence_rate >= the chronic-absence threshold (default 0.10: missed 10% or more of sessions; pipelines/curated/products.yaml)"),
    ("recent_rate", "Attendance rate over the sessions of the course's last 21 days (to its newest session date), in 0..1; null without such sessions"),
    ("earlier_rate", "Attendance rate over the sessions before the course's last 21 days, in 0..1; null without such sessions"),
    ("days_since_attended", "Days from the student's last attended session to the course's last session (never attended: from the day before the course's first session)"),
];

/// `attendance_weekly` columns with their catalog comments, in table order.
pub const ATTENDANCE_WEEKLY_COLUMNS: ColumnComments = &[
    (C, COURSE_KEY),
    ("week_start", "Monday of the ISO week"),
    ("iso_week", "ISO week as YYYY-Www (e.g. 2026-W37)"),
    ("student_sessions", "Student-sessions in the week (one per student and session date, newest correction wins); null when suppressed"),
    ("students", "Distinct students with a session in the week; null when suppressed"),
    ("attendance_rate", "(present + late) / student_sessions in the week, in 0..1; null when suppressed"),
    ("absent_students", small_count!("Distinct students absent (not excused) at least once in the week")),
    ("suppressed", "True when the week describes fewer than small_cell_min (default 5) students: its numbers are shown empty"),
];

/// `student_course_performance` columns with their catalog comments, in table order.
pub const STUDENT_COURSE_PERFORMANCE_COLUMNS: ColumnComments = &[
    (S, STUDENT_KEY),
    (C, COURSE_KEY),
    ("due", "Assessments due by the course's as_of (due_at <= as_of)"),
    ("submitted", "Due assessments submitted (submitted_at present)"),
    ("on_time", "Submitted due assessments with submitted_at <= due_at"),
    ("late", "Submitted due assessments with submitted_at after due_at"),
    ("missing", "Due assessments not submitted"),
    ("graded", "Assessments with a score (graded), due or not"),
    ("completion_rate", "submitted / due, in 0..1; null when nothing is due"),
    ("on_time_rate", "on_time / submitted (over submitted, not due), in 0..1; null when nothing is submitted"),
    ("late_rate", "late / submitted (over submitted, not due), in 0..1; null when nothing is submitted"),
    ("average_score_pct", "Mean of score_pct = 100 * score / max_score over graded assessments, in 0..100; null when none graded"),
    ("median_score_pct", "Median score_pct over graded assessments, in 0..100; null when none graded"),
    ("stddev_score_pct", "Sample standard deviation (n - 1) of score_pct over graded assessments, in percentage points; null under 2 graded"),
    ("weighted_grade", "sum(weight * score_pct) / sum(weight) over graded assessments, in 0..100; null when none graded or the weights sum to 0"),
    ("grade_trend", "Least-squares slope of score_pct against days since the course's first due date, x30 (points per 30 days); null under 3 graded"),
    ("learning_gain", "score_pct of the last graded assessment minus the first, by due_at (points, -100..100); null under 2 graded"),
    ("assessments_below_70", "Graded assessments with score_pct under 70"),
    ("as_of", "The course's as_of (UTC): its newest submitted_at or graded_at. Due is measured from it, so a course's numbers depend on its own rows only"),
];

/// `at_risk_students` columns with their catalog comments, in table order.
pub const AT_RISK_STUDENTS_COLUMNS: ColumnComments = &[
    (S, STUDENT_KEY),
    (C, COURSE_KEY),
    ("risk_score", "Sum over the indicators of weight x severity (severity 0..1; weights in pipelines/curated/products.yaml); each indicator's points are in score_breakdown"),
    ("risk_level", "low, medium or high: risk_score against the medium and high cut-offs of pipelines/curated/products.yaml (shipped: 2.1 and 3.3)"),
    ("reasons", "The indicators that fired (weight > 0), in words, separated by '; '; null when none fired"),
    ("actions", "A recommended action for the educator per reason, in the same order, separated by '; '; null when none fired"),
    ("low_grade", "Indicator: grade below the course's pass mark (pipelines/curated/products.yaml); false without a grade"),
    ("declining_trend", "Indicator: grade_trend under the declining-trend threshold (points per 30 days); false when there is no trend"),
    ("low_completion", "Indicator (missed work): at least the threshold's number of due assessments not submitted"),
    ("chronic_absence", "Indicator: absence_rate >= the chronic-absence threshold (default 0.10); false without attendance"),
    ("falling_attendance", "Indicator: the drop from earlier_rate to recent_rate, minus the course's median drop, at or above the threshold"),
    ("weighted_grade", "As in student_course_performance: sum(weight * score_pct) / sum(weight) over graded assessments, in 0..100; null without grades"),
    ("grade_trend", "As in student_course_performance: score_pct slope in points per 30 days; null under 3 graded assessments"),
    ("completion_rate", "As in student_course_performance: submitted / due, in 0..1; null when nothing is due"),
    ("attendance_rate", "As in student_course_attendance: (present + late) / sessions, in 0..1; null without attendance"),
    ("absence_rate", "As in student_course_attendance: (absent + excused) / sessions, in 0..1; null without attendance"),
    ("low_grade_for_course", "Indicator: grade_percentile below the indicator's threshold (relative to the course)"),
    ("low_attendance_for_course", "Indicator: attendance_percentile below the indicator's threshold (relative to the course)"),
    ("no_recent_activity", "Indicator: days_inactive at or above the indicator's threshold"),
    ("low_engagement_for_course", "Indicator: engagement_score below the indicator's threshold; false without engagement data"),
    ("grade", "weighted_grade, or the unweighted mean score_pct when the graded assessments' weights sum to 0, in 0..100"),
    ("grade_basis", "weighted, or unweighted (the assessments' weights are 0)"),
    ("pass_mark", "The course's pass mark (%) from pipelines/curated/products.yaml"),
    ("grade_percentile", "Share of the course's graded students with a lower grade (mid-rank, 0..1)"),
    ("attendance_percentile", "Share of the course's students with a lower attendance rate (mid-rank, 0..1)"),
    ("missing", "Assessments due and not submitted"),
    ("days_since_attended", "As in student_course_attendance: days since the student's last attended session"),
    ("days_since_active", "As in student_course_engagement: days from the student's last LMS activity to the course's last day of activity; null without engagement data"),
    ("days_inactive", "The fewer of days_since_attended and days_since_active (the student's most recent sign of life)"),
    ("engagement_score", "As in student_course_engagement: 0..100 relative to the course (50 = the course's middle); null without engagement data"),
    ("late_submissions", "Indicator: at least the threshold's number of due assessments submitted after their due date"),
    ("low_recent_engagement_for_course", "Indicator: recent_clicks_percentile below the indicator's threshold (relative to the course)"),
    ("late", "As in student_course_performance: due assessments submitted after their due date"),
    ("recent_clicks", "As in student_course_engagement: clicks in the course's last 14 days of activity; 0 for a student without activity in a course with engagement data, null without engagement data"),
    ("recent_clicks_percentile", "Share of the course's students with fewer recent_clicks (mid-rank, 0..1)"),
    ("score_breakdown", "The points each indicator added to risk_score (indicator=points, separated by '; ')"),
];

/// `course_summary` columns with their catalog comments, in table order.
pub const COURSE_SUMMARY_COLUMNS: ColumnComments = &[
    (C, COURSE_KEY),
    ("enrolled", "Students with attendance or grades in the course (its at_risk_students rows); null when suppressed"),
    ("active", small_count!("Enrolled students whose trusted.students status is active")),
    ("average_grade", "Mean of the students' weighted_grade (students with one), in 0..100; null when suppressed"),
    ("grade_a", small_count!("Students with weighted_grade >= 90")),
    ("grade_b", small_count!("Students with 80 <= weighted_grade < 90")),
    ("grade_c", small_count!("Students with 70 <= weighted_grade < 80")),
    ("grade_d", small_count!("Students with 60 <= weighted_grade < 70")),
    ("grade_f", small_count!("Students with weighted_grade < 60")),
    ("pass_rate", "Students with weighted_grade >= 60 / students with a weighted_grade, in 0..1; null when suppressed or none graded"),
    ("average_attendance_rate", "Mean of the students' attendance_rate (each student weighs the same), in 0..1; null when suppressed"),
    ("at_risk_high", small_count!("Students at risk level high (at_risk_students)")),
    ("at_risk_medium", small_count!("Students at risk level medium")),
    ("at_risk_low", small_count!("Students at risk level low")),
    ("suppressed", "True when the course has fewer than small_cell_min (default 5) students: every number is shown empty"),
];

/// `student_course_engagement` columns with their catalog comments, in table order.
pub const STUDENT_COURSE_ENGAGEMENT_COLUMNS: ColumnComments = &[
    (S, STUDENT_KEY),
    (C, COURSE_KEY),
    ("active_days", "Days with any LMS activity in the course"),
    ("weeks", "ISO weeks from the course's first to its last day of activity"),
    ("active_days_per_week", "active_days / weeks"),
    ("clicks", "Clicks (actions) in the LMS, all types"),
    ("clicks_login", "Clicks of type login"),
    ("clicks_resource", "Clicks of type resource"),
    ("clicks_forum", "Clicks of type forum"),
    ("clicks_quiz", "Clicks of type quiz"),
    ("clicks_video", "Clicks of type video"),
    ("clicks_other", "Clicks of type other"),
    ("recent_clicks", "Clicks in the course's last 14 days of activity (the 14 days to its last day of activity, that day included), all types"),
    ("minutes", "Time on task in minutes, where the LMS records it (null when it never does)"),
    ("last_active_date", "The student's last day of activity in the course"),
    ("days_since_active", "Days from the student's last activity to the course's last day of activity"),
    ("engagement_score", "0..100: 100 x the mean of the student's mid-rank percentiles in the course of active_days and of clicks (50 = the course's middle)"),
];

/// `engagement_weekly` columns with their catalog comments, in table order.
pub const ENGAGEMENT_WEEKLY_COLUMNS: ColumnComments = &[
    (C, COURSE_KEY),
    ("week_start", "Monday of the ISO week"),
    ("iso_week", "ISO week as YYYY-Www (e.g. 2026-W37)"),
    ("active_students", "Students with any activity that week; null when suppressed"),
    ("student_days", "Active student-days that week; null when suppressed"),
    ("clicks", "Clicks that week, all types; null when suppressed"),
    ("suppressed", "True when the week describes fewer than small_cell_min (default 5) students: its numbers are shown empty"),
];

/// A product's columns with their catalog comments (empty for an unknown product).
pub fn column_comments(product: &str) -> ColumnComments {
    match product {
        "student_course_attendance" => STUDENT_COURSE_ATTENDANCE_COLUMNS,
        "attendance_weekly" => ATTENDANCE_WEEKLY_COLUMNS,
        "student_course_performance" => STUDENT_COURSE_PERFORMANCE_COLUMNS,
        "at_risk_students" => AT_RISK_STUDENTS_COLUMNS,
        "course_summary" => COURSE_SUMMARY_COLUMNS,
        "student_course_engagement" => STUDENT_COURSE_ENGAGEMENT_COLUMNS,
        "engagement_weekly" => ENGAGEMENT_WEEKLY_COLUMNS,
        _ => &[],
    }
}

fn f(c: &str) -> Expr {
    col(c).cast(DataType::Float64)
}

fn ratio(num: Expr, den: Expr) -> Expr {
    when(den.clone().gt(lit(0)))
        .then(num.cast(DataType::Float64) / den.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

fn count_if(e: Expr) -> Expr {
    e.cast(DataType::UInt32).sum()
}

fn null_f64() -> Expr {
    lit(NULL).cast(DataType::Float64)
}

fn missing_input(product: &str, input: &str) -> StepError {
    StepError::Polars(PolarsError::ComputeError(
        format!("{product} needs trusted.{input}").into(),
    ))
}

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
    let s = sessions(att)?;
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
    let n = cfg.small_cell_min;
    let s = sessions(att)?;
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

/// `student_course_engagement`: one row per student × course with activity.
pub fn student_course_engagement(eng: &DataFrame) -> Result<DataFrame> {
    let kinds = ["login", "resource", "forum", "quiz", "video", "other"];
    let mut aggs = vec![
        col("activity_date")
            .n_unique()
            .cast(DataType::Int64)
            .alias("active_days"),
        col("clicks").sum().cast(DataType::Int64).alias("clicks"),
        col("minutes")
            .sum()
            .cast(DataType::Int64)
            .alias("__minutes"),
        col("minutes").count().alias("__minutes_n"),
        col("activity_date").max().alias("last_active_date"),
        col("clicks")
            .filter(
                col("activity_date")
                    .cast(DataType::Int32)
                    .gt(col("__course_last").cast(DataType::Int32) - lit(RECENT_DAYS)),
            )
            .sum()
            .cast(DataType::Int64)
            .alias("recent_clicks"),
        col("__course_first").first().alias("__course_first"),
        col("__course_last").first().alias("__course_last"),
    ];
    for k in kinds {
        aggs.push(
            col("clicks")
                .filter(col("activity_type").eq(lit(k)))
                .sum()
                .cast(DataType::Int64)
                .alias(format!("clicks_{k}")),
        );
    }
    let day = |c: &str| col(c).cast(DataType::Int32);
    let monday = |c: &str| {
        (day(c) - (col(c).dt().weekday().cast(DataType::Int32) - lit(1))).cast(DataType::Int64)
    };
    let out = eng
        .clone()
        .lazy()
        .with_columns([
            col("activity_date")
                .min()
                .over([col(C)])?
                .alias("__course_first"),
            col("activity_date")
                .max()
                .over([col(C)])?
                .alias("__course_last"),
        ])
        .group_by([col(S), col(C)])
        .agg(aggs)
        .sort([C, S], SortMultipleOptions::default())
        .with_columns([
            ((monday("__course_last") - monday("__course_first")) / lit(7i64) + lit(1i64))
                .alias("weeks"),
            when(col("__minutes_n").gt(lit(0)))
                .then(col("__minutes"))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .alias("minutes"),
            (col("__course_last").cast(DataType::Int64)
                - col("last_active_date").cast(DataType::Int64))
            .alias("days_since_active"),
        ])
        .with_columns([
            ratio(col("active_days"), col("weeks")).alias("active_days_per_week"),
            ((course_percentile(f("active_days"))? + course_percentile(f("clicks"))?) * lit(50.0))
                .alias("engagement_score"),
        ])
        .select([
            col(S),
            col(C),
            col("active_days"),
            col("weeks"),
            col("active_days_per_week"),
            col("clicks"),
            col("clicks_login"),
            col("clicks_resource"),
            col("clicks_forum"),
            col("clicks_quiz"),
            col("clicks_video"),
            col("clicks_other"),
            col("recent_clicks"),
            col("minutes"),
            col("last_active_date"),
            col("days_since_active"),
            col("engagement_score"),
        ])
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// `engagement_weekly`: per course × ISO week, small cells suppressed.
pub fn engagement_weekly(eng: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    let n = i64::from(cfg.small_cell_min);
    let day = col("activity_date").cast(DataType::Int32);
    let week_start = (day - (col("activity_date").dt().weekday().cast(DataType::Int32) - lit(1)))
        .cast(DataType::Date);
    let hide = |c: &str| {
        when(col("suppressed"))
            .then(lit(NULL).cast(DataType::Int64))
            .otherwise(col(c))
            .alias(c)
    };
    let out = eng
        .clone()
        .lazy()
        .with_column(week_start.alias("week_start"))
        .group_by([col(C), col("week_start")])
        .agg([
            col(S)
                .n_unique()
                .cast(DataType::Int64)
                .alias("active_students"),
            as_struct(vec![col(S), col("activity_date")])
                .n_unique()
                .cast(DataType::Int64)
                .alias("student_days"),
            col("clicks").sum().cast(DataType::Int64).alias("clicks"),
        ])
        .with_columns([
            col("week_start").dt().strftime("%G-W%V").alias("iso_week"),
            col("active_students").lt(lit(n)).alias("suppressed"),
        ])
        .with_columns([
            hide("active_students"),
            hide("student_days"),
            hide("clicks"),
        ])
        .select([
            col(C),
            col("week_start"),
            col("iso_week"),
            col("active_students"),
            col("student_days"),
            col("clicks"),
            col("suppressed"),
        ])
        .sort([C, "week_start"], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// `student_course_performance`.
pub fn student_course_performance(grades: &DataFrame) -> Result<DataFrame> {
    let us = |c: &str| col(c).cast(DataType::Int64);
    let sub_max = us("submitted_at").max().over([col(C)])?;
    let graded_max = us("graded_at").max().over([col(C)])?;
    let as_of = when(
        sub_max
            .clone()
            .is_null()
            .or(graded_max.clone().gt(sub_max.clone())),
    )
    .then(graded_max)
    .otherwise(sub_max);
    let pct = (f("score") * lit(100.0) / f("max_score")).alias("__pct");
    let base = grades
        .clone()
        .lazy()
        .with_columns([
            as_of.alias("__as_of"),
            pct,
            ((us("due_at") - us("due_at").min().over([col(C)])?).cast(DataType::Float64)
                / lit(MICROS_PER_DAY))
            .alias("__x"),
        ])
        .with_column(
            us("due_at")
                .lt_eq(col("__as_of"))
                .fill_null(lit(false))
                .alias("__due"),
        )
        .with_columns([
            col("__due")
                .and(col("submitted_at").is_not_null())
                .alias("__sub"),
            col("__due")
                .and(col("submitted_at").is_null())
                .alias("__missing"),
            col("__pct").is_not_null().alias("__graded"),
        ])
        .with_columns([
            col("__sub")
                .and(us("submitted_at").lt_eq(us("due_at")))
                .alias("__on_time"),
            col("__sub")
                .and(us("submitted_at").gt(us("due_at")))
                .alias("__late"),
        ]);
    let g = |e: Expr| e.filter(col("__graded"));
    let out = base
        .group_by([col(S), col(C)])
        .agg([
            count_if(col("__due")).cast(DataType::Int64).alias("due"),
            count_if(col("__sub"))
                .cast(DataType::Int64)
                .alias("submitted"),
            count_if(col("__on_time"))
                .cast(DataType::Int64)
                .alias("on_time"),
            count_if(col("__late")).cast(DataType::Int64).alias("late"),
            count_if(col("__missing"))
                .cast(DataType::Int64)
                .alias("missing"),
            count_if(col("__graded"))
                .cast(DataType::Int64)
                .alias("graded"),
            g(col("__pct")).mean().alias("average_score_pct"),
            g(col("__pct")).median().alias("median_score_pct"),
            g(col("__pct")).std(1).alias("stddev_score_pct"),
            (g(f("weight") * col("__pct")).sum()).alias("__wsum"),
            g(f("weight")).sum().alias("__w"),
            count_if(col("__pct").lt(lit(70.0)))
                .cast(DataType::Int64)
                .alias("assessments_below_70"),
            g(col("__x")).sum().alias("__sx"),
            g(col("__pct")).sum().alias("__sy"),
            g(col("__x") * col("__pct")).sum().alias("__sxy"),
            g(col("__x") * col("__x")).sum().alias("__sxx"),
            col("__pct")
                .sort_by([col("due_at")], SortMultipleOptions::default())
                .drop_nulls()
                .first()
                .alias("__first"),
            col("__pct")
                .sort_by([col("due_at")], SortMultipleOptions::default())
                .drop_nulls()
                .last()
                .alias("__last"),
            col("__as_of").first().alias("__as_of"),
        ])
        .with_columns([
            ratio(col("submitted"), col("due")).alias("completion_rate"),
            ratio(col("on_time"), col("submitted")).alias("on_time_rate"),
            ratio(col("late"), col("submitted")).alias("late_rate"),
            when(col("__w").gt(lit(0.0)))
                .then(col("__wsum") / col("__w"))
                .otherwise(null_f64())
                .alias("weighted_grade"),
            {
                let n = col("graded").cast(DataType::Float64);
                let den = n.clone() * col("__sxx") - col("__sx") * col("__sx");
                when(
                    col("graded")
                        .gt_eq(lit(3))
                        .and(den.clone().abs().gt(lit(1e-9))),
                )
                .then((n * col("__sxy") - col("__sx") * col("__sy")) / den * lit(30.0))
                .otherwise(null_f64())
                .alias("grade_trend")
            },
            when(col("graded").gt_eq(lit(2)))
                .then(col("__last") - col("__first"))
                .otherwise(null_f64())
                .alias("learning_gain"),
            col("__as_of")
                .cast(DataType::Datetime(
                    TimeUnit::Microseconds,
                    Some(TimeZone::UTC),
                ))
                .alias("as_of"),
        ])
        .select([
            col(S),
            col(C),
            col("due"),
            col("submitted"),
            col("on_time"),
            col("late"),
            col("missing"),
            col("graded"),
            col("completion_rate"),
            col("on_time_rate"),
            col("late_rate"),
            col("average_score_pct"),
            col("median_score_pct"),
            col("stddev_score_pct"),
            col("weighted_grade"),
            col("grade_trend"),
            col("learning_gain"),
            col("assessments_below_70"),
            col("as_of"),
        ])
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// Placeholders a reason or action may use, and the expression each one shows.
const PLACEHOLDERS: &[&str] = &[
    "grade",
    "grade_note",
    "pass_mark",
    "grade_percentile",
    "weighted_grade",
    "grade_trend",
    "missing",
    "due",
    "absences",
    "sessions",
    "attendance_rate",
    "attendance_percentile",
    "recent_rate",
    "days_since_attended",
    "days_inactive",
    "engagement_score",
    "late",
    "recent_clicks",
    "recent_clicks_percentile",
];

fn placeholder(name: &str) -> Option<Expr> {
    let int = |e: Expr| e.cast(DataType::Int64).cast(DataType::String);
    let one = |e: Expr| {
        e.round(1, RoundMode::HalfAwayFromZero)
            .cast(DataType::String)
    };
    let pct = |e: Expr| int((e * lit(100.0)).round(0, RoundMode::HalfAwayFromZero));
    Some(match name {
        "grade" => one(col("grade")),
        "grade_note" => when(col("grade_basis").eq(lit("unweighted")))
            .then(lit(" (unweighted mean: the assessments' weights are 0)"))
            .otherwise(lit("")),
        "pass_mark" => one(col("pass_mark")),
        "grade_percentile" => pct(col("grade_percentile")),
        "weighted_grade" => one(col("weighted_grade")),
        "grade_trend" => one(col("grade_trend")),
        "missing" => int(col("missing")),
        "due" => int(col("due")),
        "absences" => int(col("absent") + col("excused")),
        "sessions" => int(col("sessions")),
        "attendance_rate" => pct(col("attendance_rate")),
        "attendance_percentile" => pct(col("attendance_percentile")),
        "recent_rate" => pct(col("recent_rate")),
        "days_since_attended" => int(col("days_since_attended")),
        "days_inactive" => int(col("days_inactive")),
        "engagement_score" => int(col("engagement_score").round(0, RoundMode::HalfAwayFromZero)),
        "late" => int(col("late")),
        "recent_clicks" => int(col("recent_clicks")),
        "recent_clicks_percentile" => pct(col("recent_clicks_percentile")),
        _ => return None,
    })
}

/// Turns "text {name} text" into a string expression.
fn template(text: &str) -> Result<Expr> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        parts.push(lit(rest[..open].to_string()));
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| bad_template(text))?;
        let name = &rest[open + 1..close];
        parts.push(placeholder(name).ok_or_else(|| bad_template(text))?);
        rest = &rest[close + 1..];
    }
    parts.push(lit(rest.to_string()));
    Ok(concat_str(parts, "", false))
}

fn bad_template(text: &str) -> StepError {
    StepError::Polars(PolarsError::ComputeError(
        format!(
            "pipelines/curated/products.yaml: `{text}` uses an unknown placeholder; known: {}",
            PLACEHOLDERS.join(", ")
        )
        .into(),
    ))
}

/// Mid-rank percentile of `e` within the course: (students below + half of those equal) / n,
/// over students with a value; null without one.
fn course_percentile(e: Expr) -> Result<Expr> {
    let rank = e.clone().rank(
        RankOptions {
            method: RankMethod::Average,
            descending: false,
        },
        None,
    );
    Ok(
        ((rank.cast(DataType::Float64) - lit(0.5)) / e.count().cast(DataType::Float64))
            .over([col(C)])?,
    )
}

/// The course's pass mark from the settings.
fn pass_mark(cfg: &CuratedConfig) -> Expr {
    let pm = &cfg.at_risk.pass_mark;
    pm.courses.iter().fold(lit(pm.default), |e, (c, v)| {
        when(col(C).eq(lit(c.clone()))).then(lit(*v)).otherwise(e)
    })
}

/// The indicators in score order: name, settings, when it fires, its severity (0..1).
fn indicators(cfg: &CuratedConfig) -> Result<Vec<(&'static str, &Indicator, Expr, Expr)>> {
    let i = &cfg.at_risk.indicators;
    let b = |e: Expr| e.cast(DataType::Float64);
    let lower_half = |p: &str| ((lit(0.5) - col(p)) / lit(0.5)).clip(lit(0.0), lit(1.0));
    let graded = |c: &str, ind: &Indicator, default: f64| {
        let full = ind.full.unwrap_or(default).max(1e-9);
        (b(col(c)) / lit(full)).clip(lit(0.0), lit(1.0))
    };
    let drop = col("earlier_rate") - col("recent_rate");
    let rel_drop = drop.clone() - drop.median().over([col(C)])?;
    Ok(vec![
        (
            "low_grade",
            &i.low_grade,
            col("grade").lt(col("pass_mark")),
            b(col("grade").lt(col("pass_mark"))),
        ),
        (
            "low_grade_for_course",
            &i.low_grade_for_course,
            col("grade_percentile").lt(lit(i.low_grade_for_course.threshold)),
            lower_half("grade_percentile"),
        ),
        (
            "declining_trend",
            &i.declining_trend,
            col("grade_trend").lt(lit(i.declining_trend.threshold)),
            b(col("grade_trend").lt(lit(i.declining_trend.threshold))),
        ),
        (
            "low_completion",
            &i.low_completion,
            col("missing").gt_eq(lit(i.low_completion.threshold)),
            graded("missing", &i.low_completion, 3.0),
        ),
        (
            "chronic_absence",
            &i.chronic_absence,
            col("absence_rate").gt_eq(lit(i.chronic_absence.threshold)),
            b(col("absence_rate").gt_eq(lit(i.chronic_absence.threshold))),
        ),
        (
            "low_attendance_for_course",
            &i.low_attendance_for_course,
            col("attendance_percentile").lt(lit(i.low_attendance_for_course.threshold)),
            lower_half("attendance_percentile"),
        ),
        (
            "no_recent_activity",
            &i.no_recent_activity,
            col("days_inactive").gt_eq(lit(i.no_recent_activity.threshold)),
            graded("days_inactive", &i.no_recent_activity, 28.0),
        ),
        (
            "falling_attendance",
            &i.falling_attendance,
            rel_drop.clone().gt_eq(lit(i.falling_attendance.threshold)),
            b(rel_drop.gt_eq(lit(i.falling_attendance.threshold))),
        ),
        (
            "low_engagement_for_course",
            &i.low_engagement_for_course,
            col("engagement_score").lt(lit(i.low_engagement_for_course.threshold)),
            ((lit(50.0) - col("engagement_score")) / lit(50.0)).clip(lit(0.0), lit(1.0)),
        ),
        (
            "late_submissions",
            &i.late_submissions,
            col("late").gt_eq(lit(i.late_submissions.threshold)),
            graded("late", &i.late_submissions, 1.0),
        ),
        (
            "low_recent_engagement_for_course",
            &i.low_recent_engagement_for_course,
            col("recent_clicks_percentile").lt(lit(i.low_recent_engagement_for_course.threshold)),
            lower_half("recent_clicks_percentile"),
        ),
    ])
}

/// Names of the indicators, in score order (the flag columns of `at_risk_students`).
pub const INDICATORS: &[&str] = &[
    "low_grade",
    "low_grade_for_course",
    "declining_trend",
    "low_completion",
    "chronic_absence",
    "low_attendance_for_course",
    "no_recent_activity",
    "falling_attendance",
    "low_engagement_for_course",
    "late_submissions",
    "low_recent_engagement_for_course",
];

/// The per-student inputs of the at-risk model (attendance and performance joined), with the
/// course-relative columns: `grade`, `grade_basis`, `pass_mark`, `grade_percentile`,
/// `attendance_percentile`.
fn at_risk_inputs(
    attendance: Option<DataFrame>,
    performance: Option<DataFrame>,
    engagement: Option<DataFrame>,
    cfg: &CuratedConfig,
) -> Result<LazyFrame> {
    let key = [col(S), col(C)];
    let no_grades = || {
        [
            null_f64().alias("weighted_grade"),
            null_f64().alias("average_score_pct"),
            null_f64().alias("grade_trend"),
            null_f64().alias("completion_rate"),
            lit(NULL).cast(DataType::Int64).alias("missing"),
            lit(NULL).cast(DataType::Int64).alias("due"),
            lit(NULL).cast(DataType::Int64).alias("late"),
        ]
    };
    let no_attendance = || {
        [
            null_f64().alias("absence_rate"),
            null_f64().alias("attendance_rate"),
            null_f64().alias("recent_rate"),
            null_f64().alias("earlier_rate"),
            lit(NULL).cast(DataType::Int64).alias("absent"),
            lit(NULL).cast(DataType::Int64).alias("excused"),
            lit(NULL).cast(DataType::Int64).alias("sessions"),
            lit(NULL).cast(DataType::Int64).alias("days_since_attended"),
        ]
    };
    let joined = match (attendance, performance, &engagement) {
        (Some(a), Some(p), _) => a.lazy().join(
            p.lazy(),
            key.clone(),
            key.clone(),
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        ),
        (Some(a), None, _) => a.lazy().with_columns(no_grades()),
        (None, Some(p), _) => p.lazy().with_columns(no_attendance()),
        // Only LMS activity so far: the list starts from its students.
        (None, None, Some(e)) => e
            .clone()
            .lazy()
            .select(key.clone())
            .with_columns(no_attendance())
            .with_columns(no_grades()),
        (None, None, None) => {
            return Err(missing_input(
                "at_risk_students",
                "attendance, trusted.grades or trusted.engagement",
            ))
        }
    };
    let joined = match engagement {
        Some(e) => joined.join(
            e.lazy().select([
                col(S),
                col(C),
                col("days_since_active"),
                col("engagement_score"),
                col("recent_clicks"),
            ]),
            key.clone(),
            key.clone(),
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        ),
        None => joined.with_columns([
            lit(NULL).cast(DataType::Int64).alias("days_since_active"),
            null_f64().alias("engagement_score"),
            lit(NULL).cast(DataType::Int64).alias("recent_clicks"),
        ]),
    };
    let (att, act) = (col("days_since_attended"), col("days_since_active"));
    let days_inactive = when(att.clone().is_null())
        .then(act.clone())
        .when(act.clone().is_null().or(att.clone().lt_eq(act.clone())))
        .then(att)
        .otherwise(act);
    // A student of a course with activity data who has no activity row clicked 0 times.
    let recent = col("recent_clicks");
    let recent_clicks = when(
        recent
            .clone()
            .is_null()
            .and(recent.clone().count().over([col(C)])?.gt(lit(0))),
    )
    .then(lit(0i64))
    .otherwise(recent);
    Ok(joined
        .sort([C, S], SortMultipleOptions::default())
        .with_columns([
            recent_clicks.alias("recent_clicks"),
            days_inactive.alias("days_inactive"),
            col("weighted_grade")
                .fill_null(col("average_score_pct"))
                .alias("grade"),
            when(col("weighted_grade").is_not_null())
                .then(lit("weighted"))
                .when(col("average_score_pct").is_not_null())
                .then(lit("unweighted"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("grade_basis"),
            pass_mark(cfg).alias("pass_mark"),
        ])
        .with_columns([
            course_percentile(col("grade"))?.alias("grade_percentile"),
            course_percentile(col("attendance_rate"))?.alias("attendance_percentile"),
            course_percentile(col("recent_clicks"))?.alias("recent_clicks_percentile"),
        ]))
}

/// `at_risk_students`: one row per student × course seen in attendance or grades. The risk
/// score is the sum over the indicators of `weight × severity`; `score_breakdown` lists each
/// indicator's points, and every indicator that fires (with a weight) gives a reason and an
/// action.
pub fn at_risk_students(
    attendance: Option<DataFrame>,
    performance: Option<DataFrame>,
    engagement: Option<DataFrame>,
    cfg: &CuratedConfig,
) -> Result<DataFrame> {
    let base = at_risk_inputs(attendance, performance, engagement, cfg)?;
    let mut flags = Vec::new();
    let mut points = Vec::new();
    let mut score = lit(0.0);
    let mut reasons = Vec::new();
    let mut actions = Vec::new();
    let mut breakdown = Vec::new();
    for (name, ind, fires, severity) in indicators(cfg)? {
        let flag = fires.fill_null(lit(false));
        flags.push(flag.clone().alias(name));
        let pts = (lit(ind.weight) * severity.fill_null(lit(0.0))).alias(format!("__pts_{name}"));
        points.push(pts);
        let p = col(format!("__pts_{name}"));
        score = score + p.clone();
        let counts = flag.clone().and(lit(ind.weight > 0.0));
        reasons.push(
            when(counts.clone())
                .then(template(&ind.reason)?)
                .otherwise(lit(NULL).cast(DataType::String)),
        );
        actions.push(
            when(counts)
                .then(template(&ind.action)?)
                .otherwise(lit(NULL).cast(DataType::String)),
        );
        let shown = p.clone().round(1, RoundMode::HalfAwayFromZero);
        breakdown.push(
            when(shown.clone().gt(lit(0.0)))
                .then(concat_str(
                    [lit(format!("{name} +")), shown.cast(DataType::String)],
                    "",
                    false,
                ))
                .otherwise(lit(NULL).cast(DataType::String)),
        );
    }
    let lv = &cfg.at_risk.levels;
    let out = base
        .with_columns(flags)
        .with_columns(points)
        .with_columns([
            score.alias("risk_score"),
            none_if_empty(concat_str(reasons, "; ", true)).alias("reasons"),
            none_if_empty(concat_str(actions, "; ", true)).alias("actions"),
            none_if_empty(concat_str(breakdown, ", ", true)).alias("score_breakdown"),
        ])
        .with_column(
            // The score is rounded as published before it is cut, so a level never depends
            // on the last bits of a sum.
            col("risk_score")
                .round(PUBLISHED_DECIMALS, RoundMode::HalfAwayFromZero)
                .alias("risk_score"),
        )
        .with_column(
            when(col("risk_score").gt_eq(lit(lv.high)))
                .then(lit("high"))
                .when(col("risk_score").gt_eq(lit(lv.medium)))
                .then(lit("medium"))
                .otherwise(lit("low"))
                .alias("risk_level"),
        )
        .select([
            col(S),
            col(C),
            col("risk_score"),
            col("risk_level"),
            col("reasons"),
            col("actions"),
            col("low_grade"),
            col("declining_trend"),
            col("low_completion"),
            col("chronic_absence"),
            col("falling_attendance"),
            col("weighted_grade"),
            col("grade_trend"),
            col("completion_rate"),
            col("attendance_rate"),
            col("absence_rate"),
            col("low_grade_for_course"),
            col("low_attendance_for_course"),
            col("no_recent_activity"),
            col("low_engagement_for_course"),
            col("grade"),
            col("grade_basis"),
            col("pass_mark"),
            col("grade_percentile"),
            col("attendance_percentile"),
            col("missing"),
            col("days_since_attended"),
            col("days_since_active"),
            col("days_inactive"),
            col("engagement_score"),
            col("late_submissions"),
            col("low_recent_engagement_for_course"),
            col("late"),
            col("recent_clicks"),
            col("recent_clicks_percentile"),
            col("score_breakdown"),
        ])
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// The severity (0..1) of every indicator per student × course, before weights: what
/// `evaluate at-risk --fit` fits the weights on. Columns: student_id, course_id, then one per
/// [`INDICATORS`] entry.
///
/// # Errors
/// A missing input, polars errors.
pub fn at_risk_severities(
    attendance: Option<DataFrame>,
    performance: Option<DataFrame>,
    engagement: Option<DataFrame>,
    cfg: &CuratedConfig,
) -> Result<DataFrame> {
    let base = at_risk_inputs(attendance, performance, engagement, cfg)?;
    let mut cols = vec![col(S), col(C)];
    for (name, _, _, severity) in indicators(cfg)? {
        cols.push(severity.fill_null(lit(0.0)).alias(name));
    }
    Ok(base
        .select(cols)
        .sort([C, S], SortMultipleOptions::default())
        .collect()?)
}

/// `course_summary`.
pub fn course_summary(
    at_risk: &DataFrame,
    students: Option<&DataFrame>,
    cfg: &CuratedConfig,
) -> Result<DataFrame> {
    let n = i64::from(cfg.small_cell_min);
    let mut lf = at_risk.clone().lazy();
    lf = match students {
        Some(st) => lf.join(
            st.clone().lazy().select([col(S), col("status")]),
            [col(S)],
            [col(S)],
            JoinArgs::new(JoinType::Left),
        ),
        None => lf.with_column(lit(NULL).cast(DataType::String).alias("status")),
    };
    let wg = col("weighted_grade");
    let bucket = |lo: f64, hi: f64| {
        count_if(wg.clone().gt_eq(lit(lo)).and(wg.clone().lt(lit(hi)))).cast(DataType::Int64)
    };
    let small = |c: &str| {
        when(col("suppressed").or(col(c).gt(lit(0)).and(col(c).lt(lit(n)))))
            .then(lit(NULL).cast(DataType::Int64))
            .otherwise(col(c))
            .alias(c)
    };
    let hide = |c: &str| {
        when(col("suppressed"))
            .then(null_f64())
            .otherwise(col(c))
            .alias(c)
    };
    let out = lf
        .group_by([col(C)])
        .agg([
            len().cast(DataType::Int64).alias("enrolled"),
            count_if(col("status").eq(lit("active")))
                .cast(DataType::Int64)
                .alias("active"),
            wg.clone().mean().alias("average_grade"),
            bucket(90.0, f64::INFINITY).alias("grade_a"),
            bucket(80.0, 90.0).alias("grade_b"),
            bucket(70.0, 80.0).alias("grade_c"),
            bucket(60.0, 70.0).alias("grade_d"),
            count_if(wg.clone().lt(lit(60.0)))
                .cast(DataType::Int64)
                .alias("grade_f"),
            ratio(count_if(wg.clone().gt_eq(lit(60.0))), wg.clone().count()).alias("pass_rate"),
            col("attendance_rate")
                .mean()
                .alias("average_attendance_rate"),
            count_if(col("risk_level").eq(lit("high")))
                .cast(DataType::Int64)
                .alias("at_risk_high"),
            count_if(col("risk_level").eq(lit("medium")))
                .cast(DataType::Int64)
                .alias("at_risk_medium"),
            count_if(col("risk_level").eq(lit("low")))
                .cast(DataType::Int64)
                .alias("at_risk_low"),
        ])
        .with_column(col("enrolled").lt(lit(n)).alias("suppressed"))
        .with_columns([
            small("active"),
            small("grade_a"),
            small("grade_b"),
            small("grade_c"),
            small("grade_d"),
            small("grade_f"),
            small("at_risk_high"),
            small("at_risk_medium"),
            small("at_risk_low"),
            hide("average_grade"),
            hide("pass_rate"),
            hide("average_attendance_rate"),
            when(col("suppressed"))
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("enrolled"))
                .alias("enrolled"),
        ])
        .sort([C], SortMultipleOptions::default())
        .collect()?;
    Ok(out)
}

/// Computes one product from the inputs.
///
/// # Errors
/// A missing input table, a bad template in the products file, polars errors.
pub fn build(product: &str, inp: &Inputs, cfg: &CuratedConfig) -> Result<DataFrame> {
    let att = || {
        inp.attendance
            .as_ref()
            .ok_or_else(|| missing_input(product, "attendance"))
    };
    let grades = || {
        inp.grades
            .as_ref()
            .ok_or_else(|| missing_input(product, "grades"))
    };
    let engagement = || {
        inp.engagement
            .as_ref()
            .ok_or_else(|| missing_input(product, "engagement"))
    };
    let at_risk = || {
        let a = inp
            .attendance
            .as_ref()
            .map(|a| student_course_attendance(a, cfg).and_then(publish))
            .transpose()?;
        let p = inp
            .grades
            .as_ref()
            .map(|g| student_course_performance(g).and_then(publish))
            .transpose()?;
        let e = inp
            .engagement
            .as_ref()
            .map(|e| student_course_engagement(e).and_then(publish))
            .transpose()?;
        at_risk_students(a, p, e, cfg).and_then(publish)
    };
    match product {
        "student_course_attendance" => student_course_attendance(att()?, cfg),
        "attendance_weekly" => attendance_weekly(att()?, cfg),
        "student_course_performance" => student_course_performance(grades()?),
        "student_course_engagement" => student_course_engagement(engagement()?),
        "engagement_weekly" => engagement_weekly(engagement()?, cfg),
        "at_risk_students" => at_risk(),
        "course_summary" => course_summary(&at_risk()?, inp.students.as_ref(), cfg),
        other => Err(StepError::Polars(PolarsError::ComputeError(
            format!("unknown curated product `{other}`").into(),
        ))),
    }
    .and_then(publish)
}

/// Decimal places every published floating-point number is rounded to (half away from zero).
pub const PUBLISHED_DECIMALS: u32 = 9;

/// Rounds every floating-point column to [`PUBLISHED_DECIMALS`], before anything downstream
/// (grade bands, risk flags and levels, course aggregates) reads it: sums of the same values in
/// another order differ in the last bits (90.0 vs 89.99999999999999), and at a band edge that
/// would change what people see. With inputs read in key order and this rounding, every build of
/// the same rows gives the same bytes.
///
/// # Errors
/// polars errors.
pub fn publish(df: DataFrame) -> Result<DataFrame> {
    let floats: Vec<Expr> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Float64 | DataType::Float32))
        .map(|c| col(c.name().clone()).round(PUBLISHED_DECIMALS, RoundMode::HalfAwayFromZero))
        .collect();
    if floats.is_empty() {
        return Ok(df);
    }
    Ok(df.lazy().with_columns(floats).collect()?)
}

/// Primary key of a product.
pub fn key(product: &str) -> &'static [&'static str] {
    match product {
        "attendance_weekly" | "engagement_weekly" => &["course_id", "week_start"],
        "course_summary" => &["course_id"],
        _ => &["student_id", "course_id"],
    }
}

/// The curated rules every product must pass (a failure stops the step, nothing written):
/// `curated.<product>.one_row_per_key`, `curated.<product>.rates_in_range`, and
/// `curated.at_risk_students.every_student_evaluated`.
///
/// # Errors
/// [`StepError::Stopped`] naming the rule.
pub fn check(product: &str, df: &DataFrame, inp: &Inputs) -> Result<()> {
    let mut failed = Vec::new();
    let k: Vec<String> = key(product).iter().map(|s| (*s).to_string()).collect();
    let dup = df.height()
        - df.unique_stable(Some(&k), UniqueKeepStrategy::First, None)?
            .height();
    if dup > 0 {
        failed.push((format!("curated.{product}.one_row_per_key"), dup as u64));
    }
    let mut bad_rates = 0u64;
    for c in df.get_column_names() {
        if c.ends_with("_rate") {
            let v = df
                .column(c)?
                .as_materialized_series()
                .cast(&DataType::Float64)?;
            bad_rates += v
                .f64()?
                .iter()
                .flatten()
                .filter(|x| !(0.0..=1.0).contains(x))
                .count() as u64;
        }
    }
    if bad_rates > 0 {
        failed.push((format!("curated.{product}.rates_in_range"), bad_rates));
    }
    if product == "at_risk_students" {
        let mut pairs = 0usize;
        for d in [&inp.attendance, &inp.grades].into_iter().flatten() {
            let u = d
                .clone()
                .lazy()
                .select([col(S), col(C)])
                .unique(None, UniqueKeepStrategy::First)
                .collect()?;
            let missing = u.join(df, [S, C], [S, C], JoinArgs::new(JoinType::Anti), None)?;
            pairs += missing.height();
        }
        if pairs > 0 {
            failed.push((
                "curated.at_risk_students.every_student_evaluated".to_string(),
                pairs as u64,
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::Stopped {
            dataset: product.to_string(),
            stage: Stage::Curated,
            rules: failed,
            file: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::stage::comment_in;

    #[test]
    fn every_product_column_has_a_comment() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let contract = |ds: &str| {
            crate::contract::load(&root.join(format!("contracts/{ds}.yaml"))).expect("contract")
        };
        let (att, gr, st) = (
            contract("attendance"),
            contract("grades"),
            contract("students"),
        );
        let eng = contract("engagement");
        let cfg =
            CuratedConfig::load(&root.join("pipelines/curated/products.yaml")).expect("config");
        for product in super::super::PRODUCTS {
            let built: Vec<String> =
                super::super::rules::product_columns(product, &cfg, &att, &gr, &st, Some(&eng))
                    .expect("columns")
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect();
            let comments = column_comments(product);
            let listed: Vec<&str> = comments.iter().map(|(c, _)| *c).collect();
            assert_eq!(
                built, listed,
                "{product}: the comment list follows the product's columns"
            );
            for c in listed {
                let text = comment_in(comments, c).unwrap_or_default();
                assert!(!text.is_empty(), "{product}.{c} has no comment");
                assert!(
                    text.len() <= 255,
                    "{product}.{c}: Glue keeps 255 characters"
                );
            }
        }
    }

    fn settings() -> CuratedConfig {
        let mut cfg: CuratedConfig =
            serde_yaml::from_str(include_str!("../../pipelines/curated/products.yaml")).unwrap();
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
    fn inputs() -> (DataFrame, DataFrame) {
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

    fn one(df: &DataFrame, student: &str) -> DataFrame {
        let m = df.column(S).unwrap().str().unwrap().equal(student);
        df.filter(&m).unwrap()
    }

    fn num(df: &DataFrame, c: &str) -> Option<f64> {
        df.column(c)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
    }

    fn text(df: &DataFrame, c: &str) -> String {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap_or("")
            .to_string()
    }

    fn flag(df: &DataFrame, c: &str) -> bool {
        df.column(c).unwrap().bool().unwrap().get(0).unwrap()
    }

    #[test]
    fn at_risk_indicators_by_hand() {
        let (att, perf) = inputs();
        let out =
            publish(at_risk_students(Some(att), Some(perf), None, &settings()).unwrap()).unwrap();
        // d: grade at percentile 0.3 (severity 0.4, does not fire at 0.2), 2 of 3 missed work
        // (2/3), attendance at percentile 0.1 (0.8), 20 of 28 days inactive, attendance fell
        // 0.6 while the course's median drop is 0, chronic absence at weight 0.
        let d = one(&out, "d");
        let want = 0.4 + 2.0 / 3.0 + 0.8 + 20.0 / 28.0 + 1.0;
        assert!((num(&d, "risk_score").unwrap() - want).abs() < 1e-9, "{d}");
        assert_eq!(text(&d, "risk_level"), "high");
        for (c, v) in [
            ("low_grade", false),
            ("low_grade_for_course", false),
            ("low_completion", true),
            ("chronic_absence", true),
            ("low_attendance_for_course", true),
            ("no_recent_activity", true),
            ("falling_attendance", true),
        ] {
            assert_eq!(flag(&d, c), v, "{c}");
        }
        assert_eq!(
            text(&d, "reasons"),
            "2 of 4 assessments not submitted; attended 50% of sessions, percentile 10 of the course; \
             no attendance or activity for 20 days; attendance fell to 20% over the last 3 weeks, more than the course's"
        );
        assert!(
            !text(&d, "reasons").contains("absences in"),
            "weight 0: no reason"
        );
        assert_eq!(
            text(&d, "score_breakdown"),
            "low_grade_for_course +0.4, low_completion +0.7, low_attendance_for_course +0.8, no_recent_activity +0.7, falling_attendance +1.0"
        );
        // c: weights are 0, so the unweighted mean (35) counts, against C1's pass mark of 40.
        let c = one(&out, "c");
        assert_eq!(text(&c, "grade_basis"), "unweighted");
        assert_eq!(num(&c, "grade"), Some(35.0));
        assert_eq!(num(&c, "pass_mark"), Some(40.0));
        assert!((num(&c, "grade_percentile").unwrap() - 0.1).abs() < 1e-9);
        assert!((num(&c, "risk_score").unwrap() - 1.8).abs() < 1e-9);
        assert_eq!(text(&c, "risk_level"), "medium");
        assert!(
            text(&c, "reasons").starts_with(
                "grade 35.0% (unweighted mean: the assessments' weights are 0) is below the pass mark 40.0%; \
                 grade 35.0% (unweighted mean: the assessments' weights are 0) is at percentile 10 of the course"
            ),
            "{}",
            text(&c, "reasons")
        );
        // e: below the course's median attendance (percentile 0.3) and 2 days since last
        // attended: points, no reason.
        let e = one(&out, "e");
        assert!(
            (num(&e, "risk_score").unwrap() - (0.4 + 2.0 / 28.0)).abs() < 1e-9,
            "{}",
            text(&e, "score_breakdown")
        );
        assert_eq!(text(&e, "risk_level"), "low");
        assert_eq!(e.column("reasons").unwrap().null_count(), 1);
        // a and b: nothing.
        assert_eq!(num(&one(&out, "a"), "risk_score"), Some(0.0));
        // C2: everyone's attendance fell over a break and nobody has grades: only the 3 days
        // since each last attended count.
        for s in ["x", "y", "z"] {
            let r = one(&out, s);
            assert!(
                (num(&r, "risk_score").unwrap() - 3.0 / 28.0).abs() < 1e-9,
                "{s}"
            );
            assert_eq!(text(&r, "risk_level"), "low");
            assert!(!flag(&r, "falling_attendance"), "{s}");
            assert!((num(&r, "attendance_percentile").unwrap() - 0.5).abs() < 1e-9);
            assert_eq!(num(&r, "pass_mark"), Some(60.0), "the default pass mark");
        }
    }

    #[test]
    fn at_risk_severities_before_weights() {
        let (att, perf) = inputs();
        let sev = at_risk_severities(Some(att), Some(perf), None, &settings()).unwrap();
        let d = one(&sev, "d");
        assert_eq!(sev.width(), 2 + INDICATORS.len());
        assert!((num(&d, "low_completion").unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((num(&d, "no_recent_activity").unwrap() - 20.0 / 28.0).abs() < 1e-9);
        assert_eq!(num(&d, "chronic_absence"), Some(1.0), "before its weight 0");
    }

    #[test]
    fn late_submissions_fire_from_the_threshold() {
        let (att, perf) = inputs();
        // b handed in 1 of 4 assessments late, e 2; the others none.
        let perf = perf
            .lazy()
            .with_column(
                when(col(S).eq(lit("b")))
                    .then(lit(1i64))
                    .when(col(S).eq(lit("e")))
                    .then(lit(2i64))
                    .otherwise(col("late"))
                    .alias("late"),
            )
            .collect()
            .unwrap();
        let mut cfg = settings();
        let l = &mut cfg.at_risk.indicators.late_submissions;
        (l.weight, l.threshold, l.full) = (1.5, 1.0, Some(2.0));
        let out = publish(at_risk_students(Some(att), Some(perf), None, &cfg).unwrap()).unwrap();
        let b = one(&out, "b");
        assert!(flag(&b, "late_submissions"));
        assert_eq!(num(&b, "late"), Some(1.0));
        // Severity min(late, full) / full = 1/2, times the weight 1.5.
        assert!((num(&b, "risk_score").unwrap() - 0.75).abs() < 1e-9, "{b}");
        assert_eq!(
            text(&b, "reasons"),
            "1 assessments submitted after the due date"
        );
        assert!(text(&b, "actions").contains("deadlines"));
        let e = one(&out, "e");
        assert!(flag(&e, "late_submissions"));
        assert!(text(&e, "score_breakdown").contains("late_submissions +1.5"));
        let a = one(&out, "a");
        assert!(!flag(&a, "late_submissions"));
        assert_eq!(num(&a, "risk_score"), Some(0.0));
        // C2 has no grades: nothing late, nothing fires.
        assert!(!flag(&one(&out, "x"), "late_submissions"));
    }

    #[test]
    fn low_recent_engagement_is_relative_to_the_course() {
        let (att, perf) = inputs();
        // C1 has activity data; d has no activity row at all (0 recent clicks). C2 has none:
        // its students get no recent-engagement points.
        let eng = DataFrame::new(
            4,
            vec![
                Column::new(S.into(), ["a", "b", "c", "e"]),
                Column::new(C.into(), ["C1"; 4]),
                Column::new("days_since_active".into(), [0i64, 0, 0, 1]),
                Column::new("engagement_score".into(), [80.0, 70.0, 60.0, 50.0]),
                Column::new("recent_clicks".into(), [50i64, 40, 30, 20]),
            ],
        )
        .unwrap();
        let mut cfg = settings();
        let i = &mut cfg.at_risk.indicators;
        i.low_engagement_for_course.weight = 0.0;
        for ind in [
            &mut i.low_grade,
            &mut i.low_grade_for_course,
            &mut i.declining_trend,
            &mut i.low_completion,
            &mut i.low_attendance_for_course,
            &mut i.no_recent_activity,
            &mut i.falling_attendance,
        ] {
            ind.weight = 0.0;
        }
        let r = &mut i.low_recent_engagement_for_course;
        (r.weight, r.threshold) = (2.0, 0.2);
        let out =
            publish(at_risk_students(Some(att), Some(perf), Some(eng), &cfg).unwrap()).unwrap();
        // C1 recent clicks: d 0, e 20, c 30, b 40, a 50 -> percentiles 0.1, 0.3, 0.5, 0.7, 0.9.
        let d = one(&out, "d");
        assert_eq!(num(&d, "recent_clicks"), Some(0.0));
        assert!((num(&d, "recent_clicks_percentile").unwrap() - 0.1).abs() < 1e-9);
        assert!(flag(&d, "low_recent_engagement_for_course"));
        // Severity 2 x (0.5 - 0.1) = 0.8, times 2.
        assert!((num(&d, "risk_score").unwrap() - 1.6).abs() < 1e-9, "{d}");
        assert_eq!(
            text(&d, "reasons"),
            "0 clicks on the course's online material in the last 14 days, percentile 10 of the course"
        );
        // e: below the median (0.3): points, but it does not fire at 0.2.
        let e = one(&out, "e");
        assert!(!flag(&e, "low_recent_engagement_for_course"));
        assert!((num(&e, "risk_score").unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(num(&one(&out, "a"), "risk_score"), Some(0.0));
        for s in ["x", "y", "z"] {
            let r = one(&out, s);
            assert_eq!(num(&r, "recent_clicks"), None, "{s}: no engagement data");
            assert_eq!(num(&r, "risk_score"), Some(0.0), "{s}");
        }
    }

    #[test]
    fn recent_clicks_count_the_course_last_14_days() {
        let date = |d: &str| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .unwrap()
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days() as i32
        };
        // The course's last day of activity is 2026-03-31: its last 14 days are 03-18..=03-31.
        let days = [
            "2026-03-01",
            "2026-03-17",
            "2026-03-18",
            "2026-03-31",
            "2026-03-20",
        ];
        let eng = DataFrame::new(
            5,
            vec![
                Column::new(S.into(), ["a", "a", "a", "b", "c"]),
                Column::new(C.into(), ["C1"; 5]),
                Series::new(
                    "activity_date".into(),
                    days.iter().map(|d| date(d)).collect::<Vec<i32>>(),
                )
                .cast(&DataType::Date)
                .unwrap()
                .into_column(),
                Column::new(
                    "activity_type".into(),
                    ["login", "quiz", "forum", "resource", "other"],
                ),
                Column::new("clicks".into(), [5i64, 7, 11, 13, 17]),
                Series::new("minutes".into(), [None::<i64>; 5]).into_column(),
            ],
        )
        .unwrap();
        let out = student_course_engagement(&eng).unwrap();
        let recent = |s: &str| num(&one(&out, s), "recent_clicks");
        assert_eq!(
            recent("a"),
            Some(11.0),
            "03-17, 14 days before the last day, is outside"
        );
        assert_eq!(recent("b"), Some(13.0));
        assert_eq!(recent("c"), Some(17.0));
        assert_eq!(num(&one(&out, "a"), "clicks"), Some(23.0));
    }
}
