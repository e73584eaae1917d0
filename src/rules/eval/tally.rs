//! The [`Tally`] of one batch's rules, added up chunk by chunk: rows judged and failed per row
//! rule, and what each dataset rule measures, turned into one [`RuleResult`] per rule.
//!
//! Invariants: judging a batch in chunks gives the results of judging it whole (sums, maxima
//! and distinct sets merge; `unique` needs the batch's repeats marked beforehand); a rule that
//! cannot be judged (no history yet, a referenced table missing) is `skipped`, never `passed`.

use polars::prelude::*;

use super::expr::{fail_expr, filter_expr, shown_value};
use super::{none_if_empty, Context, Outcome, RuleResult, FAILURES, QUARANTINE_FLAG, RULE_IDS};
use crate::contract::ColumnType;
use crate::rules::{Check, Rule, RuleSet, RulesError, Severity};

/// What a dataset-level check measures, summed over the chunks of one batch.
#[derive(Debug, Clone)]
enum Measure {
    /// Nothing beyond the row count (row counts, skipped rules).
    Rows,
    /// Nulls in a column (completeness, null share).
    Nulls(String, u64),
    /// Sum and count of a column's non-null values (mean).
    Sum(String, f64, u64),
    /// The largest physical value of a date or timestamp column (freshness).
    Newest(String, Option<i64>),
    /// The distinct non-null values seen so far.
    Distinct(String, Option<Series>),
    /// The judged frame's own columns (schema match without a delivered header).
    Columns(Option<Vec<String>>),
}

impl Measure {
    fn of(check: &Check) -> Self {
        match check {
            Check::Completeness { column, .. }
            | Check::DetectAnomaly {
                statistic: crate::rules::Statistic::NullShare,
                column: Some(column),
                ..
            } => Self::Nulls(column.clone(), 0),
            Check::MeanBetween { column, .. }
            | Check::DetectAnomaly {
                statistic: crate::rules::Statistic::Mean,
                column: Some(column),
                ..
            } => Self::Sum(column.clone(), 0.0, 0),
            Check::Freshness { column, .. } => Self::Newest(column.clone(), None),
            Check::DistinctCount { column, .. } => Self::Distinct(column.clone(), None),
            Check::SchemaMatch { .. } => Self::Columns(None),
            _ => Self::Rows,
        }
    }

