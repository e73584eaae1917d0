//! Privacy you can prove (issue 13): the scanner finds identifiers in clear past landing, and
//! only there.

use crate::harness::TestProject;

fn scan_json(p: &TestProject) -> (i32, serde_json::Value) {
    let r = p.run(&["scan", "--format", "json"]);
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    (r.code, v)
}

#[test]
fn scan_finds_nothing_past_landing_in_a_governed_lake() {
    let p = TestProject::new();
    let inbox = p.generate(40, 5, 0.03);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let (code, v) = scan_json(&p);
    let findings = v["findings"].as_array().unwrap();
    let past: Vec<_> = findings
        .iter()
        .filter(|f| f["stage"] != "landing")
        .collect();
    assert!(
        past.is_empty(),
        "identifiers in clear past landing: {past:?}"
    );
    assert_eq!(code, 0);
    // Landing holds them, as expected, and the scan knows the roster.
    assert!(findings.iter().any(|f| f["table"] == "landing/students"));
    assert!(v["known_identifiers"].as_u64().unwrap() > 40);
    assert!(v["tables_scanned"].as_u64().unwrap() >= 10);
}

#[test]
fn scan_names_a_column_left_in_clear_and_never_prints_values() {
    let p = TestProject::new();
    // A mistake a user could make: the staff column classified as not identifying.
    let path = p.path("contracts/attendance.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let i = text.find("- name: recorded_by").unwrap();
    let (head, tail) = text.split_at(i);
    let tail = tail.replacen("value: direct", "value: none", 1).replacen(
        "value: pseudonymize",
        "value: keep",
        1,
    );
    std::fs::write(&path, format!("{head}{tail}")).unwrap();
    let inbox = p.generate(20, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let r = p.run(&["scan"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("trusted.attendance"), "{}", r.stdout);
    assert!(r.stdout.contains("recorded_by"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("@school.edu"),
        "a value was printed: {}",
        r.stdout
    );
    let (_, v) = scan_json(&p);
    let hit = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["table"] == "trusted.attendance" && f["column"] == "recorded_by")
        .expect("the column left in clear is named");
    assert!(hit["count"].as_u64().unwrap() > 0);
}

#[test]
fn every_change_is_audited_with_versions_and_outcome() {
    let p = TestProject::new();
    let inbox = p.generate(15, 12, 0.02);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance", "--to", "trusted"]);
    p.ok(&["promote", "attendance", "--to", "trusted", "--dry-run"]);
    let r = p.ok(&["audit", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    // One land per dataset and one promotion; the dry run changed nothing and is not audited.
    assert_eq!(
        actions,
        ["land", "land", "land", "land", "land", "promote"],
        "{r:?}",
        r = r.stdout
    );
    let promote = &rows[5];
    assert_eq!(promote["outcome"], "ok");
    let changed: Vec<&str> = promote["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["table"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&"trusted.attendance"), "{changed:?}");
    assert!(changed.contains(&"raw.attendance"), "{changed:?}");
    let land = &rows[0];
    assert_eq!(land["changes"][0]["table"], "landing/courses");
    assert!(!land["actor"].as_str().unwrap().is_empty());
    // Filters, and SQL over ops.audit.
    let only = p.ok(&[
        "audit", "--action", "promote", "--since", "1d", "--format", "json",
    ]);
    let only: Vec<serde_json::Value> = serde_json::from_str(&only.stdout).unwrap();
    assert_eq!(only.len(), 1);
    let sql = p.ok(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM ops.audit",
    ]);
    assert!(sql.stdout.contains('6'), "{}", sql.stdout);
}

/// The pseudonym the project's key gives `id`.
fn pseudonym(p: &TestProject, id: &str) -> String {
    use medallion::crypto::{KeyProvider, LocalKeyRing};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(LocalKeyRing::new(p.path(".medallion/keyring.json")).pseudonymization_key())
        .unwrap()
        .pseudonym(id)
}

/// The e-mail the generated roster gives `id`.
fn email_of(inbox: &std::path::Path, id: &str) -> String {
    let text = std::fs::read_to_string(inbox.join("students.csv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{id},")))
        .unwrap();
    line.split(',').nth(3).unwrap().to_string()
}

/// Every file under `dir` whose bytes contain one of `needles` (case-insensitive).
fn files_containing(dir: &std::path::Path, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
            for n in needles {
                let n = n.to_ascii_lowercase();
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    hits.push(format!("{} holds {n}", path.display()));
                }
            }
        }
    }
    hits
}

fn landing_lines(p: &TestProject, dataset: &str) -> u64 {
    std::fs::read_dir(p.path("lake/landing").join(dataset))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "csv"))
        .map(|f| crate::harness::data_lines(&f))
        .sum()
}

