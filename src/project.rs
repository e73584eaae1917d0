//! Wiring: a project folder's configuration turned into backends and datasets.
//! The one place that maps `medallion.yaml`'s `backend:` to each capability's configuration;
//! each capability's `build` factory makes its backend from that.
//!
//! Invariants: reads no environment variable — what a run overrides (`now`, the key ring) comes
//! in [`ProjectOptions`]; one [`Project`] has one clock, shared by every backend that reads time.

use std::path::Path;
use std::sync::Arc;

use crate::catalog::CatalogConfig;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::{Backend, ConfigError, ProjectConfig};
use crate::contract::{self, ContractError};
use crate::crypto::KeysConfig;
use crate::lake::Lake;
use crate::metrics::{MetricsConfig, NotifierConfig};
use crate::pipeline::{self, Pipeline, PipelineError};
use crate::rules::{DatasetRules, RulesError};
use crate::stage::Dataset;
use crate::storage::{LocalTableStore, StorageError, StoreConfig};

/// Errors opening a project or one of its datasets.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// medallion.yaml.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A contract.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// A rules file.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A pipeline file.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The lake folder.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A dataset without a pipeline, or a name that cannot be a dataset.
    #[error("unknown dataset `{name}`: known datasets are {known} (each needs pipelines/{name}.yaml and contracts/{name}.yaml)")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The datasets that exist.
        known: String,
    },
    /// The AWS backend could not be reached or is not bootstrapped.
    #[error("aws: {0}")]
    Aws(String),
    /// The alert rules.
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertsError),
    /// Datasets' dependencies are inconsistent.
    #[error("pipelines: {0}")]
    Dependencies(String),
}

/// An opened project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Resolved configuration.
    pub config: ProjectConfig,
    /// Backends.
    pub lake: Lake,
}

/// How one run opens a project, over what `medallion.yaml` says (the caller resolves these
/// from its environment and flags; the library reads no environment variable).
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    /// Run as of this instant (RFC 3339; `MEDALLION_NOW`): "in the future" rules, freshness and
    /// retention cutoffs are measured from it. `None`: the system clock.
    pub now: Option<String>,
    /// The key ring to use instead of the configured one (`MEDALLION_KEYRING`).
    pub keyring: Option<std::path::PathBuf>,
}

/// What `medallion rules check` found: one line per valid dataset and product, and every
/// problem.
#[derive(Debug, Clone, Default)]
pub struct ProjectCheck {
    /// `ok  <name>: ...` lines.
    pub ok: Vec<String>,
    /// Every problem found (invalid YAML, rules over unknown columns, stray rules files).
    pub problems: Vec<String>,
}

/// The configuration of each backend of a project, from `medallion.yaml`'s `backend:`; each
/// capability's `build` makes the backend from its part.
#[derive(Debug)]
struct BackendConfigs {
    store: StoreConfig,
    catalog: CatalogConfig,
    metrics: MetricsConfig,
    notifier: NotifierConfig,
    keys: KeysConfig,
}

impl BackendConfigs {
    /// Everything in the lake folder (the catalog and the logs under it), the key ring where
    /// the configuration says.
    fn local(config: &ProjectConfig, clock: &Arc<dyn Clock>) -> Result<Self, ProjectError> {
        let root = LocalTableStore::resolve(&config.lake)?;
        Ok(Self {
            catalog: CatalogConfig::File {
                path: root.join("_catalog").join("catalog.json"),
            },
            metrics: MetricsConfig::Log {
                path: root.join("_metrics").join("metrics.jsonl"),
                namespace: "Medallion".into(),
                clock: clock.clone(),
            },
            notifier: NotifierConfig::Log {
                path: root.join("_metrics").join("alerts.jsonl"),
            },
            keys: KeysConfig::KeyRing {
                path: config.keyring.clone(),
                clock: clock.clone(),
            },
            store: StoreConfig::Local { root },
        })
    }

    /// S3, Glue, CloudWatch, SNS and KMS of the `aws:` section's account.
    #[cfg(feature = "aws")]
    async fn aws(config: &ProjectConfig, clock: &Arc<dyn Clock>) -> Result<Self, ProjectError> {
        let cfg = config.aws.as_ref().ok_or_else(|| ConfigError::Invalid {
            path: config.root.join(crate::config::CONFIG_FILE),
            message: "backend: aws needs an `aws:` section".into(),
        })?;
        let ctx = crate::aws::AwsContext::connect(cfg)
            .await
            .map_err(|e| ProjectError::Aws(e.to_string()))?;
        Ok(Self {
            catalog: CatalogConfig::Glue {
                aws: Box::new(ctx.aws.clone()),
                owner: crate::catalog::OWNER.to_string(),
            },
            metrics: MetricsConfig::CloudWatch {
                aws: Box::new(ctx.aws.clone()),
                clock: clock.clone(),
            },
            notifier: NotifierConfig::Sns(Box::new(ctx.aws.clone())),
            store: StoreConfig::S3(Box::new(ctx.clone())),
            keys: KeysConfig::Kms(Box::new(ctx)),
        })
    }

