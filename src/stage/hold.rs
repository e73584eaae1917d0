//! Holding a whole batch back instead of promoting it.
//!
//! A file that is mostly rejects or mostly quarantine is far more likely a wrong export (an HTML
//! error page, a file of another dataset, garbage bytes) or a contract that does not fit the
//! source (an id pattern stricter than the SIS) than a file of bad records. Promoting it would
//! bury every row in quarantine and exit 0, so nobody looks. Instead the batch is *held*:
//!
//! Invariants:
//! - a held batch commits nothing to the step's tables (data, rejects, quarantine, rule
//!   results, books): it stays pending and the next `promote` judges it again, so fixing the
//!   contract (or rules) and promoting again is all it takes;
//! - the other batches of the run are promoted as usual (a held file never blocks the ones after
//!   it), and the run exits 1 naming every held batch and what to do;
//! - `--accept-held` promotes a held batch anyway, its bad rows going to rejects or quarantine
//!   as the rules say, so nothing is ever lost.

use super::raw::RawBatchReport;
use super::trusted::TrustedBatchReport;
use crate::config::pipeline::HoldConfig;
use crate::ledger::{Hold, HoldRow};
use crate::metrics::{Metric, Unit};
use crate::rules::eval::RuleResult;
use crate::rules::Severity;

const RAW_ADVICE: &str = "land a corrected file, or fix the contract and promote again; \
`promote --accept-held` keeps the batch's lines as rejects instead";
const TRUSTED_ADVICE: &str = "fix the contract or the rules and promote again (the batch stays \
pending), or land a corrected file; `promote --accept-held` quarantines the rows instead";

/// The hold of a landed file after parsing, if any: no data rows, a header that names none of
/// the contract's columns, or a reject share above the limit.
pub fn at_raw(
    cfg: &HoldConfig,
    landing_rows: u64,
    rejected: u64,
    delivered: Option<&[String]>,
    expected: &[&str],
) -> Option<Hold> {
    if let Some(cols) = delivered {
        if !cols.iter().any(|c| expected.contains(&c.as_str())) {
            let shown: Vec<&str> = cols.iter().take(4).map(String::as_str).collect();
            return Some(Hold {
                reason: format!(
                    "its header names none of the contract's columns (found {}{}; expected {})",
                    if shown.is_empty() {
                        "nothing".to_string()
                    } else {
                        shown
                            .iter()
                            .map(|c| format!("`{}`", truncate(c, 40)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    if cols.len() > 4 { ", ..." } else { "" },
                    expected.join(", ")
                ),
                advice: RAW_ADVICE.to_string(),
                share: 1.0,
            });
        }
    }
    if landing_rows == 0 {
        return Some(Hold {
            reason: "it has no data rows".to_string(),
            advice: RAW_ADVICE.to_string(),
            share: 1.0,
        });
    }
    let share = rejected as f64 / landing_rows as f64;
    (share > cfg.max_reject_share).then(|| Hold {
        reason: format!(
            "{rejected} of {landing_rows} lines ({}) could not be parsed, above the limit of {} \
             (hold.max_reject_share in the pipeline)",
            percent(share),
            percent(cfg.max_reject_share)
        ),
        advice: RAW_ADVICE.to_string(),
        share,
    })
}

/// The hold of a judged batch, if its quarantine share is above the limit (or it has no rows).
pub fn at_trusted(
    cfg: &HoldConfig,
    raw_rows: u64,
    quarantined: u64,
    rules: &[RuleResult],
) -> Option<Hold> {
    // A batch without rows was judged at raw (held there unless accepted): nothing to lose.
    if raw_rows == 0 {
        return None;
    }
    let share = quarantined as f64 / raw_rows as f64;
    if share <= cfg.max_quarantine_share {
        return None;
    }
    let mut worst: Vec<&RuleResult> = rules
        .iter()
        .filter(|r| r.severity == Severity::Quarantine && r.failed > 0)
        .collect();
    worst.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.rule_id.cmp(&b.rule_id)));
    let named: Vec<String> = worst
        .iter()
        .take(3)
        .map(|r| format!("{} ({} rows)", r.rule_id, r.failed))
        .collect();
    Some(Hold {
        reason: format!(
            "{quarantined} of {raw_rows} rows ({}) would be quarantined, above the limit of {} \
             (hold.max_quarantine_share in the pipeline){}",
            percent(share),
            percent(cfg.max_quarantine_share),
            if named.is_empty() {
                String::new()
            } else {
                format!("; most failed: {}", named.join(", "))
            }
        ),
        advice: TRUSTED_ADVICE.to_string(),
        share,
    })
}

/// The metrics of a held batch: `BatchesHeld` (1) and the share that tripped it.
pub fn metrics(dataset: &str, stage: &str, h: &Hold) -> Vec<Metric> {
    vec![
        Metric::new("BatchesHeld", 1.0, Unit::Count, dataset, stage),
        Metric::new("HeldBadShare", h.share, Unit::None, dataset, stage),
    ]
}

impl HoldRow {
    /// The hold of a raw batch.
    pub fn raw(r: &RawBatchReport, h: &Hold) -> Self {
        Self::new(
            &r.dataset,
            "raw",
            &r.batch_id,
            &r.source_file,
            r.landing_rows,
            r.rejected,
            h,
        )
    }

    /// The hold of a trusted batch.
    pub fn trusted(r: &TrustedBatchReport, h: &Hold) -> Self {
        let (b, f) = (&r.batch_id, &r.source_file);
        Self::new(&r.dataset, "trusted", b, f, r.raw_rows, r.quarantined, h)
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn truncate(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match clean.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [&str; 2] = ["record_id", "student_id"];

    #[test]
    fn empty_file_and_foreign_header_are_held() {
        let cfg = HoldConfig::default();
        assert!(at_raw(&cfg, 0, 0, None, &COLS)
            .unwrap()
            .reason
            .contains("no data rows"));
        let html = vec!["<!DOCTYPE html>".to_string()];
        let h = at_raw(&cfg, 3, 3, Some(&html), &COLS).unwrap();
        assert!(h.reason.contains("none of the contract's columns"), "{h:?}");
        assert!(h.reason.contains("`<!DOCTYPE html>`"), "{h:?}");
    }

    #[test]
    fn reject_share_over_the_limit_is_held_and_at_the_limit_is_not() {
        let cfg = HoldConfig::default();
        let cols = vec!["record_id".to_string(), "oops".to_string()];
        assert!(at_raw(&cfg, 10, 5, Some(&cols), &COLS).is_none());
        let h = at_raw(&cfg, 10, 6, Some(&cols), &COLS).unwrap();
        assert!(h.reason.starts_with("6 of 10 lines (60.0%)"), "{h:?}");
        assert!((h.share - 0.6).abs() < 1e-12);
    }

    #[test]
    fn quarantine_share_names_the_rules_that_failed_most() {
        let cfg = HoldConfig {
            max_reject_share: 0.5,
            max_quarantine_share: 0.2,
        };
        assert!(at_trusted(&cfg, 10, 2, &[]).is_none());
        let h = at_trusted(&cfg, 10, 3, &[]).unwrap();
        assert!(h.reason.contains("limit of 20.0%"), "{h:?}");
        assert!(at_trusted(&cfg, 0, 0, &[]).is_none());
    }
}
