//! `medallion query`: SQL over the catalog's tables, named queries checked against numbers
//! computed independently from the tables.

use std::collections::BTreeMap;

use crate::harness::TestProject;

fn json(p: &TestProject, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["query", "--format", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&p.ok(&a).stdout).unwrap()
}

#[test]
fn named_queries_match_independent_computation() {
    let p = TestProject::new();
    let inbox = p.generate(60, 21, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);

    // at_risk_by_course against counting the curated rows in Rust.
    let risk = p
        .read(
            "curated",
            "at_risk_students",
            "SELECT course_id, risk_level FROM t",
        )
        .unwrap();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    let c = risk.column("course_id").unwrap().str().unwrap();
    let l = risk.column("risk_level").unwrap().str().unwrap();
    for i in 0..risk.height() {
        *want
            .entry((c.get(i).unwrap().to_string(), l.get(i).unwrap().to_string()))
            .or_default() += 1;
    }
    let got: BTreeMap<(String, String), u64> = json(&p, &["--named", "at_risk_by_course"])
        .iter()
        .map(|r| {
            (
                (
                    r["course_id"].as_str().unwrap().to_string(),
                    r["risk_level"].as_str().unwrap().to_string(),
                ),
                r["students"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);

    // class_statistics' mean grade against the mean computed here.
    let perf = p
        .read(
            "curated",
            "student_course_performance",
            "SELECT course_id, weighted_grade FROM t",
        )
        .unwrap();
    let c = perf.column("course_id").unwrap().str().unwrap();
    let g = perf.column("weighted_grade").unwrap().f64().unwrap();
    let mut sums: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for i in 0..perf.height() {
        if let Some(v) = g.get(i) {
            let e = sums.entry(c.get(i).unwrap().to_string()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    for r in json(&p, &["--named", "class_statistics"]) {
        let (s, n) = sums[r["course_id"].as_str().unwrap()];
        assert!((r["mean_grade"].as_f64().unwrap() - s / n as f64).abs() < 1e-9);
    }

    // grade_distribution with a parameter: buckets sum to the graded students of the course.
    let course = c.get(0).unwrap().to_string();
    let param = format!("course={course}");
    let dist = json(&p, &["--named", "grade_distribution", "--param", &param]);
    let total: u64 = dist.iter().map(|r| r["students"].as_u64().unwrap()).sum();
    let graded = (0..perf.height())
        .filter(|&i| c.get(i) == Some(course.as_str()) && g.get(i).is_some())
        .count() as u64;
    assert_eq!(total, graded);

    // Every shipped named query runs.
    for q in ["attendance_trend", "attendance_vs_grades"] {
        assert!(!json(&p, &["--named", q]).is_empty(), "{q}");
    }
    let missing = p.run(&["query", "--named", "grade_distribution"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("--param course=VALUE"),
        "{}",
        missing.stderr
    );
}

#[test]
fn time_travel_and_csv_output() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "courses", "--to", "raw"]);
    let first = p.rows("raw", "courses");
    let extra = p.path("courses_more.csv");
    std::fs::write(&extra, "course_id,title,term,credits,instructor_email,start_date,end_date\nZZZ999,Extra,2026-FALL,3,t9@school.edu,2026-09-07,2026-12-18\n").unwrap();
    p.ok(&["land", "courses", extra.to_str().unwrap()]);
    p.ok(&["promote", "courses", "--to", "raw"]);
    let v = p.version("raw", "courses").unwrap();
    let now = p
        .ok(&[
            "query",
            "SELECT count(*) AS n FROM raw.courses",
            "--format",
            "csv",
        ])
        .stdout;
    assert_eq!(now.trim(), format!("n\n{}", first + 1));
    let before = p
        .ok(&[
            "query",
            "SELECT count(*) AS n FROM raw.courses",
            "--format",
            "csv",
            "--as-of",
            &(v - 1).to_string(),
        ])
        .stdout;
    assert_eq!(before.trim(), format!("n\n{first}"));
    let out = p.path("out.csv");
    let r = p.ok(&[
        "query",
        "SELECT * FROM raw.courses",
        "--format",
        "csv",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(r.stdout.contains("rows written"), "{}", r.stdout);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("course_id,title"));
    let bad = p.run(&["query", "SELECT * FROM curated.nope"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("nope"), "{}", bad.stderr);
}

/// Pipes `input` into `medallion query` (the shell) and returns its stdout.
fn shell(p: &TestProject, input: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args([
            "--project",
            p.root.to_str().unwrap(),
            "query",
            "--format",
            "csv",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn shell_lists_tables_and_keeps_history() {
    let p = TestProject::new();
    let inbox = p.generate(10, 3, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "courses", "--to", "trusted"]);
    let shell = |input: &str| shell(&p, input);
    let out = shell("\\tables\nSELECT count(*) AS n\n  FROM trusted.courses;\n\\describe trusted.courses\n\\q\n");
    assert!(
        out.contains("trusted.courses") && out.contains("n\n4\n"),
        "{out}"
    );
    assert!(out.contains("credits"), "{out}");
    // A new session remembers the statement and reruns it by number.
    let out = shell("\\history\n\\1\n\\q\n");
    assert!(
        out.contains("   1  SELECT count(*) AS n FROM trusted.courses"),
        "{out}"
    );
    assert!(out.matches("n\n4\n").count() == 1, "{out}");
}

/// Issue 15.7: the rustyline shell reads the history file the old shell wrote (one statement a
/// line), and a statement runs once a line ends it with `;` outside comments and strings.
#[test]
fn issue_15_shell_reads_old_history_and_multi_line_statements() {
    let p = TestProject::new();
    std::fs::create_dir_all(p.path(".medallion")).unwrap();
    std::fs::write(p.path(".medallion/query_history"), "SELECT 41 AS old\n").unwrap();
    let out = shell(
        &p,
        "SELECT 1\n  + 1 -- not the end;\n  AS two, ';' AS s\n;\n\\history\n\\1\n\\2\n\\q\n",
    );
    assert!(out.contains("two,s\n2,;\n"), "{out}");
    assert!(out.contains("   1  SELECT 41 AS old\n"), "{out}");
    assert!(
        out.contains("   2  SELECT 1 + 1 -- not the end; AS two, ';' AS s\n"),
        "{out}"
    );
    assert!(out.contains("old\n41\n"), "{out}");
    assert_eq!(out.matches("two,s\n2,;\n").count(), 2, "{out}");
}

/// Functions of Athena engine v3, which runs Trino: the part of Trino's function list
/// (<https://trino.io/docs/current/functions/list.html>) that queries over these tables reach
/// for. A named query may call only these. Add a function only after finding it in that list
/// (and, for Athena's few differences, in
/// <https://docs.aws.amazon.com/athena/latest/ug/functions-env3.html>); if DataFusion lacks it,
/// give the local engine the function too (`src/query/trino.rs`).
const TRINO_FUNCTIONS: &[&str] = &[
    // Aggregate.
    "approx_distinct",
    "approx_percentile",
    "arbitrary",
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "count_if",
    "covar_pop",
    "covar_samp",
    "every",
    "max",
    "max_by",
    "min",
    "min_by",
    "regr_intercept",
    "regr_slope",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
    // Window.
    "cume_dist",
    "dense_rank",
    "first_value",
    "lag",
    "last_value",
    "lead",
    "nth_value",
    "ntile",
    "percent_rank",
    "rank",
    "row_number",
    // Conditional and conversion.
    "coalesce",
    "if",
    "nullif",
    "try",
    "typeof",
    // Mathematical.
    "abs",
    "ceil",
    "ceiling",
    "exp",
    "floor",
    "greatest",
    "least",
    "ln",
    "log10",
    "mod",
    "power",
    "round",
    "sign",
    "sqrt",
    "truncate",
    "width_bucket",
    // String.
    "concat",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "regexp_like",
    "replace",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "trim",
    "upper",
    // Date and time.
    "current_date",
    "current_timestamp",
    "date",
    "date_add",
    "date_diff",
    "date_format",
    "date_trunc",
    "day",
    "day_of_week",
    "from_iso8601_date",
    "hour",
    "month",
    "now",
    "quarter",
    "week",
    "year",
];

/// A named query with its placeholders filled.
struct Named {
    name: String,
    /// `--param` values given.
    params: BTreeMap<String, String>,
    sql: String,
}

/// The named queries of `dir`, placeholders filled with `samples` (every placeholder needs one).
fn named_queries(dir: &std::path::Path, samples: &BTreeMap<&str, String>) -> Vec<Named> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let params: BTreeMap<String, String> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(key, _)| {
                let v = samples.get(key).unwrap_or_else(|| {
                    panic!("{name}: no sample value for `${{{key}}}`; add one to the test")
                });
                (key.to_string(), v.clone())
            })
            .collect();
        let sql = medallion::query::fill(&text, &params).unwrap();
        out.push(Named { name, params, sql });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no named queries in {}", dir.display());
    out
}

/// Issue 15.8: every named query is Trino SQL calling only functions Athena has.
#[test]
fn issue_15_named_queries_are_trino_sql() {
    use deltalake::datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
    // sqlparser has no Trino dialect. Trino follows ANSI SQL closely (double-quoted identifiers,
    // no `::` casts or backticks), so the ANSI dialect is the closest and stricter than Generic.
    use deltalake::datafusion::sql::sqlparser::dialect::AnsiDialect;
    use deltalake::datafusion::sql::sqlparser::parser::Parser;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/queries");
    let samples = BTreeMap::from([("course", "MAT101".to_string())]);
    let mut problems = Vec::new();
    let mut calls = 0;
    for Named { name, sql, .. } in named_queries(&dir, &samples) {
        let statements = match Parser::parse_sql(&AnsiDialect {}, &sql) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{name}: does not parse as ANSI/Trino SQL: {e}"));
                continue;
            }
        };
        let mut called = std::collections::BTreeSet::new();
        let _ = visit_expressions(&statements, |e| {
            if let Expr::Function(f) = e {
                called.insert(f.name.to_string().to_ascii_lowercase());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        calls += called.len();
        for f in called {
            if !TRINO_FUNCTIONS.contains(&f.as_str()) {
                problems.push(format!("{name}: calls `{f}`, which Athena (Trino) lacks"));
            }
        }
    }
    assert!(calls > 0, "the walk found no function calls at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Issue 15.8: every named query shipped to a project runs on the local engine.
#[test]
fn issue_15_named_queries_run_locally() {
    let p = TestProject::new();
    let inbox = p.generate(10, 14, 0.0);
    p.land_all(&inbox);
    p.ok(&["promote", "--all"]);
    let course = p
        .read(
            "curated",
            "student_course_performance",
            "SELECT course_id FROM t WHERE weighted_grade IS NOT NULL ORDER BY course_id LIMIT 1",
        )
        .unwrap();
    let course = course.column("course_id").unwrap().str().unwrap().get(0);
    let samples = BTreeMap::from([("course", course.unwrap().to_string())]);
    for Named { name, params, .. } in named_queries(&p.path("catalog/queries"), &samples) {
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["query", "--format", "json", "--named", name.as_str()];
        for kv in &params {
            args.extend(["--param", kv.as_str()]);
        }
        let r = p.run(&args);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
        assert!(!rows.is_empty(), "{name} returned no rows");
    }
}
