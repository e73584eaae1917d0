//! Alerts for educators: rules in `pipelines/alerts.yaml`, evaluated over the curated tables
//! after a curated build whenever anything they read changed (see [`state`]), kept in the
//! curated table `curated.alerts`.
//!
//! Invariants:
//! - an alert is keyed by (rule, student, course); while its condition holds it stays one open
//!   row (fired once), it is resolved (resolved time set) when the condition clears, and a new
//!   alert fires if the condition comes back later;
//! - an evaluation that changes nothing writes nothing and notifies nobody (an unchanged rerun
//!   never re-fires);
//! - a rule whose input table does not exist (the engagement dataset of a project without one)
//!   is skipped, and its open alerts are left as they are;
//! - rows carry pseudonyms only (the curated tables hold no direct identifier), the reason and
//!   the recommended action in words.
//!
//! The table is rewritten whole in one Delta commit, then the changes are sent to the
//! notifier (a local log, or SNS on AWS) and the counts to the metrics sink: a crash between
//! the commit and the notifications loses those notifications, never duplicates an alert.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub mod state;

use crate::curated::products;
use crate::frame;
use crate::lake::Lake;
use crate::metrics::{Metric, Unit};
use crate::stage::{Registration, Result};
use crate::storage::delta::{self, txn_id};
use crate::vocab::Stage;
use crate::yaml::{self, YamlError};

/// The curated table holding the alerts.
pub const TABLE: &str = "alerts";
/// File name of the rules under `pipelines/`.
pub const FILE: &str = "alerts.yaml";
/// Step name in txn ids and metrics.
pub const STEP: &str = crate::ledger::Step::Alerts.as_str();

const S: &str = "student_id";
const C: &str = "course_id";

/// Errors loading the alert rules.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// YAML shape errors, located.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// Values that parse but make no sense, every one of them.
    #[error("{}: {}", .path.display(), .problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem.
        problems: Vec<String>,
    },
}

/// What makes an alert fire (one per rule). Written as a map with exactly one key:
/// `when: {absent_in_a_row: {sessions: 3}}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawCondition")]
pub enum Condition {
    /// A student was absent this many sessions of a course in a row, up to the newest session
    /// (excused and late sessions break the run).
    AbsentInARow {
        /// Sessions in a row.
        sessions: u32,
    },
    /// No activity for this many days (newest activity of the student in `table`, measured
    /// from now). Skipped while `table` does not exist.
    NoActivity {
        /// Days without activity.
        days: u32,
        /// `<stage>.<table>` holding the activity (default `trusted.engagement`).
        table: String,
        /// Its timestamp column (default `occurred_at`).
        at: String,
    },
    /// The student's risk level in `at_risk_students` is high.
    RiskRoseToHigh,
    /// At least this many due assessments not submitted (`student_course_performance.missing`).
    MissedAssessments {
        /// Missing assessments.
        count: u32,
    },
    /// A course's weekly attendance rate fell by at least this many points (0..100) from the
    /// week before to its newest week (`attendance_weekly`, suppressed weeks skipped).
    WeeklyAttendanceFell {
        /// Percentage points.
        points: f64,
    },
}

/// `when:` as serde reads it (serde_yaml writes enums as tags; a map reads better).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    absent_in_a_row: Option<Sessions>,
    #[serde(default)]
    no_activity: Option<Inactivity>,
    #[serde(default)]
    risk_rose_to_high: Option<Empty>,
    #[serde(default)]
    missed_assessments: Option<Count>,
    #[serde(default)]
    weekly_attendance_fell: Option<Points>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sessions {
    sessions: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inactivity {
    days: u32,
    #[serde(default = "engagement_table")]
    table: String,
    #[serde(default = "engagement_at")]
    at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Points {
    points: f64,
}

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(r: RawCondition) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(s) = r.absent_in_a_row {
            found.push(Condition::AbsentInARow {
                sessions: s.sessions,
            });
        }
        if let Some(i) = r.no_activity {
            found.push(Condition::NoActivity {
                days: i.days,
                table: i.table,
                at: i.at,
            });
        }
        if r.risk_rose_to_high.is_some() {
            found.push(Condition::RiskRoseToHigh);
        }
        if let Some(c) = r.missed_assessments {
            found.push(Condition::MissedAssessments { count: c.count });
        }
        if let Some(p) = r.weekly_attendance_fell {
            found.push(Condition::WeeklyAttendanceFell { points: p.points });
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            _ => Err("give exactly one of absent_in_a_row, no_activity, risk_rose_to_high, missed_assessments, weekly_attendance_fell".into()),
        }
    }
}

