//! The generated JSON turned into aws-sdk-quicksight values (the SDK's types have no serde).
//! Only the shapes [`super::dashboard`] emits are covered; visuals are in [`visual`].
//!
//! Invariants: a shape the generated JSON does not have is an error naming it (`DeployError::Build`),
//! never a panic; a missing optional key reads as unset.

mod visual;

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
                                .select_all_options(CategoryFilterSelectAllOptions::FilterAllValues)
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
                .map(visual::visual)
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
    let (key, table) = v
        .as_object()
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
