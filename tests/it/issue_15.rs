//! Regression tests of issue 15 (defects found in use): wholly bad batches held, status and
//! catalog never stale, deterministic curated numbers, crash points in every step.

use std::path::Path;

use crate::harness::TestProject;

const ATT_HEADER: &str = "record_id,student_id,student_name,student_email,course_id,section,session_date,status,minutes_attended,recorded_by,recorded_at";

/// An attendance export in the landing format, `n` rows, with the given course id and status.
fn attendance(dir: &Path, name: &str, n: usize, course: &str, status: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = format!("{ATT_HEADER}\n");
    for i in 0..n {
        let day = 1 + i % 28;
        text.push_str(&format!(
            "{name}-{i},S{:06},Ann Lee,ann{i}@x.edu,{course},01,2026-09-{day:02},{status},50,T1,2026-09-{day:02}T10:00:00Z\n",
            i % 7
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn entry<'a>(status: &'a [serde_json::Value], table: &str) -> &'a serde_json::Value {
    status
        .iter()
        .find(|e| e["table"] == table)
        .unwrap_or_else(|| panic!("{table} not in status: {status:?}"))
}

#[test]
fn issue_15_ids_in_any_sis_format_are_accepted() {
    // DESIGN.md puts no format on course ids: `C100`, `MATH-101.A` and `S 7` must pass.
    let p = TestProject::new();
    let dir = p.path("in");
    for (i, course) in ["C100", "MATH-101.A", "bio_2"].iter().enumerate() {
        let f = attendance(&dir, &format!("attendance_{i}.csv"), 10, course, "present");
        p.ok(&["land", "attendance", f.to_str().unwrap()]);
    }
    let r = p.ok(&["promote", "attendance", "--to", "trusted"]);
    assert!(!r.stdout.contains("HELD"), "{}", r.stdout);
    assert_eq!(p.rows("trusted", "attendance"), 30);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), 0);
}

#[test]
fn issue_15_wholly_quarantined_batch_is_held_not_buried() {
    let p = TestProject::new();
    let dir = p.path("in");
    let bad = attendance(&dir, "attendance_bad.csv", 40, "MAT101", "tardy");
    let good = attendance(&dir, "attendance_good.csv", 20, "MAT101", "present");
    p.ok(&["land", "attendance", bad.to_str().unwrap()]);
    p.ok(&["land", "attendance", good.to_str().unwrap()]);

    let r = p.run(&["promote", "attendance", "--to", "trusted"]);
    assert_eq!(
        r.code, 1,
        "a held batch exits 1\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.contains("HELD"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("40 of 40 rows (100.0%) would be quarantined"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("contract.status.allowed_values"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("to go on:"), "{}", r.stdout);
    // The good file behind it was promoted; nothing of the held batch reached trusted or
    // quarantine, and its books are not recorded (it stays pending).
    assert_eq!(p.rows("trusted", "attendance"), 20);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), 0);
    let report = p.ok(&["report", "attendance"]);
    assert!(
        report.stdout.contains("HELD at trusted"),
        "{}",
        report.stdout
    );
    let metrics = std::fs::read_to_string(p.path("lake/_metrics/metrics.jsonl")).unwrap();
    assert!(metrics.contains("BatchesHeld"), "no BatchesHeld metric");

    // Still pending: the next promote holds it again, and --accept-held quarantines it.
    assert_eq!(p.run(&["promote", "attendance", "--to", "trusted"]).code, 1);
    p.ok(&["promote", "attendance", "--to", "trusted", "--accept-held"]);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), 40);
    let again = p.ok(&["promote", "attendance", "--to", "trusted"]);
    assert!(
        again.stdout.contains("Nothing to promote"),
        "{}",
        again.stdout
    );
    let report = p.ok(&["report", "attendance"]);
    assert!(!report.stdout.contains("HELD"), "{}", report.stdout);
}

