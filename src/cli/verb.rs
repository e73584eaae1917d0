//! The arguments of the verbs with many flags (`promote`, `query`, `watch`, `evaluate`,
//! `generate`, `demo`, `serve`), their sub-actions (`quarantine`, `aws`, `dashboard`, `rules`),
//! and the stage binaries' [`StepCli`].
//!
//! Invariants: declarations only, plus the pure mapping of `--batch` / `--batch-index` to a
//! [`crate::lake::BatchSelector`]; every flag has a doc line, which is its `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::command::{OutputFormat, StageArg, TargetStage};

/// `medallion evaluate` targets.
#[derive(Debug, Subcommand)]
pub enum EvaluateWhat {
    /// Rebuild the at-risk list as of day N of each OULAD presentation from only the data dated
    /// on or before day N, and score it against final_result (Fail or Withdrawn = positive).
    AtRisk(EvaluateArgs),
}

/// `medallion evaluate at-risk`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Day of the presentation the list is rebuilt on.
    #[arg(long)]
    pub as_of_day: i64,
    /// The OULAD folder (its CSVs, in it or in csv/; activity from studentVle*.csv and
    /// parquet/studentVle/...). Without it: the lake of the OULAD project around (its
    /// trusted tables, `medallion init --template oulad`).
    #[arg(long, env = "MEDALLION_OULAD")]
    pub data: Option<PathBuf>,
    /// Only these presentations (`2014J`) or module-presentations (`AAA-2014J`); repeatable.
    #[arg(long)]
    pub presentation: Vec<String>,
    /// The curated settings to use (default: the project's pipelines/curated/products.yaml,
    /// outside a project the OULAD template's).
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Fit the indicator weights and level cut-offs on the chosen presentations instead (fit on
    /// earlier presentations, evaluate on later ones).
    #[arg(long)]
    pub fit: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `medallion promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Datasets to promote.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub datasets: Vec<String>,
    /// Every dataset, in dependency order.
    #[arg(long)]
    pub all: bool,
    /// Stage to reach.
    #[arg(long, value_enum, default_value_t = TargetStage::Curated)]
    pub to: TargetStage,
    /// How to run the steps.
    #[command(flatten)]
    pub run: RunFlags,
}

/// The flags `medallion promote` and the stage binaries share.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Compute and report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Promote batches that would be held back (mostly rejected or quarantined, no data rows,
    /// a foreign header): their bad rows go to rejects or quarantine as the rules say.
    #[arg(long)]
    pub accept_held: bool,
    /// Promote only the landed file with this batch id or original file name (a worker's
    /// share; curated is not per file and ignores it).
    #[arg(long, conflicts_with = "batch_index")]
    pub batch: Option<String>,
    /// Promote only the n-th landed file of each dataset, in landing order (0-based; an AWS
    /// Batch array child passes `AWS_BATCH_JOB_ARRAY_INDEX`).
    #[arg(long, env = "AWS_BATCH_JOB_ARRAY_INDEX")]
    pub batch_index: Option<usize>,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

impl RunFlags {
    /// A worker's share of the landed files from `--batch` / `--batch-index`.
    pub(crate) fn selector(&self) -> Option<crate::lake::BatchSelector> {
        use crate::lake::BatchSelector;
        match (&self.batch, self.batch_index) {
            (Some(b), _) => Some(BatchSelector::Id(b.clone())),
            (None, Some(i)) => Some(BatchSelector::Index(i)),
            (None, None) => None,
        }
    }

    /// The promotion options these flags give for a run up to `to`.
    pub(crate) fn options(&self, to: crate::vocab::Stage) -> crate::pipeline::PromoteOptions {
        crate::pipeline::PromoteOptions {
            to,
            dry_run: self.dry_run,
            accept_held: self.accept_held,
        }
    }
}

/// `medallion watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Folder to watch (default: `inbox/` in the project; on the AWS backend the landing
    /// bucket's `inbox/` prefix, through the SQS queue bootstrap wires, or polled).
    #[arg(long)]
    pub inbox: Option<PathBuf>,
    /// Process what is in the inbox (once every file is complete), then exit.
    #[arg(long)]
    pub once: bool,
    /// A file is complete when its size and modification time have not changed for this long.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub settle_ms: u64,
    /// Poll the inbox this often (always as a safety net; the only way when file-system
    /// notifications are unavailable or --poll is given).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub poll_ms: u64,
    /// Poll instead of using file-system notifications (or, on AWS, instead of the SQS queue).
    #[arg(long)]
    pub poll: bool,
}

/// `medallion quarantine` actions.
#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Re-evaluate quarantined rows under the current contract and rules; promote those that pass.
    Release {
        /// Dataset.
        dataset: String,
        /// Report what would be released; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete quarantined rows landed before the retention period and remove their files.
    Purge {
        /// Dataset.
        dataset: String,
        /// Keep rows landed in the last N days (default: `quarantine_retention_days` in
        /// medallion.yaml, 180).
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Report what would be purged; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `medallion aws` actions.
#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
pub enum AwsAction {
    /// Create or verify (idempotently) the KMS key, buckets, queue, Glue databases, alarms and
    /// the workers' Batch job definition and Step Functions state machine (`aws.workers:`).
    Bootstrap {
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Report every drift from what bootstrap sets up; exit 3 when anything is wrong.
    Doctor,
    /// Print least-privilege IAM policies per role and the bucket policy.
    Policies,
    /// Write the AWS Batch job definition and the Step Functions state machine that promote
    /// each landed file on its own worker (one Batch array child per file), then curated, and
    /// the StartExecution request with the landed-file counts. The settings default to
    /// medallion.yaml's `aws.workers:`; `aws bootstrap` creates the same definitions.
    Workers {
        /// Write the request files only (required: `aws bootstrap` creates the definitions).
        #[arg(long, required = true)]
        dry_run: bool,
        /// Folder to write the request files into.
        out: PathBuf,
        /// Container image with `medallion` and the project at /project [default:
        /// aws.workers.image, else medallion:latest].
        #[arg(long)]
        image: Option<String>,
        /// Batch job queue [default: aws.workers.job_queue, else medallion-workers].
        #[arg(long)]
        job_queue: Option<String>,
        /// Role the workers run as [default: aws.workers.job_role_arn, else a placeholder].
        #[arg(long)]
        job_role_arn: Option<String>,
        /// Role Step Functions runs as [default: aws.workers.states_role_arn, else a
        /// placeholder].
        #[arg(long)]
        states_role_arn: Option<String>,
        /// Memory per worker, MiB [default: aws.workers.memory_mib, else 4096] (promotion
        /// peaks under 2 GiB at any file size).
        #[arg(long)]
        memory_mib: Option<u32>,
    },
}

/// `medallion dashboard` actions.
#[derive(Debug, Subcommand)]
pub enum DashboardAction {
    /// The dashboards in dashboards/ and what each reads.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Build a self-contained HTML site (opens from the file system, no network).
    Build {
        /// Dashboards to build (default: all).
        names: Vec<String>,
        /// Folder to write the site into.
        #[arg(long, default_value = "site")]
        out: PathBuf,
    },
    /// Create or update the QuickSight data source, datasets and dashboards (AWS backend).
    Deploy {
        /// Dashboards to deploy (default: all).
        names: Vec<String>,
        /// Write the requests as JSON for `aws quicksight ... --cli-input-json` into DIR; call nothing.
        #[arg(long, value_name = "DIR")]
        dry_run: Option<PathBuf>,
    },
}

/// `medallion serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind; anything but loopback needs MEDALLION_API_TOKEN.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// `medallion rules` actions.
#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Validate contracts, quality rules, pipelines and the curated settings (file:line:column errors).
    Check,
    /// Profile a table and propose a rules file to review (printed, or written with --output).
    Suggest {
        /// Dataset (or curated product with `--stage curated`).
        dataset: String,
        /// Stage of the table to profile.
        #[arg(long, value_enum, default_value_t = StageArg::Trusted)]
        stage: StageArg,
        /// Write the proposal here instead of printing it.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Output format of query results.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum QueryFormat {
    /// Aligned table.
    Table,
    /// CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// `medallion query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement (omit it, and --named, for an interactive shell).
    pub sql: Option<String>,
    /// A query shipped in catalog/queries/NAME.sql.
    #[arg(long, conflicts_with = "sql")]
    pub named: Option<String>,
    /// A parameter of the named query, `key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Read every table as of a Delta version or an RFC 3339 timestamp.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
    /// Write the result to this file instead of the terminal.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Engine: `auto` is Athena on the AWS backend and the embedded engine locally.
    #[arg(long, value_enum, default_value_t = QueryEngine::Auto)]
    pub engine: QueryEngine,
}

/// Which SQL engine runs a query.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum QueryEngine {
    /// Athena on the AWS backend, the embedded engine locally.
    Auto,
    /// The embedded engine (DataFusion) over the Delta tables, wherever they are.
    Local,
    /// Athena (AWS backend only).
    Athena,
}

/// `medallion generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write the exports into.
    #[arg(long, default_value = "landing")]
    pub out: PathBuf,
    /// Students on the roster.
    #[arg(long, default_value_t = 200)]
    pub students: usize,
    /// Days of attendance and grades.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Random seed (same seed, same files).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Share of rows given one injected defect, 0..1.
    #[arg(long, default_value_t = 0.0)]
    pub defect_rate: f64,
    /// First day of the term (YYYY-MM-DD).
    #[arg(long, default_value = "2026-09-07")]
    pub start: chrono::NaiveDate,
}

/// `medallion demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Students on the generated roster.
    #[arg(long, default_value_t = 300)]
    pub students: usize,
    /// Days of generated data.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Share of rows with an injected defect.
    #[arg(long, default_value_t = 0.02)]
    pub defect_rate: f64,
}

/// Arguments of the stage binaries (`landing-to-raw`, `raw-to-trusted`).
#[derive(Debug, Parser)]
pub struct StepCli {
    /// Datasets to run the step for (default: every dataset, in dependency order).
    pub datasets: Vec<String>,
    /// Project folder (default: the folder holding medallion.yaml, searched upwards).
    #[arg(long, env = "MEDALLION_PROJECT")]
    pub project: Option<PathBuf>,
    /// How to run the step.
    #[command(flatten)]
    pub run: RunFlags,
    /// More logging.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}
