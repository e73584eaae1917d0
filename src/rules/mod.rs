//! Quality rules: `quality_rules/<dataset>.yaml` plus the rules generated from the contract.
//!
//! One engine evaluates both: a contract constraint becomes a rule with an id prefixed
//! `contract.`, so the report and the quarantine speak one language. Row-level rules are
//! polars expressions evaluated in one pass over a batch ([`eval`]); dataset-level rules are
//! aggregates over the same batch.

pub mod eval;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::contract::{ColumnType, Contract, Treatment};
use crate::yaml::{self, YamlError};

/// Errors loading or checking rules.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The YAML did not parse.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// The rules parsed but are wrong; every problem is listed.
    #[error("{}", .problems.iter().map(|p| format!("{}: {p}", .path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The rules file.
        path: PathBuf,
        /// Each problem.
        problems: Vec<String>,
    },
    /// Evaluation failed inside polars.
    #[error("evaluating rules: {0}")]
    Eval(#[from] polars::prelude::PolarsError),
}

/// What a failing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Counted and reported.
    Warn,
    /// Failing rows are moved to the quarantine table with the rule id.
    Quarantine,
    /// Any failure stops the promotion; nothing is committed.
    Fail,
}

impl Severity {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Quarantine => "quarantine",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparison operators for cross-column rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

/// A check, as written in YAML (`check: {range: {column: x, min: 0}}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The value is present.
    NotNull {
        /// Column.
        column: String,
    },
    /// The value is one of `values`.
    AcceptedValues {
        /// Column.
        column: String,
        /// Accepted values (compared as text).
        values: Vec<String>,
    },
    /// `min <= value <= max` (numbers).
    Range {
        /// Column.
        column: String,
        /// Inclusive lower bound.
        #[serde(default)]
        min: Option<f64>,
        /// Inclusive upper bound.
        #[serde(default)]
        max: Option<f64>,
    },
    /// The text matches the regex.
    Pattern {
        /// Column.
        column: String,
        /// Regular expression (Rust regex syntax).
        regex: String,
    },
    /// Text length in characters within bounds.
    Length {
        /// Column.
        column: String,
        /// Inclusive minimum.
        #[serde(default)]
        min: Option<u32>,
        /// Inclusive maximum.
        #[serde(default)]
        max: Option<u32>,
    },
    /// `left op right`, skipped when either side is missing.
    Compare {
        /// Left column.
        left: String,
        /// Operator.
        op: Op,
        /// Right column.
        right: String,
    },
    /// A date or timestamp not after the run's clock.
    NotInFuture {
        /// Column.
        column: String,
    },
    /// The combination of columns is unique within the batch.
    Unique {
        /// Columns forming the key.
        columns: Vec<String>,
    },
    /// Dataset level: the share of present values is at least `min`.
    Completeness {
        /// Column.
        column: String,
        /// Minimum share, 0..1.
        min: f64,
    },
    /// The value exists in another dataset's trusted table (its primary key by default).
    References {
        /// Column holding the reference.
        column: String,
        /// Dataset referenced.
        dataset: String,
        /// Column of the referenced dataset (default: the same name as `column`).
        #[serde(default)]
        key: Option<String>,
    },
    /// Dataset level: the newest value of a date/timestamp column is at most this old.
    Freshness {
        /// Column.
        column: String,
        /// Maximum age in hours, measured from the run's clock.
        max_age_hours: f64,
    },
    /// Dataset level: the row count changed by at most this share against the previous batch.
    RowCountChange {
        /// Largest accepted |current / previous - 1|.
        max_change: f64,
    },
    /// Dataset level: the number of distinct values is within bounds.
    DistinctCount {
        /// Column.
        column: String,
        /// Inclusive minimum.
        #[serde(default)]
        min: Option<u64>,
        /// Inclusive maximum.
        #[serde(default)]
        max: Option<u64>,
    },
    /// Dataset level: the column's mean is within bounds.
    MeanBetween {
        /// Column.
        column: String,
        /// Inclusive minimum.
        min: f64,
        /// Inclusive maximum.
        max: f64,
    },
    /// Dataset level: a batch statistic leaves the band (mean ± sigmas·stddev) of the previous
    /// `window` batches. Needs 3 earlier batches before it can flag anything.
    DetectAnomaly {
        /// `row_count`, `null_share` or `mean`.
        statistic: Statistic,
        /// Column (for `null_share` and `mean`).
        #[serde(default)]
        column: Option<String>,
        /// Batches of history compared with.
        #[serde(default = "default_window")]
        window: usize,
        /// Width of the band in standard deviations.
        #[serde(default = "default_sigmas")]
        sigmas: f64,
    },
    /// Dataset level: the batch's row count is within bounds.
    RowCount {
        /// Inclusive minimum.
        #[serde(default)]
        min: Option<u64>,
        /// Inclusive maximum.
        #[serde(default)]
        max: Option<u64>,
    },
    /// Generated: the raw text could not be cast to the contract type.
    #[serde(skip)]
    Type {
        /// Column.
        column: String,
        /// Target type.
        ty: ColumnType,
    },
    /// Generated: the clear identifier failed its check before pseudonymisation
    /// (recorded by landing→raw in `_id_issues`).
    #[serde(skip)]
    IdentifierIssue {
        /// Column.
        column: String,
    },
}

