//! `medallion scan`: looks for direct identifiers in clear in every table of every stage, and
//! separately in landing (where they are expected).
//!
//! Invariants:
//! - the report names table, column, kind and count, never a value;
//! - the identifiers looked for come from the data itself: every value of every column a
//!   contract classifies `direct` in the landed files (the roster's ids, names, emails, dates of
//!   birth, staff emails), matched exactly and case-insensitively after trimming, plus e-mail
//!   addresses by pattern;
//! - a column a contract classifies `direct` that reaches a table with values that are not
//!   pseudonyms is a finding too, whatever its values look like.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::DataType;
use regex::Regex;
use serde::Serialize;

use crate::catalog::TableEntry;
use crate::contract::{Contract, Privacy, Treatment};
use crate::lake::Lake;
use crate::stage::Result;
use crate::storage::delta::{self, TableLoc};

/// Shortest clear value matched against the roster (shorter ones collide with ordinary text).
const MIN_MATCH_LEN: usize = 3;

/// What kind of identifier was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A value shaped like an e-mail address.
    Email,
    /// A value equal to a direct identifier delivered in landing (id, name, email, birth date).
    RosterValue,
    /// A column the contract classifies `direct`, holding values that are not pseudonyms.
    DirectColumn,
}

/// One column holding identifiers in clear.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// `landing`, `raw`, `trusted`, `curated` or `ops`.
    pub stage: String,
    /// `<stage>.<table>`, or `landing/<dataset>` for landed files.
    pub table: String,
    /// Column name.
    pub column: String,
    /// Kind of identifier.
    pub kind: FindingKind,
    /// Values found (never the values themselves).
    pub count: u64,
}

/// The result of a scan.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScanReport {
    /// Tables scanned.
    pub tables_scanned: usize,
    /// Landed files scanned.
    pub landing_files_scanned: usize,
    /// Distinct direct-identifier values known from landing (the roster), by source column.
    pub known_identifiers: usize,
    /// Every finding, landing included.
    pub findings: Vec<Finding>,
}

impl ScanReport {
    /// Whether any table past landing holds identifiers in clear: the scan fails. (Raw counts
    /// too: identifiers are pseudonymised on the way into raw.)
    pub fn leaks(&self) -> bool {
        self.past_landing().next().is_some()
    }

    /// Findings outside landing.
    pub fn past_landing(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.stage != "landing")
    }
}

/// Direct identifiers delivered in landing, normalised (trimmed, lowercase).
#[derive(Debug, Default)]
pub struct Roster {
    values: HashSet<String>,
    /// Pseudonymised direct columns per dataset (names as delivered).
    direct: BTreeMap<String, Vec<String>>,
}

impl Roster {
    fn add(&mut self, v: &str) {
        let v = v.trim();
        if v.chars().count() >= MIN_MATCH_LEN {
            self.values.insert(v.to_lowercase());
        }
    }

    fn contains(&self, v: &str) -> bool {
        let v = v.trim();
        v.chars().count() >= MIN_MATCH_LEN && self.values.contains(&v.to_lowercase())
    }

    fn is_direct(&self, column: &str) -> bool {
        self.direct
            .values()
            .any(|cols| cols.iter().any(|c| c == column))
    }
}

fn email() -> Regex {
    // A fixed pattern: building it cannot fail.
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap_or_else(|_| unreachable!())
}

fn pseudonym() -> Regex {
    Regex::new(r"^p_[0-9a-f]{40}$").unwrap_or_else(|_| unreachable!())
}

