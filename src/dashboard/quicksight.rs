//! `medallion dashboard deploy`: the QuickSight requests generated from a dashboard YAML, as
//! the JSON the AWS CLI takes (`--cli-input-json`), and the calls that make them with
//! aws-sdk-quicksight.
//!
//! Invariants: one Athena data source on the `medallion` workgroup; one `DIRECT_QUERY` dataset
//! per dashboard dataset, whose custom SQL is the same SQL the HTML page runs (suppressed cells
//! blanked, unbounded) with `<stage>.<table>` mapped to the Glue databases; one dashboard per
//! YAML whose `Definition` has a sheet per sheet, a visual per visual (ids kept), a filter
//! group (and, for `select` filters, a parameter and its dropdown) per filter, and a
//! data-point-click filter action per `cross_filter`. Every resource grants the configured
//! principal its actions. The generated JSON is checked against QuickSight's service model in
//! the tests (botocore's validator), not only against expectations written here.

use serde_json::{json, Map, Value};

use super::data;
use super::spec::{Agg, ColumnKind, Dashboard, FilterKind, RawVisual, VisualKind};

/// Id of the Athena data source.
pub const DATA_SOURCE_ID: &str = "medallion-athena";

/// Where and for whom to deploy.
#[derive(Debug, Clone)]
pub struct Target {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// QuickSight user or group ARN granted access.
    pub principal: String,
    /// Athena workgroup.
    pub workgroup: String,
    /// Glue database prefix (`curated.x` → `<prefix>_curated.x`).
    pub glue_prefix: String,
    /// IAM role QuickSight assumes for Athena (default: its service role).
    pub role_arn: Option<String>,
}

impl Target {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:quicksight:{}:{}:{kind}/{id}",
            self.region, self.account_id
        )
    }

    /// ARN of the data source.
    pub fn data_source_arn(&self) -> String {
        self.arn("datasource", DATA_SOURCE_ID)
    }
}

/// The requests deploying one dashboard.
#[derive(Debug, Clone)]
pub struct Requests {
    /// CreateDataSet inputs, by data set id.
    pub data_sets: Vec<(String, Value)>,
    /// CreateDashboard input.
    pub dashboard: Value,
}

const DASHBOARD_ACTIONS: &[&str] = &[
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard",
    "quicksight:DeleteDashboard",
    "quicksight:UpdateDashboardPermissions",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:UpdateDashboardPublishedVersion",
];
const DATA_SET_ACTIONS: &[&str] = &[
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:UpdateDataSet",
    "quicksight:DeleteDataSet",
    "quicksight:CreateIngestion",
    "quicksight:CancelIngestion",
    "quicksight:UpdateDataSetPermissions",
];
const DATA_SOURCE_ACTIONS: &[&str] = &[
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource",
    "quicksight:UpdateDataSourcePermissions",
];

fn permissions(t: &Target, actions: &[&str]) -> Value {
    json!([{"Principal": t.principal, "Actions": actions}])
}

/// CreateDataSource input: Athena on the workgroup.
pub fn data_source(t: &Target) -> Value {
    let mut athena = json!({"WorkGroup": t.workgroup});
    if let Some(r) = &t.role_arn {
        athena["RoleArn"] = json!(r);
    }
    json!({
        "AwsAccountId": t.account_id,
        "DataSourceId": DATA_SOURCE_ID,
        "Name": "medallion (Athena)",
        "Type": "ATHENA",
        "DataSourceParameters": {"AthenaParameters": athena},
        "Permissions": permissions(t, DATA_SOURCE_ACTIONS),
    })
}

/// `<stage>.<table>` → `<prefix>_<stage>.<table>` for Athena.
pub fn qualify(prefix: &str, sql: &str) -> String {
    let re = regex::Regex::new(r"\b(raw|trusted|curated|ops)\.([A-Za-z_][A-Za-z0-9_]*)")
        .unwrap_or_else(|_| unreachable!("static regex"));
    re.replace_all(sql, |c: &regex::Captures| {
        format!("{prefix}_{}.{}", &c[1], &c[2])
    })
    .into_owned()
}

/// Data set id of a dashboard's dataset.
pub fn data_set_id(d: &Dashboard, ds: &str) -> String {
    format!("medallion-{}-{ds}", d.name).replace('_', "-")
}

