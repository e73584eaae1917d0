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
