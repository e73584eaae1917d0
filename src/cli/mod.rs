//! The command line: clap arguments resolved once into a [`RunConfig`] ([`config`]), then
//! one file per verb group (`project`, `promote`, `quality`, `query`, `aws`, `evaluate`,
//! `privacy`, `audit`, `alerts`, `dashboard`, `watch`) calling the library.
//!
//! Invariants: the only module that knows clap and reads the environment, and (with `main`)
//! the only one that uses anyhow; it formats what the library returns and holds no SQL, no
//! table naming and no library logic of its own.

mod alerts;
mod audit;
#[cfg(feature = "aws")]
mod aws;
mod config;
mod dashboard;
mod evaluate;
mod land_all;
mod privacy;
mod progress;
mod project;
mod promote;
mod quality;
mod query;
mod run;
mod shell;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use config::{Progress, RunConfig};
pub use promote::run_step;
pub use run::{exit_for, run};

/// Runs a command future on a fresh runtime and maps its outcome to an exit code, printing
/// errors as one paragraph (the whole chain with `verbose`). Shared by every binary.
pub fn block_on(
    verbose: bool,
    fut: impl std::future::Future<Output = anyhow::Result<Exit>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Backend.into();
        }
    };
    match runtime.block_on(fut) {
        Ok(code) => code.into(),
        Err(err) => {
            if verbose {
                eprintln!("error: {err:?}");
            } else {
                eprintln!("error: {err:#}");
            }
            exit_for(&err).into()
        }
    }
}

/// `main` of the stage binaries (`landing-to-raw`, `raw-to-trusted`, `trusted-to-curated`):
/// parses [`StepCli`] and runs one step up to `to`.
pub fn step_main(to: crate::vocab::Stage) -> ExitCode {
    use clap::Parser as _;
    let args = StepCli::parse();
    crate::init_logging(args.verbose, false);
    let verbose = args.verbose > 0;
    let mut stdout = std::io::stdout().lock();
    block_on(verbose, run_step(args, to, &mut stdout))
}

