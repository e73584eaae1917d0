//! Compiling a visual to a Vega-Lite spec (`serde_json`), for the HTML page.
//!
//! Invariants: a spec reads its rows from the named data source [`SOURCE`], which the page fills
//! (and refills when a filter changes), so filtering lives in one place, the page's script; a
//! visual that cross-filters others declares the selection parameter [`SELECTION`] on its x
//! field (an interval brush for histograms and scatter plots, a click for bars). Temporal
//! columns arrive as epoch milliseconds and are drawn in UTC. Tables are not Vega (the page
//! renders them), so [`spec`] returns `None` for them.

use serde_json::{json, Value};

use super::spec::{Agg, ColumnKind, Dashboard, RawVisual, VisualKind};

/// Name of the data source every spec reads.
pub const SOURCE: &str = "source";
/// Name of the selection parameter of a cross-filtering visual.
pub const SELECTION: &str = "sel";

fn agg_name(a: Agg) -> &'static str {
    match a {
        Agg::Sum => "sum",
        Agg::Mean => "mean",
        Agg::Median => "median",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Count => "count",
    }
}

fn label(c: &str) -> String {
    let s = c.replace('_', " ");
    let mut ch = s.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().collect::<String>() + ch.as_str(),
        None => s,
    }
}

/// A field encoding for `column`, typed from the dataset's column kind. `discrete` draws dates
/// and numbers as categories (bars, heat map cells, box plot groups).
fn field(d: &Dashboard, v: &RawVisual, column: &str, discrete: bool) -> Value {
    match d.column_kind(&v.dataset, column) {
        Some(ColumnKind::Temporal) => json!({
            "field": column, "type": if discrete { "ordinal" } else { "temporal" },
            "timeUnit": "utcyearmonthdate", "title": label(column),
            "axis": {"format": "%d %b", "formatType": "time", "labelAngle": -40}
        }),
        Some(ColumnKind::Number) => {
            let mut f = json!({"field": column,
                "type": if discrete { "ordinal" } else { "quantitative" }, "title": label(column)});
            if !discrete && d.column(&v.dataset, column).is_some_and(|c| c.integer) {
                f["axis"] = json!({"format": "d", "tickMinStep": 1});
            }
            f
        }
        _ => json!({"field": column, "type": "nominal", "title": label(column)}),
    }
}

fn measure(v: &RawVisual, column: Option<&str>, default: Agg) -> Value {
    let agg = v.agg.unwrap_or(default);
    let mut m = match (agg, column) {
        (Agg::Count, _) | (_, None) => {
            json!({"aggregate": "count", "type": "quantitative", "title": "Rows"})
        }
        (a, Some(c)) => json!({"aggregate": agg_name(a), "field": c, "type": "quantitative",
                               "title": format!("{} {}", label(agg_name(a)), c.replace('_', " "))}),
    };
    if let Some(f) = &v.format {
        m["axis"] = json!({"format": f});
        m["format"] = json!(f);
    }
    m
}

fn quantitative(v: &RawVisual, column: &str) -> Value {
    let mut m = json!({"field": column, "type": "quantitative", "title": label(column)});
    if let Some(f) = &v.format {
        m["axis"] = json!({"format": f});
    }
    m
}

