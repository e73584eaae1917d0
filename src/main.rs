use std::process::ExitCode;

use clap::Parser;
use medallion::cli::{self, Cli, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    medallion::init_logging(cli.verbose, cli.quiet);
    let verbose = cli.verbose > 0;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Backend.into();
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(cli::run(cli, &mut stdout)) {
        Ok(code) => code.into(),
        Err(err) => report_error(&err, verbose),
    }
}

fn report_error(err: &anyhow::Error, verbose: bool) -> ExitCode {
    if verbose {
        eprintln!("error: {err:?}");
    } else {
        eprintln!("error: {err:#}");
    }
    cli::exit_for(err).into()
}
