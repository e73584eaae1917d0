//! `medallion watch` and the alert rules (issue 14), against the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{data_lines, export_of, TestProject, BIN};

const NOW: (&str, &str) = ("MEDALLION_NOW", "2026-12-01T00:00:00Z");

/// A running `watch` whose stdout lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(p: &TestProject, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--project")
            .arg(&p.root)
            .args(["watch", "--settle-ms", "150", "--poll-ms", "300"])
            .args(extra)
            .env_remove("MEDALLION_KEYRING")
            .envs(p.keyring.iter().map(|k| ("MEDALLION_KEYRING", k.clone())))
            .env(NOW.0, NOW.1)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = Self {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        w.wait_for(|l| l.starts_with("Watching "), 30);
        w
    }

    /// Waits until a line satisfies `pred`; returns it.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool, secs: u64) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no such line within {secs} s; saw:\n{}",
            self.seen.join("\n")
        );
    }

    /// SIGTERM, then the exit code and the rest of the output.
    fn terminate(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        self.seen.extend(self.lines.try_iter());
        (code, self.seen)
    }
}

fn drop_file(from: &Path, inbox: &Path, name: &str) {
    // Written under a hidden name, then renamed: as an uploader that writes then renames.
    let tmp = inbox.join(format!(".{name}.part"));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, inbox.join(name)).unwrap();
}

#[test]
fn files_dropped_while_watching_are_promoted_exactly_once() {
    let p = TestProject::new();
    let gen = p.generate_into("gen", 8, 3, 0.0, 5, None);
    let inbox = p.path("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut w = Watch::start(&p, &[]);
    // Two at once.
    drop_file(&gen.join("courses.csv"), &inbox, "courses.csv");
    drop_file(&gen.join("students.csv"), &inbox, "students.csv");
    w.wait_for(|l| l.starts_with("students.csv: promoted"), 60);
    w.wait_for(|l| l.starts_with("courses.csv: promoted"), 5);
    // One hostile file, then the real export.
    std::fs::write(
        inbox.join("attendance_broken.csv"),
        "<html><body>502 Bad Gateway</body></html>\n",
    )
    .unwrap();
    let held = w.wait_for(|l| l.starts_with("attendance_broken.csv:"), 60);
    assert!(held.contains("HELD at raw"), "{held}");
    let att = export_of(&gen, "attendance");
    drop_file(&att, &inbox, "attendance_monday.csv");
    let done = w.wait_for(|l| l.starts_with("attendance_monday.csv:"), 60);
    assert!(
        done.contains("promoted") && done.contains("books balance"),
        "{done}"
    );
    // Re-delivered under another name, and touched.
    drop_file(&att, &inbox, "attendance_again.csv");
    let again = w.wait_for(|l| l.starts_with("attendance_again.csv:"), 60);
    assert!(again.contains("already landed"), "{again}");
    // A name no pipeline matches.
    std::fs::write(inbox.join("notes.txt"), "hello").unwrap();
    w.wait_for(|l| l.starts_with("notes.txt:"), 30);
    let (code, lines) = w.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l == "Stopped."),
        "{}",
        lines.join("\n")
    );

    // Each file promoted exactly once; the books balance.
    let landing = data_lines(&att);
    assert_eq!(
        p.rows("raw", "attendance") + p.rows("raw", "attendance_rejects"),
        landing
    );
    assert_eq!(
        p.rows("raw", "attendance"),
        p.rows("trusted", "attendance") + p.rows("trusted", "attendance_quarantine")
    );
    let landed = std::fs::read_dir(p.path("lake/landing/attendance"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".meta.json")
        })
        .count();
    assert_eq!(landed, 2, "the real export and the hostile file");
    assert!(inbox.join(".unmatched/notes.txt").is_file());
    // Landed exports leave the inbox (the lake keeps the copy; none outlives `forget`).
    assert!(!inbox.join("attendance_again.csv").exists());
    assert!(!inbox.join(".landed").exists());
    // Only the held file is still pending: a rerun holds it again and promotes nothing twice.
    let raw = p.rows("raw", "attendance");
    let again = p.run_env(&["promote", "--all"], &[NOW]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(
        !again.stdout.contains("attendance_monday"),
        "{}",
        again.stdout
    );
    assert_eq!(p.rows("raw", "attendance"), raw);
    let audit = p.ok(&["audit", "--action", "watch"]).stdout;
    assert!(audit.contains("watch"), "{audit}");
}

