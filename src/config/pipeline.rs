//! `pipelines/<dataset>.yaml`: how a dataset moves through the lake (source format and
//! pattern, dependencies, holds, chunk sizes, mapping, curated products). Running the steps is
//! [`crate::pipeline`]'s; the steps read this configuration from here, so no arrow runs from
//! `stage` back up to `pipeline`.

use std::path::Path;

use serde::Deserialize;
use validator::Validate;

use crate::yaml::{self, YamlError};

/// Errors loading a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// YAML shape errors, located.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// Values out of bounds.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Every problem.
        message: String,
    },
}

/// Landing file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet (a hive partition's columns come from its folder names).
    Parquet,
}

impl SourceFormat {
    /// File extension used in landing.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Parquet => "parquet",
        }
    }
}

/// Where the dataset's files come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// File format.
    pub format: SourceFormat,
    /// Glob-like pattern (`*` only) of file names picked up from a folder.
    pub pattern: String,
    /// Further patterns (a hive-partitioned file is named `table/key=value/.../file`).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// How delivered columns become the contract's (see [`crate::stage::mapping`]); without
    /// it, columns are matched by name.
    #[serde(default)]
    pub map: Option<crate::stage::mapping::MappingConfig>,
}

/// landing→raw settings.
#[derive(Debug, Clone, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct RawStepConfig {
    /// Rows parsed per chunk.
    #[validate(range(min = 1, max = 10_000_000))]
    pub chunk_rows: usize,
}

/// raw→trusted settings.
#[derive(Debug, Clone, Copy, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct TrustedStepConfig {
    /// Rows judged per chunk: memory holds one chunk with its rule columns, not the batch.
    #[serde(default = "trusted_chunk_rows")]
    #[validate(range(min = 1, max = 10_000_000))]
    pub chunk_rows: usize,
}

fn trusted_chunk_rows() -> usize {
    262_144
}

impl Default for TrustedStepConfig {
    fn default() -> Self {
        Self {
            chunk_rows: trusted_chunk_rows(),
        }
    }
}

/// When a whole batch is held back instead of promoted: a file that is mostly bad is far more
/// likely a wrong export or a contract that does not fit the source than bad records.
#[derive(Debug, Clone, Copy, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct HoldConfig {
    /// Largest share (0..1) of a file's lines that may be rejects before the batch is held at raw.
    #[serde(default = "half")]
    #[validate(range(min = 0.0, max = 1.0))]
    pub max_reject_share: f64,
    /// Largest share (0..1) of a batch's raw rows that may be quarantined before the batch is
    /// held at trusted.
    #[serde(default = "half")]
    #[validate(range(min = 0.0, max = 1.0))]
    pub max_quarantine_share: f64,
}

fn half() -> f64 {
    0.5
}

impl Default for HoldConfig {
    fn default() -> Self {
        Self {
            max_reject_share: half(),
            max_quarantine_share: half(),
        }
    }
}

/// trusted→curated settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CuratedConfig {
    /// Curated products built from this dataset.
    #[serde(default)]
    pub products: Vec<String>,
}

/// A dataset's pipeline.
#[derive(Debug, Clone, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Dataset name (matches the contract).
    pub dataset: String,
    /// What the dataset is.
    #[validate(length(min = 1))]
    pub description: String,
    /// Source format and pattern.
    pub source: SourceConfig,
    /// Datasets promoted before this one by `--all`.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// landing→raw settings.
    #[validate(nested)]
    pub raw: RawStepConfig,
    /// raw→trusted settings (optional).
    #[serde(default)]
    #[validate(nested)]
    pub trusted: TrustedStepConfig,
    /// When a batch is held back (defaults: more than half rejected or quarantined).
    #[serde(default)]
    #[validate(nested)]
    pub hold: HoldConfig,
    /// Curated products.
    #[serde(default)]
    pub curated: CuratedConfig,
    /// `source.map`, validated at load.
    #[serde(skip)]
    pub mapping: Option<crate::stage::mapping::MappingSpec>,
}

