//! The `CreateDashboard` input of one dashboard YAML: its `Definition` (sheets, visuals,
//! filter groups, parameters and controls, cross-filter actions) as JSON.
//!
//! Invariants: pure — no AWS call; ids of sheets, visuals and filters are the YAML's; every
//! resource grants the target's principal the dashboard actions.

use serde_json::{json, Map, Value};

use super::{data_set_id, permissions, Target, DASHBOARD_ACTIONS};
use crate::dashboard::spec::{Agg, ColumnKind, Dashboard, FilterKind, RawVisual, VisualKind};

fn col(ds: &str, c: &str) -> Value {
    json!({"DataSetIdentifier": ds, "ColumnName": c})
}

fn dimension(d: &Dashboard, v: &RawVisual, c: &str, role: &str) -> Value {
    let id = format!("{}.{role}.{c}", v.id);
    match d.column_kind(&v.dataset, c) {
        Some(ColumnKind::Temporal) => json!({"DateDimensionField": {
            "FieldId": id, "Column": col(&v.dataset, c), "DateGranularity": "WEEK"}}),
        Some(ColumnKind::Number) => json!({"NumericalDimensionField": {
            "FieldId": id, "Column": col(&v.dataset, c)}}),
        _ => json!({"CategoricalDimensionField": {"FieldId": id, "Column": col(&v.dataset, c)}}),
    }
}

fn measure(v: &RawVisual, c: Option<&str>, default: Agg, count_of: &str) -> Value {
    let agg = v.agg.unwrap_or(default);
    match (agg, c) {
        (Agg::Count, _) | (_, None) => json!({"CategoricalMeasureField": {
            "FieldId": format!("{}.count.{count_of}", v.id),
            "Column": col(&v.dataset, count_of), "AggregationFunction": "COUNT"}}),
        (a, Some(c)) => json!({"NumericalMeasureField": {
            "FieldId": format!("{}.measure.{c}", v.id),
            "Column": col(&v.dataset, c),
            "AggregationFunction": {"SimpleNumericalAggregation": match a {
                Agg::Sum => "SUM", Agg::Mean => "AVERAGE", Agg::Median => "MEDIAN",
                Agg::Min => "MIN", Agg::Max => "MAX", Agg::Count => "COUNT" }}}}),
    }
}

