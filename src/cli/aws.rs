//! `medallion aws bootstrap | doctor | policies | workers`, over [`crate::provision`].
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
            let datasets = crate::project::dataset_order(&config)?;
            for c in setup::bootstrap(
                &aws,
                &config.catalog.join("alarms.yaml"),
                &config.pipelines.join(crate::alerts::FILE),
                &datasets,
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
                &p.datasets()?,
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
        super::AwsAction::Workers {
            dry_run: _,
            out: dir,
            image,
            job_queue,
            job_role_arn,
            states_role_arn,
            memory_mib,
        } => {
            use crate::provision::workers;
            let p = rc.open_at(root).await?;
            let datasets = p.datasets()?;
            let mut counts = Vec::new();
            for ds in &datasets {
                let n = p.lake.store.list_landed(ds).await?.len();
                counts.push((ds.clone(), n));
            }
            // Flags, else `aws.workers:`, else the defaults (role ARNs: a placeholder).
            let yaml = cfg.workers.clone().unwrap_or_default();
            let placeholder = |role: &str| format!("arn:aws:iam::ACCOUNT_ID:role/{role}");
            let s = workers::WorkerSettings {
                image: image.unwrap_or(yaml.image),
                job_queue: job_queue.unwrap_or(yaml.job_queue),
                job_role_arn: job_role_arn
                    .or(yaml.job_role_arn)
                    .unwrap_or_else(|| placeholder("medallion-worker")),
                states_role_arn: states_role_arn
                    .or(yaml.states_role_arn)
                    .unwrap_or_else(|| placeholder("medallion-states")),
                vcpus: yaml.vcpus,
                memory_mib: memory_mib.unwrap_or(yaml.memory_mib),
            };
            // The account of the state machine's ARN: the role's, when it names one.
            let account = s
                .states_role_arn
                .split(':')
                .nth(4)
                .filter(|a| !a.is_empty())
                .unwrap_or("ACCOUNT_ID")
                .to_string();
            std::fs::create_dir_all(&dir)?;
            let files = [
                (
                    "batch-register-job-definition.json",
                    workers::job_definition(&s),
                ),
                (
                    "stepfunctions-create-state-machine.json",
                    workers::state_machine(&s, &datasets),
                ),
                (
                    "stepfunctions-start-execution.json",
                    workers::start_execution(&cfg.region, &account, &counts),
                ),
            ];
            for (name, body) in &files {
                let path = dir.join(name);
                std::fs::write(&path, serde_json::to_string_pretty(body)? + "\n")?;
                writeln!(out, "wrote    {}", path.display())?;
            }
            for (ds, n) in &counts {
                writeln!(out, "workers  {ds}: {n} landed file(s), one worker each")?;
            }
            writeln!(
                out,
                "create with `medallion aws bootstrap` (aws.workers: in medallion.yaml), or:\n  aws batch register-job-definition --cli-input-json file://{}\n  aws stepfunctions create-state-machine --cli-input-json file://{}\nrun the landed files with:\n  aws stepfunctions start-execution --cli-input-json file://{}",
                dir.join(files[0].0).display(),
                dir.join(files[1].0).display(),
                dir.join(files[2].0).display()
            )?;
            Ok(Exit::Ok)
        }
    }
}