    #[cfg(not(feature = "aws"))]
    async fn aws(config: &ProjectConfig, _clock: &Arc<dyn Clock>) -> Result<Self, ProjectError> {
        Err(ConfigError::Invalid {
            path: config.root.join(crate::config::CONFIG_FILE),
            message: "this medallion was built without the `aws` feature".into(),
        }
        .into())
    }
}

impl Project {
    /// Opens the project at `root` with the system clock and the configured key ring.
    ///
    /// # Errors
    /// Configuration or storage errors.
    pub async fn open(root: &Path) -> Result<Self, ProjectError> {
        Self::open_with(root, &ProjectOptions::default()).await
    }

    /// Opens the project at `root` as `options` say.
    ///
    /// # Errors
    /// Configuration (an unparsable `now` included) or storage errors.
    pub async fn open_with(root: &Path, options: &ProjectOptions) -> Result<Self, ProjectError> {
        let clock: Arc<dyn Clock> = match &options.now {
            Some(t) => {
                let at =
                    chrono::DateTime::parse_from_rfc3339(t).map_err(|e| ConfigError::Invalid {
                        path: root.join(crate::config::CONFIG_FILE),
                        message: format!("MEDALLION_NOW `{t}` is not an RFC 3339 instant: {e}"),
                    })?;
                Arc::new(FixedClock(at.with_timezone(&chrono::Utc)))
            }
            None => Arc::new(SystemClock),
        };
        let mut config = ProjectConfig::load(root)?;
        if let Some(k) = &options.keyring {
            config.keyring = k.clone();
        }
        Self::open_config(config, clock).await
    }

    /// Opens the project at `root` with `clock`.
    ///
    /// # Errors
    /// Configuration or storage errors.
    pub async fn open_with_clock(root: &Path, clock: Arc<dyn Clock>) -> Result<Self, ProjectError> {
        Self::open_config(ProjectConfig::load(root)?, clock).await
    }

    async fn open_config(
        config: ProjectConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProjectError> {
        // Every Delta request from here on is counted for the cost metrics.
        crate::storage::counting::install();
        let prices_path = config.catalog.join("prices.yaml");
        let prices = if prices_path.is_file() {
            Some(Arc::new(
                crate::metrics::cost::Prices::load(&prices_path).map_err(ConfigError::from)?,
            ))
        } else {
            None
        };
        let backends = match config.backend {
            Backend::Local => BackendConfigs::local(&config, &clock)?,
            Backend::Aws => BackendConfigs::aws(&config, &clock).await?,
        };
        let lake = Lake {
            store: crate::storage::build(&backends.store)?,
            catalog: crate::catalog::build(&backends.catalog),
            metrics: crate::metrics::build(&backends.metrics),
            notifier: crate::metrics::notify::build(&backends.notifier),
            keys: crate::crypto::build(&backends.keys),
            clock,
            prices,
            only: None,
        };
        Ok(Self { config, lake })
    }

    /// Checks every contract, rules file and pipeline of the project without touching the lake:
    /// each dataset, each curated product's rules against the product's columns, and rules
    /// files that name no dataset or product.
    ///
    /// # Errors
    /// A product that cannot be built from its contracts (polars).
    pub fn check(&self) -> Result<ProjectCheck, crate::stage::StepError> {
        let mut c = ProjectCheck::default();
        let datasets = self.datasets().unwrap_or_else(|e| {
            c.problems.push(e.to_string());
            Vec::new()
        });
        for d in &datasets {
            match self.dataset(d) {
                Ok(ds) => c.ok.push(format!(
                    "ok  {d}: contract v{}, {} raw rules, {} trusted rules ({} from the contract)",
                    ds.contract.version,
                    ds.raw_rules.rules.len(),
                    ds.rules.rules.len(),
                    ds.rules
                        .rules
                        .iter()
                        .filter(|r| r.id.starts_with("contract."))
                        .count()
                )),
                Err(e) => c.problems.push(e.to_string()),
            }
        }
        match self.curated() {
            Ok(cfg) => {
                let contract = |d: &str| self.dataset(d).ok().map(|ds| ds.contract);
                for product in crate::curated::PRODUCTS {
                    let path = self.config.quality_rules.join(format!("{product}.yaml"));
                    if !path.exists() {
                        continue;
                    }
                    let Some(columns) =
                        crate::curated::rules::product_columns_in(product, &cfg, &contract)
                    else {
                        continue;
                    };
                    match crate::rules::RuleSet::load_product(&path, product, &columns?) {
                        Ok(rs) => {
                            c.ok.push(format!("ok  {product}: {} curated rules", rs.rules.len()))
                        }
                        Err(e) => c.problems.push(e.to_string()),
                    }
                }
            }
            Err(e) => c.problems.push(e.to_string()),
        }
        // A rules file nobody reads is a mistake worth naming.
        if let Ok(entries) = std::fs::read_dir(&self.config.quality_rules) {
            for e in entries.flatten() {
                let path = e.path();
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                let yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
                if yaml
                    && !datasets.iter().any(|d| d == stem)
                    && !crate::curated::PRODUCTS.contains(&stem)
                {
                    c.problems.push(format!(
                        "{}: no dataset or curated product is named `{stem}` (datasets: {}; products: {})",
                        path.display(),
                        datasets.join(", "),
                        crate::curated::PRODUCTS.join(", ")
                    ));
                }
            }
        }
        Ok(c)
    }

    /// Dataset names that have a pipeline, in dependency order.
    ///
    /// # Errors
    /// Unreadable or invalid pipelines, or inconsistent dependencies.
    pub fn datasets(&self) -> Result<Vec<String>, ProjectError> {
        dataset_order(&self.config)
    }

    /// The curated products' settings (`pipelines/curated/products.yaml`).
    ///
    /// # Errors
    /// YAML errors with file:line:column.
    pub fn curated(&self) -> Result<crate::curated::CuratedConfig, ProjectError> {
        let path = self.config.pipelines.join("curated").join("products.yaml");
        let mut cfg = crate::curated::CuratedConfig::load(&path).map_err(ConfigError::from)?;
        cfg.rules_dir = Some(self.config.quality_rules.clone());
        cfg.alerts = self.alerts()?;
        Ok(cfg)
    }

    /// The alert rules (`pipelines/alerts.yaml`), or `None` when the project has none.
    ///
    /// # Errors
    /// YAML errors with file:line:column, or invalid values.
    pub fn alerts(&self) -> Result<Option<crate::alerts::AlertsConfig>, ProjectError> {
        let path = self.config.pipelines.join(crate::alerts::FILE);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(crate::alerts::AlertsConfig::load(&path)?))
    }

