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

#[test]
fn crash_and_rerun_equals_one_clean_run() {
    let clean = TestProject::new();
    let inbox = clean.generate(30, 5, 0.05);
    clean.land_all(&inbox);
    clean.ok(&["promote", "attendance"]);
    let want = counts(&clean);

    for point in [
        "landing-to-raw:after-rejects",
        "raw-to-trusted:after-quarantine",
        "raw-to-trusted:before-data",
    ] {
        let p = TestProject::new();
        let inbox = p.generate(30, 5, 0.05);
        p.land_all(&inbox);
        let crashed = p.run_env(&["promote", "attendance"], &[("MEDALLION_CRASH_AT", point)]);
        assert_ne!(crashed.code, 0, "{point}: the crash hook did not fire");
        p.ok(&["promote", "attendance"]);
        assert_eq!(counts(&p), want, "{point}: rerun differs from a clean run");
        let again = p.ok(&["promote", "attendance"]);
        assert!(again.stdout.contains("Nothing to promote"), "{point}");
    }
}