fn engagement_table() -> String {
    "trusted.engagement".to_string()
}

fn engagement_at() -> String {
    "occurred_at".to_string()
}

/// One rule as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable id (the metric's Rule dimension and the alarm's name).
    pub id: String,
    /// What it is for.
    pub description: String,
    /// The condition.
    pub when: Condition,
    /// The reason in words; `{value}` and `{threshold}` are filled in (and `{reasons}` for
    /// `risk_rose_to_high`: the at-risk reasons).
    pub reason: String,
    /// What the educator should do; placeholders as in `reason` (`{actions}`: the at-risk
    /// actions).
    pub action: String,
}

/// `pipelines/alerts.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The rules.
    pub rules: Vec<AlertRule>,
}

impl AlertsConfig {
    /// Loads and validates the rules file.
    ///
    /// # Errors
    /// YAML errors with file:line:column; every invalid value.
    pub fn load(path: &Path) -> Result<Self, AlertsError> {
        let cfg: AlertsConfig = yaml::load(path)?;
        cfg.validate().map_err(|problems| AlertsError::Invalid {
            path: path.to_path_buf(),
            problems,
        })?;
        Ok(cfg)
    }

    /// Checks ids and thresholds (pure).
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            if !crate::config::is_valid_name(&r.id) {
                problems.push(format!(
                    "rules[{i}].id: `{}` must be lowercase letters, digits and _",
                    r.id
                ));
            }
            if !ids.insert(r.id.as_str()) {
                problems.push(format!("rules[{i}].id: `{}` is used twice", r.id));
            }
            match &r.when {
                Condition::AbsentInARow { sessions: 0 } => problems.push(format!(
                    "rules[{i}].when.absent_in_a_row.sessions: must be 1 or more"
                )),
                Condition::NoActivity { days: 0, .. } => problems.push(format!(
                    "rules[{i}].when.no_activity.days: must be 1 or more"
                )),
                Condition::NoActivity { table, .. }
                    if Stage::parse(table.split('.').next().unwrap_or_default()).is_none()
                        || !table.contains('.') =>
                {
                    problems.push(format!(
                        "rules[{i}].when.no_activity.table: `{table}` is not `<stage>.<table>`"
                    ))
                }
                Condition::MissedAssessments { count: 0 } => problems.push(format!(
                    "rules[{i}].when.missed_assessments.count: must be 1 or more"
                )),
                Condition::WeeklyAttendanceFell { points }
                    if !(*points > 0.0 && *points <= 100.0) =>
                {
                    problems.push(format!(
                        "rules[{i}].when.weekly_attendance_fell.points: must be within (0, 100]"
                    ))
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// One row of `curated.alerts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertRow {
    /// `a_` + 16 hex: rule, subject and fired time hashed.
    pub alert_id: String,
    /// The rule that fired.
    pub rule_id: String,
    /// `student` or `course`.
    pub subject: String,
    /// Pseudonymised student id (None for a course alert).
    pub student_id: Option<String>,
    /// Course (None for a project-wide student alert).
    pub course_id: Option<String>,
    /// The measured value when it fired (sessions, days, missing, points, risk score).
    pub value: f64,
    /// Why, in words.
    pub reason: String,
    /// What to do, in words.
    pub action: String,
    /// `open` or `resolved`.
    pub status: String,
    /// When it fired (RFC 3339, UTC).
    pub fired_at: String,
    /// When its condition cleared (RFC 3339, UTC), None while open.
    pub resolved_at: Option<String>,
}

impl AlertRow {
    fn key(&self) -> (String, String, String) {
        (
            self.rule_id.clone(),
            self.student_id.clone().unwrap_or_default(),
            self.course_id.clone().unwrap_or_default(),
        )
    }

    /// A one-line summary for a terminal or a notification subject.
    pub fn summary(&self) -> String {
        let who = match (&self.student_id, &self.course_id) {
            (Some(s), Some(c)) => format!("student {s} in {c}"),
            (Some(s), None) => format!("student {s}"),
            (None, Some(c)) => format!("course {c}"),
            (None, None) => "the project".to_string(),
        };
        format!("{}: {who}: {}", self.rule_id, self.reason)
    }
}

/// A condition that holds now.
#[derive(Debug, Clone)]
struct Hit {
    student: Option<String>,
    course: Option<String>,
    value: f64,
    reasons: String,
    actions: String,
}

/// What one evaluation changed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AlertsReport {
    /// Alerts that fired now.
    pub fired: Vec<AlertRow>,
    /// Alerts resolved now.
    pub resolved: Vec<AlertRow>,
    /// Alerts open after the evaluation.
    pub open: usize,
    /// Rules skipped, with why (an input table that does not exist).
    pub skipped: Vec<(String, String)>,
    /// Whether the table was written.
    pub committed: bool,
}

fn fill(template: &str, value: f64, threshold: f64, reasons: &str, actions: &str) -> String {
    let num = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    template
        .replace("{value}", &num(value))
        .replace("{threshold}", &num(threshold))
        .replace("{reasons}", reasons)
        .replace("{actions}", actions)
}

async fn read(lake: &Lake, stage: Stage, table: &str, sql: &str) -> Result<Option<DataFrame>> {
    let loc = lake.loc(stage, table)?;
    match delta::query(&loc, sql).await? {
        Some((schema, batches)) => Ok(Some(frame::from_batches(&schema, &batches)?)),
        None => Ok(None),
    }
}

fn text(df: &DataFrame, c: &str, i: usize) -> Result<Option<String>> {
    Ok(df.column(c)?.str()?.get(i).map(str::to_string))
}

fn float(df: &DataFrame, c: &str, i: usize) -> Result<Option<f64>> {
    let s = df.column(c)?.cast(&DataType::Float64)?;
    Ok(s.f64()?.get(i))
}

/// Trusted attendance rows read at once by `absent_in_a_row` (whole courses, about this many).
const GROUP_ROWS: u64 = 1 << 20;

/// Students absent at least `sessions` sessions of a course in a row, up to their newest
/// session of it, from the attendance rows of some courses.
fn absent_in_a_row(att: &DataFrame, sessions: u32) -> Result<Vec<Hit>> {
    let s = products::sessions(att)?;
    let key = [col(S), col(C)];
    let last = s
        .clone()
        .lazy()
        .filter(col("status").neq(lit("absent")))
        .group_by(key.clone())
        .agg([col("session_date").max().alias("__last")]);
    let df = s
        .lazy()
        .join(
            last,
            key.clone(),
            key.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .filter(
            col("status").eq(lit("absent")).and(
                col("__last")
                    .is_null()
                    .or(col("session_date").gt(col("__last"))),
            ),
        )
        .group_by(key)
        .agg([len().cast(DataType::Int64).alias("streak")])
        .filter(col("streak").gt_eq(lit(i64::from(sessions))))
        .sort([C, S], SortMultipleOptions::default())
        .collect()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(Hit {
            student: text(&df, S, i)?,
            course: text(&df, C, i)?,
            value: float(&df, "streak", i)?.unwrap_or_default(),
            reasons: String::new(),
            actions: String::new(),
        });
    }
    Ok(out)
}

/// The subjects for which `rule` holds now, or `Err(why)` when it cannot be evaluated.
async fn hits(
    lake: &Lake,
    rule: &AlertRule,
) -> Result<std::result::Result<(Vec<Hit>, f64), String>> {
    let now = lake.clock.now();
    let mut out = Vec::new();
    let threshold;
    match &rule.when {
        Condition::AbsentInARow { sessions } => {
            threshold = f64::from(*sessions);
            let loc = lake.loc(Stage::Trusted, "attendance")?;
            if delta::open(&loc).await?.is_none() {
                return Ok(Err("trusted.attendance does not exist yet".into()));
            }
            // A few courses at a time: a run of absences is within one course, and memory
            // stays bounded whatever the size of the lake.
            let datasets = BTreeSet::from(["attendance"]);
            let groups = crate::curated::course_groups(lake, None, &datasets, GROUP_ROWS).await?;
            for group in groups.iter().filter(|g| !g.is_empty()) {
                let list: Vec<String> = group.iter().map(|c| delta::sql_literal(c)).collect();
                let sql = format!(
                    "SELECT student_id, course_id, session_date, status, recorded_at FROM t WHERE course_id IN ({}) ORDER BY record_id",
                    list.join(", ")
                );
                if let Some(att) = read(lake, Stage::Trusted, "attendance", &sql).await? {
                    out.extend(absent_in_a_row(&att, *sessions)?);
                }
            }
            out.sort_by(|a, b| (&a.course, &a.student).cmp(&(&b.course, &b.student)));
        }
        Condition::NoActivity { days, table, at } => {
            threshold = f64::from(*days);
            let (stage, name) = table.split_once('.').unwrap_or(("trusted", table));
            let stage = Stage::parse(stage).unwrap_or(Stage::Trusted);
            let loc = lake.loc(stage, name)?;
            let Some((schema, _)) = delta::query(&loc, "SELECT * FROM t LIMIT 0").await? else {
                return Ok(Err(format!("{table} does not exist")));
            };
            for c in [S, at.as_str()] {
                if schema.field_with_name(c).is_err() {
                    return Ok(Err(format!("{table} has no column `{c}`")));
                }
            }
            let sql = format!(
                "SELECT student_id, to_unixtime(max(\"{}\")) AS last_s FROM t WHERE student_id IS NOT NULL GROUP BY student_id ORDER BY student_id",
                at.replace('"', "")
            );
            let Some(df) = read(lake, stage, name, &sql).await? else {
                return Ok(Err(format!("{table} does not exist")));
            };
            for i in 0..df.height() {
                let Some(last) = float(&df, "last_s", i)? else {
                    continue;
                };
                let idle = (now.timestamp() as f64 - last) / 86_400.0;
                if idle >= threshold {
                    out.push(Hit {
                        student: text(&df, S, i)?,
                        course: None,
                        value: idle.floor(),
                        reasons: String::new(),
                        actions: String::new(),
                    });
                }
            }
        }
        Condition::RiskRoseToHigh => {
            threshold = 0.0;
            let Some(df) = read(
                lake,
                Stage::Curated,
                "at_risk_students",
                "SELECT student_id, course_id, risk_score, reasons, actions FROM t WHERE risk_level = 'high' ORDER BY course_id, student_id",
            )
            .await?
            else {
                return Ok(Err("curated.at_risk_students does not exist yet".into()));
            };
            for i in 0..df.height() {
                out.push(Hit {
                    student: text(&df, S, i)?,
                    course: text(&df, C, i)?,
                    value: float(&df, "risk_score", i)?.unwrap_or_default(),
                    reasons: text(&df, "reasons", i)?.unwrap_or_default(),
                    actions: text(&df, "actions", i)?.unwrap_or_default(),
                });
            }
        }
        Condition::MissedAssessments { count } => {
            threshold = f64::from(*count);
            let Some(df) = read(
                lake,
                Stage::Curated,
                "student_course_performance",
                &format!("SELECT student_id, course_id, missing FROM t WHERE missing >= {count} ORDER BY course_id, student_id"),
            )
            .await?
            else {
                return Ok(Err("curated.student_course_performance does not exist yet".into()));
            };
            for i in 0..df.height() {
                out.push(Hit {
                    student: text(&df, S, i)?,
                    course: text(&df, C, i)?,
                    value: float(&df, "missing", i)?.unwrap_or_default(),
                    reasons: String::new(),
                    actions: String::new(),
                });
            }
        }
        Condition::WeeklyAttendanceFell { points } => {
            threshold = *points;
            let Some(df) = read(
                lake,
                Stage::Curated,
                "attendance_weekly",
                "SELECT course_id, attendance_rate FROM t WHERE NOT suppressed AND attendance_rate IS NOT NULL ORDER BY course_id, week_start",
            )
            .await?
            else {
                return Ok(Err("curated.attendance_weekly does not exist yet".into()));
            };
            let mut weeks: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for i in 0..df.height() {
                if let (Some(c), Some(r)) = (text(&df, C, i)?, float(&df, "attendance_rate", i)?) {
                    weeks.entry(c).or_default().push(r);
                }
            }
            for (course, rates) in weeks {
                if let [.., before, last] = rates[..] {
                    let fell = (before - last) * 100.0;
                    if fell >= *points - 1e-9 {
                        out.push(Hit {
                            student: None,
                            course: Some(course),
                            value: (fell * 10.0).round() / 10.0,
                            reasons: String::new(),
                            actions: String::new(),
                        });
                    }
                }
            }
        }
    }
    Ok(Ok((out, threshold)))
}

/// The rows of `curated.alerts` (none when it does not exist).
///
/// # Errors
/// Storage or frame errors.
pub async fn read_alerts(lake: &Lake) -> Result<Vec<AlertRow>> {
    let Some(df) = read(
        lake,
        Stage::Curated,
        TABLE,
        "SELECT * FROM t ORDER BY fired_at, alert_id",
    )
    .await?
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(AlertRow {
            alert_id: text(&df, "alert_id", i)?.unwrap_or_default(),
            rule_id: text(&df, "rule_id", i)?.unwrap_or_default(),
            subject: text(&df, "subject", i)?.unwrap_or_default(),
            student_id: text(&df, S, i)?,
            course_id: text(&df, C, i)?,
            value: float(&df, "value", i)?.unwrap_or_default(),
            reason: text(&df, "reason", i)?.unwrap_or_default(),
            action: text(&df, "action", i)?.unwrap_or_default(),
            status: text(&df, "status", i)?.unwrap_or_default(),
            fired_at: text(&df, "fired_at", i)?.unwrap_or_default(),
            resolved_at: text(&df, "resolved_at", i)?,
        });
    }
    Ok(out)
}

