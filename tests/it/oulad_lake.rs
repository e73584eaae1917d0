//! Issue 11: OULAD landed as it is (quoted CSVs with `?`, day offsets, the VLE log as a hive
//! partition of parquet) and mapped by configuration (`medallion init --template oulad`), on
//! the slice shipped in tests/data/oulad/lake (module GGG, presentation 2014J: every row of
//! the CSVs and the studentVle parquet partition byte for byte; CC BY 4.0, see
//! tests/data/oulad/SOURCE.md). Checked against counts straight from the files, and
//! `evaluate at-risk` read from the lake against the `--data` path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::arrow::ArrowWriter;

use crate::harness::TestProject;

fn slice() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oulad/lake")
}

const PARTITION: &str = "parquet/studentVle/code_module=GGG/code_presentation=2014J/part-0.parquet";

fn csv_rows(name: &str) -> Vec<BTreeMap<String, String>> {
    crate::harness::csv_maps(&slice().join("csv").join(name))
}

/// (id_student, id_site, date) of every row of the shipped parquet partition.
fn vle_rows() -> Vec<(i64, i64, i64)> {
    let f = std::fs::File::open(slice().join(PARTITION)).unwrap();
    let r = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for b in r {
        let b = b.unwrap();
        let col = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        let (s, site, d) = (col("id_student"), col("id_site"), col("date"));
        for i in 0..b.num_rows() {
            out.push((s.value(i) as i64, site.value(i) as i64, d.value(i) as i64));
        }
    }
    out
}

fn report(p: &TestProject, dataset: &str, stage: &str) -> serde_json::Value {
    serde_json::from_str(
        &p.ok(&["report", dataset, "--stage", stage, "--format", "json"])
            .stdout,
    )
    .unwrap()
}

fn failed(report: &serde_json::Value, rule: &str) -> u64 {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {report}"))["failed"]
        .as_u64()
        .unwrap()
}

