//! Evaluates a [`RuleSet`] over one batch as polars expressions, in one pass.
//!
//! The input frame holds each trusted column twice: typed under its own name, and as the raw
//! text under `__raw_<name>` (so type failures and failing values can be shown as delivered).
//! The output adds `_rule_ids` (every rule the row failed, comma-separated), `_failures`
//! (`rule: column=value` for each) and `__quarantine` (the row failed a quarantine rule).

use polars::prelude::*;
use serde::Serialize;

use super::{Check, Filter, Op, Rule, RuleSet, RulesError, Severity};
use crate::contract::ColumnType;

/// Column holding the ids of the rules a row failed.
pub const RULE_IDS: &str = "_rule_ids";
/// Column holding `rule: column=value` for each failure.
pub const FAILURES: &str = "_failures";
/// Internal flag: the row goes to quarantine.
pub const QUARANTINE_FLAG: &str = "__quarantine";
/// Column written by landing→raw naming identifier checks that failed before hashing.
pub const ID_ISSUES: &str = "_id_issues";

/// Name of the raw-text twin of a column.
pub fn raw_name(column: &str) -> String {
    format!("__raw_{column}")
}

/// How a rule came out on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No failures.
    Passed,
    /// Failures counted (severity warn).
    Warned,
    /// Failing rows quarantined.
    Quarantined,
    /// Failures stop the promotion.
    Failed,
    /// Could not be judged (a referenced table that does not exist yet, no history).
    Skipped,
}

impl Outcome {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Warned => "warned",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One rule's result on one batch.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// Rule id.
    pub rule_id: String,
    /// What the rule protects.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// `row` or `dataset`.
    pub level: &'static str,
    /// Rows (or 1 for dataset checks) judged.
    pub evaluated: u64,
    /// Rows (or 1) failing.
    pub failed: u64,
    /// The measured value of a dataset check (completeness share, row count).
    pub metric: Option<f64>,
    /// What happened.
    pub outcome: Outcome,
}

impl RuleResult {
    /// Share of judged rows that passed, 1.0 when nothing was judged.
    pub fn pass_rate(&self) -> f64 {
        if self.evaluated == 0 {
            1.0
        } else {
            1.0 - self.failed as f64 / self.evaluated as f64
        }
    }
}

/// A batch after rule evaluation.
#[derive(Debug)]
pub struct Evaluation {
    /// The input plus [`RULE_IDS`], [`FAILURES`] and [`QUARANTINE_FLAG`].
    pub frame: DataFrame,
    /// One result per rule, in rule order.
    pub results: Vec<RuleResult>,
}

impl Evaluation {
    /// Rules of severity `fail` that failed.
    pub fn stopping_failures(&self) -> Vec<&RuleResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .collect()
    }
}

/// The moment "in the future" is measured from.
#[derive(Debug, Clone, Copy)]
pub struct AsOf(pub chrono::DateTime<chrono::Utc>);

/// What rules need besides the batch: the clock, column types, each dataset-level rule's
/// metric over earlier batches (oldest first), and the key sets `references` rules check
/// against (absent when the referenced table does not exist yet: the rule is skipped).
pub struct Context<'a> {
    /// The run's clock.
    pub as_of: AsOf,
    /// Column types.
    pub types: &'a dyn Fn(&str) -> Option<ColumnType>,
    /// Metric history per rule id.
    pub history: &'a std::collections::HashMap<String, Vec<f64>>,
    /// Referenced keys per rule id.
    pub refs: &'a std::collections::HashMap<String, Series>,
    /// Columns as delivered, for `schema_match` (a landing file's header); `None`: the
    /// judged frame's own columns.
    pub delivered: Option<&'a [String]>,
    /// `unique` rules whose repeats across the whole batch are marked in the frame's
    /// [`batch_unique_column`] (a batch judged in chunks); the others look at the frame alone.
    pub batch_unique: Option<&'a std::collections::HashSet<String>>,
}

fn filter_expr(f: &Filter) -> Expr {
    let mut e = lit(true);
    if let Some(v) = &f.equals {
        e = e.and(
            col(f.column.as_str())
                .cast(DataType::String)
                .eq(lit(v.clone())),
        );
    }
    if let Some(nn) = f.not_null {
        let present = col(f.column.as_str()).is_not_null();
        e = e.and(if nn { present } else { present.not() });
    }
    e.fill_null(lit(false))
}

