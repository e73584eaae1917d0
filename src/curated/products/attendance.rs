//! The attendance products: `student_course_attendance` and `attendance_weekly`, from
//! trusted.attendance.
//!
//! Invariants: one session per student, course and session date (the newest correction by
//! `recorded_at` wins) before anything is counted; present and late count as attended; every
//! rate is in 0..1 and null when its denominator is 0; weekly cells describing fewer than
//! `small_cell_min` students are suppressed.

use polars::prelude::*;

use super::attendance_state::{self, run_id};
use super::{count_if, in_order, null_f64, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

/// The order [`sessions`] de-duplicates in and returns its rows in: course, student, session
/// date, correction time. trusted.attendance is read for the products in this order
/// (`curated::read::read_order`), so its sort is usually skipped.
pub const SESSION_ORDER: [&str; 4] = [C, S, "session_date", "recorded_at"];

/// One row per student × course × session date (the newest correction wins), in
/// [`SESSION_ORDER`]. Rows already in that order are not sorted again (checked in one pass); in
/// order, a session's rows are consecutive and its newest correction is the last of them, so
/// de-duplicating is a comparison with the next row, not a hash of three keys.
pub fn sessions(att: &DataFrame) -> Result<DataFrame> {
    let sorted;
    let ordered = if in_order(att, &SESSION_ORDER)? {
        att
    } else {
        sorted = att.sort(SESSION_ORDER, SortMultipleOptions::default())?;
        &sorted
    };
    let id = run_id(&[C, S, "session_date"]);
    // The last row of a run: the next row is of another session (or there is none).
    let last = col("__session").neq_missing(col("__session").shift(lit(-1)));
    Ok(ordered
        .clone()
        .lazy()
        .with_column(id.alias("__session"))
        .filter(last)
        .drop(cols(["__session"]))
        .collect()?)
}

/// `student_course_attendance`.
pub fn student_course_attendance(att: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    course_attendance_of(sessions(att)?, cfg)
}

/// `student_course_attendance` from the [`sessions`] of trusted.attendance (in
/// [`SESSION_ORDER`]: a student's sessions of a course by date, what the streaks count in),
/// through the state an increment also keeps ([`attendance_state`]).
pub(super) fn course_attendance_of(s: DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    attendance_state::product_of(
        &attendance_state::totals_of(&s)?,
        &attendance_state::recent_of(&s)?,
        cfg,
    )
}

/// `attendance_weekly`.
pub fn attendance_weekly(att: &DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    weekly_attendance_of(sessions(att)?, cfg)
}

/// `attendance_weekly` from the [`sessions`] of trusted.attendance (in [`SESSION_ORDER`]).
pub(crate) fn weekly_attendance_of(s: DataFrame, cfg: &CuratedConfig) -> Result<DataFrame> {
    let n = cfg.small_cell_min;
    let week_start = attendance_state::week_start(col("session_date"));
    // Integer keys for the rows in order (see `course_attendance_of`).
    let out = s
        .lazy()
        .with_columns([
            week_start.alias("week_start"),
            run_id(&[C]).alias("__c"),
            run_id(&[C, S]).alias("__sc"),
        ])
        .group_by([col("__c"), col("week_start")])
        .agg([
            col(C).first(),
            len().cast(DataType::Int64).alias("student_sessions"),
            count_if(col("status").is_in(
                lit(Series::new("a".into(), ["present", "late"])).implode(true),
                false,
            ))
            .alias("__att"),
            col("__sc")
                .n_unique()
                .cast(DataType::Int64)
                .alias("students"),
            col("__sc")
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
    use proptest::prelude::*;

    use super::*;
    use crate::curated::products::test_support::{num, one, settings, text};

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

    /// Attendance rows from `(student, course, day, recorded day, status)` numbers.
    fn frame(rows: &[(u8, u8, i32, i32, u8)]) -> DataFrame {
        let strings = |v: Vec<String>, name: &str| Column::new(name.into(), v);
        let day =
            |v: Vec<i32>, name: &str| Column::new(name.into(), v).cast(&DataType::Date).unwrap();
        const STATUS: [&str; 4] = ["present", "absent", "late", "excused"];
        DataFrame::new(
            rows.len(),
            vec![
                strings(rows.iter().map(|r| format!("s{}", r.0)).collect(), S),
                strings(rows.iter().map(|r| format!("C{}", r.1)).collect(), C),
                day(rows.iter().map(|r| 20_000 + r.2).collect(), "session_date"),
                day(rows.iter().map(|r| 20_000 + r.3).collect(), "recorded_at"),
                strings(
                    rows.iter()
                        .map(|r| STATUS[usize::from(r.4) % 4].to_string())
                        .collect(),
                    "status",
                ),
                Column::new("minutes_attended".into(), vec![50i64; rows.len()]),
            ],
        )
        .unwrap()
    }

    /// Rows with one correction per recorded day at most (so "the newest" is well defined),
    /// in any order.
    fn shuffled_rows() -> impl Strategy<Value = Vec<(u8, u8, i32, i32, u8)>> {
        proptest::collection::vec((0u8..3, 0u8..2, 0i32..6, 0i32..3, 0u8..4), 0..40)
            .prop_map(|mut v| {
                let mut seen = std::collections::HashSet::new();
                v.retain(|r| seen.insert((r.0, r.1, r.2, r.3)));
                v
            })
            .prop_flat_map(|v| Just(v).prop_shuffle())
    }

    proptest! {
        #[test]
        fn sessions_keep_the_newest_correction_of_each_session(rows in shuffled_rows()) {
            let att = frame(&rows);
            let reference = att
                .sort(SESSION_ORDER, SortMultipleOptions::default())
                .unwrap()
                .unique_stable(
                    Some(&[S.to_string(), C.to_string(), "session_date".to_string()]),
                    UniqueKeepStrategy::Last,
                    None,
                )
                .unwrap();
            let got = sessions(&att).unwrap();
            prop_assert!(got.equals_missing(&reference), "{got}\n{reference}");
        }

        #[test]
        fn products_do_not_depend_on_the_row_order(rows in shuffled_rows()) {
            let cfg = settings();
            let att = frame(&rows);
            let ordered = att.sort(SESSION_ORDER, SortMultipleOptions::default()).unwrap();
            let a = student_course_attendance(&att, &cfg).unwrap();
            let b = student_course_attendance(&ordered, &cfg).unwrap();
            prop_assert!(a.equals_missing(&b), "{a}\n{b}");
            // Counted by hand: per student and course, the newest status of each day.
            let mut newest = std::collections::BTreeMap::new();
            for r in &rows {
                let e = newest.entry((r.1, r.0, r.2)).or_insert((r.3, r.4));
                if r.3 > e.0 {
                    *e = (r.3, r.4);
                }
            }
            let mut expect: std::collections::BTreeMap<(u8, u8), (i64, i64, i64, i64)> =
                std::collections::BTreeMap::new();
            for ((c, st, _), (_, status)) in &newest {
                let e = expect.entry((*c, *st)).or_default();
                let missed = status % 4 == 1 || status % 4 == 3;
                e.0 += 1;
                e.1 += i64::from(status % 4 == 0);
                e.3 = if missed { e.3 + 1 } else { 0 };
                e.2 = e.2.max(e.3);
            }
            prop_assert_eq!(a.height(), expect.len());
            for (i, ((c, st), (n, present, streak, _))) in expect.iter().enumerate() {
                let row = a.slice(i as i64, 1);
                prop_assert_eq!(text(&row, S), format!("s{st}"));
                prop_assert_eq!(text(&row, C), format!("C{c}"));
                prop_assert_eq!(num(&row, "sessions"), Some(*n as f64));
                prop_assert_eq!(num(&row, "present"), Some(*present as f64));
                prop_assert_eq!(num(&row, "longest_absence_streak"), Some(*streak as f64));
            }
            let a = attendance_weekly(&att, &cfg).unwrap();
            let b = attendance_weekly(&ordered, &cfg).unwrap();
            prop_assert!(a.equals_missing(&b), "{a}\n{b}");
        }
    }

    #[test]
    fn trusted_is_read_in_the_order_sessions_work_in() {
        let read = crate::curated::read::read_order("attendance");
        assert_eq!(read[..SESSION_ORDER.len()], SESSION_ORDER);
    }
}
