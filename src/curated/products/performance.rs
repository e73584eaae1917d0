//! The `student_course_performance` product, from trusted.grades.
//!
//! Invariants: due is measured from the course's own `as_of` (its newest submitted_at or
//! graded_at), so a course's numbers depend on its own rows only; every rate is in 0..1 and
//! null when its denominator is 0.

use polars::prelude::*;

use super::{count_if, f, null_f64, ratio, C, S};
use crate::stage::Result;

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

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
