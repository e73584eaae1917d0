//! What `student_course_attendance` is computed from, kept so a day of new sessions can be
//! added without reading the course's history again: per student and course, the **totals**
//! (counts, minutes, last dates, the absence runs at the end and the longest), and the
//! **recent** sessions (those within the last [`RECENT_DAYS`] days of the course, which the
//! recent and earlier rates and the current week read).
//!
//! Invariants: [`product_of`] is the only way the product is made, from a full build's
//! [`totals_of`] and [`recent_of`] or from [`advance`]'s; so an increment gives the product of
//! a rebuild exactly when its totals and recent sessions equal the rebuild's (integers, dates
//! and statuses — no float is carried). [`advance`] refuses (`None`) anything that is not an
//! append: a session on or before its student's last session in the course (a correction, a
//! late delivery), or a week that began before the recent sessions kept.

use polars::prelude::*;

use super::{count_if, ratio, C, S};
use crate::curated::CuratedConfig;
use crate::stage::Result;

/// Days back from a course's last session that count as recent (the recent rate's window,
/// longer than the week the weekly product recomputes).
pub const RECENT_DAYS: i32 = 21;

/// Columns of the totals, one row per student and course.
pub const TOTALS_COLUMNS: [&str; 16] = [
    C,
    S,
    "sessions",
    "present",
    "absent",
    "late",
    "excused",
    "attended",
    "minutes_attended",
    "last_attended_date",
    "last_session_date",
    "longest_absence_streak",
    "trailing_missed",
    "trailing_absent",
    "course_first",
    "course_last",
];

/// Columns of the recent sessions.
pub const RECENT_COLUMNS: [&str; 4] = [C, S, "session_date", "status"];

fn in_list(c: &str, values: &[&str]) -> Expr {
    let s = Series::new("v".into(), values);
    col(c)
        .is_in(lit(s).implode(true), false)
        .fill_null(lit(false))
}

fn attended() -> Expr {
    in_list("status", &["present", "late"])
}

fn missed() -> Expr {
    in_list("status", &["absent", "excused"])
}

fn absent() -> Expr {
    in_list("status", &["absent"])
}

/// A number per run of consecutive rows equal in `keys` (nulls equal to nulls), rising by one
/// from run to run: an integer key for rows in session order, cheaper to group by than the
/// strings it stands for.
pub(super) fn run_id(keys: &[&str]) -> Expr {
    let changed = |k: &str| col(k).neq_missing(col(k).shift(lit(1)));
    keys.iter()
        .map(|k| changed(k))
        .reduce(Expr::or)
        .unwrap_or_else(|| lit(false))
        .cast(DataType::UInt32)
        .cum_sum(false)
}

/// Per student and course of rows in session order: the longest run of rows where `flag`
/// holds and the run at the end (0 when the last row does not hold it), runs measured by the
/// sum of the rows' weight `_w` (1 per session; a carried-over run is one row of its length).
fn runs(rows: LazyFrame, flag: Expr, longest: &str, trailing: &str) -> Result<LazyFrame> {
    Ok(rows
        .with_columns([flag.alias("__f"), run_id(&[C, S]).alias("__sc")])
        .with_column(run_id(&["__sc", "__f"]).alias("__run"))
        .group_by_stable([col("__run")])
        .agg([
            col(C).first(),
            col(S).first(),
            col("__sc").first(),
            col("__f").first(),
            col("_w").sum().cast(DataType::Int64).alias("__len"),
        ])
        .group_by_stable([col("__sc")])
        .agg([
            col(C).first(),
            col(S).first(),
            col("__len")
                .filter(col("__f"))
                .max()
                .fill_null(lit(0i64))
                .cast(DataType::Int64)
                .alias(longest),
            when(col("__f").last())
                .then(col("__len").last())
                .otherwise(lit(0i64))
                .cast(DataType::Int64)
                .alias(trailing),
        ])
        .drop(cols(["__sc"])))
}