fn count(p: &TestProject, stage: &str, table: &str, sql: &str) -> i64 {
    let df = p.read(stage, table, sql).unwrap();
    df.column("n")
        .unwrap()
        .cast(&polars::prelude::DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap()
}

/// Each row as its values joined with `,` (null as `null`).
fn rows(df: &polars::prelude::DataFrame) -> Vec<String> {
    let cols: Vec<Vec<String>> = df
        .columns()
        .iter()
        .map(|c| {
            let s = c.cast(&polars::prelude::DataType::String).unwrap();
            s.str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap_or("null").to_string())
                .collect()
        })
        .collect();
    (0..df.height())
        .map(|i| {
            cols.iter()
                .map(|c| c[i].clone())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn evaluate(p: &TestProject, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "evaluate",
        "at-risk",
        "--as-of-day",
        "56",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&p.ok(&args).stdout).unwrap()
}

#[test]
fn issue_11_oulad_landed_as_is_mapped_by_configuration() {
    let p = TestProject::with_template("oulad");
    let landed = p.ok(&["land", "--all", slice().to_str().unwrap()]).stdout;
    assert!(
        landed.contains(
            "studentVle/code_module=GGG/code_presentation=2014J/part-0.parquet as engagement"
        ),
        "{landed}"
    );
    assert!(landed.contains("assessments.csv as grades"), "{landed}");
    p.ok(&["promote", "--all", "--to", "curated"]);

    // Books: every landed row is in raw or a reject; raw = trusted + quarantined + duplicates.
    let info = csv_rows("studentInfo.csv");
    let subs = csv_rows("studentAssessment.csv");
    let vle = vle_rows();
    for (dataset, rows) in [
        ("courses", 1u64),
        ("students", info.len() as u64),
        ("grades", subs.len() as u64),
        ("engagement", vle.len() as u64),
    ] {
        let r = report(&p, dataset, "trusted");
        let raw = &r["raw"];
        assert_eq!(raw["rows_in"].as_u64(), Some(rows), "{dataset}: {raw}");
        assert_eq!(raw["rejected"].as_u64(), Some(0), "{dataset}: {raw}");
        let t = &r["trusted"];
        assert_eq!(
            t["rows_in"].as_u64().unwrap(),
            t["rows_promoted"].as_u64().unwrap()
                + t["quarantined"].as_u64().unwrap()
                + t["duplicates_dropped"].as_u64().unwrap(),
            "{dataset}: {t}"
        );
        assert_eq!(p.rows("raw", dataset), rows, "{dataset}");
    }

    // OULAD's quirks, counted by rules, each against a count straight from the files.
    let students_trusted = report(&p, "students", "trusted");
    let ten_twenty = info.iter().filter(|r| r["imd_band"] == "10-20").count() as u64;
    assert!(ten_twenty > 0);
    assert_eq!(
        failed(&students_trusted, "students.imd_band_label"),
        ten_twenty
    );
    let unreg: BTreeMap<String, String> = csv_rows("studentRegistration.csv")
        .into_iter()
        .map(|r| (r["id_student"].clone(), r["date_unregistration"].clone()))
        .collect();
    let withdrawn_no_date = info
        .iter()
        .filter(|r| r["final_result"] == "Withdrawn" && unreg[&r["id_student"]] == "?")
        .count() as u64;
    assert!(withdrawn_no_date > 0);
    assert_eq!(
        failed(&students_trusted, "students.withdrawn_has_date"),
        withdrawn_no_date
    );
    let unknown_imd = info.iter().filter(|r| r["imd_band"] == "?").count() as u64;
    assert_eq!(
        failed(&report(&p, "students", "raw"), "students.imd_band_unknown"),
        unknown_imd
    );
    // `?` scores: counted at raw, null in trusted, still submissions.
    let unknown_scores = subs.iter().filter(|r| r["score"] == "?").count() as i64;
    assert!(unknown_scores > 0);
    assert_eq!(
        failed(&report(&p, "grades", "raw"), "grades.score_unknown") as i64,
        unknown_scores
    );
    assert_eq!(
        count(
            &p,
            "trusted",
            "grades",
            "SELECT count(*) AS n FROM t WHERE score IS NULL AND submitted_at IS NOT NULL AND graded_at IS NULL"
        ),
        unknown_scores
    );
    // Repeated activity rows (same student, site and day) share a record id: one is kept.
    let distinct: BTreeSet<&(i64, i64, i64)> = vle.iter().collect();
    let eng = report(&p, "engagement", "trusted");
    assert_eq!(
        eng["trusted"]["duplicates_dropped"].as_u64(),
        Some((vle.len() - distinct.len()) as u64)
    );
    assert_eq!(p.rows("trusted", "engagement"), distinct.len() as u64);

    // Mapped values: ids joined with "-", a start date from YAML plus day offsets, weights
    // from percent, the course and due day joined from assessments.csv.
    let c = p
        .read(
            "trusted",
            "courses",
            "SELECT course_id, CAST(start_date AS VARCHAR) AS s, CAST(end_date AS VARCHAR) AS e FROM t",
        )
        .unwrap();
    assert_eq!(
        rows(&c),
        vec!["GGG-2014J,2014-10-01,2015-06-27".to_string()]
    );
    let a = &csv_rows("assessments.csv")[0];
    let sql = format!(
        "SELECT count(*) AS n FROM t WHERE assessment_id = '{}' AND course_id = 'GGG-2014J' \
         AND weight = {} AND CAST(due_at AS VARCHAR) LIKE '{}%'",
        a["id_assessment"],
        a["weight"].parse::<f64>().unwrap() / 100.0,
        (chrono::NaiveDate::from_ymd_opt(2014, 10, 1).unwrap()
            + chrono::Duration::days(a["date"].parse().unwrap()))
        .format("%Y-%m-%d")
    );
    let submitted = subs
        .iter()
        .filter(|r| r["id_assessment"] == a["id_assessment"])
        .count() as i64;
    assert_eq!(count(&p, "trusted", "grades", &sql), submitted, "{sql}");
    assert!(p.rows("curated", "at_risk_students") > 600);

    // evaluate at-risk read from the lake equals the --data path on the same files.
    let lake = evaluate(&p, &[]);
    let data = evaluate(&p, &["--data", slice().to_str().unwrap()]);
    assert_eq!(lake["rows"], data["rows"], "lake:\n{lake}\ndata:\n{data}");
    let row = &lake["rows"][0];
    assert_eq!(row["presentation"], "GGG-2014J");
    assert_eq!(row["students"].as_u64(), Some(698), "{row}");
    let auc = row["auc"].as_f64().unwrap();
    assert!((0.6..0.95).contains(&auc), "{auc}");
    let text = p.ok(&["evaluate", "at-risk", "--as-of-day", "56"]).stdout;
    assert!(text.contains("Data: the lake's trusted tables"), "{text}");
}

fn write_parquet(path: &Path, batch: RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_landing_rows_reach_raw_or_are_rejects_naming_file_row_and_column() {
    // A hive-partitioned activity file whose `date` is text, with one value that is no day.
    let p = TestProject::with_template("oulad");
    let dir = p.path("inbox");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_student", DataType::Float64, true),
        Field::new("id_site", DataType::Int64, true),
        Field::new("date", DataType::Utf8, true),
        Field::new("sum_click", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![11391.0, 11391.0, 28400.0])),
        Arc::new(Int64Array::from(vec![546614, 546614, 546614])),
        Arc::new(StringArray::from(vec![Some("-5"), Some("soon"), Some("3")])),
        Arc::new(Float64Array::from(vec![Some(2.0), Some(1.0), None])),
    ];
    let part = dir.join("studentVle/code_module=AAA/code_presentation=2013J/part-0.parquet");
    write_parquet(&part, RecordBatch::try_new(schema, cols).unwrap());
    std::fs::write(
        dir.join("vle.csv"),
        "\"id_site\",\"code_module\",\"code_presentation\",\"activity_type\",\"week_from\",\"week_to\"\n\"546614\",\"AAA\",\"2013J\",\"homepage\",\"?\",\"?\"\n",
    )
    .unwrap();
    // `land DATASET DIR` finds the partition in its subfolders and the lookup beside it.
    let out = p.ok(&["land", "engagement", dir.to_str().unwrap()]).stdout;
    assert!(out.contains("vle.csv as engagement"), "{out}");
    p.ok(&["promote", "engagement", "--to", "raw"]);
    assert_eq!(p.rows("raw", "engagement"), 2);
    let rejects = p
        .read(
            "raw",
            "engagement_rejects",
            "SELECT _source_file, _source_line, error_kind, error_column, error_message FROM t",
        )
        .unwrap();
    assert_eq!(
        rows(&rejects),
        vec![
            "studentVle/code_module=AAA/code_presentation=2013J/part-0.parquet,2,unmappable,date,`soon` is not a day number"
                .to_string()
        ]
    );
    // Partition columns come from the path; float ids read as integers; nulls stay null.
    let raw = p
        .read(
            "raw",
            "engagement",
            "SELECT record_id, course_id, activity_date, activity_type, clicks, _source_line FROM t ORDER BY _source_line",
        )
        .unwrap();
    assert_eq!(
        rows(&raw),
        vec![
            "AAA-2013J-11391-546614--5,AAA-2013J,2013-09-26,login,2,1".to_string(),
            "AAA-2013J-28400-546614-3,AAA-2013J,2013-10-04,login,null,3".to_string(),
        ]
    );
}

#[test]
fn a_broken_mapping_is_named_by_file_and_key() {
    let p = TestProject::with_template("oulad");
    let path = p.path("pipelines/grades.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text
        .replace(
            "due_at: {day: a.date, start: a.code_presentation, time: \"12:00:00Z\"}",
            "due_at: {day: a.date, time: \"12:00:00Z\", by: 3}",
        )
        .replace("max_score: {value: \"100\"}", "max_scor: {value: \"100\"}");
    assert_ne!(broken, text);
    std::fs::write(&path, broken).unwrap();
    let r = p.run(&["rules", "check"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("grades.yaml"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("source.map.columns.due_at.by: not allowed with `day`"),
        "{}",
        r.stderr
    );
    // Fixed shape, wrong columns: named against the contract.
    let fixed = text.replace("max_score: {value: \"100\"}", "max_scor: {value: \"100\"}");
    std::fs::write(&path, fixed).unwrap();
    let r = p.run(&["rules", "check"]);
    assert_ne!(r.code, 0);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("grades.yaml"), "{all}");
    assert!(
        all.contains("no expression for contract column `max_score`"),
        "{all}"
    );
    assert!(
        all.contains("source.map.columns.max_scor: not a column of the contract's raw schema"),
        "{all}"
    );
}
