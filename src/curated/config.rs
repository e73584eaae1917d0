//! The products file `pipelines/curated/products.yaml`: the small-cell minimum, the read chunk
//! size, and the at-risk model's pass marks, level cut-offs and indicators.
//!
//! Invariants: unknown keys are refused, located by line and column; what was added after
//! projects were made has a default (a newer indicator: weight 0, off; the pass mark: 60; the
//! chunk: 2^20 rows), so an older file still loads.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::yaml::{self, YamlError};

/// One at-risk indicator's settings.
///
/// An indicator adds `weight × severity` points to the risk score, where severity is in 0..1
/// (what it measures is documented per indicator in [`Indicators`]), and *fires* (its flag,
/// reason and action appear) when its threshold is crossed. An indicator with weight 0 still
/// shows its flag column but adds no points and no reason.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    /// Threshold (meaning per indicator, see the YAML comments).
    pub threshold: f64,
    /// Points added to the risk score at full severity.
    pub weight: f64,
    /// For graded indicators, the value at which severity reaches 1 (missed assessments,
    /// days without activity); ignored by the others.
    #[serde(default)]
    pub full: Option<f64>,
    /// The reason in words; `{name}` placeholders are filled from the row.
    pub reason: String,
    /// The recommended action for the educator; placeholders as in `reason`.
    pub action: String,
}

/// The indicators (those added after a project was made default to weight 0, off, so an
/// older `products.yaml` still loads). "Percentile" is the student's mid-rank share in the course (the share of
/// the course's students below them, plus half of those equal), over students with a value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Indicators {
    /// Grade below the course's pass mark (severity 1). The grade is the weighted grade, or the
    /// unweighted mean when the graded assessments' weights sum to 0.
    pub low_grade: Indicator,
    /// Grade low for the course: severity `1 - grade percentile`; fires below `threshold`.
    #[serde(default = "no_indicator")]
    pub low_grade_for_course: Indicator,
    /// Grade trend below threshold (points per 30 days; severity 1).
    pub declining_trend: Indicator,
    /// Missed work: fires from `threshold` missing assessments; severity
    /// `min(missing, full) / full`.
    pub low_completion: Indicator,
    /// Absence rate at or above threshold (DESIGN's chronic absence; severity 1).
    pub chronic_absence: Indicator,
    /// Attendance low for the course: severity `1 - attendance percentile`; fires below
    /// `threshold`.
    #[serde(default = "no_indicator")]
    pub low_attendance_for_course: Indicator,
    /// Days since the student last attended or was active in the LMS (the fewer), each counted
    /// to the course's last session or day of activity: fires at `threshold` days; severity
    /// `min(days, full) / full`.
    #[serde(default = "no_indicator")]
    pub no_recent_activity: Indicator,
    /// The student's drop from earlier to recent attendance, minus the course's median drop, at
    /// or above threshold (severity 1): a break everyone takes does not fire it.
    pub falling_attendance: Indicator,
    /// Engagement score (0-100, relative to the course) below threshold; severity
    /// `(50 - score) / 50`, clipped to 0..1. Absent from older settings files: weight 0.
    #[serde(default = "no_indicator")]
    pub low_engagement_for_course: Indicator,
    /// Work handed in after its due date: fires from `threshold` late submissions; severity
    /// `min(late, full) / full`. Absent from older settings files: weight 0.
    #[serde(default = "no_indicator")]
    pub late_submissions: Indicator,
    /// Recent engagement low for the course: the percentile in the course of the student's
    /// clicks in the course's last 14 days of activity (0 clicks for a student of a course
    /// with activity data who has none); fires below `threshold`, severity `2 × (0.5 −
    /// percentile)`, clipped to 0..1. Absent from older settings files: weight 0.
    #[serde(default = "no_indicator")]
    pub low_recent_engagement_for_course: Indicator,
}

fn no_indicator() -> Indicator {
    Indicator {
        threshold: 0.0,
        weight: 0.0,
        full: None,
        reason: String::new(),
        action: String::new(),
    }
}

