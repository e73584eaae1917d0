//! Column profiles of a table (like Glue DataBrew's): type, nulls, distinct values, numeric
//! statistics and histogram, top values and the shape of text values; and rule suggestions
//! derived from a profile (like Glue's recommendations and deequ's suggestions), written as a
//! `quality_rules` file for a person to review.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use polars::prelude::*;
use serde::Serialize;

/// One column's profile.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// polars type.
    pub dtype: String,
    /// Rows.
    pub rows: u64,
    /// Missing values.
    pub nulls: u64,
    /// Share missing, 0..1.
    pub null_share: f64,
    /// Distinct present values.
    pub distinct: u64,
    /// Smallest value (numbers, dates, timestamps as text).
    pub min: Option<String>,
    /// Largest value.
    pub max: Option<String>,
    /// Mean (numbers).
    pub mean: Option<f64>,
    /// Sample standard deviation (numbers).
    pub stddev: Option<f64>,
    /// Ten equal-width bins over [min, max]: counts (numbers).
    pub histogram: Vec<u64>,
    /// Most frequent values with counts (text), at most 5.
    pub top_values: Vec<(String, u64)>,
    /// Most frequent shapes of text values (`A` letter, `9` digit), with counts.
    pub patterns: Vec<(String, u64)>,
}

/// A table's profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Catalog name of the table.
    pub table: String,
    /// Rows.
    pub rows: u64,
    /// Columns (lineage columns excluded).
    pub columns: Vec<ColumnProfile>,
}

fn shape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(40) {
        out.push(if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            if c.is_uppercase() {
                'A'
            } else {
                'a'
            }
        } else {
            c
        });
    }
    out
}

fn top(counts: BTreeMap<String, u64>, k: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// Profiles every non-lineage column of `df`.
///
/// # Errors
/// polars errors.
pub fn profile(table: &str, df: &DataFrame) -> PolarsResult<Profile> {
    let rows = df.height() as u64;
    let mut columns = Vec::new();
    for c in df.columns() {
        let name = c.name().to_string();
        if name.starts_with('_') {
            continue;
        }
        let s = c.as_materialized_series();
        let nulls = s.null_count() as u64;
        let present = s.drop_nulls();
        let mut p = ColumnProfile {
            name,
            dtype: s.dtype().to_string(),
            rows,
            nulls,
            null_share: if rows == 0 {
                0.0
            } else {
                nulls as f64 / rows as f64
            },
            distinct: present.n_unique()? as u64,
            min: None,
            max: None,
            mean: None,
            stddev: None,
            histogram: Vec::new(),
            top_values: Vec::new(),
            patterns: Vec::new(),
        };
        match s.dtype() {
            dt if dt.is_primitive_numeric() => {
                let f = present.cast(&DataType::Float64)?;
                let ca = f.f64()?;
                let (lo, hi) = (ca.min(), ca.max());
                p.min = lo.map(|v| v.to_string());
                p.max = hi.map(|v| v.to_string());
                p.mean = ca.mean();
                p.stddev = ca.std(1);
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    let mut bins = vec![0u64; 10];
                    let width = (hi - lo) / 10.0;
                    for v in ca.iter().flatten() {
                        let i = if width > 0.0 {
                            (((v - lo) / width) as usize).min(9)
                        } else {
                            0
                        };
                        bins[i] += 1;
                    }
                    p.histogram = bins;
                }
            }
            DataType::String => {
                let ca = present.str()?;
                let mut values: BTreeMap<String, u64> = BTreeMap::new();
                let mut shapes: BTreeMap<String, u64> = BTreeMap::new();
                let (mut lo, mut hi) = (usize::MAX, 0usize);
                for v in ca.iter().flatten() {
                    *values.entry(v.to_string()).or_default() += 1;
                    *shapes.entry(shape(v)).or_default() += 1;
                    lo = lo.min(v.chars().count());
                    hi = hi.max(v.chars().count());
                }
                p.top_values = top(values, 5);
                p.patterns = top(shapes, 3);
                if hi > 0 {
                    p.min = Some(format!("length {lo}"));
                    p.max = Some(format!("length {hi}"));
                }
            }
            DataType::Date | DataType::Datetime(_, _) => {
                let sorted = present.sort(SortOptions::default())?;
                let text = sorted.cast(&DataType::String)?;
                let t = text.str()?;
                p.min = t.get(0).map(str::to_string);
                p.max = t.get(t.len().saturating_sub(1)).map(str::to_string);
            }
            _ => {}
        }
        columns.push(p);
    }
    Ok(Profile {
        table: table.to_string(),
        rows,
        columns,
    })
}

