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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveTime};
use polars::prelude::*;
use serde::Serialize;

use crate::curated::products::{self, INDICATORS};
use crate::curated::CuratedConfig;

mod lake;

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

fn find(dir: &Path, file: &'static str) -> Option<PathBuf> {
    [dir.join(file), dir.join("csv").join(file)]
        .into_iter()
        .find(|p| p.is_file())
}

fn read_csv(dir: &Path, file: &'static str) -> Result<Vec<HashMap<String, String>>> {
    let path = find(dir, file).ok_or_else(|| EvalError::Missing {
        dir: dir.to_path_buf(),
        file,
    })?;
    read_csv_path(&path)
}

fn read_csv_path(path: &Path) -> Result<Vec<HashMap<String, String>>> {
    let err = |e: csv::Error| EvalError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    let header: Vec<String> = r.headers().map_err(err)?.iter().map(String::from).collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(err)?;
        out.push(
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect(),
        );
    }
    Ok(out)
}

/// `?` and empty mean missing; ids and days may be written as floats (`11391.0`).
fn day(v: Option<&String>) -> Option<i64> {
    let v = v?.trim();
    if v.is_empty() || v == "?" {
        return None;
    }
    v.parse::<f64>().ok().map(|f| f as i64)
}

fn get<'a>(r: &'a HashMap<String, String>, k: &str) -> &'a str {
    r.get(k).map(String::as_str).unwrap_or_default()
}

impl Oulad {
    /// Reads the OULAD folder `dir` (files in it or in its `csv/` folder; activity from
    /// `studentVle*.csv` files and `parquet/studentVle/code_module=*/code_presentation=*/*.parquet`),
    /// keeping only what is dated on or before `as_of_day`.
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub async fn load(dir: &Path, as_of_day: i64, only: &[String]) -> Result<Self> {
        let mut o = Oulad::default();
        let keep = |p: &str| only.is_empty() || only.iter().any(|x| x == p);
        for r in read_csv(dir, "courses.csv")? {
            let p = Presentation::oulad(
                get(&r, "code_module"),
                get(&r, "code_presentation"),
                day(r.get("module_presentation_length")).unwrap_or(0),
            );
            if keep(&p.presentation) || keep(&p.course_id()) {
                o.presentations.push(p);
            }
        }
        let courses: HashMap<(String, String), Presentation> = o
            .presentations
            .iter()
            .map(|p| ((p.module.clone(), p.presentation.clone()), p.clone()))
            .collect();
        let course_of = |r: &HashMap<String, String>| {
            courses
                .get(&(
                    get(r, "code_module").to_string(),
                    get(r, "code_presentation").to_string(),
                ))
                .map(Presentation::course_id)
        };
        for r in read_csv(dir, "studentInfo.csv")? {
            if let Some(c) = course_of(&r) {
                let s = id(get(&r, "id_student"));
                o.results
                    .insert((c, s), get(&r, "final_result").to_string());
            }
        }
        if find(dir, "studentRegistration.csv").is_some() {
            for r in read_csv(dir, "studentRegistration.csv")? {
                if let Some(c) = course_of(&r) {
                    let s = id(get(&r, "id_student"));
                    let reg = day(r.get("date_registration"));
                    // A registration ended after day N is not known on day N.
                    let unreg = day(r.get("date_unregistration")).filter(|d| *d <= as_of_day);
                    o.registrations.insert((c, s), (reg, unreg));
                }
            }
        }
        for r in read_csv(dir, "assessments.csv")? {
            let Some(c) = course_of(&r) else { continue };
            let length = courses
                .get(&(
                    get(&r, "code_module").to_string(),
                    get(&r, "code_presentation").to_string(),
                ))
                .map_or(0, |p| p.length);
            let kind = match get(&r, "assessment_type") {
                "TMA" => "assignment",
                "CMA" => "quiz",
                _ => "exam",
            };
            o.assessments.insert(
                id(get(&r, "id_assessment")),
                Assessment {
                    course: c,
                    kind,
                    // A missing date is the final exam's: the end of the presentation.
                    due: day(r.get("date")).unwrap_or(length),
                    weight: get(&r, "weight").parse::<f64>().unwrap_or(0.0) / 100.0,
                },
            );
        }
        for r in read_csv(dir, "studentAssessment.csv")? {
            let a = id(get(&r, "id_assessment"));
            if !o.assessments.contains_key(&a) {
                continue;
            }
            let Some(sub) = day(r.get("date_submitted")) else {
                continue;
            };
            if sub > as_of_day {
                continue;
            }
            let score = get(&r, "score").trim().parse::<f64>().ok();
            o.submissions
                .insert((a, id(get(&r, "id_student"))), (sub, score));
        }
        o.load_activity(dir, as_of_day).await?;
        for days in o.activity.values_mut() {
            days.sort_unstable();
            days.dedup();
        }
        Ok(o)
    }

