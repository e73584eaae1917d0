//! Mapping by configuration: how a landed file whose columns are not the contract's (a public
//! dataset such as OULAD, landed as it is) becomes the contract's source columns on the way
//! into raw. Declared in `pipelines/<dataset>.yaml` under `source.map`:
//!
//! ```yaml
//! source:
//!   map:
//!     null_tokens: ["?"]                      # texts that mean "missing" in expressions
//!     start_dates: {2013J: 2013-10-01}        # day 0 of each key, for `day` expressions
//!     lookups:                                # a landed file joined on a key (left join)
//!       - {name: assessments, file: "assessments*.csv", key: [id_assessment]}
//!     columns:                                # every contract source column, from:
//!       student_id: id_student                #   a delivered column, as delivered
//!       course_id: {template: "{code_module}-{code_presentation}"}
//!       due_at: {day: assessments.date, start: assessments.code_presentation, time: "12:00:00Z"}
//!       assessment_type: {map: assessments.assessment_type, values: {TMA: assignment}, otherwise: other}
//!       weight: {divide: assessments.weight, by: 100}
//!       max_score: {value: "100"}
//!       graded_at: {day: date_submitted, start: assessments.code_presentation, when: score}
//! ```
//!
//! Invariants:
//! - a plain column copy keeps the text as delivered (a `?` stays `?` in raw, where raw rules
//!   can count it, and the contract's `nullValues` turn it into null in trusted);
//! - a derived value (`template`, `day`, `map`, `divide`) is null when an input it reads is
//!   null, empty or a null token, and so is any expression whose `when` column is;
//! - a row whose input cannot be computed (a day that is not a number, a key without a start
//!   date) is rejected naming the input column, never silently nulled;
//! - the mapping is validated when the pipeline loads ([`validate`]: every problem, each naming
//!   the key) and compiled against each file's header ([`Mapping::compile`]).
//!
//! Files: [`validate`](mod@validate) checks the YAML into a [`MappingSpec`], [`compile`]
//! compiles and applies it; this file holds the vocabulary and the check against the contract.

mod compile;
mod validate;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;

pub use compile::{LookupTable, MapError, Mapping};
pub use validate::validate;

/// `source.map` as written in YAML.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Texts that mean "missing" for derived values (OULAD: `?`).
    #[serde(default)]
    pub null_tokens: Vec<String>,
    /// Day 0 (`YYYY-MM-DD`) per key, for `day` expressions (OULAD: per presentation).
    #[serde(default)]
    pub start_dates: BTreeMap<String, String>,
    /// Landed files joined on a key.
    #[serde(default)]
    pub lookups: Vec<LookupConfig>,
    /// Contract source column -> expression.
    pub columns: BTreeMap<String, serde_yaml::Value>,
}

/// A lookup: the newest landed file of the dataset whose name matches `file`, joined on `key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// Prefix of its columns in expressions (`assessments.date`).
    pub name: String,
    /// File name pattern (`*` matches any run of characters).
    pub file: String,
    /// Columns present in both files, joined on.
    pub key: Vec<String>,
}

/// One expression, validated (columns are still names).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A delivered or looked-up column, as delivered.
    Copy(String),
    /// Literal text with `{column}` placeholders.
    Template(Vec<Piece>),
    /// A constant.
    Value(String),
    /// `start_dates[start] + day` days, as `YYYY-MM-DD` or, with `time`, `YYYY-MM-DDT<time>`.
    Day {
        /// Column holding the day offset.
        day: String,
        /// Column holding the key of `start_dates`.
        start: String,
        /// Time of day appended (`12:00:00Z`) to make a timestamp.
        time: Option<String>,
    },
    /// A value translated through a table; unknown values pass through, or become `otherwise`.
    Map {
        /// Column read.
        column: String,
        /// Translation table.
        values: BTreeMap<String, String>,
        /// Value for anything not in the table.
        otherwise: Option<String>,
    },
    /// A number divided by a constant (percent to share).
    Divide {
        /// Column read.
        column: String,
        /// Divisor (not 0).
        by: f64,
    },
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// A column's value.
    Col(String),
}

/// A column's expression and its optional `when` column.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The contract source column written.
    pub column: String,
    /// How it is computed.
    pub expr: Expr,
    /// Null unless this column holds a value.
    pub when: Option<String>,
}

/// A validated mapping.
#[derive(Debug, Clone, Default)]
pub struct MappingSpec {
    /// Null tokens.
    pub null_tokens: Vec<String>,
    /// Day 0 per key.
    pub start_dates: HashMap<String, NaiveDate>,
    /// Lookups.
    pub lookups: Vec<LookupConfig>,
    /// Targets, in the YAML's (sorted) order.
    pub targets: Vec<Target>,
}

impl Target {
    /// The columns this target reads (`when` included).
    pub fn reads(&self) -> Vec<&str> {
        let mut out: Vec<&str> = match &self.expr {
            Expr::Copy(c) | Expr::Map { column: c, .. } | Expr::Divide { column: c, .. } => {
                vec![c.as_str()]
            }
            Expr::Template(p) => p
                .iter()
                .filter_map(|p| match p {
                    Piece::Col(c) => Some(c.as_str()),
                    Piece::Lit(_) => None,
                })
                .collect(),
            Expr::Value(_) => vec![],
            Expr::Day { day, start, .. } => vec![day.as_str(), start.as_str()],
        };
        out.extend(self.when.as_deref());
        out
    }
}

