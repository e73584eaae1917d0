//! The shell's rustyline helper: tab completion of `<stage>.<table>` names, column names
//! (through table names and aliases of the statement) and SQL keywords from the catalog, and
//! the validator that keeps a statement open until it ends with `;`.
//!
//! Invariants: completion only offers what the catalog registered (never a guess), keywords
//! in the case being typed; completing reads nothing but the line and the catalog entries.

use std::collections::{BTreeMap, BTreeSet};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::is_complete;
use crate::catalog::TableEntry;

const COMMANDS: &[&str] = &["\\tables", "\\describe", "\\history", "\\q"];

/// Keywords offered by completion, in upper case (lower case when the word typed is).
const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CROSS",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "DATE",
    "DESC",
    "DISTINCT",
    "ELSE",
    "END",
    "EXCEPT",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FIRST",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "IN",
    "INNER",
    "INTERSECT",
    "INTERVAL",
    "IS",
    "JOIN",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "RIGHT",
    "ROWS",
    "SELECT",
    "THEN",
    "TIMESTAMP",
    "TRUE",
    "UNION",
    "USING",
    "WHEN",
    "WHERE",
    "WITH",
];

/// Words after which a table name comes.
const TABLE_INTRODUCERS: &[&str] = &["from", "join", "\\describe"];

/// The rustyline helper: completion from the catalog and the statement rules above.
#[derive(Debug, Default)]
pub(super) struct SqlHelper {
    /// Stages, e.g. `curated`.
    stages: BTreeSet<String>,
    /// Catalog name (`<stage>.<table>`) to its columns.
    tables: BTreeMap<String, Vec<String>>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

fn starts_with_ci(candidate: &str, prefix: &str) -> bool {
    candidate.len() >= prefix.len()
        && candidate.is_char_boundary(prefix.len())
        && candidate[..prefix.len()].eq_ignore_ascii_case(prefix)
}

impl SqlHelper {
    /// A helper completing the tables (and their columns) of `entries`.
    pub(super) fn new(entries: &[TableEntry]) -> Self {
        let mut h = Self::default();
        for e in entries {
            h.stages.insert(e.stage.clone());
            h.tables.insert(
                e.table.clone(),
                e.schema.iter().map(|c| c.name.clone()).collect(),
            );
        }
        h
    }

