//! Quality reports (text, json, html checked in headless Chromium) and quarantine release.

use crate::harness::{defects, TestProject};

fn two_batches() -> TestProject {
    let p = TestProject::new();
    let inbox = p.generate(40, 7, 0.03);
    p.land_all(&inbox);
    p.ok(&["promote", "--all", "--to", "trusted"]);
    let inbox2 = p.generate_into("inbox2", 40, 7, 0.08, 3, Some("2026-09-21"));
    p.ok(&["land", "attendance", inbox2.to_str().unwrap()]);
    p.ok(&["promote", "attendance", "--to", "trusted"]);
    p
}

#[test]
fn report_compares_with_the_previous_batch_in_every_format() {
    let p = two_batches();
    let text = p.ok(&["report", "attendance"]).stdout;
    assert!(text.contains("compared with b000001-"), "{text}");
    assert!(
        text.contains("↑"),
        "more defects in batch 2 should show as ↑: {text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&p.ok(&["report", "attendance", "--format", "json"]).stdout).unwrap();
    assert!(json["batch_id"].as_str().unwrap().starts_with("b000002-"));
    let rules = json["rules"].as_array().unwrap();
    let first = &rules[0];
    assert_eq!(first["outcome"], "quarantined", "worst first: {first}");
    assert!(first["pass_rate_history"].as_array().unwrap().len() == 2);
    assert!(rules.iter().any(|r| r["trend"] == "up"));
    let t = &json["trusted"];
    assert_eq!(
        t["rows_in"].as_u64().unwrap(),
        t["rows_promoted"].as_u64().unwrap()
            + t["quarantined"].as_u64().unwrap()
            + t["duplicates_dropped"].as_u64().unwrap()
    );
    // An earlier batch by id.
    let b1 = p
        .ok(&[
            "report",
            "attendance",
            "--format",
            "json",
            "--batch",
            json["previous_batch"].as_str().unwrap(),
        ])
        .stdout;
    assert!(b1.contains("\"previous_batch\": null"), "{b1}");
    let bad = p.run(&["report", "attendance", "--batch", "b999"]);
    assert_eq!(bad.code, 2);

    let html_path = p.path("report.html");
    p.ok(&[
        "report",
        "attendance",
        "--format",
        "html",
        "--output",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page must be self-contained"
    );
    assert_eq!(html.matches("<svg class=\"chart\"").count(), rules.len());
    assert!(html.contains("sample failing rows"));
    assert!(
        !regex::Regex::new(r"S\d{6}").unwrap().is_match(&html),
        "identifiers in clear in the report"
    );
    check_in_chromium(&html_path, rules.len());
}

/// Renders the page in headless Chromium, keeps a screenshot in the test output folder and
/// checks the charts were rendered into the DOM. Chromium is required when
/// MEDALLION_REQUIRE_CHROMIUM=1 (CI installs it); otherwise a missing browser is reported.
fn check_in_chromium(page: &std::path::Path, charts: usize) {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(bin) = bin else {
        assert!(
            std::env::var("MEDALLION_REQUIRE_CHROMIUM").is_err(),
            "Chromium is required but not installed"
        );
        eprintln!("NOTE: Chromium not installed; the HTML report was checked without a browser");
        return;
    };
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quality-report");
    std::fs::create_dir_all(&out_dir).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let url = format!("file://{}", page.display());
    let shot = out_dir.join("report.png");
    let status = std::process::Command::new(bin)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1400,1200")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "empty screenshot"
    );
    let dom = std::process::Command::new(bin)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg class=\"chart\"").count(),
        charts,
        "charts rendered in the DOM"
    );
    assert!(
        dom.matches("<circle").count() >= charts * 2,
        "each chart has a point per batch"
    );
    eprintln!("Screenshot of the quality report: {}", shot.display());
}

