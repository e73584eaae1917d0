//! `trusted-to-curated`: builds the curated products, for schedulers that run one step per job (`--help`).
fn main() -> std::process::ExitCode {
    medallion::cli::step_main(medallion::vocab::Stage::Curated)
}
