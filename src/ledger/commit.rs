//! What medallion writes into the `commitInfo` of its Delta commits, and reads back from it.
//!
//! Invariants: [`CommitMeta`] is serialised in [`CommitMeta::entries`] and parsed in
//! [`CommitMeta::read`], the only two places that touch the keys of
//! [`crate::vocab::commit_key`]; a key left unset is not written (so older and newer commits
//! read the same way).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{PromotionRow, Step};
use crate::vocab::commit_key as key;

/// The metadata of one medallion commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitMeta {
    /// The step that wrote the commit (read back as text: older lakes may hold other names).
    pub step: String,
    /// The one batch the commit consumed.
    pub batch: Option<String>,
    /// Every batch the commit consumed (curated builds).
    pub batches: Option<Vec<String>>,
    /// The contract version the batch was judged under.
    pub contract_version: Option<String>,
    /// The courses the commit touched.
    pub courses: Option<Vec<String>>,
    /// The batch's books, inside the commit that writes its rows.
    pub books: Option<PromotionRow>,
}

impl CommitMeta {
    /// The metadata of a commit by `step`.
    pub fn new(step: Step) -> Self {
        Self {
            step: step.as_str().to_string(),
            ..Self::default()
        }
    }

    /// The metadata of a commit by `step` consuming `batch`.
    pub fn batch(step: Step, batch: impl Into<String>) -> Self {
        Self {
            batch: Some(batch.into()),
            ..Self::new(step)
        }
    }

    /// Records every batch the commit consumed.
    pub fn with_batches(mut self, batches: Vec<String>) -> Self {
        self.batches = Some(batches);
        self
    }

    /// Records the contract version.
    pub fn with_contract(mut self, version: impl Into<String>) -> Self {
        self.contract_version = Some(version.into());
        self
    }

    /// Records the courses the commit touched.
    pub fn with_courses<I, S>(mut self, courses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.courses = Some(courses.into_iter().map(Into::into).collect());
        self
    }

    /// Records the batch's books.
    pub fn with_books(mut self, books: PromotionRow) -> Self {
        self.books = Some(books);
        self
    }

    /// The `(key, value)` pairs a Delta commit carries, in a stable order.
    pub fn entries(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![(key::STEP, json!(self.step))];
        if let Some(b) = &self.batch {
            out.push((key::BATCH, json!(b)));
        }
        if let Some(b) = &self.batches {
            out.push((key::BATCHES, json!(b)));
        }
        if let Some(v) = &self.contract_version {
            out.push((key::CONTRACT_VERSION, json!(v)));
        }
        if let Some(c) = &self.courses {
            out.push((key::COURSES, json!(c)));
        }
        if let Some(books) = &self.books {
            // Strings and integers only: serialising cannot fail.
            out.push((key::BOOKS, serde_json::to_value(books).unwrap_or_default()));
        }
        out
    }

    /// Reads a commit's metadata back (a value of the wrong shape reads as unset); the books
    /// are read apart, by [`CommitMeta::read_books`], only where they are needed.
    pub fn read(info: &HashMap<String, Value>) -> Self {
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
        let list = |k: &str| {
            info.get(k)
                .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        };
        Self {
            step: text(key::STEP).unwrap_or_default(),
            batch: text(key::BATCH),
            batches: list(key::BATCHES),
            contract_version: text(key::CONTRACT_VERSION),
            courses: list(key::COURSES),
            books: None,
        }
    }

    /// The books a commit carries, if it carries any.
    ///
    /// # Errors
    /// When they are present but do not parse.
    pub fn read_books(
        info: &HashMap<String, Value>,
    ) -> Result<Option<PromotionRow>, serde_json::Error> {
        info.get(key::BOOKS)
            .map(|b| serde_json::from_value(b.clone()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_a_commit() {
        let meta = CommitMeta::batch(Step::RawToTrusted, "b000001-abc")
            .with_contract("1.2.0")
            .with_courses(["C1", "C2"]);
        let info: HashMap<String, Value> = meta
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(info["medallion.step"], json!("raw-to-trusted"));
        assert_eq!(info["medallion.batch"], json!("b000001-abc"));
        assert!(!info.contains_key("medallion.books"));
        assert_eq!(CommitMeta::read(&info), meta);
        assert!(CommitMeta::read_books(&info).unwrap().is_none());
    }
}
