//! Evaluates a [`RuleSet`] over one batch as polars expressions, in one pass.
//!
//! The input frame holds each trusted column twice: typed under its own name, and as the raw
//! text under `__raw_<name>` (so type failures and failing values can be shown as delivered).
//! The output adds `_rule_ids` (every rule the row failed, comma-separated), `_failures`
//! (`rule: column=value` for each) and `__quarantine` (the row failed a quarantine rule).
//!
//! Files: [`expr`] builds the row rules' expressions, [`tally`] adds a batch's counts and
//! measures up chunk by chunk; this file holds the vocabulary (columns, outcomes, results,
//! the [`Context`]) and [`evaluate`], one batch judged whole.
//!
//! Invariants: one result per rule, in rule order; evaluating reads no clock and does no I/O
//! (time, history and referenced keys come in the [`Context`]).

mod expr;
mod tally;

use polars::prelude::*;
use serde::Serialize;

use super::{RuleSet, RulesError, Severity};
use crate::contract::ColumnType;

pub use expr::none_if_empty;
pub use tally::Tally;

/// Column holding the ids of the rules a row failed.
pub const RULE_IDS: &str = "_rule_ids";
/// Column holding `rule: column=value` for each failure.
pub const FAILURES: &str = "_failures";
/// Internal flag: the row goes to quarantine.
pub const QUARANTINE_FLAG: &str = "__quarantine";
/// Column written by landing→raw naming identifier checks that failed before hashing.
pub const ID_ISSUES: &str = "_id_issues";

/// Name of the raw-text twin of a column.
pub fn raw_name(column: &str) -> String {
    format!("__raw_{column}")
}

/// How a rule came out on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No failures.
    Passed,
    /// Failures counted (severity warn).
    Warned,
    /// Failing rows quarantined.
    Quarantined,
    /// Failures stop the promotion.
    Failed,
    /// Could not be judged (a referenced table that does not exist yet, no history).
    Skipped,
}

impl Outcome {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Warned => "warned",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One rule's result on one batch.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// Rule id.
    pub rule_id: String,
    /// What the rule protects.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// `row` or `dataset`.
    pub level: &'static str,
    /// Rows (or 1 for dataset checks) judged.
    pub evaluated: u64,
    /// Rows (or 1) failing.
    pub failed: u64,
    /// The measured value of a dataset check (completeness share, row count).
    pub metric: Option<f64>,
    /// What happened.
    pub outcome: Outcome,
}

impl RuleResult {
    /// Share of judged rows that passed, 1.0 when nothing was judged.
    pub fn pass_rate(&self) -> f64 {
        if self.evaluated == 0 {
            1.0
        } else {
            1.0 - self.failed as f64 / self.evaluated as f64
        }
    }
}

/// A batch after rule evaluation.
#[derive(Debug)]
pub struct Evaluation {
    /// The input plus [`RULE_IDS`], [`FAILURES`] and [`QUARANTINE_FLAG`].
    pub frame: DataFrame,
    /// One result per rule, in rule order.
    pub results: Vec<RuleResult>,
}

impl Evaluation {
    /// Rules of severity `fail` that failed.
    pub fn stopping_failures(&self) -> Vec<&RuleResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .collect()
    }
}

/// The moment "in the future" is measured from.
#[derive(Debug, Clone, Copy)]
pub struct AsOf(pub chrono::DateTime<chrono::Utc>);

/// What rules need besides the batch: the clock, column types, each dataset-level rule's
/// metric over earlier batches (oldest first), and the key sets `references` rules check
/// against (absent when the referenced table does not exist yet: the rule is skipped).
pub struct Context<'a> {
    /// The run's clock.
    pub as_of: AsOf,
    /// Column types.
    pub types: &'a (dyn Fn(&str) -> Option<ColumnType> + Sync),
    /// Metric history per rule id.
    pub history: &'a std::collections::HashMap<String, Vec<f64>>,
    /// Referenced keys per rule id.
    pub refs: &'a std::collections::HashMap<String, Series>,
    /// Columns as delivered, for `schema_match` (a landing file's header); `None`: the
    /// judged frame's own columns.
    pub delivered: Option<&'a [String]>,
    /// `unique` rules whose repeats across the whole batch are marked in the frame's
    /// [`batch_unique_column`] (a batch judged in chunks); the others look at the frame alone.
    pub batch_unique: Option<&'a std::collections::HashSet<String>>,
}

