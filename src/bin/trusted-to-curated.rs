//! `trusted-to-curated`: builds the curated products, for schedulers that run one step per job.
use std::process::ExitCode;

use clap::Parser;
use medallion::cli::{self, Exit, StepCli};
use medallion::storage::Stage;

fn main() -> ExitCode {
    let args = StepCli::parse();
    medallion::init_logging(args.verbose, false);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Backend.into();
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(cli::run_step(args, Stage::Curated, &mut stdout)) {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            cli::exit_for(&err).into()
        }
    }
}
