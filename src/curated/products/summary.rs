//! The `course_summary` product: per course, from `at_risk_students` and trusted.students.
//!
//! Invariants: a course with fewer than `small_cell_min` students has every number shown
//! empty, and any count between 1 and `small_cell_min - 1` is suppressed.

use polars::prelude::*;

use super::{count_if, null_f64, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

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
