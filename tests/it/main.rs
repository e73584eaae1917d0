//! End-to-end tests: the real `medallion` binary on generated data, tables read back through
//! the library. One test binary (see Cargo.toml) so the heavy stack links once.

mod harness;

#[cfg(feature = "aws")]
mod aws;
mod books;
mod conformance;
mod crash;
mod curated;
mod dashboard;
mod e2e;
mod engagement;
mod errors;
mod evaluate;
mod idempotency;
mod issue_15;
mod oulad_lake;
mod privacy;
mod quality;
mod query;
mod real_data;
mod scale;
mod snapshot;
mod watch;
#[cfg(feature = "aws")]
mod workers;
