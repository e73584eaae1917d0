//! A rules file as serde reads it ([`RulesFile`], [`RuleConfig`]), and its validation against
//! the columns each stage judges ([`Columns`]): ids unique across stages, columns that exist
//! with a type the check can read, severities the stage allows.
//!
//! Invariants: pure (no I/O, no clock); reports every problem as `<stage>[i].field: message`,
//! not just the first.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{raw_columns, trusted_columns, Check, Filter, Rule, Severity, Statistic};
use crate::contract::{ColumnType, Contract};
use crate::vocab::Stage;

/// One rule as written in YAML.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable id, unique in the file.
    pub id: String,
    /// What the rule protects, in words.
    pub description: String,
    /// The check, written as a one-key map (`{range: {...}}`).
    #[serde(with = "serde_yaml::with::singleton_map")]
    pub check: Check,
    /// Optional filter.
    #[serde(default, rename = "where")]
    pub filter: Option<Filter>,
    /// What a failure does.
    pub severity: Severity,
}

/// `quality_rules/<dataset>.yaml` (a landed dataset: `raw` and `trusted` rules) or
/// `quality_rules/<product>.yaml` (a curated product: `curated` rules).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Dataset or curated product the rules apply to.
    pub dataset: String,
    /// Rules judged on the way into raw, over the pseudonymised text as delivered
    /// (`warn` or `fail`: raw keeps every parsed row).
    #[serde(default)]
    pub raw: Vec<RuleConfig>,
    /// Rules judged on the way into trusted, over typed columns.
    #[serde(default)]
    pub trusted: Vec<RuleConfig>,
    /// Rules judged on a curated product before it is written (`warn` or `fail`).
    #[serde(default)]
    pub curated: Vec<RuleConfig>,
}

/// Columns a rule may read at one stage, with their types.
pub struct Columns<'a> {
    /// Stage judged (raw: text columns as delivered; trusted: typed; curated: a product).
    pub stage: Stage,
    /// `(name, type)` of every column the judged frame holds.
    pub columns: &'a [(String, Option<ColumnType>)],
}

impl Columns<'_> {
    fn get(&self, name: &str) -> Option<Option<ColumnType>> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    fn names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// Checks a dataset's rules file against the contract. Pure: no I/O.
///
/// # Errors
/// Every problem, as `<stage>[i].field: message`.
pub fn validate(
    file: RulesFile,
    contract: &Contract,
) -> Result<(Vec<Rule>, Vec<Rule>), Vec<String>> {
    let mut problems = Vec::new();
    if file.dataset != contract.dataset {
        problems.push(format!(
            "dataset: `{}` but the contract is for `{}`",
            file.dataset, contract.dataset
        ));
    }
    if !file.curated.is_empty() {
        problems.push(
            "curated: curated rules judge a product; put them in quality_rules/<product>.yaml"
                .to_string(),
        );
    }
    let mut ids = BTreeSet::new();
    let (raw_cols, trusted_cols) = (raw_columns(contract), trusted_columns(contract));
    let raw_view = Columns {
        stage: Stage::Raw,
        columns: &raw_cols,
    };
    let trusted_view = Columns {
        stage: Stage::Trusted,
        columns: &trusted_cols,
    };
    let mut raw = validate_stage("raw", file.raw, &raw_view, &mut ids, &mut problems);
    // At raw the default expectation is the contract's source header.
    for r in &mut raw {
        if let Check::SchemaMatch { columns, .. } = &mut r.check {
            if columns.is_empty() {
                *columns = contract.source.iter().map(|c| c.name.clone()).collect();
            }
        }
    }
    let trusted = validate_stage(
        "trusted",
        file.trusted,
        &trusted_view,
        &mut ids,
        &mut problems,
    );
    if problems.is_empty() {
        Ok((raw, trusted))
    } else {
        Err(problems)
    }
}

