//! Time: every instant medallion records or measures from comes through a [`Clock`].
//!
//! Invariants: library code never calls `Utc::now()` directly; it asks the [`Clock`] it was
//! given (the project's, which `MEDALLION_NOW` can pin), so a rerun as of one instant and every
//! test are deterministic. The exception is work bound to the real file system's time (Delta
//! log clean-up compares with file modification times).

use chrono::{DateTime, Utc};

/// Time source, so tests can pin "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock stopped at one instant (`MEDALLION_NOW`: reproducible reruns and tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