fn to_frame(rows: &[AlertRow]) -> Result<DataFrame> {
    let s = |name: &str, f: &dyn Fn(&AlertRow) -> Option<String>| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    Ok(DataFrame::new_infer_height(vec![
        s("alert_id", &|r| Some(r.alert_id.clone())),
        s("rule_id", &|r| Some(r.rule_id.clone())),
        s("subject", &|r| Some(r.subject.clone())),
        s(S, &|r| r.student_id.clone()),
        s(C, &|r| r.course_id.clone()),
        Column::new(
            "value".into(),
            rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        ),
        s("reason", &|r| Some(r.reason.clone())),
        s("action", &|r| Some(r.action.clone())),
        s("status", &|r| Some(r.status.clone())),
        s("fired_at", &|r| Some(r.fired_at.clone())),
        s("resolved_at", &|r| r.resolved_at.clone()),
    ])?)
}

fn alert_id(rule: &str, student: &str, course: &str, at: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{rule}\u{1f}{student}\u{1f}{course}\u{1f}{at}").as_bytes());
    format!("a_{}", &hex::encode(h)[..16])
}

/// Catalog comments of the alerts table's columns.
pub const COLUMNS: crate::stage::ColumnComments = &[
    ("alert_id", "Alert id: rule, subject and fired time hashed"),
    ("rule_id", "The rule in pipelines/alerts.yaml that fired"),
    ("subject", "student or course"),
    (
        "student_id",
        "Pseudonymised student id (keyed HMAC); empty for a course alert",
    ),
    ("course_id", "Course the alert is about"),
    (
        "value",
        "What was measured when it fired (sessions, days, missing, points, risk score)",
    ),
    ("reason", "Why, in words"),
    ("action", "Recommended action for the educator"),
    ("status", "open or resolved"),
    ("fired_at", "When the alert fired (UTC)"),
    (
        "resolved_at",
        "When its condition cleared (UTC); empty while open",
    ),
];

