//! Generate with defects, land, promote to trusted, read everything back.

use std::collections::HashSet;

use crate::harness::{data_lines, defects, strings, TestProject};

fn export_name(inbox: &std::path::Path, prefix: &str) -> String {
    std::fs::read_dir(inbox)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with(prefix))
        .unwrap()
}

#[test]
fn books_balance_and_every_defect_is_caught_by_the_right_rule() {
    let p = TestProject::new();
    let inbox = p.generate(60, 14, 0.04);
    p.land_all(&inbox);
    let run = p.ok(&["promote", "--all", "--to", "trusted"]);
    assert!(run.stdout.contains("books balance"), "{}", run.stdout);
    assert!(!run.stdout.contains("DO NOT BALANCE"), "{}", run.stdout);
    let all_defects = defects(&inbox);
    assert!(
        all_defects.len() > 20,
        "too few defects to mean anything: {}",
        all_defects.len()
    );

    for ds in ["attendance", "grades"] {
        let file = export_name(&inbox, ds);
        let landing = data_lines(&inbox.join(&file));
        let raw = p.rows("raw", ds);
        let rejects = p.rows("raw", &format!("{ds}_rejects"));
        let trusted = p.rows("trusted", ds);
        let quarantined = p.rows("trusted", &format!("{ds}_quarantine"));
        assert_eq!(landing, raw + rejects, "{ds}: landing = raw + rejects");
        let mine: Vec<_> = all_defects.iter().filter(|d| d.file == file).collect();
        let dups = mine.iter().filter(|d| d.expect == "duplicate").count() as u64;
        assert_eq!(
            raw,
            trusted + quarantined + dups,
            "{ds}: raw = trusted + quarantined + duplicates"
        );

        let rej = p
            .read(
                "raw",
                &format!("{ds}_rejects"),
                "SELECT _source_file, _source_line, error_kind FROM t",
            )
            .unwrap();
        let rej_set: HashSet<(String, i64, String)> = (0..rej.height())
            .map(|i| {
                let s = |c: &str| {
                    rej.column(c)
                        .unwrap()
                        .str()
                        .unwrap()
                        .get(i)
                        .unwrap()
                        .to_string()
                };
                (
                    s("_source_file"),
                    rej.column("_source_line")
                        .unwrap()
                        .i64()
                        .unwrap()
                        .get(i)
                        .unwrap(),
                    s("error_kind"),
                )
            })
            .collect();
        let q = p
            .read(
                "trusted",
                &format!("{ds}_quarantine"),
                "SELECT _source_line, _rule_ids, _failures FROM t",
            )
            .unwrap();
        let lines = q.column("_source_line").unwrap().i64().unwrap();
        let ids = q.column("_rule_ids").unwrap().str().unwrap();
        let failures = q.column("_failures").unwrap().str().unwrap();
        for d in &mine {
            if let Some(kind) = d.expect.strip_prefix("reject:") {
                assert!(
                    rej_set.contains(&(file.clone(), d.line as i64, kind.to_string())),
                    "{ds}: {d:?} not rejected as {kind}"
                );
            } else if let Some(rule) = d.expect.strip_prefix("quarantine:") {
                let hit = (0..q.height()).find(|&i| lines.get(i) == Some(d.line as i64));
                let i = hit.unwrap_or_else(|| panic!("{ds}: {d:?} not quarantined"));
                let row_ids: Vec<&str> = ids.get(i).unwrap().split(',').collect();
                assert!(
                    row_ids.contains(&rule),
                    "{ds}: {d:?} quarantined for {row_ids:?}"
                );
                assert!(
                    failures.get(i).unwrap().contains(rule),
                    "{ds}: failures name the rule"
                );
            }
        }
        // Nothing is quarantined or rejected that was not injected.
        let injected_q = mine
            .iter()
            .filter(|d| d.expect.starts_with("quarantine:"))
            .count() as u64;
        let injected_r = mine
            .iter()
            .filter(|d| d.expect.starts_with("reject:"))
            .count() as u64;
        assert_eq!(quarantined, injected_q, "{ds}: unexpected quarantined rows");
        assert_eq!(rejects, injected_r, "{ds}: unexpected rejects");
    }

    // The books are kept as history too.
    let books = p
        .read(
            "_ops",
            "promotions",
            "SELECT * FROM t WHERE dataset = 'attendance'",
        )
        .unwrap();
    assert_eq!(books.height(), 2);
}