/// Every table's row count and every curated product, in key order.
fn tables(p: &TestProject) -> String {
    let mut out = String::new();
    for (stage, t) in [
        ("raw", "attendance"),
        ("raw", "grades"),
        ("trusted", "attendance"),
        ("trusted", "grades"),
        ("trusted", "students"),
        ("_ops", "promotions"),
    ] {
        out.push_str(&format!("{stage}.{t} {}\n", p.rows(stage, t)));
    }
    for product in crate::harness::PRODUCTS {
        let key = medallion::curated::products::key(product).join(", ");
        let r = p.run_env(
            &[
                "query",
                "--format",
                "json",
                &format!("SELECT * FROM curated.{product} ORDER BY {key}"),
            ],
            &[NOW],
        );
        out.push_str(&r.stdout);
    }
    let a = p.run_env(
        &[
            "query",
            "--format",
            "json",
            "SELECT rule_id, student_id, course_id, status FROM curated.alerts ORDER BY rule_id, course_id, student_id",
        ],
        &[NOW],
    );
    out.push_str(&a.stdout);
    out
}

#[test]
fn sigterm_mid_promotion_then_restart_equals_an_uninterrupted_run() {
    let clean = TestProject::new();
    let gen = clean.generate_into("gen", 8, 3, 0.03, 9, None);
    let keyring = clean.path(".medallion/keyring.json");
    let fill = |p: &TestProject| {
        let inbox = p.path("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        for f in std::fs::read_dir(&gen).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "csv") {
                std::fs::copy(&f, inbox.join(f.file_name().unwrap())).unwrap();
            }
        }
    };
    fill(&clean);
    let once = clean.run_env(&["watch", "--once", "--settle-ms", "100"], &[NOW]);
    assert_eq!(once.code, 0, "{}\n{}", once.stdout, once.stderr);
    let want = tables(&clean);

    let p = TestProject::with_keyring(&keyring);
    fill(&p);
    let mut w = Watch::start(&p, &[]);
    // Stop while the second file is being promoted.
    w.wait_for(|l| l.starts_with("courses.csv: promoted"), 60);
    let (code, lines) = w.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(
        std::fs::read_dir(p.path("inbox")).unwrap().any(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "the stop came after every file: {}",
        lines.join("\n")
    );
    let resumed = p.run_env(&["watch", "--once", "--settle-ms", "100"], &[NOW]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    assert_eq!(
        tables(&p),
        want,
        "restart differs from an uninterrupted run"
    );
}

/// A student's attendance rows (`status` per date) for `course`, copying the student's
/// generated row so names and formats are the export's own.
fn attendance_file(template: &Path, dir: &Path, name: &str, days: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(template).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = format!("{header}\n");
    for (i, (date, status)) in days.iter().enumerate() {
        let mut r = row.clone();
        let id = format!("X{name}{i}");
        r[0] = &id;
        r[6] = date;
        r[7] = status;
        let minutes = if *status == "absent" { "0" } else { "50" };
        r[8] = minutes;
        let at = format!("{date}T09:00:00Z");
        r[10] = &at;
        out.push_str(&r.join(","));
        out.push('\n');
    }
    let path = dir.join(format!("attendance_{name}.csv"));
    std::fs::write(&path, out).unwrap();
    // student id and course of the template row
    format!("{}|{}", row[1], row[4])
}

fn alerts_for(p: &TestProject, course: &str, record: &str) -> Vec<serde_json::Value> {
    let who = p
        .read(
            "trusted",
            "attendance",
            &format!("SELECT student_id FROM t WHERE record_id = '{record}'"),
        )
        .unwrap();
    let pseudonym = who
        .column("student_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert!(pseudonym.starts_with("p_") && pseudonym.len() == 42);
    let r = p.run_env(&["alerts", "--format", "json"], &[NOW]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    all.into_iter()
        .filter(|a| {
            a["rule_id"] == "absent_in_a_row"
                && a["student_id"] == pseudonym.as_str()
                && a["course_id"] == course
        })
        .collect()
}

#[test]
fn alert_rules_fire_once_and_resolve_when_the_student_comes_back() {
    let p = TestProject::new();
    let gen = p.generate_into("gen", 8, 3, 0.0, 13, None);
    p.land_all(&gen);
    p.run_env(&["promote", "--all"], &[NOW]);
    let extra = p.path("extra");
    std::fs::create_dir_all(&extra).unwrap();
    let att = export_of(&gen, "attendance");
    let subject = attendance_file(
        &att,
        &extra,
        "away",
        &[
            ("2026-10-05", "absent"),
            ("2026-10-06", "absent"),
            ("2026-10-07", "absent"),
        ],
    );
    let course = subject.split('|').nth(1).unwrap().to_string();
    p.ok(&[
        "land",
        "attendance",
        extra.join("attendance_away.csv").to_str().unwrap(),
    ]);
    let fired = p.run_env(&["promote", "--all"], &[NOW]);
    assert_eq!(fired.code, 0, "{}\n{}", fired.stdout, fired.stderr);
    assert!(
        fired.stdout.contains("alert fired     absent_in_a_row"),
        "{}",
        fired.stdout
    );
    let a = alerts_for(&p, &course, "Xaway0");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["status"], "open");
    let reason = a[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("absent ") && reason.ends_with(" sessions in a row"),
        "{reason}"
    );
    let text = p.run_env(&["alerts", "--since", "7d"], &[NOW]).stdout;
    assert!(
        text.contains("OPEN") && text.contains("action: contact the student"),
        "{text}"
    );

    // An unchanged rerun fires nothing and writes nothing.
    let version = p.version("curated", "alerts");
    let rerun = p.run_env(&["promote", "--all"], &[NOW]);
    assert!(!rerun.stdout.contains("alert fired"), "{}", rerun.stdout);
    assert_eq!(p.version("curated", "alerts"), version);
    assert_eq!(alerts_for(&p, &course, "Xaway0").len(), 1);

    // The student comes back: resolved, not re-fired.
    attendance_file(&att, &extra, "back", &[("2026-10-08", "present")]);
    p.ok(&[
        "land",
        "attendance",
        extra.join("attendance_back.csv").to_str().unwrap(),
    ]);
    let back = p.run_env(&["promote", "--all"], &[NOW]);
    assert!(
        back.stdout.contains("alert resolved  absent_in_a_row"),
        "{}",
        back.stdout
    );
    let a = alerts_for(&p, &course, "Xaway0");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["status"], "resolved");
    assert_eq!(a[0]["resolved_at"], "2026-12-01T00:00:00Z");
    // Pseudonyms only; metrics per rule.
    let dump = p
        .ok(&["query", "--format", "csv", "SELECT * FROM curated.alerts"])
        .stdout;
    assert!(
        !dump.contains(subject.split('|').next().unwrap()),
        "raw id in clear"
    );
    let metrics = std::fs::read_to_string(p.path("lake/_metrics/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"AlertsResolved\""), "metrics");
    let log = std::fs::read_to_string(p.path("lake/_metrics/alerts.jsonl")).unwrap();
    let resolved = log
        .lines()
        .filter(|l| l.contains("absent_in_a_row") && l.contains("\"change\":\"resolved\""))
        .count();
    assert_eq!(resolved, 1, "{log}");

    // Away again, a day later: a new alert fires; the resolved one is kept as it was, and the
    // resolved history is neither read nor rewritten (no file of it removed by the commit).
    attendance_file(
        &att,
        &extra,
        "again",
        &[
            ("2026-10-09", "absent"),
            ("2026-10-12", "absent"),
            ("2026-10-13", "absent"),
        ],
    );
    p.ok(&[
        "land",
        "attendance",
        extra.join("attendance_again.csv").to_str().unwrap(),
    ]);
    let later = ("MEDALLION_NOW", "2026-12-02T00:00:00Z");
    let again = p.run_env(&["promote", "--all"], &[later]);
    assert!(
        again.stdout.contains("alert fired     absent_in_a_row"),
        "{}",
        again.stdout
    );
    let a = alerts_for(&p, &course, "Xaway0");
    let mut status: Vec<(&str, &str)> = a
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["resolved_at"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    status.sort();
    assert_eq!(
        status,
        [("open", "-"), ("resolved", "2026-12-01T00:00:00Z")],
        "{a:?}"
    );
    let (added, removed, _) = newest_commit_files(&p, "curated", "alerts");
    assert!(
        !added.is_empty()
            && added
                .iter()
                .chain(&removed)
                .all(|f| f.starts_with("status=open/")),
        "the resolved history was rewritten: added {added:?}, removed {removed:?}"
    );
}

/// The files the newest commit of a local table adds and removes (paths in the table), and
/// its predicate.
pub(crate) fn newest_commit_files(
    p: &TestProject,
    stage: &str,
    table: &str,
) -> (Vec<String>, Vec<String>, String) {
    let log = p.path(&format!("lake/{stage}/{table}/_delta_log"));
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "json"))
        .max()
        .unwrap();
    let text = std::fs::read_to_string(newest).unwrap();
    let actions: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths = |kind: &str| {
        actions
            .iter()
            .filter_map(|a| a[kind]["path"].as_str().map(str::to_string))
            .collect()
    };
    let predicate = actions
        .iter()
        .find_map(|a| a["commitInfo"]["operationParameters"]["predicate"].as_str())
        .unwrap_or_default()
        .to_string();
    (paths("add"), paths("remove"), predicate)
}