/// The totals of sessions in session order (`sessions`' output: one row per session), one row
/// per student and course, each carrying its course's first and last session date.
///
/// # Errors
/// polars errors.
pub fn totals_of(s: &DataFrame) -> Result<DataFrame> {
    let rows = s
        .clone()
        .lazy()
        .with_column(lit(1i64).cast(DataType::Int64).alias("_w"));
    let count = |e: Expr, name: &str| count_if(e).cast(DataType::Int64).alias(name);
    let sums = rows
        .clone()
        .with_columns([
            run_id(&[C]).alias("__c"),
            run_id(&[C, S]).alias("__sc"),
            attended().alias("__attended"),
        ])
        .with_columns([
            col("session_date")
                .min()
                .over([col("__c")])?
                .alias("course_first"),
            col("session_date")
                .max()
                .over([col("__c")])?
                .alias("course_last"),
        ])
        .group_by_stable([col("__sc")])
        .agg([
            col(C).first(),
            col(S).first(),
            len().cast(DataType::Int64).alias("sessions"),
            count(col("status").eq(lit("present")), "present"),
            count(col("status").eq(lit("absent")), "absent"),
            count(col("status").eq(lit("late")), "late"),
            count(col("status").eq(lit("excused")), "excused"),
            count(col("__attended"), "attended"),
            col("minutes_attended")
                .sum()
                .cast(DataType::Int64)
                .alias("minutes_attended"),
            col("session_date")
                .filter(col("__attended"))
                .max()
                .alias("last_attended_date"),
            col("session_date").max().alias("last_session_date"),
            col("course_first").first(),
            col("course_last").first(),
        ])
        .drop(cols(["__sc"]));
    let missed_runs = runs(
        rows.clone(),
        missed(),
        "longest_absence_streak",
        "trailing_missed",
    )?;
    let absent_runs = runs(rows, absent(), "__longest_absent", "trailing_absent")?;
    finish(with_runs(sums, missed_runs, absent_runs))
}

/// `totals` with the runs of missed and of absent sessions of each student and course.
fn with_runs(totals: LazyFrame, missed: LazyFrame, absent: LazyFrame) -> LazyFrame {
    let by = || [col(C), col(S)];
    totals
        .join(missed, by(), by(), JoinArgs::new(JoinType::Left))
        .join(absent, by(), by(), JoinArgs::new(JoinType::Left))
}

/// The totals' columns in their order, sorted by course and student.
fn finish(totals: LazyFrame) -> Result<DataFrame> {
    Ok(totals
        .select(
            TOTALS_COLUMNS
                .iter()
                .map(|c| match *c {
                    C | S => col(*c),
                    d if d.ends_with("_date") || d.starts_with("course_") => {
                        col(*c).cast(DataType::Date)
                    }
                    _ => col(*c).cast(DataType::Int64),
                })
                .collect::<Vec<_>>(),
        )
        .sort([C, S], SortMultipleOptions::default())
        .collect()?)
}

