//! Scoring the rebuilt list against `final_result`: ROC-AUC, precision and recall of the
//! `high` and `high or medium` lists, and the two one-line rules beside the model at the
//! rule's list length.
//!
//! Invariants: positive = Fail or Withdrawn; tied scores count half in the AUC; the model's
//! top k breaks ties in the risk score by course and student id; a rate whose denominator is 0
//! is `None`.

use std::collections::HashMap;

use serde::Serialize;

use super::frames::build;
use super::{Apart, Oulad, Result};
use crate::curated::products;
use crate::curated::CuratedConfig;

/// Precision, recall and share of one list.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ListScore {
    /// Students on the list.
    pub flagged: u64,
    /// flagged / students.
    pub share: f64,
    /// Positives among the flagged.
    pub precision: Option<f64>,
    /// Flagged positives / positives.
    pub recall: Option<f64>,
}

/// A one-line rule beside the model at the rule's list length.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RuleScore {
    /// The rule's own list.
    pub rule: ListScore,
    /// The model's top students by risk score, as many as the rule flags.
    pub model_at_same_length: ListScore,
}

/// One row of the evaluation: a presentation or `overall`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRow {
    /// Course id (`AAA-2013J`) or `overall`.
    pub presentation: String,
    /// Students on the list on day N.
    pub students: u64,
    /// Of them, Fail or Withdrawn at the end.
    pub positives: u64,
    /// Reported apart.
    pub apart: Apart,
    /// ROC-AUC of the risk score (ties count half).
    pub auc: Option<f64>,
    /// The `high` list.
    pub high: ListScore,
    /// The `high` or `medium` list.
    pub high_or_medium: ListScore,
    /// "No activity in the last 14 days".
    pub no_activity_14_days: RuleScore,
    /// "Missed an assessment that was due".
    pub missed_due_assessment: RuleScore,
}

/// What `evaluate at-risk` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Day N.
    pub as_of_day: i64,
    /// Activity files read.
    pub activity_files: usize,
    /// Per presentation, then `overall`.
    pub rows: Vec<EvalRow>,
}

/// One scored student.
#[derive(Debug, Clone)]
struct Scored {
    course: String,
    student: String,
    score: f64,
    level: String,
    positive: bool,
    no_activity: bool,
    missed: bool,
}

/// ROC-AUC with tied scores counting half.
pub fn auc(scores: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * v[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

fn list_score(flags: &[bool], positives: &[bool]) -> ListScore {
    let n = flags.len() as u64;
    let flagged = flags.iter().filter(|f| **f).count() as u64;
    let tp = flags
        .iter()
        .zip(positives)
        .filter(|(f, p)| **f && **p)
        .count() as u64;
    let pos = positives.iter().filter(|p| **p).count() as u64;
    ListScore {
        flagged,
        share: if n > 0 {
            flagged as f64 / n as f64
        } else {
            0.0
        },
        precision: (flagged > 0).then(|| tp as f64 / flagged as f64),
        recall: (pos > 0).then(|| tp as f64 / pos as f64),
    }
}

fn rule_score(group: &[&Scored], rule: impl Fn(&Scored) -> bool) -> RuleScore {
    let positives: Vec<bool> = group.iter().map(|x| x.positive).collect();
    let flags: Vec<bool> = group.iter().map(|x| rule(x)).collect();
    let k = flags.iter().filter(|f| **f).count();
    // The model's top k: highest score first, ties by course and student id.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|&a, &b| {
        group[b]
            .score
            .total_cmp(&group[a].score)
            .then_with(|| group[a].course.cmp(&group[b].course))
            .then_with(|| group[a].student.cmp(&group[b].student))
    });
    let mut top = vec![false; group.len()];
    for &i in order.iter().take(k) {
        top[i] = true;
    }
    RuleScore {
        rule: list_score(&flags, &positives),
        model_at_same_length: list_score(&top, &positives),
    }
}