/// Scans every landed file of `contracts`' datasets and every table in `tables`.
///
/// # Errors
/// Storage errors reading landing or a table.
pub async fn scan(
    lake: &Lake,
    contracts: &[Contract],
    tables: &[TableEntry],
) -> Result<ScanReport> {
    let mut report = ScanReport::default();
    let mut roster = Roster::default();
    let email = email();
    let mut landing: BTreeMap<(String, String, FindingKind), u64> = BTreeMap::new();
    for c in contracts {
        let direct: Vec<String> = c
            .source
            .iter()
            .filter(|s| s.privacy == Privacy::Direct)
            .map(|s| s.name.clone())
            .collect();
        // Pseudonymised columns must hold pseudonyms wherever they appear; masked or
        // generalised ones are judged by their values only.
        roster.direct.insert(
            c.dataset.clone(),
            c.source
                .iter()
                .filter(|s| s.privacy == Privacy::Direct && s.treatment == Treatment::Pseudonymize)
                .map(|s| s.name.clone())
                .collect(),
        );
        for file in lake.store.list_landed(&c.dataset).await? {
            report.landing_files_scanned += 1;
            let mut text = String::new();
            let mut reader = lake.store.open_landed(&file).await?;
            let mut bytes = Vec::new();
            if reader.read_to_end(&mut bytes).is_err() {
                continue;
            }
            text.push_str(&String::from_utf8_lossy(&bytes));
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let header: Vec<String> = match rdr.headers() {
                Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
                Err(_) => continue,
            };
            for rec in rdr.records().flatten() {
                for (i, v) in rec.iter().enumerate() {
                    let Some(col) = header.get(i) else { continue };
                    if direct.contains(col) {
                        roster.add(v);
                        *landing
                            .entry((c.dataset.clone(), col.clone(), FindingKind::RosterValue))
                            .or_default() += u64::from(!v.trim().is_empty());
                    } else if email.is_match(v) {
                        *landing
                            .entry((c.dataset.clone(), col.clone(), FindingKind::Email))
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    report.known_identifiers = roster.values.len();
    for ((ds, column, kind), count) in landing {
        if count > 0 {
            report.findings.push(Finding {
                stage: "landing".into(),
                table: format!("landing/{ds}"),
                column,
                kind,
                count,
            });
        }
    }
    let pseudo = pseudonym();
    for t in tables {
        let Ok(url) = url::Url::parse(&t.location) else {
            continue;
        };
        let loc = TableLoc {
            url,
            options: lake.store.storage_options(),
        };
        report.tables_scanned += 1;
        report
            .findings
            .extend(scan_table(&loc, t, &roster, &email, &pseudo).await?);
    }
    report.findings.sort();
    Ok(report)
}

async fn scan_table(
    loc: &TableLoc,
    t: &TableEntry,
    roster: &Roster,
    email: &Regex,
    pseudo: &Regex,
) -> Result<Vec<Finding>> {
    let Some((schema, batches)) = delta::query(loc, "SELECT * FROM t").await? else {
        return Ok(Vec::new());
    };
    let mut counts: BTreeMap<(String, FindingKind), u64> = BTreeMap::new();
    for (i, field) in schema.fields().iter().enumerate() {
        if !matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            continue;
        }
        let name = field.name();
        // Lineage names the delivered file, never a person; error messages are checked.
        if name == crate::stage::SOURCE_FILE || name == crate::stage::SOURCE_HASH {
            continue;
        }
        let direct = roster.is_direct(name);
        for b in &batches {
            let col = b.column(i);
            let cast = deltalake::arrow::compute::cast(col, &DataType::Utf8);
            let Ok(arr) = cast else { continue };
            let arr = arr.as_string::<i32>();
            for j in 0..arr.len() {
                if arr.is_null(j) {
                    continue;
                }
                let v = arr.value(j);
                let kind = if roster.contains(v) {
                    Some(FindingKind::RosterValue)
                } else if email.is_match(v) {
                    Some(FindingKind::Email)
                } else if direct && !v.trim().is_empty() && !pseudo.is_match(v) {
                    Some(FindingKind::DirectColumn)
                } else {
                    None
                };
                if let Some(k) = kind {
                    *counts.entry((name.clone(), k)).or_default() += 1;
                }
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|((column, kind), count)| Finding {
            stage: t.stage.clone(),
            table: t.table.clone(),
            column,
            kind,
            count,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_matches_exactly_and_ignores_case_and_short_values() {
        let mut r = Roster::default();
        r.add(" Ann.Lee@School.edu ");
        r.add("S000123");
        r.add("Al");
        assert!(r.contains("ann.lee@school.edu"));
        assert!(r.contains("s000123"));
        assert!(!r.contains("S0001234"));
        assert!(!r.contains("Al"));
        assert!(email().is_match("mail me at x.y@uni.ac.uk please"));
        assert!(!email().is_match("p_0123"));
        assert!(pseudonym().is_match("p_0123456789abcdef0123456789abcdef01234567"));
    }
}
