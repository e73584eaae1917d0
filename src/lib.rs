//! medallion: a data-lake ETL with governance tooling for academic data.
//!
//! Exports land in an immutable landing zone and are promoted stage by stage
//! (landing → raw → trusted) as Delta Lake tables, judged by a YAML data contract and YAML
//! quality rules, with every table in a catalog and every batch's books balanced.
#![warn(missing_docs)]

pub mod alerts;
pub mod audit;
#[cfg(feature = "aws")]
pub mod aws;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contract;
pub mod crypto;
pub mod curated;
pub mod dashboard;
pub mod evaluate;
pub mod frame;
pub mod generate;
pub mod lake;
pub mod ledger;
pub mod metrics;
pub mod pipeline;
pub mod privacy;
pub mod profile;
pub mod project;
#[cfg(feature = "aws")]
pub mod provision;
pub mod query;
pub mod report;
pub mod rules;
pub mod stage;
pub mod storage;
pub mod vocab;
pub mod yaml;

pub use project::{Project, ProjectError};

/// Sets up logging for the binaries: warnings by default, more with `-v`, none with `-q`.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("MEDALLION_LOG").unwrap_or_else(|_| {
            // Other crates' logs (delta-rs probing tables that do not exist yet) only with -vv.
            let others = if verbose >= 2 { "warn" } else { "off" };
            tracing_subscriber::EnvFilter::new(format!("medallion={level},{others}"))
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
