//! `medallion alerts`: the alerts table for a terminal or a script.

use std::io::Write;

use anyhow::Result;

use super::{Exit, OutputFormat};
use crate::project::Project;

/// Prints the alerts fired or resolved since `since_text` (all without it), open ones first.
///
/// # Errors
/// A bad `--since`, storage or output errors.
pub async fn show(
    p: &Project,
    since_text: Option<&str>,
    only_open: bool,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Exit> {
    let from = since_text
        .map(|t| super::audit::since(t, p.lake.clock.now()))
        .transpose()?;
    let after = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| from.is_none_or(|f| t >= f))
    };
    let mut rows: Vec<_> = crate::alerts::read_alerts(&p.lake)
        .await?
        .into_iter()
        .filter(|r| !only_open || r.resolved_at.is_none())
        .filter(|r| after(&Some(r.fired_at.clone())) || after(&r.resolved_at))
        .collect();
    // Open first, newest first.
    rows.sort_by(|a, b| {
        (a.resolved_at.is_some(), &b.fired_at, &a.alert_id).cmp(&(
            b.resolved_at.is_some(),
            &a.fired_at,
            &b.alert_id,
        ))
    });
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        OutputFormat::Text => {
            if rows.is_empty() {
                writeln!(out, "No alerts.")?;
            }
            for r in &rows {
                let when = match &r.resolved_at {
                    None => format!("OPEN      fired {}", r.fired_at),
                    Some(t) => format!("resolved  {t} (fired {})", r.fired_at),
                };
                writeln!(out, "{when}  {}\n    action: {}", r.summary(), r.action)?;
            }
        }
    }
    Ok(Exit::Ok)
}