impl Profile {
    /// Terminal view.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}: {} rows", self.table, self.rows);
        let _ = writeln!(
            out,
            "  {:<20} {:<22} {:>7} {:>9}  summary",
            "column", "type", "null %", "distinct"
        );
        for c in &self.columns {
            let summary = if let Some(m) = c.mean {
                format!(
                    "min {} max {} mean {:.3} sd {:.3}",
                    c.min.as_deref().unwrap_or("-"),
                    c.max.as_deref().unwrap_or("-"),
                    m,
                    c.stddev.unwrap_or(0.0)
                )
            } else if !c.top_values.is_empty() {
                let tv: Vec<String> = c
                    .top_values
                    .iter()
                    .take(3)
                    .map(|(v, n)| format!("{} ({n})", truncate(v)))
                    .collect();
                let pat: Vec<String> = c
                    .patterns
                    .iter()
                    .take(2)
                    .map(|(v, n)| format!("{v} ({n})"))
                    .collect();
                format!("top {}; shapes {}", tv.join(", "), pat.join(", "))
            } else {
                format!(
                    "{} .. {}",
                    c.min.as_deref().unwrap_or("-"),
                    c.max.as_deref().unwrap_or("-")
                )
            };
            let _ = writeln!(
                out,
                "  {:<20} {:<22} {:>6.2}% {:>9}  {}",
                c.name,
                truncate(&c.dtype),
                100.0 * c.null_share,
                c.distinct,
                summary
            );
        }
        out
    }

    /// Self-contained HTML view with a histogram per numeric column.
    pub fn html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut h = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Profile — {t}</title><style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}}</style></head><body><h1>Profile — {t}</h1><p>{} rows</p><table><tr><th>column</th><th>type</th><th>null %</th><th>distinct</th><th>summary</th><th>distribution</th></tr>",
            self.rows,
            t = esc(&self.table)
        );
        for c in &self.columns {
            let bars = if c.histogram.is_empty() {
                String::new()
            } else {
                let max = c.histogram.iter().copied().max().unwrap_or(1).max(1) as f64;
                let mut svg = String::from(
                    "<svg class=\"chart\" width=\"120\" height=\"32\" viewBox=\"0 0 120 32\">",
                );
                for (i, n) in c.histogram.iter().enumerate() {
                    let hgt = 30.0 * *n as f64 / max;
                    let _ = write!(svg, "<rect x=\"{}\" y=\"{:.1}\" width=\"10\" height=\"{hgt:.1}\" fill=\"#2563eb\"><title>{n}</title></rect>", i * 12, 31.0 - hgt);
                }
                svg + "</svg>"
            };
            let summary = c
                .top_values
                .iter()
                .map(|(v, n)| format!("{} ({n})", esc(v)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>{} {}</td><td>{bars}</td></tr>",
                esc(&c.name),
                esc(&c.dtype),
                100.0 * c.null_share,
                c.distinct,
                esc(&format!("{} .. {}", c.min.as_deref().unwrap_or(""), c.max.as_deref().unwrap_or(""))),
                summary
            );
        }
        h + "</table></body></html>"
    }

    /// Proposes a `quality_rules/<dataset>.yaml` from the profile, for review.
    pub fn suggest_rules(&self, dataset: &str, section: &str) -> String {
        let mut y = format!(
            "# Suggested from a profile of {} ({} rows). Review every rule before keeping it.\ndataset: {dataset}\n{section}:\n",
            self.table, self.rows
        );
        // Ids stay unique when suggestions for several stages are kept in one file.
        let prefix = match section {
            "trusted" => "suggested".to_string(),
            other => format!("suggested.{other}"),
        };
        let mut rule = |id: String, description: String, check: String, severity: &str| {
            let description = description.replace('"', "'");
            let _ = write!(y, "  - id: {id}\n    description: \"{description}\"\n    check: {check}\n    severity: {severity}\n");
        };
        for c in &self.columns {
            let n = &c.name;
            if c.nulls == 0 && c.rows > 0 {
                rule(
                    format!("{prefix}.{n}.not_null"),
                    format!("`{n}` was always present."),
                    format!("{{not_null: {{column: {n}}}}}"),
                    "warn",
                );
            } else if c.null_share < 0.2 && c.rows > 0 {
                let min = ((1.0 - c.null_share) * 100.0).floor() / 100.0;
                rule(
                    format!("{prefix}.{n}.completeness"),
                    format!(
                        "`{n}` was present in {:.1}% of rows.",
                        100.0 * (1.0 - c.null_share)
                    ),
                    format!("{{completeness: {{column: {n}, min: {min}}}}}"),
                    "warn",
                );
            }
            if c.distinct == c.rows && c.rows > 1 {
                rule(
                    format!("{prefix}.{n}.unique"),
                    format!("`{n}` was unique."),
                    format!("{{unique: {{columns: [{n}]}}}}"),
                    "warn",
                );
            }
            if c.mean.is_some() {
                if let (Some(lo), Some(hi)) = (&c.min, &c.max) {
                    rule(
                        format!("{prefix}.{n}.range"),
                        format!("`{n}` ranged from {lo} to {hi}."),
                        format!("{{range: {{column: {n}, min: {lo}, max: {hi}}}}}"),
                        "warn",
                    );
                }
                rule(
                    format!("{prefix}.{n}.mean_anomaly"),
                    format!("The mean of `{n}` stays within the band of recent batches."),
                    format!("{{detect_anomaly: {{statistic: mean, column: {n}}}}}"),
                    "warn",
                );
            } else if c.dtype == "str" && c.distinct > 0 && c.distinct <= 12 && c.distinct < c.rows
            {
                let values: Vec<String> = c
                    .top_values
                    .iter()
                    .map(|(v, _)| format!("\"{}\"", v.replace('"', "'")))
                    .collect();
                if c.top_values.len() as u64 == c.distinct {
                    rule(
                        format!("{prefix}.{n}.accepted_values"),
                        format!("`{n}` took {} values.", c.distinct),
                        format!(
                            "{{accepted_values: {{column: {n}, values: [{}]}}}}",
                            values.join(", ")
                        ),
                        "warn",
                    );
                }
            } else if let Some((shape, count)) = c.patterns.first() {
                let present = c.rows - c.nulls;
                let pseudonym = c
                    .top_values
                    .first()
                    .is_some_and(|(v, _)| v.starts_with("p_"));
                if present > 0 && *count == present && !pseudonym {
                    rule(
                        format!("{prefix}.{n}.pattern"),
                        format!("`{n}` always had the shape {shape}."),
                        format!(
                            "{{pattern: {{column: {n}, regex: '{}'}}}}",
                            shape_regex(shape)
                        ),
                        "warn",
                    );
                }
            }
        }
        rule(
            format!("{prefix}.volume_anomaly"),
            "The batch size stays within the band of recent batches.".into(),
            "{detect_anomaly: {statistic: row_count}}".into(),
            "warn",
        );
        y
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 22 {
        format!("{}…", s.chars().take(21).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The regex of a shape (`A9-99` → `^[A-Z][0-9]-[0-9]{2}$`).
fn shape_regex(shape: &str) -> String {
    let mut out = String::from("^");
    let chars: Vec<char> = shape.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let class = match c {
            '9' => "[0-9]".to_string(),
            'A' => "[A-Z]".to_string(),
            'a' => "[a-z]".to_string(),
            other => regex::escape(&other.to_string()),
        };
        out.push_str(&class);
        if j - i > 1 {
            let _ = write!(out, "{{{}}}", j - i);
        }
        i = j;
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_and_suggestions() {
        let df = df!(
            "code" => ["MAT101", "PHY102", "BIO103", "CHE104"],
            "status" => ["present", "absent", "present", "late"],
            "minutes" => [Some(50i64), Some(0), None, Some(45)],
            "_batch_id" => ["b", "b", "b", "b"],
        )
        .unwrap();
        let p = profile("trusted.x", &df).unwrap();
        assert_eq!(p.columns.len(), 3);
        let m = &p.columns[2];
        assert_eq!((m.nulls, m.distinct), (1, 3));
        assert_eq!(m.histogram.iter().sum::<u64>(), 3);
        assert_eq!(p.columns[0].patterns[0], ("AAA999".to_string(), 4));
        let y = p.suggest_rules("x", "trusted");
        assert!(y.contains("regex: '^[A-Z]{3}[0-9]{3}$'"), "{y}");
        assert!(y.contains("accepted_values: {column: status"), "{y}");
        assert!(
            y.contains("completeness: {column: minutes, min: 0.75}")
                || y.contains("range: {column: minutes"),
            "{y}"
        );
        assert!(p.text().contains("minutes"));
        assert!(p.html().contains("<svg class=\"chart\""));
    }
}