#[test]
fn no_identifier_in_clear_past_landing() {
    let p = TestProject::new();
    let inbox = p.generate(30, 7, 0.05);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let clear_id = regex::Regex::new(r"S\d{6}").unwrap();
    let mut checked = 0;
    for (stage, table) in [
        ("raw", "attendance"),
        ("raw", "students"),
        ("raw", "grades"),
        ("raw", "courses"),
        ("trusted", "attendance"),
        ("trusted", "attendance_quarantine"),
        ("trusted", "students"),
        ("trusted", "courses"),
        ("trusted", "grades_quarantine"),
    ] {
        let Some(df) = p.read(stage, table, "SELECT * FROM t") else {
            continue;
        };
        for v in strings(&df) {
            checked += 1;
            assert!(
                !clear_id.is_match(&v),
                "{stage}.{table}: student id in clear: {v}"
            );
            assert!(
                !v.contains("students.school.edu") || v.starts_with("***@"),
                "{stage}.{table}: email in clear: {v}"
            );
            assert!(
                !v.contains("@school.edu") || v.starts_with("***@"),
                "{stage}.{table}: staff email in clear: {v}"
            );
        }
        for col in ["student_name", "student_email", "first_name", "last_name"] {
            assert!(df.column(col).is_err(), "{stage}.{table} has {col}");
        }
    }
    assert!(checked > 1000);
    // Pseudonyms join across datasets: every trusted attendance student is on the roster.
    let att = p
        .read("trusted", "attendance", "SELECT DISTINCT student_id FROM t")
        .unwrap();
    let roster = p
        .read("trusted", "students", "SELECT student_id FROM t")
        .unwrap();
    let roster: HashSet<String> = strings(&roster).into_iter().collect();
    assert!(strings(&att).iter().all(|s| roster.contains(s)));
}

#[test]
fn corrections_in_a_later_export_replace_older_records_only() {
    let p = TestProject::new();
    let inbox = p.generate(20, 7, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "attendance", "students", "courses"]);
    let before = p.rows("trusted", "attendance");
    let file = export_name(&inbox, "attendance");
    let text = std::fs::read_to_string(inbox.join(&file)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<Vec<String>> = lines
        .take(3)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    // Two newer corrections (excused, recorded later) and one stale one (recorded earlier).
    let mut out = format!("{header}\n");
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        r[7] = "excused".into();
        r[8] = "0".into();
        r[10] = if i < 2 {
            "2030-01-01T00:00:00Z".into()
        } else {
            "2000-01-01T00:00:00Z".into()
        };
        out.push_str(&r.join(","));
        out.push('\n');
    }
    let fix = p.path("attendance_fix.csv");
    std::fs::write(&fix, out).unwrap();
    p.ok(&["land", "attendance", fix.to_str().unwrap()]);
    // A dry run is the plan: the counts the real run books, read against trusted, nothing
    // written.
    p.ok(&["promote", "attendance", "--to", "raw"]);
    let version = p.version("trusted", "attendance");
    let dry = p.ok(&[
        "promote",
        "attendance",
        "--to",
        "trusted",
        "--dry-run",
        "--format",
        "json",
    ]);
    let dry: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    let d = &dry["trusted"][0];
    assert_eq!(
        (
            d["inserted"].as_u64(),
            d["updated"].as_u64(),
            d["stale"].as_u64(),
            d["committed"].as_bool()
        ),
        (Some(0), Some(2), Some(1), Some(false)),
        "{dry:#}"
    );
    assert_eq!(p.version("trusted", "attendance"), version);
    let run = p.ok(&["promote", "attendance", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let t = &json["trusted"][0];
    assert_eq!(
        (
            t["inserted"].as_u64(),
            t["updated"].as_u64(),
            t["stale"].as_u64()
        ),
        (Some(0), Some(2), Some(1))
    );
    assert_eq!(t["duplicates_dropped"].as_u64(), Some(3));
    assert_eq!(p.rows("trusted", "attendance"), before);
    let df = p
        .read(
            "trusted",
            "attendance",
            &format!(
                "SELECT status FROM t WHERE record_id IN ('{}', '{}', '{}') ORDER BY record_id",
                rows[0][0], rows[1][0], rows[2][0]
            ),
        )
        .unwrap();
    let st: Vec<String> = crate::harness::strings(&df);
    assert_eq!(
        st.iter().filter(|s| *s == "excused").count(),
        2 + usize::from(rows[2][7] == "excused")
    );
}

#[test]
fn status_json_is_stable_and_complete() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let status = p.status();
    let keys: HashSet<&str> = [
        "dataset", "stage", "kind", "table", "location", "version", "rows",
    ]
    .into();
    for e in &status {
        let obj = e.as_object().unwrap();
        assert_eq!(obj.keys().map(String::as_str).collect::<HashSet<_>>(), keys);
        assert!(obj["location"].as_str().unwrap().starts_with("file://"));
    }
    let trusted_att = status
        .iter()
        .find(|e| e["table"] == "trusted.attendance")
        .unwrap();
    assert_eq!(
        trusted_att["rows"].as_u64(),
        Some(p.rows("trusted", "attendance"))
    );
    assert_eq!(trusted_att["kind"], "data");
    let text = p.ok(&["catalog", "trusted.attendance"]).stdout;
    assert!(
        text.contains("session_date") && text.contains("date"),
        "{text}"
    );
    assert!(text.contains("Lineage: line in the landing file"), "{text}");
}

