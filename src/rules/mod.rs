//! Quality rules: `quality_rules/<dataset>.yaml` plus the rules generated from the contract.
//!
//! One engine evaluates both: a contract constraint becomes a rule with an id prefixed
//! `contract.`, so the report and the quarantine speak one language. Row-level rules are
//! polars expressions evaluated in one pass over a batch ([`eval`]); dataset-level rules are
//! aggregates over the same batch.
//!
//! Files: [`check`] is the vocabulary of a rule, [`validate`](mod@validate) reads and checks a
//! rules file, this file turns the contract into rules and loads a dataset's or product's set.
//!
//! Invariants: contract rules come first in a set, ids are unique in a set, and a loaded set
//! has been validated against the columns its stage judges (nothing is checked at run time
//! that loading could have caught).

mod check;
pub mod eval;
mod validate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::contract::{ColumnType, Contract, Treatment};
use crate::vocab::Stage;
use crate::yaml::{self, YamlError};

pub use check::{Check, Filter, Op, Severity, Statistic};
use validate::validate_stage;
pub use validate::{validate, Columns, RuleConfig, RulesFile};

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
