//! The quality report of one batch: its books, every rule worst first with the change against
//! the previous batch, pass-rate history per rule, and sample failing rows. Rendered as text,
//! stable JSON, or a self-contained HTML page (inline SVG charts, no network).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::{History, HoldRow, PromotionRow, Step, StoredResult};

/// One rule in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RuleLine {
    /// The stored result for the batch.
    #[serde(flatten)]
    pub result: StoredResult,
    /// Failure rate in the previous batch, if the rule ran then.
    pub previous_failure_rate: Option<f64>,
    /// `up` (more failures), `down`, `same` or `new`.
    pub trend: &'static str,
    /// Pass rate (0..1) per batch, oldest first: `[batch, pass rate]`.
    pub pass_rate_history: Vec<(String, f64)>,
    /// Sample failing rows (`file:line  rule: column=value`), pseudonymised.
    pub samples: Vec<String>,
}

/// The report of one batch.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    /// Dataset.
    pub dataset: String,
    /// Batch reported.
    pub batch_id: String,
    /// The batch before it, if any.
    pub previous_batch: Option<String>,
    /// Books of landing→raw for the batch.
    pub raw: Option<PromotionRow>,
    /// Books of raw→trusted for the batch.
    pub trusted: Option<PromotionRow>,
    /// Every rule, worst first.
    pub rules: Vec<RuleLine>,
    /// Batches of the dataset held back and still pending (their latest hold), whatever batch
    /// is reported: a held batch is the first thing to fix.
    pub held: Vec<HoldRow>,
}

/// Errors building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing recorded for the dataset or batch.
    #[error("{0}")]
    NotFound(String),
}

fn rank(outcome: &str) -> u8 {
    match outcome {
        "failed" => 0,
        "quarantined" => 1,
        "warned" => 2,
        "skipped" => 3,
        _ => 4,
    }
}

