//! The `medallion` verbs: one parsed command line dispatched to the file of its verb group
//! ([`super::project`], [`super::promote`], [`super::quality`], [`super::query`], ...), and the
//! mapping of its outcome to an exit code.
//!
//! Invariants: the [`RunConfig`] is resolved once, before anything runs, and every verb gets
//! it (or the project it opens); an error's exit code depends on what it is, never its text.

use std::io::Write;

use anyhow::Result;

use super::config::RunConfig;
use super::{Cli, Command, Exit, UsageError};
use crate::project::ProjectError;
use crate::stage::StepError;

/// Maps an error to its exit code by what it is, not by its text.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(StepError::Stopped { .. }) = cause.downcast_ref::<StepError>() {
            return Exit::DataStopped;
        }
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<clap::Error>().is_some()
        {
            return Exit::Usage;
        }
        if let Some(q) = cause.downcast_ref::<crate::query::QueryError>() {
            return match q {
                crate::query::QueryError::Table { .. } => Exit::Backend,
                _ => Exit::Usage,
            };
        }
        if let Some(p) = cause.downcast_ref::<ProjectError>() {
            return match p {
                ProjectError::Storage(_) | ProjectError::Aws(_) => Exit::Backend,
                _ => Exit::Usage,
            };
        }
    }
    Exit::Backend
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command met; [`exit_for`] maps it to an exit code.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Exit> {
    let rc = RunConfig::resolve(cli.project.as_deref(), cli.quiet)?;
    match super::audit::action_of(&cli.command) {
        Some(action) => super::audit::audited(&rc, action, dispatch(&rc, cli.command, out)).await,
        None => dispatch(&rc, cli.command, out).await,
    }
}

async fn dispatch(rc: &RunConfig, command: Command, out: &mut dyn Write) -> Result<Exit> {
    match command {
        Command::Init { dir, template } => super::project::init(&dir, &template, out),
        Command::Evaluate {
            what: super::EvaluateWhat::AtRisk(args),
        } => super::evaluate::at_risk(rc, &args, out).await,
        Command::Demo(args) => super::project::demo(rc, &args, out).await,
        Command::Generate(args) => super::project::generate(&args, out),
        Command::Land {
            dataset,
            files,
            all,
        } => match (all, dataset) {
            (Some(dir), _) => super::land_all::land_all(&rc.open().await?, &dir, out).await,
            (None, Some(dataset)) => {
                super::project::land(&rc.open().await?, &dataset, &files, out).await
            }
            (None, None) => Err(UsageError("name a dataset or --all DIR".into()).into()),
        },
        Command::Promote(args) => {
            super::promote::promote(&rc.open().await?, &args, rc.progress, out).await
        }
        Command::Status { format } => super::project::status(&rc.open().await?, format, out).await,
        Command::Report {
            dataset,
            batch,
            stage,
            format,
            output,
        } => {
            super::quality::report(
                &rc.open().await?,
                &dataset,
                batch.as_deref(),
                stage,
                format,
                output.as_deref(),
                out,
            )
            .await
        }
        Command::Quarantine {
            dataset,
            rule,
            limit,
            action,
        } => match action {
            Some(super::QuarantineAction::Release { dataset, dry_run }) => {
                super::quality::release(&rc.open().await?, &dataset, dry_run, out).await
            }
            Some(super::QuarantineAction::Purge {
                dataset,
                older_than_days,
                dry_run,
            }) => {
                super::quality::purge(&rc.open().await?, &dataset, older_than_days, dry_run, out)
                    .await
            }
            None => {
                let dataset = dataset.ok_or_else(|| {
                    UsageError("give a dataset: medallion quarantine DATASET".into())
                })?;
                super::quality::quarantine_list(
                    &rc.open().await?,
                    &dataset,
                    rule.as_deref(),
                    limit,
                    out,
                )
                .await
            }
        },
        Command::Rules {
            action: super::RulesAction::Check,
        } => super::quality::rules_check(&rc.open().await?, out),
        Command::Rules {
            action:
                super::RulesAction::Suggest {
                    dataset,
                    stage,
                    output,
                },
        } => {
            super::quality::suggest(&rc.open().await?, &dataset, stage, output.as_deref(), out)
                .await
        }
        Command::Profile {
            dataset,
            stage,
            format,
            output,
        } => {
            super::quality::profile(
                &rc.open().await?,
                &dataset,
                stage,
                format,
                output.as_deref(),
                out,
            )
            .await
        }
        #[cfg(feature = "aws")]
        Command::Aws { action } => super::aws::aws(rc, &rc.root()?, action, out).await,
        Command::Query(args) => super::query::query(&rc.open().await?, &args, out).await,
        Command::Scan { stage, format } => {
            super::privacy::scan(&rc.open().await?, stage, format, out).await
        }
        Command::Forget {
            student,
            dry_run,
            format,
        } => super::privacy::forget(&rc.open().await?, &student, dry_run, format, out).await,
        Command::Audit {
            since,
            action,
            format,
        } => {
            super::audit::show(
                &rc.open().await?,
                since.as_deref(),
                action.as_deref(),
                format,
                out,
            )
            .await
        }
        Command::Dashboard { action } => {
            super::dashboard::dashboard(&rc.open().await?, action, out).await
        }
        Command::Serve(args) => {
            super::dashboard::serve(&rc.open().await?, &args, rc.serve_token.as_deref(), out).await
        }
        Command::Watch(args) => {
            super::watch::run(&rc.open().await?, &args, rc.quiet, rc.progress, out).await
        }
        Command::Alerts {
            since,
            open: only_open,
            format,
        } => super::alerts::show(&rc.open().await?, since.as_deref(), only_open, format, out).await,
        Command::Catalog { table, format } => {
            super::project::catalog(&rc.open().await?, table.as_deref(), format, out).await
        }
    }
}
