//! Whether the alert rules need evaluating again: `_ops/alert_evaluations` keeps the
//! fingerprint of what the last evaluation saw (the versions of every table a rule reads, the
//! rules themselves and, when a rule measures time from now, the hour).
//!
//! Invariants:
//! - an evaluation is skipped only when its fingerprint equals the last recorded one, so a
//!   build, a crash between a build and its evaluation, an edited rule or the next hour of a
//!   time-based rule all lead to a new evaluation;
//! - the fingerprint is recorded after the evaluation has committed its changes (a crash in
//!   between evaluates again, which changes nothing the second time);
//! - a no-op run reads a few table logs and this table, and writes nothing.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};

use super::{AlertRule, AlertsConfig, Condition};
use crate::lake::Lake;
use crate::stage::Result;
use crate::storage::delta::{self, txn_id};
use crate::vocab::Stage;

/// Ops table with one row per evaluation whose fingerprint changed.
pub const EVALUATIONS: &str = "alert_evaluations";

/// The table `rule` reads, as (stage, table).
fn input(rule: &AlertRule) -> (Stage, String) {
    match &rule.when {
        Condition::AbsentInARow { .. } => (Stage::Trusted, "attendance".to_string()),
        Condition::NoActivity { table, .. } => {
            let (stage, name) = table.split_once('.').unwrap_or(("trusted", table));
            (
                Stage::parse(stage).unwrap_or(Stage::Trusted),
                name.to_string(),
            )
        }
        Condition::RiskRoseToHigh => (Stage::Curated, "at_risk_students".to_string()),
        Condition::MissedAssessments { .. } => {
            (Stage::Curated, "student_course_performance".to_string())
        }
        Condition::WeeklyAttendanceFell { .. } => (Stage::Curated, "attendance_weekly".to_string()),
    }
}

/// The tables `cfg`'s rules read, as (stage, table).
fn inputs(cfg: &AlertsConfig) -> Vec<(Stage, String)> {
    let mut out = vec![(Stage::Curated, super::TABLE.to_string())];
    for rule in &cfg.rules {
        let read = input(rule);
        if !out.contains(&read) {
            out.push(read);
        }
    }
    out
}

/// Key of the rules' fingerprints in an alerts commit's metadata (rule id → fingerprint).
pub const RULE_INPUTS: &str = "medallion.rule_inputs";

/// What `rule` would see now: the rule itself, the version and id of the table it reads and, for a
/// rule measuring time from now, the hour. Equal fingerprints mean equal hits.
///
/// # Errors
/// delta-rs errors.
pub async fn rule_fingerprint(lake: &Lake, rule: &AlertRule) -> Result<String> {
    let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
    format!("{rule:?}").hash(&mut h);
    let (stage, table) = input(rule);
    // The version and the table's id: a table deleted and made again is another input.
    let version = delta::version_and_id(&lake.loc(stage, &table)?).await?;
    (stage.to_string(), table, version).hash(&mut h);
    if matches!(rule.when, Condition::NoActivity { .. }) {
        lake.clock.now().timestamp().div_euclid(3600).hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// The rules' fingerprints the newest evaluation that wrote the alerts table recorded (none
/// for a table without them).
///
/// # Errors
/// delta-rs errors.
pub async fn recorded_rules(lake: &Lake) -> Result<BTreeMap<String, String>> {
    let loc = lake.loc(Stage::Curated, super::TABLE)?;
    let newest = delta::newest_step_commits(&loc, &[super::STEP], 1).await?;
    Ok(newest
        .into_iter()
        .next()
        .and_then(|info| info.get(RULE_INPUTS).cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// What an evaluation of `cfg` would see now.
pub async fn fingerprint(lake: &Lake, cfg: &AlertsConfig) -> Result<String> {
    let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
    format!("{:?}", cfg.rules).hash(&mut h);
    for (stage, table) in inputs(cfg) {
        let version = delta::version_and_id(&lake.loc(stage, &table)?).await?;
        (stage.to_string(), table, version).hash(&mut h);
    }
    if cfg
        .rules
        .iter()
        .any(|r| matches!(r.when, Condition::NoActivity { .. }))
    {
        // Days without activity grow with the clock: evaluated again every hour.
        lake.clock.now().timestamp().div_euclid(3600).hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// The fingerprint of the last recorded evaluation.
pub async fn last(lake: &Lake) -> Result<Option<String>> {
    let sql = "SELECT fingerprint FROM t ORDER BY evaluated_at DESC LIMIT 1";
    let Some((_, batches)) = delta::query(&lake.ops_loc(EVALUATIONS)?, sql).await? else {
        return Ok(None);
    };
    // Read back as text whatever string layout the scan chose (views or offsets).
    Ok(batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        let text = deltalake::arrow::compute::cast(b.column(0), &DataType::Utf8).ok()?;
        text.as_any()
            .downcast_ref::<StringArray>()
            .map(|a| a.value(0).to_string())
    }))
}

/// Records an evaluation's fingerprint.
pub async fn record(lake: &Lake, fingerprint: &str) -> Result<()> {
    let now = lake
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("fingerprint", DataType::Utf8, false),
        Field::new("evaluated_at", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![fingerprint])),
        Arc::new(StringArray::from(vec![now.as_str()])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        crate::stage::StepError::Polars(polars::prelude::PolarsError::ComputeError(
            e.to_string().into(),
        ))
    })?;
    delta::append(
        &lake.ops_loc(EVALUATIONS)?,
        schema,
        vec![batch],
        &txn_id(super::STEP, &format!("evaluated-{fingerprint}-{now}")),
        &[],
    )
    .await?;
    Ok(())
}