impl Check {
    /// Whether the check judges single rows (else the batch as a whole).
    pub fn is_row_level(&self) -> bool {
        !matches!(
            self,
            Self::Completeness { .. }
                | Self::RowCount { .. }
                | Self::Freshness { .. }
                | Self::RowCountChange { .. }
                | Self::DistinctCount { .. }
                | Self::MeanBetween { .. }
                | Self::DetectAnomaly { .. }
        )
    }

    /// Columns the check reads.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Self::NotNull { column }
            | Self::AcceptedValues { column, .. }
            | Self::Range { column, .. }
            | Self::Pattern { column, .. }
            | Self::Length { column, .. }
            | Self::NotInFuture { column }
            | Self::Completeness { column, .. }
            | Self::Type { column, .. }
            | Self::References { column, .. }
            | Self::Freshness { column, .. }
            | Self::DistinctCount { column, .. }
            | Self::MeanBetween { column, .. }
            | Self::IdentifierIssue { column } => vec![column.as_str()],
            Self::DetectAnomaly { column, .. } => column.iter().map(String::as_str).collect(),
            Self::RowCountChange { .. } => Vec::new(),
            Self::Compare { left, right, .. } => vec![left.as_str(), right.as_str()],
            Self::Unique { columns } => columns.iter().map(String::as_str).collect(),
            Self::RowCount { .. } => Vec::new(),
        }
    }

    /// The column a row failure is shown with (first column read).
    pub fn display_column(&self) -> Option<&str> {
        self.columns().first().copied()
    }
}

/// A batch statistic watched by `detect_anomaly`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Rows in the batch.
    RowCount,
    /// Share of missing values of a column.
    NullShare,
    /// Mean of a numeric column.
    Mean,
}

fn default_window() -> usize {
    10
}

fn default_sigmas() -> f64 {
    3.0
}

/// Optional row filter: the rule only judges rows where it holds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Column tested.
    pub column: String,
    /// Row kept when the column equals this text.
    #[serde(default)]
    pub equals: Option<String>,
    /// Row kept when the column is present (`true`) or missing (`false`).
    #[serde(default)]
    pub not_null: Option<bool>,
}

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

/// `quality_rules/<dataset>.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Dataset the rules apply to.
    pub dataset: String,
    /// Rules judged on the way into trusted.
    #[serde(default)]
    pub trusted: Vec<RuleConfig>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// What it protects.
    pub description: String,
    /// The check.
    pub check: Check,
    /// Optional filter.
    pub filter: Option<Filter>,
    /// What a failure does.
    pub severity: Severity,
}

/// All rules of one dataset's promotion into trusted: generated contract rules first.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules in evaluation and report order.
    pub rules: Vec<Rule>,
}

