//! The product computations, as polars expressions over trusted frames. Definitions follow
//! DESIGN.md "Metric definitions"; every rate is in 0..1 and null when its denominator is 0.
//!
//! Files: one per product or group of products ([`attendance`], [`engagement`],
//! [`performance`], [`at_risk`] with its [`indicators`], [`summary`]), [`columns`] for the
//! catalog comments of every product's columns; this file holds the shared expressions,
//! [`build`], [`publish`] and the rules every product must pass ([`check`]).

mod at_risk;
mod attendance;
pub mod attendance_state;
mod columns;
mod engagement;
mod indicators;
mod performance;
mod summary;
#[cfg(test)]
mod test_support;

use polars::prelude::*;

use super::CuratedConfig;
use crate::stage::{Result, StepError};
use crate::vocab::Stage;

pub use at_risk::{at_risk_severities, at_risk_students};
pub(crate) use attendance::weekly_attendance_of;
pub use attendance::{attendance_weekly, sessions, student_course_attendance, SESSION_ORDER};
pub use columns::{
    column_comments, ATTENDANCE_WEEKLY_COLUMNS, AT_RISK_STUDENTS_COLUMNS, COURSE_SUMMARY_COLUMNS,
    ENGAGEMENT_WEEKLY_COLUMNS, STUDENT_COURSE_ATTENDANCE_COLUMNS,
    STUDENT_COURSE_ENGAGEMENT_COLUMNS, STUDENT_COURSE_PERFORMANCE_COLUMNS,
};
pub use engagement::{engagement_weekly, student_course_engagement};
pub use indicators::INDICATORS;
pub use performance::student_course_performance;
pub use summary::course_summary;

const S: &str = "student_id";
const C: &str = "course_id";

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

/// Whether `df`'s rows are in ascending order of `keys` (compared as a tuple with the previous
/// row; a null key never counts as in order): one pass, far cheaper than sorting again.
fn in_order(df: &DataFrame, keys: &[&str]) -> Result<bool> {
    let n = df.height();
    let Some((last, rest)) = keys.split_last() else {
        return Ok(true);
    };
    if n < 2 {
        return Ok(true);
    }
    let prev = |k: &str| col(k).shift(lit(1));
    let mut ok = col(*last).gt_eq(prev(last));
    for k in rest.iter().rev() {
        ok = col(*k).gt(prev(k)).or(col(*k).eq(prev(k)).and(ok));
    }
    let ok = ok
        .slice(lit(1), lit(n as u64 - 1))
        .fill_null(lit(false))
        .all(true)
        .alias("ok");
    let out = df.clone().lazy().select([ok]).collect()?;
    Ok(out.column("ok")?.bool()?.get(0) == Some(true))
}

