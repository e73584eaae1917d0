//! `medallion init`: writes a new project from the files shipped inside the binary.

use std::path::Path;

use super::ConfigError;

/// Datasets shipped with the product, in dependency order (reference data first).
pub const SHIPPED_DATASETS: &[&str] =
    &["courses", "students", "attendance", "grades", "engagement"];

const FILES: &[(&str, &str)] = &[
    (
        "medallion.yaml",
        include_str!("../../templates/medallion.yaml"),
    ),
    (".gitignore", "lake/\n.medallion/\nlanding/\n"),
    (
        "contracts/attendance.yaml",
        include_str!("../../contracts/attendance.yaml"),
    ),
    (
        "contracts/grades.yaml",
        include_str!("../../contracts/grades.yaml"),
    ),
    (
        "contracts/students.yaml",
        include_str!("../../contracts/students.yaml"),
    ),
    (
        "contracts/courses.yaml",
        include_str!("../../contracts/courses.yaml"),
    ),
    (
        "contracts/engagement.yaml",
        include_str!("../../contracts/engagement.yaml"),
    ),
    (
        "quality_rules/attendance.yaml",
        include_str!("../../quality_rules/attendance.yaml"),
    ),
    (
        "quality_rules/grades.yaml",
        include_str!("../../quality_rules/grades.yaml"),
    ),
    (
        "quality_rules/students.yaml",
        include_str!("../../quality_rules/students.yaml"),
    ),
    (
        "quality_rules/courses.yaml",
        include_str!("../../quality_rules/courses.yaml"),
    ),
    (
        "quality_rules/engagement.yaml",
        include_str!("../../quality_rules/engagement.yaml"),
    ),
    (
        "quality_rules/at_risk_students.yaml",
        include_str!("../../quality_rules/at_risk_students.yaml"),
    ),
    (
        "quality_rules/course_summary.yaml",
        include_str!("../../quality_rules/course_summary.yaml"),
    ),
    (
        "pipelines/alerts.yaml",
        include_str!("../../pipelines/alerts.yaml"),
    ),
    (
        "pipelines/attendance.yaml",
        include_str!("../../pipelines/attendance.yaml"),
    ),
    (
        "pipelines/grades.yaml",
        include_str!("../../pipelines/grades.yaml"),
    ),
    (
        "pipelines/students.yaml",
        include_str!("../../pipelines/students.yaml"),
    ),
    (
        "pipelines/courses.yaml",
        include_str!("../../pipelines/courses.yaml"),
    ),
    (
        "pipelines/engagement.yaml",
        include_str!("../../pipelines/engagement.yaml"),
    ),
    (
        "pipelines/curated/products.yaml",
        include_str!("../../pipelines/curated/products.yaml"),
    ),
    (
        "catalog/queries/at_risk_by_course.sql",
        include_str!("../../catalog/queries/at_risk_by_course.sql"),
    ),
    (
        "catalog/queries/grade_distribution.sql",
        include_str!("../../catalog/queries/grade_distribution.sql"),
    ),
    (
        "catalog/queries/attendance_trend.sql",
        include_str!("../../catalog/queries/attendance_trend.sql"),
    ),
    (
        "catalog/queries/attendance_vs_grades.sql",
        include_str!("../../catalog/queries/attendance_vs_grades.sql"),
    ),
    (
        "catalog/queries/class_statistics.sql",
        include_str!("../../catalog/queries/class_statistics.sql"),
    ),
    (
        "catalog/alarms.yaml",
        include_str!("../../catalog/alarms.yaml"),
    ),
    (
        "catalog/prices.yaml",
        include_str!("../../catalog/prices.yaml"),
    ),
    (
        "catalog/catalog.yaml",
        include_str!("../../catalog/catalog.yaml"),
    ),
    (
        "dashboards/README.md",
        include_str!("../../dashboards/README.md"),
    ),
    (
        "dashboards/attendance.yaml",
        include_str!("../../dashboards/attendance.yaml"),
    ),
    (
        "dashboards/performance.yaml",
        include_str!("../../dashboards/performance.yaml"),
    ),
    (
        "dashboards/at_risk.yaml",
        include_str!("../../dashboards/at_risk.yaml"),
    ),
    (
        "dashboards/data_quality.yaml",
        include_str!("../../dashboards/data_quality.yaml"),
    ),
];

/// The project templates `medallion init --template` knows.
pub const TEMPLATES: &[&str] = &["school", "oulad"];

/// The curated settings of an OULAD project: the shipped ones with OULAD's pass mark (40).
pub const OULAD_PRODUCTS: &str = include_str!("../../templates/oulad/products.yaml");