    async fn load_activity(&mut self, dir: &Path, as_of_day: i64) -> Result<()> {
        // id_site -> engagement activity type (vle.csv; without it every site is `other`).
        let mut types: HashMap<i64, &'static str> = HashMap::new();
        if find(dir, "vle.csv").is_some() {
            for r in read_csv(dir, "vle.csv")? {
                if let Some(site) = day(r.get("id_site")) {
                    types.insert(site, engagement_type(get(&r, "activity_type")));
                }
            }
        }
        // (course, student) -> (site, day) -> clicks: a repeated row overwrites, the later wins.
        let mut sites: SiteClicks = HashMap::new();
        let mut from_parquet = std::collections::BTreeSet::new();
        let root = dir.join("parquet").join("studentVle");
        for p in self.presentations.clone() {
            let part = root
                .join(format!("code_module={}", p.module))
                .join(format!("code_presentation={}", p.presentation));
            let Ok(entries) = std::fs::read_dir(&part) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            files.sort();
            for f in files {
                self.read_parquet(&f, &p.course_id(), as_of_day, &mut sites)
                    .await?;
                from_parquet.insert(p.course_id());
            }
        }
        let mut csvs = Vec::new();
        for d in [dir.to_path_buf(), dir.join("csv")] {
            if let Ok(entries) = std::fs::read_dir(&d) {
                csvs.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| {
                            f.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("studentVle") && n.ends_with(".csv"))
                        }),
                );
            }
        }
        csvs.sort();
        let courses: HashMap<(String, String), String> = self
            .presentations
            .iter()
            .map(|p| ((p.module.clone(), p.presentation.clone()), p.course_id()))
            .collect();
        for f in csvs {
            self.activity_files += 1;
            for r in read_csv_path(&f)? {
                let key = (
                    get(&r, "code_module").to_string(),
                    get(&r, "code_presentation").to_string(),
                );
                let Some(c) = courses.get(&key) else { continue };
                if from_parquet.contains(c) {
                    continue;
                }
                if let Some(d) = day(r.get("date")).filter(|d| *d <= as_of_day) {
                    let key = (c.clone(), id(get(&r, "id_student")));
                    let site = day(r.get("id_site")).unwrap_or_default();
                    let n = day(r.get("sum_click")).unwrap_or_default();
                    sites.entry(key.clone()).or_default().insert((site, d), n);
                    self.activity.entry(key).or_default().push(d);
                }
            }
        }
        for (key, rows) in sites {
            let per_day = self.clicks.entry(key).or_default();
            for ((site, d), n) in rows {
                let t = types.get(&site).copied().unwrap_or("other");
                *per_day.entry((d, t)).or_default() += n;
            }
        }
        Ok(())
    }

    async fn read_parquet(
        &mut self,
        path: &Path,
        course: &str,
        as_of_day: i64,
        sites: &mut SiteClicks,
    ) -> Result<()> {
        use deltalake::arrow::array::{Array, AsArray};
        use deltalake::arrow::compute::cast;
        use deltalake::arrow::datatypes::{DataType as ArrowType, Float64Type};
        use deltalake::datafusion::prelude::{ParquetReadOptions, SessionContext};
        let err = |m: String| EvalError::Read {
            path: path.to_path_buf(),
            message: m,
        };
        let ctx = SessionContext::new();
        let df = ctx
            .read_parquet(
                path.to_string_lossy().to_string(),
                ParquetReadOptions::default(),
            )
            .await
            .map_err(|e| err(e.to_string()))?;
        let batches = df.collect().await.map_err(|e| err(e.to_string()))?;
        self.activity_files += 1;
        for b in batches {
            let column = |name: &str| -> Result<_> {
                let c = b
                    .column_by_name(name)
                    .ok_or_else(|| err(format!("no column `{name}`")))?;
                cast(c, &ArrowType::Float64).map_err(|e| err(e.to_string()))
            };
            let (s, d) = (column("id_student")?, column("date")?);
            let (site, n) = (column("id_site")?, column("sum_click")?);
            let (s, d, site, n) = (
                s.as_primitive::<Float64Type>(),
                d.as_primitive::<Float64Type>(),
                site.as_primitive::<Float64Type>(),
                n.as_primitive::<Float64Type>(),
            );
            for i in 0..b.num_rows() {
                if s.is_null(i) || d.is_null(i) {
                    continue;
                }
                let day = d.value(i) as i64;
                if day <= as_of_day {
                    let key = (course.to_string(), format!("{}", s.value(i) as i64));
                    let clicks = if n.is_null(i) { 0 } else { n.value(i) as i64 };
                    let site = if site.is_null(i) {
                        0
                    } else {
                        site.value(i) as i64
                    };
                    sites
                        .entry(key.clone())
                        .or_default()
                        .insert((site, day), clicks);
                    self.activity.entry(key).or_default().push(day);
                }
            }
        }
        Ok(())
    }
}

