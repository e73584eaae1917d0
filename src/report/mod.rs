//! Renders what medallion did and what the lake holds, for people (text) and tools (json).
//! Reports never show identifiers in clear: everything they read is already pseudonymised.

pub mod quality;

use std::fmt::Write as _;

use crate::catalog::TableEntry;
use crate::pipeline::PromotionSummary;
use crate::rules::eval::{Outcome, RuleResult};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For a terminal.
    Text,
    /// Stable JSON.
    Json,
}

fn check(ok: bool) -> &'static str {
    if ok {
        "books balance"
    } else {
        "BOOKS DO NOT BALANCE"
    }
}

/// Rules sorted worst first (failures of higher severity and rate first).
pub fn worst_first(rules: &[RuleResult]) -> Vec<&RuleResult> {
    let mut v: Vec<&RuleResult> = rules.iter().collect();
    v.sort_by(|a, b| {
        (b.failed > 0)
            .cmp(&(a.failed > 0))
            .then(b.severity.cmp(&a.severity))
            .then(a.pass_rate().total_cmp(&b.pass_rate()))
            .then(a.rule_id.cmp(&b.rule_id))
    });
    v
}

/// A promotion as text: the books of every batch and its failing rules.
pub fn promotion_text(s: &PromotionSummary) -> String {
    let mut out = String::new();
    if s.is_empty() {
        out.push_str("Nothing to promote: every landed file is already in the target stage.\n");
        alerts_text(&mut out, s.alerts.as_ref());
        return out;
    }
    for r in &s.raw {
        let _ = writeln!(
            out,
            "{} landing → raw  batch {}  file {}\n  landing rows {:>8} = raw {:>8} + rejected {:>6}   {}{}",
            r.dataset,
            r.batch_id,
            r.source_file,
            r.landing_rows,
            r.raw_rows,
            r.rejected,
            check(r.balanced()),
            not_written(r.committed, r.held.is_some())
        );
        held_text(&mut out, r.held.as_ref());
        if !r.rejects_by_kind.is_empty() {
            let kinds: Vec<String> = r
                .rejects_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "  rejects: {}", kinds.join(", "));
            for line in &r.sample_rejects {
                let _ = writeln!(out, "    {line}");
            }
        }
        if !r.rules.is_empty() {
            rules_text(&mut out, &r.rules);
        }
    }
    for t in &s.trusted {
        let _ = writeln!(
            out,
            "{} raw → trusted  batch {}  file {}\n  raw rows {:>8} = new in trusted {:>8} + quarantined {:>6} + duplicates dropped {:>6}   {}{}",
            t.dataset,
            t.batch_id,
            t.source_file,
            t.raw_rows,
            t.inserted,
            t.quarantined,
            t.duplicates_dropped,
            check(t.balanced()),
            not_written(t.committed, t.held.is_some())
        );
        held_text(&mut out, t.held.as_ref());
        let _ = writeln!(
            out,
            "  duplicates: {} within the batch, {} older records replaced by corrections, {} stale corrections ignored",
            t.in_batch_duplicates, t.updated, t.stale
        );
        rules_text(&mut out, &t.rules);
    }
    for c in &s.curated {
        let _ = writeln!(
            out,
            "curated {:<28} {:>3} course(s) recomputed, {:>7} rows{}",
            c.product,
            c.courses,
            c.rows,
            if c.committed {
                ""
            } else {
                "   (dry run: nothing written)"
            }
        );
        if !c.rules.is_empty() {
            rules_text(&mut out, &c.rules);
        }
    }
    alerts_text(&mut out, s.alerts.as_ref());
    out
}

