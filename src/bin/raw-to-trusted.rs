//! `raw-to-trusted`: promotes raw batches into trusted, for schedulers that run one step per job (`--help`).
fn main() -> std::process::ExitCode {
    medallion::cli::step_main(medallion::vocab::Stage::Trusted)
}
