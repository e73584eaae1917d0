//! Issue 12: raw→trusted judges a batch in bounded chunks, and a batch judged in many small
//! chunks gives exactly the tables, books and rule results of the same batch judged whole;
//! curated built a few courses at a time gives the products built from every course at once.

use polars::prelude::*;

use crate::harness::{export_of, TestProject};

/// A table's rows as sorted CSV, without the columns that differ between two lakes by
/// construction (when a file was landed or a row was recorded into the books).
fn table_csv(p: &TestProject, stage: &str, table: &str, drop: &[&str]) -> String {
    let Some(df) = p.read(stage, table, "SELECT * FROM t") else {
        return String::new();
    };
    let keep: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !drop.contains(&c.as_str()))
        .collect();
    let df = df.select(keep.clone()).unwrap();
    let mut df = df
        .sort(keep, SortMultipleOptions::default().with_nulls_last(true))
        .unwrap();
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).finish(&mut df).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Asserts two CSV texts are equal, showing only the lines that differ.
fn same_lines(a: &str, b: &str, what: &str) {
    let only_a: Vec<&str> = a.lines().filter(|l| !b.lines().any(|m| m == *l)).collect();
    let only_b: Vec<&str> = b.lines().filter(|l| !a.lines().any(|m| m == *l)).collect();
    assert!(
        a == b,
        "{what} differs\nfirst only: {only_a:#?}\nsecond only: {only_b:#?}"
    );
}

/// Two projects sharing one key ring (so their pseudonyms agree), and the folder holding it.
fn two_lakes() -> (tempfile::TempDir, TestProject, TestProject) {
    let shared = tempfile::tempdir().unwrap();
    let ring = shared.path().join("keyring.json");
    let (a, b) = (
        TestProject::with_keyring(&ring),
        TestProject::with_keyring(&ring),
    );
    (shared, a, b)
}

#[test]
fn a_batch_judged_in_small_chunks_gives_the_tables_of_the_whole_batch() {
    let (_shared, whole, chunked) = two_lakes();
    // Defects include repeated keys, corrections, repeated sessions (a `unique` rule) and
    // rows for quarantine, so every rule kind and the dedupe cross chunk borders.
    let inbox = whole.generate(30, 12, 0.06);
    // A second export into tables that exist: quarantine appends, corrections merge.
    let later = whole.generate_into("later", 30, 6, 0.06, 5, Some("2026-09-19"));
    for ds in ["attendance", "grades", "students", "engagement"] {
        chunked.set_trusted_chunk(ds, 37);
    }
    // Curated builds the touched courses a few at a time (about 50 trusted rows per group).
    let products = chunked.path("pipelines/curated/products.yaml");
    let text = std::fs::read_to_string(&products).unwrap();
    assert!(
        text.contains("\nchunk_rows: 1048576"),
        "the default is in the products file"
    );
    let text = text.replacen("\nchunk_rows: 1048576", "\nchunk_rows: 50", 1);
    std::fs::write(&products, text).unwrap();
    for p in [&whole, &chunked] {
        p.land_all(&inbox);
        let r = p.run_env(
            &["promote", "--all", "--to", "curated"],
            &[("MEDALLION_NOW", "2026-12-01T00:00:00Z")],
        );
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        for ds in ["attendance", "grades"] {
            p.ok(&["land", ds, later.to_str().unwrap()]);
        }
        // One clock for both lakes: freshness is measured from it.
        let r = p.run_env(
            &["promote", "--all", "--to", "curated"],
            &[("MEDALLION_NOW", "2026-12-01T00:00:00Z")],
        );
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    }
    let rows = whole.rows("raw", "attendance");
    assert!(rows > 37 * 5, "the batch spans many chunks: {rows} rows");
    let lineage = ["_ingested_at"];
    for ds in ["courses", "students", "attendance", "grades", "engagement"] {
        let (a, b) = (
            table_csv(&whole, "trusted", ds, &lineage),
            table_csv(&chunked, "trusted", ds, &lineage),
        );
        assert!(!a.is_empty(), "trusted.{ds} is empty");
        assert_eq!(a, b, "trusted.{ds} differs when judged in chunks");
        let q = format!("{ds}_quarantine");
        assert_eq!(
            table_csv(&whole, "trusted", &q, &lineage),
            table_csv(&chunked, "trusted", &q, &lineage),
            "trusted.{q} differs when judged in chunks"
        );
    }
    assert!(
        whole.rows("trusted", "attendance_quarantine") > 0,
        "the test data quarantines rows"
    );
    let books = ["recorded_at", "evaluated_at"];
    same_lines(
        &table_csv(&whole, "_ops", "promotions", &books),
        &table_csv(&chunked, "_ops", "promotions", &books),
        "the books",
    );
    let results = table_csv(&whole, "_ops", "quality_results", &books);
    assert!(
        results.contains("attendance.one_record_per_session"),
        "{results}"
    );
    same_lines(
        &results,
        &table_csv(&chunked, "_ops", "quality_results", &books),
        "rule results",
    );
    for t in crate::harness::PRODUCTS {
        assert_eq!(
            table_csv(&whole, "curated", t, &[]),
            table_csv(&chunked, "curated", t, &[]),
            "curated.{t} differs"
        );
    }
}

