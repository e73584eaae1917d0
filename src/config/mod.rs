//! `medallion.yaml`: the project configuration, and finding the project folder.
//!
//! Defaults are chosen so that an empty `medallion.yaml` (or none, for `demo`) works: local
//! backend, lake under `./lake`, contracts/rules/pipelines in their conventional folders.
//!
//! Invariants: loading reads the file only — no environment variable (per-run overrides such as
//! `MEDALLION_KEYRING` arrive through `ProjectOptions`); relative paths resolve against the
//! project folder.

pub mod pipeline;
mod scaffold;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use scaffold::{scaffold, scaffold_template, OULAD_PRODUCTS, SHIPPED_DATASETS, TEMPLATES};

use crate::yaml::{self, YamlError};

/// File name of the project configuration.
pub const CONFIG_FILE: &str = "medallion.yaml";

/// Errors finding or reading the project configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// medallion.yaml did not parse.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// No medallion.yaml here or above.
    #[error(
        "no {CONFIG_FILE} in {0} or any parent folder: run `medallion init DIR` or pass --project"
    )]
    NotFound(PathBuf),
    /// The configuration parsed but is not usable.
    #[error("{}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Scaffolding failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Which backend stores tables, keys, catalog and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Folder lake, file catalog, local key ring, local metrics log.
    #[default]
    Local,
    /// S3 with SSE-KMS, Glue Data Catalog, KMS envelope keys, CloudWatch metrics.
    Aws,
}

/// The `aws:` section of medallion.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region.
    pub region: String,
    /// Endpoint override (an emulator on loopback); `AWS_ENDPOINT_URL` works too.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Buckets are `<bucket_prefix>-landing`, `-raw`, `-trusted`, `-curated`, `-ops`.
    pub bucket_prefix: String,
    /// Alias of the customer-managed KMS key (`alias/medallion`).
    pub kms_key_alias: String,
    /// Glue databases are `<prefix>_raw`, `_trusted`, `_curated`, `_ops`.
    pub glue_database_prefix: String,
    /// CloudWatch namespace of the metrics.
    #[serde(default = "default_namespace")]
    pub cloudwatch_namespace: String,
    /// Install the TLS-only / encrypted-puts-only bucket policies (turn off only for emulators
    /// that cannot evaluate policy conditions; `medallion aws policies` prints them).
    #[serde(default = "default_true")]
    pub apply_bucket_policies: bool,
    /// Days landing files are kept (lifecycle rule on the landing bucket).
    #[serde(default = "default_retention")]
    pub landing_retention_days: i32,
    /// Days files deleted by a VACUUM (a quarantine purge) stay as noncurrent object versions
    /// in the versioned stage buckets before they expire.
    #[serde(default = "default_deleted_retention")]
    pub deleted_object_retention_days: i32,
    /// Where `medallion dashboard deploy` publishes (absent: deploy refuses, dry-run included).
    #[serde(default)]
    pub quicksight: Option<QuickSightConfig>,
    /// What `medallion aws bootstrap` creates the stateless workers from (the Batch job
    /// definition and the Step Functions state machine); absent, or without both role ARNs,
    /// bootstrap skips them and says why.
    #[serde(default)]
    pub workers: Option<WorkersConfig>,
}

/// The `aws.workers:` section: the image, queue and roles of the stateless workers
/// (`medallion aws workers --dry-run` takes these as defaults too; its flags override them).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Container image holding `medallion` and the project at `/project`.
    #[serde(default = "default_worker_image")]
    pub image: String,
    /// AWS Batch job queue (created with its compute environment outside medallion).
    #[serde(default = "default_job_queue")]
    pub job_queue: String,
    /// ARN of the IAM role the worker containers run as (`medallion aws policies` prints its
    /// policy); bootstrap never creates IAM roles.
    #[serde(default)]
    pub job_role_arn: Option<String>,
    /// ARN of the IAM role Step Functions runs as (submits and watches the Batch jobs).
    #[serde(default)]
    pub states_role_arn: Option<String>,
    /// vCPUs per worker.
    #[serde(default = "default_worker_vcpus")]
    pub vcpus: u32,
    /// Memory per worker, MiB (promotion peaks under 2 GiB at any file size).
    #[serde(default = "default_worker_memory")]
    pub memory_mib: u32,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            image: default_worker_image(),
            job_queue: default_job_queue(),
            job_role_arn: None,
            states_role_arn: None,
            vcpus: default_worker_vcpus(),
            memory_mib: default_worker_memory(),
        }
    }
}

fn default_worker_image() -> String {
    "medallion:latest".to_string()
}

fn default_job_queue() -> String {
    "medallion-workers".to_string()
}

fn default_worker_vcpus() -> u32 {
    2
}

fn default_worker_memory() -> u32 {
    4096
}

/// The `aws.quicksight:` section: the account and the QuickSight user or group given access.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuickSightConfig {
    /// 12-digit AWS account id of the QuickSight subscription.
    pub account_id: String,
    /// ARN of the QuickSight user or group granted the data source, data sets and dashboards
    /// (`arn:aws:quicksight:eu-west-1:111122223333:group/default/analysts`).
    pub principal: String,
    /// ARN of the IAM role QuickSight uses for Athena (documented by `aws policies`).
    #[serde(default)]
    pub role_arn: Option<String>,
}

