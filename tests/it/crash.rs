//! A crash in the middle of a promotion followed by a rerun gives the same tables as one
//! clean run: nothing duplicated, nothing lost.

use crate::harness::TestProject;

fn counts(p: &TestProject) -> Vec<u64> {
    ["attendance", "attendance_quarantine"]
        .iter()
        .map(|t| p.rows("trusted", t))
        .chain([
            p.rows("raw", "attendance"),
            p.rows("raw", "attendance_rejects"),
            p.rows("_ops", "promotions"),
            p.rows("_ops", "quality_results"),
        ])
        .collect()
}

/// A fresh project; with `chunk`, raw→trusted judges attendance in chunks of that many rows
/// (and streams a first load's valid rows into the commit).
fn project(chunk: Option<usize>) -> TestProject {
    let p = TestProject::new();
    if let Some(rows) = chunk {
        p.set_trusted_chunk("attendance", rows);
    }
    p
}

#[test]
fn crash_and_rerun_equals_one_clean_run() {
    for chunk in [None, Some(37)] {
        crash_and_rerun(chunk);
    }
}

fn crash_and_rerun(chunk: Option<usize>) {
    let fresh = || {
        let p = project(chunk);
        let inbox = p.generate(30, 5, 0.05);
        p.land_all(&inbox);
        p
    };
    let points = [
        "landing-to-raw:after-rejects",
        "landing-to-raw:before-data",
        // The raw books travel in the data commit: a crash before they reach the ledger is
        // settled from the commit by the rerun.
        "landing-to-raw:after-data",
        "raw-to-trusted:after-quarantine",
        "raw-to-trusted:before-data",
        "raw-to-trusted:after-data",
    ];
    crash_at_each(&points, fresh, &format!("{chunk:?}"));
}

/// For each crash point: a project from `fresh` crashed there while promoting attendance, then
/// rerun, gives the tables of one clean run of another `fresh` project, and a third run finds
/// nothing to do.
fn crash_at_each(points: &[&str], fresh: impl Fn() -> TestProject, what: &str) {
    let clean = fresh();
    clean.ok(&["promote", "attendance"]);
    let want = counts(&clean);
    for point in points {
        let p = fresh();
        let crashed = p.run_env(&["promote", "attendance"], &[("MEDALLION_CRASH_AT", point)]);
        assert_ne!(
            crashed.code, 0,
            "{point} {what}: the crash hook did not fire"
        );
        p.ok(&["promote", "attendance"]);
        assert_eq!(
            counts(&p),
            want,
            "{point} {what}: rerun differs from a clean run"
        );
        let again = p.ok(&["promote", "attendance"]);
        assert!(
            again.stdout.contains("Nothing to promote"),
            "{point} {what}"
        );
    }
}

/// Starts `promote attendance --to trusted` in `p` as its own process (stderr captured).
fn spawn_promotion(p: &TestProject) -> std::process::Child {
    std::process::Command::new(crate::harness::BIN)
        .args(["--project", p.root.to_str().unwrap()])
        .args(["promote", "attendance", "--to", "trusted"])
        .env_remove("MEDALLION_KEYRING")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn concurrent_promotions_never_duplicate() {
    // Three rounds of three writers racing on a fresh lake: the race for each table's
    // creation and for each batch's commit is lost by someone in most rounds. The last round
    // judges in small chunks, so the winners stream a first load into the commit.
    for round in 0..3 {
        concurrent_round(round, (round == 2).then_some(37));
    }
}

fn concurrent_round(round: usize, chunk: Option<usize>) {
    let p = project(chunk);
    let inbox = p.generate(30, 5, 0.02);
    p.land_all(&inbox);
    let writers: Vec<_> = (0..3).map(|_| spawn_promotion(&p)).collect();
    let outputs: Vec<_> = writers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap())
        .collect();
    // A writer that loses a commit race (Delta's conflict check) runs the step again, which
    // skips what the winner committed: every writer succeeds, nothing is duplicated or lost.
    for o in &outputs {
        assert!(
            o.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    p.ok(&["promote", "attendance", "--to", "trusted"]);
    let file = crate::harness::export_of(&inbox, "attendance");
    let landing = crate::harness::data_lines(&file);
    assert_eq!(
        p.rows("raw", "attendance") + p.rows("raw", "attendance_rejects"),
        landing,
        "round {round}: raw duplicated or lost rows"
    );
    let dups = crate::harness::defects(&inbox)
        .iter()
        .filter(|d| d.file.starts_with("attendance") && d.expect == "duplicate")
        .count() as u64;
    assert_eq!(
        p.rows("raw", "attendance"),
        p.rows("trusted", "attendance") + p.rows("trusted", "attendance_quarantine") + dups,
        "round {round}: trusted duplicated or lost rows"
    );
}

/// A project holding a first export in trusted, with a later export (new days, so keys trusted
/// does not hold) landed: judged in chunks, its valid rows stream into a guarded append.
fn with_later_batch() -> TestProject {
    let p = project(Some(37));
    let inbox = p.generate(30, 5, 0.05);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance"]);
    let later = p.generate_into("later", 30, 5, 0.05, 11, Some("2026-09-14"));
    p.ok(&["land", "attendance", later.to_str().unwrap()]);
    p
}

#[test]
fn a_crash_in_a_streamed_later_batch_then_a_rerun_equals_one_clean_run() {
    let points = [
        "raw-to-trusted:after-quarantine",
        "raw-to-trusted:before-data",
        "raw-to-trusted:after-data",
    ];
    crash_at_each(&points, with_later_batch, "streamed later batch");
}

#[test]
fn racing_writers_stream_later_batches_of_new_keys_once() {
    let p = project(Some(37));
    let first = p.generate(30, 5, 0.02);
    p.land_all(&first);
    p.ok(&["promote", "attendance", "--to", "trusted"]);
    // Two later exports of new days (the same roster): two streamed batches, raced by three
    // writers, each batch's append landing on whatever version the others left.
    let later: Vec<_> = [("a", "2026-09-14"), ("b", "2026-09-21")]
        .iter()
        .map(|(dir, start)| p.generate_into(dir, 30, 5, 0.02, 11, Some(*start)))
        .collect();
    for inbox in &later {
        p.ok(&["land", "attendance", inbox.to_str().unwrap()]);
    }
    let writers: Vec<_> = (0..3).map(|_| spawn_promotion(&p)).collect();
    for w in writers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let all: Vec<_> = std::iter::once(&first).chain(&later).collect();
    let landing: u64 = all
        .iter()
        .map(|i| crate::harness::data_lines(&crate::harness::export_of(i, "attendance")))
        .sum();
    assert_eq!(
        p.rows("raw", "attendance") + p.rows("raw", "attendance_rejects"),
        landing,
        "raw duplicated or lost rows"
    );
    let dups: u64 = all
        .iter()
        .map(|i| {
            crate::harness::defects(i)
                .iter()
                .filter(|d| d.file.starts_with("attendance") && d.expect == "duplicate")
                .count() as u64
        })
        .sum();
    assert_eq!(
        p.rows("raw", "attendance"),
        p.rows("trusted", "attendance") + p.rows("trusted", "attendance_quarantine") + dups,
        "trusted duplicated or lost rows"
    );
}
