//! The `at_risk_students` product and the severities `evaluate at-risk --fit` fits on.
//!
//! Invariants: one row per student and course seen in attendance, grades or engagement; the
//! risk score is the sum over the indicators of `weight × severity`, rounded as published
//! before it is cut into a level; only an indicator that fires with a weight gives a reason
//! and an action.

use polars::prelude::*;

use super::indicators::{indicators, pass_mark, template};
use super::{course_percentile, missing_input, null_f64, C, PUBLISHED_DECIMALS, S};
use crate::curated::CuratedConfig;
use crate::rules::eval::none_if_empty;
use crate::stage::Result;

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
/// [`INDICATORS`](super::INDICATORS) entry.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curated::products::test_support::{flag, inputs, num, one, settings, text};
    use crate::curated::products::{publish, INDICATORS};

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
}