/// Alerts fired and resolved by a run (nothing when nothing changed).
fn alerts_text(out: &mut String, alerts: Option<&crate::alerts::AlertsReport>) {
    let Some(a) = alerts else { return };
    for r in &a.fired {
        let _ = writeln!(
            out,
            "alert fired     {}\n  action: {}",
            r.summary(),
            r.action
        );
    }
    for r in &a.resolved {
        let _ = writeln!(out, "alert resolved  {}", r.summary());
    }
    if !a.fired.is_empty() || !a.resolved.is_empty() {
        let _ = writeln!(
            out,
            "alerts: {} fired, {} resolved, {} open (medallion alerts)",
            a.fired.len(),
            a.resolved.len(),
            a.open
        );
    }
}

fn not_written(committed: bool, held: bool) -> &'static str {
    match (committed, held) {
        (true, _) => "",
        (false, true) => "   (HELD: nothing written, the batch stays pending)",
        (false, false) => "   (dry run: nothing written)",
    }
}

fn held_text(out: &mut String, held: Option<&crate::ledger::Hold>) {
    if let Some(h) = held {
        let _ = writeln!(out, "  held because {}", h.reason);
        let _ = writeln!(out, "  to go on: {}", h.advice);
    }
}

/// The failing rules of a batch, worst first, then how many passed.
fn rules_text(out: &mut String, rules: &[RuleResult]) {
    let failing: Vec<&RuleResult> = worst_first(rules)
        .into_iter()
        .filter(|r| r.failed > 0)
        .collect();
    if failing.is_empty() {
        let _ = writeln!(out, "  all {} rules passed", rules.len());
        return;
    }
    let _ = writeln!(
        out,
        "  {:<44} {:<10} {:>8} {:>8}  outcome",
        "rule", "severity", "failed", "rate"
    );
    for r in failing {
        let _ = writeln!(
            out,
            "  {:<44} {:<10} {:>8} {:>7.2}%  {}",
            r.rule_id,
            r.severity.as_str(),
            r.failed,
            100.0 * (1.0 - r.pass_rate()),
            r.outcome.as_str()
        );
    }
    let passed = rules
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    let _ = writeln!(out, "  {passed} other rules passed");
}

/// The catalog as text: one line per table.
pub fn status_text(entries: &[TableEntry]) -> String {
    if entries.is_empty() {
        return "The lake is empty: land a file (`medallion land DATASET FILE`) and promote it.\n"
            .to_string();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<8} {:<11} {:<36} {:>8} {:>10}  last batch",
        "dataset", "stage", "kind", "table", "version", "rows"
    );
    for e in entries {
        let _ = writeln!(
            out,
            "{:<26} {:<8} {:<11} {:<36} {:>8} {:>10}  {}",
            e.dataset,
            e.stage,
            e.kind,
            e.table,
            e.version,
            e.rows,
            e.last_batch.as_deref().unwrap_or("-")
        );
    }
    out
}

/// One catalog entry in full, as text.
pub fn table_text(e: &TableEntry) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  ({} {} of {})",
        e.table, e.stage, e.kind, e.dataset
    );
    let _ = writeln!(out, "  {}", e.description);
    let _ = writeln!(out, "  location: {}", e.location);
    let _ = writeln!(
        out,
        "  version {}  rows {}  contract v{}  last batch {}  updated {}",
        e.version,
        e.rows,
        e.contract_version,
        e.last_batch.as_deref().unwrap_or("-"),
        e.updated_at
    );
    for c in &e.schema {
        let _ = writeln!(out, "  {:<22} {:<10} {}", c.name, c.ty, c.comment);
    }
    out
}

/// The stable JSON shape of `medallion status --format json`: one object per table with
/// `dataset`, `stage`, `kind`, `table`, `location`, `version`, `rows`.
pub fn status_json(entries: &[TableEntry]) -> serde_json::Value {
    serde_json::Value::Array(
        entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "dataset": e.dataset,
                    "stage": e.stage,
                    "kind": e.kind,
                    "table": e.table,
                    "location": e.location,
                    "version": e.version,
                    "rows": e.rows,
                })
            })
            .collect(),
    )
}