/// The files an OULAD project has instead of the shipped ones: OULAD landed as it is and mapped
/// by configuration (`source.map` in the pipelines), its own courses and students contracts,
/// and rules for its quirks.
pub const OULAD_FILES: &[(&str, &str)] = &[
    ("pipelines/curated/products.yaml", OULAD_PRODUCTS),
    (
        "pipelines/courses.yaml",
        include_str!("../../templates/oulad/pipelines/courses.yaml"),
    ),
    (
        "pipelines/students.yaml",
        include_str!("../../templates/oulad/pipelines/students.yaml"),
    ),
    (
        "pipelines/grades.yaml",
        include_str!("../../templates/oulad/pipelines/grades.yaml"),
    ),
    (
        "pipelines/engagement.yaml",
        include_str!("../../templates/oulad/pipelines/engagement.yaml"),
    ),
    (
        "contracts/courses.yaml",
        include_str!("../../templates/oulad/contracts/courses.yaml"),
    ),
    (
        "contracts/students.yaml",
        include_str!("../../templates/oulad/contracts/students.yaml"),
    ),
    (
        "quality_rules/courses.yaml",
        include_str!("../../templates/oulad/quality_rules/courses.yaml"),
    ),
    (
        "quality_rules/students.yaml",
        include_str!("../../templates/oulad/quality_rules/students.yaml"),
    ),
    (
        "quality_rules/grades.yaml",
        include_str!("../../templates/oulad/quality_rules/grades.yaml"),
    ),
    (
        "quality_rules/engagement.yaml",
        include_str!("../../templates/oulad/quality_rules/engagement.yaml"),
    ),
];

/// Writes the shipped project files into `dir`, never overwriting an existing file.
/// Returns the files written.
///
/// # Errors
/// [`ConfigError::Io`] naming the path that could not be written.
pub fn scaffold(dir: &Path) -> Result<Vec<String>, ConfigError> {
    scaffold_template(dir, "school")
}

/// [`scaffold`] for a template of [`TEMPLATES`]: `school` (the default) or `oulad` (the Open
/// University Learning Analytics Dataset landed as it is: [`OULAD_FILES`]).
///
/// # Errors
/// [`ConfigError::Io`] naming the path that could not be written.
pub fn scaffold_template(dir: &Path, template: &str) -> Result<Vec<String>, ConfigError> {
    let mut written = Vec::new();
    for (rel, text) in FILES {
        let text = match template {
            "oulad" => OULAD_FILES
                .iter()
                .find(|(r, _)| r == rel)
                .map_or(*text, |(_, t)| *t),
            _ => *text,
        };
        let path = dir.join(rel);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ConfigError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        written.push((*rel).to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_project_is_the_shipped_files_and_oulad_only_replaces_its_own() {
        let school = tempfile::tempdir().unwrap();
        let oulad = tempfile::tempdir().unwrap();
        let a = scaffold(school.path()).unwrap();
        let b = scaffold_template(oulad.path(), "oulad").unwrap();
        assert_eq!(a, b, "both templates write the same files");
        for (rel, text) in FILES {
            let s = std::fs::read_to_string(school.path().join(rel)).unwrap();
            assert_eq!(&s, text, "{rel}: the default project is unchanged");
            let o = std::fs::read_to_string(oulad.path().join(rel)).unwrap();
            match OULAD_FILES.iter().find(|(r, _)| r == rel) {
                Some((_, t)) => assert_eq!(&o, t, "{rel}"),
                None => assert_eq!(&o, text, "{rel}"),
            }
        }
        // No shipped pipeline maps; every OULAD one does, and fits its contract.
        for d in SHIPPED_DATASETS {
            let p =
                crate::pipeline::Pipeline::load(&school.path().join(format!("pipelines/{d}.yaml")))
                    .unwrap();
            assert!(p.mapping.is_none(), "{d}");
        }
        for d in ["courses", "students", "grades", "engagement"] {
            let p =
                crate::pipeline::Pipeline::load(&oulad.path().join(format!("pipelines/{d}.yaml")))
                    .unwrap();
            let c =
                crate::contract::load(&oulad.path().join(format!("contracts/{d}.yaml"))).unwrap();
            let columns: Vec<String> = c.source.iter().map(|s| s.name.clone()).collect();
            let spec = p.mapping.as_ref().unwrap_or_else(|| panic!("{d} maps"));
            assert_eq!(
                crate::stage::mapping::check_targets(spec, &columns),
                Vec::<String>::new(),
                "{d}"
            );
        }
    }
}
