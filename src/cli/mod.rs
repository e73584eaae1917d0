//! The command line: clap arguments ([`command`] declares the tree, [`verb`] the verbs'
//! arguments) resolved once into a [`RunConfig`] ([`config`]), then
//! one file per verb group (`project`, `promote`, `quality`, `query`, `aws`, `evaluate`,
//! `privacy`, `audit`, `alerts`, `dashboard`, `watch`) calling the library.
//!
//! Invariants: the only module that knows clap and reads the environment, and (with `main`)
//! the only one that uses anyhow; it formats what the library returns and holds no SQL, no
//! table naming and no library logic of its own.

mod alerts;
mod audit;
#[cfg(feature = "aws")]
mod aws;
pub mod command;
mod config;
mod dashboard;
mod evaluate;
mod land_all;
mod privacy;
mod progress;
mod project;
mod promote;
mod quality;
mod query;
mod run;
mod shell;
pub mod verb;
mod watch;

use std::process::ExitCode;

pub use command::{Cli, Command, OutputFormat, ReportFormat, StageArg, TargetStage};
pub use config::{Progress, RunConfig};
pub use promote::run_step;
pub use run::{exit_for, run};
#[cfg(feature = "aws")]
pub use verb::AwsAction;
pub use verb::{
    DashboardAction, DemoArgs, EvaluateArgs, EvaluateWhat, GenerateArgs, PromoteArgs,
    QuarantineAction, QueryArgs, QueryEngine, QueryFormat, RulesAction, RunFlags, ServeArgs,
    StepCli, WatchArgs,
};

/// Runs a command future on a fresh runtime and maps its outcome to an exit code, printing
/// errors as one paragraph (the whole chain with `verbose`). Shared by every binary.
pub fn block_on(
    verbose: bool,
    fut: impl std::future::Future<Output = anyhow::Result<Exit>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Backend.into();
        }
    };
    match runtime.block_on(fut) {
        Ok(code) => code.into(),
        Err(err) => {
            if verbose {
                eprintln!("error: {err:?}");
            } else {
                eprintln!("error: {err:#}");
            }
            exit_for(&err).into()
        }
    }
}

/// `main` of the stage binaries (`landing-to-raw`, `raw-to-trusted`, `trusted-to-curated`):
/// parses [`StepCli`] and runs one step up to `to`.
pub fn step_main(to: crate::vocab::Stage) -> ExitCode {
    use clap::Parser as _;
    let args = StepCli::parse();
    crate::init_logging(args.verbose, false);
    let verbose = args.verbose > 0;
    let mut stdout = std::io::stdout().lock();
    block_on(verbose, run_step(args, to, &mut stdout))
}

/// Exit codes (DESIGN.md): 0 ok, 1 data stopped, 2 usage or configuration, 3 backend or I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A `fail` rule or the contract stopped the data.
    DataStopped = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// Backend or I/O error.
    Backend = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A usage mistake the user can fix (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