/// The problems of `spec` against the contract's source `columns`: a contract column without
/// an expression, an expression for a column the contract does not have.
pub fn check_targets(spec: &MappingSpec, columns: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for c in columns {
        if !spec.targets.iter().any(|t| &t.column == c) {
            problems.push(format!(
                "source.map.columns: no expression for contract column `{c}` (write `{c}: ~` for none)"
            ));
        }
    }
    for_unmapped(spec, columns, &mut problems);
    problems
}

/// Whether `spec` maps columns the contract does not have (reported as a problem).
pub(super) fn for_unmapped(
    spec: &MappingSpec,
    outputs: &[String],
    problems: &mut Vec<String>,
) -> bool {
    let mut any = false;
    for t in &spec.targets {
        if !outputs.contains(&t.column) {
            problems.push(format!(
                "source.map.columns.{}: not a column of the contract's raw schema",
                t.column
            ));
            any = true;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<MappingSpec, Vec<String>> {
        let raw: MappingConfig = serde_yaml::from_str(yaml).unwrap();
        validate(&raw)
    }

    const GRADES: &str = r#"
null_tokens: ["?"]
start_dates: {2014J: 2014-10-01}
lookups: [{name: a, file: "assessments*.csv", key: [id_assessment]}]
columns:
  record_id: {template: "{id_assessment}-{id_student}"}
  student_id: id_student
  course_id: {template: "{a.code_module}-{a.code_presentation}"}
  due_at: {day: a.date, start: a.code_presentation, time: "12:00:00Z"}
  graded_at: {day: date_submitted, start: a.code_presentation, time: "12:00:00Z", when: score}
  score: score
  kind: {map: a.assessment_type, values: {TMA: assignment}, otherwise: other}
  weight: {divide: a.weight, by: 100}
  max_score: {value: "100"}
"#;

    fn outputs() -> Vec<String> {
        [
            "record_id",
            "student_id",
            "course_id",
            "due_at",
            "graded_at",
            "score",
            "kind",
            "weight",
            "max_score",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn maps_renames_derives_and_joins() {
        let s = spec(GRADES).unwrap();
        let lookup = LookupTable::csv(
            "assessments.csv",
            "code_module,code_presentation,id_assessment,assessment_type,date,weight\nGGG,2014J,37435,TMA,61,7.5\nGGG,2014J,37444,Exam,?,100\n".as_bytes(),
            &["id_assessment".to_string()],
        )
        .unwrap();
        let lookups = [lookup];
        let header: Vec<String> = [
            "id_assessment",
            "id_student",
            "date_submitted",
            "is_banked",
            "score",
        ]
        .map(String::from)
        .to_vec();
        let m = Mapping::compile(&s, &lookups, &header, &outputs()).unwrap();
        let row = m
            .apply(&[
                Some("37435"),
                Some("559366"),
                Some("61"),
                Some("0"),
                Some("50"),
            ])
            .unwrap();
        assert_eq!(
            row,
            vec![
                Some("37435-559366".into()),
                Some("559366".into()),
                Some("GGG-2014J".into()),
                Some("2014-12-01T12:00:00Z".into()),
                Some("2014-12-01T12:00:00Z".into()),
                Some("50".into()),
                Some("assignment".into()),
                Some("0.075".into()),
                Some("100".into()),
            ]
        );
        // `?` score: copied as delivered, graded_at null; `?` date: null due; unknown type.
        let row = m
            .apply(&[Some("37444"), Some("1"), Some("240"), Some("0"), Some("?")])
            .unwrap();
        assert_eq!(row[3], None);
        assert_eq!(row[4], None);
        assert_eq!(row[5].as_deref(), Some("?"));
        assert_eq!(row[6].as_deref(), Some("other"));
        // No match in the lookup: looked-up values are null.
        let row = m
            .apply(&[Some("1"), Some("1"), Some("2"), Some("0"), Some("5")])
            .unwrap();
        assert_eq!(row[2], None);
        // A day that is not a number is an error naming the column.
        let e = m
            .apply(&[Some("37435"), Some("1"), Some("soon"), Some("0"), Some("5")])
            .unwrap_err();
        assert_eq!(e.column, "date_submitted");
    }

    #[test]
    fn every_problem_is_named_by_key() {
        let e = spec(
            r#"
start_dates: {2014J: 2014-13-01}
columns:
  a: {template: "no columns"}
  b: {day: x}
  c: {map: y}
  d: {divide: z, by: 0}
  e: {value: "1", bogus: 2}
  f: {template: "{q.x}"}
"#,
        )
        .unwrap_err();
        let all = e.join("\n");
        for want in [
            "source.map.start_dates.2014J",
            "source.map.columns.a.template",
            "source.map.columns.b.start",
            "source.map.columns.c.values",
            "source.map.columns.d.by",
            "source.map.columns.e.bogus",
            "source.map.columns.f: `q.x` names lookup `q`",
        ] {
            assert!(all.contains(want), "{want} not in:\n{all}");
        }
    }

    #[test]
    fn compile_names_missing_columns() {
        let s = spec(GRADES).unwrap();
        let lookups = [LookupTable {
            file: "a.csv".into(),
            columns: vec!["id_assessment".into()],
            rows: HashMap::new(),
        }];
        let header = vec!["id_student".to_string()];
        let e = Mapping::compile(&s, &lookups, &header, &outputs()).unwrap_err();
        assert!(e.contains("key `id_assessment`"), "{e}");
        assert!(
            e.contains("lookup `a` (a.csv) has no column `code_module`"),
            "{e}"
        );
        let mut outs = outputs();
        outs.push("extra".into());
        let e = Mapping::compile(&s, &lookups, &header, &outs).unwrap_err();
        assert!(
            e.contains("no expression for contract column `extra`"),
            "{e}"
        );
    }
}