impl QualityReport {
    /// Builds the report of `batch` (default: the newest batch with rule results).
    ///
    /// # Errors
    /// [`ReportError::NotFound`] when nothing was recorded.
    pub fn build(
        dataset: &str,
        history: &History,
        batch: Option<&str>,
        samples: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, ReportError> {
        let mut batches: Vec<String> = Vec::new();
        for r in &history.results {
            if !batches.contains(&r.batch_id) {
                batches.push(r.batch_id.clone());
            }
        }
        let batch_id = match batch {
            Some(b) => batches
                .iter()
                .find(|x| x.as_str() == b)
                .cloned()
                .ok_or_else(|| {
                    ReportError::NotFound(format!(
                        "{dataset}: no quality results for batch `{b}` (batches: {})",
                        batches.join(", ")
                    ))
                })?,
            None => batches.last().cloned().ok_or_else(|| {
                ReportError::NotFound(format!(
                    "{dataset}: no quality results yet; promote it first"
                ))
            })?,
        };
        let pos = batches.iter().position(|b| b == &batch_id).unwrap_or(0);
        let previous_batch = pos.checked_sub(1).map(|i| batches[i].clone());
        let mut rules: Vec<RuleLine> = history
            .results
            .iter()
            .filter(|r| r.batch_id == batch_id)
            .map(|r| {
                let prev = previous_batch
                    .as_ref()
                    .and_then(|p| {
                        history.results.iter().find(|x| {
                            &x.batch_id == p && x.rule_id == r.rule_id && x.stage == r.stage
                        })
                    })
                    .map(|x| x.failure_rate);
                let trend = match prev {
                    None => "new",
                    Some(p) if (r.failure_rate - p).abs() < 1e-12 => "same",
                    Some(p) if r.failure_rate > p => "up",
                    Some(_) => "down",
                };
                let pass_rate_history = batches[..=pos]
                    .iter()
                    .filter_map(|b| {
                        history
                            .results
                            .iter()
                            .find(|x| {
                                &x.batch_id == b && x.rule_id == r.rule_id && x.stage == r.stage
                            })
                            .map(|x| (b.clone(), 1.0 - x.failure_rate))
                    })
                    .collect();
                RuleLine {
                    result: r.clone(),
                    previous_failure_rate: prev,
                    trend,
                    pass_rate_history,
                    samples: samples.get(&r.rule_id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        rules.sort_by(|a, b| {
            rank(&a.result.outcome)
                .cmp(&rank(&b.result.outcome))
                .then(b.result.failure_rate.total_cmp(&a.result.failure_rate))
                .then(a.result.rule_id.cmp(&b.result.rule_id))
        });
        let books = |step: &str| {
            history
                .books
                .iter()
                .find(|r| r.step == step && r.batch_id == batch_id)
                .cloned()
        };
        Ok(Self {
            dataset: dataset.to_string(),
            raw: books(Step::LandingToRaw.as_str()),
            trusted: books(Step::RawToTrusted.as_str()),
            batch_id,
            previous_batch,
            rules,
            held: Vec::new(),
        })
    }

    /// The report of a dataset whose only batches so far were held back.
    pub fn held_only(dataset: &str, held: Vec<HoldRow>) -> Self {
        Self {
            dataset: dataset.to_string(),
            batch_id: String::new(),
            previous_batch: None,
            raw: None,
            trusted: None,
            rules: Vec::new(),
            held,
        }
    }

    /// Compact terminal view.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for h in &self.held {
            let _ = writeln!(
                out,
                "{}  HELD at {}: batch {} file {} ({} of {} rows bad), held at {}\n  because {}\n  to go on: {}",
                self.dataset,
                h.stage,
                h.batch_id,
                h.source_file,
                h.bad_rows,
                h.rows_in,
                h.held_at,
                h.hold.reason,
                h.hold.advice
            );
        }
        if self.batch_id.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "{}  batch {}{}",
            self.dataset,
            self.batch_id,
            self.previous_batch
                .as_ref()
                .map(|p| format!("  (compared with {p})"))
                .unwrap_or_default()
        );
        if let Some(r) = &self.raw {
            let _ = writeln!(
                out,
                "  landing {:>8} → raw {:>8} + rejected {:>6}   file {}",
                r.rows_in, r.rows_promoted, r.rejected, r.source_file
            );
        }
        if let Some(t) = &self.trusted {
            let _ = writeln!(
                out,
                "  raw     {:>8} → new in trusted {:>8} + quarantined {:>6} + duplicates {:>6} ({} corrections applied)",
                t.rows_in, t.rows_promoted, t.quarantined, t.duplicates_dropped, t.updated
            );
        }
        let _ = writeln!(
            out,
            "  {:<8} {:<40} {:<10} {:<11} {:>8} {:>8}  vs prev",
            "stage", "rule", "severity", "outcome", "failed", "rate"
        );
        for r in &self.rules {
            let arrow = match r.trend {
                "up" => "↑",
                "down" => "↓",
                "same" => "=",
                _ => "new",
            };
            let _ = writeln!(
                out,
                "  {:<8} {:<40} {:<10} {:<11} {:>8} {:>7.2}%  {}",
                r.result.stage,
                r.result.rule_id,
                r.result.severity,
                r.result.outcome,
                r.result.failed,
                100.0 * r.result.failure_rate,
                arrow
            );
        }
        out
    }

    /// Self-contained HTML page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!(
            "Quality report — {} — {}",
            esc(&self.dataset),
            esc(&self.batch_id)
        );
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}}h1{{font-size:1.4rem}}\
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}}\
th{{background:#f3f4f6}}.n{{text-align:right;font-variant-numeric:tabular-nums}}\
.failed{{color:#b91c1c;font-weight:600}}.quarantined{{color:#c2410c}}.warned{{color:#a16207}}.passed{{color:#15803d}}.skipped{{color:#6b7280}}\
.books td{{border:none}}code{{font-size:.85rem}}details{{margin:.2rem 0}}</style></head><body>"
        );
        let _ = write!(h, "<h1>{title}</h1>");
        for x in &self.held {
            let _ = write!(
                h,
                "<p class=\"failed\">Held at {}: batch <code>{}</code> (file <code>{}</code>, {} of {} rows bad) because {}. To go on: {}.</p>",
                esc(&x.stage),
                esc(&x.batch_id),
                esc(&x.source_file),
                x.bad_rows,
                x.rows_in,
                esc(&x.hold.reason),
                esc(&x.hold.advice)
            );
        }
        if let Some(p) = &self.previous_batch {
            let _ = write!(
                h,
                "<p>Compared with the previous batch <code>{}</code>.</p>",
                esc(p)
            );
        }
        let _ = write!(h, "<h2>Books</h2><table class=\"books\">");
        if let Some(r) = &self.raw {
            let _ = write!(
                h,
                "<tr><td>landing rows</td><td class=\"n\">{}</td><td>= raw {} + rejected {}</td><td>file <code>{}</code></td></tr>",
                r.rows_in, r.rows_promoted, r.rejected, esc(&r.source_file)
            );
        }
        if let Some(t) = &self.trusted {
            let _ = write!(
                h,
                "<tr><td>raw rows</td><td class=\"n\">{}</td><td>= new in trusted {} + quarantined {} + duplicates dropped {}</td><td>{} corrections applied</td></tr>",
                t.rows_in, t.rows_promoted, t.quarantined, t.duplicates_dropped, t.updated
            );
        }
        let _ = write!(h, "</table><h2>Rules, worst first</h2><table><tr><th>stage</th><th>rule</th><th>severity</th><th>outcome</th><th class=\"n\">evaluated</th><th class=\"n\">failed</th><th class=\"n\">failure rate</th><th>vs previous</th><th>pass rate over batches</th></tr>");
        for r in &self.rules {
            let s = &r.result;
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}</code><br><small>{}</small>",
                esc(&s.stage),
                esc(&s.rule_id),
                esc(&s.description)
            );
            if !r.samples.is_empty() {
                let _ = write!(
                    h,
                    "<details><summary>{} sample failing rows</summary><ul>",
                    r.samples.len()
                );
                for line in &r.samples {
                    let _ = write!(h, "<li><code>{}</code></li>", esc(line));
                }
                let _ = write!(h, "</ul></details>");
            }
            let _ = write!(
                h,
                "</td><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td><td>{}</td><td>{}</td></tr>",
                esc(&s.severity),
                esc(&s.outcome),
                esc(&s.outcome),
                s.evaluated,
                s.failed,
                100.0 * s.failure_rate,
                match r.trend {
                    "up" => "↑ more failures",
                    "down" => "↓ fewer failures",
                    "same" => "=",
                    _ => "new",
                },
                sparkline(&r.pass_rate_history)
            );
        }
        let _ = write!(h, "</table><p><small>Generated by medallion. Identifiers are pseudonymised.</small></p></body></html>");
        h
    }
}