fn input_type(c: &super::spec::Column) -> &'static str {
    match c.kind {
        ColumnKind::Number if c.integer => "INTEGER",
        ColumnKind::Number => "DECIMAL",
        ColumnKind::Temporal => "DATETIME",
        ColumnKind::Boolean => "BOOLEAN",
        ColumnKind::Text => "STRING",
    }
}

/// Every request for `d`: its data sets and the dashboard.
///
/// # Errors
/// A named query that cannot be read.
pub fn requests(
    t: &Target,
    d: &Dashboard,
    queries_dir: &std::path::Path,
    small_cell_min: u32,
) -> Result<Requests, crate::query::QueryError> {
    let mut data_sets = Vec::new();
    for (id, ds) in &d.spec.datasets {
        let cols = d.columns.get(id).cloned().unwrap_or_default();
        let inner = data::inner_sql(ds, queries_dir)?;
        let sql = qualify(
            &t.glue_prefix,
            &data::final_sql(ds, &inner, &cols, small_cell_min, false),
        );
        let set_id = data_set_id(d, id);
        let columns: Vec<Value> = cols
            .iter()
            .map(|c| json!({"Name": c.name, "Type": input_type(c)}))
            .collect();
        data_sets.push((
            set_id.clone(),
            json!({
                "AwsAccountId": t.account_id,
                "DataSetId": set_id,
                "Name": format!("{} · {id}", d.spec.title),
                "PhysicalTableMap": {id.replace('_', "-"): {"CustomSql": {
                    "DataSourceArn": t.data_source_arn(),
                    "Name": id,
                    "SqlQuery": sql,
                    "Columns": columns,
                }}},
                "ImportMode": "DIRECT_QUERY",
                "Permissions": permissions(t, DATA_SET_ACTIONS),
            }),
        ));
    }
    Ok(Requests {
        data_sets,
        dashboard: dashboard(t, d),
    })
}

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

/// Errors deploying.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A request could not be built from the generated JSON.
    #[error("building {what}: {message}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A QuickSight call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
}

mod typed {
    //! The generated JSON turned into aws-sdk-quicksight values (the SDK's types have no serde).
    //! Only the shapes [`super::dashboard`] emits are covered.

    use aws_sdk_quicksight::types::*;
    use serde_json::Value;

    use super::DeployError;

    type R<T> = Result<T, DeployError>;

    fn err(what: &'static str) -> impl Fn(aws_sdk_quicksight::error::BuildError) -> DeployError {
        move |e| DeployError::Build {
            what,
            message: e.to_string(),
        }
    }

