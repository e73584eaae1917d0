//! The at-risk indicators: when each fires and its severity, the course's pass mark, and the
//! reason and action templates shown for an indicator that fires.
//!
//! Invariants: the indicators come in score order, the order of [`INDICATORS`]; every severity
//! is in 0..1; a template may use only the known placeholders (an unknown one is an error
//! naming them, never an empty text).

use polars::prelude::*;

use super::C;
use crate::curated::{CuratedConfig, Indicator};
use crate::stage::{Result, StepError};

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
pub(super) fn template(text: &str) -> Result<Expr> {
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

/// The course's pass mark from the settings.
pub(super) fn pass_mark(cfg: &CuratedConfig) -> Expr {
    let pm = &cfg.at_risk.pass_mark;
    pm.courses.iter().fold(lit(pm.default), |e, (c, v)| {
        when(col(C).eq(lit(c.clone()))).then(lit(*v)).otherwise(e)
    })
}

/// The indicators in score order: name, settings, when it fires, its severity (0..1).
pub(super) fn indicators(
    cfg: &CuratedConfig,
) -> Result<Vec<(&'static str, &Indicator, Expr, Expr)>> {
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
