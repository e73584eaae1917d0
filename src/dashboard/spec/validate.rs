//! The pure validation of a [`RawDashboard`] into a [`Dashboard`]: sources (curated tables and
//! the two ops tables only), limits, filters and every visual's columns, kinds and
//! aggregations against the columns its dataset has.
//!
//! Invariants: no I/O (the columns of each dataset come from the caller); every problem is
//! reported, each as `(key.path, message)`, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::locate::located;
use super::{
    Agg, Column, ColumnKind, Dashboard, FilterKind, RawDashboard, RawDataset, RawVisual,
    VisualKind, MAX_LIMIT, MAX_SHEETS, MAX_VISUALS_PER_SHEET, OPS_TABLES,
};
use crate::yaml::YamlError;

/// `<stage>.<table>` names in SQL text.
pub fn table_refs(sql: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(raw|trusted|curated|ops)\.([a-z_][a-z0-9_]*)")
        .unwrap_or_else(|_| unreachable!("static regex"));
    re.captures_iter(sql)
        .map(|c| format!("{}.{}", &c[1], &c[2]))
        .collect()
}

/// Checks what a dataset reads before its SQL is planned: a source, curated only.
///
/// # Errors
/// Every problem, as `(key path, message)`.
pub fn check_source(id: &str, ds: &RawDataset, query_text: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let at = |k: &str| format!("datasets.{id}.{k}");
    if !crate::config::is_valid_name(id) {
        out.push((
            format!("datasets.{id}"),
            "a dataset id is lowercase letters, digits and `_`".into(),
        ));
    }
    match (&ds.table, &ds.query) {
        (Some(_), Some(_)) => {
            out.push((at("query"), "give `table` or `query`, not both".to_string()))
        }
        (None, None) => out.push((
            format!("datasets.{id}"),
            "give `table: curated.<product>` or `query: <named query>`".to_string(),
        )),
        (Some(t), None) => {
            if !(t.starts_with("curated.") || OPS_TABLES.contains(&t.as_str())) {
                out.push((
                    at("table"),
                    format!(
                        "`{t}`: dashboards read curated tables only (or {})",
                        OPS_TABLES.join(", ")
                    ),
                ));
            }
            if !ds.params.is_empty() {
                out.push((at("params"), "`params` go with a named `query`".into()));
            }
        }
        (None, Some(_)) => {
            if let Some(text) = query_text {
                for t in table_refs(text) {
                    if !(t.starts_with("curated.") || OPS_TABLES.contains(&t.as_str())) {
                        out.push((
                            at("query"),
                            format!("the query reads `{t}`: dashboards read curated tables only"),
                        ));
                    }
                }
            }
        }
    }
    if let Some(sql) = &ds.sql {
        for t in table_refs(sql) {
            if !(t.starts_with("curated.") || OPS_TABLES.contains(&t.as_str())) {
                out.push((
                    at("sql"),
                    format!("reads `{t}`: dashboards read curated tables only"),
                ));
            }
        }
        if sql.contains(';') {
            out.push((at("sql"), "one SELECT, no `;`".into()));
        }
    }
    if let Some(l) = ds.limit {
        if l == 0 || l > MAX_LIMIT {
            out.push((at("limit"), format!("must be 1..={MAX_LIMIT}")));
        }
    }
    out
}