fn visual(d: &Dashboard, v: &RawVisual, sheet: &[RawVisual]) -> Value {
    let x = v.x.as_deref().unwrap_or_default();
    let y = v.y.as_deref();
    let colors = |v: &RawVisual| -> Vec<Value> {
        v.color
            .as_deref()
            .map(|c| vec![dimension(d, v, c, "color")])
            .unwrap_or_default()
    };
    let (key, config) = match v.kind {
        VisualKind::Kpi => (
            "KPIVisual",
            json!({"FieldWells": {"Values": [measure(v, v.value.as_deref(), Agg::Mean,
                v.value.as_deref().unwrap_or_default())]}}),
        ),
        VisualKind::Bar => (
            "BarChartVisual",
            json!({"FieldWells": {"BarChartAggregatedFieldWells": {
                "Category": [dimension(d, v, x, "x")],
                "Values": [measure(v, y, Agg::Sum, x)],
                "Colors": colors(v)}},
                "Orientation": if v.horizontal { "HORIZONTAL" } else { "VERTICAL" }}),
        ),
        VisualKind::Line => (
            "LineChartVisual",
            json!({"FieldWells": {"LineChartAggregatedFieldWells": {
                "Category": [dimension(d, v, x, "x")],
                "Values": [measure(v, y, Agg::Mean, x)],
                "Colors": colors(v)}}}),
        ),
        VisualKind::Histogram => (
            "HistogramVisual",
            json!({"FieldWells": {"HistogramAggregatedFieldWells": {"Values": [{"NumericalMeasureField": {
                    "FieldId": format!("{}.x.{x}", v.id), "Column": col(&v.dataset, x)}}]}},
                "BinOptions": {"SelectedBinType": "BIN_COUNT", "BinCount": {"Value": v.bins.unwrap_or(20)}}}),
        ),
        VisualKind::Scatter => (
            "ScatterPlotVisual",
            json!({"FieldWells": {"ScatterPlotUnaggregatedFieldWells": {
                "XAxis": [dimension(d, v, x, "x")],
                "YAxis": [dimension(d, v, y.unwrap_or_default(), "y")],
                "Category": colors(v)}}}),
        ),
        VisualKind::Heatmap => (
            "HeatMapVisual",
            json!({"FieldWells": {"HeatMapAggregatedFieldWells": {
                "Rows": [dimension(d, v, y.unwrap_or_default(), "y")],
                "Columns": [dimension(d, v, x, "x")],
                "Values": [measure(v, v.color.as_deref(), Agg::Mean, x)]}}}),
        ),
        VisualKind::Boxplot => (
            "BoxPlotVisual",
            json!({"FieldWells": {"BoxPlotAggregatedFieldWells": {
                "GroupBy": [dimension(d, v, x, "x")],
                "Values": [{"NumericalMeasureField": {"FieldId": format!("{}.y.{}", v.id, y.unwrap_or_default()),
                            "Column": col(&v.dataset, y.unwrap_or_default())}}]}}}),
        ),
        VisualKind::Table => {
            let values: Vec<Value> = v
                .columns
                .iter()
                .map(|c| json!({"FieldId": format!("{}.col.{c}", v.id), "Column": col(&v.dataset, c)}))
                .collect();
            let mut cfg =
                json!({"FieldWells": {"TableUnaggregatedFieldWells": {"Values": values}}});
            if let Some(s) = &v.sort {
                cfg["SortConfiguration"] = json!({"RowSort": [{"FieldSort": {
                    "FieldId": format!("{}.col.{s}", v.id),
                    "Direction": if v.descending { "DESC" } else { "ASC" }}}]});
            }
            ("TableVisual", cfg)
        }
    };
    let mut body = Map::new();
    body.insert("VisualId".into(), json!(v.id));
    body.insert(
        "Title".into(),
        json!({"Visibility": "VISIBLE", "FormatText": {"PlainText": v.title.as_deref().unwrap_or(&v.id)}}),
    );
    body.insert("ChartConfiguration".into(), config);
    let targets: Vec<&String> = v
        .cross_filter
        .iter()
        .filter(|t| sheet.iter().any(|o| &&o.id == t))
        .collect();
    if !targets.is_empty() {
        body.insert(
            "Actions".into(),
            json!([{
                "CustomActionId": format!("{}-filter", v.id),
                "Name": format!("Filter by {x}"),
                "Status": "ENABLED",
                "Trigger": "DATA_POINT_CLICK",
                "ActionOperations": [{"FilterOperation": {
                    "SelectedFieldsConfiguration": {"SelectedFieldOptions": "ALL_FIELDS"},
                    "TargetVisualsConfiguration": {"SameSheetTargetVisualConfiguration": {"TargetVisuals": targets}}}}]
            }]),
        );
    }
    json!({ key: Value::Object(body) })
}

