//! The clap tree of `medallion`: [`Cli`] with its global flags, the [`Command`] verbs, and the
//! value enums several verbs share (output formats, stages).
//!
//! Invariants: declarations only (what a flag means is resolved in [`super::config`] and the
//! verb files); every flag has a doc line, which is its `--help` text; no verb reads the
//! environment except through clap's `env =` (documented in `--help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[cfg(feature = "aws")]
use super::verb::AwsAction;
use super::verb::{
    DashboardAction, DemoArgs, EvaluateWhat, GenerateArgs, PromoteArgs, QuarantineAction,
    QueryArgs, RulesAction, ServeArgs, WatchArgs,
};

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