/// Rules generated from the contract's constraints (ids `contract.<column>.<kind>`).
pub fn contract_rules(contract: &Contract) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut push = |id: String, description: String, check: Check| {
        out.push(Rule {
            id,
            description,
            check,
            filter: None,
            severity: Severity::Quarantine,
        });
    };
    for src in &contract.source {
        if src.treatment == Treatment::Pseudonymize && src.pattern.is_some() {
            push(
                format!("contract.{}.pattern", src.name),
                format!("`{}` matches its format before pseudonymisation", src.name),
                Check::IdentifierIssue {
                    column: src.name.clone(),
                },
            );
        }
    }
    for c in &contract.trusted {
        if let Some(ty) = c.ty {
            if ty != ColumnType::String {
                push(
                    format!("contract.{}.type", c.name),
                    format!("`{}` is a valid {}", c.name, ty),
                    Check::Type {
                        column: c.name.clone(),
                        ty,
                    },
                );
            }
        }
        if c.required {
            push(
                format!("contract.{}.required", c.name),
                format!("`{}` is present", c.name),
                Check::NotNull {
                    column: c.name.clone(),
                },
            );
        }
        if !c.allowed_values.is_empty() {
            push(
                format!("contract.{}.allowed_values", c.name),
                format!("`{}` is one of {}", c.name, c.allowed_values.join(", ")),
                Check::AcceptedValues {
                    column: c.name.clone(),
                    values: c.allowed_values.clone(),
                },
            );
        }
        if c.minimum.is_some() || c.maximum.is_some() {
            let bounds = match (c.minimum, c.maximum) {
                (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => String::new(),
            };
            push(
                format!("contract.{}.range", c.name),
                format!("`{}` is {bounds}", c.name),
                Check::Range {
                    column: c.name.clone(),
                    min: c.minimum,
                    max: c.maximum,
                },
            );
        }
        if let Some(re) = &c.pattern {
            push(
                format!("contract.{}.pattern", c.name),
                format!("`{}` matches {re}", c.name),
                Check::Pattern {
                    column: c.name.clone(),
                    regex: re.clone(),
                },
            );
        }
        if c.unique {
            push(
                format!("contract.{}.unique", c.name),
                format!("`{}` is unique", c.name),
                Check::Unique {
                    columns: vec![c.name.clone()],
                },
            );
        }
    }
    out
}

impl RuleSet {
    /// The contract's rules plus the rules file at `path` (when it exists), validated against
    /// the contract's trusted columns.
    ///
    /// # Errors
    /// YAML errors with file:line:column; [`RulesError::Invalid`] listing every problem.
    pub fn load(path: &Path, contract: &Contract) -> Result<Self, RulesError> {
        let mut rules = contract_rules(contract);
        if path.exists() {
            let file: RulesFile = yaml::load(path)?;
            let user = validate(file, contract).map_err(|problems| RulesError::Invalid {
                path: path.to_path_buf(),
                problems,
            })?;
            rules.extend(user);
        }
        Ok(Self { rules })
    }
}