/// (day, engagement activity type) -> clicks of one student in one course.
type DayClicks = BTreeMap<(i64, &'static str), i64>;

/// (course, student) -> (site, day) -> clicks, while the activity files are read.
type SiteClicks = HashMap<(String, String), HashMap<(i64, i64), i64>>;

/// The engagement activity type of an OULAD VLE `activity_type`, as the OULAD template's
/// `pipelines/engagement.yaml` maps it (the lake path reads the mapped type from trusted).
fn engagement_type(t: &str) -> &'static str {
    match t {
        "homepage" | "login" => "login",
        "forumng" | "ouelluminate" | "ouwiki" | "forum" => "forum",
        "quiz" | "externalquiz" | "questionnaire" => "quiz",
        "resource" | "oucontent" | "url" | "subpage" | "page" | "glossary" => "resource",
        "oucollaborate" | "video" => "video",
        _ => "other",
    }
}

/// Ids are numeric; written `11391` or `11391.0`.
fn id(v: &str) -> String {
    let v = v.trim();
    match v.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

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

fn members(o: &Oulad, n: i64) -> (Vec<Member>, BTreeMap<String, Apart>) {
    let mut out = Vec::new();
    let mut apart: BTreeMap<String, Apart> = BTreeMap::new();
    for ((c, s), result) in &o.results {
        let (reg, unreg) = o
            .registrations
            .get(&(c.clone(), s.clone()))
            .copied()
            .unwrap_or_default();
        let a = apart.entry(c.clone()).or_default();
        if unreg.is_some() {
            a.withdrawn_by_day += 1;
            continue;
        }
        if reg.is_some_and(|r| r > n) {
            a.not_registered_yet += 1;
            continue;
        }
        out.push(Member {
            course: c.clone(),
            student: s.clone(),
            first_day: reg.unwrap_or(0).max(0),
            positive: result == "Fail" || result == "Withdrawn",
        });
    }
    (out, apart)
}

fn at(start: NaiveDate, day: i64) -> i64 {
    (start + Duration::days(day))
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default())
        .and_utc()
        .timestamp_micros()
}

fn ts_series(name: &str, v: Vec<Option<i64>>) -> Result<Column> {
    Ok(Series::new(name.into(), v)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))?
        .into_column())
}

/// The trusted-shaped attendance and grades frames of the list's students.
fn frames(o: &Oulad, list: &[Member], n: i64) -> Result<(DataFrame, DataFrame)> {
    let starts: HashMap<String, NaiveDate> = o
        .presentations
        .iter()
        .map(|p| (p.course_id(), p.start()))
        .collect();
    let (mut s, mut c, mut date, mut status, mut rec) = (vec![], vec![], vec![], vec![], vec![]);
    for m in list {
        let start = starts[&m.course];
        let days = o
            .activity
            .get(&(m.course.clone(), m.student.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for d in m.first_day..=n {
            s.push(m.student.clone());
            c.push(m.course.clone());
            date.push((start + Duration::days(d) - NaiveDate::default()).num_days() as i32);
            status.push(if days.binary_search(&d).is_ok() {
                "present"
            } else {
                "absent"
            });
            rec.push(Some(at(start, d)));
        }
    }
    let epoch = (NaiveDate::default() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
        .num_days() as i32;
    let rows = s.len();
    let attendance = DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Series::new(
                "session_date".into(),
                date.into_iter().map(|d| d + epoch).collect::<Vec<i32>>(),
            )
            .cast(&DataType::Date)?
            .into_column(),
            Column::new("status".into(), status),
            Column::new("minutes_attended".into(), vec![0i64; rows]),
            ts_series("recorded_at", rec)?,
        ],
    )?;
    let mut by_course: BTreeMap<&str, Vec<(&String, &Assessment)>> = BTreeMap::new();
    for (aid, a) in &o.assessments {
        by_course
            .entry(a.course.as_str())
            .or_default()
            .push((aid, a));
    }
    let (mut s, mut c, mut kind, mut due, mut sub, mut graded, mut score, mut weight) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for m in list {
        let start = starts[&m.course];
        for (aid, a) in by_course.get(m.course.as_str()).into_iter().flatten() {
            let got = o.submissions.get(&((*aid).clone(), m.student.clone()));
            s.push(m.student.clone());
            c.push(m.course.clone());
            kind.push(a.kind);
            due.push(Some(at(start, a.due)));
            sub.push(got.map(|(d, _)| at(start, *d)));
            let sc = got.and_then(|(_, sc)| *sc);
            graded.push(sc.map(|_| at(start, n)));
            score.push(sc);
            weight.push(a.weight);
        }
    }
    let rows = s.len();
    let grades = DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Column::new("assessment_type".into(), kind),
            ts_series("due_at", due)?,
            ts_series("submitted_at", sub)?,
            ts_series("graded_at", graded)?,
            Column::new("score".into(), score),
            Column::new("max_score".into(), vec![100.0f64; rows]),
            Column::new("weight".into(), weight),
        ],
    )?;
    Ok((attendance, grades))
}

