//! `dashboards/<name>.yaml`: the raw shape serde reads, and the pure validation that turns it
//! into a [`Dashboard`].
//!
//! Invariants: unknown keys are refused by serde (`deny_unknown_fields`); [`validate`] reports
//! every problem at once, each as `file:line:column: key.path: message`, and does no I/O: the
//! columns of each dataset are computed by the caller (by planning the dataset's SQL) and passed
//! in. A validated dashboard names only columns its datasets have, reads only curated tables
//! (and the two ops tables of the data-quality page, which hold no student data), and fits
//! QuickSight's limits (20 sheets, 75 visuals a sheet).
//!
//! Files: [`validate`](mod@validate) checks a raw dashboard, [`locate`](mod@locate) finds a key
//! path's line and column; this file holds the raw shapes, the validated [`Dashboard`] and
//! [`parse`].

mod locate;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::yaml::YamlError;

pub use locate::{locate, located};
pub use validate::{check_source, table_refs, validate};

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
