//! One delivered line into one raw row or one reject: fields checked (count, UTF-8, JSON
//! shape), mapped to the contract's source columns, and each present value treated
//! (kept, pseudonymised, masked, generalised or dropped).
//!
//! Invariants: a value is stored only after its treatment (an identifier never reaches a row
//! in clear); a failed identifier check is recorded against the row, not rejected; a line
//! yields exactly one row or one reject.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::{Chunk, Parser, Reject, RejectKind, RowMap};
use crate::contract::{SourceColumn, Treatment};
use crate::crypto::Pseudonymizer;
use crate::stage::mapping::Mapping;

/// Applies a column's treatment to a present value. Returns the stored value and, for
/// identifiers, the failed check's rule id.
pub(super) struct Treat<'a> {
    pub(super) keys: &'a Pseudonymizer,
    pub(super) patterns: Vec<Option<regex::Regex>>,
    /// Per source column: identifiers seen recently, with their pseudonym and whether they
    /// matched the column's pattern. An export repeats each student on many lines, and the
    /// keyed hash and its hex are most of the cost of a line; the cache is emptied when full,
    /// so it stays small (it lives in memory only, like the line being parsed).
    pub(super) seen: Vec<std::sync::Mutex<Seen>>,
}

/// A column's recently seen identifiers: their pseudonym and whether they match the pattern.
type Seen = HashMap<Box<str>, (Box<str>, bool)>;

/// Identifiers a column's cache holds before it starts again.
const SEEN_MAX: usize = 1 << 16;

impl<'a> Treat<'a> {
    /// A treatment for columns with `patterns` (one per source column).
    pub(super) fn new(keys: &'a Pseudonymizer, patterns: Vec<Option<regex::Regex>>) -> Self {
        let seen = patterns.iter().map(|_| Default::default()).collect();
        Self {
            keys,
            patterns,
            seen,
        }
    }

    /// The pseudonym of an identifier of source column `idx`, and whether it matches the
    /// column's pattern (as delivered, surrounding blanks ignored).
    fn pseudonym(&self, idx: usize, value: &str) -> (String, bool) {
        let key = value.trim();
        let seen = self.seen.get(idx).and_then(|m| m.lock().ok());
        if let Some((p, ok)) = seen.as_ref().and_then(|s| s.get(key)) {
            return (p.to_string(), *ok);
        }
        let ok = match &self.patterns[idx] {
            Some(re) => re.is_match(key),
            None => true,
        };
        let p = self.keys.pseudonym(key);
        if let Some(mut seen) = seen {
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
            seen.insert(key.into(), (p.as_str().into(), ok));
        }
        (p, ok)
    }

    pub(super) fn apply(
        &self,
        idx: usize,
        col: &SourceColumn,
        value: &str,
    ) -> (Option<String>, Option<String>) {
        match col.treatment {
            Treatment::Keep => (Some(value.to_string()), None),
            Treatment::Drop => (None, None),
            Treatment::Pseudonymize => {
                let (pseudonym, ok) = self.pseudonym(idx, value);
                let issue = (!ok).then(|| format!("contract.{}.pattern", col.name));
                (Some(pseudonym), issue)
            }
            Treatment::Mask => {
                let masked = match value.rsplit_once('@') {
                    Some((_, domain)) => format!("***@{}", domain.trim().to_ascii_lowercase()),
                    None => "***".to_string(),
                };
                (Some(masked), None)
            }
            Treatment::Generalize => match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
                Ok(d) => (Some(format!("{}", d.format("%Y"))), None),
                Err(_) => (None, Some(format!("contract.{}.type", col.name))),
            },
        }
    }
}

