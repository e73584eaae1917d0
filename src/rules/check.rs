//! The rule vocabulary as YAML writes it: a [`Check`] (row-level or dataset-level), its
//! optional [`Filter`], the comparison [`Op`]s and the [`Severity`] of a failure.
//!
//! Invariants: every check is a closed enum variant with `deny_unknown_fields`, so a misspelt
//! key is an error, never an ignored one; defaults (anomaly window and sigmas) live here only.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::contract::ColumnType;

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