/// Exit codes (DESIGN.md): 0 ok, 1 data stopped, 2 usage or configuration, 3 backend or I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A `fail` rule or the contract stopped the data.
    DataStopped = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// Backend or I/O error.
    Backend = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A usage mistake the user can fix (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// medallion: promote academic exports landing → raw → trusted → curated, with contracts,
/// quality rules and a catalog.
#[derive(Debug, Parser)]
#[command(name = "medallion", version, about, long_about = None)]
pub struct Cli {
    /// Project folder (default: the folder holding medallion.yaml, searched upwards).
    #[arg(long, global = true, env = "MEDALLION_PROJECT")]
    pub project: Option<PathBuf>,
    /// More logging (-v info, -vv debug); errors show their full chain.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// For a terminal.
    Text,
    /// Stable JSON.
    Json,
}

/// A stage a promotion can reach.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TargetStage {
    /// landing → raw.
    Raw,
    /// landing → raw → trusted.
    Trusted,
    /// landing → raw → trusted → curated products.
    Curated,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new project folder with the shipped contracts, rules and pipelines.
    Init {
        /// Folder to create (may exist; existing files are kept).
        dir: PathBuf,
        /// Project template: `school` (default) or `oulad` (the Open University Learning
        /// Analytics Dataset's pass mark in the at-risk settings).
        #[arg(long, default_value = "school")]
        template: String,
    },
    /// Generate sample exports, land them, promote them and print the quality report.
    Demo(DemoArgs),
    /// Generate realistic exports (courses, students, attendance, grades) with optional defects.
    Generate(GenerateArgs),
    /// Copy export files into the landing zone (content-addressed; landing twice is a no-op).
    Land {
        /// Dataset the files belong to.
        #[arg(required_unless_present = "all")]
        dataset: Option<String>,
        /// Files, or folders whose files (subfolders included) match the pipeline's patterns.
        #[arg(required_unless_present = "all")]
        files: Vec<PathBuf>,
        /// Every file under DIR, each into every dataset whose patterns match its name.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["dataset", "files"])]
        all: Option<PathBuf>,
    },
    /// Promote datasets to a stage, running every step still needed.
    Promote(PromoteArgs),
    /// Every table: stage, kind, version and row count.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// The quality report of a batch: books, rules worst first, change against the previous batch.
    Report {
        /// Dataset or curated product.
        dataset: String,
        /// Batch id (default: the newest).
        #[arg(long)]
        batch: Option<String>,
        /// Only the rules of this stage (default: every stage the batch went through).
        #[arg(long, value_enum)]
        stage: Option<StageArg>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Write to this file (html defaults to lake/_reports/<dataset>_<batch>.html).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Quarantined rows with the rules they failed; `quarantine release DATASET` re-promotes fixed rows.
    #[command(args_conflicts_with_subcommands = true)]
    Quarantine {
        /// Dataset whose quarantine to list.
        dataset: Option<String>,
        /// Only rows that failed this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Rows to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Release instead of listing.
        #[command(subcommand)]
        action: Option<QuarantineAction>,
    },
    /// A column profile of a dataset's table: nulls, distinct values, statistics, top values, shapes.
    Profile {
        /// Dataset.
        dataset: String,
        /// Stage of the table to profile.
        #[arg(long, value_enum, default_value_t = StageArg::Trusted)]
        stage: StageArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Write to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Check the rule files, or suggest rules from a profile of the data.
    Rules {
        /// What to do.
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Set up and check the AWS backend (`backend: aws` in medallion.yaml).
    #[cfg(feature = "aws")]
    Aws {
        /// What to do.
        #[command(subcommand)]
        action: AwsAction,
    },
    /// Query the lake with SQL (tables are `<stage>.<table>`); no SQL opens a small shell.
    Query(QueryArgs),
    /// Look for direct identifiers in clear in every table (and, apart, in landing); exit 1 when
    /// a table past landing holds any. Reports table, column and count, never values.
    Scan {
        /// Only the tables of this stage.
        #[arg(long, value_enum)]
        stage: Option<StageArg>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Erase one student from every stage, history included (landing files rewritten, old table
    /// versions and files removed); later exports mentioning them are held in quarantine.
    Forget {
        /// The student's id as the exports deliver it.
        #[arg(long)]
        student: String,
        /// List what would go; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// The audit trail: who changed the lake, when, how (`ops.audit`; identifiers pseudonymised).
    Audit {
        /// Only commands at most this old: `30d`, `12h`, `45m`, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only this action (`promote`, `land`, `quarantine release`, ...).
        #[arg(long)]
        action: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Dashboards over curated tables: list them, build the HTML site, deploy to QuickSight.
    Dashboard {
        /// What to do.
        #[command(subcommand)]
        action: DashboardAction,
    },
    /// Serve the dashboard site and a read-only JSON API over curated tables.
    Serve(ServeArgs),
    /// Land and promote every export dropped into the inbox as it arrives, through curated and
    /// the alert rules (SIGINT/SIGTERM: finish the current step, then stop; a second one stops now).
    Watch(WatchArgs),
    /// The alerts for educators: what fired, for whom (pseudonym), why, what to do.
    Alerts {
        /// Only alerts fired or resolved at most this long ago: `7d`, `12h`, `45m`, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only open alerts.
        #[arg(long)]
        open: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Measure a data product against real outcomes.
    Evaluate {
        /// What to evaluate.
        #[command(subcommand)]
        what: EvaluateWhat,
    },
    /// The catalog, or one table's entry (`trusted.attendance`) with its schema.
    Catalog {
        /// A table name from `medallion status`.
        table: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

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

/// A worker's share of the landed files from `--batch` / `--batch-index`.
pub(crate) fn selector(
    batch: &Option<String>,
    index: Option<usize>,
) -> Option<crate::lake::BatchSelector> {
    use crate::lake::BatchSelector;
    match (batch, index) {
        (Some(b), _) => Some(BatchSelector::Id(b.clone())),
        (None, Some(i)) => Some(BatchSelector::Index(i)),
        (None, None) => None,
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
    /// Create or verify (idempotently) the KMS key, buckets, Glue databases and alarms.
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
    /// each landed file on its own worker (one Batch array child per file), then curated.
    Workers {
        /// Write the request files only (required: creating them is `aws batch
        /// register-job-definition` and `aws stepfunctions create-state-machine` with the files).
        #[arg(long, required = true)]
        dry_run: bool,
        /// Folder to write the request files into.
        out: PathBuf,
        /// Container image with `medallion` and the project at /project.
        #[arg(long, default_value = "medallion:latest")]
        image: String,
        /// Batch job queue.
        #[arg(long, default_value = "medallion-workers")]
        job_queue: String,
        /// Role the workers run as.
        #[arg(long, default_value = "arn:aws:iam::ACCOUNT_ID:role/medallion-worker")]
        job_role_arn: String,
        /// Role Step Functions runs as.
        #[arg(long, default_value = "arn:aws:iam::ACCOUNT_ID:role/medallion-states")]
        states_role_arn: String,
        /// Memory per worker, MiB (promotion peaks under 2 GiB at any file size).
        #[arg(long, default_value_t = 4096)]
        memory_mib: u32,
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

/// A stage on the command line: the table profiled, the rules reported or suggested.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StageArg {
    /// raw.<dataset> (text).
    Raw,
    /// trusted.<dataset> (typed).
    Trusted,
    /// curated.<product>.
    Curated,
}

impl StageArg {
    /// The lake stage named.
    pub fn stage(self) -> crate::vocab::Stage {
        match self {
            Self::Raw => crate::vocab::Stage::Raw,
            Self::Trusted => crate::vocab::Stage::Trusted,
            Self::Curated => crate::vocab::Stage::Curated,
        }
    }
}

/// Output format of the quality report.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// For a terminal.
    Text,
    /// Stable JSON.
    Json,
    /// A self-contained HTML page.
    Html,
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
    /// Compute and report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Promote batches that would be held back (see `medallion promote --help`).
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
    /// More logging.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}
