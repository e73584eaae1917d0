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
    let inbox = p.generate(15, 3, 0.02);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance", "--to", "trusted"]);
    p.ok(&["promote", "attendance", "--to", "trusted", "--dry-run"]);
    let r = p.ok(&["audit", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    // Four lands and one promotion; the dry run changed nothing and is not audited.
    assert_eq!(
        actions,
        ["land", "land", "land", "land", "promote"],
        "{r:?}",
        r = r.stdout
    );
    let promote = &rows[4];
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
    assert!(sql.stdout.contains('5'), "{}", sql.stdout);
}
