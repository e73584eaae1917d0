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
//! The table is partitioned by `status` and `rule_id`: an evaluation reads and rewrites only
//! the open alerts of the rules it evaluates (with those it resolves) in one Delta commit,
//! never the resolved history, so its cost follows the open alerts, not the days the lake has
//! run. A rule whose input did not change since the evaluation that last wrote the table (its
//! fingerprint is in that commit's metadata) is not evaluated: its open alerts stay as they
//! are. A table from before the partitioning is rewritten whole, partitioned, once. Then the changes are sent to the
//! notifier (a local log, or SNS on AWS) and the counts to the metrics sink: a crash between
//! the commit and the notifications loses those notifications, never duplicates an alert.
//!
//! Files: [`config`] reads and checks the rules file, [`conditions`] finds what each rule holds
//! for now, [`state`] decides whether anything they read changed; this file keeps the table
//! (fire, resolve, notify, count).

mod conditions;
mod config;
pub mod state;

use std::collections::BTreeSet;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::frame;
use crate::lake::Lake;
use crate::metrics::{Metric, Unit};
use crate::stage::{Registration, Result};
use crate::storage::delta::{self, txn_id};
use crate::vocab::Stage;

use conditions::hits;
pub use config::{AlertRule, AlertsConfig, AlertsError, Condition};

/// The curated table holding the alerts.
pub const TABLE: &str = "alerts";
/// File name of the rules under `pipelines/`.
pub const FILE: &str = "alerts.yaml";
/// Step name in txn ids and metrics.
pub const STEP: &str = crate::ledger::Step::Alerts.as_str();

/// The columns the table is partitioned by: each rule's open alerts are files of their own.
const PARTITIONS: [&str; 2] = ["status", "rule_id"];

const S: &str = "student_id";
const C: &str = "course_id";

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
        Some((schema, batches)) => Ok(Some(numbers_as_floats(frame::from_batches(
            &schema, &batches,
        )?)?)),
        None => Ok(None),
    }
}

/// `df` with every numeric column cast to `f64` once, so [`float`] reads a row without a cast
/// (a cast per row made reading n rows cost n casts of n values).
fn numbers_as_floats(df: DataFrame) -> Result<DataFrame> {
    let numeric: Vec<Expr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype().is_primitive_numeric())
        .map(|c| col(c.name().clone()).cast(DataType::Float64))
        .collect();
    if numeric.is_empty() {
        return Ok(df);
    }
    Ok(df.lazy().with_columns(numeric).collect()?)
}

fn text(df: &DataFrame, c: &str, i: usize) -> Result<Option<String>> {
    Ok(df.column(c)?.str()?.get(i).map(str::to_string))
}

/// Row `i` of the numeric column `c` (cast to `f64` when it is not yet: frames from [`read`]
/// and [`numbers_as_floats`] already are).
fn float(df: &DataFrame, c: &str, i: usize) -> Result<Option<f64>> {
    let column = df.column(c)?;
    if let Ok(values) = column.f64() {
        return Ok(values.get(i));
    }
    Ok(column.cast(&DataType::Float64)?.f64()?.get(i))
}

/// The rows of `curated.alerts` (none when it does not exist).
///
/// # Errors
/// Storage or frame errors.
pub async fn read_alerts(lake: &Lake) -> Result<Vec<AlertRow>> {
    read_where(lake, "TRUE").await
}

/// Open alerts per rule of every rule but those in `except` (a partitioned table: only the
/// files of those partitions are read).
///
/// # Errors
/// Storage or frame errors.
async fn open_per_rule(
    lake: &Lake,
    except: &BTreeSet<String>,
) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut filter = "status = 'open'".to_string();
    if !except.is_empty() {
        let ids: Vec<String> = except.iter().map(|id| delta::sql_literal(id)).collect();
        filter = format!("{filter} AND rule_id NOT IN ({})", ids.join(", "));
    }
    let sql = format!("SELECT rule_id, count(*) AS n FROM t WHERE {filter} GROUP BY rule_id");
    let mut out = std::collections::BTreeMap::new();
    if let Some(df) = read(lake, Stage::Curated, TABLE, &sql).await? {
        for i in 0..df.height() {
            if let (Some(id), Some(n)) = (text(&df, "rule_id", i)?, float(&df, "n", i)?) {
                out.insert(id, n as u64);
            }
        }
    }
    Ok(out)
}