fn row(name: &str, group: &[&Scored], apart: Apart) -> EvalRow {
    let positives: Vec<bool> = group.iter().map(|x| x.positive).collect();
    let level = |f: &dyn Fn(&str) -> bool| -> Vec<bool> {
        group.iter().map(|x| f(x.level.as_str())).collect()
    };
    EvalRow {
        presentation: name.to_string(),
        students: group.len() as u64,
        positives: positives.iter().filter(|p| **p).count() as u64,
        apart,
        auc: auc(&group
            .iter()
            .map(|x| (x.score, x.positive))
            .collect::<Vec<_>>()),
        high: list_score(&level(&|l| l == "high"), &positives),
        high_or_medium: list_score(&level(&|l| l != "low"), &positives),
        no_activity_14_days: rule_score(group, |x| x.no_activity),
        missed_due_assessment: rule_score(group, |x| x.missed),
    }
}

/// Rebuilds the at-risk list as of day `n` and scores it.
///
/// # Errors
/// Building the list (polars) or an empty population.
pub fn at_risk(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Evaluation> {
    let b = build(o, n, cfg)?;
    let list =
        products::at_risk_students(Some(b.attendance), Some(b.performance), b.engagement, cfg)
            .and_then(products::publish)?;
    let ids = list.column("student_id")?.str()?.clone();
    let courses = list.column("course_id")?.str()?.clone();
    let scores = list.column("risk_score")?.f64()?.clone();
    let levels = list.column("risk_level")?.str()?.clone();
    let mut by_key: HashMap<(String, String), (f64, String)> = HashMap::new();
    for i in 0..list.height() {
        by_key.insert(
            (
                courses.get(i).unwrap_or_default().to_string(),
                ids.get(i).unwrap_or_default().to_string(),
            ),
            (
                scores.get(i).unwrap_or_default(),
                levels.get(i).unwrap_or("low").to_string(),
            ),
        );
    }
    let mut scored = Vec::with_capacity(b.list.len());
    for m in &b.list {
        let (score, level) = by_key
            .get(&(m.course.clone(), m.student.clone()))
            .cloned()
            .unwrap_or((0.0, "low".to_string()));
        let days = o
            .activity
            .get(&(m.course.clone(), m.student.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let no_activity = !days.iter().any(|d| *d > n - 14 && *d <= n);
        let missed = o.assessments.iter().any(|(aid, a)| {
            a.course == m.course
                && a.due <= n
                && !o
                    .submissions
                    .contains_key(&(aid.clone(), m.student.clone()))
        });
        scored.push(Scored {
            course: m.course.clone(),
            student: m.student.clone(),
            score,
            level,
            positive: m.positive,
            no_activity,
            missed,
        });
    }
    let mut rows = Vec::new();
    let mut total = Apart::default();
    for p in &o.presentations {
        let c = p.course_id();
        let group: Vec<&Scored> = scored.iter().filter(|x| x.course == c).collect();
        let apart = b.apart.get(&c).copied().unwrap_or_default();
        total.withdrawn_by_day += apart.withdrawn_by_day;
        total.not_registered_yet += apart.not_registered_yet;
        if !group.is_empty() {
            rows.push(row(&c, &group, apart));
        }
    }
    rows.push(row("overall", &scored.iter().collect::<Vec<_>>(), total));
    Ok(Evaluation {
        as_of_day: n,
        activity_files: o.activity_files,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[(1.0, false), (2.0, true)]), Some(1.0));
        assert_eq!(auc(&[(1.0, true), (2.0, false)]), Some(0.0));
        assert_eq!(auc(&[(1.0, true), (1.0, false)]), Some(0.5));
        // 2 positives, 2 negatives: pairs (p,n) won 3 of 4.
        assert_eq!(
            auc(&[(0.1, false), (0.4, true), (0.35, false), (0.8, true)]),
            Some(1.0)
        );
        assert_eq!(
            auc(&[(0.1, false), (0.4, true), (0.5, false), (0.8, true)]),
            Some(0.75)
        );
        assert_eq!(auc(&[(1.0, true)]), None);
    }
}
