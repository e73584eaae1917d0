//! One generated visual (bar, line, KPI, table, ...) as an aws-sdk-quicksight `Visual`.
//!
//! Invariants: the visual id of the YAML is kept; an unknown visual type is an error.

use aws_sdk_quicksight::types::*;
use serde_json::Value;

use super::*;

pub(super) fn visual(v: &Value) -> R<Visual> {
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
