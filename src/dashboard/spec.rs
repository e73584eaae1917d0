//! `dashboards/<name>.yaml`: the raw shape serde reads, and the pure validation that turns it
//! into a [`Dashboard`].
//!
//! Invariants: unknown keys are refused by serde (`deny_unknown_fields`); [`validate`] reports
//! every problem at once, each as `file:line:column: key.path: message`, and does no I/O: the
//! columns of each dataset are computed by the caller (by planning the dataset's SQL) and passed
//! in. A validated dashboard names only columns its datasets have, reads only curated tables
//! (and the two ops tables of the data-quality page, which hold no student data), and fits
//! QuickSight's limits (20 sheets, 75 visuals a sheet).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::yaml::YamlError;

/// Ops tables a dashboard may read: run history, no student data.
pub const OPS_TABLES: &[&str] = &["ops.quality_results", "ops.promotions"];
/// Rows a dataset keeps when it sets no `limit` (a page must stay small on a large lake).
pub const DEFAULT_LIMIT: u64 = 5_000;
/// The most rows a dataset may ask to inline.
pub const MAX_LIMIT: u64 = 50_000;
/// QuickSight's limits, enforced here so a deploy never fails on them.
pub const MAX_SHEETS: usize = 20;
/// See [`MAX_SHEETS`].
pub const MAX_VISUALS_PER_SHEET: usize = 75;

/// A dashboard file as serde reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDashboard {
    /// Title shown on the page and in QuickSight.
    pub title: String,
    /// What the dashboard is for.
    #[serde(default)]
    pub description: String,
    /// Named datasets, each a curated table or a named query, aggregated in SQL.
    pub datasets: BTreeMap<String, RawDataset>,
    /// Filter controls shared by the dashboard's visuals.
    #[serde(default)]
    pub filters: Vec<RawFilter>,
    /// Sheets (QuickSight) / sections (the HTML page).
    pub sheets: Vec<RawSheet>,
}

/// Where a dataset's rows come from and how they are shaped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// A curated table, `curated.<product>` (or one of [`OPS_TABLES`]).
    #[serde(default)]
    pub table: Option<String>,
    /// A named query in `catalog/queries/<name>.sql`.
    #[serde(default)]
    pub query: Option<String>,
    /// Values of the named query's `${param}` placeholders.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// SQL over the source, which is called `src` (default `SELECT * FROM src`).
    #[serde(default)]
    pub sql: Option<String>,
    /// Order of the rows kept (SQL `ORDER BY` text), used with `limit`.
    #[serde(default)]
    pub order_by: Option<String>,
    /// Most rows inlined (default [`DEFAULT_LIMIT`]); the page says when rows were left out.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Count columns whose values 1..small_cell_min are blanked (small-cell suppression).
    #[serde(default)]
    pub suppress: Vec<String>,
}

/// The kind of a filter control.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FilterKind {
    /// One value from a list (a dropdown).
    Select,
    /// A numeric or date range (two inputs).
    Range,
}

/// A filter (and the parameter behind it in QuickSight).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Identifier (also the URL parameter of the page: `?course=MAT101`).
    pub id: String,
    /// Label of the control.
    #[serde(default)]
    pub label: Option<String>,
    /// Column filtered, in every dataset of the visuals it applies to.
    pub column: String,
    /// `select` or `range`.
    #[serde(rename = "type")]
    pub kind: FilterKind,
    /// Visuals it applies to (default: every visual whose dataset has the column).
    #[serde(default)]
    pub visuals: Option<Vec<String>>,
}

/// One sheet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSheet {
    /// Sheet title.
    pub title: String,
    /// What the sheet shows.
    #[serde(default)]
    pub description: String,
    /// Visuals, in reading order.
    pub visuals: Vec<RawVisual>,
}

/// Visual types.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VisualKind {
    /// One number.
    Kpi,
    /// Bars per category.
    Bar,
    /// A line over time (weeks).
    Line,
    /// Binned counts of a number.
    Histogram,
    /// Points, x against y.
    Scatter,
    /// Colored cells, x × y.
    Heatmap,
    /// Box and whiskers of a number per group.
    Boxplot,
    /// A sortable table.
    Table,
}

impl VisualKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kpi => "kpi",
            Self::Bar => "bar",
            Self::Line => "line",
            Self::Histogram => "histogram",
            Self::Scatter => "scatter",
            Self::Heatmap => "heatmap",
            Self::Boxplot => "boxplot",
            Self::Table => "table",
        }
    }
}

/// How a measure is aggregated.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Median.
    Median,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Number of rows (no field needed).
    Count,
}

