//! Provisioning the AWS set-up: `medallion aws bootstrap | doctor | policies` create or verify
//! the KMS key, the buckets, the inbox queue, the alerts topic and alarms, the Glue databases,
//! the Athena workgroup and the stateless workers (a Batch job definition and a Step Functions
//! state machine, [`workers`]), report drift, and print least-privilege IAM policies. One module
//! per resource; [`bootstrap`] runs them in dependency order (key first: everything else is
//! encrypted with it).
//!
//! Invariants: every `ensure_*` is idempotent — it reads the live resource first and reports
//! [`Check::Ok`] when it is already right, [`Check::Planned`] on a dry run (changing nothing),
//! [`Check::Changed`] when it created or corrected it, [`Check::Skipped`] when a setting it
//! needs is not configured; [`doctor`] only reads. Provisioning
//! depends on the AWS clients ([`crate::aws`]), never the other way round.

mod alarm;
mod athena;
mod bucket;
mod doctor;
mod glue;
mod kms;
mod policy;
mod queue;
pub mod workers;

use std::path::Path;

use crate::aws::{Aws, AwsError, BUCKETS};

pub use alarm::{AlarmConfig, AlarmScope, AlarmsFile};
pub use athena::ensure_workgroup;
pub use doctor::doctor;
pub use policy::{bucket_policy, role_policies};

/// One line of a bootstrap or doctor run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Already right.
    Ok(String),
    /// Created or corrected now.
    Changed(String),
    /// Would be created or corrected (dry run).
    Planned(String),
    /// Wrong (doctor).
    Drift(String),
    /// Not created or checked: a setting it needs is not configured (why).
    Skipped(String),
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok(s) => write!(f, "ok       {s}"),
            Self::Changed(s) => write!(f, "created  {s}"),
            Self::Planned(s) => write!(f, "plan     {s}"),
            Self::Drift(s) => write!(f, "DRIFT    {s}"),
            Self::Skipped(s) => write!(f, "skipped  {s}"),
        }
    }
}

/// Creates or verifies the whole set-up, idempotently. `datasets` (in dependency order) are the
/// ones the workers' state machine promotes.
///
/// # Errors
/// AWS errors.
pub async fn bootstrap(
    aws: &Aws,
    alarms: &Path,
    alert_rules: &Path,
    datasets: &[String],
    dry: bool,
) -> Result<Vec<Check>, AwsError> {
    let mut out = Vec::new();
    let arn = kms::ensure_key(aws, dry, &mut out).await?;
    for purpose in BUCKETS {
        bucket::ensure_bucket(aws, purpose, arn.as_deref(), dry, &mut out).await?;
    }
    queue::ensure_inbox_queue(aws, dry, &mut out).await?;
    alarm::ensure_alerts(aws, arn.as_deref(), alert_rules, dry, &mut out).await?;
    glue::ensure_databases(aws, dry, &mut out).await?;
    if let Some(arn) = &arn {
        out.push(athena::ensure_workgroup(aws, arn, dry).await?);
    }
    alarm::ensure_alarms(aws, alarms, dry, &mut out).await?;
    workers::ensure_workers(aws, datasets, dry, &mut out).await?;
    Ok(out)
}
