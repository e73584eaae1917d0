//! A [`MappingSpec`] compiled against one file's header (and its lookups) into a [`Mapping`],
//! then applied row by row; [`LookupTable`] is a landed file indexed by its key.
//!
//! Invariants: compiling checks every column an expression reads exists in the file or its
//! lookup (every problem named); applying a row reads nothing but the row and the lookups;
//! a derived value whose input is null, empty or a null token is null; an input that cannot
//! be computed is a [`MapError`] naming the input column, never a silent null.

use std::collections::{BTreeMap, HashMap};

use chrono::Duration;

use super::{for_unmapped, Expr, MappingSpec, Piece};

/// A loaded lookup file: its columns and its rows by key.
#[derive(Debug, Default)]
pub struct LookupTable {
    /// The file it came from (for messages).
    pub file: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Key values (trimmed) -> the row.
    pub rows: HashMap<Vec<String>, Vec<String>>,
}

impl LookupTable {
    /// Reads a CSV lookup file (header row; the first row of a repeated key wins).
    ///
    /// # Errors
    /// A CSV that cannot be read, or a key column it lacks.
    pub fn csv(file: &str, reader: impl std::io::Read, key: &[String]) -> Result<Self, String> {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| format!("{file}: {e}"))?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
            .collect();
        let idx: Vec<usize> = key
            .iter()
            .map(|k| {
                columns.iter().position(|c| c == k).ok_or_else(|| {
                    format!(
                        "{file}: no key column `{k}` (columns: {})",
                        columns.join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let mut rows = HashMap::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| format!("{file}: {e}"))?;
            let row: Vec<String> = rec.iter().map(String::from).collect();
            let k: Vec<String> = idx
                .iter()
                .map(|i| {
                    row.get(*i)
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default()
                })
                .collect();
            rows.entry(k).or_insert(row);
        }
        Ok(Self {
            file: file.to_string(),
            columns,
            rows,
        })
    }
}

/// Where an expression input comes from in a row.
#[derive(Debug, Clone)]
enum Ref {
    Field(usize),
    Lookup(usize, usize),
    /// A constant (a `day` given as a number: `{day: 0, start: ...}`).
    Const(String),
}

#[derive(Debug, Clone)]
enum CExpr {
    Copy(Ref),
    Template(Vec<(Option<Ref>, String)>),
    Value(String),
    Day(Ref, Ref, Option<String>),
    Map(Ref, BTreeMap<String, String>, Option<String>),
    Divide(Ref, f64),
}

/// A mapping compiled against one file's header and its lookups.
#[derive(Debug)]
pub struct Mapping<'a> {
    spec: &'a MappingSpec,
    lookups: &'a [LookupTable],
    keys: Vec<Vec<usize>>,
    exprs: Vec<(CExpr, Option<Ref>, Vec<String>)>,
}

/// Why one row could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct MapError {
    /// The delivered (or looked-up) column at fault.
    pub column: String,
    /// What was wrong.
    pub message: String,
}

