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

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

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

const EXPR_KEYS: &[&str] = &[
    "template",
    "value",
    "day",
    "start",
    "time",
    "map",
    "values",
    "otherwise",
    "divide",
    "by",
    "when",
];

fn parse_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Lit(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{t}`: `{{` without a closing `}}`"))?;
        let name = after[..close].trim();
        if name.is_empty() {
            return Err(format!("`{t}`: empty `{{}}`"));
        }
        out.push(Piece::Col(name.to_string()));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_string()));
    }
    if !out.iter().any(|p| matches!(p, Piece::Col(_))) {
        return Err(format!(
            "`{t}` names no column (use `value:` for a constant)"
        ));
    }
    Ok(out)
}

fn text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn expr(
    at: &str,
    v: &serde_yaml::Value,
    problems: &mut Vec<String>,
) -> Option<(Expr, Option<String>)> {
    let m = match v {
        serde_yaml::Value::String(s) if !s.trim().is_empty() => {
            return Some((Expr::Copy(s.trim().to_string()), None))
        }
        serde_yaml::Value::Mapping(m) => m,
        // `~`: the column has no source and stays empty.
        serde_yaml::Value::Null => return Some((Expr::Value(String::new()), None)),
        _ => {
            problems.push(format!(
                "{at}: expected a column name or a map with one of template, value, day, map, divide"
            ));
            return None;
        }
    };
    let mut fields: BTreeMap<String, serde_yaml::Value> = BTreeMap::new();
    for (k, val) in m {
        let Some(k) = text(k) else {
            problems.push(format!("{at}: keys must be text"));
            return None;
        };
        if !EXPR_KEYS.contains(&k.as_str()) {
            problems.push(format!(
                "{at}.{k}: unknown key, expected one of {}",
                EXPR_KEYS.join(", ")
            ));
            return None;
        }
        fields.insert(k, val.clone());
    }
    let get = |k: &str| fields.get(k).and_then(text);
    let kinds: Vec<&str> = ["template", "value", "day", "map", "divide"]
        .into_iter()
        .filter(|k| fields.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        problems.push(format!(
            "{at}: expected exactly one of template, value, day, map, divide, found {}",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        ));
        return None;
    }
    let allowed: &[&str] = match kinds[0] {
        "day" => &["day", "start", "time", "when"],
        "map" => &["map", "values", "otherwise", "when"],
        "divide" => &["divide", "by", "when"],
        k => &[k, "when"][..],
    };
    for k in fields.keys() {
        if !allowed.contains(&k.as_str()) {
            problems.push(format!("{at}.{k}: not allowed with `{}`", kinds[0]));
            return None;
        }
    }
    let need = |k: &str, problems: &mut Vec<String>| -> Option<String> {
        let v = get(k);
        if v.is_none() {
            problems.push(format!("{at}.{k}: required with `{}` (a text)", kinds[0]));
        }
        v
    };
    let e = match kinds[0] {
        "template" => match parse_template(&need("template", problems)?) {
            Ok(p) => Expr::Template(p),
            Err(e) => {
                problems.push(format!("{at}.template: {e}"));
                return None;
            }
        },
        "value" => Expr::Value(need("value", problems)?),
        "day" => Expr::Day {
            day: need("day", problems)?,
            start: need("start", problems)?,
            time: get("time"),
        },
        "map" => {
            let column = need("map", problems)?;
            let mut values = BTreeMap::new();
            match fields.get("values") {
                Some(serde_yaml::Value::Mapping(vm)) => {
                    for (k, v) in vm {
                        match (text(k), text(v)) {
                            (Some(k), Some(v)) => {
                                values.insert(k, v);
                            }
                            _ => problems.push(format!("{at}.values: expected text: text")),
                        }
                    }
                }
                _ => {
                    problems.push(format!(
                        "{at}.values: required with `map` (a map of text to text)"
                    ));
                    return None;
                }
            }
            Expr::Map {
                column,
                values,
                otherwise: get("otherwise"),
            }
        }
        _ => {
            let column = need("divide", problems)?;
            let by = match fields.get("by") {
                Some(serde_yaml::Value::Number(n)) => n.as_f64().filter(|b| *b != 0.0),
                _ => None,
            };
            let Some(by) = by else {
                problems.push(format!("{at}.by: required with `divide` (a number, not 0)"));
                return None;
            };
            Expr::Divide { column, by }
        }
    };
    Some((e, get("when")))
}

/// Checks `source.map`; pure, reports every problem as `source.map.<key>: message`.
///
/// # Errors
/// Every problem found.
pub fn validate(raw: &MappingConfig) -> Result<MappingSpec, Vec<String>> {
    let mut problems = Vec::new();
    let mut start_dates = HashMap::new();
    for (k, v) in &raw.start_dates {
        match NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
            Ok(d) => {
                start_dates.insert(k.clone(), d);
            }
            Err(_) => problems.push(format!(
                "source.map.start_dates.{k}: `{v}` is not a date (YYYY-MM-DD)"
            )),
        }
    }
    let mut names = Vec::new();
    for (i, l) in raw.lookups.iter().enumerate() {
        let at = format!("source.map.lookups[{i}]");
        if l.name.is_empty() || l.name.contains('.') {
            problems.push(format!(
                "{at}.name: `{}` must be non-empty without `.`",
                l.name
            ));
        }
        if names.contains(&l.name) {
            problems.push(format!("{at}.name: `{}` is used twice", l.name));
        }
        names.push(l.name.clone());
        if l.key.is_empty() {
            problems.push(format!("{at}.key: name at least one column"));
        }
        if l.file.trim().is_empty() {
            problems.push(format!("{at}.file: a file name pattern is required"));
        }
    }
    if raw.columns.is_empty() {
        problems.push("source.map.columns: map at least one column".to_string());
    }
    let mut targets = Vec::new();
    for (col, v) in &raw.columns {
        let at = format!("source.map.columns.{col}");
        if let Some((expr, when)) = expr(&at, v, &mut problems) {
            let uses_day = matches!(expr, Expr::Day { .. });
            let t = Target {
                column: col.clone(),
                expr,
                when,
            };
            for r in t.reads() {
                if let Some((prefix, _)) = r.split_once('.') {
                    if !names.iter().any(|n| n == prefix) {
                        problems.push(format!(
                            "{at}: `{r}` names lookup `{prefix}`, which source.map.lookups does not declare"
                        ));
                    }
                }
            }
            if uses_day && raw.start_dates.is_empty() {
                problems.push(format!(
                    "{at}: a `day` expression needs source.map.start_dates"
                ));
            }
            targets.push(t);
        }
    }
    if problems.is_empty() {
        Ok(MappingSpec {
            null_tokens: raw.null_tokens.clone(),
            start_dates,
            lookups: raw.lookups.clone(),
            targets,
        })
    } else {
        Err(problems)
    }
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
fn for_unmapped(spec: &MappingSpec, outputs: &[String], problems: &mut Vec<String>) -> bool {
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

/// A finite number, with a whole day written `61` or `61.0`.
fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|f| f.is_finite())
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
