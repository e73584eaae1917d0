//! insta snapshots of what people read: the promotion text, the quality report text and a few
//! error messages, on a small fixed export at a pinned instant. What changes from run to run
//! (the project's temporary folder, instants, durations, pseudonyms under a fresh key,
//! content hashes in batch ids) is redacted, so the snapshots are stable.

use regex::Regex;

use crate::harness::{Run, TestProject};

const NOW: (&str, &str) = ("MEDALLION_NOW", "2026-03-01T08:30:00Z");

/// A courses export with one of each outcome: promoted rows, a correction of a key, a ragged
/// line (rejected), a course ending before it starts (quarantined), credits out of range.
const COURSES: &str = "\
course_id,title,term,credits,instructor_email,start_date,end_date
C1,Algebra,2026-FALL,4,ada@school.edu,2026-09-01,2026-12-15
C2,Biology,2026-FALL,3,bob@school.edu,2026-09-01,2026-12-15
C2,Biology,2026-FALL,3,bob@school.edu,2026-09-01,2026-12-15
C3,Chemistry,2026-FALL,3
C4,Drama,2026-FALL,2,dee@school.edu,2026-09-01,2026-08-01
C5,Economics,2026-FALL,40,eve@school.edu,2026-09-01,2026-12-15
C6,French,2026-SPRING,3,fay@school.edu,2026-01-10,2026-05-01
";

/// `text` with the run-dependent parts replaced by placeholders.
fn redact(text: &str, p: &TestProject) -> String {
    let root = p.root.display().to_string();
    let canonical = p
        .root
        .canonicalize()
        .map(|c| c.display().to_string())
        .unwrap_or_else(|_| root.clone());
    let mut out = text
        .replace(&canonical, "[project]")
        .replace(&root, "[project]");
    for (pattern, with) in [
        (r"p_[0-9a-f]{40}", "p_[pseudonym]"),
        (r"\b(b\d{6})-[0-9a-f]{12}\b", "$1-[sha]"),
        (r"\b[0-9a-f]{64}\b", "[sha256]"),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
            "[instant]",
        ),
        (r"\b\d+(\.\d+)?\s?(ms|s)\b", "[duration]"),
    ] {
        out = Regex::new(pattern)
            .expect("a valid pattern")
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// Exit code, stdout and stderr of a run, redacted.
fn shown(r: &Run, p: &TestProject) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        r.code,
        redact(&r.stdout, p),
        redact(&r.stderr, p)
    )
}

/// A project with the fixed export landed and promoted to trusted; the promotion's output.
fn promoted() -> (TestProject, Run) {
    let p = TestProject::new();
    let file = p.path("courses_2026.csv");
    std::fs::write(&file, COURSES).expect("write the export");
    let land = p.run_env(&["land", "courses", &file.display().to_string()], &[NOW]);
    assert_eq!(land.code, 0, "{}", land.stderr);
    let promote = p.run_env(&["promote", "courses", "--to", "trusted"], &[NOW]);
    (p, promote)
}

#[test]
fn promotion_and_quality_report_text() {
    let (p, promote) = promoted();
    insta::assert_snapshot!("promotion_text", shown(&promote, &p));
    let report = p.run_env(&["report", "courses"], &[NOW]);
    insta::assert_snapshot!("quality_report_text", shown(&report, &p));
}

#[test]
fn error_messages() {
    let p = TestProject::new();
    let unknown = p.run_env(&["promote", "nosuch"], &[NOW]);
    insta::assert_snapshot!("error_unknown_dataset", shown(&unknown, &p));

    let bad_now = p.run_env(&["status"], &[("MEDALLION_NOW", "yesterday")]);
    insta::assert_snapshot!("error_bad_now", shown(&bad_now, &p));

    let rules = p.path("quality_rules/courses.yaml");
    let shipped = std::fs::read_to_string(&rules).expect("the shipped rules");
    let unknown_column = shipped
        .replacen("column: title", "column: titel", 1)
        .replacen("right: end_date", "right: ends", 1);
    std::fs::write(&rules, unknown_column).expect("write the rules");
    let invalid = p.run_env(&["rules", "check"], &[NOW]);
    insta::assert_snapshot!("error_rules_unknown_columns", shown(&invalid, &p));

    let bad_yaml = shipped.replacen("severity: warn", "severity: loud", 1);
    std::fs::write(&rules, bad_yaml).expect("write the rules");
    let malformed = p.run_env(&["promote", "courses"], &[NOW]);
    insta::assert_snapshot!("error_rules_malformed", shown(&malformed, &p));
}
