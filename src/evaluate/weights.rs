//! `evaluate at-risk --fit`: the indicator weights fitted by logistic regression on the
//! severities of the list as of day N, and the level cut-offs they give.
//!
//! Invariants: a weight is never negative (a negative fit is 0) and is rounded to 0.1; a
//! cut-off is a multiple of 0.01 that at most its share of the fitted students reach.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::Serialize;

use super::frames::build;
use super::{Oulad, Presentation, Result};
use crate::curated::products::{self, INDICATORS};
use crate::curated::CuratedConfig;

/// Weights fitted by [`fit`].
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// Day N the severities were computed on.
    pub as_of_day: i64,
    /// Presentations fitted on.
    pub presentations: Vec<String>,
    /// Students fitted on.
    pub students: u64,
    /// Logistic intercept (not used by the score).
    pub intercept: f64,
    /// Weight per indicator, rounded to 0.1 (negative ones set to 0).
    pub weights: BTreeMap<String, f64>,
    /// Score cut-offs: the lowest multiple of 0.01 that at most [`MEDIUM_SHARE`] (medium) and
    /// [`HIGH_SHARE`] (high) of the fitted students reach.
    pub medium: f64,
    /// See `medium`.
    pub high: f64,
}

/// Fits the indicator weights by logistic regression (Newton's method, a small ridge) on the
/// severities of the list as of day `n`, and proposes level cut-offs. Fit on earlier
/// presentations only and report on later ones.
///
/// # Errors
/// Building the list (polars) or an empty population.
pub fn fit(o: &Oulad, n: i64, cfg: &CuratedConfig) -> Result<Fit> {
    let b = build(o, n, cfg)?;
    let sev =
        products::at_risk_severities(Some(b.attendance), Some(b.performance), b.engagement, cfg)?;
    let label: HashMap<(String, String), bool> = b
        .list
        .iter()
        .map(|m| ((m.course.clone(), m.student.clone()), m.positive))
        .collect();
    let ids = sev.column("student_id")?.str()?.clone();
    let courses = sev.column("course_id")?.str()?.clone();
    let cols: Vec<Float64Chunked> = INDICATORS
        .iter()
        .map(|c| Ok(sev.column(c)?.f64()?.clone()))
        .collect::<Result<_>>()?;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..sev.height() {
        let key = (
            courses.get(i).unwrap_or_default().to_string(),
            ids.get(i).unwrap_or_default().to_string(),
        );
        let Some(pos) = label.get(&key) else { continue };
        let mut row = vec![1.0];
        row.extend(cols.iter().map(|c| c.get(i).unwrap_or(0.0)));
        x.push(row);
        y.push(if *pos { 1.0 } else { 0.0 });
    }
    let w = logistic(&x, &y, 1.0);
    let weights: BTreeMap<String, f64> = INDICATORS
        .iter()
        .zip(&w[1..])
        .map(|(k, v)| ((*k).to_string(), (v.max(0.0) * 10.0).round() / 10.0))
        .collect();
    let mut scores: Vec<f64> = x
        .iter()
        .map(|r| {
            INDICATORS
                .iter()
                .zip(&r[1..])
                .map(|(k, v)| weights[*k] * v)
                .sum()
        })
        .collect();
    scores.sort_by(f64::total_cmp);
    let q = |share: f64| cut_off(&scores, share);
    Ok(Fit {
        as_of_day: n,
        presentations: o
            .presentations
            .iter()
            .map(Presentation::course_id)
            .collect(),
        students: y.len() as u64,
        intercept: w[0],
        medium: q(MEDIUM_SHARE),
        high: q(HIGH_SHARE),
        weights,
    })
}

/// The share of the fitted students `--fit` cuts `high` at: a list an educator can work
/// through (issue 11: 10-20% of the students).
pub const HIGH_SHARE: f64 = 0.20;
/// The share of the fitted students `--fit` cuts `medium` (or `high`) at.
pub const MEDIUM_SHARE: f64 = 0.40;