/// How many alert evaluations the metrics log records (each reports `AlertsOpen` per rule).
fn alert_evaluations(p: &TestProject) -> usize {
    std::fs::read_to_string(p.path("lake/_metrics/metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"name\":\"AlertsOpen\""))
        .count()
}

#[test]
fn a_no_op_promotion_does_not_evaluate_the_alerts_again() {
    let p = TestProject::new();
    // Three weeks: grades are due, so every rule has its input.
    let inbox = p.generate_into("inbox", 20, 21, 0.03, 11, None);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let built = alert_evaluations(&p);
    assert!(built > 0, "the build evaluated the alert rules");
    let again = p.ok(&["promote", "--all"]);
    assert!(
        again.stdout.contains("Nothing to promote"),
        "{}",
        again.stdout
    );
    assert_eq!(
        alert_evaluations(&p),
        built,
        "nothing the rules read changed: not evaluated again"
    );
    // An edited rule is evaluated on the next run, build or not.
    let path = p.path("pipelines/alerts.yaml");
    let rules = std::fs::read_to_string(&path).unwrap();
    assert!(rules.contains("sessions: 3"));
    std::fs::write(&path, rules.replacen("sessions: 3", "sessions: 2", 1)).unwrap();
    p.ok(&["promote", "--all"]);
    let edited = alert_evaluations(&p);
    assert!(edited > built, "an edited rule is evaluated again");
    // A new batch built into curated is evaluated too.
    let missed_before = alerts_of_rule(&p, "missed_assessments");
    let version = p.version("curated", "alerts");
    let later = p.generate_into("later", 20, 6, 0.0, 5, Some("2026-10-05"));
    let landed = p.ok(&["land", "attendance", later.to_str().unwrap()]);
    let built = p.run_env(
        &["promote", "--all"],
        &[("MEDALLION_LOG", "medallion=debug")],
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        alert_evaluations(&p) > edited,
        "a build is followed by an evaluation\n{}\n{}",
        landed.stdout,
        built.stdout
    );
    // Only attendance changed: the rule reading the grades' product is not evaluated again,
    // and its open alerts are neither read nor rewritten.
    let log = without_colours(&built.stderr);
    let evaluated = |rule: &str| {
        log.lines()
            .any(|l| l.contains("Alert rule evaluated.") && l.contains(&format!("rule={rule} ")))
    };
    assert!(
        evaluated("absent_in_a_row") && !evaluated("missed_assessments"),
        "{log}"
    );
    assert!(p.version("curated", "alerts") > version, "{log}");
    let (added, removed, predicate) = crate::watch::newest_commit_files(&p, "curated", "alerts");
    assert!(!predicate.contains("missed_assessments"), "{predicate}");
    assert!(
        !added
            .iter()
            .chain(&removed)
            .any(|f| f.contains("rule_id=missed_assessments")),
        "added {added:?}, removed {removed:?}"
    );
    assert_eq!(alerts_of_rule(&p, "missed_assessments"), missed_before);
}