#[test]
fn quarantine_lists_and_release_repromotes_exactly_once() {
    let p = TestProject::new();
    let inbox = p.generate(40, 7, 0.05);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let sessions = |p: &TestProject| {
        p.read(
            "curated",
            "student_course_attendance",
            "SELECT CAST(sum(sessions) AS BIGINT) AS n FROM t",
        )
        .unwrap()
        .column("n")
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap()
    };
    let before = sessions(&p);
    let tardy = defects(&inbox)
        .iter()
        .filter(|d| d.kind == "status_outside_set")
        .count() as u64;
    assert!(tardy > 0);
    let listed = p
        .ok(&[
            "quarantine",
            "attendance",
            "--rule",
            "contract.status.allowed_values",
        ])
        .stdout;
    assert!(
        listed.starts_with(&format!("{tardy} quarantined row(s)")),
        "{listed}"
    );
    assert!(listed.contains("status=tardy"), "{listed}");
    let trusted = p.rows("trusted", "attendance");
    let quarantined = p.rows("trusted", "attendance_quarantine");

    // Nothing changed yet: nothing to release.
    let r = p.ok(&["quarantine", "release", "attendance"]).stdout;
    assert!(r.contains("0 now pass"), "{r}");
    // The office confirms `tardy` is a real status: the contract changes, the rows come back.
    let contract = p.path("contracts/attendance.yaml");
    let text = std::fs::read_to_string(&contract).unwrap().replace(
        "value: [present, absent, late, excused]",
        "value: [present, absent, late, excused, tardy]",
    );
    std::fs::write(&contract, text).unwrap();
    let r = p.ok(&["quarantine", "release", "attendance"]).stdout;
    assert!(
        r.contains(&format!("{tardy} now pass ({tardy} new in trusted")),
        "{r}"
    );
    assert_eq!(p.rows("trusted", "attendance"), trusted + tardy);
    assert_eq!(
        p.rows("trusted", "attendance_quarantine"),
        quarantined - tardy
    );
    let again = p.ok(&["quarantine", "release", "attendance"]).stdout;
    assert!(again.contains("0 now pass"), "{again}");
    assert_eq!(p.rows("trusted", "attendance"), trusted + tardy);
    let still = p
        .ok(&[
            "quarantine",
            "attendance",
            "--rule",
            "contract.status.allowed_values",
        ])
        .stdout;
    assert!(still.starts_with("0 quarantined row(s)"), "{still}");
    // Curated takes the released rows in like a batch, once.
    let r = p.ok(&["promote", "--all"]).stdout;
    assert!(r.contains("student_course_attendance"), "{r}");
    assert!(sessions(&p) > before);
    let again = p.ok(&["promote", "--all"]).stdout;
    assert!(again.contains("Nothing to promote"), "{again}");
}

#[test]
fn rules_check_reports_every_problem_with_location() {
    let p = TestProject::new();
    p.ok(&["rules", "check"]);
    let rules = p.path("quality_rules/courses.yaml");
    let text = std::fs::read_to_string(&rules)
        .unwrap()
        .replace("column: title, min: 3", "column: titel, min: 3")
        .replace("column: term, min: 1", "column: term, colour: red, min: 1");
    std::fs::write(&rules, text).unwrap();
    let r = p.run(&["rules", "check"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("quality_rules/courses.yaml:"),
        "{}",
        r.stderr
    );
    let r2 = {
        let text = std::fs::read_to_string(&rules)
            .unwrap()
            .replace("colour: red, ", "");
        std::fs::write(&rules, text).unwrap();
        p.run(&["rules", "check"])
    };
    assert_eq!(r2.code, 2);
    assert!(
        r2.stderr.contains("unknown column `titel`"),
        "{}",
        r2.stderr
    );
}

#[test]
fn profile_and_suggested_rules_are_usable() {
    let p = TestProject::new();
    let inbox = p.generate(30, 14, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "--all", "--to", "trusted"]);
    let prof: serde_json::Value =
        serde_json::from_str(&p.ok(&["profile", "grades", "--format", "json"]).stdout).unwrap();
    let cols = prof["columns"].as_array().unwrap();
    let score = cols.iter().find(|c| c["name"] == "score").unwrap();
    assert!(score["mean"].as_f64().is_some() && score["histogram"].as_array().unwrap().len() == 10);
    let t = cols
        .iter()
        .find(|c| c["name"] == "assessment_type")
        .unwrap();
    assert!(t["distinct"].as_u64().unwrap() <= 4);
    let raw = p.ok(&["profile", "attendance", "--stage", "raw"]).stdout;
    assert!(raw.starts_with("raw.attendance:"), "{raw}");
    // The suggestion is a valid rules file: it replaces the shipped one and everything still passes.
    let out = p.path("suggested.yaml");
    p.ok(&[
        "rules",
        "suggest",
        "grades",
        "--output",
        out.to_str().unwrap(),
    ]);
    std::fs::copy(&out, p.path("quality_rules/grades.yaml")).unwrap();
    let check = p.ok(&["rules", "check"]).stdout;
    assert!(
        check.contains("All contracts, rules and pipelines are valid."),
        "{check}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("suggested.assessment_type.accepted_values"),
        "{text}"
    );
    assert!(
        !text.contains("column: student_id, regex"),
        "no pattern on pseudonyms: {text}"
    );
    // Suggestions for raw and for a curated product go under their own sections, with ids
    // that cannot collide with the trusted ones, and are valid there too.
    p.ok(&["promote", "--all"]);
    let raw = p
        .ok(&["rules", "suggest", "attendance", "--stage", "raw"])
        .stdout;
    assert!(
        raw.contains("\nraw:\n") && raw.contains("suggested.raw."),
        "{raw}"
    );
    std::fs::write(p.path("quality_rules/attendance.yaml"), &raw).unwrap();
    let product = p
        .ok(&["rules", "suggest", "course_summary", "--stage", "curated"])
        .stdout;
    assert!(product.contains("\ncurated:\n"), "{product}");
    std::fs::write(p.path("quality_rules/course_summary.yaml"), &product).unwrap();
    let check = p.ok(&["rules", "check"]).stdout;
    assert!(check.contains("course_summary:"), "{check}");
    assert!(
        check.contains("All contracts, rules and pipelines are valid."),
        "{check}"
    );
}

