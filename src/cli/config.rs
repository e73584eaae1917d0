//! [`RunConfig`]: how this one run behaves, resolved once at the start of the run from, in
//! order, the defaults, `medallion.yaml` (read when the project is opened), the environment and
//! the flags — the binary's only reading of the environment (clap reads `MEDALLION_PROJECT`).
//!
//! Invariants: the library below the CLI reads no environment variable for behaviour; what the
//! environment says travels in [`RunConfig`] and reaches the library as [`ProjectOptions`]. A
//! value that must be valid only when used (`MEDALLION_NOW`, checked when a project is opened)
//! is kept as given, so commands that do not use it are not stopped by it. The AWS SDK's own
//! variables and the crash-test hook are the exceptions (see `aws` and `stage::crash_point`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config;
use crate::project::{Project, ProjectError, ProjectOptions};

/// Where progress is drawn and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Draw spinners (stderr is a terminal and `-q` is off).
    pub draw: bool,
    /// Use colour (`NO_COLOR` unset or empty).
    pub colour: bool,
}

/// How one run behaves.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The current folder when the run started.
    pub cwd: PathBuf,
    /// `--project` (or `MEDALLION_PROJECT`), relative to `cwd`.
    pub project: Option<PathBuf>,
    /// `-q`.
    pub quiet: bool,
    /// Spinners on the terminal.
    pub progress: Progress,
    /// `MEDALLION_NOW`: run as of this instant (RFC 3339, checked when a project is opened).
    pub now: Option<String>,
    /// `MEDALLION_KEYRING`: the key ring to use instead of the configured one.
    pub keyring: Option<PathBuf>,
    /// Who runs this process (`MEDALLION_ACTOR` when a scheduler sets it, else the OS user).
    pub actor: String,
    /// The token `medallion serve` requires when bound beyond loopback.
    pub serve_token: Option<String>,
}

impl RunConfig {
    /// Resolves the run's configuration from the flags and the environment.
    ///
    /// # Errors
    /// When the current folder cannot be read.
    pub fn resolve(project: Option<&Path>, quiet: bool) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        let var = |k: &str| std::env::var(k).ok();
        let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(Self {
            project: project.map(|p| cwd.join(p)),
            cwd,
            quiet,
            progress: Progress {
                draw: super::progress::enabled(quiet),
                colour,
            },
            now: var("MEDALLION_NOW"),
            keyring: std::env::var_os("MEDALLION_KEYRING").map(PathBuf::from),
            actor: var("MEDALLION_ACTOR")
                .or_else(|| var("USER"))
                .or_else(|| var("USERNAME"))
                .unwrap_or_else(|| "unknown".to_string()),
            serve_token: var(crate::dashboard::serve::TOKEN_ENV).filter(|t| !t.is_empty()),
        })
    }

    /// The project folder: `--project`, else the folder holding medallion.yaml, searched
    /// upwards from the current folder.
    ///
    /// # Errors
    /// When no project is found.
    pub fn root(&self) -> Result<PathBuf> {
        match &self.project {
            Some(p) => Ok(p.clone()),
            None => Ok(config::find_project(&self.cwd).map_err(ProjectError::from)?),
        }
    }

    /// What the library needs to open a project for this run.
    pub fn options(&self) -> ProjectOptions {
        ProjectOptions {
            now: self.now.clone(),
            keyring: self.keyring.clone(),
        }
    }

    /// Opens the run's project.
    ///
    /// # Errors
    /// No project found; configuration or storage errors.
    pub async fn open(&self) -> Result<Project> {
        self.open_at(&self.root()?).await
    }

    /// Opens the project at `root` for this run.
    ///
    /// # Errors
    /// Configuration or storage errors.
    pub async fn open_at(&self, root: &Path) -> Result<Project> {
        Ok(Project::open_with(root, &self.options()).await?)
    }
}
