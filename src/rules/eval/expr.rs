//! Row rules as polars expressions: the boolean "this row fails" of each row-level check, its
//! filter, and the `rule: column=value` text a failure shows.
//!
//! Invariants: a null never fails a row rule except `not_null` (and `type`, on a value that
//! was delivered but did not parse); a failure shows the value as delivered (the `__raw_`
//! twin), never the typed one; building an expression reads nothing but the rule and the
//! [`Context`].

use polars::prelude::*;

use super::{batch_unique_column, raw_name, Context, ID_ISSUES};
use crate::contract::ColumnType;
use crate::rules::{Check, Filter, Op, Rule};

pub(super) fn filter_expr(f: &Filter) -> Expr {
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
pub(super) fn fail_expr(rule: &Rule, cx: &Context) -> Option<Expr> {
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
        Check::IdentifierIssue { .. } => c(ID_ISSUES).str().contains_literal(lit(rule.id.clone())),
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

pub(super) fn shown_value(rule: &Rule) -> Expr {
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

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use crate::rules::eval::*;
    use crate::rules::{Check, Filter, RuleSet, Severity};

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
}