fn default_deleted_retention() -> i32 {
    30
}

fn default_namespace() -> String {
    "Medallion".to_string()
}

fn default_true() -> bool {
    true
}

fn default_retention() -> i32 {
    400
}

/// medallion.yaml as serde reads it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfigFile {
    #[serde(default)]
    backend: Backend,
    #[serde(default)]
    lake: Option<PathBuf>,
    #[serde(default)]
    keyring: Option<PathBuf>,
    #[serde(default)]
    contracts: Option<PathBuf>,
    #[serde(default)]
    quality_rules: Option<PathBuf>,
    #[serde(default)]
    pipelines: Option<PathBuf>,
    #[serde(default)]
    catalog: Option<PathBuf>,
    #[serde(default)]
    dashboards: Option<PathBuf>,
    #[serde(default)]
    aws: Option<AwsConfig>,
    #[serde(default = "default_quarantine_retention")]
    quarantine_retention_days: u32,
}

fn default_quarantine_retention() -> u32 {
    180
}

/// The resolved project configuration: every path absolute.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// The folder holding medallion.yaml.
    pub root: PathBuf,
    /// Backend in use.
    pub backend: Backend,
    /// Lake root folder.
    pub lake: PathBuf,
    /// Key ring file (pseudonymisation keys). Never inside the lake's published stages.
    pub keyring: PathBuf,
    /// contracts/ folder.
    pub contracts: PathBuf,
    /// quality_rules/ folder.
    pub quality_rules: PathBuf,
    /// pipelines/ folder.
    pub pipelines: PathBuf,
    /// catalog/ folder (naming and descriptions).
    pub catalog: PathBuf,
    /// dashboards/ folder.
    pub dashboards: PathBuf,
    /// AWS settings (required when `backend: aws`).
    pub aws: Option<AwsConfig>,
    /// Days quarantined rows are kept before `medallion quarantine purge` removes them.
    pub quarantine_retention_days: u32,
}

impl ProjectConfig {
    /// Reads `root/medallion.yaml`.
    ///
    /// # Errors
    /// YAML errors with file:line:column, or an invalid setting.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let path = root.join(CONFIG_FILE);
        let file: ProjectConfigFile = yaml::load(&path)?;
        if file.backend == Backend::Aws && file.aws.is_none() {
            return Err(ConfigError::Invalid {
                path,
                message: "backend: aws needs an `aws:` section (region, bucket_prefix, kms_key_alias, glue_database_prefix)".into(),
            });
        }
        Ok(Self::resolve(root, file))
    }

    fn resolve(root: &Path, f: ProjectConfigFile) -> Self {
        let abs = |p: Option<PathBuf>, default: &str| {
            let p = p.unwrap_or_else(|| PathBuf::from(default));
            if p.is_absolute() {
                p
            } else {
                root.join(p)
            }
        };
        // `MEDALLION_KEYRING` overrides this per run (see `ProjectOptions`).
        let keyring = abs(f.keyring.clone(), ".medallion/keyring.json");
        Self {
            root: root.to_path_buf(),
            backend: f.backend,
            lake: abs(f.lake, "lake"),
            keyring,
            contracts: abs(f.contracts, "contracts"),
            quality_rules: abs(f.quality_rules, "quality_rules"),
            pipelines: abs(f.pipelines, "pipelines"),
            catalog: abs(f.catalog, "catalog"),
            dashboards: abs(f.dashboards, "dashboards"),
            quarantine_retention_days: f.quarantine_retention_days,
            aws: f.aws,
        }
    }

    /// Path of a dataset's contract.
    pub fn contract_path(&self, dataset: &str) -> PathBuf {
        self.contracts.join(format!("{dataset}.yaml"))
    }

    /// Path of a dataset's quality rules.
    pub fn rules_path(&self, dataset: &str) -> PathBuf {
        self.quality_rules.join(format!("{dataset}.yaml"))
    }

    /// Path of a dataset's pipeline.
    pub fn pipeline_path(&self, dataset: &str) -> PathBuf {
        self.pipelines.join(format!("{dataset}.yaml"))
    }
}

/// Finds the folder holding medallion.yaml, starting at `start` and walking up.
///
/// # Errors
/// [`ConfigError::NotFound`] when no folder up to the root has one.
pub fn find_project(start: &Path) -> Result<PathBuf, ConfigError> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if d.join(CONFIG_FILE).is_file() {
            return Ok(d.to_path_buf());
        }
        dir = d.parent();
    }
    Err(ConfigError::NotFound(start.to_path_buf()))
}

pub use crate::vocab::is_valid_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("attendance"));
        assert!(is_valid_name("grades_2"));
        assert!(!is_valid_name("../etc"));
        assert!(!is_valid_name("Attendance"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a/b"));
    }

    #[test]
    fn defaults_are_relative_to_root() {
        let c = ProjectConfig::resolve(Path::new("/p"), ProjectConfigFile::default());
        assert_eq!(c.lake, Path::new("/p/lake"));
        assert_eq!(c.contracts, Path::new("/p/contracts"));
    }

    #[test]
    fn unknown_key_is_refused_with_location() {
        let err = yaml::parse::<ProjectConfigFile>(
            Path::new("medallion.yaml"),
            "backend: local\nlakes: x\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.to_string().contains("unknown field `lakes`"));
    }
}