/// The Vega-Lite spec of a visual (`None` for a table, which the page renders itself).
pub fn spec(d: &Dashboard, v: &RawVisual) -> Option<Value> {
    let x = v.x.as_deref().unwrap_or_default();
    let y = v.y.as_deref();
    let cross = !v.cross_filter.is_empty();
    let mut s = match v.kind {
        VisualKind::Table => return None,
        VisualKind::Kpi => {
            let mut text = measure(v, v.value.as_deref(), Agg::Mean);
            if let Some(f) = &v.format {
                text["format"] = json!(f);
            }
            json!({
                "height": 70,
                "mark": {"type": "text", "fontSize": 44, "fontWeight": "bold", "color": "#1f4e79"},
                "encoding": {"text": text}
            })
        }
        VisualKind::Bar => {
            let (cat, val) = if v.horizontal { ("y", "x") } else { ("x", "y") };
            let mut xe = field(d, v, x, true);
            xe["sort"] = match v.sort.as_deref() {
                Some(s) if s == x => json!(if v.descending {
                    "descending"
                } else {
                    "ascending"
                }),
                _ => json!(format!(
                    "{}{val}",
                    if v.descending || v.sort.is_none() {
                        "-"
                    } else {
                        ""
                    }
                )),
            };
            let mut b = json!({
                "mark": {"type": "bar", "tooltip": true},
                "encoding": {cat: xe, val: measure(v, y, Agg::Sum)}
            });
            if v.horizontal {
                b["height"] = json!({"step": 16});
            }
            b
        }
        VisualKind::Line => json!({
            "mark": {"type": "line", "point": true, "tooltip": true},
            "encoding": {"x": field(d, v, x, false), "y": measure(v, y, Agg::Mean)}
        }),
        VisualKind::Histogram => {
            let mut xe = quantitative(v, x);
            xe["bin"] = json!({"maxbins": v.bins.unwrap_or(20)});
            json!({
                "mark": {"type": "bar", "tooltip": true},
                "encoding": {"x": xe, "y": {"aggregate": "count", "type": "quantitative", "title": "Rows"}}
            })
        }
        VisualKind::Scatter => json!({
            "mark": {"type": "point", "filled": true, "opacity": 0.6, "tooltip": true},
            "encoding": {"x": quantitative(v, x), "y": quantitative(v, y.unwrap_or_default())}
        }),
        VisualKind::Heatmap => {
            let color = v.color.as_deref();
            let mut c = measure(v, color, Agg::Mean);
            c["scale"] = json!({"scheme": "viridis"});
            json!({
                "mark": {"type": "rect", "tooltip": true},
                "height": {"step": 16},
                "encoding": {"x": field(d, v, x, true), "y": field(d, v, y.unwrap_or_default(), true), "color": c}
            })
        }
        VisualKind::Boxplot => json!({
            "mark": {"type": "boxplot", "extent": 1.5},
            "encoding": {"x": field(d, v, x, true), "y": quantitative(v, y.unwrap_or_default())}
        }),
    };
    if let (Some(c), false) = (&v.color, v.kind == VisualKind::Heatmap) {
        s["encoding"]["color"] = field(d, v, c, true);
    }
    if cross {
        let select = match v.kind {
            VisualKind::Bar => json!({"type": "point", "fields": [x]}),
            _ => json!({"type": "interval", "encodings": ["x"]}),
        };
        s["params"] = json!([{"name": SELECTION, "select": select}]);
        if v.kind != VisualKind::Histogram {
            s["encoding"]["opacity"] = json!({"condition": {"param": SELECTION, "value": 0.9, "empty": true}, "value": 0.25});
        }
    }
    s["data"] = json!({"name": SOURCE});
    s["width"] = json!("container");
    if s.get("height").is_none() {
        s["height"] = json!(230);
    }
    s["autosize"] = json!({"type": "fit", "contains": "padding"});
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::spec::{parse, validate, Column};
    use std::collections::BTreeMap;
    use std::path::Path;

    #[test]
    fn histogram_with_cross_filter_brushes_x() {
        let text = "title: T\ndatasets:\n  a: {table: curated.x}\nsheets:\n  - title: S\n    visuals:\n      - {id: h, type: histogram, dataset: a, x: rate, bins: 10, cross_filter: [t]}\n      - {id: t, type: table, dataset: a, columns: [rate]}\n";
        let raw = parse(Path::new("d.yaml"), text).unwrap();
        let mut cols = BTreeMap::new();
        cols.insert(
            "a".to_string(),
            vec![Column {
                name: "rate".into(),
                kind: ColumnKind::Number,
                integer: false,
            }],
        );
        let d = validate("d", Path::new("d.yaml"), text, raw, cols, vec![]).unwrap();
        let (_, h) = d.visuals().next().unwrap();
        let s = spec(&d, h).unwrap();
        assert_eq!(s["encoding"]["x"]["bin"]["maxbins"], 10);
        assert_eq!(s["params"][0]["select"]["type"], "interval");
        assert_eq!(s["data"]["name"], SOURCE);
        let (_, t) = d.visuals().nth(1).unwrap();
        assert!(spec(&d, t).is_none());
    }
}