    /// Tables named after `FROM`/`JOIN` anywhere in `line`, by every name that may qualify a
    /// column: the catalog name, the table name without its stage, and an alias.
    fn referenced(&self, line: &str) -> BTreeMap<String, String> {
        let words: Vec<&str> = line
            .split(|c: char| !is_word(c))
            .filter(|w| !w.is_empty())
            .collect();
        let mut names = BTreeMap::new();
        for (i, w) in words.iter().enumerate() {
            if !TABLE_INTRODUCERS.contains(&w.to_ascii_lowercase().as_str()) {
                continue;
            }
            let Some(table) = words.get(i + 1).and_then(|t| {
                self.tables
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(t))
                    .cloned()
            }) else {
                continue;
            };
            names.insert(table.to_ascii_lowercase(), table.clone());
            if let Some((_, short)) = table.split_once('.') {
                names.insert(short.to_ascii_lowercase(), table.clone());
            }
            let mut next = words.get(i + 2).copied();
            if next.is_some_and(|n| n.eq_ignore_ascii_case("as")) {
                next = words.get(i + 3).copied();
            }
            if let Some(alias) = next.filter(|n| {
                !n.contains('.')
                    && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(n))
                    && !TABLE_INTRODUCERS.contains(&n.to_ascii_lowercase().as_str())
            }) {
                names.insert(alias.to_ascii_lowercase(), table.clone());
            }
        }
        names
    }

    /// Completion candidates for the word ending at `pos`, and where that word starts.
    pub(super) fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        // A backslash command being typed.
        let lead = before.trim_start();
        if lead.starts_with('\\') && !lead.contains(char::is_whitespace) {
            let start = pos - lead.len();
            let found = COMMANDS
                .iter()
                .filter(|c| c.starts_with(lead))
                .map(|c| (*c).to_string())
                .collect();
            return (start, found);
        }
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let previous = before[..start]
            .split(|c: char| c.is_whitespace() || c == '(' || c == ',')
            .rfind(|w| !w.is_empty())
            .unwrap_or("")
            .to_ascii_lowercase();
        let tables = |found: &mut BTreeSet<String>| {
            found.extend(
                self.tables
                    .keys()
                    .filter(|t| starts_with_ci(t, word))
                    .cloned(),
            );
        };
        let mut found = BTreeSet::new();
        if let Some((qualifier, _)) = word.rsplit_once('.') {
            if self
                .stages
                .iter()
                .any(|s| s.eq_ignore_ascii_case(qualifier))
            {
                tables(&mut found);
            } else if let Some(table) = self.resolve(line, qualifier) {
                found.extend(
                    self.tables[&table]
                        .iter()
                        .map(|c| format!("{qualifier}.{c}"))
                        .filter(|c| starts_with_ci(c, word)),
                );
            }
            return (start, found.into_iter().collect());
        }
        found.extend(
            self.stages
                .iter()
                .map(|s| format!("{s}."))
                .filter(|s| starts_with_ci(s, word)),
        );
        // Where a table goes, a word without a dot completes to its stage; the table follows.
        if TABLE_INTRODUCERS.contains(&previous.as_str()) {
            return (start, found.into_iter().collect());
        }
        let referenced: BTreeSet<String> = self.referenced(line).into_values().collect();
        let columns = self
            .tables
            .iter()
            .filter(|(t, _)| referenced.is_empty() || referenced.contains(*t))
            .flat_map(|(_, cols)| cols);
        found.extend(columns.filter(|c| starts_with_ci(c, word)).cloned());
        if !word.is_empty() {
            let lower = !word.chars().any(|c| c.is_ascii_uppercase());
            found.extend(
                KEYWORDS
                    .iter()
                    .filter(|k| starts_with_ci(k, word))
                    .map(|k| {
                        if lower {
                            k.to_ascii_lowercase()
                        } else {
                            (*k).to_string()
                        }
                    }),
            );
        }
        (start, found.into_iter().collect())
    }

    /// The table a qualifier (alias, table name or catalog name) stands for in `line`.
    fn resolve(&self, line: &str, qualifier: &str) -> Option<String> {
        let q = qualifier.to_ascii_lowercase();
        if let Some(t) = self.referenced(line).remove(&q) {
            return Some(t);
        }
        self.tables
            .keys()
            .find(|t| t.eq_ignore_ascii_case(qualifier))
            .cloned()
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(line, pos);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ColumnEntry;

    fn entry(stage: &str, name: &str, columns: &[&str]) -> TableEntry {
        TableEntry {
            dataset: name.into(),
            stage: stage.into(),
            kind: "data".into(),
            table: format!("{stage}.{name}"),
            location: String::new(),
            version: 0,
            rows: 0,
            schema: columns
                .iter()
                .map(|c| ColumnEntry {
                    name: (*c).into(),
                    ty: "string".into(),
                    comment: String::new(),
                })
                .collect(),
            contract_version: String::new(),
            last_batch: None,
            description: String::new(),
            updated_at: String::new(),
        }
    }

    fn helper() -> SqlHelper {
        SqlHelper::new(&[
            entry(
                "curated",
                "at_risk_students",
                &["student_id", "course_id", "risk_level", "reasons"],
            ),
            entry(
                "curated",
                "attendance_weekly",
                &["course_id", "week_start", "attendance_rate"],
            ),
            entry("curated", "course_summary", &["course_id", "pass_rate"]),
            entry("trusted", "courses", &["course_id", "title", "credits"]),
        ])
    }

    /// Candidates for `line` with the cursor at its end.
    fn complete(line: &str) -> (usize, Vec<String>) {
        helper().candidates(line, line.len())
    }

    #[test]
    fn stage_prefix_completes_to_the_stage() {
        assert_eq!(
            complete("SELECT * FROM cur"),
            (14, vec!["curated.".to_string()])
        );
        assert!(complete("cur").1.contains(&"curated.".to_string()));
        assert_eq!(complete("select * from tr").1, vec!["trusted.".to_string()]);
    }

    #[test]
    fn table_prefix_completes_to_the_table() {
        assert_eq!(
            complete("SELECT * FROM curated.at_"),
            (14, vec!["curated.at_risk_students".to_string()])
        );
        assert_eq!(
            complete("SELECT * FROM curated.at").1,
            vec![
                "curated.at_risk_students".to_string(),
                "curated.attendance_weekly".to_string()
            ]
        );
        assert_eq!(
            complete("\\describe trusted.c").1,
            vec!["trusted.courses".to_string()]
        );
    }

    #[test]
    fn column_prefix_completes_from_the_tables_in_the_statement() {
        let line = "SELECT * FROM curated.at_risk_students WHERE risk_l";
        assert_eq!(complete(line), (45, vec!["risk_level".to_string()]));
        // The table may come after the cursor.
        let line = "SELECT ri FROM curated.at_risk_students";
        assert_eq!(
            helper().candidates(line, 9).1,
            vec!["right".to_string(), "risk_level".to_string()]
        );
        // Columns of tables not in the statement are not offered.
        let line = "SELECT * FROM trusted.courses WHERE c";
        assert_eq!(
            complete(line).1,
            vec![
                "case".to_string(),
                "cast".to_string(),
                "course_id".to_string(),
                "credits".to_string(),
                "cross".to_string(),
                "curated.".to_string(),
                "current_date".to_string(),
                "current_timestamp".to_string(),
            ]
        );
    }

    #[test]
    fn qualified_columns_complete_through_aliases_and_table_names() {
        let line =
            "SELECT a.ris FROM curated.at_risk_students a JOIN curated.course_summary AS s ON s.p";
        assert_eq!(complete(line).1, vec!["s.pass_rate".to_string()]);
        assert_eq!(
            helper().candidates(line, 12).1,
            vec!["a.risk_level".to_string()]
        );
        let line = "SELECT courses.ti FROM trusted.courses";
        assert_eq!(
            helper().candidates(line, 17).1,
            vec!["courses.title".to_string()]
        );
    }

    #[test]
    fn keywords_follow_the_case_typed() {
        assert_eq!(complete("SEL").1, vec!["SELECT".to_string()]);
        assert_eq!(complete("sel").1, vec!["select".to_string()]);
    }

    #[test]
    fn commands_complete() {
        assert_eq!(complete("\\de"), (0, vec!["\\describe".to_string()]));
        assert_eq!(complete("  \\h").1, vec!["\\history".to_string()]);
    }
}
