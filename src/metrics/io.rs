//! Process-wide counts of the requests medallion makes to storage and to AWS services, so a
//! step's cost can be measured rather than guessed.
//!
//! Every Delta table read or write goes through object stores that delta-rs builds from its
//! factory registry; [`crate::storage::counting::install`] wraps those factories so each
//! request is counted here. The AWS clients medallion calls itself (landing objects, KMS, Glue,
//! CloudWatch) count their own calls. A step takes an [`IoSnapshot`] when it starts and the
//! difference when it ends; steps of one process run one after another.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Request classes as S3 bills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// PUT, COPY, POST and LIST requests.
    S3Write,
    /// GET, HEAD and other reads.
    S3Read,
    /// Bytes sent to storage.
    BytesWritten,
    /// Bytes received from storage.
    BytesRead,
    /// Requests medallion sent to KMS itself.
    Kms,
    /// Glue Data Catalog API requests.
    Glue,
    /// CloudWatch API requests.
    CloudWatch,
}

const N: usize = 7;
static COUNTS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

fn slot(c: Counter) -> usize {
    match c {
        Counter::S3Write => 0,
        Counter::S3Read => 1,
        Counter::BytesWritten => 2,
        Counter::BytesRead => 3,
        Counter::Kms => 4,
        Counter::Glue => 5,
        Counter::CloudWatch => 6,
    }
}

/// Adds `n` to a counter.
pub fn add(c: Counter, n: u64) {
    COUNTS[slot(c)].fetch_add(n, Ordering::Relaxed);
}

/// The counters at one moment, or the difference between two moments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IoSnapshot {
    /// PUT, COPY, POST and LIST requests to object storage.
    pub s3_write_requests: u64,
    /// GET and HEAD requests to object storage.
    pub s3_read_requests: u64,
    /// Bytes written to object storage.
    pub bytes_written: u64,
    /// Bytes read from object storage.
    pub bytes_read: u64,
    /// KMS requests medallion made.
    pub kms_requests: u64,
    /// Glue requests.
    pub glue_requests: u64,
    /// CloudWatch requests.
    pub cloudwatch_requests: u64,
}

impl IoSnapshot {
    /// The counters now.
    pub fn now() -> Self {
        let g = |c| COUNTS[slot(c)].load(Ordering::Relaxed);
        Self {
            s3_write_requests: g(Counter::S3Write),
            s3_read_requests: g(Counter::S3Read),
            bytes_written: g(Counter::BytesWritten),
            bytes_read: g(Counter::BytesRead),
            kms_requests: g(Counter::Kms),
            glue_requests: g(Counter::Glue),
            cloudwatch_requests: g(Counter::CloudWatch),
        }
    }

    /// What was counted since `self` was taken.
    pub fn elapsed(&self) -> Self {
        let now = Self::now();
        Self {
            s3_write_requests: now.s3_write_requests.saturating_sub(self.s3_write_requests),
            s3_read_requests: now.s3_read_requests.saturating_sub(self.s3_read_requests),
            bytes_written: now.bytes_written.saturating_sub(self.bytes_written),
            bytes_read: now.bytes_read.saturating_sub(self.bytes_read),
            kms_requests: now.kms_requests.saturating_sub(self.kms_requests),
            glue_requests: now.glue_requests.saturating_sub(self.glue_requests),
            cloudwatch_requests: now
                .cloudwatch_requests
                .saturating_sub(self.cloudwatch_requests),
        }
    }

    /// All object-storage requests.
    pub fn s3_requests(&self) -> u64 {
        self.s3_write_requests + self.s3_read_requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_counts_only_what_happened_since() {
        let start = IoSnapshot::now();
        add(Counter::S3Write, 2);
        add(Counter::BytesWritten, 100);
        let d = start.elapsed();
        // Other tests may count concurrently: at least what this one added.
        assert!(d.s3_write_requests >= 2 && d.bytes_written >= 100, "{d:?}");
    }
}