/// Evaluates every rule of `set` over `frame` (typed columns plus `__raw_` twins): one batch
/// judged whole. A batch judged in chunks uses [`Tally`] directly.
///
/// # Errors
/// polars errors (a column missing from the frame, a bad regex that slipped validation).
pub fn evaluate(frame: DataFrame, set: &RuleSet, cx: &Context) -> Result<Evaluation, RulesError> {
    let mut tally = Tally::new(set);
    let frame = tally.add(frame, set, cx)?;
    Ok(Evaluation {
        frame,
        results: tally.results(set, cx),
    })
}

/// Name of the column a chunked judge fills, per `unique` rule, with "this row's key repeats
/// somewhere in the batch" (a chunk alone cannot see repeats in other chunks).
pub fn batch_unique_column(rule_id: &str) -> String {
    format!("__repeats_{rule_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Check, Op, Rule};

    pub(super) fn rule(id: &str, check: Check, severity: Severity) -> Rule {
        Rule {
            id: id.into(),
            description: id.into(),
            check,
            filter: None,
            severity,
        }
    }

    pub(super) fn cx<'a>(types: &'a (dyn Fn(&str) -> Option<ColumnType> + Sync)) -> Context<'a> {
        static H: std::sync::OnceLock<std::collections::HashMap<String, Vec<f64>>> =
            std::sync::OnceLock::new();
        static R: std::sync::OnceLock<std::collections::HashMap<String, Series>> =
            std::sync::OnceLock::new();
        Context {
            as_of: AsOf(chrono::Utc::now()),
            types,
            history: H.get_or_init(Default::default),
            refs: R.get_or_init(Default::default),
            delivered: None,
            batch_unique: None,
        }
    }

    pub(super) fn frame() -> DataFrame {
        df!(
            "score" => [Some(5.0f64), Some(12.0), None, Some(-1.0)],
            "max_score" => [Some(10.0f64), Some(10.0), Some(10.0), Some(10.0)],
            "__raw_score" => [Some("5"), Some("12"), Some("ten"), Some("-1")],
            "__raw_max_score" => ["10", "10", "10", "10"],
            "kind" => ["quiz", "exam", "poem", "quiz"],
            "__raw_kind" => ["quiz", "exam", "poem", "quiz"],
        )
        .unwrap()
    }

    pub(super) fn types(c: &str) -> Option<ColumnType> {
        match c {
            "score" | "max_score" => Some(ColumnType::Double),
            _ => Some(ColumnType::String),
        }
    }

    pub(super) fn run_with(
        rules: Vec<Rule>,
        history: &[(&str, Vec<f64>)],
        refs: &[(&str, Series)],
    ) -> Evaluation {
        let h: std::collections::HashMap<String, Vec<f64>> = history
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let r: std::collections::HashMap<String, Series> = refs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let cx = Context {
            as_of: AsOf(chrono::Utc::now()),
            types: &types,
            history: &h,
            refs: &r,
            delivered: None,
            batch_unique: None,
        };
        evaluate(frame(), &RuleSet { rules }, &cx).unwrap()
    }

    pub(super) fn outcome(ev: &Evaluation, id: &str) -> (Outcome, u64) {
        let r = ev.results.iter().find(|r| r.rule_id == id).unwrap();
        (r.outcome, r.failed)
    }

    #[test]
    fn every_failed_rule_is_listed_per_row() {
        let set = RuleSet {
            rules: vec![
                rule(
                    "t",
                    Check::Type {
                        column: "score".into(),
                        ty: ColumnType::Double,
                    },
                    Severity::Quarantine,
                ),
                rule(
                    "max",
                    Check::Compare {
                        left: "score".into(),
                        op: Op::Le,
                        right: "max_score".into(),
                    },
                    Severity::Quarantine,
                ),
                rule(
                    "min",
                    Check::Range {
                        column: "score".into(),
                        min: Some(0.0),
                        max: None,
                    },
                    Severity::Warn,
                ),
                rule(
                    "kind",
                    Check::AcceptedValues {
                        column: "kind".into(),
                        values: vec!["quiz".into(), "exam".into()],
                    },
                    Severity::Quarantine,
                ),
            ],
        };
        let ev = evaluate(frame(), &set, &cx(&types)).unwrap();
        let ids: Vec<Option<&str>> = ev
            .frame
            .column(RULE_IDS)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ids, vec![None, Some("max"), Some("t,kind"), Some("min")]);
        let q: Vec<Option<bool>> = ev
            .frame
            .column(QUARANTINE_FLAG)
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(q, vec![Some(false), Some(true), Some(true), Some(false)]);
        let failures = ev
            .frame
            .column(FAILURES)
            .unwrap()
            .str()
            .unwrap()
            .get(2)
            .unwrap()
            .to_string();
        assert_eq!(failures, "t: score=ten; kind: kind=poem");
        let counts: Vec<(u64, u64)> = ev.results.iter().map(|r| (r.evaluated, r.failed)).collect();
        assert_eq!(counts, vec![(4, 1), (4, 1), (4, 1), (4, 1)]);
        assert_eq!(ev.results[2].outcome, Outcome::Warned);
    }

    #[test]
    fn every_rule_kind_passes_and_fails() {
        use super::super::Statistic;
        let w = Severity::Warn;
        let rules = vec![
            rule(
                "nn_pass",
                Check::NotNull {
                    column: "max_score".into(),
                },
                w,
            ),
            rule(
                "pat_pass",
                Check::Pattern {
                    column: "kind".into(),
                    regex: "^[a-z]+$".into(),
                },
                w,
            ),
            rule(
                "pat_fail",
                Check::Pattern {
                    column: "kind".into(),
                    regex: "^q".into(),
                },
                w,
            ),
            rule(
                "len_pass",
                Check::Length {
                    column: "kind".into(),
                    min: Some(4),
                    max: Some(4),
                },
                w,
            ),
            rule(
                "len_fail",
                Check::Length {
                    column: "kind".into(),
                    min: Some(5),
                    max: None,
                },
                w,
            ),
            rule(
                "uniq_pass",
                Check::Unique {
                    columns: vec!["score".into()],
                },
                w,
            ),
            rule(
                "uniq_fail",
                Check::Unique {
                    columns: vec!["kind".into()],
                },
                w,
            ),
            rule(
                "ref_pass",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "ref_fail",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "ref_skip",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "distinct_pass",
                Check::DistinctCount {
                    column: "kind".into(),
                    min: Some(3),
                    max: Some(3),
                },
                w,
            ),
            rule(
                "distinct_fail",
                Check::DistinctCount {
                    column: "kind".into(),
                    min: Some(4),
                    max: None,
                },
                w,
            ),
            rule(
                "mean_pass",
                Check::MeanBetween {
                    column: "max_score".into(),
                    min: 9.0,
                    max: 11.0,
                },
                w,
            ),
            rule(
                "mean_fail",
                Check::MeanBetween {
                    column: "max_score".into(),
                    min: 11.0,
                    max: 12.0,
                },
                w,
            ),
            rule("change_pass", Check::RowCountChange { max_change: 0.5 }, w),
            rule("change_fail", Check::RowCountChange { max_change: 0.5 }, w),
            rule("change_skip", Check::RowCountChange { max_change: 0.5 }, w),
            rule(
                "anomaly_pass",
                Check::DetectAnomaly {
                    statistic: Statistic::RowCount,
                    column: None,
                    window: 10,
                    sigmas: 3.0,
                },
                w,
            ),
            rule(
                "anomaly_fail",
                Check::DetectAnomaly {
                    statistic: Statistic::RowCount,
                    column: None,
                    window: 10,
                    sigmas: 3.0,
                },
                w,
            ),
        ];
        let history = [
            ("change_pass", vec![5.0]),
            ("change_fail", vec![100.0]),
            ("anomaly_pass", vec![3.0, 4.0, 5.0, 4.0]),
            ("anomaly_fail", vec![100.0, 101.0, 99.0, 100.0]),
        ];
        let refs = [
            (
                "ref_pass",
                Series::new("k".into(), ["quiz", "exam", "poem"]),
            ),
            ("ref_fail", Series::new("k".into(), ["quiz"])),
        ];
        let ev = run_with(rules, &history, &refs);
        for (id, want) in [
            ("nn_pass", (Outcome::Passed, 0)),
            ("pat_pass", (Outcome::Passed, 0)),
            ("pat_fail", (Outcome::Warned, 2)),
            ("len_pass", (Outcome::Passed, 0)),
            ("len_fail", (Outcome::Warned, 4)),
            ("uniq_pass", (Outcome::Passed, 0)),
            ("uniq_fail", (Outcome::Warned, 2)),
            ("ref_pass", (Outcome::Passed, 0)),
            ("ref_fail", (Outcome::Warned, 2)),
            ("ref_skip", (Outcome::Skipped, 0)),
            ("distinct_pass", (Outcome::Passed, 0)),
            ("distinct_fail", (Outcome::Warned, 1)),
            ("mean_pass", (Outcome::Passed, 0)),
            ("mean_fail", (Outcome::Warned, 1)),
            ("change_pass", (Outcome::Passed, 0)),
            ("change_fail", (Outcome::Warned, 1)),
            ("change_skip", (Outcome::Skipped, 0)),
            ("anomaly_pass", (Outcome::Passed, 0)),
            ("anomaly_fail", (Outcome::Warned, 1)),
        ] {
            assert_eq!(outcome(&ev, id), want, "{id}");
        }
    }
}