/// One visual.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVisual {
    /// Identifier, unique in the dashboard.
    pub id: String,
    /// Visual type.
    #[serde(rename = "type")]
    pub kind: VisualKind,
    /// Title (default: the id).
    #[serde(default)]
    pub title: Option<String>,
    /// A sentence under the title.
    #[serde(default)]
    pub description: Option<String>,
    /// Dataset id.
    pub dataset: String,
    /// x column (category, time, binned number, or group).
    #[serde(default)]
    pub x: Option<String>,
    /// y column (measure, or the row category of a heat map).
    #[serde(default)]
    pub y: Option<String>,
    /// Color column (series, or the heat map's measure).
    #[serde(default)]
    pub color: Option<String>,
    /// The KPI's column.
    #[serde(default)]
    pub value: Option<String>,
    /// Aggregation of the measure (bar, line, kpi, heatmap; default mean, or sum for bars).
    #[serde(default)]
    pub agg: Option<Agg>,
    /// Bins of a histogram (default 20).
    #[serde(default)]
    pub bins: Option<u32>,
    /// Columns of a table.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Sort column: a table's initial sort; a bar chart's bar order (its x or y; default: bars
    /// by value, largest first).
    #[serde(default)]
    pub sort: Option<String>,
    /// Draw a bar chart's bars horizontally (many or long categories).
    #[serde(default)]
    pub horizontal: bool,
    /// Sort descending.
    #[serde(default)]
    pub descending: bool,
    /// d3 number format of the measure (`.0%`, `.1f`).
    #[serde(default)]
    pub format: Option<String>,
    /// Visuals filtered by a selection in this one (brush a histogram or scatter, click a bar).
    #[serde(default)]
    pub cross_filter: Vec<String>,
}

/// What a column holds, as a chart sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// A number.
    Number,
    /// A date or timestamp.
    Temporal,
    /// Text.
    Text,
    /// True/false.
    Boolean,
}

/// One column of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ColumnKind,
    /// Whether a number is an integer (QuickSight declares it `INTEGER`, else `DECIMAL`).
    #[serde(skip)]
    pub integer: bool,
}

/// A validated dashboard: the raw shape plus its file, name and each dataset's columns.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// File stem (`attendance`).
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// The definition.
    pub spec: RawDashboard,
    /// Columns of each dataset, by dataset id.
    pub columns: BTreeMap<String, Vec<Column>>,
}

impl Dashboard {
    /// Every visual with its sheet index.
    pub fn visuals(&self) -> impl Iterator<Item = (usize, &RawVisual)> {
        self.spec
            .sheets
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.visuals.iter().map(move |v| (i, v)))
    }

    /// A column of a dataset.
    pub fn column(&self, dataset: &str, column: &str) -> Option<&Column> {
        self.columns.get(dataset)?.iter().find(|c| c.name == column)
    }

    /// The kind of `column` in `dataset` (None when it has no such column).
    pub fn column_kind(&self, dataset: &str, column: &str) -> Option<ColumnKind> {
        self.columns
            .get(dataset)?
            .iter()
            .find(|c| c.name == column)
            .map(|c| c.kind)
    }

    /// Visuals a filter applies to.
    pub fn filter_targets(&self, f: &RawFilter) -> Vec<String> {
        match &f.visuals {
            Some(v) => v.clone(),
            None => self
                .visuals()
                .filter(|(_, v)| self.column_kind(&v.dataset, &f.column).is_some())
                .map(|(_, v)| v.id.clone())
                .collect(),
        }
    }

    /// The curated (or ops) tables the dashboard reads, from its datasets' `table` and the
    /// table names in its named queries' SQL (`queries` maps a query name to its text).
    pub fn tables(&self, queries: &BTreeMap<String, String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for ds in self.spec.datasets.values() {
            if let Some(t) = &ds.table {
                out.insert(t.clone());
            }
            if let Some(text) = ds.query.as_ref().and_then(|q| queries.get(q)) {
                out.extend(table_refs(text));
            }
        }
        out
    }
}

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

