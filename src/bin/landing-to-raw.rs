//! `landing-to-raw`: parses landed files into raw, for schedulers that run one step per job (`--help`).
fn main() -> std::process::ExitCode {
    medallion::cli::step_main(medallion::vocab::Stage::Raw)
}