#[test]
fn forget_erases_a_student_everywhere_history_included() {
    let p = TestProject::new();
    let inbox = p.generate(30, 12, 0.03);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let id = "S000007";
    let needles = vec![id.to_string(), email_of(&inbox, id), pseudonym(&p, id)];
    assert!(
        !files_containing(&p.path("lake"), &needles).is_empty(),
        "the student is in the lake before"
    );
    let versions = p.status();

    // A dry run lists what would go and writes nothing.
    let dry = p.ok(&["forget", "--student", id, "--dry-run", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert!(
        plan["tables"]["trusted.attendance"].as_u64().unwrap() > 0,
        "{plan}"
    );
    assert!(
        plan["tables"]["curated.at_risk_students"].as_u64().unwrap() > 0,
        "{plan}"
    );
    assert!(!plan["landing"].as_array().unwrap().is_empty());
    assert_eq!(p.status(), versions, "a dry run wrote something");

    p.ok(&["forget", "--student", id]);
    let left = files_containing(&p.path("lake"), &needles);
    assert!(left.is_empty(), "the student survives: {left:#?}");
    let (code, _) = scan_json(&p);
    assert_eq!(code, 0);
    // No earlier version can be read back.
    let r = p.run(&[
        "query",
        "--as-of",
        "0",
        "SELECT count(*) FROM trusted.attendance",
    ]);
    assert_ne!(r.code, 0, "time travel still works: {}", r.stdout);
    // The books balance with the erasure: landing lines now = raw rows + rejects.
    for ds in ["attendance", "grades", "students"] {
        assert_eq!(
            landing_lines(&p, ds),
            p.rows("raw", ds) + p.rows("raw", &format!("{ds}_rejects")),
            "{ds}"
        );
    }
    let books = p.ok(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM ops.promotions WHERE step = 'forget'",
    ]);
    assert!(
        !books.stdout.contains("\n0\n"),
        "erasure recorded: {}",
        books.stdout
    );
    // Idempotent: nothing left to do, nothing promoted again.
    let again = p.ok(&["forget", "--student", id]);
    assert!(
        again.stdout.contains("Nothing in the lake mentions"),
        "{}",
        again.stdout
    );
    let noop = p.ok(&["promote", "--all"]);
    assert!(
        noop.stdout.contains("Nothing to promote"),
        "{}",
        noop.stdout
    );
    // The audit names the erasure without the student.
    let trail = p.ok(&["audit", "--action", "forget", "--format", "json"]);
    assert!(trail.stdout.contains("\"forget\""), "{}", trail.stdout);
    assert!(files_containing(&p.path("lake"), &needles).is_empty());

    // A later export that mentions the student is held in quarantine, not re-admitted.
    let export = std::fs::read(crate::harness::export_of(&inbox, "attendance")).unwrap();
    let export = String::from_utf8_lossy(&export);
    let header = export.lines().next().unwrap();
    let later = p.path("later");
    std::fs::create_dir_all(&later).unwrap();
    let file = later.join("attendance_later.csv");
    std::fs::write(&file, format!("{header}\nAX1,{id},N,n@x.edu,MAT101,01,2026-09-08,present,50,T1,2026-09-08T10:00:00Z\nAX2,S000008,N,n@x.edu,MAT101,01,2026-09-08,present,50,T1,2026-09-08T10:00:00Z\n")).unwrap();
    p.ok(&["land", "attendance", file.to_str().unwrap()]);
    let r = p.ok(&["promote", "attendance", "--to", "trusted"]);
    assert!(r.stdout.contains("forgotten_student"), "{}", r.stdout);
    let q = p
        .read(
            "trusted",
            "attendance_quarantine",
            "SELECT _rule_ids FROM t WHERE record_id = 'AX1'",
        )
        .unwrap();
    assert_eq!(crate::harness::strings(&q), ["forgotten_student"]);
}

#[test]
fn forget_crashed_at_any_point_completes_on_rerun() {
    for point in [
        "after-books",
        "after-tables",
        "after-curated",
        "after-landing",
    ] {
        let p = TestProject::new();
        let inbox = p.generate(15, 6, 0.0);
        p.land_all(&inbox);
        p.ok(&["promote", "--all"]);
        let id = "S000003";
        let needles = vec![id.to_string(), email_of(&inbox, id), pseudonym(&p, id)];
        let crashed = p.run_env(
            &["forget", "--student", id],
            &[("MEDALLION_CRASH_AT", &format!("forget:{point}"))],
        );
        assert_ne!(crashed.code, 0, "{point}: the crash hook did not fire");
        p.ok(&["forget", "--student", id]);
        let left = files_containing(&p.path("lake"), &needles);
        assert!(left.is_empty(), "{point}: {left:#?}");
        let noop = p.ok(&["promote", "--all"]);
        assert!(
            noop.stdout.contains("Nothing to promote"),
            "{point}: {}",
            noop.stdout
        );
    }
}
