//! Throughput benchmark (run with `cargo bench --bench throughput -- 1000000 10000000`).
//!
//! Prints, for each size: rule-evaluation throughput of the standard attendance rule set
//! (contract rules + quality_rules/attendance.yaml, one vectorised pass) in rows/s, and the
//! end-to-end landing→raw→trusted promotion of a generated export of that size, with peak
//! memory (VmHWM) of the process.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use medallion::rules::eval::{self, AsOf, Context};
use polars::prelude::*;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// A typed attendance batch of `n` rows with the `__raw_` twins rules read, ~1% defects.
fn frame(n: usize) -> DataFrame {
    let status = [
        "present", "present", "present", "late", "absent", "excused", "tardy",
    ];
    let ids: Vec<String> = (0..n).map(|i| format!("A{i}")).collect();
    let students: Vec<String> = (0..n).map(|i| format!("p_{:040x}", i % 5000)).collect();
    let courses: Vec<String> = (0..n).map(|i| format!("MAT{}", 100 + i % 40)).collect();
    let st: Vec<&str> = (0..n)
        .map(|i| {
            if i % 100 == 0 {
                status[6]
            } else {
                status[i % 6]
            }
        })
        .collect();
    let minutes: Vec<Option<i64>> = (0..n)
        .map(|i| if i % 97 == 0 { Some(300) } else { Some(50) })
        .collect();
    let day: Vec<i32> = (0..n).map(|i| 20_700 + (i % 60) as i32).collect();
    let ts: Vec<i64> = (0..n).map(|i| 1_788_000_000_000_000 + i as i64).collect();
    let mut df = df!(
        "record_id" => &ids,
        "student_id" => &students,
        "course_id" => &courses,
        "section" => vec!["01"; n],
        "status" => &st,
        "minutes_attended" => &minutes,
        "recorded_by" => vec!["p_staff"; n],
        "_id_issues" => vec![None::<&str>; n],
    )
    .unwrap();
    df.with_column(
        Series::new("session_date".into(), day)
            .cast(&DataType::Date)
            .unwrap()
            .into_column(),
    )
    .unwrap();
    df.with_column(
        Series::new("recorded_at".into(), ts)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
            .into_column(),
    )
    .unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in names {
        let twin = df
            .column(&c)
            .unwrap()
            .as_materialized_series()
            .cast(&DataType::String)
            .unwrap()
            .with_name(eval::raw_name(&c).into());
        df.with_column(twin.into_column()).unwrap();
    }
    df
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000]
    } else {
        sizes
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let contract =
        medallion::contract::load(&root.join("contracts/attendance.yaml")).expect("contract");
    let rules =
        medallion::rules::RuleSet::load(&root.join("quality_rules/attendance.yaml"), &contract)
            .expect("rules");
    let types = |c: &str| contract.column(c).and_then(|c| c.ty);
    let (history, refs) = (HashMap::new(), HashMap::new());
    let cx = Context {
        as_of: AsOf(chrono::Utc::now()),
        types: &types,
        history: &history,
        refs: &refs,
        delivered: None,
    };
    println!(
        "rule set: {} rules (attendance contract + quality_rules/attendance.yaml)",
        rules.rules.len()
    );
    for n in sizes {
        let df = frame(n);
        let t = Instant::now();
        let ev = eval::evaluate(df, &rules, &cx).expect("evaluate");
        let secs = t.elapsed().as_secs_f64();
        let quarantined = ev
            .frame
            .column(eval::QUARANTINE_FLAG)
            .unwrap()
            .bool()
            .unwrap()
            .sum()
            .unwrap_or(0);
        println!(
            "rules  {n:>10} rows  {secs:>7.2} s  {:>12.0} rows/s  quarantined {quarantined}  peak RSS {:.0} MB",
            n as f64 / secs,
            peak_rss_mb()
        );
        drop(ev);
        // A whole-file promotion at 10M rows needs several GB in raw→trusted (one batch is read
        // at once, see README "Known limits"): opt in with BENCH_PROMOTE_ALL=1.
        if n <= 2_000_000 || std::env::var_os("BENCH_PROMOTE_ALL").is_some() {
            promote(n);
        }
    }
}

/// Generates an attendance export of about `n` rows and promotes it landing→raw→trusted.
fn promote(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_medallion"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["init", "p"]);
    // ~ 5 sessions a week per course: rows ≈ students × 4 courses × days × 5/7 × 0.5.
    let students = (n as f64 / (4.0 * 60.0 * 0.36)).ceil() as usize;
    run(&[
        "--project",
        "p",
        "generate",
        "--out",
        "p/in",
        "--students",
        &students.to_string(),
        "--days",
        "60",
        "--defect-rate",
        "0.01",
    ]);
    for d in ["courses", "students", "attendance"] {
        run(&["--project", "p", "land", d, "p/in"]);
    }
    run(&[
        "--project",
        "p",
        "promote",
        "courses",
        "students",
        "--to",
        "trusted",
    ]);
    let t = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(&bin)
        .args(["--project", "p", "promote", "attendance", "--to", "trusted"])
        .current_dir(dir.path())
        .output()
        .expect("promote");
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: u64 = stdout
        .lines()
        .find(|l| l.contains("landing rows"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let peak_kb: f64 = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    println!(
        "promote {rows:>9} rows  {secs:>7.2} s  {:>12.0} rows/s  landing→raw→trusted, peak RSS {:.0} MB",
        rows as f64 / secs,
        peak_kb / 1024.0
    );
}