/// The trusted-shaped engagement rows of the list's students (one per student, course, day and
/// activity type; OULAD has no time on task), or `None` when no activity was read.
fn engagement_frame(o: &Oulad, list: &[Member]) -> Result<Option<DataFrame>> {
    if o.clicks.is_empty() {
        return Ok(None);
    }
    let starts: HashMap<String, NaiveDate> = o
        .presentations
        .iter()
        .map(|p| (p.course_id(), p.start()))
        .collect();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let (mut s, mut c, mut date, mut kind, mut clicks) = (vec![], vec![], vec![], vec![], vec![]);
    for m in list {
        let start = starts[&m.course];
        let key = (m.course.clone(), m.student.clone());
        for ((d, t), n) in o.clicks.get(&key).into_iter().flatten() {
            s.push(m.student.clone());
            c.push(m.course.clone());
            date.push((start + Duration::days(*d) - epoch).num_days() as i32);
            kind.push(*t);
            clicks.push(*n);
        }
    }
    let rows = s.len();
    Ok(Some(DataFrame::new(
        rows,
        vec![
            Column::new("student_id".into(), s),
            Column::new("course_id".into(), c),
            Series::new("activity_date".into(), date)
                .cast(&DataType::Date)?
                .into_column(),
            Column::new("activity_type".into(), kind),
            Column::new("clicks".into(), clicks),
            Series::new("minutes".into(), vec![None::<i64>; rows]).into_column(),
        ],
    )?))
}

/// Precision, recall and share of one list.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ListScore {
    /// Students on the list.
    pub flagged: u64,
    /// flagged / students.
    pub share: f64,
    /// Positives among the flagged.
    pub precision: Option<f64>,
    /// Flagged positives / positives.
    pub recall: Option<f64>,
}

/// A one-line rule beside the model at the rule's list length.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RuleScore {
    /// The rule's own list.
    pub rule: ListScore,
    /// The model's top students by risk score, as many as the rule flags.
    pub model_at_same_length: ListScore,
}

/// One row of the evaluation: a presentation or `overall`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRow {
    /// Course id (`AAA-2013J`) or `overall`.
    pub presentation: String,
    /// Students on the list on day N.
    pub students: u64,
    /// Of them, Fail or Withdrawn at the end.
    pub positives: u64,
    /// Reported apart.
    pub apart: Apart,
    /// ROC-AUC of the risk score (ties count half).
    pub auc: Option<f64>,
    /// The `high` list.
    pub high: ListScore,
    /// The `high` or `medium` list.
    pub high_or_medium: ListScore,
    /// "No activity in the last 14 days".
    pub no_activity_14_days: RuleScore,
    /// "Missed an assessment that was due".
    pub missed_due_assessment: RuleScore,
}

/// What `evaluate at-risk` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Day N.
    pub as_of_day: i64,
    /// Activity files read.
    pub activity_files: usize,
    /// Per presentation, then `overall`.
    pub rows: Vec<EvalRow>,
}

/// One scored student.
#[derive(Debug, Clone)]
struct Scored {
    course: String,
    student: String,
    score: f64,
    level: String,
    positive: bool,
    no_activity: bool,
    missed: bool,
}

/// ROC-AUC with tied scores counting half.
pub fn auc(scores: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * v[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

fn list_score(flags: &[bool], positives: &[bool]) -> ListScore {
    let n = flags.len() as u64;
    let flagged = flags.iter().filter(|f| **f).count() as u64;
    let tp = flags
        .iter()
        .zip(positives)
        .filter(|(f, p)| **f && **p)
        .count() as u64;
    let pos = positives.iter().filter(|p| **p).count() as u64;
    ListScore {
        flagged,
        share: if n > 0 {
            flagged as f64 / n as f64
        } else {
            0.0
        },
        precision: (flagged > 0).then(|| tp as f64 / flagged as f64),
        recall: (pos > 0).then(|| tp as f64 / pos as f64),
    }
}

fn rule_score(group: &[&Scored], rule: impl Fn(&Scored) -> bool) -> RuleScore {
    let positives: Vec<bool> = group.iter().map(|x| x.positive).collect();
    let flags: Vec<bool> = group.iter().map(|x| rule(x)).collect();
    let k = flags.iter().filter(|f| **f).count();
    // The model's top k: highest score first, ties by course and student id.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|&a, &b| {
        group[b]
            .score
            .total_cmp(&group[a].score)
            .then_with(|| group[a].course.cmp(&group[b].course))
            .then_with(|| group[a].student.cmp(&group[b].student))
    });
    let mut top = vec![false; group.len()];
    for &i in order.iter().take(k) {
        top[i] = true;
    }
    RuleScore {
        rule: list_score(&flags, &positives),
        model_at_same_length: list_score(&top, &positives),
    }
}

