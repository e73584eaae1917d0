//! The engagement dataset (LMS activity): generated beside the other exports for the same
//! students, promoted like them, and its curated products checked against a computation straight
//! from the export.

use std::collections::{BTreeMap, BTreeSet};

use medallion::crypto::{KeyProvider, LocalKeyRing};

use crate::harness::TestProject;

#[test]
fn engagement_lands_promotes_and_feeds_the_products() {
    let p = TestProject::new();
    let inbox = p.generate(40, 21, 0.0);
    p.land_all(&inbox);
    p.ok(&["land", "engagement", inbox.to_str().unwrap()]);
    let run = p.ok(&["promote", "--all", "--to", "curated"]);
    assert!(
        run.stdout.contains("curated student_course_engagement"),
        "{}",
        run.stdout
    );
    let export = crate::harness::export_of(&inbox, "engagement");
    let mut r = csv::Reader::from_path(&export).unwrap();
    // student -> course -> (days, clicks); the course's last day.
    let mut seen: BTreeMap<(String, String), (BTreeSet<String>, i64)> = BTreeMap::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut rows = 0u64;
    for rec in r.records() {
        let rec = rec.unwrap();
        let e = seen
            .entry((rec[1].to_string(), rec[2].to_string()))
            .or_default();
        e.0.insert(rec[3].to_string());
        e.1 += rec[5].parse::<i64>().unwrap();
        let l = last.entry(rec[2].to_string()).or_default();
        if &rec[3] > l.as_str() {
            *l = rec[3].to_string();
        }
        rows += 1;
    }
    assert_eq!(
        p.rows("trusted", "engagement"),
        rows,
        "books: every row trusted"
    );
    // The roster's students, and only them.
    let students: BTreeSet<String> = seen.keys().map(|k| k.0.clone()).collect();
    assert!(students.iter().all(|s| s.starts_with('S')), "{students:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt
        .block_on(LocalKeyRing::new(p.path(".medallion/keyring.json")).pseudonymization_key())
        .unwrap();
    let df = p
        .read(
            "curated",
            "student_course_engagement",
            "SELECT student_id, course_id, active_days, clicks, days_since_active, engagement_score FROM t",
        )
        .unwrap();
    assert_eq!(df.height(), seen.len());
    let col = |c: &str| df.column(c).unwrap().clone();
    let (ids, courses) = (col("student_id"), col("course_id"));
    let (days, clicks, since, score) = (
        col("active_days"),
        col("clicks"),
        col("days_since_active"),
        col("engagement_score"),
    );
    let mut checked = 0;
    for ((s, c), (d, k)) in &seen {
        let pseud = key.pseudonym(s);
        let i = (0..df.height())
            .find(|&i| {
                ids.str().unwrap().get(i) == Some(pseud.as_str())
                    && courses.str().unwrap().get(i) == Some(c.as_str())
            })
            .unwrap_or_else(|| panic!("{s} {c} missing"));
        assert_eq!(days.i64().unwrap().get(i), Some(d.len() as i64), "{s} {c}");
        assert_eq!(clicks.i64().unwrap().get(i), Some(*k), "{s} {c}");
        let last_day = chrono::NaiveDate::parse_from_str(&last[c], "%Y-%m-%d").unwrap();
        let mine = chrono::NaiveDate::parse_from_str(d.iter().max().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(
            since.i64().unwrap().get(i),
            Some((last_day - mine).num_days())
        );
        let sc = score.f64().unwrap().get(i).unwrap();
        assert!((0.0..=100.0).contains(&sc), "{sc}");
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
    // The at-risk list reads it: every student with activity has an engagement score there.
    let ar = p
        .read(
            "curated",
            "at_risk_students",
            "SELECT count(*) AS n FROM t WHERE engagement_score IS NOT NULL",
        )
        .unwrap();
    assert_eq!(
        ar.column("n")
            .unwrap()
            .cast(&polars::prelude::DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .get(0),
        Some(seen.len() as i64)
    );
    // Weekly summary: no cell describes fewer than 5 students.
    let wk = p
        .read(
            "curated",
            "engagement_weekly",
            "SELECT active_students, suppressed FROM t",
        )
        .unwrap();
    let a = wk.column("active_students").unwrap().i64().unwrap().clone();
    let sup = wk.column("suppressed").unwrap().bool().unwrap().clone();
    for i in 0..wk.height() {
        match a.get(i) {
            Some(n) => assert!(n >= 5 && sup.get(i) == Some(false)),
            None => assert_eq!(sup.get(i), Some(true)),
        }
    }
}

/// The shipped `no_activity` alert reads the engagement dataset's own date column: a month
/// after the last activity, it fires for every student with activity (it once named a column
/// the dataset does not have, and was skipped on every run).
#[test]
fn the_shipped_no_activity_alert_fires_for_students_idle_a_week() {
    let p = TestProject::new();
    let inbox = p.generate(12, 14, 0.0);
    p.land_all(&inbox);
    p.ok(&["land", "engagement", inbox.to_str().unwrap()]);
    let later = ("MEDALLION_NOW", "2026-10-20T00:00:00Z");
    let run = p.run_env(&["promote", "--all", "--to", "curated"], &[later]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let listed = p.run_env(&["alerts", "--format", "json"], &[later]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let all: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    let idle: Vec<&serde_json::Value> = all
        .iter()
        .filter(|a| a["rule_id"] == "no_activity")
        .collect();
    let active = p
        .read(
            "trusted",
            "engagement",
            "SELECT DISTINCT student_id FROM t WHERE student_id IS NOT NULL",
        )
        .unwrap()
        .height();
    assert!(active > 0);
    assert_eq!(idle.len(), active, "{}", listed.stdout);
    for a in idle {
        assert_eq!(a["subject"], "student");
        assert_eq!(a["status"], "open");
        // The term's two weeks end on 2026-09-20: a month without activity by 2026-10-20.
        let days = a["value"].as_f64().unwrap();
        assert!((29.0..=44.0).contains(&days), "{a}");
        assert!(
            a["reason"]
                .as_str()
                .unwrap()
                .starts_with("no activity for "),
            "{a}"
        );
    }
}