/// `text` without its terminal colour codes.
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The alerts of one rule (`medallion alerts --format json`), by id.
fn alerts_of_rule(p: &TestProject, rule: &str) -> Vec<serde_json::Value> {
    let r = p.ok(&["alerts", "--format", "json"]);
    let all: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let mut out: Vec<serde_json::Value> =
        all.into_iter().filter(|a| a["rule_id"] == rule).collect();
    out.sort_by_key(|a| a["alert_id"].as_str().unwrap_or_default().to_string());
    out
}

/// The operation of each commit of a local table that records a txn, oldest first (from its
/// `_delta_log`): `WRITE` for an append, `MERGE` for a merge by key.
fn batch_operations(p: &TestProject, stage: &str, table: &str) -> Vec<String> {
    let log = p.path(&format!("lake/{stage}/{table}/_delta_log"));
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    let mut out = Vec::new();
    for c in commits {
        let text = std::fs::read_to_string(&c).unwrap();
        let actions: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if actions.iter().any(|a| a.get("txn").is_some()) {
            let op = actions
                .iter()
                .find_map(|a| a["commitInfo"]["operation"].as_str())
                .unwrap_or_default();
            out.push(op.to_string());
        }
    }
    out
}

#[test]
fn a_later_batch_of_new_keys_streams_as_an_append_and_gives_the_tables_of_a_merge() {
    let (shared, whole, chunked) = two_lakes();
    chunked.set_trusted_chunk("attendance", 37);
    // Repeated keys and corrections within each export; the later one holds new days (new
    // record ids); the re-delivery repeats the first export's keys (all but its last line).
    let first = whole.generate(30, 10, 0.06);
    let later = whole.generate_into("later", 30, 6, 0.06, 5, Some("2026-09-21"));
    let again = shared.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    // Bytes, not text: the generated defects include a line in another encoding.
    let bytes = std::fs::read(export_of(&first, "attendance")).unwrap();
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let cut = body.iter().rposition(|b| *b == b'\n').unwrap();
    std::fs::write(again.join("attendance_again.csv"), &bytes[..=cut]).unwrap();
    for p in [&whole, &chunked] {
        for ds in ["courses", "students"] {
            p.ok(&["land", ds, first.to_str().unwrap()]);
        }
        p.ok(&["promote", "courses", "students", "--to", "trusted"]);
        for inbox in [&first, &later, &again] {
            p.ok(&["land", "attendance", inbox.to_str().unwrap()]);
            p.ok(&["promote", "attendance", "--to", "trusted"]);
        }
    }
    assert!(
        whole.rows("raw", "attendance") > 37 * 20,
        "each batch spans many chunks"
    );
    // Judged whole, a batch into a table with rows merges; in chunks, the later batch's keys
    // are new to trusted, so its rows stream into an append; the re-delivery's are not.
    assert_eq!(
        batch_operations(&whole, "trusted", "attendance"),
        ["WRITE", "MERGE", "MERGE"]
    );
    assert_eq!(
        batch_operations(&chunked, "trusted", "attendance"),
        ["WRITE", "WRITE", "MERGE"]
    );
    let lineage = ["_ingested_at"];
    for t in ["attendance", "attendance_quarantine"] {
        let (a, b) = (
            table_csv(&whole, "trusted", t, &lineage),
            table_csv(&chunked, "trusted", t, &lineage),
        );
        assert!(!a.is_empty(), "trusted.{t} is empty");
        same_lines(&a, &b, &format!("trusted.{t}"));
    }
    let books = ["recorded_at", "evaluated_at"];
    let (a, b) = (
        table_csv(&whole, "_ops", "promotions", &books),
        table_csv(&chunked, "_ops", "promotions", &books),
    );
    same_lines(&a, &b, "the books");
}