/// An inline SVG line chart of pass rates over batches. The y axis runs from 100% down to the
/// lowest rate seen (at most 95%), so a drop of a tenth of a percent is still visible.
fn sparkline(points: &[(String, f64)]) -> String {
    let (w, ht, left) = (190.0, 40.0, 34.0);
    let lowest = points.iter().map(|(_, v)| *v).fold(0.95f64, f64::min);
    let lo = (lowest * 20.0).floor() / 20.0;
    let span = (1.0 - lo).max(1e-9);
    let n = points.len().max(1) as f64;
    let xy = |i: usize, v: f64| {
        let x = if n <= 1.0 {
            (left + w) / 2.0
        } else {
            left + 4.0 + i as f64 * (w - left - 8.0) / (n - 1.0)
        };
        let y = 4.0 + (1.0 - v.clamp(lo, 1.0)) / span * (ht - 8.0);
        (x, y)
    };
    let mut path = String::new();
    let mut dots = String::new();
    for (i, (batch, v)) in points.iter().enumerate() {
        let (x, y) = xy(i, *v);
        let _ = write!(path, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
        let _ = write!(
            dots,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {:.2}% pass</title></circle>",
            esc(batch),
            100.0 * v
        );
    }
    format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"pass rate over batches\">\
<text x=\"0\" y=\"9\" font-size=\"8\" fill=\"#6b7280\">100%</text><text x=\"0\" y=\"{:.0}\" font-size=\"8\" fill=\"#6b7280\">{:.0}%</text>\
<line x1=\"{left}\" y1=\"4\" x2=\"{w}\" y2=\"4\" stroke=\"#d1d5db\" stroke-dasharray=\"2 2\"/>\
<line x1=\"{left}\" y1=\"{:.0}\" x2=\"{w}\" y2=\"{:.0}\" stroke=\"#d1d5db\" stroke-dasharray=\"2 2\"/>\
<path d=\"{path}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\"/><g fill=\"#2563eb\">{dots}</g></svg>",
        ht - 2.0,
        lo * 100.0,
        ht - 4.0,
        ht - 4.0
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(batch: &str, rule: &str, failed: u64) -> StoredResult {
        StoredResult {
            stage: "trusted".into(),
            batch_id: batch.into(),
            rule_id: rule.into(),
            description: "<desc>".into(),
            severity: "quarantine".into(),
            level: "row".into(),
            evaluated: 100,
            failed,
            failure_rate: failed as f64 / 100.0,
            metric: None,
            outcome: if failed > 0 {
                "quarantined".into()
            } else {
                "passed".into()
            },
        }
    }

    #[test]
    fn worst_first_with_trend_and_escaped_html() {
        let h = History {
            books: vec![],
            results: vec![
                result("b1", "a", 1),
                result("b1", "b", 0),
                result("b2", "a", 3),
                result("b2", "b", 0),
                result("b2", "c", 2),
            ],
        };
        let r = QualityReport::build("grades", &h, None, &BTreeMap::new()).unwrap();
        assert_eq!(r.batch_id, "b2");
        let order: Vec<(&str, &str)> = r
            .rules
            .iter()
            .map(|l| (l.result.rule_id.as_str(), l.trend))
            .collect();
        assert_eq!(order, vec![("a", "up"), ("c", "new"), ("b", "same")]);
        assert_eq!(r.rules[0].pass_rate_history.len(), 2);
        let html = r.html();
        assert!(html.contains("&lt;desc&gt;") && !html.contains("<desc>"));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(r.text().contains("↑"));
        assert!(QualityReport::build("grades", &h, Some("nope"), &BTreeMap::new()).is_err());
    }
}