/// Validates a parsed dashboard against its datasets' columns. `problems` holds what the
/// caller already found (sources refused, SQL that did not plan: those datasets are missing from
/// `columns` and their visuals' columns are not checked). `text` is the file's text, used to
/// locate problems.
///
/// # Errors
/// Every problem, each located in the file.
pub fn validate(
    name: &str,
    path: &Path,
    text: &str,
    raw: RawDashboard,
    columns: BTreeMap<String, Vec<Column>>,
    mut problems: Vec<(String, String)>,
) -> Result<Dashboard, Vec<YamlError>> {
    let mut p = |k: String, m: String| problems.push((k, m));
    let ok_cols = columns;
    for (id, ds) in &raw.datasets {
        if let Some(cols) = ok_cols.get(id) {
            for (i, s) in ds.suppress.iter().enumerate() {
                match cols.iter().find(|c| &c.name == s) {
                    None => p(
                        format!("datasets.{id}.suppress[{i}]"),
                        unknown_column(s, cols),
                    ),
                    Some(c) if c.kind != ColumnKind::Number => p(
                        format!("datasets.{id}.suppress[{i}]"),
                        format!("`{s}` is not a count"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
    if raw.sheets.is_empty() || raw.sheets.len() > MAX_SHEETS {
        p("sheets".into(), format!("1..={MAX_SHEETS} sheets"));
    }
    // Visuals.
    let mut ids: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (si, sheet) in raw.sheets.iter().enumerate() {
        if sheet.visuals.is_empty() || sheet.visuals.len() > MAX_VISUALS_PER_SHEET {
            p(
                format!("sheets[{si}].visuals"),
                format!("1..={MAX_VISUALS_PER_SHEET} visuals a sheet"),
            );
        }
        for (vi, v) in sheet.visuals.iter().enumerate() {
            let at = |k: &str| format!("sheets[{si}].visuals[{vi}].{k}");
            if !crate::config::is_valid_name(&v.id) {
                p(
                    at("id"),
                    "a visual id is lowercase letters, digits and `_`".into(),
                );
            }
            if ids.insert(v.id.clone(), (si, vi)).is_some() {
                p(at("id"), format!("visual id `{}` is used twice", v.id));
            }
            if !raw.datasets.contains_key(&v.dataset) {
                p(
                    at("dataset"),
                    format!(
                        "no dataset `{}` (datasets: {})",
                        v.dataset,
                        raw.datasets.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            }
            let cols = ok_cols.get(&v.dataset);
            for (key, problem) in check_visual(v, cols) {
                p(at(&key), problem);
            }
        }
    }
    // Cross-filters.
    let all: Vec<&RawVisual> = raw.sheets.iter().flat_map(|s| s.visuals.iter()).collect();
    for (si, sheet) in raw.sheets.iter().enumerate() {
        for (vi, v) in sheet.visuals.iter().enumerate() {
            if v.cross_filter.is_empty() {
                continue;
            }
            let at = |i: usize| format!("sheets[{si}].visuals[{vi}].cross_filter[{i}]");
            if !matches!(
                v.kind,
                VisualKind::Histogram | VisualKind::Bar | VisualKind::Scatter
            ) {
                p(
                    format!("sheets[{si}].visuals[{vi}].cross_filter"),
                    "only a histogram, scatter (brush) or bar (click) filters other visuals".into(),
                );
                continue;
            }
            let Some(field) = &v.x else { continue };
            for (i, t) in v.cross_filter.iter().enumerate() {
                match all.iter().find(|o| &o.id == t) {
                    None => p(at(i), format!("no visual `{t}`")),
                    Some(o) if o.id == v.id => p(at(i), "a visual cannot filter itself".into()),
                    Some(_) if !sheet.visuals.iter().any(|o| &o.id == t) => p(
                        at(i),
                        format!("`{t}` is on another sheet: a selection filters visuals of its own sheet (as in QuickSight)"),
                    ),
                    Some(o) => {
                        if let Some(cols) = ok_cols.get(&o.dataset) {
                            if !cols.iter().any(|c| &c.name == field) {
                                p(
                                    at(i),
                                    format!(
                                        "`{t}` cannot be filtered by `{field}`: its dataset `{}` has no such column",
                                        o.dataset
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    // Filters.
    let mut fids = BTreeSet::new();
    for (fi, f) in raw.filters.iter().enumerate() {
        let at = |k: &str| format!("filters[{fi}].{k}");
        if !crate::config::is_valid_name(&f.id) {
            p(
                at("id"),
                "a filter id is lowercase letters, digits and `_`".into(),
            );
        }
        if !fids.insert(f.id.clone()) {
            p(at("id"), format!("filter id `{}` is used twice", f.id));
        }
        let kinds: Vec<ColumnKind> = ok_cols
            .values()
            .filter_map(|cols| cols.iter().find(|c| c.name == f.column).map(|c| c.kind))
            .collect();
        if kinds.is_empty() && ok_cols.len() == raw.datasets.len() {
            p(
                at("column"),
                format!("no dataset of this dashboard has a column `{}`", f.column),
            );
        }
        if f.kind == FilterKind::Range
            && kinds
                .iter()
                .any(|k| !matches!(k, ColumnKind::Number | ColumnKind::Temporal))
        {
            p(
                at("type"),
                format!(
                    "a range filter needs a number or date column; `{}` is not",
                    f.column
                ),
            );
        }
        if let Some(vs) = &f.visuals {
            for (i, t) in vs.iter().enumerate() {
                match all.iter().find(|o| &o.id == t) {
                    None => p(
                        format!("filters[{fi}].visuals[{i}]"),
                        format!("no visual `{t}`"),
                    ),
                    Some(o) => {
                        if let Some(cols) = ok_cols.get(&o.dataset) {
                            if !cols.iter().any(|c| c.name == f.column) {
                                p(
                                    format!("filters[{fi}].visuals[{i}]"),
                                    format!(
                                        "`{t}` reads dataset `{}`, which has no column `{}`",
                                        o.dataset, f.column
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Dashboard {
            name: name.to_string(),
            path: path.to_path_buf(),
            spec: raw,
            columns: ok_cols,
        })
    } else {
        Err(located(path, text, problems))
    }
}

fn unknown_column(name: &str, cols: &[Column]) -> String {
    format!(
        "unknown column `{name}` (the dataset has: {})",
        cols.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Problems of one visual, as `(key under the visual, message)`.
fn check_visual(v: &RawVisual, cols: Option<&Vec<Column>>) -> Vec<(String, String)> {
    use VisualKind as K;
    let mut out = Vec::new();
    let count = v.agg == Some(Agg::Count);
    // (key, value, needed, must be a number)
    let needs: [(&str, &Option<String>, bool, bool); 4] = match v.kind {
        K::Kpi => [
            ("value", &v.value, !count, true),
            ("x", &v.x, false, false),
            ("y", &v.y, false, false),
            ("color", &v.color, false, false),
        ],
        K::Bar | K::Line => [
            ("x", &v.x, true, false),
            ("y", &v.y, !count, true),
            ("color", &v.color, false, false),
            ("value", &v.value, false, false),
        ],
        K::Histogram => [
            ("x", &v.x, true, true),
            ("color", &v.color, false, false),
            ("y", &v.y, false, false),
            ("value", &v.value, false, false),
        ],
        K::Scatter => [
            ("x", &v.x, true, true),
            ("y", &v.y, true, true),
            ("color", &v.color, false, false),
            ("value", &v.value, false, false),
        ],
        K::Heatmap => [
            ("x", &v.x, true, false),
            ("y", &v.y, true, false),
            ("color", &v.color, true, true),
            ("value", &v.value, false, false),
        ],
        K::Boxplot => [
            ("x", &v.x, true, false),
            ("y", &v.y, true, true),
            ("color", &v.color, false, false),
            ("value", &v.value, false, false),
        ],
        K::Table => [
            ("x", &v.x, false, false),
            ("y", &v.y, false, false),
            ("color", &v.color, false, false),
            ("value", &v.value, false, false),
        ],
    };
    let allowed: &[&str] = match v.kind {
        K::Kpi => &["value"],
        K::Bar | K::Line | K::Scatter | K::Boxplot => &["x", "y", "color"],
        K::Histogram => &["x", "color"],
        K::Heatmap => &["x", "y", "color"],
        K::Table => &[],
    };
    for (key, val, needed, numeric) in needs {
        match val {
            None if needed => out.push((
                key.to_string(),
                format!("a {} needs `{key}`", v.kind.as_str()),
            )),
            Some(_) if !allowed.contains(&key) => out.push((
                key.to_string(),
                format!("a {} has no `{key}`", v.kind.as_str()),
            )),
            Some(c) => {
                if let Some(cols) = cols {
                    match cols.iter().find(|x| &x.name == c) {
                        None => out.push((key.to_string(), unknown_column(c, cols))),
                        Some(col) if numeric && col.kind != ColumnKind::Number => out.push((
                            key.to_string(),
                            format!(
                                "`{c}` is {}; the {} of a {} must be a number",
                                match col.kind {
                                    ColumnKind::Text => "text",
                                    ColumnKind::Temporal => "a date",
                                    ColumnKind::Boolean => "true/false",
                                    ColumnKind::Number => "a number",
                                },
                                key,
                                v.kind.as_str()
                            ),
                        )),
                        Some(_) => {}
                    }
                }
            }
            None => {}
        }
    }
    if v.kind == K::Table {
        if v.columns.is_empty() {
            out.push(("columns".into(), "a table needs `columns`".into()));
        }
        if let Some(cols) = cols {
            for (i, c) in v.columns.iter().enumerate() {
                if !cols.iter().any(|x| &x.name == c) {
                    out.push((format!("columns[{i}]"), unknown_column(c, cols)));
                }
            }
            if let Some(s) = &v.sort {
                if !v.columns.contains(s) {
                    out.push((
                        "sort".into(),
                        format!("`{s}` is not one of the table's columns"),
                    ));
                }
            }
        }
    } else {
        if !v.columns.is_empty() {
            out.push(("columns".into(), "only a table has `columns`".into()));
        }
        match (&v.sort, v.kind) {
            (Some(s), K::Bar) if Some(s) != v.x.as_ref() && Some(s) != v.y.as_ref() => out.push((
                "sort".into(),
                format!("a bar chart sorts by its x or its y, not `{s}`"),
            )),
            (Some(_), K::Bar) | (None, _) => {}
            (Some(_), _) => out.push((
                "sort".into(),
                "only a table or a bar chart has `sort`".into(),
            )),
        }
    }
    if v.horizontal && v.kind != K::Bar {
        out.push(("horizontal".into(), "only a bar chart is horizontal".into()));
    }
    if v.bins.is_some() && v.kind != K::Histogram {
        out.push(("bins".into(), "only a histogram has `bins`".into()));
    }
    if let Some(b) = v.bins {
        if !(2..=100).contains(&b) {
            out.push(("bins".into(), "2..=100 bins".into()));
        }
    }
    if v.agg.is_some() && !matches!(v.kind, K::Kpi | K::Bar | K::Line | K::Heatmap) {
        out.push((
            "agg".into(),
            format!("a {} does not aggregate", v.kind.as_str()),
        ));
    }
    out
}