    fn add(&mut self, frame: &DataFrame) -> Result<(), RulesError> {
        match self {
            Self::Rows => {}
            Self::Nulls(c, n) => *n += frame.column(c)?.null_count() as u64,
            Self::Sum(c, sum, n) => {
                let v = frame
                    .column(c)?
                    .as_materialized_series()
                    .cast(&DataType::Float64)?;
                let v = v.f64()?;
                *sum += v.sum().unwrap_or(0.0);
                *n += (v.len() - v.null_count()) as u64;
            }
            Self::Newest(c, max) => {
                let phys = frame
                    .column(c)?
                    .as_materialized_series()
                    .to_physical_repr()
                    .into_owned();
                let newest = phys.cast(&DataType::Int64)?.i64()?.max();
                *max = match (*max, newest) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            Self::Distinct(c, seen) => {
                let here = frame
                    .column(c)?
                    .as_materialized_series()
                    .drop_nulls()
                    .unique()?;
                *seen = Some(match seen.take() {
                    Some(mut s) => {
                        s.append(&here)?;
                        s.unique()?
                    }
                    None => here,
                });
            }
            Self::Columns(cols) => {
                if cols.is_none() {
                    *cols = Some(
                        frame
                            .get_column_names()
                            .iter()
                            .map(|c| c.to_string())
                            .collect(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The counts and measures of one batch's rules, added up chunk by chunk: every row rule's
/// rows judged and failed, every dataset rule's measure. Judging a batch in chunks gives the
/// same results as judging it whole (a `unique` rule needs the batch's repeats marked in
/// [`batch_unique_column`] and [`Context::batch_unique`]).
#[derive(Debug, Clone)]
pub struct Tally {
    height: u64,
    /// Per rule: rows judged and rows failed (row rules).
    rows: Vec<(u64, u64)>,
    /// Per rule: whether it was judged row by row.
    row_level: Vec<bool>,
    measures: Vec<Measure>,
}

impl Tally {
    /// An empty tally for `set`.
    pub fn new(set: &RuleSet) -> Self {
        Self {
            height: 0,
            rows: vec![(0, 0); set.rules.len()],
            row_level: vec![false; set.rules.len()],
            measures: set.rules.iter().map(|r| Measure::of(&r.check)).collect(),
        }
    }

    /// Rows judged so far.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Judges one chunk: returns it with [`RULE_IDS`], [`FAILURES`] and [`QUARANTINE_FLAG`]
    /// and adds its counts and measures.
    ///
    /// # Errors
    /// polars errors (a column missing from the frame, a bad regex that slipped validation).
    pub fn add(
        &mut self,
        frame: DataFrame,
        set: &RuleSet,
        cx: &Context,
    ) -> Result<DataFrame, RulesError> {
        let mut row_rules = Vec::new();
        let mut flags = Vec::new();
        let mut filters = Vec::new();
        for (i, rule) in set.rules.iter().enumerate() {
            if let Some(e) = fail_expr(rule, cx) {
                flags.push(e.alias(format!("__f{i}")));
                filters.push(match &rule.filter {
                    Some(f) => filter_expr(f).alias(format!("__w{i}")),
                    None => lit(true).alias(format!("__w{i}")),
                });
                row_rules.push(i);
            }
        }
        let ids: Vec<Expr> = row_rules
            .iter()
            .map(|&i| {
                when(col(format!("__f{i}").as_str()))
                    .then(lit(set.rules[i].id.clone()))
                    .otherwise(lit(NULL))
            })
            .collect();
        let shown: Vec<Expr> = row_rules
            .iter()
            .map(|&i| {
                when(col(format!("__f{i}").as_str()))
                    .then(shown_value(&set.rules[i]))
                    .otherwise(lit(NULL).cast(DataType::String))
            })
            .collect();
        let quarantine = row_rules
            .iter()
            .filter(|&&i| set.rules[i].severity == Severity::Quarantine)
            .fold(lit(false), |acc, &i| {
                acc.or(col(format!("__f{i}").as_str()))
            });
        let mut lf = frame.lazy().with_columns(flags).with_columns(filters);
        if row_rules.is_empty() {
            lf = lf.with_columns([
                lit(NULL).cast(DataType::String).alias(RULE_IDS),
                lit(NULL).cast(DataType::String).alias(FAILURES),
            ]);
        } else {
            lf = lf.with_columns([
                none_if_empty(concat_str(ids, ",", true)).alias(RULE_IDS),
                none_if_empty(concat_str(shown, "; ", true)).alias(FAILURES),
            ]);
        }
        let mut evaluated = lf
            .with_column(quarantine.alias(QUARANTINE_FLAG))
            .collect()?;
        self.height += evaluated.height() as u64;
        for &i in &row_rules {
            let sum = |c: String| -> Result<u64, RulesError> {
                Ok(evaluated.column(&c)?.bool()?.sum().unwrap_or(0) as u64)
            };
            let (f, w) = (sum(format!("__f{i}"))?, sum(format!("__w{i}"))?);
            self.rows[i].0 += w;
            self.rows[i].1 += f;
            self.row_level[i] = true;
        }
        for (i, m) in self.measures.iter_mut().enumerate() {
            if !row_rules.contains(&i) {
                m.add(&evaluated)?;
            }
        }
        for &i in &row_rules {
            evaluated.drop_in_place(&format!("__f{i}"))?;
            evaluated.drop_in_place(&format!("__w{i}"))?;
        }
        Ok(evaluated)
    }

    /// One result per rule, in rule order, over every chunk added.
    pub fn results(&self, set: &RuleSet, cx: &Context) -> Vec<RuleResult> {
        let mut results = Vec::with_capacity(set.rules.len());
        for (i, rule) in set.rules.iter().enumerate() {
            let skipped =
                matches!(rule.check, Check::References { .. }) && !cx.refs.contains_key(&rule.id);
            let (evaluated_n, failed, metric) = if skipped {
                (0, 0, None)
            } else if self.row_level[i] {
                (self.rows[i].0, self.rows[i].1, None)
            } else {
                self.dataset_check(rule, &self.measures[i], cx)
            };
            let no_history = matches!(
                rule.check,
                Check::RowCountChange { .. } | Check::DetectAnomaly { .. }
            ) && cx
                .history
                .get(&rule.id)
                .is_none_or(|h| h.len() < history_needed(&rule.check));
            let outcome = if skipped || (no_history && failed == 0) {
                Outcome::Skipped
            } else if failed == 0 {
                Outcome::Passed
            } else {
                match rule.severity {
                    Severity::Warn => Outcome::Warned,
                    Severity::Quarantine => Outcome::Quarantined,
                    Severity::Fail => Outcome::Failed,
                }
            };
            results.push(RuleResult {
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                severity: rule.severity,
                level: if rule.check.is_row_level() {
                    "row"
                } else {
                    "dataset"
                },
                evaluated: evaluated_n,
                failed,
                metric,
                outcome,
            });
        }
        results
    }

    /// A dataset-level check's (judged, failed, metric) from its measure.
    fn dataset_check(
        &self,
        rule: &Rule,
        measure: &Measure,
        cx: &Context,
    ) -> (u64, u64, Option<f64>) {
        let height = self.height;
        let null_share = || match measure {
            Measure::Nulls(_, n) if height > 0 => *n as f64 / height as f64,
            _ => 0.0,
        };
        let mean = || match measure {
            Measure::Sum(_, sum, n) if *n > 0 => Some(sum / *n as f64),
            _ => None,
        };
        let history = cx
            .history
            .get(&rule.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match &rule.check {
            Check::Completeness { min, .. } => {
                let share = 1.0 - null_share();
                (1, u64::from(share < *min), Some(share))
            }
            Check::RowCount { min, max } => {
                let bad = min.is_some_and(|m| height < m) || max.is_some_and(|m| height > m);
                (1, u64::from(bad), Some(height as f64))
            }
            Check::RowCountChange { max_change } => {
                let bad = match history.last() {
                    Some(&prev) if prev > 0.0 => (height as f64 / prev - 1.0).abs() > *max_change,
                    _ => false,
                };
                (1, u64::from(bad), Some(height as f64))
            }
            Check::Freshness {
                column,
                max_age_hours,
            } => {
                let newest = match measure {
                    Measure::Newest(_, v) => *v,
                    _ => None,
                };
                let age_hours = newest.map(|v| match (cx.types)(column) {
                    Some(ColumnType::Date) => {
                        (cx.as_of.0.timestamp() as f64 - v as f64 * 86_400.0) / 3600.0
                    }
                    _ => (cx.as_of.0.timestamp_micros() - v) as f64 / 3.6e9,
                });
                let bad = age_hours.is_none_or(|a| a > *max_age_hours);
                (1, u64::from(bad), age_hours)
            }
            Check::DistinctCount { min, max, .. } => {
                let n = match measure {
                    Measure::Distinct(_, Some(s)) => s.len() as u64,
                    _ => 0,
                };
                let bad = min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m);
                (1, u64::from(bad), Some(n as f64))
            }
            Check::MeanBetween { min, max, .. } => {
                let mean = mean();
                let bad = mean.is_none_or(|m| m < *min || m > *max);
                (1, u64::from(bad), mean)
            }
            Check::DetectAnomaly {
                statistic,
                column,
                window,
                sigmas,
            } => {
                let value = match (statistic, column) {
                    (crate::rules::Statistic::RowCount, _) => Some(height as f64),
                    (crate::rules::Statistic::NullShare, Some(_)) => Some(null_share()),
                    (crate::rules::Statistic::Mean, Some(_)) => mean(),
                    _ => None,
                };
                let recent = &history[history.len().saturating_sub(*window)..];
                let bad = match value {
                    Some(v) if recent.len() >= 3 => {
                        let n = recent.len() as f64;
                        let mean = recent.iter().sum::<f64>() / n;
                        let sd = (recent.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                            / (n - 1.0))
                            .sqrt();
                        // A flat history still allows a little movement (1% of the mean).
                        let band = (sigmas * sd).max(mean.abs() * 0.01);
                        (v - mean).abs() > band
                    }
                    _ => false,
                };
                (1, u64::from(bad), value)
            }
            Check::SchemaMatch {
                columns,
                allow_extra,
            } => {
                let delivered: Vec<String> = match (cx.delivered, measure) {
                    (Some(d), _) => d.to_vec(),
                    // Lineage, rule and internal columns all start with `_`.
                    (None, Measure::Columns(Some(cols))) => cols
                        .iter()
                        .filter(|c| !c.starts_with('_'))
                        .cloned()
                        .collect(),
                    (None, _) => Vec::new(),
                };
                let missing = columns.iter().filter(|c| !delivered.contains(c)).count();
                let extra = if *allow_extra {
                    0
                } else {
                    delivered.iter().filter(|d| !columns.contains(d)).count()
                };
                let off = missing + extra;
                (1, u64::from(off > 0), Some(off as f64))
            }
            _ => (0, 0, None),
        }
    }
}

fn history_needed(check: &Check) -> usize {
    match check {
        Check::DetectAnomaly { .. } => 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use crate::rules::eval::*;
    use crate::rules::{Check, RuleSet, Severity};

    #[test]
    fn a_batch_judged_in_chunks_gives_the_results_of_the_whole() {
        let w = Severity::Warn;
        let set = RuleSet {
            rules: vec![
                rule(
                    "complete",
                    Check::Completeness {
                        column: "score".into(),
                        min: 0.9,
                    },
                    w,
                ),
                rule(
                    "rows",
                    Check::RowCount {
                        min: Some(5),
                        max: None,
                    },
                    w,
                ),
                rule(
                    "mean",
                    Check::MeanBetween {
                        column: "score".into(),
                        min: 0.0,
                        max: 4.0,
                    },
                    w,
                ),
                rule(
                    "distinct",
                    Check::DistinctCount {
                        column: "kind".into(),
                        min: Some(3),
                        max: None,
                    },
                    w,
                ),
                rule(
                    "positive",
                    Check::Range {
                        column: "score".into(),
                        min: Some(0.0),
                        max: None,
                    },
                    Severity::Quarantine,
                ),
                rule(
                    "one_kind",
                    Check::Unique {
                        columns: vec!["kind".into()],
                    },
                    w,
                ),
            ],
        };
        let types = types;
        let whole = evaluate(frame(), &set, &cx(&types)).unwrap();
        // Chunks of 1 and 3 rows: `unique` needs the batch's repeats marked up front.
        let repeats: std::collections::HashSet<String> = ["one_kind".to_string()].into();
        let chunked_cx = Context {
            batch_unique: Some(&repeats),
            ..cx(&types)
        };
        let mut tally = Tally::new(&set);
        let mut flagged = 0;
        for (offset, len) in [(0, 1), (1, 3)] {
            let mut chunk = frame().slice(offset, len);
            let kinds: Vec<bool> = chunk
                .column("kind")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|k| k == Some("quiz"))
                .collect();
            chunk
                .with_column(Column::new(batch_unique_column("one_kind").into(), kinds))
                .unwrap();
            let out = tally.add(chunk, &set, &chunked_cx).unwrap();
            flagged += out
                .column(QUARANTINE_FLAG)
                .unwrap()
                .bool()
                .unwrap()
                .sum()
                .unwrap_or(0);
        }
        let chunked = tally.results(&set, &chunked_cx);
        let strip = |r: &[RuleResult]| -> Vec<(String, u64, u64, Option<f64>, Outcome)> {
            r.iter()
                .map(|r| {
                    (
                        r.rule_id.clone(),
                        r.evaluated,
                        r.failed,
                        r.metric,
                        r.outcome,
                    )
                })
                .collect()
        };
        assert_eq!(strip(&chunked), strip(&whole.results));
        let whole_flagged = whole
            .frame
            .column(QUARANTINE_FLAG)
            .unwrap()
            .bool()
            .unwrap()
            .sum();
        assert_eq!(Some(flagged), whole_flagged);
        assert_eq!(tally.height(), 4);
        // And the measures really moved: one null score of four, mean of 5, 12, -1.
        assert_eq!(chunked[0].metric, Some(0.75));
        assert_eq!(chunked[2].metric, Some(16.0 / 3.0));
        assert_eq!(chunked[3].metric, Some(3.0));
        assert_eq!(chunked[5].failed, 2);
    }

    #[test]
    fn dataset_checks_measure_the_batch() {
        let set = RuleSet {
            rules: vec![
                rule(
                    "c",
                    Check::Completeness {
                        column: "score".into(),
                        min: 0.9,
                    },
                    Severity::Warn,
                ),
                rule(
                    "n",
                    Check::RowCount {
                        min: Some(5),
                        max: None,
                    },
                    Severity::Fail,
                ),
            ],
        };
        let ev = evaluate(frame(), &set, &cx(&types)).unwrap();
        assert_eq!(ev.results[0].metric, Some(0.75));
        assert_eq!(ev.results[0].outcome, Outcome::Warned);
        assert_eq!(ev.stopping_failures().len(), 1);
    }

    #[test]
    fn schema_match_compares_delivered_columns() {
        let types = |_: &str| Some(ColumnType::String);
        let frame = df!("a" => ["x"], "b" => ["y"], "_lineage" => ["z"]).unwrap();
        let check = |columns: &[&str], allow_extra: bool| Check::SchemaMatch {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            allow_extra,
        };
        let set = RuleSet {
            rules: vec![
                rule("exact", check(&["a", "b"], false), Severity::Fail),
                rule("missing", check(&["a", "b", "c"], false), Severity::Warn),
                rule("extra", check(&["a"], false), Severity::Warn),
                rule("extra_ok", check(&["a"], true), Severity::Warn),
            ],
        };
        let ev = evaluate(frame.clone(), &set, &cx(&types)).unwrap();
        let got: Vec<(&str, u64, Option<f64>)> = ev
            .results
            .iter()
            .map(|r| (r.rule_id.as_str(), r.failed, r.metric))
            .collect();
        assert_eq!(
            got,
            vec![
                ("exact", 0, Some(0.0)),
                ("missing", 1, Some(1.0)),
                ("extra", 1, Some(1.0)),
                ("extra_ok", 0, Some(0.0)),
            ]
        );
        // A delivered header (raw) is judged instead of the frame's columns.
        let header = vec!["a".to_string(), "b".to_string(), "note".to_string()];
        let with_header = Context {
            delivered: Some(&header),
            ..cx(&types)
        };
        let ev = evaluate(frame, &set, &with_header).unwrap();
        assert_eq!(ev.results[0].failed, 1);
        assert_eq!(ev.results[0].outcome, Outcome::Failed);
        assert_eq!(ev.results[3].failed, 0);
    }
}
