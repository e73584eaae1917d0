//! `medallion evaluate at-risk` on the OULAD slice shipped in tests/data/oulad/evaluate (100
//! students of AAA 2013J, activity to day 70; CC BY 4.0, see tests/data/oulad/SOURCE.md): the
//! population and the one-line rules agree with a count straight from the CSVs, and nothing
//! dated after the day changes the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::BIN;

fn slice() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oulad/evaluate")
}

fn read(dir: &Path, name: &str) -> Vec<BTreeMap<String, String>> {
    crate::harness::csv_maps(&dir.join(name))
}

/// Runs `evaluate at-risk` outside any project (the OULAD template's settings).
fn evaluate(data: &Path, day: i64, format: &str) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(cwd.path())
        .args(["evaluate", "at-risk", "--as-of-day", &day.to_string()])
        .arg("--data")
        .arg(data)
        .args(["--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn evaluate_at_risk_on_the_shipped_slice() {
    let day = 56;
    let j: serde_json::Value = serde_json::from_str(&evaluate(&slice(), day, "json")).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    assert_eq!(rows[0]["presentation"], "AAA-2013J");
    assert_eq!(rows[1]["presentation"], "overall");
    // Straight from the CSVs: who is on the list on day 56, who is positive.
    let unreg: BTreeSet<String> = read(&slice(), "studentRegistration.csv")
        .into_iter()
        .filter(|r| {
            r["date_unregistration"]
                .parse::<i64>()
                .is_ok_and(|d| d <= day)
        })
        .map(|r| r["id_student"].clone())
        .collect();
    let info = read(&slice(), "studentInfo.csv");
    let on_list: Vec<&BTreeMap<String, String>> = info
        .iter()
        .filter(|r| !unreg.contains(&r["id_student"]))
        .collect();
    let positives = on_list
        .iter()
        .filter(|r| r["final_result"] == "Fail" || r["final_result"] == "Withdrawn")
        .count();
    let r = &rows[0];
    assert_eq!(f(&r["students"]) as usize, on_list.len());
    assert_eq!(f(&r["apart"]["withdrawn_by_day"]) as usize, unreg.len());
    assert_eq!(f(&r["positives"]) as usize, positives);
    // "No activity in the last 14 days": no VLE row dated 43..=56.
    let active: BTreeSet<String> = read(&slice(), "studentVle_AAA_2013J.csv")
        .into_iter()
        .filter(|v| (day - 13..=day).contains(&v["date"].parse::<i64>().unwrap()))
        .map(|v| v["id_student"].clone())
        .collect();
    let idle = on_list
        .iter()
        .filter(|r| !active.contains(&r["id_student"]))
        .count();
    assert_eq!(
        f(&r["no_activity_14_days"]["rule"]["flagged"]) as usize,
        idle
    );
    // "Missed an assessment that was due": an assessment dated <= 56 without a submission
    // dated <= 56.
    let due: Vec<String> = read(&slice(), "assessments.csv")
        .into_iter()
        .filter(|a| a["date"].parse::<i64>().is_ok_and(|d| d <= day))
        .map(|a| a["id_assessment"].clone())
        .collect();
    let submitted: BTreeSet<(String, String)> = read(&slice(), "studentAssessment.csv")
        .into_iter()
        .filter(|s| s["date_submitted"].parse::<i64>().unwrap() <= day)
        .map(|s| (s["id_assessment"].clone(), s["id_student"].clone()))
        .collect();
    let missed = on_list
        .iter()
        .filter(|r| {
            due.iter()
                .any(|a| !submitted.contains(&(a.clone(), r["id_student"].clone())))
        })
        .count();
    assert_eq!(
        f(&r["missed_due_assessment"]["rule"]["flagged"]) as usize,
        missed
    );
    // The model's list: a real signal, no sign of leakage, a usable `high` list.
    let auc = f(&r["auc"]);
    assert!((0.6..=0.95).contains(&auc), "auc {auc}");
    let high = f(&r["high"]["share"]);
    assert!(high > 0.0 && high < 0.4, "high share {high}");
    assert!(f(&r["high_or_medium"]["flagged"]) >= f(&r["high"]["flagged"]));
    // The text table has the same rows.
    let text = evaluate(&slice(), day, "text");
    assert!(
        text.contains("AAA-2013J") && text.contains("overall"),
        "{text}"
    );
}

#[test]
fn evaluate_uses_nothing_dated_after_the_day() {
    // The same slice with everything after day 40 changed: activity after day 40 dropped,
    // later submissions rescored to 0, later unregistrations moved.
    let day = 40;
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "courses.csv",
        "assessments.csv",
        "studentInfo.csv",
        "studentRegistration.csv",
        "studentAssessment.csv",
        "studentVle_AAA_2013J.csv",
    ] {
        let mut rows = read(&slice(), name);
        let header: Vec<String> = csv::Reader::from_path(slice().join(name))
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        let later = |r: &BTreeMap<String, String>, k: &str| {
            r.get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|d| d > day)
        };
        match name {
            "studentVle_AAA_2013J.csv" => rows.retain(|r| !later(r, "date")),
            "studentAssessment.csv" => rows
                .iter_mut()
                .filter(|r| later(r, "date_submitted"))
                .for_each(|r| {
                    r.insert("score".into(), "0".into());
                }),
            "studentRegistration.csv" => rows
                .iter_mut()
                .filter(|r| later(r, "date_unregistration"))
                .for_each(|r| {
                    r.insert("date_unregistration".into(), "200".into());
                }),
            _ => {}
        }
        let mut w = csv::Writer::from_path(dir.path().join(name)).unwrap();
        w.write_record(&header).unwrap();
        for r in rows {
            w.write_record(header.iter().map(|h| r[h].as_str()))
                .unwrap();
        }
        w.flush().unwrap();
    }
    assert_eq!(
        evaluate(&slice(), day, "json"),
        evaluate(dir.path(), day, "json")
    );
}

#[test]
fn init_template_oulad_sets_the_open_university_pass_mark() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--template", "oulad"])
        .arg(dir.path().join("oulad-lake"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let products = std::fs::read_to_string(
        dir.path()
            .join("oulad-lake/pipelines/curated/products.yaml"),
    )
    .unwrap();
    assert!(products.contains("default: 40"), "{products}");
    let bad = Command::new(BIN)
        .args(["init", "--template", "nope"])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
