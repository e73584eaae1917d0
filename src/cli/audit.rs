//! Auditing commands that change the lake, and `medallion audit` (the trail is kept by
//! [`crate::audit`]).

use std::future::Future;
use std::io::Write;

use anyhow::Result;

use super::config::RunConfig;
use super::{Command, Exit, OutputFormat, QuarantineAction, UsageError};
use crate::audit::{self, AuditRow};
use crate::project::Project;

/// The audited verb of a command, or `None` for commands that only read.
pub fn action_of(cmd: &Command) -> Option<&'static str> {
    match cmd {
        Command::Land { .. } => Some("land"),
        Command::Forget { dry_run: false, .. } => Some("forget"),
        Command::Dashboard {
            action: super::DashboardAction::Deploy { dry_run: None, .. },
        } => Some("dashboard deploy"),
        Command::Promote(a) if !a.run.dry_run => Some("promote"),
        Command::Watch(_) => Some("watch"),
        Command::Quarantine {
            action: Some(QuarantineAction::Release { dry_run: false, .. }),
            ..
        } => Some("quarantine release"),
        Command::Quarantine {
            action: Some(QuarantineAction::Purge { dry_run: false, .. }),
            ..
        } => Some("quarantine purge"),
        #[cfg(feature = "aws")]
        Command::Aws {
            action: super::AwsAction::Bootstrap { dry_run: false },
        } => Some("aws bootstrap"),
        _ => None,
    }
}

/// Runs `command` and appends its audit row (unless it succeeded without changing anything):
/// versions before and after, outcome. An audit
/// that cannot be written is logged, never turned into the command's failure (the command's
/// own result is what the user needs to see).
pub async fn audited(
    rc: &RunConfig,
    action: &str,
    command: impl Future<Output = Result<Exit>>,
) -> Result<Exit> {
    let Ok(p) = rc.open().await else {
        // No project: the command reports that itself.
        return command.await;
    };
    let datasets = p.datasets().unwrap_or_default();
    let started = p.lake.clock.now();
    let before = audit::snapshot(&p.lake, &datasets)
        .await
        .unwrap_or_default();
    let result = command.await;
    let outcome = match &result {
        Ok(Exit::Ok) => "ok".to_string(),
        Ok(Exit::DataStopped) => "data stopped (exit 1)".to_string(),
        Ok(other) => format!("exit {}", *other as u8),
        Err(e) => format!(
            "error: {}",
            e.to_string().lines().next().unwrap_or_default()
        ),
    };
    if let Err(e) = write(&p, &rc.actor, action, started, &before, &datasets, outcome).await {
        tracing::warn!(error = %e, action, "Could not append to the audit trail.");
    }
    result
}

async fn write(
    p: &Project,
    actor: &str,
    action: &str,
    started: chrono::DateTime<chrono::Utc>,
    before: &audit::Snapshot,
    datasets: &[String],
    outcome: String,
) -> Result<()> {
    let after = audit::snapshot(&p.lake, datasets).await?;
    let changes = audit::changes(before, &after);
    // A command that changed nothing and succeeded (a no-op promote) leaves no trace: promoting
    // twice writes nothing. Failures are recorded even when they changed nothing.
    if changes.is_empty() && outcome == "ok" {
        return Ok(());
    }
    let key = p.lake.keys.pseudonymization_key().await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let row = AuditRow {
        at: started.to_rfc3339(),
        actor: actor.to_string(),
        action: action.to_string(),
        arguments: audit::redact(&args, &|v| {
            crate::stage::forgotten::tombstone(&key.pseudonym(v))
        }),
        changes,
        outcome,
    };
    audit::record(&p.lake, started, &row).await?;
    p.lake.sync_catalog().await?;
    Ok(())
}

/// `--since 30d | 12h | 45m | <RFC 3339>` as an instant.
pub(super) fn since(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| {
        UsageError(format!(
            "--since `{text}`: give e.g. 30d, 12h, 45m or an RFC 3339 time"
        ))
    })?;
    let d = match unit {
        "d" => chrono::Duration::days(n),
        "h" => chrono::Duration::hours(n),
        "m" => chrono::Duration::minutes(n),
        _ => return Err(UsageError(format!("--since `{text}`: the unit is d, h or m")).into()),
    };
    Ok(now - d)
}

/// `medallion audit`.
///
/// # Errors
/// A bad `--since`, storage or output errors.
pub async fn show(
    p: &Project,
    since_text: Option<&str>,
    action: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<Exit> {
    let from = since_text
        .map(|t| since(t, p.lake.clock.now()))
        .transpose()?;
    let rows = audit::read(&p.lake, from, action).await?;
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        OutputFormat::Text => {
            if rows.is_empty() {
                writeln!(out, "No audited command matches.")?;
            }
            for r in &rows {
                writeln!(
                    out,
                    "{}  {}  {}  [{}]  {}",
                    r.at,
                    r.actor,
                    r.action,
                    r.arguments.join(" "),
                    r.outcome
                )?;
                for c in &r.changes {
                    let v = |s: audit::TableState| {
                        s.version.map_or("-".to_string(), |v| format!("v{v}"))
                    };
                    let n =
                        |s: audit::TableState| s.rows.map_or("-".to_string(), |n| n.to_string());
                    writeln!(
                        out,
                        "    {:<40} {} → {}   rows {} → {}",
                        c.table,
                        v(c.before),
                        v(c.after),
                        n(c.before),
                        n(c.after)
                    )?;
                }
            }
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_times() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            since("30d", now).unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(
            since("2h", now).unwrap().to_rfc3339(),
            "2026-11-30T22:00:00+00:00"
        );
        assert!(since("3w", now).is_err());
        assert!(since("2026-11-30T12:00:00Z", now).is_ok());
    }
}
