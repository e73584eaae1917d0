//! Issue 12, past one machine: stateless workers, one per landed file, promoting at once
//! against S3 (moto) give the tables of one sequential run. Delta's conditional-PUT commits
//! order their writes; a worker that loses a race reruns its step, which merges by key (a
//! first load only commits onto the empty table it was planned against). Curated runs once
//! after the workers, as any build does.

use std::process::{Command, Stdio};

use crate::aws::{moto, ENV};
use crate::harness::{TestProject, BIN};

fn ok(p: &TestProject, args: &[&str]) -> String {
    let r = p.run_env(args, &ENV);
    assert_eq!(r.code, 0, "medallion {args:?}\n{}\n{}", r.stdout, r.stderr);
    r.stdout
}

/// A query's result as CSV, read by the embedded engine from S3.
fn csv(p: &TestProject, sql: &str) -> String {
    ok(p, &["query", sql, "--engine", "local", "--format", "csv"])
}

/// Eight attendance exports: seven school weeks and a re-delivery of the first one (its keys
/// again, less one row), so workers race on the same keys too.
fn exports(p: &TestProject) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut roster = None;
    for week in 0..7u64 {
        let start =
            chrono::NaiveDate::from_ymd_opt(2026, 9, 7).unwrap() + chrono::Days::new(7 * week);
        let dir = p.generate_into(
            &format!("week{week}"),
            12,
            5,
            0.03,
            11,
            Some(&start.to_string()),
        );
        files.push(crate::harness::export_of(&dir, "attendance"));
        roster.get_or_insert(dir);
    }
    // Bytes, not text: the generated defects include a wrongly encoded row.
    let first = std::fs::read(&files[0]).unwrap();
    let mut lines: Vec<&[u8]> = first.split(|b| *b == b'\n').collect();
    lines.remove(1);
    let again = p.path("week0/attendance_redelivered.csv");
    std::fs::write(&again, lines.join(&b'\n')).unwrap();
    files.push(again);
    let roster = roster.unwrap();
    files.insert(0, roster.join("students.csv"));
    files.insert(0, roster.join("courses.csv"));
    files
}

fn land(p: &TestProject, files: &[std::path::PathBuf]) {
    ok(p, &["land", "courses", files[0].to_str().unwrap()]);
    ok(p, &["land", "students", files[1].to_str().unwrap()]);
    for f in &files[2..] {
        ok(p, &["land", "attendance", f.to_str().unwrap()]);
    }
    ok(p, &["promote", "courses", "students", "--to", "trusted"]);
}

/// What must be equal between the two lakes (no pseudonym: each lake has its own key).
fn tables(p: &TestProject) -> Vec<(String, String)> {
    [
        "SELECT record_id, course_id, section, session_date, status, minutes_attended, recorded_at FROM trusted.attendance ORDER BY record_id",
        "SELECT record_id, course_id, session_date, _rule_ids FROM trusted.attendance_quarantine ORDER BY record_id, _source_line",
        "SELECT count(*) AS n FROM raw.attendance",
        "SELECT count(*) AS n FROM raw.attendance_rejects",
    ]
    .iter()
    .map(|sql| (sql.to_string(), csv(p, sql)))
    .collect()
}

#[test]
fn eight_workers_at_once_on_s3_give_the_tables_of_one_sequential_run() {
    let Some(m) = moto() else { return };
    // The sequential run on the embedded backend: the same files in the same order (the
    // tables compared carry no pseudonym, so the two lakes' keys need not match).
    let seq = TestProject::new();
    let par = crate::aws::aws_project_named(&m, "par", "par", "par");
    let files = exports(&seq);
    ok(&par, &["aws", "bootstrap"]);
    for p in [&seq, &par] {
        land(p, &files);
    }
    ok(&seq, &["promote", "attendance", "--to", "trusted"]);

    // One worker per landed attendance file, all at once (an AWS Batch array's children).
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let mut c = Command::new(BIN);
            c.args(["--project", par.root.to_str().unwrap(), "promote"])
                .args(["attendance", "--to", "trusted"])
                .env("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string())
                .env_remove("MEDALLION_KEYRING")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            for (k, v) in ENV {
                c.env(k, v);
            }
            c.spawn().unwrap()
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        let o = w.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "worker {i}: {err}");
    }
    // Every file was some worker's: nothing is left to promote.
    let left = ok(&par, &["promote", "attendance", "--to", "trusted"]);
    assert!(left.contains("Nothing to promote"), "{left}");
    let (a, b) = (tables(&seq), tables(&par));
    for ((sql, want), (_, got)) in a.iter().zip(&b) {
        assert!(want.lines().count() > 1, "{sql}: no rows");
        assert_eq!(want, got, "{sql}: workers differ from one sequential run");
    }

    // The definitions that run these workers on AWS: one Batch array child per landed file,
    // sized by the execution's input.
    let dir = par.path("workers");
    let printed = ok(
        &par,
        &["aws", "workers", "--dry-run", dir.to_str().unwrap()],
    );
    assert!(
        printed.contains("attendance: 8 landed file(s)"),
        "{printed}"
    );
    let req: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("stepfunctions-create-state-machine.json")).unwrap(),
    )
    .unwrap();
    let def: serde_json::Value = serde_json::from_str(req["definition"].as_str().unwrap()).unwrap();
    let att = &def["States"]["promote_attendance"]["Parameters"];
    assert_eq!(
        att["ArrayProperties"]["Size.$"], "$.files.attendance",
        "{def:#}"
    );
    let start: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("stepfunctions-start-execution.json")).unwrap(),
    )
    .unwrap();
    let input: serde_json::Value = serde_json::from_str(start["input"].as_str().unwrap()).unwrap();
    assert_eq!(input["files"]["attendance"], 8, "{input:#}");
    crate::harness::botocore_accepts("aws_request_validate.py", &dir, "worker definitions");
}