/// The lowest multiple of 0.01 that at most `share` of `sorted` (ascending) reach, never below
/// the smallest positive score (0 would put everyone on the list).
///
/// The step was 0.05 until a forward check on the earlier presentations alone (fit on 2013B,
/// check on 2013J; fit on 2013B and 2013J, check on 2014B; README, "The at-risk model") found
/// that 0.01 keeps `high` at least as precise and a little longer (closer to the share), while
/// a cut per presentation averaged or a precision target on the fitted students did not.
fn cut_off(sorted: &[f64], share: f64) -> f64 {
    let Some(max) = sorted.last() else {
        return 0.0;
    };
    let cut = |k: i64| k as f64 / 100.0;
    let reach = |c: f64| {
        let below = sorted.partition_point(|s| *s < c - 1e-9);
        (sorted.len() - below) as f64 / sorted.len() as f64
    };
    let last = (*max * 100.0).floor() as i64 + 1;
    let k = (1..=last).find(|k| reach(cut(*k)) <= share).unwrap_or(last);
    cut(k)
}

/// Logistic regression by Newton's method with a ridge `l2` on the non-intercept weights.
#[allow(clippy::needless_range_loop)] // matrix code: indices read clearer
fn logistic(x: &[Vec<f64>], y: &[f64], l2: f64) -> Vec<f64> {
    let k = x.first().map_or(0, Vec::len);
    let mut w = vec![0.0; k];
    for _ in 0..30 {
        let mut g = vec![0.0; k];
        let mut h = vec![vec![0.0; k]; k];
        for (xi, yi) in x.iter().zip(y) {
            let z: f64 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            for a in 0..k {
                g[a] += (p - yi) * xi[a];
                for b in 0..k {
                    h[a][b] += p * (1.0 - p) * xi[a] * xi[b];
                }
            }
        }
        for a in 1..k {
            g[a] += l2 * w[a];
            h[a][a] += l2;
        }
        // An indicator that never varies leaves a zero row: keep the system solvable.
        for (a, row) in h.iter_mut().enumerate() {
            row[a] += 1e-9;
        }
        let step = solve(h, g);
        for a in 0..k {
            w[a] -= step[a];
        }
    }
    w
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)] // two rows of one matrix: indices read clearer
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for i in 0..n {
        let p = (i..n)
            .max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))
            .unwrap_or(i);
        a.swap(i, p);
        b.swap(i, p);
        let d = a[i][i];
        if d.abs() < 1e-300 {
            continue;
        }
        for r in i + 1..n {
            let f = a[r][i] / d;
            for c in i..n {
                a[r][c] -= f * a[i][c];
            }
            b[r] -= f * b[i];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|c| a[i][c] * x[c]).sum();
        x[i] = if a[i][i].abs() < 1e-300 {
            0.0
        } else {
            (b[i] - s) / a[i][i]
        };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_off_puts_at_most_the_share_on_the_list() {
        // 0.00, 0.01, ..., 0.99: 20% reach 0.80, 40% reach 0.60.
        let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        assert!((cut_off(&scores, 0.20) - 0.80).abs() < 1e-9);
        assert!((cut_off(&scores, 0.40) - 0.60).abs() < 1e-9);
        // Ties at the cut: the list never grows past the share.
        let tied = [0.0, 0.0, 1.0, 1.0, 1.0];
        assert!((cut_off(&tied, 0.2) - 1.01).abs() < 1e-9);
        // A step of 0.01: 20% of these reach 3.28, 21% reach 3.27.
        let fine: Vec<f64> = (0..100)
            .map(|i| {
                if i < 79 {
                    1.0
                } else if i < 80 {
                    3.27
                } else {
                    3.28
                }
            })
            .collect();
        assert!((cut_off(&fine, 0.20) - 3.28).abs() < 1e-9);
        assert_eq!(cut_off(&[], 0.2), 0.0);
    }

    #[test]
    fn logistic_recovers_a_clear_signal() {
        // y = 1 mostly when x = 1.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let xi = f64::from(i % 2);
            x.push(vec![1.0, xi]);
            y.push(if (i % 2 == 1 && i % 10 != 1) || i % 10 == 0 {
                1.0
            } else {
                0.0
            });
        }
        let w = logistic(&x, &y, 0.0);
        assert!(w[1] > 2.0, "{w:?}");
    }
}