/// Turns `(key path, message)` problems into located errors.
pub fn located(path: &Path, text: &str, problems: Vec<(String, String)>) -> Vec<YamlError> {
    problems
        .into_iter()
        .map(|(key_path, message)| {
            let (line, column) = locate(text, &key_path).unzip();
            YamlError {
                path: path.to_path_buf(),
                line,
                column,
                key_path,
                message,
            }
        })
        .collect()
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

/// Finds the 1-based line and column of a key path (`sheets[0].visuals[2].x`) in block-style
/// YAML. Falls back to the deepest ancestor found; `None` when not even the first key is.
pub fn locate(text: &str, key_path: &str) -> Option<(usize, usize)> {
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    let mut segs = Vec::new();
    for part in key_path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            segs.push(Seg::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    // The block being searched: lines [from, to) with content indented more than `parent`.
    let (mut from, mut to, mut parent): (usize, usize, isize) = (0, lines.len(), -1);
    let mut found = None;
    for seg in segs {
        let mut hit = None;
        let mut seen = 0usize;
        let mut item_indent: Option<usize> = None;
        for (n, line) in lines.iter().enumerate().take(to).skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            match seg {
                Seg::Key(k) => {
                    // A key directly in this block: first content at this depth, maybe after "- ".
                    let (ind, body) = match trimmed.strip_prefix("- ") {
                        Some(b) if (indent as isize) == parent => (indent + 2, b),
                        _ => (indent, trimmed),
                    };
                    if (ind as isize) > parent
                        && (body.starts_with(&format!("{k}:"))
                            || body.starts_with(&format!("\"{k}\":")))
                    {
                        hit = Some((n, ind));
                        break;
                    }
                }
                Seg::Index(i) => {
                    if trimmed.starts_with("- ") || trimmed == "-" {
                        let first = *item_indent.get_or_insert(indent);
                        if indent == first {
                            if seen == i {
                                hit = Some((n, indent));
                                break;
                            }
                            seen += 1;
                        }
                    }
                }
            }
        }
        let Some((n, ind)) = hit else { break };
        found = Some((n + 1, ind + 1));
        // The block of this node: following lines indented more than it.
        let end = lines
            .iter()
            .enumerate()
            .skip(n + 1)
            .find(|(_, l)| {
                let t = l.trim_start();
                let indent = l.len() - t.len();
                let content = !t.is_empty() && !t.starts_with('#');
                // A key's list may sit at the key's own indent ("key:\n- item").
                let own_list = matches!(seg, Seg::Key(_)) && indent == ind && t.starts_with("- ");
                content && indent <= ind && !own_list
            })
            .map_or(lines.len(), |(m, _)| m);
        from = n;
        to = end;
        parent = ind as isize;
    }
    found
}

/// Parses a dashboard file's text.
///
/// # Errors
/// The YAML error, located.
pub fn parse(path: &Path, text: &str) -> Result<RawDashboard, YamlError> {
    crate::yaml::parse(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "title: T\ndatasets:\n  a:\n    table: curated.x\nsheets:\n  - title: S\n    visuals:\n      - id: k\n        type: kpi\n        dataset: a\n        value: nope\n      - id: h\n        type: histogram\n        dataset: a\n        x: rate\n";

    fn cols() -> BTreeMap<String, Vec<Column>> {
        let mut m = BTreeMap::new();
        m.insert(
            "a".to_string(),
            vec![
                Column {
                    name: "rate".into(),
                    kind: ColumnKind::Number,
                    integer: false,
                },
                Column {
                    name: "course_id".into(),
                    kind: ColumnKind::Text,
                    integer: false,
                },
            ],
        );
        m
    }

    #[test]
    fn locate_finds_nested_keys() {
        assert_eq!(locate(TEXT, "datasets.a.table"), Some((4, 5)));
        assert_eq!(locate(TEXT, "sheets[0].visuals[0].value"), Some((11, 9)));
        assert_eq!(locate(TEXT, "sheets[0].visuals[1].x"), Some((15, 9)));
        assert_eq!(locate(TEXT, "sheets[0].visuals[1]"), Some((12, 7)));
    }

    #[test]
    fn unknown_column_is_located_and_all_problems_reported() {
        let raw = parse(Path::new("d.yaml"), TEXT).unwrap();
        let mut raw2 = raw.clone();
        raw2.sheets[0].visuals[1].x = Some("course_id".into());
        let errs = validate("d", Path::new("d.yaml"), TEXT, raw, cols(), vec![]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "d.yaml:11:9: sheets[0].visuals[0].value: unknown column `nope` (the dataset has: rate, course_id)"
        );
        let errs = validate("d", Path::new("d.yaml"), TEXT, raw2, cols(), vec![]).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[1].message.contains("must be a number"), "{errs:?}");
    }

    #[test]
    fn raw_and_trusted_sources_are_refused() {
        let ds = RawDataset {
            table: Some("trusted.attendance".into()),
            query: None,
            params: BTreeMap::new(),
            sql: Some("SELECT * FROM raw.attendance".into()),
            order_by: None,
            limit: None,
            suppress: vec![],
        };
        let p = check_source("a", &ds, None);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
