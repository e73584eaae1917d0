//! `medallion aws bootstrap | doctor | policies`, over [`crate::provision`].
//!
//! Invariants: bootstrap and doctor print one line per resource; doctor exits 3 on drift.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::config::RunConfig;
use super::{Exit, UsageError};
use crate::config;
use crate::project::ProjectError;

pub(super) async fn aws(
    rc: &RunConfig,
    root: &Path,
    action: super::AwsAction,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::aws::Aws;
    use crate::provision as setup;
    let config = crate::config::ProjectConfig::load(root).map_err(ProjectError::from)?;
    let cfg = config.aws.clone().ok_or_else(|| {
        UsageError(format!(
            "{}: add an `aws:` section (and `backend: aws`) first",
            root.join(config::CONFIG_FILE).display()
        ))
    })?;
    let aws = Aws::new(&cfg).await;
    match action {
        super::AwsAction::Bootstrap { dry_run } => {
            for c in setup::bootstrap(
                &aws,
                &config.catalog.join("alarms.yaml"),
                &config.pipelines.join(crate::alerts::FILE),
                dry_run,
            )
            .await?
            {
                writeln!(out, "{c}")?;
            }
            Ok(Exit::Ok)
        }
        super::AwsAction::Doctor => {
            let p = rc.open_at(root).await?;
            let checks = setup::doctor(
                &aws,
                p.lake.catalog.as_ref(),
                &p.lake.store.storage_options(),
            )
            .await?;
            let drift = checks
                .iter()
                .filter(|c| matches!(c, setup::Check::Drift(_)))
                .count();
            for c in &checks {
                writeln!(out, "{c}")?;
            }
            if drift == 0 {
                writeln!(out, "No drift.")?;
                Ok(Exit::Ok)
            } else {
                writeln!(
                    out,
                    "{drift} problem(s): run `medallion aws bootstrap` to fix what it manages."
                )?;
                Ok(Exit::Backend)
            }
        }
        super::AwsAction::Policies => {
            let arn = aws.key_arn().await.unwrap_or_else(|_| {
                format!("arn:aws:kms:{}:ACCOUNT:{}", cfg.region, cfg.kms_key_alias)
            });
            let mut doc = setup::role_policies(&aws, &arn);
            let buckets: serde_json::Map<String, serde_json::Value> = crate::aws::BUCKETS
                .iter()
                .map(|b| (aws.bucket(b), setup::bucket_policy(&aws.bucket(b))))
                .collect();
            doc["bucket_policies"] = serde_json::Value::Object(buckets);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            Ok(Exit::Ok)
        }
    }
}
