//! The public Open University Learning Analytics Dataset (OULAD, CC BY 4.0; the AAA 2013J slice
//! shipped in tests/data/oulad, see its SOURCE.md) turned into a gradebook export, promoted to curated, and checked:
//! the books balance, OULAD's real quirks land in quarantine under the right rule, and the
//! curated average score of students matches a computation straight from the source CSV.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use medallion::crypto::{KeyProvider, LocalKeyRing};

use crate::harness::TestProject;

/// The OULAD slice shipped with the tests (module AAA, presentation 2013J).
fn oulad() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oulad")
}

fn read_csv(name: &str) -> Vec<Vec<String>> {
    let mut r =
        csv::Reader::from_path(oulad().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn oulad_module_aaa_2013j_through_to_curated() {
    let (module, presentation, start) = (
        "AAA",
        "2013J",
        chrono::NaiveDate::from_ymd_opt(2013, 10, 1).unwrap(),
    );
    let length: i64 = read_csv("courses.csv")
        .iter()
        .find(|r| r[0] == module && r[1] == presentation)
        .map(|r| r[2].parse().unwrap())
        .unwrap();
    // assessments: id -> (type, due day, weight); a missing exam date means the module's end.
    let assessments: HashMap<String, (String, i64, f64)> = read_csv("assessments.csv")
        .into_iter()
        .filter(|r| r[0] == module && r[1] == presentation)
        .map(|r| {
            let kind = match r[3].as_str() {
                "TMA" => "assignment",
                "CMA" => "quiz",
                _ => "exam",
            };
            let due = if r[4] == "?" {
                length
            } else {
                r[4].parse().unwrap()
            };
            (
                r[2].clone(),
                (kind.to_string(), due, r[5].parse::<f64>().unwrap() / 100.0),
            )
        })
        .collect();
    let students: Vec<Vec<String>> = read_csv("studentInfo.csv")
        .into_iter()
        .filter(|r| r[0] == module && r[1] == presentation)
        .collect();
    let sid: HashMap<String, String> = students
        .iter()
        .enumerate()
        .map(|(i, r)| (r[2].clone(), format!("S{:06}", i + 1)))
        .collect();
    let ts = |day: i64| format!("{}T12:00:00Z", start + chrono::Duration::days(day));

    let p = TestProject::new();
    let dir = p.path("oulad");
    std::fs::create_dir_all(&dir).unwrap();
    let course_id = format!("{module}113");
    std::fs::write(
        dir.join("courses.csv"),
        format!("course_id,title,term,credits,instructor_email,start_date,end_date\n{course_id},OULAD {module} {presentation},{presentation},6,,{start},{}\n", start + chrono::Duration::days(length)),
    )
    .unwrap();
    let mut roster = String::from(
        "student_id,first_name,last_name,email,date_of_birth,cohort,program,enrolled_on,status\n",
    );
    for r in &students {
        let status = if r[11] == "Withdrawn" {
            "withdrawn"
        } else {
            "active"
        };
        roster.push_str(&format!(
            "{},,,,,{presentation},{module},{start},{status}\n",
            sid[&r[2]]
        ));
    }
    std::fs::write(dir.join("students.csv"), roster).unwrap();
    let mut grades = String::from("record_id,student_id,course_id,assessment_id,assessment_type,due_at,submitted_at,graded_at,score,max_score,weight\n");
    let mut expected: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut unknown_scores = 0;
    let mut rows = 0u64;
    for r in read_csv("studentAssessment.csv") {
        let Some((kind, due, weight)) = assessments.get(&r[0]) else {
            continue;
        };
        let Some(s) = sid.get(&r[1]) else { continue };
        let submitted: i64 = r[2].parse().unwrap();
        // OULAD writes a missing score as `?`: passed through as delivered, it must be quarantined.
        let graded = if r[4] == "?" {
            String::new()
        } else {
            ts(submitted + 7)
        };
        if r[4] == "?" {
            unknown_scores += 1;
        } else {
            expected
                .entry(s.clone())
                .or_default()
                .push(r[4].parse().unwrap());
        }
        grades.push_str(&format!(
            "G{}{},{s},{course_id},{}-{},{kind},{},{},{graded},{},100,{weight}\n",
            r[0],
            r[1],
            course_id,
            r[0],
            ts(*due),
            ts(submitted),
            r[4]
        ));
        rows += 1;
    }
    std::fs::write(dir.join("grades_oulad.csv"), grades).unwrap();
    assert!(rows > 1000, "{rows} rows");

    for ds in ["courses", "students", "grades"] {
        p.ok(&["land", ds, dir.to_str().unwrap()]);
    }
    p.ok(&["promote", "--all", "--to", "curated"]);
    let raw = p.rows("raw", "grades");
    let rejects = p.rows("raw", "grades_rejects");
    assert_eq!(raw + rejects, rows);
    // Issue 11: a `?` score is a submission whose score is unknown. It is not quarantined: it
    // reaches trusted with a null score, the raw warning rule counts it, and curated counts it
    // as submitted (not as missed work).
    let q = p
        .read("trusted", "grades_quarantine", "SELECT _rule_ids FROM t")
        .map(|df| crate::harness::strings(&df))
        .unwrap_or_default();
    assert!(
        !q.iter().any(|ids| ids.contains("contract.score.type")),
        "a `?` score must not quarantine the submission: {q:?}"
    );
    assert_eq!(
        raw,
        p.rows("trusted", "grades") + q.len() as u64,
        "no duplicates in OULAD"
    );
    let unscored = p
        .read(
            "trusted",
            "grades",
            "SELECT count(*) AS n FROM t WHERE score IS NULL AND submitted_at IS NOT NULL",
        )
        .unwrap();
    let unscored = unscored
        .column("n")
        .unwrap()
        .cast(&polars::prelude::DataType::Int64)
        .unwrap();
    assert!(unknown_scores > 0, "the slice holds `?` scores");
    assert_eq!(unscored.i64().unwrap().get(0), Some(unknown_scores as i64));
    let report: serde_json::Value = serde_json::from_str(
        &p.ok(&["report", "grades", "--stage", "raw", "--format", "json"])
            .stdout,
    )
    .unwrap();
    let counted = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "grades.score_unknown")
        .unwrap_or_else(|| panic!("no grades.score_unknown in {report}"));
    assert_eq!(
        counted["failed"].as_u64(),
        Some(unknown_scores as u64),
        "{counted}"
    );
    assert_eq!(counted["severity"], "warn", "{counted}");
    // Submitted, unscored: the student keeps the credit for having submitted.
    let perf = p
        .read(
            "curated",
            "student_course_performance",
            "SELECT CAST(sum(submitted) AS BIGINT) AS s, CAST(sum(missing) AS BIGINT) AS m FROM t",
        )
        .unwrap();
    let sum = |c: &str| perf.column(c).unwrap().i64().unwrap().get(0);
    assert_eq!(sum("m"), Some(0), "every row of the slice is a submission");
    assert!(sum("s").unwrap_or_default() > 1000);

    // Curated average score per student equals the mean of the source scores.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt
        .block_on(LocalKeyRing::new(p.path(".medallion/keyring.json")).pseudonymization_key())
        .unwrap();
    let perf = p
        .read(
            "curated",
            "student_course_performance",
            "SELECT student_id, average_score_pct FROM t",
        )
        .unwrap();
    let ids = perf.column("student_id").unwrap().str().unwrap();
    let avg = perf.column("average_score_pct").unwrap().f64().unwrap();
    let got: HashMap<String, Option<f64>> = (0..perf.height())
        .map(|i| (ids.get(i).unwrap().to_string(), avg.get(i)))
        .collect();
    let mut checked = 0;
    for (s, scores) in &expected {
        let want = scores.iter().sum::<f64>() / scores.len() as f64;
        let have = got
            .get(&key.pseudonym(s))
            .copied()
            .flatten()
            .unwrap_or_else(|| panic!("{s} missing from curated"));
        assert!((have - want).abs() < 1e-9, "{s}: {have} != {want}");
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
}