/// Validates one stage's rules against the columns that stage judges.
pub(super) fn validate_stage(
    key: &str,
    rules: Vec<RuleConfig>,
    view: &Columns,
    ids: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Vec<Rule> {
    let mut out = Vec::new();
    let text_only = view.stage == Stage::Raw;
    for (i, r) in rules.into_iter().enumerate() {
        let at = format!("{key}[{i}]");
        if r.id.starts_with("contract.") {
            problems.push(format!(
                "{at}.id: `contract.` ids are reserved for rules generated from the contract"
            ));
        }
        if !ids.insert(r.id.clone()) {
            problems.push(format!("{at}.id: duplicate rule id `{}`", r.id));
        }
        for c in r.check.columns() {
            if view.get(c).is_none() {
                problems.push(format!(
                    "{at}.check: unknown column `{c}` (not in the {} columns)",
                    view.stage.as_str()
                ));
            }
        }
        if let Some(f) = &r.filter {
            if view.get(&f.column).is_none() {
                problems.push(format!("{at}.where.column: unknown column `{}`", f.column));
            }
            if f.equals.is_none() && f.not_null.is_none() {
                problems.push(format!("{at}.where: give `equals` or `not_null`"));
            }
        }
        let numeric = |c: &str| {
            matches!(
                view.get(c),
                Some(Some(ColumnType::Integer | ColumnType::Double))
            )
        };
        match &r.check {
            Check::Pattern { regex, .. } => {
                if let Err(e) = regex::Regex::new(regex) {
                    problems.push(format!("{at}.check.pattern.regex: invalid regex: {e}"));
                }
            }
            Check::Completeness { min, .. } if !(0.0..=1.0).contains(min) => {
                problems.push(format!(
                    "{at}.check.completeness.min: {min} is not within 0..1"
                ));
            }
            Check::Range { column, .. } | Check::MeanBetween { column, .. }
                if view.get(column).is_some() && !numeric(column) =>
            {
                let hint = if text_only {
                    " (raw columns are text: judge numbers at trusted)"
                } else {
                    ""
                };
                problems.push(format!("{at}.check: `{column}` is not numeric{hint}"));
            }
            Check::DetectAnomaly {
                statistic,
                column: None,
                ..
            } if *statistic != Statistic::RowCount => {
                problems.push(format!(
                    "{at}.check.detect_anomaly: `{statistic:?}` needs a column"
                ));
            }
            Check::References { .. } if view.stage != Stage::Trusted => {
                problems.push(format!(
                    "{at}.check.references: referential integrity is judged on the way into trusted"
                ));
            }
            Check::References { dataset, .. } if !crate::vocab::is_valid_name(dataset) => {
                problems.push(format!(
                    "{at}.check.references.dataset: `{dataset}` is not a dataset name"
                ));
            }
            Check::NotInFuture { column } | Check::Freshness { column, .. } => {
                if let Some(t) = view.get(column) {
                    if !matches!(t, Some(ColumnType::Date | ColumnType::Timestamp)) {
                        problems.push(format!(
                            "{at}.check: `{column}` is not a date or timestamp{}",
                            if text_only {
                                " (raw columns are text: judge times at trusted)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            Check::Compare { left, right, .. } => {
                if let (Some(l), Some(rc)) = (view.get(left), view.get(right)) {
                    if !comparable(l, rc) {
                        problems.push(format!(
                            "{at}.check.compare: `{left}` and `{right}` have incomparable types"
                        ));
                    }
                }
            }
            Check::SchemaMatch { columns, .. }
                if columns.is_empty() && view.stage != Stage::Raw =>
            {
                problems.push(format!(
                    "{at}.check.schema_match.columns: list the expected columns (for example {})",
                    view.names().join(", ")
                ));
            }
            _ => {}
        }
        if r.severity == Severity::Quarantine {
            if !r.check.is_row_level() {
                problems.push(format!(
                    "{at}.severity: a dataset-level check cannot quarantine rows; use warn or fail"
                ));
            } else if view.stage != Stage::Trusted {
                problems.push(format!(
                    "{at}.severity: rows are quarantined on the way into trusted; at {} use warn or fail",
                    view.stage.as_str()
                ));
            }
        }
        out.push(Rule {
            id: r.id,
            description: r.description,
            check: r.check,
            filter: r.filter,
            severity: r.severity,
        });
    }
    out
}

fn comparable(a: Option<ColumnType>, b: Option<ColumnType>) -> bool {
    use ColumnType::*;
    matches!(
        (a, b),
        (Some(Integer | Double), Some(Integer | Double))
            | (Some(Date), Some(Date))
            | (Some(Timestamp), Some(Timestamp))
            | (Some(String), Some(String))
    )
}