fn missing_input(product: &str, input: &str) -> StepError {
    StepError::Polars(PolarsError::ComputeError(
        format!("{product} needs trusted.{input}").into(),
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

/// Computes one product from the inputs (see [`Builder`] to build several from the same).
///
/// # Errors
/// A missing input table, a bad template in the products file, polars errors.
pub fn build(product: &str, inp: &Inputs, cfg: &CuratedConfig) -> Result<DataFrame> {
    Builder::new(inp, cfg).build(product)
}

/// The products of one set of inputs, each computed at most once: `at_risk_students` reads the
/// per-student products and `course_summary` reads `at_risk_students`, so building every
/// product of a group through one builder computes each of those once, not once per product
/// that reads it. Every product comes out published ([`publish`]).
pub struct Builder<'a> {
    inp: &'a Inputs,
    cfg: &'a CuratedConfig,
    /// trusted.attendance's sessions (newest correction), read by both attendance products.
    sessions: Option<Option<DataFrame>>,
    /// The attendance totals and recent sessions `student_course_attendance` is made of.
    state: Option<Option<(DataFrame, DataFrame)>>,
    /// Computed products (an outer `None`: not yet; inner `None`: its input table is missing).
    attendance: Option<Option<DataFrame>>,
    performance: Option<Option<DataFrame>>,
    engagement: Option<Option<DataFrame>>,
    at_risk: Option<DataFrame>,
}

impl<'a> Builder<'a> {
    /// A builder over `inp`, nothing computed yet.
    pub fn new(inp: &'a Inputs, cfg: &'a CuratedConfig) -> Self {
        Self {
            inp,
            cfg,
            sessions: None,
            state: None,
            attendance: None,
            performance: None,
            engagement: None,
            at_risk: None,
        }
    }

    fn sessions(&mut self) -> Result<Option<DataFrame>> {
        let att = self.inp.attendance.as_ref();
        cached(&mut self.sessions, || att.map(sessions).transpose())
    }

    /// The attendance state of the inputs (totals, recent sessions; see [`attendance_state`]),
    /// `None` without an attendance table.
    ///
    /// # Errors
    /// polars errors.
    pub fn attendance_state(&mut self) -> Result<Option<(DataFrame, DataFrame)>> {
        if self.state.is_none() {
            let s = self.sessions()?;
            self.state = Some(
                s.map(|s| -> Result<_> {
                    Ok((
                        attendance_state::totals_of(&s)?,
                        attendance_state::recent_of(&s)?,
                    ))
                })
                .transpose()?,
            );
        }
        Ok(self.state.clone().flatten())
    }

    fn attendance(&mut self) -> Result<Option<DataFrame>> {
        if self.attendance.is_none() {
            let cfg = self.cfg;
            let state = self.attendance_state()?;
            self.attendance = Some(
                state
                    .map(|(t, r)| attendance_state::product_of(&t, &r, cfg).and_then(publish))
                    .transpose()?,
            );
        }
        Ok(self.attendance.clone().flatten())
    }

    fn performance(&mut self) -> Result<Option<DataFrame>> {
        let grades = self.inp.grades.as_ref();
        cached(&mut self.performance, || {
            grades
                .map(|g| student_course_performance(g).and_then(publish))
                .transpose()
        })
    }

    fn engagement(&mut self) -> Result<Option<DataFrame>> {
        let eng = self.inp.engagement.as_ref();
        cached(&mut self.engagement, || {
            eng.map(|e| student_course_engagement(e).and_then(publish))
                .transpose()
        })
    }

    fn at_risk(&mut self) -> Result<DataFrame> {
        if let Some(df) = &self.at_risk {
            return Ok(df.clone());
        }
        let (a, p, e) = (self.attendance()?, self.performance()?, self.engagement()?);
        let df = at_risk_students(a, p, e, self.cfg).and_then(publish)?;
        self.at_risk = Some(df.clone());
        Ok(df)
    }

    /// Computes `product` (or hands out the one already computed).
    ///
    /// # Errors
    /// A missing input table, a bad template in the products file, polars errors.
    pub fn build(&mut self, product: &str) -> Result<DataFrame> {
        let (inp, cfg) = (self.inp, self.cfg);
        let need =
            |df: Option<DataFrame>, input: &str| df.ok_or_else(|| missing_input(product, input));
        let need_in = |df: Option<&'a DataFrame>, input: &str| {
            df.ok_or_else(|| missing_input(product, input))
        };
        match product {
            "student_course_attendance" => need(self.attendance()?, "attendance"),
            "attendance_weekly" => {
                let s = need(self.sessions()?, "attendance")?;
                attendance::weekly_attendance_of(s, cfg).and_then(publish)
            }
            "student_course_performance" => need(self.performance()?, "grades"),
            "student_course_engagement" => need(self.engagement()?, "engagement"),
            "engagement_weekly" => {
                engagement_weekly(need_in(inp.engagement.as_ref(), "engagement")?, cfg)
                    .and_then(publish)
            }
            "at_risk_students" => self.at_risk(),
            "course_summary" => {
                let risk = self.at_risk()?;
                course_summary(&risk, inp.students.as_ref(), cfg).and_then(publish)
            }
            other => Err(StepError::Polars(PolarsError::ComputeError(
                format!("unknown curated product `{other}`").into(),
            ))),
        }
    }
}

/// What `slot` holds, computed by `make` the first time (an inner `None`: no input table).
fn cached(
    slot: &mut Option<Option<DataFrame>>,
    make: impl FnOnce() -> Result<Option<DataFrame>>,
) -> Result<Option<DataFrame>> {
    if slot.is_none() {
        *slot = Some(make()?);
    }
    Ok(slot.clone().flatten())
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