fn compare(l: Expr, op: Op, r: Expr) -> Expr {
    match op {
        Op::Lt => l.lt(r),
        Op::Le => l.lt_eq(r),
        Op::Gt => l.gt(r),
        Op::Ge => l.gt_eq(r),
        Op::Eq => l.eq(r),
        Op::Ne => l.neq(r),
    }
}

/// The boolean "this row fails" expression of a row-level check (null counts as pass).
fn fail_expr(rule: &Rule, cx: &Context) -> Option<Expr> {
    let (as_of, types) = (cx.as_of, cx.types);
    let c = |n: &str| col(n);
    let e = match &rule.check {
        Check::Type { column, .. } => c(&raw_name(column)).is_not_null().and(c(column).is_null()),
        Check::NotNull { column } => c(&raw_name(column)).is_null(),
        Check::AcceptedValues { column, values } => {
            let allowed = Series::new("allowed".into(), values.clone());
            c(column)
                .cast(DataType::String)
                .is_in(lit(allowed).implode(true), false)
                .not()
        }
        Check::Range { column, min, max } => {
            let v = c(column).cast(DataType::Float64);
            let lo = min.map(|m| v.clone().lt(lit(m)));
            let hi = max.map(|m| v.clone().gt(lit(m)));
            match (lo, hi) {
                (Some(a), Some(b)) => a.or(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => lit(false),
            }
        }
        Check::Pattern { column, regex } => {
            c(column).str().contains(lit(regex.clone()), true).not()
        }
        Check::Length { column, min, max } => {
            let n = c(column).str().len_chars();
            let lo = min.map(|m| n.clone().lt(lit(m)));
            let hi = max.map(|m| n.clone().gt(lit(m)));
            match (lo, hi) {
                (Some(a), Some(b)) => a.or(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => lit(false),
            }
        }
        Check::Compare { left, op, right } => compare(c(left), *op, c(right)).not(),
        Check::NotInFuture { column } => match types(column) {
            Some(ColumnType::Date) => {
                let today = (as_of.0.date_naive() - chrono::NaiveDate::default()).num_days();
                c(column)
                    .cast(DataType::Int32)
                    .cast(DataType::Int64)
                    .gt(lit(today))
            }
            _ => c(column)
                .cast(DataType::Int64)
                .gt(lit(as_of.0.timestamp_micros())),
        },
        Check::Unique { .. } if cx.batch_unique.is_some_and(|u| u.contains(&rule.id)) => {
            c(&batch_unique_column(&rule.id))
        }
        Check::Unique { columns } => {
            let keys: Vec<Expr> = columns.iter().map(|k| c(k)).collect();
            let all_present = columns
                .iter()
                .fold(lit(true), |acc, k| acc.and(c(k).is_not_null()));
            let n = len().over(keys).ok()?;
            n.gt(lit(1)).and(all_present)
        }
        Check::IdentifierIssue { .. } => c(super::eval::ID_ISSUES)
            .str()
            .contains_literal(lit(rule.id.clone())),
        Check::References { column, .. } => {
            let keys = cx.refs.get(&rule.id)?;
            c(column)
                .is_in(lit(keys.clone()).implode(true), false)
                .not()
        }
        _ => return None,
    };
    let e = e.fill_null(lit(false));
    Some(match &rule.filter {
        Some(f) => e.and(filter_expr(f)),
        None => e,
    })
}

/// `concat_str` gives "" when every part is null: a row that failed nothing gets null.
pub fn none_if_empty(e: Expr) -> Expr {
    when(e.clone().eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(e)
}

fn shown_value(rule: &Rule) -> Expr {
    let text = |c: &str| col(raw_name(c).as_str()).fill_null(lit("<missing>"));
    if let Check::Compare { left, right, .. } = &rule.check {
        return concat_str(
            [
                lit(format!("{}: {left}=", rule.id)),
                text(left),
                lit(format!(" {right}=")),
                text(right),
            ],
            "",
            true,
        );
    }
    match rule.check.display_column() {
        Some(column) => {
            let text = col(raw_name(column).as_str()).fill_null(lit("<missing>"));
            concat_str([lit(format!("{}: {column}=", rule.id)), text], "", true)
        }
        None => lit(rule.id.clone()),
    }
}

/// Evaluates every rule of `set` over `frame` (typed columns plus `__raw_` twins): one batch
/// judged whole. A batch judged in chunks uses [`Tally`] directly.
///
/// # Errors
/// polars errors (a column missing from the frame, a bad regex that slipped validation).
pub fn evaluate(frame: DataFrame, set: &RuleSet, cx: &Context) -> Result<Evaluation, RulesError> {
    let mut tally = Tally::new(set);
    let frame = tally.add(frame, set, cx)?;
    Ok(Evaluation {
        frame,
        results: tally.results(set, cx),
    })
}

/// Name of the column a chunked judge fills, per `unique` rule, with "this row's key repeats
/// somewhere in the batch" (a chunk alone cannot see repeats in other chunks).
pub fn batch_unique_column(rule_id: &str) -> String {
    format!("__repeats_{rule_id}")
}

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
                statistic: super::Statistic::NullShare,
                column: Some(column),
                ..
            } => Self::Nulls(column.clone(), 0),
            Check::MeanBetween { column, .. }
            | Check::DetectAnomaly {
                statistic: super::Statistic::Mean,
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
                    (super::Statistic::RowCount, _) => Some(height as f64),
                    (super::Statistic::NullShare, Some(_)) => Some(null_share()),
                    (super::Statistic::Mean, Some(_)) => mean(),
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
    use super::*;

    fn rule(id: &str, check: Check, severity: Severity) -> Rule {
        Rule {
            id: id.into(),
            description: id.into(),
            check,
            filter: None,
            severity,
        }
    }

    fn cx<'a>(types: &'a dyn Fn(&str) -> Option<ColumnType>) -> Context<'a> {
        static H: std::sync::OnceLock<std::collections::HashMap<String, Vec<f64>>> =
            std::sync::OnceLock::new();
        static R: std::sync::OnceLock<std::collections::HashMap<String, Series>> =
            std::sync::OnceLock::new();
        Context {
            as_of: AsOf(chrono::Utc::now()),
            types,
            history: H.get_or_init(Default::default),
            refs: R.get_or_init(Default::default),
            delivered: None,
            batch_unique: None,
        }
    }

    fn frame() -> DataFrame {
        df!(
            "score" => [Some(5.0f64), Some(12.0), None, Some(-1.0)],
            "max_score" => [Some(10.0f64), Some(10.0), Some(10.0), Some(10.0)],
            "__raw_score" => [Some("5"), Some("12"), Some("ten"), Some("-1")],
            "__raw_max_score" => ["10", "10", "10", "10"],
            "kind" => ["quiz", "exam", "poem", "quiz"],
            "__raw_kind" => ["quiz", "exam", "poem", "quiz"],
        )
        .unwrap()
    }

    fn types(c: &str) -> Option<ColumnType> {
        match c {
            "score" | "max_score" => Some(ColumnType::Double),
            _ => Some(ColumnType::String),
        }
    }

    #[test]
    fn every_failed_rule_is_listed_per_row() {
        let set = RuleSet {
            rules: vec![
                rule(
                    "t",
                    Check::Type {
                        column: "score".into(),
                        ty: ColumnType::Double,
                    },
                    Severity::Quarantine,
                ),
                rule(
                    "max",
                    Check::Compare {
                        left: "score".into(),
                        op: Op::Le,
                        right: "max_score".into(),
                    },
                    Severity::Quarantine,
                ),
                rule(
                    "min",
                    Check::Range {
                        column: "score".into(),
                        min: Some(0.0),
                        max: None,
                    },
                    Severity::Warn,
                ),
                rule(
                    "kind",
                    Check::AcceptedValues {
                        column: "kind".into(),
                        values: vec!["quiz".into(), "exam".into()],
                    },
                    Severity::Quarantine,
                ),
            ],
        };
        let ev = evaluate(frame(), &set, &cx(&types)).unwrap();
        let ids: Vec<Option<&str>> = ev
            .frame
            .column(RULE_IDS)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ids, vec![None, Some("max"), Some("t,kind"), Some("min")]);
        let q: Vec<Option<bool>> = ev
            .frame
            .column(QUARANTINE_FLAG)
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(q, vec![Some(false), Some(true), Some(true), Some(false)]);
        let failures = ev
            .frame
            .column(FAILURES)
            .unwrap()
            .str()
            .unwrap()
            .get(2)
            .unwrap()
            .to_string();
        assert_eq!(failures, "t: score=ten; kind: kind=poem");
        let counts: Vec<(u64, u64)> = ev.results.iter().map(|r| (r.evaluated, r.failed)).collect();
        assert_eq!(counts, vec![(4, 1), (4, 1), (4, 1), (4, 1)]);
        assert_eq!(ev.results[2].outcome, Outcome::Warned);
    }

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
    fn filter_limits_rows_judged() {
        let mut r = rule(
            "s",
            Check::Range {
                column: "score".into(),
                min: None,
                max: Some(6.0),
            },
            Severity::Fail,
        );
        r.filter = Some(Filter {
            column: "kind".into(),
            equals: Some("quiz".into()),
            not_null: None,
        });
        let ev = evaluate(frame(), &RuleSet { rules: vec![r] }, &cx(&types)).unwrap();
        assert_eq!((ev.results[0].evaluated, ev.results[0].failed), (2, 0));
        assert!(ev.stopping_failures().is_empty());
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

    fn run_with(
        rules: Vec<Rule>,
        history: &[(&str, Vec<f64>)],
        refs: &[(&str, Series)],
    ) -> Evaluation {
        let h: std::collections::HashMap<String, Vec<f64>> = history
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let r: std::collections::HashMap<String, Series> = refs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let cx = Context {
            as_of: AsOf(chrono::Utc::now()),
            types: &types,
            history: &h,
            refs: &r,
            delivered: None,
            batch_unique: None,
        };
        evaluate(frame(), &RuleSet { rules }, &cx).unwrap()
    }

    fn outcome(ev: &Evaluation, id: &str) -> (Outcome, u64) {
        let r = ev.results.iter().find(|r| r.rule_id == id).unwrap();
        (r.outcome, r.failed)
    }

    #[test]
    fn every_rule_kind_passes_and_fails() {
        use super::super::Statistic;
        let w = Severity::Warn;
        let rules = vec![
            rule(
                "nn_pass",
                Check::NotNull {
                    column: "max_score".into(),
                },
                w,
            ),
            rule(
                "pat_pass",
                Check::Pattern {
                    column: "kind".into(),
                    regex: "^[a-z]+$".into(),
                },
                w,
            ),
            rule(
                "pat_fail",
                Check::Pattern {
                    column: "kind".into(),
                    regex: "^q".into(),
                },
                w,
            ),
            rule(
                "len_pass",
                Check::Length {
                    column: "kind".into(),
                    min: Some(4),
                    max: Some(4),
                },
                w,
            ),
            rule(
                "len_fail",
                Check::Length {
                    column: "kind".into(),
                    min: Some(5),
                    max: None,
                },
                w,
            ),
            rule(
                "uniq_pass",
                Check::Unique {
                    columns: vec!["score".into()],
                },
                w,
            ),
            rule(
                "uniq_fail",
                Check::Unique {
                    columns: vec!["kind".into()],
                },
                w,
            ),
            rule(
                "ref_pass",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "ref_fail",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "ref_skip",
                Check::References {
                    column: "kind".into(),
                    dataset: "k".into(),
                    key: None,
                },
                w,
            ),
            rule(
                "distinct_pass",
                Check::DistinctCount {
                    column: "kind".into(),
                    min: Some(3),
                    max: Some(3),
                },
                w,
            ),
            rule(
                "distinct_fail",
                Check::DistinctCount {
                    column: "kind".into(),
                    min: Some(4),
                    max: None,
                },
                w,
            ),
            rule(
                "mean_pass",
                Check::MeanBetween {
                    column: "max_score".into(),
                    min: 9.0,
                    max: 11.0,
                },
                w,
            ),
            rule(
                "mean_fail",
                Check::MeanBetween {
                    column: "max_score".into(),
                    min: 11.0,
                    max: 12.0,
                },
                w,
            ),
            rule("change_pass", Check::RowCountChange { max_change: 0.5 }, w),
            rule("change_fail", Check::RowCountChange { max_change: 0.5 }, w),
            rule("change_skip", Check::RowCountChange { max_change: 0.5 }, w),
            rule(
                "anomaly_pass",
                Check::DetectAnomaly {
                    statistic: Statistic::RowCount,
                    column: None,
                    window: 10,
                    sigmas: 3.0,
                },
                w,
            ),
            rule(
                "anomaly_fail",
                Check::DetectAnomaly {
                    statistic: Statistic::RowCount,
                    column: None,
                    window: 10,
                    sigmas: 3.0,
                },
                w,
            ),
        ];
        let history = [
            ("change_pass", vec![5.0]),
            ("change_fail", vec![100.0]),
            ("anomaly_pass", vec![3.0, 4.0, 5.0, 4.0]),
            ("anomaly_fail", vec![100.0, 101.0, 99.0, 100.0]),
        ];
        let refs = [
            (
                "ref_pass",
                Series::new("k".into(), ["quiz", "exam", "poem"]),
            ),
            ("ref_fail", Series::new("k".into(), ["quiz"])),
        ];
        let ev = run_with(rules, &history, &refs);
        for (id, want) in [
            ("nn_pass", (Outcome::Passed, 0)),
            ("pat_pass", (Outcome::Passed, 0)),
            ("pat_fail", (Outcome::Warned, 2)),
            ("len_pass", (Outcome::Passed, 0)),
            ("len_fail", (Outcome::Warned, 4)),
            ("uniq_pass", (Outcome::Passed, 0)),
            ("uniq_fail", (Outcome::Warned, 2)),
            ("ref_pass", (Outcome::Passed, 0)),
            ("ref_fail", (Outcome::Warned, 2)),
            ("ref_skip", (Outcome::Skipped, 0)),
            ("distinct_pass", (Outcome::Passed, 0)),
            ("distinct_fail", (Outcome::Warned, 1)),
            ("mean_pass", (Outcome::Passed, 0)),
            ("mean_fail", (Outcome::Warned, 1)),
            ("change_pass", (Outcome::Passed, 0)),
            ("change_fail", (Outcome::Warned, 1)),
            ("change_skip", (Outcome::Skipped, 0)),
            ("anomaly_pass", (Outcome::Passed, 0)),
            ("anomaly_fail", (Outcome::Warned, 1)),
        ] {
            assert_eq!(outcome(&ev, id), want, "{id}");
        }
    }

    #[test]
    fn freshness_and_future_are_measured_from_the_clock() {
        let df = df!(
            "at" => [Some(0i64), Some(1_000_000)],
            "__raw_at" => ["a", "b"],
        )
        .unwrap();
        let df = df
            .lazy()
            .with_column(col("at").cast(DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            )))
            .collect()
            .unwrap();
        let ts = |_: &str| Some(ColumnType::Timestamp);
        let (h, r) = (Default::default(), Default::default());
        let now = chrono::DateTime::from_timestamp(3600 * 10, 0).unwrap();
        let cx = Context {
            as_of: AsOf(now),
            types: &ts,
            history: &h,
            refs: &r,
            delivered: None,
            batch_unique: None,
        };
        let rules = vec![
            rule(
                "fresh_pass",
                Check::Freshness {
                    column: "at".into(),
                    max_age_hours: 11.0,
                },
                Severity::Warn,
            ),
            rule(
                "fresh_fail",
                Check::Freshness {
                    column: "at".into(),
                    max_age_hours: 9.0,
                },
                Severity::Warn,
            ),
            rule(
                "future",
                Check::NotInFuture {
                    column: "at".into(),
                },
                Severity::Warn,
            ),
        ];
        let ev = evaluate(df, &RuleSet { rules }, &cx).unwrap();
        assert_eq!(outcome(&ev, "fresh_pass"), (Outcome::Passed, 0));
        assert_eq!(outcome(&ev, "fresh_fail"), (Outcome::Warned, 1));
        assert_eq!(outcome(&ev, "future"), (Outcome::Passed, 0));
        let early = Context {
            as_of: AsOf(chrono::DateTime::from_timestamp(0, 500).unwrap()),
            ..cx
        };
        let ev = evaluate(
            ev.frame.select(["at", "__raw_at"]).unwrap(),
            &RuleSet {
                rules: vec![rule(
                    "future",
                    Check::NotInFuture {
                        column: "at".into(),
                    },
                    Severity::Warn,
                )],
            },
            &early,
        )
        .unwrap();
        assert_eq!(outcome(&ev, "future"), (Outcome::Warned, 1));
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
