//! The catalog comment of every product column, in table order ([`column_comments`]).
//!
//! Invariants: each list follows its product's columns exactly, in order, and every comment is
//! non-empty and at most 255 characters (what Glue keeps); checked by the test below.

use super::{C, S};
use crate::stage::ColumnComments;

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
    ("risk_level", "low, medium or high: risk_score against the medium and high cut-offs of pipelines/curated/products.yaml (shipped: 2.08 and 3.28)"),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::curated::CuratedConfig;
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
        for product in crate::curated::PRODUCTS {
            let built: Vec<String> =
                crate::curated::rules::product_columns(product, &cfg, &att, &gr, &st, Some(&eng))
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
}