/// Checks a rules file against the contract. Pure: no I/O.
///
/// # Errors
/// Every problem, as `trusted[i].field: message`.
pub fn validate(file: RulesFile, contract: &Contract) -> Result<Vec<Rule>, Vec<String>> {
    let mut problems = Vec::new();
    if file.dataset != contract.dataset {
        problems.push(format!(
            "dataset: `{}` but the contract is for `{}`",
            file.dataset, contract.dataset
        ));
    }
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in file.trusted.into_iter().enumerate() {
        let at = format!("trusted[{i}]");
        if r.id.starts_with("contract.") {
            problems.push(format!(
                "{at}.id: `contract.` ids are reserved for rules generated from the contract"
            ));
        }
        if !ids.insert(r.id.clone()) {
            problems.push(format!("{at}.id: duplicate rule id `{}`", r.id));
        }
        for c in r.check.columns() {
            if contract.column(c).is_none() {
                problems.push(format!(
                    "{at}.check: unknown column `{c}` (not in the trusted schema)"
                ));
            }
        }
        if let Some(f) = &r.filter {
            if contract.column(&f.column).is_none() {
                problems.push(format!("{at}.where.column: unknown column `{}`", f.column));
            }
            if f.equals.is_none() && f.not_null.is_none() {
                problems.push(format!("{at}.where: give `equals` or `not_null`"));
            }
        }
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
            Check::Range { column, .. } => {
                if let Some(c) = contract.column(column) {
                    if !matches!(c.ty, Some(ColumnType::Integer | ColumnType::Double)) {
                        problems.push(format!("{at}.check.range: `{column}` is not numeric"));
                    }
                }
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
            Check::References { dataset, .. } if !crate::config::is_valid_name(dataset) => {
                problems.push(format!(
                    "{at}.check.references.dataset: `{dataset}` is not a dataset name"
                ));
            }
            Check::NotInFuture { column } => {
                if let Some(c) = contract.column(column) {
                    if !matches!(c.ty, Some(ColumnType::Date | ColumnType::Timestamp)) {
                        problems.push(format!(
                            "{at}.check.not_in_future: `{column}` is not a date or timestamp"
                        ));
                    }
                }
            }
            Check::Compare { left, right, .. } => {
                if let (Some(l), Some(rc)) = (contract.column(left), contract.column(right)) {
                    if !comparable(l.ty, rc.ty) {
                        problems.push(format!(
                            "{at}.check.compare: `{left}` and `{right}` have incomparable types"
                        ));
                    }
                }
            }
            _ => {}
        }
        if !r.check.is_row_level() && r.severity == Severity::Quarantine {
            problems.push(format!(
                "{at}.severity: a dataset-level check cannot quarantine rows; use warn or fail"
            ));
        }
        out.push(Rule {
            id: r.id,
            description: r.description,
            check: r.check,
            filter: r.filter,
            severity: r.severity,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        let raw = yaml::parse(
            Path::new("c.yaml"),
            include_str!("../../contracts/grades.yaml"),
        )
        .unwrap();
        crate::contract::validate(raw, Path::new("c.yaml")).unwrap()
    }

    #[test]
    fn contract_rules_cover_constraints() {
        let ids: Vec<String> = contract_rules(&contract())
            .into_iter()
            .map(|r| r.id)
            .collect();
        for want in [
            "contract.student_id.pattern",
            "contract.record_id.required",
            "contract.due_at.type",
            "contract.assessment_type.allowed_values",
            "contract.weight.range",
        ] {
            assert!(ids.iter().any(|i| i == want), "missing {want} in {ids:?}");
        }
    }

    #[test]
    fn shipped_rules_are_valid() {
        let c = contract();
        let rs = RuleSet::load(
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/quality_rules/grades.yaml"
            )),
            &c,
        )
        .unwrap();
        assert!(rs.rules.iter().any(|r| r.id == "grades.score_within_max"));
    }

    #[test]
    fn problems_are_all_reported() {
        let text = "dataset: grades\ntrusted:\n  - id: a\n    description: x\n    check: {pattern: {column: nope, regex: '('}}\n    severity: warn\n  - id: a\n    description: y\n    check: {row_count: {min: 1}}\n    severity: quarantine\n";
        let file: RulesFile = yaml::parse(Path::new("r.yaml"), text).unwrap();
        let problems = validate(file, &contract()).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("unknown column `nope`"), "{all}");
        assert!(all.contains("invalid regex"), "{all}");
        assert!(all.contains("duplicate rule id `a`"), "{all}");
        assert!(all.contains("cannot quarantine"), "{all}");
    }

    #[test]
    fn unknown_severity_is_located() {
        let text = "dataset: grades\ntrusted:\n  - id: a\n    description: x\n    check: {not_null: {column: score}}\n    severity: loud\n";
        let err = yaml::parse::<RulesFile>(Path::new("r.yaml"), text).unwrap_err();
        assert_eq!(err.line, Some(6));
        assert!(err.to_string().contains("unknown variant `loud`"), "{err}");
    }
}
