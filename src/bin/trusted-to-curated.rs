//! `trusted-to-curated`: builds the curated products, for schedulers that run one step per job (`--help`).
/// mimalloc (see Cargo.toml): lower peak memory and faster than the system allocator here.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    medallion::cli::step_main(medallion::vocab::Stage::Curated)
}