impl Pipeline {
    /// Loads and validates a pipeline file.
    ///
    /// # Errors
    /// YAML errors with file:line:column, or out-of-range values.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let mut p: Pipeline = yaml::load(path)?;
        p.validate().map_err(|e| PipelineError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if let Some(m) = &p.source.map {
            let spec =
                crate::stage::mapping::validate(m).map_err(|problems| PipelineError::Invalid {
                    path: path.display().to_string(),
                    message: problems.join("\n"),
                })?;
            p.mapping = Some(spec);
        }
        Ok(p)
    }

    /// Whether a file name matches the source pattern or one of the further `patterns`
    /// (`*` matches any run of characters).
    pub fn matches(&self, file_name: &str) -> bool {
        std::iter::once(&self.source.pattern)
            .chain(&self.source.patterns)
            .any(|p| wildcard(p.as_bytes(), file_name.as_bytes()))
    }

    /// Whether a landed file is one of `source.map`'s lookup files (joined, not promoted).
    pub fn is_lookup(&self, file_name: &str) -> bool {
        self.source.map.as_ref().is_some_and(|m| {
            m.lookups
                .iter()
                .any(|l| wildcard(l.file.as_bytes(), file_name.as_bytes()))
        })
    }

    /// Whether `matches` or `is_lookup`: the file belongs to this dataset's landing.
    pub fn wants(&self, file_name: &str) -> bool {
        self.matches(file_name) || self.is_lookup(file_name)
    }
}

/// Whether `s` matches the pattern `p` (`*` matches any run of characters, `/` included).
pub fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Orders datasets so each comes after those it depends on (stable otherwise).
///
/// # Errors
/// A dependency cycle or an unknown dependency.
pub fn dependency_order(pipelines: &[Pipeline]) -> Result<Vec<String>, String> {
    let mut done: Vec<String> = Vec::new();
    let mut remaining: Vec<&Pipeline> = pipelines.iter().collect();
    for p in pipelines {
        for d in &p.depends_on {
            if !pipelines.iter().any(|q| &q.dataset == d) {
                return Err(format!(
                    "pipeline `{}` depends on unknown dataset `{d}`",
                    p.dataset
                ));
            }
        }
    }
    while !remaining.is_empty() {
        let before = remaining.len();
        remaining.retain(|p| {
            if p.depends_on.iter().all(|d| done.contains(d)) {
                done.push(p.dataset.clone());
                false
            } else {
                true
            }
        });
        if remaining.len() == before {
            let names: Vec<&str> = remaining.iter().map(|p| p.dataset.as_str()).collect();
            return Err(format!("dependency cycle among {}", names.join(", ")));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_pipelines_load_and_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let ps: Vec<Pipeline> = ["grades", "attendance", "students", "courses"]
            .iter()
            .map(|d| Pipeline::load(&dir.join(format!("{d}.yaml"))).unwrap())
            .collect();
        let order = dependency_order(&ps).unwrap();
        let pos = |d: &str| order.iter().position(|x| x == d).unwrap();
        assert!(pos("students") < pos("attendance"));
        assert!(pos("courses") < pos("grades"));
        assert!(ps[1].matches("attendance_2026-11-01.csv"));
        assert!(!ps[1].matches("grades.csv"));
    }

    #[test]
    fn chunk_rows_out_of_range_is_refused() {
        let text = "dataset: x\ndescription: d\nsource: {format: csv, pattern: '*'}\nraw: {chunk_rows: 0}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, text).unwrap();
        let err = Pipeline::load(&path).unwrap_err().to_string();
        assert!(err.contains("chunk_rows"), "{err}");
    }

    #[test]
    fn malformed_pipeline_names_line_and_column() {
        let text = "dataset: x\ndescription: d\nsource: {format: xml, pattern: '*'}\nraw: {chunk_rows: 5}\n";
        let err = yaml::parse::<Pipeline>(Path::new("p.yaml"), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().starts_with("p.yaml:3:"), "{err}");
    }
}