/// Risk score cut-offs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    /// Score at or above which the level is medium.
    pub medium: f64,
    /// Score at or above which the level is high.
    pub high: f64,
}

/// The pass mark (grade %) of each course.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PassMark {
    /// For courses not listed.
    pub default: f64,
    /// Per course id.
    #[serde(default)]
    pub courses: std::collections::BTreeMap<String, f64>,
}

fn default_chunk_rows() -> u64 {
    1 << 20
}

fn default_sort_memory_mb() -> u64 {
    (crate::curated::SORT_MEMORY >> 20) as u64
}

fn default_pass_mark() -> PassMark {
    PassMark {
        default: 60.0,
        courses: Default::default(),
    }
}

/// At-risk settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AtRiskConfig {
    /// Pass marks (an older `products.yaml` without them: 60 for every course).
    #[serde(default = "default_pass_mark")]
    pub pass_mark: PassMark,
    /// Level cut-offs.
    pub levels: Levels,
    /// Indicators.
    pub indicators: Indicators,
}

/// `pipelines/curated/products.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CuratedConfig {
    /// Aggregates over fewer students than this are suppressed.
    pub small_cell_min: u32,
    /// Trusted rows read at once: the touched courses are built in groups of about this many
    /// input rows (a course is never split), so memory does not grow with the lake.
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: u64,
    /// Memory (MiB) each trusted table's sort by course may hold before it spills sorted runs
    /// to temporary files: with the course group, what bounds a build's memory.
    #[serde(default = "default_sort_memory_mb")]
    pub sort_memory_mb: u64,
    /// At-risk settings.
    pub at_risk: AtRiskConfig,
    /// Folder of the products' rule files (`<product>.yaml`); set by the project.
    #[serde(skip)]
    pub rules_dir: Option<std::path::PathBuf>,
    /// The alert rules evaluated after every build (`pipelines/alerts.yaml`); set by the project.
    #[serde(skip)]
    pub alerts: Option<crate::alerts::AlertsConfig>,
}

impl CuratedConfig {
    /// [`Self::sort_memory_mb`] in bytes (at least 1 MiB).
    pub fn sort_memory(&self) -> usize {
        usize::try_from(self.sort_memory_mb.max(1))
            .unwrap_or(usize::MAX >> 20)
            .saturating_mul(1 << 20)
    }

    /// Loads the products file.
    ///
    /// # Errors
    /// YAML errors with file:line:column.
    pub fn load(path: &Path) -> Result<Self, YamlError> {
        yaml::load(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_products_file_from_before_the_course_relative_model_still_loads() {
        // Regression: a project made before the at-risk model gained its course-relative
        // indicators must keep promoting (the new indicators are off, the pass mark is 60).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/legacy/products_v1.yaml");
        let cfg = CuratedConfig::load(&path).expect("the old settings load");
        let i = &cfg.at_risk.indicators;
        assert_eq!(i.low_grade_for_course.weight, 0.0);
        assert_eq!(i.no_recent_activity.weight, 0.0);
        assert_eq!(i.late_submissions.weight, 0.0);
        assert_eq!(i.low_recent_engagement_for_course.weight, 0.0);
        assert_eq!(cfg.at_risk.pass_mark.default, 60.0);
        // Nor does it set the sorts' memory: the default.
        assert_eq!(cfg.sort_memory(), crate::curated::SORT_MEMORY);
    }

    #[test]
    fn the_sorts_memory_is_a_setting_in_mib() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/curated/products.yaml");
        let text = std::fs::read_to_string(&path).expect("the shipped settings");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("products.yaml");
        let set = |mb: &str| {
            let edited: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("sort_memory_mb:") {
                        format!("sort_memory_mb: {mb}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(&file, edited).expect("write");
            CuratedConfig::load(&file).expect("load").sort_memory()
        };
        assert_eq!(set("64"), 64 << 20);
        // Zero would leave the sort nothing to work with: at least 1 MiB.
        assert_eq!(set("0"), 1 << 20);
    }
}