/// The open `absent_in_a_row` alerts of a lake: (student, course, sessions).
fn absent_alerts(p: &TestProject) -> Vec<String> {
    let Some(df) = p.read(
        "curated",
        "alerts",
        "SELECT student_id, course_id, value FROM t WHERE rule_id = 'absent_in_a_row' AND status = 'open' ORDER BY course_id, student_id",
    ) else {
        return Vec::new();
    };
    crate::harness::strings(&df)
}

#[test]
fn days_added_from_the_kept_state_give_the_products_of_one_rebuild() {
    let (_shared, daily, rebuilt) = two_lakes();
    let now = [("MEDALLION_NOW", "2026-12-01T00:00:00Z")];
    let base = daily.generate_into("base", 40, 10, 0.0, 11, Some("2026-09-01"));
    // Later school days of the same roster: clean days, a day with defects, a day after a
    // weekend, a re-delivery of an earlier day with corrections (not an append), and a day
    // landed with engagement (not attendance only). Whether each is added to the kept state:
    // Some(yes/no), or None when it depends on the defects drawn.
    let day = |dir: &str, start: &str, defects: f64, seed: u64| {
        daily.generate_into(dir, 40, 1, defects, seed, Some(start))
    };
    let days = [
        (day("d1", "2026-09-11", 0.0, 11), Some(true), false),
        (day("d2", "2026-09-14", 0.0, 11), Some(false), false),
        (day("d3", "2026-09-15", 0.08, 11), None, false),
        (day("again", "2026-09-14", 0.08, 12), Some(false), false),
        (day("d4", "2026-09-16", 0.0, 11), Some(true), false),
        (day("d5", "2026-09-21", 0.0, 11), Some(false), true),
        (day("d6", "2026-09-22", 0.0, 11), Some(true), false),
    ];
    let logged = [now[0], ("MEDALLION_LOG", "medallion=info")];
    for p in [&daily, &rebuilt] {
        p.land_all(&base);
    }
    let r = daily.run_env(&["promote", "--all", "--to", "curated"], &now);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for (i, (inbox, expect, engagement)) in days.iter().enumerate() {
        let mut files = vec![export_of(inbox, "attendance")];
        if *engagement {
            files.push(export_of(inbox, "engagement"));
        }
        for (p, f) in [&daily, &rebuilt]
            .into_iter()
            .flat_map(|p| files.iter().map(move |f| (p, f)))
        {
            let ds = if f.to_string_lossy().contains("engagement") {
                "engagement"
            } else {
                "attendance"
            };
            p.ok(&["land", ds, f.to_str().unwrap()]);
        }
        if i == 1 {
            // A crash between the state's commit and the products': the rerun rebuilds.
            let r = daily.run_env(
                &["promote", "--all", "--to", "curated"],
                &[
                    now[0],
                    ("MEDALLION_CRASH_AT", "trusted-to-curated:after-state"),
                ],
            );
            assert_ne!(r.code, 0, "the crash point was reached");
        }
        let r = daily.run_env(&["promote", "--all", "--to", "curated"], &logged);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let added = r.stderr.contains("to the kept state (no rebuild)");
        if let Some(expect) = expect {
            assert_eq!(
                added, *expect,
                "day {i} added from the kept state:\n{}",
                r.stderr
            );
        }
    }
    let r = rebuilt.run_env(&["promote", "--all", "--to", "curated"], &now);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for t in crate::harness::PRODUCTS {
        let (a, b) = (
            table_csv(&daily, "curated", t, &[]),
            table_csv(&rebuilt, "curated", t, &[]),
        );
        assert!(!a.is_empty(), "curated.{t} is empty");
        same_lines(
            &b,
            &a,
            &format!("curated.{t} (rebuilt vs added day by day)"),
        );
    }
    for t in ["attendance_totals", "attendance_recent"] {
        same_lines(
            &table_csv(&rebuilt, "curated", t, &[]),
            &table_csv(&daily, "curated", t, &[]),
            &format!("curated.{t} (rebuilt vs added day by day)"),
        );
    }
    let alerts = absent_alerts(&daily);
    assert!(!alerts.is_empty(), "some student is absent in a row");
    assert_eq!(alerts, absent_alerts(&rebuilt));
}