#[test]
fn issue_15_empty_garbage_and_html_files_are_held_at_raw() {
    let p = TestProject::new();
    let dir = p.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    let files: [(&str, &[u8]); 4] = [
        ("attendance_empty.csv", b""),
        ("attendance_header_only.csv", format!("{ATT_HEADER}\n").as_bytes().to_vec().leak()),
        ("attendance_garbage.csv", b"\x00\xff\xfe\x13garbage\x01\x02\n\x99\x88,\x00\n"),
        (
            "attendance_page.csv",
            b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>oops</body></html>\n",
        ),
    ];
    for (name, bytes) in files {
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        p.ok(&["land", "attendance", f.to_str().unwrap()]);
    }
    let good = attendance(&dir, "attendance_good.csv", 12, "MAT101", "present");
    p.ok(&["land", "attendance", good.to_str().unwrap()]);
    let r = p.run(&["promote", "attendance", "--to", "trusted"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("HELD").count(), 4, "{}", r.stdout);
    assert!(r.stdout.contains("no data rows"), "{}", r.stdout);
    assert!(
        r.stdout.contains("names none of the contract's columns"),
        "{}",
        r.stdout
    );
    // Only the good file's rows are in raw; no reject of a held file was committed.
    assert_eq!(p.rows("raw", "attendance"), 12);
    assert_eq!(p.rows("raw", "attendance_rejects"), 0);
    assert_eq!(p.rows("trusted", "attendance"), 12);
}

#[test]
fn issue_15_status_and_catalog_follow_every_commit() {
    let p = TestProject::new();
    let dir = p.path("in");
    let bad = attendance(&dir, "attendance_1.csv", 30, "MAT101", "tardy");
    p.ok(&["land", "attendance", bad.to_str().unwrap()]);
    p.ok(&["promote", "attendance", "--to", "trusted", "--accept-held"]);
    let s = p.status();
    assert_eq!(entry(&s, "trusted.attendance_quarantine")["rows"], 30);

    // The contract is fixed (a status the SIS really uses) and the quarantine released.
    let contract = p.path("contracts/attendance.yaml");
    let text = std::fs::read_to_string(&contract).unwrap();
    let fixed = text.replace(
        "value: [present, absent, late, excused]",
        "value: [present, absent, late, excused, tardy]",
    );
    assert_ne!(text, fixed, "the contract's status set moved");
    std::fs::write(&contract, fixed).unwrap();
    p.ok(&["quarantine", "release", "attendance"]);

    for listing in [p.status(), {
        let r = p.ok(&["catalog", "--format", "json"]);
        serde_json::from_str(&r.stdout).unwrap()
    }] {
        let t = entry(&listing, "trusted.attendance");
        assert_eq!(t["rows"], 30, "{t}");
        assert_eq!(
            t["version"].as_u64(),
            p.version("trusted", "attendance"),
            "{t}"
        );
        assert_eq!(entry(&listing, "trusted.attendance_quarantine")["rows"], 0);
    }
    // The catalog file itself was brought up to date by the release, not only the listing.
    let file: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(p.path("lake/_catalog/catalog.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(entry(&file, "trusted.attendance")["rows"], 30);

    // After a full promotion, the ops tables written after a step's registration are current.
    let inbox = p.generate(20, 4, 0.02);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let s = p.status();
    for (table, stage, name) in [
        ("ops.quality_results", "_ops", "quality_results"),
        ("ops.promotions", "_ops", "promotions"),
    ] {
        let e = entry(&s, table);
        assert_eq!(e["version"].as_u64(), p.version(stage, name), "{e}");
        assert_eq!(e["rows"].as_u64(), Some(p.rows(stage, name)), "{e}");
    }
}

/// Every curated table, all rows in key order, every value printed in full.
fn curated_dump(p: &TestProject) -> String {
    let mut out = String::new();
    for product in crate::harness::PRODUCTS {
        let key = medallion::curated::products::key(product).join(", ");
        let r = p.ok(&[
            "query",
            "--format",
            "json",
            &format!("SELECT * FROM curated.{product} ORDER BY {key}"),
        ]);
        out.push_str(&r.stdout);
    }
    out
}

#[test]
fn issue_15_curated_builds_are_byte_identical() {
    let p = TestProject::new();
    let inbox = p.generate(60, 20, 0.02);
    p.land_all(&inbox);
    let now = [("MEDALLION_NOW", "2026-12-01T00:00:00Z")];
    let promote = |p: &TestProject| {
        let r = p.run_env(&["promote", "--all"], &now);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    };
    promote(&p);
    let first = curated_dump(&p);
    assert!(first.contains("weighted_grade"), "{first}");
    // Rebuild curated from scratch three times (a crash after the product commit in one of
    // them), each time from the same trusted tables: the same bytes every time.
    for round in 0..3 {
        std::fs::remove_dir_all(p.path("lake/curated")).unwrap();
        if round == 1 {
            let r = p.run_env(
                &["promote", "--all"],
                &[
                    now[0],
                    ("MEDALLION_CRASH_AT", "trusted-to-curated:after-product"),
                ],
            );
            assert_ne!(r.code, 0, "the curated crash point did not fire");
        }
        promote(&p);
        assert_eq!(curated_dump(&p), first, "round {round}: curated differs");
    }
}

#[test]
fn issue_15_crash_points_in_curated_release_and_purge_rerun_clean() {
    let p = TestProject::new();
    let dir = p.path("in");
    let bad = attendance(&dir, "attendance_1.csv", 30, "MAT101", "tardy");
    p.ok(&["land", "attendance", bad.to_str().unwrap()]);
    p.ok(&["promote", "attendance", "--to", "trusted", "--accept-held"]);
    let contract = p.path("contracts/attendance.yaml");
    let text = std::fs::read_to_string(&contract).unwrap();
    std::fs::write(
        &contract,
        text.replace(
            "value: [present, absent, late, excused]",
            "value: [present, absent, late, excused, tardy]",
        ),
    )
    .unwrap();
    for point in ["after-trusted", "after-quarantine"] {
        let crashed = p.run_env(
            &["quarantine", "release", "attendance"],
            &[("MEDALLION_CRASH_AT", &format!("quarantine-release:{point}"))],
        );
        assert_ne!(crashed.code, 0, "{point}: the crash hook did not fire");
    }
    p.ok(&["quarantine", "release", "attendance"]);
    assert_eq!(p.rows("trusted", "attendance"), 30);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), 0);

    // Purge: quarantine rows landed long ago, then a crash between the delete and the file
    // removal; the rerun removes the files, so no earlier version still holds the rows.
    let q = TestProject::new();
    let bad = attendance(&q.path("in"), "attendance_1.csv", 30, "MAT101", "tardy");
    q.ok(&["land", "attendance", bad.to_str().unwrap()]);
    q.ok(&["promote", "attendance", "--to", "trusted", "--accept-held"]);
    let later = [("MEDALLION_NOW", "2030-01-01T00:00:00Z")];
    for point in ["after-books", "after-delete"] {
        let crashed = q.run_env(
            &["quarantine", "purge", "attendance"],
            &[
                later[0],
                ("MEDALLION_CRASH_AT", &format!("quarantine-purge:{point}")),
            ],
        );
        assert_ne!(crashed.code, 0, "{point}: the crash hook did not fire");
    }
    let r = q.run_env(&["quarantine", "purge", "attendance"], &later);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(q.rows("trusted", "attendance_quarantine"), 0);
    let parquet = walk(&q.path("lake/trusted/attendance_quarantine"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(parquet, 0, "purged rows' files survived the crash");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn issue_15_step_binaries_retry_a_lost_race() {
    let p = TestProject::new();
    let inbox = p.generate(30, 5, 0.02);
    p.land_all(&inbox);
    let bin = |name: &str| {
        Path::new(crate::harness::BIN)
            .with_file_name(name)
            .to_string_lossy()
            .to_string()
    };
    for step in ["landing-to-raw", "raw-to-trusted"] {
        let spawn = || {
            std::process::Command::new(bin(step))
                .args(["--project", p.root.to_str().unwrap()])
                .env_remove("MEDALLION_KEYRING")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let writers: Vec<_> = (0..4).map(|_| spawn()).collect();
        for w in writers {
            let o = w.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "{step}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let file = crate::harness::export_of(&inbox, "attendance");
    assert_eq!(
        p.rows("raw", "attendance") + p.rows("raw", "attendance_rejects"),
        crate::harness::data_lines(&file)
    );
}
