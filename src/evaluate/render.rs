//! The evaluation and the fitted weights as text: a table per presentation, and a YAML
//! snippet for `pipelines/curated/products.yaml`.
//!
//! Invariants: pure formatting of what it is given, nothing recomputed; a missing rate shows
//! as `-`.

use super::{Evaluation, Fit};

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{:.2}", x))
}

/// The evaluation as a text table.
pub fn text(e: &Evaluation) -> String {
    let mut out = format!(
        "At-risk list as of day {} (only data dated on or before day {}), against final_result (Fail or Withdrawn = positive)\n\n",
        e.as_of_day, e.as_of_day
    );
    out.push_str(&format!(
        "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>21} | {:>21} | {:>26} | {:>26}\n",
        "",
        "",
        "",
        "apart",
        "",
        "high",
        "high or medium",
        "no activity 14 days",
        "missed a due assessment"
    ));
    out.push_str(&format!(
        "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>9} | {:>5} {:>5} {:>4} {:>9}\n",
        "presentation", "students", "pos", "wdrawn", "auc",
        "share", "prec", "rec", "", "share", "prec", "rec", "",
        "share", "prec", "rec", "model prec", "share", "prec", "rec", "model prec"
    ));
    for r in &e.rows {
        out.push_str(&format!(
            "{:<12} {:>8} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>4} | {:>5} {:>5} {:>4} {:>9} | {:>5} {:>5} {:>4} {:>9}\n",
            r.presentation,
            r.students,
            r.positives,
            r.apart.withdrawn_by_day,
            pct(r.auc),
            pct(Some(r.high.share)),
            pct(r.high.precision),
            pct(r.high.recall),
            "",
            pct(Some(r.high_or_medium.share)),
            pct(r.high_or_medium.precision),
            pct(r.high_or_medium.recall),
            "",
            pct(Some(r.no_activity_14_days.rule.share)),
            pct(r.no_activity_14_days.rule.precision),
            pct(r.no_activity_14_days.rule.recall),
            pct(r.no_activity_14_days.model_at_same_length.precision),
            pct(Some(r.missed_due_assessment.rule.share)),
            pct(r.missed_due_assessment.rule.precision),
            pct(r.missed_due_assessment.rule.recall),
            pct(r.missed_due_assessment.model_at_same_length.precision),
        ));
    }
    out.push_str("\nwdrawn: registration ended on or before the day, so not on the list (reported apart). model prec: precision of the model's top students by risk score at the rule's list length.\n");
    out
}

/// The fitted weights as a YAML snippet for `pipelines/curated/products.yaml`.
pub fn fit_text(f: &Fit) -> String {
    let mut out = format!(
        "# fitted as of day {} on {} students of {}\n# (logistic regression on the indicators' severities; intercept {:.2}, not used)\nlevels:\n  medium: {}\n  high: {}\nweights:\n",
        f.as_of_day,
        f.students,
        f.presentations.join(", "),
        f.intercept,
        f.medium,
        f.high
    );
    for (k, v) in &f.weights {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out
}