    /// Loads a dataset's contract, rules and pipeline.
    ///
    /// # Errors
    /// [`ProjectError::UnknownDataset`] for names without a pipeline; YAML errors otherwise.
    pub fn dataset(&self, name: &str) -> Result<Dataset, ProjectError> {
        let pipeline_path = self.config.pipeline_path(name);
        if !crate::config::is_valid_name(name) || !pipeline_path.is_file() || name == "alerts" {
            let known = self.datasets().map(|d| d.join(", ")).unwrap_or_default();
            return Err(ProjectError::UnknownDataset {
                name: name.to_string(),
                known,
            });
        }
        let pipeline = Pipeline::load(&pipeline_path)?;
        let contract = contract::load(&self.config.contract_path(name))?;
        if let Some(spec) = &pipeline.mapping {
            let columns: Vec<String> = contract.source.iter().map(|c| c.name.clone()).collect();
            let problems = crate::stage::mapping::check_targets(spec, &columns);
            if !problems.is_empty() {
                return Err(crate::pipeline::PipelineError::Invalid {
                    path: pipeline_path.display().to_string(),
                    message: problems.join("; "),
                }
                .into());
            }
        }
        let rules = DatasetRules::load(&self.config.rules_path(name), &contract)?;
        Ok(Dataset {
            contract,
            rules: rules.trusted,
            raw_rules: rules.raw,
            pipeline,
        })
    }
}

/// Dataset names that have a pipeline, in dependency order, from the configuration alone (no
/// backend opened: `medallion aws bootstrap` needs them before the lake exists).
///
/// # Errors
/// Unreadable or invalid pipelines, or inconsistent dependencies.
pub fn dataset_order(config: &ProjectConfig) -> Result<Vec<String>, ProjectError> {
    let pipelines = pipelines_of(config)?;
    pipeline::dependency_order(&pipelines).map_err(ProjectError::Dependencies)
}

fn pipelines_of(config: &ProjectConfig) -> Result<Vec<Pipeline>, ProjectError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&config.pipelines) {
        Ok(e) => e,
        Err(_) => return Ok(out),
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        // alerts.yaml holds the alert rules, not a dataset's pipeline.
        let alerts = p.file_stem().is_some_and(|s| s == "alerts");
        if p.extension().is_some_and(|e| e == "yaml" || e == "yml") && !alerts {
            out.push(Pipeline::load(&p)?);
        }
    }
    Ok(out)
}