/// An alerts table from before the partitioning (one unpartitioned table) is rewritten by the
/// next evaluation, partitioned by status and rule, with the same alerts, even when no alert
/// fires or resolves (else every evaluation would go on reading it whole).
#[test]
fn an_alerts_table_from_before_the_partitions_is_rewritten_partitioned_once() {
    use medallion::storage::delta;
    let p = TestProject::new();
    let gen = p.generate_into("gen", 8, 3, 0.0, 13, None);
    p.land_all(&gen);
    let extra = p.path("extra");
    std::fs::create_dir_all(&extra).unwrap();
    let att = export_of(&gen, "attendance");
    let days = [
        ("2026-10-05", "absent"),
        ("2026-10-06", "absent"),
        ("2026-10-07", "absent"),
    ];
    attendance_file(&att, &extra, "away", &days);
    p.ok(&[
        "land",
        "attendance",
        extra.join("attendance_away.csv").to_str().unwrap(),
    ]);
    let first = p.run_env(&["promote", "--all"], &[NOW]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let all = "SELECT alert_id, status FROM t ORDER BY alert_id";
    let before = p.read("curated", "alerts", all).unwrap();
    assert!(before.height() > 0, "no alert fired");

    // The same rows, written again as the table of an earlier release: not partitioned.
    let loc = p.loc("curated", "alerts");
    let mut rows = p.read("curated", "alerts", "SELECT * FROM t").unwrap();
    let (schema, batches) = medallion::frame::to_batches(&mut rows).unwrap();
    std::fs::remove_dir_all(p.path("lake/curated/alerts")).unwrap();
    std::fs::create_dir_all(p.path("lake/curated/alerts")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(delta::overwrite(
        &loc,
        schema,
        batches,
        "test/old",
        &[],
        &[],
    ))
    .unwrap();
    let columns = || {
        rt.block_on(delta::partition_columns(&loc))
            .unwrap()
            .unwrap()
    };
    assert!(columns().is_empty());

    // Nothing new: no alert fires or resolves, and the table is rewritten partitioned.
    let rerun = p.run_env(&["promote", "--all"], &[NOW]);
    assert_eq!(rerun.code, 0, "{}\n{}", rerun.stdout, rerun.stderr);
    assert!(!rerun.stdout.contains("alert fired"), "{}", rerun.stdout);
    assert!(!rerun.stdout.contains("alert resolved"), "{}", rerun.stdout);
    assert_eq!(columns(), ["status", "rule_id"]);
    let after = p.read("curated", "alerts", all).unwrap();
    assert!(after.equals(&before), "{before}\n{after}");
    // Once: the run after writes nothing.
    let version = p.version("curated", "alerts");
    p.run_env(&["promote", "--all"], &[NOW]);
    assert_eq!(p.version("curated", "alerts"), version);
}
