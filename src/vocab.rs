//! The lake's shared vocabulary: the stages, the names of the tables derived from a dataset,
//! and the keys medallion writes into Delta commit metadata.
//!
//! Invariants: this module is a leaf — it imports nothing from the crate, so every other
//! module (backends, steps, the ledger, reports, the CLI) may depend on it. It is the one place
//! that spells a side table's name (`<dataset>_rejects`, `<dataset>_quarantine`) and a commit
//! metadata key (`medallion.*`); everything else asks it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The lake's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Files as delivered.
    Landing,
    /// Parsed text, pseudonymised, with lineage.
    Raw,
    /// Typed, deduplicated, contract-conformant.
    Trusted,
    /// Data products for analysts.
    Curated,
}

impl Stage {
    /// Lowercase name, also the lake folder and catalog database suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Landing => "landing",
            Self::Raw => "raw",
            Self::Trusted => "trusted",
            Self::Curated => "curated",
        }
    }

    /// Parses a stage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "landing" => Self::Landing,
            "raw" => Self::Raw,
            "trusted" => Self::Trusted,
            "curated" => Self::Curated,
            _ => return None,
        })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a stage table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// The dataset's (or product's) rows.
    Data,
    /// `raw.<dataset>_rejects`: landing lines that could not be parsed.
    Rejects,
    /// `trusted.<dataset>_quarantine`: rows a `quarantine` rule set aside.
    Quarantine,
}

impl TableKind {
    /// The kind as the catalog records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Rejects => "rejects",
            Self::Quarantine => "quarantine",
        }
    }

    /// The suffix a table of this kind adds to its dataset's name.
    fn suffix(self) -> &'static str {
        match self {
            Self::Data => "",
            Self::Rejects => "_rejects",
            Self::Quarantine => "_quarantine",
        }
    }
}

/// A stage table derived from a dataset: the one place its name is formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// The stage it lives in.
    pub stage: Stage,
    /// The dataset (or curated product) it belongs to.
    pub dataset: String,
    /// What it holds.
    pub kind: TableKind,
}

impl TableRef {
    /// The data table of `dataset` in `stage`.
    pub fn data(stage: Stage, dataset: &str) -> Self {
        Self {
            stage,
            dataset: dataset.to_string(),
            kind: TableKind::Data,
        }
    }

    /// `raw.<dataset>_rejects`.
    pub fn rejects(dataset: &str) -> Self {
        Self {
            stage: Stage::Raw,
            dataset: dataset.to_string(),
            kind: TableKind::Rejects,
        }
    }

    /// `trusted.<dataset>_quarantine`.
    pub fn quarantine(dataset: &str) -> Self {
        Self {
            stage: Stage::Trusted,
            dataset: dataset.to_string(),
            kind: TableKind::Quarantine,
        }
    }

    /// The table's name within its stage (`attendance_quarantine`).
    pub fn name(&self) -> String {
        format!("{}{}", self.dataset, self.kind.suffix())
    }

    /// Whether a table name within a stage names a quarantine table.
    pub fn is_quarantine_name(table: &str) -> bool {
        table.ends_with(TableKind::Quarantine.suffix())
    }
}

impl fmt::Display for TableRef {
    /// `stage.name`, as the catalog and messages show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stage, self.name())
    }
}

/// A table's columns with their catalog comments, `(column, comment)`, in table order. Each
/// table family keeps its list beside the code that defines its columns; Glue takes at most
/// 255 characters per comment.
pub type ColumnComments = &'static [(&'static str, &'static str)];

/// The comment of `column` in `comments`, if it has a non-empty one.
pub fn comment_in(comments: ColumnComments, column: &str) -> Option<&'static str> {
    comments
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, text)| *text)
        .filter(|t| !t.trim().is_empty())
}

/// Keys medallion writes into the `commitInfo` of its Delta commits (read back to tell what a
/// commit did). Values are JSON.
pub mod commit_key {
    /// The step that wrote the commit (`landing-to-raw`, `raw-to-trusted`, ...).
    pub const STEP: &str = "medallion.step";
    /// The one batch a commit consumed.
    pub const BATCH: &str = "medallion.batch";
    /// Every batch a commit consumed (curated builds).
    pub const BATCHES: &str = "medallion.batches";
    /// The batch's books, written inside the main table's commit.
    pub const BOOKS: &str = "medallion.books";
    /// The courses a commit touched (dashboards refresh only those).
    pub const COURSES: &str = "medallion.courses";
    /// The contract version the batch was judged under.
    pub const CONTRACT_VERSION: &str = "medallion.contract_version";
}

/// Dataset and table names: lowercase ASCII letter first, then letters, digits and `_`, at most 64.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_tables_are_named_after_their_dataset() {
        assert_eq!(TableRef::rejects("grades").name(), "grades_rejects");
        assert_eq!(
            TableRef::quarantine("grades").to_string(),
            "trusted.grades_quarantine"
        );
        assert_eq!(TableRef::data(Stage::Curated, "p").to_string(), "curated.p");
        assert!(TableRef::is_quarantine_name("grades_quarantine"));
        assert!(!TableRef::is_quarantine_name("grades"));
    }

    #[test]
    fn stage_names_round_trip() {
        for s in [Stage::Landing, Stage::Raw, Stage::Trusted, Stage::Curated] {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
    }
}
