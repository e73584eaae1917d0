//! One conformance test per backend trait, run against every implementation: the local one
//! always, the AWS one against moto's server on loopback (skipped without moto unless
//! `MEDALLION_REQUIRE_MOTO` is set, as the other AWS tests). Each `conforms` fn states the
//! trait's guarantees as assertions; an implementation passes by being built through its
//! capability's `build` factory and handed to it.

mod catalog;
mod keys;
mod metrics;
mod storage;

use chrono::{DateTime, TimeZone, Utc};

/// The instant every conformance test runs at.
pub(crate) fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 8, 30, 0)
        .single()
        .expect("a valid instant")
}

/// The AWS side: moto on loopback, bootstrapped as `medallion aws bootstrap` does, and the
/// context every AWS backend is built from.
#[cfg(feature = "aws")]
pub(crate) mod aws {
    use std::path::Path;

    use medallion::aws::{Aws, AwsContext};

    use crate::aws::{aws_cfg, moto, Moto, ENV};

    /// A bootstrapped moto and its context; `None` when moto is not installed (and not
    /// required).
    pub(crate) fn context(rt: &tokio::runtime::Runtime) -> Option<(Moto, AwsContext)> {
        let m = moto()?;
        for (k, v) in ENV {
            // Same values in every test thread.
            std::env::set_var(k, v);
        }
        let cfg = aws_cfg(&m);
        let ctx = rt.block_on(async {
            let aws = Aws::new(&cfg).await;
            let none = Path::new("/nonexistent");
            medallion::provision::bootstrap(&aws, none, none, &[], false)
                .await
                .expect("bootstrap on moto");
            AwsContext::connect(&cfg).await.expect("the key exists")
        });
        Some((m, ctx))
    }
}
