//! Promoting twice writes nothing; landing twice is a no-op.

use crate::harness::TestProject;

#[test]
fn second_promotion_creates_no_new_table_version() {
    let p = TestProject::new();
    let inbox = p.generate(20, 5, 0.03);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let before = p.status();
    let again = p.ok(&["promote", "--all"]);
    assert!(
        again.stdout.contains("Nothing to promote"),
        "{}",
        again.stdout
    );
    assert_eq!(p.status(), before);
    let landed = p.ok(&["land", "attendance", inbox.to_str().unwrap()]);
    assert!(landed.stdout.contains("skipped"), "{}", landed.stdout);
    p.ok(&["promote", "--all"]);
    assert_eq!(p.status(), before);
}

#[test]
fn dry_run_writes_nothing() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    let r = p.ok(&["promote", "courses", "--to", "raw", "--dry-run"]);
    assert!(r.stdout.contains("dry run"), "{}", r.stdout);
    assert_eq!(p.version("raw", "courses"), None);
}

/// A dry run of raw → trusted reports the counts the real run then books, on a first load
/// judged in chunks (valid rows streamed) as on a whole one, and writes nothing.
#[test]
fn a_trusted_dry_run_counts_what_the_real_run_books() {
    for chunk in [None, Some(37)] {
        let p = TestProject::new();
        if let Some(rows) = chunk {
            p.set_trusted_chunk("attendance", rows);
        }
        let inbox = p.generate(30, 5, 0.05);
        p.land_all(&inbox);
        p.ok(&["promote", "courses", "students"]);
        p.ok(&["promote", "attendance", "--to", "raw"]);
        let args = [
            "promote",
            "attendance",
            "--to",
            "trusted",
            "--format",
            "json",
        ];
        let dry = p.ok(&[&args[..], &["--dry-run"]].concat());
        assert_eq!(p.version("trusted", "attendance"), None, "{chunk:?}");
        assert_eq!(p.version("trusted", "attendance_quarantine"), None);
        let real = p.ok(&args);
        let counts = |out: &str| -> Vec<Vec<Option<u64>>> {
            let v: serde_json::Value = serde_json::from_str(out).unwrap();
            v["trusted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    [
                        "raw_rows",
                        "quarantined",
                        "inserted",
                        "updated",
                        "stale",
                        "duplicates_dropped",
                    ]
                    .iter()
                    .map(|k| t[*k].as_u64())
                    .collect()
                })
                .collect()
        };
        let (planned, booked) = (counts(&dry.stdout), counts(&real.stdout));
        assert!(!booked.is_empty());
        assert!(booked.iter().all(|b| b[2] > Some(0)), "{booked:?}");
        assert_eq!(planned, booked, "{chunk:?}");
    }
}