/// The rows of `curated.alerts` matching `filter` (SQL), by fired time.
async fn read_where(lake: &Lake, filter: &str) -> Result<Vec<AlertRow>> {
    let sql = format!("SELECT * FROM t WHERE {filter} ORDER BY fired_at, alert_id");
    let Some(df) = read(lake, Stage::Curated, TABLE, &sql).await? else {
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
    let started = std::time::Instant::now();
    let loc = lake.loc(Stage::Curated, TABLE)?;
    let partitions = delta::partition_columns(&loc).await?;
    let partitioned = partitions.as_deref().is_some_and(|p| p == PARTITIONS);
    // A table from before the partitioning is rewritten, partitioned, even when nothing
    // changes (else every evaluation would go on reading it whole).
    let migrate = partitions.is_some() && !partitioned;
    // A rule whose fingerprint (itself, the version of what it reads) is the one recorded by
    // the evaluation that last wrote the table holds the same alerts: it is neither read,
    // evaluated nor rewritten.
    let recorded = if partitioned {
        state::recorded_rules(lake).await?
    } else {
        std::collections::BTreeMap::new()
    };
    let mut prints = std::collections::BTreeMap::new();
    let mut unchanged = BTreeSet::new();
    for rule in &cfg.rules {
        let print = state::rule_fingerprint(lake, rule).await?;
        if recorded.get(&rule.id) == Some(&print) {
            unchanged.insert(rule.id.clone());
        }
        prints.insert(rule.id.clone(), print);
    }
    let todo: BTreeSet<String> = cfg
        .rules
        .iter()
        .filter(|r| !unchanged.contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    // What this evaluation may change: the open alerts of the rules it evaluates (and, were
    // the clock set back, any resolved at or after now, which are kept as they are). Every
    // row it writes matches.
    let live = if todo.is_empty() {
        "FALSE".to_string()
    } else {
        let ids: Vec<String> = todo.iter().map(|id| delta::sql_literal(id)).collect();
        format!(
            "(status = 'open' OR resolved_at >= {}) AND rule_id IN ({})",
            delta::sql_literal(&now),
            ids.join(", ")
        )
    };
    let mut rows = if partitioned {
        read_where(lake, &live).await?
    } else {
        read_alerts(lake).await?
    };
    tracing::debug!(
        rows = rows.len(),
        secs = started.elapsed().as_secs_f64(),
        "Alerts read."
    );
    // The open alerts by key, looked up once per hit (not a scan of every row per hit).
    let mut open_keys: std::collections::HashSet<(String, String, String)> = rows
        .iter()
        .filter(|r| r.resolved_at.is_none())
        .map(AlertRow::key)
        .collect();
    let mut report = AlertsReport::default();
    let mut evaluated = BTreeSet::new();
    let mut holding = BTreeSet::new();
    for rule in cfg.rules.iter().filter(|r| todo.contains(&r.id)) {
        let (found, threshold) = match hits(lake, rule).await? {
            Ok(h) => h,
            Err(why) => {
                tracing::info!(rule = %rule.id, why = %why, "Alert rule skipped.");
                report.skipped.push((rule.id.clone(), why));
                // Looked at again next time (whether its input exists yet is cheap to see).
                prints.remove(&rule.id);
                continue;
            }
        };
        evaluated.insert(rule.id.clone());
        tracing::debug!(
            rule = %rule.id,
            hits = found.len(),
            secs = started.elapsed().as_secs_f64(),
            "Alert rule evaluated."
        );
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
    // The open alerts of the rules not evaluated (unchanged, or no longer configured: those
    // stay open, nothing evaluates them), counted per rule in one read of their files.
    let open_elsewhere = if partitioned {
        open_per_rule(lake, &todo).await?
    } else {
        std::collections::BTreeMap::new()
    };
    let still_open: std::collections::BTreeMap<String, u64> = unchanged
        .iter()
        .map(|id| (id.clone(), open_elsewhere.get(id).copied().unwrap_or(0)))
        .collect();
    report.open = rows.iter().filter(|r| r.resolved_at.is_none()).count()
        + open_elsewhere.values().sum::<u64>() as usize;
    if migrate || !report.fired.is_empty() || !report.resolved.is_empty() {
        let mut df = to_frame(&rows)?;
        let (schema, batches) = frame::to_batches(&mut df)?;
        let mut meta = crate::ledger::CommitMeta::new(crate::ledger::Step::Alerts).entries();
        meta.push((state::RULE_INPUTS, serde_json::json!(prints)));
        if partitioned {
            delta::replace_where(&loc, schema, batches, Some(&live), &[], &meta).await?;
        } else {
            // The first evaluation, or a table from before the partitioning: whole.
            let app = txn_id(STEP, &now);
            delta::overwrite(&loc, schema, batches, &app, &meta, &PARTITIONS).await?;
        }
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
    for id in evaluated.iter().chain(&unchanged) {
        let count = |list: &[AlertRow]| list.iter().filter(|r| &r.rule_id == id).count() as f64;
        let open = match still_open.get(id) {
            Some(n) => *n as f64,
            None => rows
                .iter()
                .filter(|r| &r.rule_id == id && r.resolved_at.is_none())
                .count() as f64,
        };
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