    fn s<'a>(v: &'a Value, k: &str) -> &'a str {
        v.get(k).and_then(Value::as_str).unwrap_or_default()
    }

    fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
        v.get(k)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn column(v: &Value) -> R<ColumnIdentifier> {
        ColumnIdentifier::builder()
            .data_set_identifier(s(v, "DataSetIdentifier"))
            .column_name(s(v, "ColumnName"))
            .build()
            .map_err(err("ColumnIdentifier"))
    }

    fn dimension(v: &Value) -> R<DimensionField> {
        let mut b = DimensionField::builder();
        if let Some(f) = v.get("CategoricalDimensionField") {
            b = b.categorical_dimension_field(
                CategoricalDimensionField::builder()
                    .field_id(s(f, "FieldId"))
                    .column(column(&f["Column"])?)
                    .build()
                    .map_err(err("CategoricalDimensionField"))?,
            );
        }
        if let Some(f) = v.get("NumericalDimensionField") {
            b = b.numerical_dimension_field(
                NumericalDimensionField::builder()
                    .field_id(s(f, "FieldId"))
                    .column(column(&f["Column"])?)
                    .build()
                    .map_err(err("NumericalDimensionField"))?,
            );
        }
        if let Some(f) = v.get("DateDimensionField") {
            b = b.date_dimension_field(
                DateDimensionField::builder()
                    .field_id(s(f, "FieldId"))
                    .column(column(&f["Column"])?)
                    .date_granularity(TimeGranularity::from(s(f, "DateGranularity")))
                    .build()
                    .map_err(err("DateDimensionField"))?,
            );
        }
        Ok(b.build())
    }

    fn measure(v: &Value) -> R<MeasureField> {
        let mut b = MeasureField::builder();
        if let Some(f) = v.get("NumericalMeasureField") {
            let mut m = NumericalMeasureField::builder()
                .field_id(s(f, "FieldId"))
                .column(column(&f["Column"])?);
            if let Some(a) = f.get("AggregationFunction") {
                m = m.aggregation_function(
                    NumericalAggregationFunction::builder()
                        .simple_numerical_aggregation(SimpleNumericalAggregationFunction::from(s(
                            a,
                            "SimpleNumericalAggregation",
                        )))
                        .build(),
                );
            }
            b = b.numerical_measure_field(m.build().map_err(err("NumericalMeasureField"))?);
        }
        if let Some(f) = v.get("CategoricalMeasureField") {
            b = b.categorical_measure_field(
                CategoricalMeasureField::builder()
                    .field_id(s(f, "FieldId"))
                    .column(column(&f["Column"])?)
                    .aggregation_function(CategoricalAggregationFunction::from(s(
                        f,
                        "AggregationFunction",
                    )))
                    .build()
                    .map_err(err("CategoricalMeasureField"))?,
            );
        }
        Ok(b.build())
    }

    fn dims(v: &Value, k: &str) -> R<Option<Vec<DimensionField>>> {
        let l = list(v, k);
        if l.is_empty() {
            return Ok(None);
        }
        l.iter().map(dimension).collect::<R<Vec<_>>>().map(Some)
    }

    fn measures(v: &Value, k: &str) -> R<Option<Vec<MeasureField>>> {
        let l = list(v, k);
        if l.is_empty() {
            return Ok(None);
        }
        l.iter().map(measure).collect::<R<Vec<_>>>().map(Some)
    }

    fn title(v: &Value) -> VisualTitleLabelOptions {
        VisualTitleLabelOptions::builder()
            .visibility(Visibility::Visible)
            .format_text(
                ShortFormatText::builder()
                    .plain_text(s(&v["FormatText"], "PlainText"))
                    .build(),
            )
            .build()
    }

    fn actions(v: &Value) -> R<Option<Vec<VisualCustomAction>>> {
        let mut out = Vec::new();
        for a in list(v, "Actions") {
            let mut ops = Vec::new();
            for op in list(a, "ActionOperations") {
                let f = &op["FilterOperation"];
                let targets: Vec<String> = list(
                    &f["TargetVisualsConfiguration"]["SameSheetTargetVisualConfiguration"],
                    "TargetVisuals",
                )
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
                ops.push(
                    VisualCustomActionOperation::builder()
                        .filter_operation(
                            CustomActionFilterOperation::builder()
                                .selected_fields_configuration(
                                    FilterOperationSelectedFieldsConfiguration::builder()
                                        .selected_field_options(SelectedFieldOptions::AllFields)
                                        .build(),
                                )
                                .target_visuals_configuration(
                                    FilterOperationTargetVisualsConfiguration::builder()
                                        .same_sheet_target_visual_configuration(
                                            SameSheetTargetVisualConfiguration::builder()
                                                .set_target_visuals(Some(targets))
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                );
            }
            out.push(
                VisualCustomAction::builder()
                    .custom_action_id(s(a, "CustomActionId"))
                    .name(s(a, "Name"))
                    .status(WidgetStatus::Enabled)
                    .trigger(VisualCustomActionTrigger::DataPointClick)
                    .set_action_operations(Some(ops))
                    .build()
                    .map_err(err("VisualCustomAction"))?,
            );
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    fn visual(v: &Value) -> R<Visual> {
        let mut b = Visual::builder();
        if let Some(x) = v.get("KPIVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"];
            b = b.kpi_visual(
                KpiVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        KpiConfiguration::builder()
                            .field_wells(
                                KpiFieldWells::builder()
                                    .set_values(measures(fw, "Values")?)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
                    .map_err(err("KPIVisual"))?,
            );
        }
        if let Some(x) = v.get("BarChartVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"]["BarChartAggregatedFieldWells"];
            b = b.bar_chart_visual(
                BarChartVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        BarChartConfiguration::builder()
                            .orientation(BarChartOrientation::from(s(
                                &x["ChartConfiguration"],
                                "Orientation",
                            )))
                            .field_wells(
                                BarChartFieldWells::builder()
                                    .bar_chart_aggregated_field_wells(
                                        BarChartAggregatedFieldWells::builder()
                                            .set_category(dims(fw, "Category")?)
                                            .set_values(measures(fw, "Values")?)
                                            .set_colors(dims(fw, "Colors")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("BarChartVisual"))?,
            );
        }
        if let Some(x) = v.get("LineChartVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"]["LineChartAggregatedFieldWells"];
            b = b.line_chart_visual(
                LineChartVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        LineChartConfiguration::builder()
                            .field_wells(
                                LineChartFieldWells::builder()
                                    .line_chart_aggregated_field_wells(
                                        LineChartAggregatedFieldWells::builder()
                                            .set_category(dims(fw, "Category")?)
                                            .set_values(measures(fw, "Values")?)
                                            .set_colors(dims(fw, "Colors")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("LineChartVisual"))?,
            );
        }
        if let Some(x) = v.get("HistogramVisual") {
            let c = &x["ChartConfiguration"];
            let fw = &c["FieldWells"]["HistogramAggregatedFieldWells"];
            let bins = c["BinOptions"]["BinCount"]["Value"].as_i64().unwrap_or(20) as i32;
            b = b.histogram_visual(
                HistogramVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        HistogramConfiguration::builder()
                            .field_wells(
                                HistogramFieldWells::builder()
                                    .histogram_aggregated_field_wells(
                                        HistogramAggregatedFieldWells::builder()
                                            .set_values(measures(fw, "Values")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .bin_options(
                                HistogramBinOptions::builder()
                                    .selected_bin_type(HistogramBinType::BinCount)
                                    .bin_count(BinCountOptions::builder().value(bins).build())
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("HistogramVisual"))?,
            );
        }
        if let Some(x) = v.get("ScatterPlotVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"]["ScatterPlotUnaggregatedFieldWells"];
            b = b.scatter_plot_visual(
                ScatterPlotVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        ScatterPlotConfiguration::builder()
                            .field_wells(
                                ScatterPlotFieldWells::builder()
                                    .scatter_plot_unaggregated_field_wells(
                                        ScatterPlotUnaggregatedFieldWells::builder()
                                            .set_x_axis(dims(fw, "XAxis")?)
                                            .set_y_axis(dims(fw, "YAxis")?)
                                            .set_category(dims(fw, "Category")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("ScatterPlotVisual"))?,
            );
        }
        if let Some(x) = v.get("HeatMapVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"]["HeatMapAggregatedFieldWells"];
            b = b.heat_map_visual(
                HeatMapVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        HeatMapConfiguration::builder()
                            .field_wells(
                                HeatMapFieldWells::builder()
                                    .heat_map_aggregated_field_wells(
                                        HeatMapAggregatedFieldWells::builder()
                                            .set_rows(dims(fw, "Rows")?)
                                            .set_columns(dims(fw, "Columns")?)
                                            .set_values(measures(fw, "Values")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("HeatMapVisual"))?,
            );
        }
        if let Some(x) = v.get("BoxPlotVisual") {
            let fw = &x["ChartConfiguration"]["FieldWells"]["BoxPlotAggregatedFieldWells"];
            b = b.box_plot_visual(
                BoxPlotVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(
                        BoxPlotChartConfiguration::builder()
                            .field_wells(
                                BoxPlotFieldWells::builder()
                                    .box_plot_aggregated_field_wells(
                                        BoxPlotAggregatedFieldWells::builder()
                                            .set_group_by(dims(fw, "GroupBy")?)
                                            .set_values(measures(fw, "Values")?)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("BoxPlotVisual"))?,
            );
        }
        if let Some(x) = v.get("TableVisual") {
            let c = &x["ChartConfiguration"];
            let fields = list(&c["FieldWells"]["TableUnaggregatedFieldWells"], "Values")
                .iter()
                .map(|f| {
                    UnaggregatedField::builder()
                        .field_id(s(f, "FieldId"))
                        .column(column(&f["Column"])?)
                        .build()
                        .map_err(err("UnaggregatedField"))
                })
                .collect::<R<Vec<_>>>()?;
            let mut cfg = TableConfiguration::builder().field_wells(
                TableFieldWells::builder()
                    .table_unaggregated_field_wells(
                        TableUnaggregatedFieldWells::builder()
                            .set_values(Some(fields))
                            .build(),
                    )
                    .build(),
            );
            for r in list(&c["SortConfiguration"], "RowSort") {
                let f = &r["FieldSort"];
                cfg = cfg.sort_configuration(
                    TableSortConfiguration::builder()
                        .row_sort(
                            FieldSortOptions::builder()
                                .field_sort(
                                    FieldSort::builder()
                                        .field_id(s(f, "FieldId"))
                                        .direction(SortDirection::from(s(f, "Direction")))
                                        .build()
                                        .map_err(err("FieldSort"))?,
                                )
                                .build(),
                        )
                        .build(),
                );
            }
            b = b.table_visual(
                TableVisual::builder()
                    .visual_id(s(x, "VisualId"))
                    .title(title(&x["Title"]))
                    .chart_configuration(cfg.build())
                    .set_actions(actions(x)?)
                    .build()
                    .map_err(err("TableVisual"))?,
            );
        }
        Ok(b.build())
    }

    fn filter(v: &Value) -> R<Filter> {
        let mut b = Filter::builder();
        if let Some(f) = v.get("CategoryFilter") {
            let c = &f["Configuration"]["CustomFilterConfiguration"];
            b = b.category_filter(
                CategoryFilter::builder()
                    .filter_id(s(f, "FilterId"))
                    .column(column(&f["Column"])?)
                    .configuration(
                        CategoryFilterConfiguration::builder()
                            .custom_filter_configuration(
                                CustomFilterConfiguration::builder()
                                    .match_operator(CategoryFilterMatchOperator::Equals)
                                    .parameter_name(s(c, "ParameterName"))
                                    .select_all_options(
                                        CategoryFilterSelectAllOptions::FilterAllValues,
                                    )
                                    .null_option(FilterNullOption::NonNullsOnly)
                                    .build()
                                    .map_err(err("CustomFilterConfiguration"))?,
                            )
                            .build(),
                    )
                    .build()
                    .map_err(err("CategoryFilter"))?,
            );
        }
        if let Some(f) = v.get("TimeRangeFilter") {
            b = b.time_range_filter(
                TimeRangeFilter::builder()
                    .filter_id(s(f, "FilterId"))
                    .column(column(&f["Column"])?)
                    .null_option(FilterNullOption::NonNullsOnly)
                    .include_minimum(true)
                    .include_maximum(true)
                    .time_granularity(TimeGranularity::Day)
                    .build()
                    .map_err(err("TimeRangeFilter"))?,
            );
        }
        if let Some(f) = v.get("NumericRangeFilter") {
            b = b.numeric_range_filter(
                NumericRangeFilter::builder()
                    .filter_id(s(f, "FilterId"))
                    .column(column(&f["Column"])?)
                    .null_option(FilterNullOption::NonNullsOnly)
                    .include_minimum(true)
                    .include_maximum(true)
                    .select_all_options(NumericFilterSelectAllOptions::FilterAllValues)
                    .build()
                    .map_err(err("NumericRangeFilter"))?,
            );
        }
        Ok(b.build())
    }

    fn filter_group(v: &Value) -> R<FilterGroup> {
        let scopes = list(
            &v["ScopeConfiguration"]["SelectedSheets"],
            "SheetVisualScopingConfigurations",
        )
        .iter()
        .map(|sc| {
            SheetVisualScopingConfiguration::builder()
                .sheet_id(s(sc, "SheetId"))
                .scope(FilterVisualScope::SelectedVisuals)
                .set_visual_ids(Some(
                    list(sc, "VisualIds")
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ))
                .build()
                .map_err(err("SheetVisualScopingConfiguration"))
        })
        .collect::<R<Vec<_>>>()?;
        FilterGroup::builder()
            .filter_group_id(s(v, "FilterGroupId"))
            .set_filters(Some(
                list(v, "Filters")
                    .iter()
                    .map(filter)
                    .collect::<R<Vec<_>>>()?,
            ))
            .scope_configuration(
                FilterScopeConfiguration::builder()
                    .selected_sheets(
                        SelectedSheetsFilterScopeConfiguration::builder()
                            .set_sheet_visual_scoping_configurations(Some(scopes))
                            .build(),
                    )
                    .build(),
            )
            .status(WidgetStatus::Enabled)
            .cross_dataset(CrossDatasetTypes::AllDatasets)
            .build()
            .map_err(err("FilterGroup"))
    }

    fn sheet(v: &Value) -> R<SheetDefinition> {
        let elements = list(&v["Layouts"][0]["Configuration"]["GridLayout"], "Elements")
            .iter()
            .map(|e| {
                GridLayoutElement::builder()
                    .element_id(s(e, "ElementId"))
                    .element_type(LayoutElementType::Visual)
                    .column_span(e["ColumnSpan"].as_i64().unwrap_or(18) as i32)
                    .row_span(e["RowSpan"].as_i64().unwrap_or(10) as i32)
                    .build()
                    .map_err(err("GridLayoutElement"))
            })
            .collect::<R<Vec<_>>>()?;
        let mut b = SheetDefinition::builder()
            .sheet_id(s(v, "SheetId"))
            .name(s(v, "Name"))
            .title(s(v, "Title"))
            .set_visuals(Some(
                list(v, "Visuals")
                    .iter()
                    .map(visual)
                    .collect::<R<Vec<_>>>()?,
            ))
            .layouts(
                Layout::builder()
                    .configuration(
                        LayoutConfiguration::builder()
                            .grid_layout(
                                GridLayoutConfiguration::builder()
                                    .set_elements(Some(elements))
                                    .build()
                                    .map_err(err("GridLayoutConfiguration"))?,
                            )
                            .build(),
                    )
                    .build(),
            );
        if let Some(d) = v.get("Description").and_then(Value::as_str) {
            b = b.description(d);
        }
        for c in list(v, "ParameterControls") {
            let d = &c["Dropdown"];
            b = b.parameter_controls(
                ParameterControl::builder()
                    .dropdown(
                        ParameterDropDownControl::builder()
                            .parameter_control_id(s(d, "ParameterControlId"))
                            .title(s(d, "Title"))
                            .source_parameter_name(s(d, "SourceParameterName"))
                            .r#type(SheetControlListType::SingleSelect)
                            .selectable_values(
                                ParameterSelectableValues::builder()
                                    .link_to_data_set_column(column(
                                        &d["SelectableValues"]["LinkToDataSetColumn"],
                                    )?)
                                    .build(),
                            )
                            .build()
                            .map_err(err("ParameterDropDownControl"))?,
                    )
                    .build(),
            );
        }
        for c in list(v, "FilterControls") {
            let mut fc = FilterControl::builder();
            if let Some(d) = c.get("DateTimePicker") {
                fc = fc.date_time_picker(
                    FilterDateTimePickerControl::builder()
                        .filter_control_id(s(d, "FilterControlId"))
                        .title(s(d, "Title"))
                        .source_filter_id(s(d, "SourceFilterId"))
                        .r#type(SheetControlDateTimePickerType::DateRange)
                        .build()
                        .map_err(err("FilterDateTimePickerControl"))?,
                );
            }
            if let Some(d) = c.get("TextField") {
                fc = fc.text_field(
                    FilterTextFieldControl::builder()
                        .filter_control_id(s(d, "FilterControlId"))
                        .title(s(d, "Title"))
                        .source_filter_id(s(d, "SourceFilterId"))
                        .build()
                        .map_err(err("FilterTextFieldControl"))?,
                );
            }
            b = b.filter_controls(fc.build());
        }
        b.build().map_err(err("SheetDefinition"))
    }

    /// The dashboard `Definition`.
    pub fn definition(v: &Value) -> R<DashboardVersionDefinition> {
        let decls = list(v, "DataSetIdentifierDeclarations")
            .iter()
            .map(|d| {
                DataSetIdentifierDeclaration::builder()
                    .identifier(s(d, "Identifier"))
                    .data_set_arn(s(d, "DataSetArn"))
                    .build()
                    .map_err(err("DataSetIdentifierDeclaration"))
            })
            .collect::<R<Vec<_>>>()?;
        let params = list(v, "ParameterDeclarations")
            .iter()
            .map(|p| {
                let p = &p["StringParameterDeclaration"];
                StringParameterDeclaration::builder()
                    .parameter_value_type(ParameterValueType::SingleValued)
                    .name(s(p, "Name"))
                    .value_when_unset(
                        StringValueWhenUnsetConfiguration::builder()
                            .value_when_unset_option(ValueWhenUnsetOption::Null)
                            .build(),
                    )
                    .build()
                    .map_err(err("StringParameterDeclaration"))
                    .map(|d| {
                        ParameterDeclaration::builder()
                            .string_parameter_declaration(d)
                            .build()
                    })
            })
            .collect::<R<Vec<_>>>()?;
        DashboardVersionDefinition::builder()
            .set_data_set_identifier_declarations(Some(decls))
            .set_sheets(Some(
                list(v, "Sheets").iter().map(sheet).collect::<R<Vec<_>>>()?,
            ))
            .set_parameter_declarations((!params.is_empty()).then_some(params))
            .set_filter_groups(Some(
                list(v, "FilterGroups")
                    .iter()
                    .map(filter_group)
                    .collect::<R<Vec<_>>>()?,
            ))
            .build()
            .map_err(err("DashboardVersionDefinition"))
    }

    /// Permissions from `[{"Principal", "Actions"}]`.
    pub fn permissions(v: &Value) -> R<Vec<ResourcePermission>> {
        v.as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|p| {
                ResourcePermission::builder()
                    .principal(s(p, "Principal"))
                    .set_actions(Some(
                        list(p, "Actions")
                            .iter()
                            .filter_map(|a| a.as_str().map(str::to_string))
                            .collect(),
                    ))
                    .build()
                    .map_err(err("ResourcePermission"))
            })
            .collect()
    }

    /// The physical table of a data set's JSON (one custom SQL).
    pub fn physical(v: &Value) -> R<(String, PhysicalTable)> {
        let (key, table) =
            v.as_object()
                .and_then(|m| m.iter().next())
                .ok_or(DeployError::Build {
                    what: "PhysicalTableMap",
                    message: "empty".into(),
                })?;
        let c = &table["CustomSql"];
        let cols = list(c, "Columns")
            .iter()
            .map(|x| {
                InputColumn::builder()
                    .name(s(x, "Name"))
                    .r#type(InputColumnDataType::from(s(x, "Type")))
                    .build()
                    .map_err(err("InputColumn"))
            })
            .collect::<R<Vec<_>>>()?;
        Ok((
            key.clone(),
            PhysicalTable::CustomSql(
                CustomSql::builder()
                    .data_source_arn(s(c, "DataSourceArn"))
                    .name(s(c, "Name"))
                    .sql_query(s(c, "SqlQuery"))
                    .set_columns(Some(cols))
                    .build()
                    .map_err(err("CustomSql"))?,
            ),
        ))
    }
}

/// The publish options of the generated JSON (ad-hoc filtering and CSV export on, controls shown).
fn publish_options() -> aws_sdk_quicksight::types::DashboardPublishOptions {
    use aws_sdk_quicksight::types::{
        AdHocFilteringOption, DashboardBehavior, DashboardPublishOptions, DashboardUiState,
        ExportToCsvOption, SheetControlsOption,
    };
    DashboardPublishOptions::builder()
        .ad_hoc_filtering_option(
            AdHocFilteringOption::builder()
                .availability_status(DashboardBehavior::Enabled)
                .build(),
        )
        .export_to_csv_option(
            ExportToCsvOption::builder()
                .availability_status(DashboardBehavior::Enabled)
                .build(),
        )
        .sheet_controls_option(
            SheetControlsOption::builder()
                .visibility_state(DashboardUiState::Expanded)
                .build(),
        )
        .build()
}

/// A QuickSight client on the project's settings (endpoint and retries as the other clients).
async fn client(aws: &crate::aws::Aws) -> aws_sdk_quicksight::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(aws.cfg.region.clone()));
    if let Some(ep) = &aws.cfg.endpoint {
        loader = loader
            .endpoint_url(ep)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
    }
    aws_sdk_quicksight::Client::new(&loader.load().await)
}

/// What a create call came to.
enum Sent {
    Done,
    /// HTTP 2xx, but the answer did not parse (moto returns `VersionArn` as a number).
    Unparsed,
    Exists,
    Failed(String),
}

fn sent<T, E: std::fmt::Debug>(
    r: Result<
        T,
        aws_sdk_quicksight::error::SdkError<E, aws_sdk_quicksight::config::http::HttpResponse>,
    >,
) -> Sent {
    match r {
        Ok(_) => Sent::Done,
        Err(e) => {
            if let aws_sdk_quicksight::error::SdkError::ServiceError(se) = &e {
                if se.raw().status().is_success() {
                    return Sent::Unparsed;
                }
            }
            let text = format!("{e:?}");
            if text.contains("ResourceExists") || text.contains("already exists") {
                Sent::Exists
            } else {
                Sent::Failed(text)
            }
        }
    }
}

fn line(verb: &str, what: &str, unparsed: bool) -> String {
    if unparsed {
        format!("{verb}  {what} (HTTP 2xx; the answer did not parse)")
    } else {
        format!("{verb}  {what}")
    }
}

/// Creates the data source, data sets and dashboards, or updates those that exist.
/// Returns one line per resource.
///
/// # Errors
/// A request that cannot be built, or a call that fails other than with "already exists".
pub async fn deploy(
    aws: &crate::aws::Aws,
    t: &Target,
    source: &Value,
    all: &[(String, Requests)],
) -> Result<Vec<String>, DeployError> {
    use aws_sdk_quicksight::types::{AthenaParameters, DataSourceParameters, DataSourceType};
    let qs = client(aws).await;
    let fail = |op: &'static str, text: String| -> DeployError {
        crate::aws::call::<String>("quicksight", op)(text).into()
    };
    let mut out = Vec::new();
    let mut athena = AthenaParameters::builder().work_group(&t.workgroup);
    if let Some(r) = &t.role_arn {
        athena = athena.role_arn(r);
    }
    let params = DataSourceParameters::AthenaParameters(athena.build());
    let name = source["Name"].as_str().unwrap_or(DATA_SOURCE_ID);
    let what = format!("data source {DATA_SOURCE_ID}");
    match sent(
        qs.create_data_source()
            .aws_account_id(&t.account_id)
            .data_source_id(DATA_SOURCE_ID)
            .name(name)
            .r#type(DataSourceType::Athena)
            .data_source_parameters(params.clone())
            .set_permissions(Some(typed::permissions(&source["Permissions"])?))
            .send()
            .await,
    ) {
        Sent::Done => out.push(line("created", &what, false)),
        Sent::Unparsed => out.push(line("created", &what, true)),
        Sent::Exists => {
            match sent(
                qs.update_data_source()
                    .aws_account_id(&t.account_id)
                    .data_source_id(DATA_SOURCE_ID)
                    .name(name)
                    .data_source_parameters(params)
                    .send()
                    .await,
            ) {
                Sent::Done | Sent::Exists => out.push(line("updated", &what, false)),
                Sent::Unparsed => out.push(line("updated", &what, true)),
                Sent::Failed(e) => return Err(fail("UpdateDataSource", e)),
            }
        }
        Sent::Failed(e) => return Err(fail("CreateDataSource", e)),
    }
    for (name, r) in all {
        for (id, v) in &r.data_sets {
            let (key, table) = typed::physical(&v["PhysicalTableMap"])?;
            let set_name = v["Name"].as_str().unwrap_or(id);
            let what = format!("data set {id}");
            match sent(
                qs.create_data_set()
                    .aws_account_id(&t.account_id)
                    .data_set_id(id)
                    .name(set_name)
                    .physical_table_map(key.clone(), table.clone())
                    .import_mode(aws_sdk_quicksight::types::DataSetImportMode::DirectQuery)
                    .set_permissions(Some(typed::permissions(&v["Permissions"])?))
                    .send()
                    .await,
            ) {
                Sent::Done => out.push(line("created", &what, false)),
                Sent::Unparsed => out.push(line("created", &what, true)),
                Sent::Exists => match sent(
                    qs.update_data_set()
                        .aws_account_id(&t.account_id)
                        .data_set_id(id)
                        .name(set_name)
                        .physical_table_map(key, table)
                        .import_mode(aws_sdk_quicksight::types::DataSetImportMode::DirectQuery)
                        .send()
                        .await,
                ) {
                    Sent::Done | Sent::Exists => out.push(line("updated", &what, false)),
                    Sent::Unparsed => out.push(line("updated", &what, true)),
                    Sent::Failed(e) => return Err(fail("UpdateDataSet", e)),
                },
                Sent::Failed(e) => return Err(fail("CreateDataSet", e)),
            }
        }
        let d = &r.dashboard;
        let id = d["DashboardId"].as_str().unwrap_or_default();
        let title = d["Name"].as_str().unwrap_or(name);
        let definition = typed::definition(&d["Definition"])?;
        let what = format!("dashboard {id}");
        match sent(
            qs.create_dashboard()
                .aws_account_id(&t.account_id)
                .dashboard_id(id)
                .name(title)
                .definition(definition.clone())
                .dashboard_publish_options(publish_options())
                .set_permissions(Some(typed::permissions(&d["Permissions"])?))
                .send()
                .await,
        ) {
            Sent::Done => out.push(line("created", &what, false)),
            Sent::Unparsed => out.push(line("created", &what, true)),
            Sent::Exists => match sent(
                qs.update_dashboard()
                    .aws_account_id(&t.account_id)
                    .dashboard_id(id)
                    .name(title)
                    .definition(definition)
                    .dashboard_publish_options(publish_options())
                    .send()
                    .await,
            ) {
                Sent::Done | Sent::Exists => out.push(format!(
                    "updated  {what} (publish the new version: aws quicksight update-dashboard-published-version)"
                )),
                Sent::Unparsed => out.push(line("updated", &what, true)),
                Sent::Failed(e) => return Err(fail("UpdateDashboard", e)),
            },
            Sent::Failed(e) => return Err(fail("CreateDashboard", e)),
        }
    }
    Ok(out)
}
