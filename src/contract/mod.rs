//! Data contracts: `contracts/<dataset>.yaml`, written as ODCS v3 documents.
//!
//! A contract has two schema objects, `<dataset>_raw` (the export's columns in order, all text,
//! with each column's privacy class and treatment) and `<dataset>_trusted` (typed columns with
//! constraints and the primary key). medallion's own settings sit under ODCS `customProperties`.
//! Loading is two-phase: serde reads a [`RawContract`] (unknown keys rejected, errors located by
//! line and column), then the pure [`validate`] checks meaning and reports every problem.
//!
//! Files: [`raw`] is the document as serde reads it, [`validation`] checks it; this file holds
//! the validated contract and [`load`].

mod raw;
mod validation;

use std::fmt;
use std::path::{Path, PathBuf};

pub use raw::RawContract;
pub use validation::validate;

use crate::yaml::{self, YamlError};

/// Result alias for this module.
pub type Result<T, E = ContractError> = std::result::Result<T, E>;

/// A contract that could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The YAML did not parse into the contract shape.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// The YAML parsed but says something impossible; every problem is listed.
    #[error("{}", .problems.iter().map(|p| format!("{}: {p}", .path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The contract file.
        path: PathBuf,
        /// Each problem, as `key.path: message`.
        problems: Vec<String>,
    },
}

/// The type a trusted column is cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Integer,
    /// 64-bit float.
    Double,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// Instant, ISO 8601 with `Z` or an offset, stored in UTC.
    Timestamp,
    /// `true`/`false`.
    Boolean,
}

impl ColumnType {
    fn parse(physical: &str) -> Option<Self> {
        Some(match physical {
            "string" | "varchar" | "text" => Self::String,
            "integer" | "int" | "bigint" | "long" => Self::Integer,
            "double" | "float" | "decimal" | "number" => Self::Double,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "boolean" | "bool" => Self::Boolean,
            _ => return None,
        })
    }

    /// The name used in catalogs (Glue/Athena spelling).
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "bigint",
            Self::Double => "double",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::Boolean => "boolean",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// Privacy class of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// Identifies a person on its own (name, email, student id).
    Direct,
    /// Identifies a person in combination with other data.
    Indirect,
    /// Not personal.
    None,
}

/// What happens to a column on its way into raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Keyed HMAC-SHA256; equal inputs give equal pseudonyms across datasets.
    Pseudonymize,
    /// The column never leaves landing.
    Drop,
    /// Keep only the non-identifying part (an email's domain).
    Mask,
    /// Coarsen (a date to its year).
    Generalize,
    /// Keep as is.
    Keep,
}

/// A column of the export, as it arrives.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Column name in the export header.
    pub name: String,
    /// Privacy class.
    pub privacy: Privacy,
    /// Treatment applied before anything is written to raw.
    pub treatment: Treatment,
    /// Value is required (checked before pseudonymisation).
    pub required: bool,
    /// Regex the clear value must match (checked before pseudonymisation).
    pub pattern: Option<String>,
    /// Human description.
    pub description: String,
}

/// A typed, constrained column of the trusted table.
#[derive(Debug, Clone, Default)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type the raw text is cast to.
    pub ty: Option<ColumnType>,
    /// Null not allowed.
    pub required: bool,
    /// Values unique across the table (besides the primary key).
    pub unique: bool,
    /// Inclusive lower bound (numbers; dates as days are not supported here).
    pub minimum: Option<f64>,
    /// Inclusive upper bound.
    pub maximum: Option<f64>,
    /// Regex the text must match.
    pub pattern: Option<String>,
    /// Accepted values.
    pub allowed_values: Vec<String>,
    /// Texts that mean "missing" (`?` in OULAD): cast to null, not a type error
    /// (`customProperties.nullValues`).
    pub null_values: Vec<String>,
    /// Human description (goes to the catalog as the column comment).
    pub description: String,
    /// Privacy class, carried over from the source column.
    pub privacy: Option<Privacy>,
}

/// A validated data contract.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Dataset name (`attendance`).
    pub dataset: String,
    /// Contract version (semver text).
    pub version: String,
    /// Owning team or person.
    pub owner: String,
    /// Purpose of the dataset.
    pub description: String,
    /// The export's columns in order.
    pub source: Vec<SourceColumn>,
    /// The trusted table's columns in order.
    pub trusted: Vec<Column>,
    /// Primary key columns of the trusted table.
    pub primary_key: Vec<String>,
    /// Column whose newest value wins among records with one key (`recorded_at`).
    pub newest_wins_by: Option<String>,
    /// Freshness expectation in hours, if declared.
    pub freshness_hours: Option<f64>,
    /// Where it came from.
    pub path: PathBuf,
}

impl Contract {
    /// Columns written to raw: the source columns that are not dropped, in export order.
    pub fn raw_columns(&self) -> impl Iterator<Item = &SourceColumn> {
        self.source
            .iter()
            .filter(|c| c.treatment != Treatment::Drop)
    }

    /// A trusted column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.trusted.iter().find(|c| c.name == name)
    }
}

/// Loads and validates `path`.
///
/// # Errors
/// [`ContractError::Yaml`] with file:line:column for shape errors, [`ContractError::Invalid`]
/// listing every semantic problem.
pub fn load(path: &Path) -> Result<Contract> {
    let raw: RawContract = yaml::load(path)?;
    validate(raw, path).map_err(|problems| ContractError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}