#[test]
fn stage_binaries_run_one_step_each() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    let bin = |name: &str| std::path::Path::new(crate::harness::BIN).with_file_name(name);
    let out = std::process::Command::new(bin("landing-to-raw"))
        .args(["--project", p.root.to_str().unwrap(), "courses"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(p.rows("raw", "courses") > 0);
    assert_eq!(p.version("trusted", "courses"), None);
    let out = std::process::Command::new(bin("raw-to-trusted"))
        .args(["--project", p.root.to_str().unwrap(), "courses"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(p.rows("trusted", "courses"), p.rows("raw", "courses"));
    let help = std::process::Command::new(bin("raw-to-trusted"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--dry-run"));
}

fn table_bytes(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            n += table_bytes(&path);
        } else {
            n += std::fs::metadata(&path).unwrap().len();
        }
    }
    n
}

#[test]
fn cost_metrics_measure_what_was_written() {
    let p = TestProject::new();
    let inbox = p.generate(20, 12, 0.02);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let log = std::fs::read_to_string(p.path("lake/_metrics/metrics.jsonl")).unwrap();
    let metrics: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = |name: &str| -> f64 {
        metrics
            .iter()
            .filter(|m| m["name"] == name && !m["dimensions"].as_array().unwrap().is_empty())
            .map(|m| m["value"].as_f64().unwrap())
            .sum()
    };
    // Every byte of every Delta table (data files and logs) was counted, and nothing else:
    // landing files are written before any promotion. The audit trail is the command's own
    // record, written after the steps, and not attributed to one.
    let lake = p.path("lake");
    let written: u64 = ["raw", "trusted", "curated", "_ops"]
        .iter()
        .map(|s| table_bytes(&lake.join(s)))
        .sum::<u64>()
        - table_bytes(&lake.join("_ops/audit"));
    assert_eq!(total("BytesWritten") as u64, written);
    assert!(total("S3Requests") > 0.0);
    // Priced with catalog/prices.yaml, one step per dataset and stage (and product).
    let steps = metrics
        .iter()
        .filter(|m| {
            m["name"] == "EstimatedCostUSD" && m["dimensions"].as_array().unwrap().is_empty()
        })
        .count();
    // The alert rules' evaluation is priced too (it records what it saw, and the alerts it
    // changed).
    let alerts = 1;
    let products = crate::harness::PRODUCTS.len();
    // The curated step reads trusted once for all products, priced on its own.
    let shared_reads = 1;
    assert_eq!(
        steps,
        5 * 2 + products + shared_reads + alerts,
        "5 datasets × (raw, trusted) + every product + curated's reads (+ alerts)"
    );
    let usd = total("EstimatedCostUSD");
    assert!(usd > 0.0 && usd < 0.01, "{usd}");
    // Without a price table there are no cost metrics (and no error).
    std::fs::remove_file(p.path("catalog/prices.yaml")).unwrap();
    let inbox2 = p.path("more");
    std::fs::create_dir_all(&inbox2).unwrap();
    std::fs::write(
        inbox2.join("courses_extra.csv"),
        std::fs::read_to_string(inbox.join("courses.csv"))
            .unwrap()
            .replacen('\n', "\n\n", 1),
    )
    .unwrap();
    p.ok(&["land", "courses", inbox2.to_str().unwrap()]);
    p.ok(&["promote", "courses"]);
    let after = std::fs::read_to_string(p.path("lake/_metrics/metrics.jsonl")).unwrap();
    let new_lines = &after[log.len()..];
    assert!(new_lines.contains("RowsIn") && !new_lines.contains("EstimatedCostUSD"));
}
