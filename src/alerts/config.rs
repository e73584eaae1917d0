//! The rules file `pipelines/alerts.yaml`: what makes an alert fire, the reason and action in
//! words, loaded and checked.
//!
//! Invariants: a rule gives exactly one condition (unknown keys are refused, located by line
//! and column); rule ids are valid names, used once; thresholds are within their range
//! ([`AlertsConfig::validate`] reports every problem, not the first).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vocab::Stage;
use crate::yaml::{self, YamlError};

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
        /// Its date or timestamp column (default `activity_date`, the engagement dataset's).
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
    "activity_date".to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::FILE;

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
}
