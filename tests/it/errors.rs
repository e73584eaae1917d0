//! Bad configuration and stopped data: clear messages and the documented exit codes.

use crate::harness::TestProject;

#[test]
fn malformed_contract_names_file_line_and_column() {
    let p = TestProject::new();
    let path = p.path("contracts/attendance.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "    physicalType: table\n",
        "    physicalType: table\n    colour: blue\n",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let r = p.run(&["promote", "attendance"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("contracts/attendance.yaml:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("unknown field `colour`"), "{}", r.stderr);
    let line_col = regex::Regex::new(r"attendance\.yaml:\d+:\d+: schema\[0\]").unwrap();
    assert!(line_col.is_match(&r.stderr), "{}", r.stderr);
}

#[test]
fn malformed_rules_and_pipeline_name_file_line_and_column() {
    let p = TestProject::new();
    let rules = p.path("quality_rules/grades.yaml");
    let text = std::fs::read_to_string(&rules).unwrap().replacen(
        "severity: quarantine",
        "severity: loud",
        1,
    );
    std::fs::write(&rules, text).unwrap();
    let r = p.run(&["promote", "grades"]);
    assert_eq!(r.code, 2);
    assert!(
        regex::Regex::new(r"quality_rules/grades\.yaml:\d+:\d+: .*unknown variant `loud`")
            .unwrap()
            .is_match(&r.stderr),
        "{}",
        r.stderr
    );

    let pipe = p.path("pipelines/courses.yaml");
    let text = std::fs::read_to_string(&pipe)
        .unwrap()
        .replacen("format: csv", "format: xml", 1);
    std::fs::write(&pipe, text).unwrap();
    let r = p.run(&["promote", "courses"]);
    assert_eq!(r.code, 2);
    assert!(
        regex::Regex::new(r"pipelines/courses\.yaml:6:\d+: ")
            .unwrap()
            .is_match(&r.stderr),
        "{}",
        r.stderr
    );
}

#[test]
fn fail_rule_stops_and_commits_nothing() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance", "--to", "raw"]);
    // Raw-stage rule results are already recorded; the stopped step must add none.
    let results = p.version("_ops", "quality_results");
    assert!(results.is_some());
    let rules = p.path("quality_rules/attendance.yaml");
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str("  - id: attendance.never_late\n    description: Test rule that fails on any late student.\n    check: {accepted_values: {column: status, values: [present, absent, excused]}}\n    severity: fail\n");
    std::fs::write(&rules, text).unwrap();
    let r = p.run(&["promote", "attendance"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("attendance.never_late"), "{}", r.stderr);
    assert!(
        r.stderr.contains(" in attendance_"),
        "names the file: {}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was committed"), "{}", r.stderr);
    assert_eq!(p.version("trusted", "attendance"), None);
    assert_eq!(p.version("trusted", "attendance_quarantine"), None);
    assert_eq!(p.version("_ops", "quality_results"), results);
}

#[test]
fn unknown_dataset_and_missing_file_are_usage_errors() {
    let p = TestProject::new();
    let r = p.run(&["land", "../etc", "x.csv"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown dataset `../etc`"),
        "{}",
        r.stderr
    );
    let r = p.run(&["land", "attendance", "/no/such/file.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/no/such/file.csv"), "{}", r.stderr);
}

#[test]
fn hostile_and_empty_files_are_handled() {
    let p = TestProject::new();
    let weird = p.path("..;rm -rf ~;attendance.csv");
    std::fs::write(&weird, "").unwrap();
    p.ok(&["land", "attendance", weird.to_str().unwrap()]);
    // A file without data rows is held (exit 1, nothing written) until accepted.
    let held = p.run(&["promote", "attendance", "--to", "raw"]);
    assert_eq!(held.code, 1, "{}\n{}", held.stdout, held.stderr);
    assert!(held.stdout.contains("no data rows"), "{}", held.stdout);
    let r = p.ok(&["promote", "attendance", "--to", "raw", "--accept-held"]);
    assert!(r.stdout.contains("landing rows        0"), "{}", r.stdout);
    let again = p.ok(&["promote", "attendance", "--to", "raw"]);
    assert!(
        again.stdout.contains("Nothing to promote"),
        "{}",
        again.stdout
    );
    // The landing copy is content-addressed: the hostile name never becomes a path.
    let landed: Vec<_> = std::fs::read_dir(p.path("lake/landing/attendance"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(landed.iter().all(|n| !n.contains("rm")), "{landed:?}");
}

#[test]
fn header_only_export_after_a_load_promotes_cleanly() {
    // Regression: an empty batch made the trusted MERGE fail with "No field named s.record_id".
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance"]);
    let before = p.rows("trusted", "attendance");
    let empty = p.path("attendance_empty.csv");
    std::fs::write(&empty, "record_id,student_id,student_name,student_email,course_id,section,session_date,status,minutes_attended,recorded_by,recorded_at\n").unwrap();
    p.ok(&["land", "attendance", empty.to_str().unwrap()]);
    // Held by default (no data rows); accepted, it flows through every step.
    assert_eq!(p.run(&["promote", "attendance", "--to", "trusted"]).code, 1);
    let r = p.ok(&["promote", "attendance", "--to", "trusted", "--accept-held"]);
    assert!(
        r.stdout
            .contains("raw rows        0 = new in trusted        0"),
        "{}",
        r.stdout
    );
    assert_eq!(p.rows("trusted", "attendance"), before);
    // Through to curated: an empty batch touches no course, replaces nothing, and is recorded
    // (a rerun has nothing left to do).
    let curated = p.rows("curated", "student_course_attendance");
    p.ok(&["promote", "attendance"]);
    assert_eq!(p.rows("curated", "student_course_attendance"), curated);
    let again = p.ok(&["promote", "attendance"]);
    assert!(
        again.stdout.contains("Nothing to promote"),
        "{}",
        again.stdout
    );
}

/// An unreadable `landed_at` in a landing manifest stops the raw step with an error naming the
/// file; it is never read as epoch 0 (which would make the rows eligible for purge at once).
#[test]
fn unparsable_landed_at_is_an_error_naming_the_file() {
    let p = TestProject::new();
    let inbox = p.generate(5, 3, 0.0);
    p.ok(&["land", "courses", inbox.to_str().unwrap()]);
    let dir = p.path("lake/landing/courses");
    let manifest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.to_string_lossy().ends_with(".meta.json"))
        .expect("a landing manifest");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["landed_at"] = serde_json::json!("yesterday-ish");
    std::fs::write(&manifest, serde_json::to_string(&meta).unwrap()).unwrap();
    let r = p.run(&["promote", "courses"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("landing/courses/"), "{}", r.stderr);
    assert!(r.stderr.contains("yesterday-ish"), "{}", r.stderr);
    assert_eq!(p.rows("raw", "courses"), 0);
}
