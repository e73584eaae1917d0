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
use crate::vocab::Stage;
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
    /// Dataset level: the columns delivered are exactly `columns` (order ignored; extra
    /// columns allowed with `allow_extra`). Without `columns`, the contract's columns for the
    /// stage: at raw, the delivered file header against the contract's source columns.
    SchemaMatch {
        /// Expected columns (default: the contract's for the stage).
        #[serde(default)]
        columns: Vec<String>,
        /// Extra columns are accepted.
        #[serde(default)]
        allow_extra: bool,
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
                | Self::SchemaMatch { .. }
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
            // Expected columns may be missing by design: that is what it checks.
            Self::RowCountChange { .. } | Self::SchemaMatch { .. } => Vec::new(),
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

/// The rules of a landed dataset, per stage.
#[derive(Debug, Clone, Default)]
pub struct DatasetRules {
    /// Judged on the way into raw.
    pub raw: RuleSet,
    /// Judged on the way into trusted (contract rules first).
    pub trusted: RuleSet,
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

/// Raw columns as a rule sees them: every source column kept past landing, as text.
pub fn raw_columns(contract: &Contract) -> Vec<(String, Option<ColumnType>)> {
    contract
        .raw_columns()
        .map(|c| (c.name.clone(), Some(ColumnType::String)))
        .collect()
}

/// Trusted columns with their contract types.
pub fn trusted_columns(contract: &Contract) -> Vec<(String, Option<ColumnType>)> {
    contract
        .trusted
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect()
}

impl RuleSet {
    /// The contract's rules plus the trusted rules of the file at `path` (when it exists).
    ///
    /// # Errors
    /// As [`DatasetRules::load`].
    pub fn load(path: &Path, contract: &Contract) -> Result<Self, RulesError> {
        Ok(DatasetRules::load(path, contract)?.trusted)
    }

    /// A curated product's rules from `path` (none when it does not exist), checked against
    /// the product's columns.
    ///
    /// # Errors
    /// YAML errors with file:line:column; [`RulesError::Invalid`] listing every problem.
    pub fn load_product(
        path: &Path,
        product: &str,
        columns: &[(String, Option<ColumnType>)],
    ) -> Result<Self, RulesError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let file: RulesFile = yaml::load(path)?;
        let invalid = |problems| RulesError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let mut problems = Vec::new();
        if file.dataset != product {
            problems.push(format!(
                "dataset: `{}` but the file is for the curated product `{product}`",
                file.dataset
            ));
        }
        for (key, n) in [("raw", file.raw.len()), ("trusted", file.trusted.len())] {
            if n > 0 {
                problems.push(format!(
                    "{key}: `{product}` is a curated product; its rules go under `curated`"
                ));
            }
        }
        let mut ids = BTreeSet::new();
        let view = Columns {
            stage: Stage::Curated,
            columns,
        };
        let rules = validate_stage("curated", file.curated, &view, &mut ids, &mut problems);
        if problems.is_empty() {
            Ok(Self { rules })
        } else {
            Err(invalid(problems))
        }
    }
}

impl DatasetRules {
    /// The contract's rules plus the rules file at `path` (when it exists), each stage's
    /// rules validated against that stage's columns.
    ///
    /// # Errors
    /// YAML errors with file:line:column; [`RulesError::Invalid`] listing every problem.
    pub fn load(path: &Path, contract: &Contract) -> Result<Self, RulesError> {
        let mut trusted = contract_rules(contract);
        let mut raw = Vec::new();
        if path.exists() {
            let file: RulesFile = yaml::load(path)?;
            let (r, t) = validate(file, contract).map_err(|problems| RulesError::Invalid {
                path: path.to_path_buf(),
                problems,
            })?;
            raw = r;
            trusted.extend(t);
        }
        Ok(Self {
            raw: RuleSet { rules: raw },
            trusted: RuleSet { rules: trusted },
        })
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
fn validate_stage(
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
            Check::References { dataset, .. } if !crate::config::is_valid_name(dataset) => {
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

    #[test]
    fn each_stage_is_checked_against_its_own_columns_and_severities() {
        let text = "dataset: grades\nraw:\n  - id: r1\n    description: x\n    check: {range: {column: score, min: 0}}\n    severity: warn\n  - id: r2\n    description: x\n    check: {not_null: {column: score}}\n    severity: quarantine\n  - id: r3\n    description: x\n    check: {references: {column: student_id, dataset: students}}\n    severity: warn\n  - id: r4\n    description: x\n    check: {schema_match: {}}\n    severity: fail\ntrusted:\n  - id: r1\n    description: dup\n    check: {schema_match: {}}\n    severity: warn\ncurated:\n  - id: c1\n    description: x\n    check: {row_count: {min: 1}}\n    severity: warn\n";
        let file: RulesFile = yaml::parse(Path::new("r.yaml"), text).unwrap();
        let all = validate(file, &contract()).unwrap_err().join("\n");
        assert!(
            all.contains("raw[0].check: `score` is not numeric (raw columns are text"),
            "{all}"
        );
        assert!(
            all.contains("raw[1].severity: rows are quarantined on the way into trusted"),
            "{all}"
        );
        assert!(all.contains("raw[2].check.references"), "{all}");
        assert!(
            !all.contains("raw[3]"),
            "schema_match at raw defaults to the contract: {all}"
        );
        assert!(
            all.contains("trusted[0].id: duplicate rule id `r1`"),
            "{all}"
        );
        assert!(
            all.contains("trusted[0].check.schema_match.columns: list the expected columns"),
            "{all}"
        );
        assert!(
            all.contains("curated: curated rules judge a product"),
            "{all}"
        );
    }

    #[test]
    fn raw_schema_match_defaults_to_the_source_header() {
        let text = "dataset: grades\nraw:\n  - id: h\n    description: x\n    check: {schema_match: {}}\n    severity: warn\n";
        let file: RulesFile = yaml::parse(Path::new("r.yaml"), text).unwrap();
        let (raw, _) = validate(file, &contract()).unwrap();
        let Check::SchemaMatch { columns, .. } = &raw[0].check else {
            panic!("{:?}", raw[0].check);
        };
        let want: Vec<String> = contract().source.iter().map(|c| c.name.clone()).collect();
        assert_eq!(columns, &want);
    }

    #[test]
    fn product_rules_are_checked_against_the_product() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "dataset: p\ncurated:\n  - id: a\n    description: x\n    check: {range: {column: rate, max: 1}}\n    severity: fail\n  - id: b\n    description: x\n    check: {not_null: {column: nope}}\n    severity: quarantine\ntrusted:\n  - id: c\n    description: x\n    check: {row_count: {min: 1}}\n    severity: warn\n").unwrap();
        let cols = vec![("rate".to_string(), Some(ColumnType::Double))];
        let err = RuleSet::load_product(&path, "p", &cols)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("curated[1].check: unknown column `nope` (not in the curated columns)"),
            "{err}"
        );
        assert!(
            err.contains("curated[1].severity: rows are quarantined on the way into trusted"),
            "{err}"
        );
        assert!(err.contains("trusted: `p` is a curated product"), "{err}");
        assert!(!err.contains("curated[0]"), "{err}");
        assert!(
            RuleSet::load_product(&dir.path().join("none.yaml"), "p", &cols)
                .unwrap()
                .rules
                .is_empty()
        );
    }
}