impl<'a> Mapping<'a> {
    /// Compiles `spec` for a file with `header`, producing `outputs` (the contract's source
    /// columns, in order). `lookups` are in the order of `spec.lookups`.
    ///
    /// # Errors
    /// The problem in words: a contract column without an expression, a column the file and
    /// its lookups do not have.
    pub fn compile(
        spec: &'a MappingSpec,
        lookups: &'a [LookupTable],
        header: &[String],
        outputs: &[String],
    ) -> Result<Self, String> {
        let resolve = |name: &str| -> Result<Ref, String> {
            if let Some((prefix, col)) = name.split_once('.') {
                if let Some(li) = spec.lookups.iter().position(|l| l.name == prefix) {
                    let t = lookups
                        .get(li)
                        .ok_or_else(|| format!("lookup `{prefix}` not loaded"))?;
                    return t
                        .columns
                        .iter()
                        .position(|c| c == col)
                        .map(|ci| Ref::Lookup(li, ci))
                        .ok_or_else(|| {
                            format!("lookup `{prefix}` ({}) has no column `{col}`", t.file)
                        });
                }
            }
            if name.trim().parse::<i64>().is_ok() {
                return Ok(Ref::Const(name.trim().to_string()));
            }
            header
                .iter()
                .position(|h| h == name)
                .map(Ref::Field)
                .ok_or_else(|| {
                    format!(
                        "the file has no column `{name}` (columns: {})",
                        header.join(", ")
                    )
                })
        };
        let mut problems = Vec::new();
        let mut keys = Vec::new();
        for l in &spec.lookups {
            let mut k = Vec::new();
            for c in &l.key {
                match header.iter().position(|h| h == c) {
                    Some(i) => k.push(i),
                    None => problems.push(format!(
                        "lookup `{}` key `{c}`: the file has no such column",
                        l.name
                    )),
                }
            }
            keys.push(k);
        }
        let mut exprs = Vec::new();
        for out in outputs {
            let Some(t) = spec.targets.iter().find(|t| &t.column == out) else {
                problems.push(format!(
                    "source.map.columns has no expression for contract column `{out}`"
                ));
                continue;
            };
            let mut r = |n: &str| match resolve(n) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(format!("source.map.columns.{out}: {e}"));
                    None
                }
            };
            let e = match &t.expr {
                Expr::Copy(c) => r(c).map(CExpr::Copy),
                Expr::Value(v) => Some(CExpr::Value(v.clone())),
                Expr::Template(ps) => {
                    let mut parts = Vec::new();
                    let mut ok = true;
                    for p in ps {
                        match p {
                            Piece::Lit(l) => parts.push((None, l.clone())),
                            Piece::Col(c) => match r(c) {
                                Some(x) => parts.push((Some(x), c.clone())),
                                None => ok = false,
                            },
                        }
                    }
                    ok.then_some(CExpr::Template(parts))
                }
                Expr::Day { day, start, time } => match (r(day), r(start)) {
                    (Some(d), Some(s)) => Some(CExpr::Day(d, s, time.clone())),
                    _ => None,
                },
                Expr::Map {
                    column,
                    values,
                    otherwise,
                } => r(column).map(|x| CExpr::Map(x, values.clone(), otherwise.clone())),
                Expr::Divide { column, by } => r(column).map(|x| CExpr::Divide(x, *by)),
            };
            let when = t.when.as_deref().and_then(&mut r);
            if let Some(e) = e {
                let names = t.reads().into_iter().map(String::from).collect();
                exprs.push((e, when, names));
            }
        }
        if for_unmapped(spec, outputs, &mut problems) || !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Self {
            spec,
            lookups,
            keys,
            exprs,
        })
    }

    /// Maps one delivered row (`fields` in header order) to the contract's source columns.
    ///
    /// # Errors
    /// The input column that could not be used, and why.
    pub fn apply<'b>(
        &'b self,
        fields: &[Option<&'b str>],
    ) -> Result<Vec<Option<String>>, MapError> {
        let matched: Vec<Option<&Vec<String>>> = self
            .keys
            .iter()
            .zip(self.lookups)
            .map(|(k, t)| {
                let key: Vec<String> = k
                    .iter()
                    .map(|i| {
                        fields
                            .get(*i)
                            .copied()
                            .flatten()
                            .unwrap_or("")
                            .trim()
                            .to_string()
                    })
                    .collect();
                t.rows.get(&key)
            })
            .collect();
        let get = |r: &'b Ref| -> Option<&'b str> {
            match r {
                Ref::Field(i) => fields.get(*i).copied().flatten(),
                Ref::Lookup(l, c) => matched[*l].and_then(|row| row.get(*c)).map(String::as_str),
                Ref::Const(v) => Some(v.as_str()),
            }
        };
        let value = |r: &'b Ref| -> Option<&'b str> {
            get(r).filter(|v| {
                let t = v.trim();
                !t.is_empty() && !self.spec.null_tokens.iter().any(|n| n == t)
            })
        };
        let mut out = Vec::with_capacity(self.exprs.len());
        for (e, when, names) in &self.exprs {
            if when.as_ref().is_some_and(|w| value(w).is_none()) {
                out.push(None);
                continue;
            }
            let first = || names.first().cloned().unwrap_or_default();
            let v = match e {
                CExpr::Copy(r) => get(r).map(String::from),
                CExpr::Value(v) => Some(v.clone()),
                CExpr::Template(parts) => {
                    let mut s = String::new();
                    let mut null = false;
                    for (r, lit) in parts {
                        match r {
                            None => s.push_str(lit),
                            Some(r) => match value(r) {
                                Some(v) => s.push_str(v.trim()),
                                None => null = true,
                            },
                        }
                    }
                    (!null).then_some(s)
                }
                CExpr::Day(d, st, time) => match (value(d), value(st)) {
                    (Some(d), Some(st)) => {
                        let days = number(d).ok_or_else(|| MapError {
                            column: names[0].clone(),
                            message: format!("`{d}` is not a day number"),
                        })?;
                        let start =
                            self.spec
                                .start_dates
                                .get(st.trim())
                                .ok_or_else(|| MapError {
                                    column: names[1].clone(),
                                    message: format!(
                                        "no start date for `{st}` in source.map.start_dates"
                                    ),
                                })?;
                        let date = *start + Duration::days(days as i64);
                        Some(match time {
                            Some(t) => format!("{}T{t}", date.format("%Y-%m-%d")),
                            None => date.format("%Y-%m-%d").to_string(),
                        })
                    }
                    _ => None,
                },
                CExpr::Map(r, values, otherwise) => value(r).map(|v| {
                    values
                        .get(v.trim())
                        .or(otherwise.as_ref())
                        .cloned()
                        .unwrap_or_else(|| v.to_string())
                }),
                CExpr::Divide(r, by) => match value(r) {
                    Some(v) => {
                        let n = number(v).ok_or_else(|| MapError {
                            column: first(),
                            message: format!("`{v}` is not a number"),
                        })?;
                        Some(format!("{}", n / by))
                    }
                    None => None,
                },
            };
            out.push(v);
        }
        Ok(out)
    }
}

/// A finite number, with a whole day written `61` or `61.0`.
fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}