impl Parser<'_> {
    pub(super) fn csv_row(
        &self,
        rec: &csv::ByteRecord,
        width: usize,
        map: &RowMap<'_>,
        line: u64,
        chunk: &mut Chunk,
    ) {
        if rec.len() != width {
            chunk.rejects.push(Reject {
                line,
                kind: RejectKind::RaggedLine,
                column: None,
                message: format!("expected {width} fields, found {}", rec.len()),
            });
            return;
        }
        let map = match map {
            RowMap::Direct(m) => m,
            RowMap::Mapped(m) => {
                let mut fields = Vec::with_capacity(rec.len());
                for (i, bytes) in rec.iter().enumerate() {
                    match std::str::from_utf8(bytes) {
                        Ok(s) => fields.push(Some(s)),
                        Err(e) => {
                            chunk.rejects.push(Reject {
                                line,
                                kind: RejectKind::InvalidUtf8,
                                column: Some(format!("field {}", i + 1)),
                                message: format!(
                                    "invalid UTF-8 at byte {} of the field",
                                    e.valid_up_to()
                                ),
                            });
                            return;
                        }
                    }
                }
                self.mapped_row(m, &fields, line, chunk);
                return;
            }
        };
        let mut values = Vec::with_capacity(map.len());
        for (ci, &fi) in map.iter().enumerate() {
            let bytes = rec.get(fi).unwrap_or_default();
            match std::str::from_utf8(bytes) {
                Ok(s) => values.push(s),
                Err(e) => {
                    chunk.rejects.push(Reject {
                        line,
                        kind: RejectKind::InvalidUtf8,
                        column: Some(self.contract.source[ci].name.clone()),
                        message: format!("invalid UTF-8 at byte {} of the field", e.valid_up_to()),
                    });
                    return;
                }
            }
        }
        self.keep(
            &values.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
            line,
            chunk,
        );
    }

    /// Maps one delivered row and stores it, or rejects it naming the input column.
    pub(super) fn mapped_row(
        &self,
        m: &Mapping<'_>,
        fields: &[Option<&str>],
        line: u64,
        chunk: &mut Chunk,
    ) {
        match m.apply(fields) {
            Ok(values) => {
                let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
                self.keep(&refs, line, chunk);
            }
            Err(e) => chunk.rejects.push(Reject {
                line,
                kind: RejectKind::Unmappable,
                column: Some(e.column),
                message: e.message,
            }),
        }
    }

    /// Stores one row's values (in contract source order; `None` = absent).
    pub(super) fn keep(&self, values: &[Option<&str>], line: u64, chunk: &mut Chunk) {
        let mut issues: Vec<String> = Vec::new();
        let mut out_idx = 0;
        for (ci, col) in self.contract.source.iter().enumerate() {
            if col.treatment == Treatment::Drop {
                continue;
            }
            let v = values[ci].filter(|v| !v.is_empty());
            let stored = match v {
                None => None,
                Some(v) => {
                    let (stored, issue) = self.treat.apply(ci, col, v);
                    issues.extend(issue);
                    stored
                }
            };
            chunk.columns[out_idx].push(stored);
            out_idx += 1;
        }
        chunk.lines.push(line as i64);
        chunk.id_issues.push(if issues.is_empty() {
            None
        } else {
            Some(issues.join(","))
        });
    }

    pub(super) fn json_row(&self, bytes: &[u8], line: u64, chunk: &mut Chunk) {
        let reject = |kind, column: Option<String>, message: String| Reject {
            line,
            kind,
            column,
            message,
        };
        if let Err(e) = std::str::from_utf8(bytes) {
            chunk.rejects.push(reject(
                RejectKind::InvalidUtf8,
                None,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            ));
            return;
        }
        let value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                chunk.rejects.push(reject(
                    RejectKind::InvalidJson,
                    None,
                    format!("column {}: {e}", e.column()),
                ));
                return;
            }
        };
        let Some(obj) = value.as_object() else {
            chunk.rejects.push(reject(
                RejectKind::InvalidJson,
                None,
                "not a JSON object".into(),
            ));
            return;
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !self.contract.source.iter().any(|c| &c.name == *k))
        {
            chunk.rejects.push(reject(
                RejectKind::UnexpectedField,
                Some(k.clone()),
                format!("field `{k}` is not in the contract"),
            ));
            return;
        }
        let mut texts: Vec<Option<String>> = Vec::with_capacity(self.contract.source.len());
        for c in &self.contract.source {
            texts.push(match obj.get(&c.name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                Some(_) => {
                    chunk.rejects.push(reject(
                        RejectKind::InvalidJson,
                        Some(c.name.clone()),
                        "nested values are not allowed".into(),
                    ));
                    return;
                }
            });
        }
        let refs: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        self.keep(&refs, line, chunk);
    }
}