/// Evaluates every rule over the curated tables and records what changed (see the module doc).
///
/// # Errors
/// Storage, frame, metrics or notifier errors.
pub async fn evaluate(lake: &Lake, cfg: &AlertsConfig) -> Result<AlertsReport> {
    evaluate_now(lake, cfg).await
}

/// [`evaluate`], unless nothing the rules read changed since the last evaluation (no build,
/// no edited rule, and for a rule measuring time from now, the same hour): then `None`, and
/// nothing is read but a few table logs.
///
/// # Errors
/// Storage and polars errors.
pub async fn evaluate_if_changed(lake: &Lake, cfg: &AlertsConfig) -> Result<Option<AlertsReport>> {
    let seen = state::fingerprint(lake, cfg).await?;
    let last = state::last(lake).await?;
    tracing::debug!(seen, ?last, "Alert inputs' fingerprint.");
    if last.as_deref() == Some(seen.as_str()) {
        return Ok(None);
    }
    Ok(Some(evaluate(lake, cfg).await?))
}

/// Evaluates every rule now (see [`evaluate`]).
async fn evaluate_now(lake: &Lake, cfg: &AlertsConfig) -> Result<AlertsReport> {
    let io_start = crate::metrics::io::IoSnapshot::now();
    let now = lake
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut rows = read_alerts(lake).await?;
    // The open alerts by key, looked up once per hit (not a scan of every row per hit).
    let mut open_keys: std::collections::HashSet<(String, String, String)> = rows
        .iter()
        .filter(|r| r.resolved_at.is_none())
        .map(AlertRow::key)
        .collect();
    let mut report = AlertsReport::default();
    let mut evaluated = BTreeSet::new();
    let mut holding = BTreeSet::new();
    for rule in &cfg.rules {
        let (found, threshold) = match hits(lake, rule).await? {
            Ok(h) => h,
            Err(why) => {
                tracing::info!(rule = %rule.id, why = %why, "Alert rule skipped.");
                report.skipped.push((rule.id.clone(), why));
                continue;
            }
        };
        evaluated.insert(rule.id.clone());
        for h in found {
            let key = (
                rule.id.clone(),
                h.student.clone().unwrap_or_default(),
                h.course.clone().unwrap_or_default(),
            );
            if open_keys.insert(key.clone()) {
                let row = AlertRow {
                    alert_id: alert_id(&key.0, &key.1, &key.2, &now),
                    rule_id: rule.id.clone(),
                    subject: if h.student.is_some() {
                        "student"
                    } else {
                        "course"
                    }
                    .to_string(),
                    student_id: h.student.clone(),
                    course_id: h.course.clone(),
                    value: h.value,
                    reason: fill(&rule.reason, h.value, threshold, &h.reasons, &h.actions),
                    action: fill(&rule.action, h.value, threshold, &h.reasons, &h.actions),
                    status: "open".to_string(),
                    fired_at: now.clone(),
                    resolved_at: None,
                };
                report.fired.push(row.clone());
                rows.push(row);
            }
            holding.insert(key);
        }
    }
    for r in rows.iter_mut() {
        if r.resolved_at.is_none() && evaluated.contains(&r.rule_id) && !holding.contains(&r.key())
        {
            r.resolved_at = Some(now.clone());
            r.status = "resolved".to_string();
            report.resolved.push(r.clone());
        }
    }
    report.open = rows.iter().filter(|r| r.resolved_at.is_none()).count();
    if !report.fired.is_empty() || !report.resolved.is_empty() {
        let mut df = to_frame(&rows)?;
        let (schema, batches) = frame::to_batches(&mut df)?;
        let loc = lake.loc(Stage::Curated, TABLE)?;
        delta::overwrite(
            &loc,
            schema,
            batches,
            &txn_id(STEP, &now),
            &crate::ledger::CommitMeta::new(crate::ledger::Step::Alerts).entries(),
        )
        .await?;
        crate::stage::crash_point(STEP, "after-commit");
        report.committed = true;
        lake.register(Registration {
            dataset: TABLE,
            stage: Some(Stage::Curated),
            table: TABLE,
            kind: "data",
            description: "Alerts for educators: one row per alert (rule, student or course), reason and action in words, fired and resolved times. Students appear by pseudonym only.",
            contract: None,
            last_batch: None,
            comments: Some(COLUMNS),
        })
        .await?;
        for (what, list) in [("fired", &report.fired), ("resolved", &report.resolved)] {
            for r in list {
                let mut message = serde_json::to_value(r).unwrap_or_default();
                message["change"] = serde_json::json!(what);
                lake.notifier
                    .notify(&format!("Alert {what}: {}", r.summary()), &message)
                    .await?;
            }
        }
    }
    let mut metrics = Vec::new();
    for id in &evaluated {
        let count = |list: &[AlertRow]| list.iter().filter(|r| &r.rule_id == id).count() as f64;
        let open = rows
            .iter()
            .filter(|r| &r.rule_id == id && r.resolved_at.is_none())
            .count() as f64;
        metrics.push(
            Metric::new(
                "AlertsFired",
                count(&report.fired),
                Unit::Count,
                TABLE,
                "curated",
            )
            .with_rule(id),
        );
        metrics.push(
            Metric::new(
                "AlertsResolved",
                count(&report.resolved),
                Unit::Count,
                TABLE,
                "curated",
            )
            .with_rule(id),
        );
        metrics.push(Metric::new("AlertsOpen", open, Unit::Count, TABLE, "curated").with_rule(id));
    }
    // The evaluation is recorded (what it saw, after its own commit) so an unchanged lake is
    // not evaluated again.
    state::record(lake, &state::fingerprint(lake, cfg).await?).await?;
    // What the evaluation read and wrote is priced like every step's (measured, not guessed).
    metrics.extend(lake.cost_metrics(&io_start, TABLE, "curated"));
    if !metrics.is_empty() {
        lake.metrics.emit(&metrics).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("pipelines")
            .join(FILE);
        let cfg = AlertsConfig::load(&path).unwrap();
        assert_eq!(cfg.rules.len(), 5);
    }

    #[test]
    fn bad_rules_report_every_problem() {
        let text = "rules:\n  - {id: a, description: d, when: {absent_in_a_row: {sessions: 0}}, reason: r, action: x}\n  - {id: a, description: d, when: {weekly_attendance_fell: {points: 200}}, reason: r, action: x}\n";
        let cfg: AlertsConfig = yaml::parse(Path::new("alerts.yaml"), text).unwrap();
        let problems = cfg.validate().unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        let err = yaml::parse::<AlertsConfig>(
            Path::new("alerts.yaml"),
            "rules:\n  - {id: a, description: d, when: {absent: {}}, reason: r, action: x}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("alerts.yaml:2:"), "{err}");
    }

    #[test]
    fn templates_fill_numbers_in_words() {
        assert_eq!(
            fill(
                "absent {value} in a row (limit {threshold})",
                4.0,
                3.0,
                "",
                ""
            ),
            "absent 4 in a row (limit 3)"
        );
        assert_eq!(
            fill("fell {value} points", 12.5, 10.0, "", ""),
            "fell 12.5 points"
        );
    }
}
