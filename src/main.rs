use std::process::ExitCode;

use clap::Parser;
use medallion::cli::{self, Cli};

/// mimalloc (see Cargo.toml): lower peak memory and faster than the system allocator here.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    medallion::init_logging(cli.verbose, cli.quiet);
    let verbose = cli.verbose > 0;
    let mut stdout = std::io::stdout().lock();
    cli::block_on(verbose, cli::run(cli, &mut stdout))
}