/// The sessions (in session order) within the last [`RECENT_DAYS`] days of their course.
///
/// # Errors
/// polars errors.
pub fn recent_of(s: &DataFrame) -> Result<DataFrame> {
    Ok(s.clone()
        .lazy()
        .with_column(run_id(&[C]).alias("__c"))
        .filter(is_recent(col("session_date").max().over([col("__c")])?))
        .select(RECENT_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()?)
}

/// Whether a session is recent, given its course's last session date.
fn is_recent(course_last: Expr) -> Expr {
    col("session_date")
        .cast(DataType::Int32)
        .gt(course_last.cast(DataType::Int32) - lit(RECENT_DAYS))
}

/// `student_course_attendance` from the totals and recent sessions of the same courses.
///
/// # Errors
/// polars errors.
pub fn product_of(
    totals: &DataFrame,
    recent: &DataFrame,
    cfg: &CuratedConfig,
) -> Result<DataFrame> {
    let counts = recent.clone().lazy().group_by([col(C), col(S)]).agg([
        len().cast(DataType::Int64).alias("__rn"),
        count_if(attended()).cast(DataType::Int64).alias("__ra"),
    ]);
    Ok(totals
        .clone()
        .lazy()
        .join(
            counts,
            [col(C), col(S)],
            [col(C), col(S)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("__rn").fill_null(lit(0i64)),
            col("__ra").fill_null(lit(0i64)),
        ])
        .with_columns([
            ratio(col("present") + col("late"), col("sessions")).alias("attendance_rate"),
            ratio(col("absent") + col("excused"), col("sessions")).alias("absence_rate"),
            ratio(col("__ra"), col("__rn")).alias("recent_rate"),
            ratio(col("attended") - col("__ra"), col("sessions") - col("__rn"))
                .alias("earlier_rate"),
            // Never attended: counted from the day before the course's first session.
            (col("course_last").cast(DataType::Int64)
                - col("last_attended_date")
                    .cast(DataType::Int64)
                    .fill_null(col("course_first").cast(DataType::Int64) - lit(1i64)))
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
        .collect()?)
}

/// The Monday of a date's ISO week.
pub fn week_start(date: Expr) -> Expr {
    (date.clone().cast(DataType::Int32) - (date.dt().weekday().cast(DataType::Int32) - lit(1)))
        .cast(DataType::Date)
}

/// What a day of new sessions makes of the kept state.
#[derive(Debug)]
pub struct Advanced {
    /// The totals of every student of the touched courses.
    pub totals: DataFrame,
    /// The recent sessions of the touched courses (in no particular order).
    pub recent: DataFrame,
    /// Every session of the touched courses from the Monday of each course's first new
    /// session on (in session order): the weeks whose weekly row changes.
    pub weeks: DataFrame,
    /// Per touched course (`course_id`), the first week that changes (`week_start`).
    pub from_week: DataFrame,
}

/// Adds `new` sessions (in session order, none of them in `totals` yet) to the kept `totals`
/// and `recent` sessions of the courses `new` touches (they may hold other courses too;
/// those are left out). `None` when `new` is not an append: a session on or before its
/// student's last kept session in the course, or a course whose first new week began before
/// the recent sessions kept (then the course is rebuilt from trusted).
///
/// # Errors
/// polars errors.
pub fn advance(
    totals: &DataFrame,
    recent: &DataFrame,
    new: &DataFrame,
) -> Result<Option<Advanced>> {
    let touched = new.clone().lazy().group_by([col(C)]).agg([
        col("session_date").min().alias("__new_first"),
        col("session_date").max().alias("__new_last"),
    ]);
    let old = totals.clone().lazy().join(
        touched.clone().select([col(C)]),
        [col(C)],
        [col(C)],
        JoinArgs::new(JoinType::Semi),
    );
    // An append only: every new session after its student's last kept one ...
    let firsts = new
        .clone()
        .lazy()
        .group_by([col(C), col(S)])
        .agg([col("session_date").min().alias("__first")]);
    let late = firsts
        .join(
            old.clone()
                .select([col(C), col(S), col("last_session_date")]),
            [col(C), col(S)],
            [col(C), col(S)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("__first").lt_eq(col("last_session_date")))
        .collect()?
        .height();
    // ... and each course's first new week within the recent sessions kept.
    let courses = old.clone().group_by([col(C)]).agg([
        col("course_first").first().alias("__old_first"),
        col("course_last").first().alias("__old_last"),
    ]);
    let span = touched
        .join(courses, [col(C)], [col(C)], JoinArgs::new(JoinType::Left))
        .with_column(week_start(col("__new_first")).alias("week_start"))
        .collect()?;
    let early = span
        .clone()
        .lazy()
        .filter(
            col("week_start")
                .cast(DataType::Int32)
                .lt_eq(col("__old_last").cast(DataType::Int32) - lit(RECENT_DAYS)),
        )
        .collect()?
        .height();
    if late > 0 || early > 0 {
        return Ok(None);
    }
    let bounds = span.clone().lazy().select([
        col(C),
        polars::lazy::dsl::min_horizontal([col("__old_first"), col("__new_first")])?
            .alias("course_first"),
        polars::lazy::dsl::max_horizontal([col("__old_last"), col("__new_last")])?
            .alias("course_last"),
        col("week_start"),
    ]);
    // The new sessions' own totals, then added to the kept ones.
    let add = totals_of(new)?;
    let carried = |trailing: &str| {
        old.clone().select([
            col(C),
            col(S),
            col("last_session_date").alias("session_date"),
            lit(true).alias("__carried"),
            col(trailing).cast(DataType::Int64).alias("_w"),
        ])
    };
    let fresh = new.clone().lazy().with_columns([
        lit(false).alias("__carried"),
        lit(1i64).cast(DataType::Int64).alias("_w"),
    ]);
    // The runs across the join: each kept run at the end is one row of its length before the
    // new sessions.
    let joined = |trailing: &str, flag: Expr| -> Result<LazyFrame> {
        let rows = concat(
            [
                carried(trailing).with_column(lit(NULL).cast(DataType::String).alias("status")),
                fresh.clone().select([
                    col(C),
                    col(S),
                    col("session_date"),
                    col("__carried"),
                    col("_w"),
                    col("status"),
                ]),
            ],
            UnionArgs::default(),
        )?
        .join(
            fresh
                .clone()
                .select([col(C), col(S)])
                .unique(None, UniqueKeepStrategy::First),
            [col(C), col(S)],
            [col(C), col(S)],
            JoinArgs::new(JoinType::Semi),
        )
        // Runs are counted in session order: sorted after the join, which need not keep it.
        .sort([C, S, "session_date"], SortMultipleOptions::default())
        .with_column(
            when(col("__carried"))
                .then(lit(true))
                .otherwise(flag)
                .alias("__flag"),
        );
        Ok(rows)
    };
    let missed_runs = runs(
        joined("trailing_missed", missed())?,
        col("__flag"),
        "__longest_missed",
        "__trailing_missed",
    )?;
    let absent_runs = runs(
        joined("trailing_absent", absent())?,
        col("__flag"),
        "__longest_absent",
        "__trailing_absent",
    )?;
    let sum = |c: &str| {
        (col(c).fill_null(lit(0i64)) + col(format!("{c}_new")).fill_null(lit(0i64))).alias(c)
    };
    let newer = |c: &str| polars::lazy::dsl::max_horizontal([col(c), col(format!("{c}_new"))]);
    let both = old.join(
        add.lazy(),
        [col(C), col(S)],
        [col(C), col(S)],
        JoinArgs::new(JoinType::Full)
            .with_coalesce(JoinCoalesce::CoalesceColumns)
            .with_suffix(Some("_new".into())),
    );
    let merged = with_runs(both, missed_runs, absent_runs)
        .drop(cols(["course_first", "course_last"]))
        .join(
            bounds.clone(),
            [col(C)],
            [col(C)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            sum("sessions"),
            sum("present"),
            sum("absent"),
            sum("late"),
            sum("excused"),
            sum("attended"),
            sum("minutes_attended"),
            newer("last_attended_date")?.alias("last_attended_date"),
            newer("last_session_date")?.alias("last_session_date"),
            polars::lazy::dsl::max_horizontal([
                col("longest_absence_streak"),
                col("longest_absence_streak_new"),
                col("__longest_missed"),
            ])?
            .fill_null(lit(0i64))
            .alias("longest_absence_streak"),
            // A student without new sessions keeps the runs at the end.
            col("__trailing_missed")
                .fill_null(col("trailing_missed"))
                .alias("trailing_missed"),
            col("__trailing_absent")
                .fill_null(col("trailing_absent"))
                .alias("trailing_absent"),
        ]);
    let totals = finish(merged)?;
    // Recent sessions: the kept ones and the new ones, within the new window.
    let kept = recent.clone().lazy().join(
        bounds.clone().select([col(C)]),
        [col(C)],
        [col(C)],
        JoinArgs::new(JoinType::Semi),
    );
    let all = concat(
        [
            kept,
            new.clone()
                .lazy()
                .select(RECENT_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>()),
        ],
        UnionArgs::default(),
    )?
    .join(
        bounds.select([
            col(C),
            col("course_last"),
            col("week_start").alias("__from"),
        ]),
        [col(C)],
        [col(C)],
        JoinArgs::new(JoinType::Left),
    )
    .collect()?;
    let select = || RECENT_COLUMNS.iter().map(|c| col(*c)).collect::<Vec<_>>();
    let recent = all
        .clone()
        .lazy()
        .filter(is_recent(col("course_last")))
        .select(select())
        .collect()?;
    // Only the changed weeks are sorted (the weekly counts need session order); the recent
    // sessions are counted by key and kept in any order.
    let weeks = all
        .lazy()
        .filter(col("session_date").gt_eq(col("__from")))
        .select(select())
        .sort([C, S, "session_date"], SortMultipleOptions::default())
        .collect()?;
    let from_week = span.select([C, "week_start"])?;
    Ok(Some(Advanced {
        totals,
        recent,
        weeks,
        from_week,
    }))
}

/// No sessions, with the columns the state reads.
fn no_sessions() -> Result<DataFrame> {
    let text = |c: &str| Column::new_empty(c.into(), &DataType::String);
    Ok(DataFrame::new(
        0,
        vec![
            text(C),
            text(S),
            Column::new_empty("session_date".into(), &DataType::Date),
            text("status"),
            Column::new_empty("minutes_attended".into(), &DataType::Int64),
        ],
    )?)
}

/// Totals of no student (the table's columns).
///
/// # Errors
/// polars errors.
pub fn empty_totals() -> Result<DataFrame> {
    totals_of(&no_sessions()?)
}

/// No recent session (the table's columns).
///
/// # Errors
/// polars errors.
pub fn empty_recent() -> Result<DataFrame> {
    recent_of(&no_sessions()?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::curated::products::{sessions, test_support::settings};

    /// Sessions from `(student, course, day, status)` numbers (one per student, course and
    /// day), in session order.
    fn frame(rows: &[(u8, u8, i32, u8)]) -> DataFrame {
        const STATUS: [&str; 4] = ["present", "absent", "late", "excused"];
        let day = |v: Vec<i32>| {
            Column::new("session_date".into(), v)
                .cast(&DataType::Date)
                .unwrap()
        };
        let df = DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    S.into(),
                    rows.iter().map(|r| format!("s{}", r.0)).collect::<Vec<_>>(),
                ),
                Column::new(
                    C.into(),
                    rows.iter().map(|r| format!("C{}", r.1)).collect::<Vec<_>>(),
                ),
                day(rows.iter().map(|r| 20_000 + r.2).collect()),
                day(rows.iter().map(|r| 20_000 + r.2).collect()).with_name("recorded_at".into()),
                Column::new(
                    "status".into(),
                    rows.iter()
                        .map(|r| STATUS[usize::from(r.3) % 4])
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "minutes_attended".into(),
                    rows.iter().map(|r| i64::from(r.3) * 10).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap();
        sessions(&df).unwrap()
    }

    /// Sessions over 60 days and the day the increment starts at.
    fn split() -> impl Strategy<Value = (Vec<(u8, u8, i32, u8)>, i32)> {
        (
            proptest::collection::vec((0u8..4, 0u8..3, 0i32..60, 0u8..4), 0..80),
            0i32..60,
        )
            .prop_map(|(mut v, cut)| {
                let mut seen = std::collections::HashSet::new();
                v.retain(|r| seen.insert((r.0, r.1, r.2)));
                (v, cut)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn an_increment_gives_the_state_and_product_of_a_rebuild((rows, cut) in split()) {
            let cfg = settings();
            let all = frame(&rows);
            let before: Vec<_> = rows.iter().copied().filter(|r| r.2 < cut).collect();
            let after: Vec<_> = rows.iter().copied().filter(|r| r.2 >= cut).collect();
            let (old, new) = (frame(&before), frame(&after));
            let advanced = advance(&totals_of(&old).unwrap(), &recent_of(&old).unwrap(), &new).unwrap();
            let Some(adv) = advanced else {
                // Refused only when a course's first new week began before the recent
                // sessions kept (every new session is after the old ones here).
                return Ok(());
            };
            let (totals, recent) = (totals_of(&all).unwrap(), recent_of(&all).unwrap());
            let touched: Vec<String> = after.iter().map(|r| format!("C{}", r.1)).collect();
            let only = |df: &DataFrame| {
                df.clone()
                    .lazy()
                    .filter(col(C).is_in(lit(Series::new("t".into(), touched.clone())).implode(false), false))
                    .collect()
                    .unwrap()
            };
            prop_assert!(only(&totals).equals_missing(&adv.totals), "{}\n{}", only(&totals), adv.totals);
            let sorted = |df: &DataFrame| df.sort(RECENT_COLUMNS, SortMultipleOptions::default()).unwrap();
            prop_assert!(sorted(&only(&recent)).equals_missing(&sorted(&adv.recent)), "{}\n{}", only(&recent), adv.recent);
            let a = product_of(&only(&totals), &only(&recent), &cfg).unwrap();
            let b = product_of(&adv.totals, &adv.recent, &cfg).unwrap();
            prop_assert!(a.equals_missing(&b));
            // The weeks from each course's first new week, counted from the kept sessions.
            let weekly = |s: DataFrame| super::super::weekly_attendance_of(s, &cfg).unwrap();
            let whole = weekly(all.clone())
                .lazy()
                .join(
                    adv.from_week.clone().lazy().select([col(C), col("week_start").alias("__from")]),
                    [col(C)],
                    [col(C)],
                    JoinArgs::new(JoinType::Inner),
                )
                .filter(col("week_start").gt_eq(col("__from")))
                .drop(cols(["__from"]))
                // A join need not keep the order: sorted as the product is.
                .sort([C, "week_start"], SortMultipleOptions::default())
                .collect()
                .unwrap();
            let changed = weekly(adv.weeks);
            prop_assert!(whole.equals_missing(&changed), "{whole}\n{changed}");
        }
    }

    #[test]
    fn a_session_before_the_kept_ones_is_not_an_append() {
        let old = frame(&[(1, 1, 10, 0), (1, 1, 12, 1)]);
        let new = frame(&[(1, 1, 11, 0)]);
        let got = advance(&totals_of(&old).unwrap(), &recent_of(&old).unwrap(), &new).unwrap();
        assert!(got.is_none());
        let new = frame(&[(1, 1, 13, 1), (2, 1, 5, 0)]);
        let got = advance(&totals_of(&old).unwrap(), &recent_of(&old).unwrap(), &new).unwrap();
        assert!(got.is_some(), "a new student's first session may be early");
    }
}