fn row(name: &str, group: &[&Scored], apart: Apart) -> EvalRow {
    let positives: Vec<bool> = group.iter().map(|x| x.positive).collect();
    let level = |f: &dyn Fn(&str) -> bool| -> Vec<bool> {
        group.iter().map(|x| f(x.level.as_str())).collect()
    };
    EvalRow {
        presentation: name.to_string(),
        students: group.len() as u64,
        positives: positives.iter().filter(|p| **p).count() as u64,
        apart,
        auc: auc(&group
            .iter()
            .map(|x| (x.score, x.positive))
            .collect::<Vec<_>>()),
        high: list_score(&level(&|l| l == "high"), &positives),
        high_or_medium: list_score(&level(&|l| l != "low"), &positives),
        no_activity_14_days: rule_score(group, |x| x.no_activity),
        missed_due_assessment: rule_score(group, |x| x.missed),
    }
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

fn build(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Built> {
    let (list, apart) = members(o, n);
    if list.is_empty() {
        return Err(EvalError::Empty(n));
    }
    let (att, grades) = frames(o, &list, n)?;
    let attendance = products::student_course_attendance(&att, cfg).and_then(products::publish)?;
    let performance = products::student_course_performance(&grades).and_then(products::publish)?;
    let engagement = match engagement_frame(o, &list)? {
        Some(e) => Some(products::student_course_engagement(&e).and_then(products::publish)?),
        None => None,
    };
    Ok(Built {
        list,
        apart,
        attendance,
        performance,
        engagement,
    })
}

/// Rebuilds the at-risk list as of day `n` and scores it.
///
/// # Errors
/// Building the list (polars) or an empty population.
pub fn at_risk(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Evaluation> {
    let b = build(o, n, cfg)?;
    let list =
        products::at_risk_students(Some(b.attendance), Some(b.performance), b.engagement, cfg)
            .and_then(products::publish)?;
    let ids = list.column("student_id")?.str()?.clone();
    let courses = list.column("course_id")?.str()?.clone();
    let scores = list.column("risk_score")?.f64()?.clone();
    let levels = list.column("risk_level")?.str()?.clone();
    let mut by_key: HashMap<(String, String), (f64, String)> = HashMap::new();
    for i in 0..list.height() {
        by_key.insert(
            (
                courses.get(i).unwrap_or_default().to_string(),
                ids.get(i).unwrap_or_default().to_string(),
            ),
            (
                scores.get(i).unwrap_or_default(),
                levels.get(i).unwrap_or("low").to_string(),
            ),
        );
    }
    let mut scored = Vec::with_capacity(b.list.len());
    for m in &b.list {
        let (score, level) = by_key
            .get(&(m.course.clone(), m.student.clone()))
            .cloned()
            .unwrap_or((0.0, "low".to_string()));
        let days = o
            .activity
            .get(&(m.course.clone(), m.student.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let no_activity = !days.iter().any(|d| *d > n - 14 && *d <= n);
        let missed = o.assessments.iter().any(|(aid, a)| {
            a.course == m.course
                && a.due <= n
                && !o
                    .submissions
                    .contains_key(&(aid.clone(), m.student.clone()))
        });
        scored.push(Scored {
            course: m.course.clone(),
            student: m.student.clone(),
            score,
            level,
            positive: m.positive,
            no_activity,
            missed,
        });
    }
    let mut rows = Vec::new();
    let mut total = Apart::default();
    for p in &o.presentations {
        let c = p.course_id();
        let group: Vec<&Scored> = scored.iter().filter(|x| x.course == c).collect();
        let apart = b.apart.get(&c).copied().unwrap_or_default();
        total.withdrawn_by_day += apart.withdrawn_by_day;
        total.not_registered_yet += apart.not_registered_yet;
        if !group.is_empty() {
            rows.push(row(&c, &group, apart));
        }
    }
    rows.push(row("overall", &scored.iter().collect::<Vec<_>>(), total));
    Ok(Evaluation {
        as_of_day: n,
        activity_files: o.activity_files,
        rows,
    })
}

/// Weights fitted by [`fit`].
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// Day N the severities were computed on.
    pub as_of_day: i64,
    /// Presentations fitted on.
    pub presentations: Vec<String>,
    /// Students fitted on.
    pub students: u64,
    /// Logistic intercept (not used by the score).
    pub intercept: f64,
    /// Weight per indicator, rounded to 0.1 (negative ones set to 0).
    pub weights: BTreeMap<String, f64>,
    /// Score cut-offs: the lowest multiple of 0.05 that at most [`MEDIUM_SHARE`] (medium) and
    /// [`HIGH_SHARE`] (high) of the fitted students reach.
    pub medium: f64,
    /// See `medium`.
    pub high: f64,
}

/// Fits the indicator weights by logistic regression (Newton's method, a small ridge) on the
/// severities of the list as of day `n`, and proposes level cut-offs. Fit on earlier
/// presentations only and report on later ones.
///
/// # Errors
/// Building the list (polars) or an empty population.
pub fn fit(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Fit> {
    let b = build(o, n, cfg)?;
    let sev =
        products::at_risk_severities(Some(b.attendance), Some(b.performance), b.engagement, cfg)?;
    let label: HashMap<(String, String), bool> = b
        .list
        .iter()
        .map(|m| ((m.course.clone(), m.student.clone()), m.positive))
        .collect();
    let ids = sev.column("student_id")?.str()?.clone();
    let courses = sev.column("course_id")?.str()?.clone();
    let cols: Vec<Float64Chunked> = INDICATORS
        .iter()
        .map(|c| Ok(sev.column(c)?.f64()?.clone()))
        .collect::<Result<_>>()?;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..sev.height() {
        let key = (
            courses.get(i).unwrap_or_default().to_string(),
            ids.get(i).unwrap_or_default().to_string(),
        );
        let Some(pos) = label.get(&key) else { continue };
        let mut row = vec![1.0];
        row.extend(cols.iter().map(|c| c.get(i).unwrap_or(0.0)));
        x.push(row);
        y.push(if *pos { 1.0 } else { 0.0 });
    }
    let w = logistic(&x, &y, 1.0);
    let weights: BTreeMap<String, f64> = INDICATORS
        .iter()
        .zip(&w[1..])
        .map(|(k, v)| ((*k).to_string(), (v.max(0.0) * 10.0).round() / 10.0))
        .collect();
    let mut scores: Vec<f64> = x
        .iter()
        .map(|r| {
            INDICATORS
                .iter()
                .zip(&r[1..])
                .map(|(k, v)| weights[*k] * v)
                .sum()
        })
        .collect();
    scores.sort_by(f64::total_cmp);
    let q = |share: f64| cut_off(&scores, share);
    Ok(Fit {
        as_of_day: n,
        presentations: o
            .presentations
            .iter()
            .map(Presentation::course_id)
            .collect(),
        students: y.len() as u64,
        intercept: w[0],
        medium: q(MEDIUM_SHARE),
        high: q(HIGH_SHARE),
        weights,
    })
}

/// The share of the fitted students `--fit` cuts `high` at: a list an educator can work
/// through (issue 11: 10-20% of the students).
pub const HIGH_SHARE: f64 = 0.20;
/// The share of the fitted students `--fit` cuts `medium` (or `high`) at.
pub const MEDIUM_SHARE: f64 = 0.40;

/// The lowest multiple of 0.05 that at most `share` of `sorted` (ascending) reach, never below
/// the smallest positive score (0 would put everyone on the list).
fn cut_off(sorted: &[f64], share: f64) -> f64 {
    let Some(max) = sorted.last() else {
        return 0.0;
    };
    let step = 0.05;
    let reach = |c: f64| {
        let below = sorted.partition_point(|s| *s < c - 1e-9);
        (sorted.len() - below) as f64 / sorted.len() as f64
    };
    let last = (*max / step).floor() as i64 + 1;
    let k = (1..=last)
        .find(|k| reach(*k as f64 * step) <= share)
        .unwrap_or(last);
    k as f64 * 5.0 / 100.0
}

/// Logistic regression by Newton's method with a ridge `l2` on the non-intercept weights.
#[allow(clippy::needless_range_loop)] // matrix code: indices read clearer
fn logistic(x: &[Vec<f64>], y: &[f64], l2: f64) -> Vec<f64> {
    let k = x.first().map_or(0, Vec::len);
    let mut w = vec![0.0; k];
    for _ in 0..30 {
        let mut g = vec![0.0; k];
        let mut h = vec![vec![0.0; k]; k];
        for (xi, yi) in x.iter().zip(y) {
            let z: f64 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            for a in 0..k {
                g[a] += (p - yi) * xi[a];
                for b in 0..k {
                    h[a][b] += p * (1.0 - p) * xi[a] * xi[b];
                }
            }
        }
        for a in 1..k {
            g[a] += l2 * w[a];
            h[a][a] += l2;
        }
        // An indicator that never varies leaves a zero row: keep the system solvable.
        for (a, row) in h.iter_mut().enumerate() {
            row[a] += 1e-9;
        }
        let step = solve(h, g);
        for a in 0..k {
            w[a] -= step[a];
        }
    }
    w
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)] // two rows of one matrix: indices read clearer
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for i in 0..n {
        let p = (i..n)
            .max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))
            .unwrap_or(i);
        a.swap(i, p);
        b.swap(i, p);
        let d = a[i][i];
        if d.abs() < 1e-300 {
            continue;
        }
        for r in i + 1..n {
            let f = a[r][i] / d;
            for c in i..n {
                a[r][c] -= f * a[i][c];
            }
            b[r] -= f * b[i];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|c| a[i][c] * x[c]).sum();
        x[i] = if a[i][i].abs() < 1e-300 {
            0.0
        } else {
            (b[i] - s) / a[i][i]
        };
    }
    x
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{:.2}", x))
}

/// The evaluation as a text table.
pub fn text(e: &Evaluation) -> String {
    let mut out = format!(
        "At-risk list as of day {} (only data dated on or before day {}), against final_result (Fail or Withdrawn = positive)\n\n",
        e.as_of_day, e.as_of_day
    );
    out.push_str(&format!(
        "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>21} | {:>21} | {:>26} | {:>26}\n",
        "",
        "",
        "",
        "apart",
        "",
        "high",
        "high or medium",
        "no activity 14 days",
        "missed a due assessment"
    ));
    out.push_str(&format!(
        "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>9} | {:>5} {:>5} {:>4} {:>9}\n",
        "presentation", "students", "pos", "wdrawn", "auc",
        "share", "prec", "rec", "", "share", "prec", "rec", "",
        "share", "prec", "rec", "model prec", "share", "prec", "rec", "model prec"
    ));
    for r in &e.rows {
        out.push_str(&format!(
            "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>9} | {:>5} {:>5} {:>4} {:>9}\n",
            r.presentation,
            r.students,
            r.positives,
            r.apart.withdrawn_by_day,
            pct(r.auc),
            pct(Some(r.high.share)),
            pct(r.high.precision),
            pct(r.high.recall),
            "",
            pct(Some(r.high_or_medium.share)),
            pct(r.high_or_medium.precision),
            pct(r.high_or_medium.recall),
            "",
            pct(Some(r.no_activity_14_days.rule.share)),
            pct(r.no_activity_14_days.rule.precision),
            pct(r.no_activity_14_days.rule.recall),
            pct(r.no_activity_14_days.model_at_same_length.precision),
            pct(Some(r.missed_due_assessment.rule.share)),
            pct(r.missed_due_assessment.rule.precision),
            pct(r.missed_due_assessment.rule.recall),
            pct(r.missed_due_assessment.model_at_same_length.precision),
        ));
    }
    out.push_str("\nwdrawn: registration ended on or before the day, so not on the list (reported apart). model prec: precision of the model's top students by risk score at the rule's list length.\n");
    out
}

/// The fitted weights as a YAML snippet for `pipelines/curated/products.yaml`.
pub fn fit_text(f: &Fit) -> String {
    let mut out = format!(
        "# fitted as of day {} on {} students of {}\n# (logistic regression on the indicators' severities; intercept {:.2}, not used)\nlevels:\n  medium: {}\n  high: {}\nweights:\n",
        f.as_of_day,
        f.students,
        f.presentations.join(", "),
        f.intercept,
        f.medium,
        f.high
    );
    for (k, v) in &f.weights {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[(1.0, false), (2.0, true)]), Some(1.0));
        assert_eq!(auc(&[(1.0, true), (2.0, false)]), Some(0.0));
        assert_eq!(auc(&[(1.0, true), (1.0, false)]), Some(0.5));
        // 2 positives, 2 negatives: pairs (p,n) won 3 of 4.
        assert_eq!(
            auc(&[(0.1, false), (0.4, true), (0.35, false), (0.8, true)]),
            Some(1.0)
        );
        assert_eq!(
            auc(&[(0.1, false), (0.4, true), (0.5, false), (0.8, true)]),
            Some(0.75)
        );
        assert_eq!(auc(&[(1.0, true)]), None);
    }

    /// An OULAD folder with one presentation, two students and the given VLE rows
    /// (id_student, id_site, date, sum_click).
    fn folder(vle: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        w(
            "courses.csv",
            "code_module,code_presentation,module_presentation_length\nAAA,2013J,268\n".into(),
        );
        w(
            "assessments.csv",
            "code_module,code_presentation,id_assessment,assessment_type,date,weight\n".into(),
        );
        w(
            "studentAssessment.csv",
            "id_assessment,id_student,date_submitted,is_banked,score\n".into(),
        );
        w("studentInfo.csv", "code_module,code_presentation,id_student,final_result\nAAA,2013J,1,Pass\nAAA,2013J,2,Fail\n".into());
        w("vle.csv", "id_site,code_module,code_presentation,activity_type,week_from,week_to\n10,AAA,2013J,quiz,?,?\n11,AAA,2013J,oucontent,?,?\n".into());
        let mut text =
            "code_module,code_presentation,id_student,id_site,date,sum_click\n".to_string();
        for (s, site, d, n) in vle {
            text.push_str(&format!("AAA,2013J,{s},{site},{d},{n}\n"));
        }
        w("studentVle_AAA_2013J.csv", text);
        dir
    }

    // polars blocks inside a runtime only on the multi-threaded one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn clicks_are_read_by_day_and_type_a_repeated_row_once() {
        // Student 1: a repeated row (site 10, day 3) counts once, the later row's clicks, as
        // trusted keeps it; two sites of one type on a day add up; day 60 is after the day.
        let dir = folder(&[
            ("1", "10", "3", "4"),
            ("1", "10", "3", "6"),
            ("1", "11", "3", "2"),
            ("1", "11", "-5", "1"),
            ("1", "11", "60", "9"),
            ("2", "12", "5", "7"),
        ]);
        let o = Oulad::load(dir.path(), 56, &[]).await.unwrap();
        let one = &o.clicks[&("AAA-2013J".to_string(), "1".to_string())];
        let want: BTreeMap<(i64, &str), i64> = [
            ((-5, "resource"), 1),
            ((3, "quiz"), 6),
            ((3, "resource"), 2),
        ]
        .into();
        assert_eq!(one, &want);
        // A site missing from vle.csv is `other`.
        let two = &o.clicks[&("AAA-2013J".to_string(), "2".to_string())];
        assert_eq!(two, &[((5, "other"), 7)].into());
        // The engagement rows the products read: one per student, day and type, dated from
        // the presentation's start (2013-10-01), pre-start activity included.
        let list = members(&o, 56).0;
        let eng = engagement_frame(&o, &list).unwrap().unwrap();
        assert_eq!(eng.height(), 4);
        let p = products::student_course_engagement(&eng).unwrap();
        let clicks: Vec<Option<i64>> = p.column("clicks").unwrap().i64().unwrap().iter().collect();
        assert_eq!(clicks, [Some(9), Some(7)]);
        let last: Vec<Option<i32>> = p
            .column("last_active_date")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap()
            .i32()
            .unwrap()
            .iter()
            .collect();
        let day0 = (NaiveDate::from_ymd_opt(2013, 10, 1).unwrap()
            - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32;
        assert_eq!(last, [Some(day0 + 3), Some(day0 + 5)]);
    }

    #[test]
    fn oulad_activity_types_map_as_the_template_does() {
        let yaml = include_str!("../templates/oulad/pipelines/engagement.yaml");
        for (oulad, ours) in [
            ("homepage", "login"),
            ("forumng", "forum"),
            ("ouwiki", "forum"),
            ("externalquiz", "quiz"),
            ("oucontent", "resource"),
            ("subpage", "resource"),
            ("oucollaborate", "video"),
            ("dataplus", "other"),
        ] {
            assert_eq!(engagement_type(oulad), ours, "{oulad}");
            if ours != "other" {
                assert!(yaml.contains(&format!("{oulad}: {ours}")), "{oulad}");
            }
        }
    }

    #[test]
    fn cut_off_puts_at_most_the_share_on_the_list() {
        // 0.00, 0.01, ..., 0.99: 20% reach 0.80, 40% reach 0.60.
        let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        assert!((cut_off(&scores, 0.20) - 0.80).abs() < 1e-9);
        assert!((cut_off(&scores, 0.40) - 0.60).abs() < 1e-9);
        // Ties at the cut: the list never grows past the share.
        let tied = [0.0, 0.0, 1.0, 1.0, 1.0];
        assert!((cut_off(&tied, 0.2) - 1.05).abs() < 1e-9);
        assert_eq!(cut_off(&[], 0.2), 0.0);
    }

    #[test]
    fn logistic_recovers_a_clear_signal() {
        // y = 1 mostly when x = 1.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let xi = f64::from(i % 2);
            x.push(vec![1.0, xi]);
            y.push(if (i % 2 == 1 && i % 10 != 1) || i % 10 == 0 {
                1.0
            } else {
                0.0
            });
        }
        let w = logistic(&x, &y, 0.0);
        assert!(w[1] > 2.0, "{w:?}");
    }
}
