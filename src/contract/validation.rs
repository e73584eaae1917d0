//! Checking a parsed contract ([`validate`]): what the YAML shape cannot say — the dataset name,
//! the raw and trusted schema objects, each column's privacy class, treatment and type, the
//! primary key, and medallion's `customProperties`.
//!
//! Invariants: pure, no I/O; every problem is reported (as `key.path: message`), not only the
//! first; a direct identifier is never kept in clear; an unknown custom property key is
//! refused.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::raw::{CustomProperty, RawContract, RawProperty, RawSchemaObject};
use super::{Column, ColumnType, Contract, Privacy, SourceColumn, Treatment};

fn custom<'a>(props: &'a [CustomProperty], key: &str) -> Option<&'a serde_yaml::Value> {
    props.iter().find(|p| p.property == key).map(|p| &p.value)
}

fn custom_str(props: &[CustomProperty], key: &str) -> Option<String> {
    custom(props, key).and_then(|v| match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn number(v: &serde_yaml::Value) -> Option<f64> {
    match v {
        serde_yaml::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

const KNOWN_PROPERTY_KEYS: &[&str] = &["privacy", "treatment", "allowedValues", "nullValues"];
const KNOWN_CONTRACT_KEYS: &[&str] = &["owner", "newestWinsBy"];

/// Checks a parsed contract and builds the validated [`Contract`]. Pure: no I/O.
///
/// # Errors
/// Every problem found, as `key.path: message`.
pub fn validate(raw: RawContract, path: &Path) -> std::result::Result<Contract, Vec<String>> {
    let mut problems = Vec::new();
    let dataset = raw.name.clone();
    if !crate::vocab::is_valid_name(&dataset) {
        problems.push(format!(
            "name: `{dataset}` is not a valid dataset name (lowercase letters, digits, `_`)"
        ));
    }
    if raw.api_version != "v3.0.2" && raw.api_version != "v3.0.1" && raw.api_version != "v3.0.0" {
        problems.push(format!(
            "apiVersion: expected v3.0.x, found `{}`",
            raw.api_version
        ));
    }
    if raw.kind != "DataContract" {
        problems.push(format!(
            "kind: expected `DataContract`, found `{}`",
            raw.kind
        ));
    }
    for (i, p) in raw.custom_properties.iter().enumerate() {
        if !KNOWN_CONTRACT_KEYS.contains(&p.property.as_str()) {
            problems.push(format!(
                "customProperties[{i}].property: unknown medallion setting `{}`, expected one of {}",
                p.property,
                KNOWN_CONTRACT_KEYS.join(", ")
            ));
        }
    }
    let find = |suffix: &str| -> Option<(usize, &RawSchemaObject)> {
        let want = format!("{dataset}_{suffix}");
        raw.schema.iter().enumerate().find(|(_, s)| s.name == want)
    };
    let source = match find("raw") {
        Some((i, obj)) => source_columns(i, obj, &mut problems),
        None => {
            problems.push(format!("schema: no schema object named `{dataset}_raw`"));
            Vec::new()
        }
    };
    let trusted = match find("trusted") {
        Some((i, obj)) => trusted_columns(i, obj, &source, &mut problems),
        None => {
            problems.push(format!(
                "schema: no schema object named `{dataset}_trusted`"
            ));
            Vec::new()
        }
    };
    let primary_key = match find("trusted") {
        Some((_, obj)) => {
            let mut pk: Vec<(i64, String)> = obj
                .properties
                .iter()
                .filter(|p| p.primary_key == Some(true))
                .map(|p| (p.primary_key_position.unwrap_or(1), p.name.clone()))
                .collect();
            pk.sort();
            pk.into_iter().map(|(_, n)| n).collect()
        }
        None => Vec::new(),
    };
    if primary_key.is_empty() && !trusted.is_empty() {
        problems.push(format!(
            "schema[{dataset}_trusted]: no property has `primaryKey: true`"
        ));
    }
    let newest_wins_by = custom_str(&raw.custom_properties, "newestWinsBy");
    if let Some(col) = &newest_wins_by {
        match trusted.iter().find(|c| &c.name == col) {
            None => problems.push(format!(
                "customProperties.newestWinsBy: `{col}` is not a trusted column"
            )),
            Some(c)
                if !matches!(
                    c.ty,
                    Some(ColumnType::Timestamp | ColumnType::Date | ColumnType::Integer)
                ) =>
            {
                problems.push(format!(
                    "customProperties.newestWinsBy: `{col}` must be a timestamp, date or integer"
                ))
            }
            Some(_) => {}
        }
    }
    let freshness_hours = raw
        .sla_properties
        .iter()
        .find(|s| s.property == "freshness")
        .and_then(|s| {
            number(&s.value).map(|v| {
                if s.unit.as_deref() == Some("d") {
                    v * 24.0
                } else {
                    v
                }
            })
        });
    let owner = custom_str(&raw.custom_properties, "owner")
        .or_else(|| raw.team.first().map(|t| t.username.clone()))
        .unwrap_or_default();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Contract {
        dataset,
        version: raw.version,
        owner,
        description: raw.description.and_then(|d| d.purpose).unwrap_or_default(),
        source,
        trusted,
        primary_key,
        newest_wins_by,
        freshness_hours,
        path: path.to_path_buf(),
    })
}

fn source_columns(
    i: usize,
    obj: &RawSchemaObject,
    problems: &mut Vec<String>,
) -> Vec<SourceColumn> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (j, p) in obj.properties.iter().enumerate() {
        let at = format!("schema[{i}].properties[{j}]");
        if !seen.insert(p.name.clone()) {
            problems.push(format!("{at}.name: duplicate column `{}`", p.name));
        }
        check_custom_keys(&at, p, problems);
        let privacy = match custom_str(&p.custom_properties, "privacy").as_deref() {
            None | Some("none") => Privacy::None,
            Some("direct") => Privacy::Direct,
            Some("indirect") => Privacy::Indirect,
            Some(other) => {
                problems.push(format!(
                    "{at}: privacy `{other}` is not one of direct, indirect, none"
                ));
                Privacy::None
            }
        };
        let treatment = match custom_str(&p.custom_properties, "treatment").as_deref() {
            None | Some("keep") => Treatment::Keep,
            Some("pseudonymize") => Treatment::Pseudonymize,
            Some("drop") => Treatment::Drop,
            Some("mask") => Treatment::Mask,
            Some("generalize") => Treatment::Generalize,
            Some(other) => {
                problems.push(format!(
                    "{at}: treatment `{other}` is not one of pseudonymize, drop, mask, generalize, keep"
                ));
                Treatment::Keep
            }
        };
        if privacy == Privacy::Direct && treatment == Treatment::Keep {
            problems.push(format!(
                "{at}: `{}` is a direct identifier and must be pseudonymized, dropped, masked or generalized",
                p.name
            ));
        }
        let pattern = p
            .logical_type_options
            .as_ref()
            .and_then(|o| o.pattern.clone());
        if let Some(re) = &pattern {
            if let Err(e) = regex::Regex::new(re) {
                problems.push(format!(
                    "{at}.logicalTypeOptions.pattern: invalid regex: {e}"
                ));
            }
        }
        out.push(SourceColumn {
            name: p.name.clone(),
            privacy,
            treatment,
            required: p.required.unwrap_or(false),
            pattern,
            description: p.description.clone().unwrap_or_default(),
        });
    }
    if out.is_empty() {
        problems.push(format!(
            "schema[{i}].properties: a raw schema needs at least one column"
        ));
    }
    out
}

fn check_custom_keys(at: &str, p: &RawProperty, problems: &mut Vec<String>) {
    for (k, c) in p.custom_properties.iter().enumerate() {
        if !KNOWN_PROPERTY_KEYS.contains(&c.property.as_str()) {
            problems.push(format!(
                "{at}.customProperties[{k}].property: unknown medallion setting `{}`, expected one of {}",
                c.property,
                KNOWN_PROPERTY_KEYS.join(", ")
            ));
        }
    }
}

fn trusted_columns(
    i: usize,
    obj: &RawSchemaObject,
    source: &[SourceColumn],
    problems: &mut Vec<String>,
) -> Vec<Column> {
    let by_name: HashMap<&str, &SourceColumn> =
        source.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut out = Vec::new();
    for (j, p) in obj.properties.iter().enumerate() {
        let at = format!("schema[{i}].properties[{j}]");
        check_custom_keys(&at, p, problems);
        let physical = p
            .physical_type
            .clone()
            .unwrap_or_else(|| p.logical_type.clone().unwrap_or_default());
        let ty = ColumnType::parse(&physical);
        if ty.is_none() {
            problems.push(format!(
                "{at}.physicalType: `{physical}` is not one of string, integer, double, date, timestamp, boolean"
            ));
        }
        let src = by_name.get(p.name.as_str());
        match src {
            None => problems.push(format!(
                "{at}.name: `{}` is not a column of the raw schema",
                p.name
            )),
            Some(s) if s.treatment == Treatment::Drop => problems.push(format!(
                "{at}.name: `{}` is dropped on the way into raw and cannot be a trusted column",
                p.name
            )),
            Some(s) if s.treatment == Treatment::Pseudonymize && ty != Some(ColumnType::String) => {
                problems.push(format!(
                    "{at}.physicalType: `{}` is pseudonymized, so its trusted type must be string",
                    p.name
                ))
            }
            Some(_) => {}
        }
        let opts = p.logical_type_options.clone().unwrap_or_default();
        if let Some(re) = &opts.pattern {
            if let Err(e) = regex::Regex::new(re) {
                problems.push(format!(
                    "{at}.logicalTypeOptions.pattern: invalid regex: {e}"
                ));
            }
        }
        let allowed_values = text_list(
            custom(&p.custom_properties, "allowedValues"),
            &format!("{at}.customProperties.allowedValues: expected a list of values"),
            problems,
        );
        let null_values = text_list(
            custom(&p.custom_properties, "nullValues"),
            &format!("{at}.customProperties.nullValues: expected a list of texts"),
            problems,
        );
        let minimum = opts.minimum.as_ref().and_then(number);
        let maximum = opts.maximum.as_ref().and_then(number);
        if let (Some(lo), Some(hi)) = (minimum, maximum) {
            if lo > hi {
                problems.push(format!(
                    "{at}.logicalTypeOptions: minimum {lo} is above maximum {hi}"
                ));
            }
        }
        out.push(Column {
            name: p.name.clone(),
            ty,
            required: p.required.unwrap_or(false) || p.primary_key == Some(true),
            unique: p.unique.unwrap_or(false) && p.primary_key != Some(true),
            minimum,
            maximum,
            pattern: opts.pattern,
            allowed_values,
            null_values,
            description: p.description.clone().unwrap_or_default(),
            privacy: src.map(|s| s.privacy),
        });
    }
    out
}

/// The texts of a YAML list of strings and numbers (a custom property); anything else is a
/// problem named by `problem`.
fn text_list(
    value: Option<&serde_yaml::Value>,
    problem: &str,
    problems: &mut Vec<String>,
) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(serde_yaml::Value::Sequence(items)) => items
            .iter()
            .filter_map(|v| match v {
                serde_yaml::Value::String(s) => Some(s.clone()),
                serde_yaml::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(_) => {
            problems.push(problem.to_string());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    const GOOD: &str = include_str!("../../contracts/attendance.yaml");

    fn parse(text: &str) -> std::result::Result<Contract, String> {
        let raw: RawContract = yaml::parse(Path::new("c.yaml"), text).map_err(|e| e.to_string())?;
        validate(raw, Path::new("c.yaml")).map_err(|p| p.join("\n"))
    }

    #[test]
    fn shipped_attendance_contract_is_valid() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.dataset, "attendance");
        assert_eq!(c.primary_key, vec!["record_id".to_string()]);
        assert_eq!(c.newest_wins_by.as_deref(), Some("recorded_at"));
        assert!(c.raw_columns().all(|s| s.name != "student_name"));
        let status = c.column("status").unwrap();
        assert_eq!(
            status.allowed_values,
            ["present", "absent", "late", "excused"]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = GOOD
            .replace("value: pseudonymize", "value: scramble")
            .replace("physicalType: integer", "physicalType: int128");
        let err = parse(&bad).unwrap_err();
        assert!(err.contains("treatment `scramble`"), "{err}");
        assert!(err.contains("`int128` is not one of"), "{err}");
    }

    #[test]
    fn direct_identifier_kept_in_clear_is_refused() {
        let bad = GOOD.replacen("value: drop", "value: keep", 1);
        let err = parse(&bad).unwrap_err();
        assert!(err.contains("direct identifier"), "{err}");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let bad = GOOD.replacen(
            "  - name: attendance_trusted",
            "  - nmae: attendance_trusted",
            1,
        );
        let err = parse(&bad).unwrap_err();
        assert!(err.starts_with("c.yaml:"), "{err}");
        assert!(err.contains("unknown field `nmae`"), "{err}");
    }
}
