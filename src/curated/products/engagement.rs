//! The engagement products: `student_course_engagement` and `engagement_weekly`, from
//! trusted.engagement (LMS activity).
//!
//! Invariants: a student appears only with activity in the course; `recent_clicks` counts the
//! course's last 14 days of activity (that last day included); the engagement score is
//! relative to the course (50 = its middle); weekly cells describing fewer than
//! `small_cell_min` students are suppressed.

use polars::prelude::*;

use super::{course_percentile, f, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

/// The window of `recent_clicks`: the course's last this many days of activity.
const RECENT_DAYS: i32 = 14;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curated::products::test_support::{num, one};

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
