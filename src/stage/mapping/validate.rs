//! `source.map` as written ([`MappingConfig`]) checked into a [`MappingSpec`]: each column's
//! expression parsed from its one-key YAML map, templates split into pieces, lookups named.
//!
//! Invariants: pure (no I/O); every problem is reported, each naming its key
//! (`source.map.columns.<column>...`), not just the first.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{Expr, MappingConfig, MappingSpec, Piece, Target};

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