fn parameter_name(filter_id: &str) -> String {
    filter_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The CreateDashboard input, with its `Definition`.
pub fn dashboard(t: &Target, d: &Dashboard) -> Value {
    let declarations: Vec<Value> = d
        .spec
        .datasets
        .keys()
        .map(|id| json!({"Identifier": id, "DataSetArn": t.arn("dataset", &data_set_id(d, id))}))
        .collect();
    let mut parameters = Vec::new();
    let mut groups = Vec::new();
    // Per sheet: filter controls and parameter controls.
    let mut filter_controls: Vec<Vec<Value>> = vec![Vec::new(); d.spec.sheets.len()];
    let mut param_controls: Vec<Vec<Value>> = vec![Vec::new(); d.spec.sheets.len()];
    for f in &d.spec.filters {
        let targets = d.filter_targets(f);
        // The column is read from the first target's dataset; ALL_DATASETS applies it to every
        // dataset with a column of that name.
        let Some(first) = d
            .visuals()
            .find(|(_, v)| targets.contains(&v.id))
            .map(|(_, v)| v)
        else {
            continue;
        };
        let column = col(&first.dataset, &f.column);
        let kind = d.column_kind(&first.dataset, &f.column);
        let filter_id = format!("filter-{}", f.id.replace('_', "-"));
        let title = f.label.clone().unwrap_or_else(|| f.id.clone());
        let filter = match (f.kind, kind) {
            (FilterKind::Select, _) => {
                let p = parameter_name(&f.id);
                parameters.push(json!({"StringParameterDeclaration": {
                    "ParameterValueType": "SINGLE_VALUED", "Name": p,
                    "ValueWhenUnset": {"ValueWhenUnsetOption": "NULL"}}}));
                json!({"CategoryFilter": {"FilterId": filter_id, "Column": column,
                    "Configuration": {"CustomFilterConfiguration": {
                        "MatchOperator": "EQUALS", "ParameterName": p,
                        "SelectAllOptions": "FILTER_ALL_VALUES", "NullOption": "NON_NULLS_ONLY"}}}})
            }
            (FilterKind::Range, Some(ColumnKind::Temporal)) => json!({"TimeRangeFilter": {
                "FilterId": filter_id, "Column": column, "NullOption": "NON_NULLS_ONLY",
                "IncludeMinimum": true, "IncludeMaximum": true, "TimeGranularity": "DAY"}}),
            (FilterKind::Range, _) => json!({"NumericRangeFilter": {
                "FilterId": filter_id, "Column": column, "NullOption": "NON_NULLS_ONLY",
                "IncludeMinimum": true, "IncludeMaximum": true,
                "SelectAllOptions": "FILTER_ALL_VALUES"}}),
        };
        let mut scopes = Vec::new();
        for (si, sheet) in d.spec.sheets.iter().enumerate() {
            let ids: Vec<&String> = sheet
                .visuals
                .iter()
                .map(|v| &v.id)
                .filter(|id| targets.contains(id))
                .collect();
            if ids.is_empty() {
                continue;
            }
            scopes.push(json!({"SheetId": format!("sheet-{si}"), "Scope": "SELECTED_VISUALS", "VisualIds": ids}));
            let control_id = format!("{filter_id}-sheet-{si}");
            match (f.kind, kind) {
                (FilterKind::Select, _) => param_controls[si].push(json!({"Dropdown": {
                    "ParameterControlId": control_id, "Title": title,
                    "SourceParameterName": parameter_name(&f.id), "Type": "SINGLE_SELECT",
                    "SelectableValues": {"LinkToDataSetColumn": col(&first.dataset, &f.column)}}})),
                (FilterKind::Range, Some(ColumnKind::Temporal)) => {
                    filter_controls[si].push(json!({"DateTimePicker": {
                    "FilterControlId": control_id, "Title": title, "SourceFilterId": filter_id,
                    "Type": "DATE_RANGE"}}))
                }
                (FilterKind::Range, _) => filter_controls[si].push(json!({"TextField": {
                    "FilterControlId": control_id, "Title": title, "SourceFilterId": filter_id}})),
            }
        }
        groups.push(json!({
            "FilterGroupId": format!("group-{}", f.id.replace('_', "-")),
            "Filters": [filter],
            "ScopeConfiguration": {"SelectedSheets": {"SheetVisualScopingConfigurations": scopes}},
            "Status": "ENABLED",
            "CrossDataset": "ALL_DATASETS",
        }));
    }
    let sheets: Vec<Value> = d
        .spec
        .sheets
        .iter()
        .enumerate()
        .map(|(si, s)| {
            let visuals: Vec<Value> = s.visuals.iter().map(|v| visual(d, v, &s.visuals)).collect();
            let elements: Vec<Value> = s
                .visuals
                .iter()
                .map(|v| {
                    let (cols, rows) = match v.kind {
                        VisualKind::Kpi => (12, 5),
                        VisualKind::Table | VisualKind::Heatmap => (36, 12),
                        _ => (18, 10),
                    };
                    json!({"ElementId": v.id, "ElementType": "VISUAL", "ColumnSpan": cols, "RowSpan": rows})
                })
                .collect();
            let mut sheet = json!({
                "SheetId": format!("sheet-{si}"),
                "Name": s.title,
                "Title": s.title,
                "Visuals": visuals,
                "Layouts": [{"Configuration": {"GridLayout": {"Elements": elements}}}],
            });
            if !s.description.is_empty() {
                sheet["Description"] = json!(s.description);
            }
            if !filter_controls[si].is_empty() {
                sheet["FilterControls"] = json!(filter_controls[si]);
            }
            if !param_controls[si].is_empty() {
                sheet["ParameterControls"] = json!(param_controls[si]);
            }
            sheet
        })
        .collect();
    let mut definition = json!({
        "DataSetIdentifierDeclarations": declarations,
        "Sheets": sheets,
    });
    if !parameters.is_empty() {
        definition["ParameterDeclarations"] = json!(parameters);
    }
    if !groups.is_empty() {
        definition["FilterGroups"] = json!(groups);
    }
    json!({
        "AwsAccountId": t.account_id,
        "DashboardId": format!("medallion-{}", d.name.replace('_', "-")),
        "Name": d.spec.title,
        "Permissions": permissions(t, DASHBOARD_ACTIONS),
        "Definition": definition,
        "DashboardPublishOptions": {
            "AdHocFilteringOption": {"AvailabilityStatus": "ENABLED"},
            "ExportToCSVOption": {"AvailabilityStatus": "ENABLED"},
            "SheetControlsOption": {"VisibilityState": "EXPANDED"}
        },
    })
}