#[test]
fn raw_and_curated_rules_warn_or_stop_before_any_commit() {
    let p = TestProject::new();
    let inbox = p.generate(12, 3, 0.0);
    p.land_all(&inbox);

    // Curated: a failing `fail` rule on one product stops the curated step: trusted is
    // committed, no product is (every product is judged before any is written, so the
    // products never disagree with each other).
    let product_rules = p.path("quality_rules/at_risk_students.yaml");
    let shipped = std::fs::read_to_string(&product_rules).unwrap();
    std::fs::write(
        &product_rules,
        format!("{shipped}  - id: at_risk.test_nobody_attends\n    description: Test rule that fails on any real attendance.\n    check: {{range: {{column: attendance_rate, max: 0.01}}}}\n    severity: fail\n"),
    )
    .unwrap();
    let r = p.run(&["promote", "--all"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("at_risk.test_nobody_attends") && r.stderr.contains("curated"),
        "{}",
        r.stderr
    );
    assert!(p.rows("trusted", "attendance") > 0);
    assert_eq!(p.version("curated", "student_course_attendance"), None);
    assert_eq!(p.version("curated", "at_risk_students"), None);
    std::fs::write(&product_rules, &shipped).unwrap();
    p.ok(&["promote", "--all"]);
    let report: serde_json::Value = serde_json::from_str(
        &p.ok(&["report", "at_risk_students", "--format", "json"])
            .stdout,
    )
    .unwrap();
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 7, "{report}");
    assert!(rules
        .iter()
        .all(|r| r["stage"] == "curated" && r["outcome"] == "passed"));

    // Raw: an export whose header drifted. With the schema rule at `fail`, landing→raw stops
    // before any commit; at `warn` every line is rejected and the rule reports the drift.
    let drifted = p.path("attendance_drifted.csv");
    std::fs::write(
        &drifted,
        "record_id,student_id,student_name,student_email,course_id,section,session_date,status,minutes_attended,recorded_by,recorded_at,teacher_note\nr-1,S1,A,a@b.edu,C1,1,2026-09-08,present,50,T1,2026-09-08T10:00:00Z,hello\n",
    )
    .unwrap();
    p.ok(&["land", "attendance", drifted.to_str().unwrap()]);
    let rules_path = p.path("quality_rules/attendance.yaml");
    let warn = std::fs::read_to_string(&rules_path).unwrap();
    let fail = warn.replacen(
        "check: {schema_match: {}}\n    severity: warn",
        "check: {schema_match: {}}\n    severity: fail",
        1,
    );
    assert_ne!(fail, warn);
    std::fs::write(&rules_path, &fail).unwrap();
    let versions = |p: &TestProject| {
        [
            p.version("raw", "attendance"),
            p.version("raw", "attendance_rejects"),
            p.version("_ops", "quality_results"),
            p.version("_ops", "promotions"),
        ]
    };
    let before = versions(&p);
    let r = p.run(&["promote", "attendance"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("attendance.header_matches_contract")
            && r.stderr.contains("in attendance_drifted.csv")
            && r.stderr.contains("nothing was committed"),
        "{}",
        r.stderr
    );
    assert_eq!(versions(&p), before);
    std::fs::write(&rules_path, &warn).unwrap();
    // At `warn`, every line is a reject: the batch is held (exit 1, nothing written) until
    // accepted, and then its lines are kept as rejects.
    let held = p.run(&["promote", "attendance"]);
    assert_eq!(held.code, 1, "{}\n{}", held.stdout, held.stderr);
    assert!(held.stdout.contains("HELD"), "{}", held.stdout);
    assert_eq!(versions(&p), before);
    let r = p.ok(&["promote", "attendance", "--accept-held"]);
    assert!(
        r.stdout.contains("attendance.header_matches_contract") && r.stdout.contains("warned"),
        "{}",
        r.stdout
    );
    let report: serde_json::Value = serde_json::from_str(
        &p.ok(&["report", "attendance", "--stage", "raw", "--format", "json"])
            .stdout,
    )
    .unwrap();
    let rules = report["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| r["stage"] == "raw"), "{report}");
    let header = rules
        .iter()
        .find(|r| r["rule_id"] == "attendance.header_matches_contract")
        .unwrap();
    assert_eq!(header["failed"], 1);
    assert_eq!(header["metric"], 1.0, "one unexpected column");
}

#[test]
fn quarantine_purge_removes_old_rows_and_their_files() {
    let p = TestProject::new();
    let inbox = p.generate(12, 3, 0.05);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let quarantined = p.rows("trusted", "attendance_quarantine");
    let trusted = p.rows("trusted", "attendance");
    assert!(quarantined > 0);
    // Within the retention period nothing goes.
    let r = p.ok(&["quarantine", "purge", "attendance"]);
    assert!(r.stdout.contains("0 quarantined rows"), "{}", r.stdout);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), quarantined);

    // Forty days on, rows landed more than 30 days before are purged: a dry run first.
    let later = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let env = [("MEDALLION_NOW", later.as_str())];
    let version = p.version("trusted", "attendance_quarantine");
    let dry = p.run_env(
        &[
            "quarantine",
            "purge",
            "attendance",
            "--older-than-days",
            "30",
            "--dry-run",
        ],
        &env,
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("{quarantined} quarantined rows landed before")),
        "{}",
        dry.stdout
    );
    assert_eq!(p.version("trusted", "attendance_quarantine"), version);
    let purge = &[
        "quarantine",
        "purge",
        "attendance",
        "--older-than-days",
        "30",
    ];
    let r = p.run_env(purge, &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("purged ("), "{}", r.stdout);
    assert_eq!(p.rows("trusted", "attendance_quarantine"), 0);
    assert_eq!(p.rows("trusted", "attendance"), trusted);
    // The rows' files are gone from disk, not only from the current version.
    let dir = p.path("lake/trusted/attendance_quarantine");
    let parquet = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "parquet")
        })
        .count();
    assert_eq!(parquet, 0);
    // The books say so, once, and the catalog is current.
    let again = p.run_env(purge, &env);
    assert!(
        again.stdout.contains("0 quarantined rows"),
        "{}",
        again.stdout
    );
    let books = p
        .read(
            "_ops",
            "promotions",
            "SELECT rows_in, quarantined FROM t WHERE step = 'quarantine-purge'",
        )
        .unwrap();
    assert_eq!(books.height(), 1);
    assert_eq!(
        books.column("rows_in").unwrap().i64().unwrap().get(0),
        Some(quarantined as i64)
    );
    let status = p.status();
    let q = status
        .iter()
        .find(|e| e["table"] == "trusted.attendance_quarantine")
        .unwrap();
    assert_eq!(q["rows"], 0);
}
