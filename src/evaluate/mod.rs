//! `medallion evaluate at-risk`: how good the at-risk list was, measured on real outcomes.
//!
//! The list is rebuilt as it stood on day N of each module-presentation of the Open University
//! Learning Analytics Dataset (OULAD, CC BY 4.0), from **only data dated on or before day N**,
//! with the same product code (`curated::products`) and settings the pipeline uses, and is
//! scored against the students' `final_result` (positive = Fail or Withdrawn).
//!
//! Invariants:
//! - Nothing dated after day N is read into the model: activity rows are dropped at load, a
//!   submission counts only if `date_submitted <= N`, its score is known from that day on,
//!   and a registration ended after day N is not looked at. The only later fact used is
//!   `final_result`, as the label.
//! - Students whose registration ended on or before day N are not on the list (they are no
//!   longer in the course) and are reported apart; so are students not registered yet.
//! - The mapping is fixed and documented: each day from the student's registration (or day 0)
//!   to day N is one session, `present` when the student clicked in the VLE that day; every
//!   assessment of the presentation is a grade row per student (missing when not submitted),
//!   score out of 100, weight = OULAD weight / 100, graded on day N when its score is known;
//!   the VLE clicks are the `engagement` rows (one per student, day and activity type, the
//!   site's `activity_type` mapped as the OULAD template's `pipelines/engagement.yaml` does).
//! - Output is deterministic: frames are built in (presentation, student, day) order and ties
//!   in the risk score are broken by course and student id.
//!
//! Files: [`oulad`] reads the OULAD folder cut at day N (`lake` reads the same from an OULAD
//! project's trusted tables), [`frames`] turns it into the trusted-shaped frames the product
//! code reads, [`score`] rebuilds and scores the list, [`weights`] fits the indicator weights
//! and [`render`] writes both as text; this file holds the data they share.

mod frames;
mod lake;
mod oulad;
mod render;
mod score;
mod weights;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

pub use render::{fit_text, text};
pub use score::{at_risk, auc, EvalRow, Evaluation, ListScore, RuleScore};
pub use weights::{fit, Fit, HIGH_SHARE, MEDIUM_SHARE};

/// Errors of `evaluate`.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A required OULAD file is missing.
    #[error("{dir}: no `{file}` here or in its csv/ folder (expected the OULAD layout, see ../shared/data/oulad/SOURCE.md)")]
    Missing {
        /// The folder searched.
        dir: PathBuf,
        /// The file name.
        file: &'static str,
    },
    /// Building the list failed.
    #[error("building the list: {0}")]
    Build(#[from] crate::stage::StepError),
    /// polars refused an operation.
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    /// Nothing to score.
    #[error("no students to score as of day {0} (check --presentation and the data folder)")]
    Empty(i64),
}

/// Result alias.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// One module-presentation.
#[derive(Debug, Clone)]
struct Presentation {
    module: String,
    presentation: String,
    length: i64,
    /// Course id (`AAA-2013J`).
    course: String,
    /// Day 0.
    start: NaiveDate,
}

impl Presentation {
    /// From OULAD's codes, with an assumed calendar anchor (B: 1 February, J: 1 October; only
    /// differences matter).
    fn oulad(module: &str, presentation: &str, length: i64) -> Self {
        let year: i32 = presentation
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(2013);
        let month = if presentation.ends_with('B') { 2 } else { 10 };
        Self {
            module: module.to_string(),
            presentation: presentation.to_string(),
            length,
            course: format!("{module}-{presentation}"),
            start: NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default(),
        }
    }
    fn course_id(&self) -> String {
        self.course.clone()
    }
    fn start(&self) -> NaiveDate {
        self.start
    }
}

#[derive(Debug, Clone)]
struct Assessment {
    course: String,
    kind: &'static str,
    due: i64,
    weight: f64,
}

/// What evaluate reads of OULAD, already cut at day N.
#[derive(Debug, Default)]
pub struct Oulad {
    presentations: Vec<Presentation>,
    /// (course, id_student) -> final_result.
    results: BTreeMap<(String, String), String>,
    /// (course, id_student) -> (registration day, unregistration day).
    registrations: HashMap<(String, String), (Option<i64>, Option<i64>)>,
    /// id_assessment -> assessment, in id order.
    assessments: BTreeMap<String, Assessment>,
    /// (id_assessment, id_student) -> (date_submitted, score); only submissions on or before N.
    submissions: HashMap<(String, String), (i64, Option<f64>)>,
    /// (course, id_student) -> active days (0..=N), sorted and distinct.
    activity: HashMap<(String, String), Vec<i64>>,
    /// (course, id_student) -> clicks per (day, engagement activity type), days <= N. A
    /// repeated activity row (same student, site and day) counts once, the later row's clicks,
    /// as trusted keeps it.
    clicks: HashMap<(String, String), DayClicks>,
    /// Activity files read.
    activity_files: usize,
}

/// (day, engagement activity type) -> clicks of one student in one course.
type DayClicks = BTreeMap<(i64, &'static str), i64>;

/// (course, student) -> (site, day) -> clicks, while the activity files are read.
type SiteClicks = HashMap<(String, String), HashMap<(i64, i64), i64>>;

/// A student on the list on day N.
#[derive(Debug, Clone)]
struct Member {
    course: String,
    student: String,
    first_day: i64,
    positive: bool,
}

/// Who is on the list on day N, and who is reported apart.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Apart {
    /// Registration ended on or before day N (no longer in the course).
    pub withdrawn_by_day: u64,
    /// Registered after day N.
    pub not_registered_yet: u64,
}

/// The list's inputs on day N: the students on it, and the attendance and performance products
/// as the pipeline builds them.
struct Built {
    list: Vec<Member>,
    apart: BTreeMap<String, Apart>,
    attendance: DataFrame,
    performance: DataFrame,
    engagement: Option<DataFrame>,
}
