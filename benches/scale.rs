//! Scale benchmark: `cargo bench --bench scale -- [ROWS ...]` (default 1000000 10000000).
//!
//! For each size it generates one attendance export of about ROWS rows (grades scaled with it,
//! same students), then times, each as its own process with its peak RSS (`wait4`):
//! - the **floor**: a bare polars CSV → Parquet of the same file (same polars crate, eager
//!   read then write, as a user would write it);
//! - `medallion land attendance FILE` + `medallion promote attendance --to trusted`;
//! - `medallion promote --all --to curated` after grades reached trusted (untimed);
//! - one more day (about 1/180 of the rows): `land` + `promote --all --to curated` into the lake
//!   that already holds the rows above;
//! - `medallion status` and a no-op `promote --all` on that lake;
//! - `status` and a no-op `promote --all` on a small lake whose raw and trusted attendance
//!   tables hold 200 versions each (200 daily files promoted one batch at a time; skipped with
//!   `BENCH_VERSIONS=0`).
//!
//! It prints a table with seconds, rows/s, MB/s, peak RSS and the ratios to the floor. Not a
//! test: nothing here runs in CI. `BENCH_KEEP=1` keeps the working folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One measured process (or a sum of processes run one after the other).
#[derive(Clone, Copy, Default)]
struct Run {
    secs: f64,
    peak_mb: f64,
}

impl Run {
    fn then(self, other: Run) -> Run {
        Run {
            secs: self.secs + other.secs,
            peak_mb: self.peak_mb.max(other.peak_mb),
        }
    }
}

/// Runs `cmd` to completion; its wall time and its own peak RSS (not the bench's).
// The child is reaped by `wait4`, which also gives its own resource usage.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command, what: &str) -> Run {
    let start = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes into both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not waited for yet; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(r, pid, "{what}: wait4 failed");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let tail: String = err
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{what} failed (status {status}, peak RSS {} MB):\n{tail}",
            usage.ru_maxrss / 1024
        );
    }
    Run {
        secs,
        peak_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}

/// The floor: a bare polars CSV → Parquet of `csv` (run in a child process of this bench).
fn floor(csv: &str, out: &str) {
    use polars::prelude::*;
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(csv.into()))
        .and_then(|r| r.finish())
        .expect("read csv");
    let file = std::fs::File::create(out).expect("create parquet");
    ParquetWriter::new(file)
        .finish(&mut df)
        .expect("write parquet");
}

fn rows_of(csv: &Path) -> u64 {
    use std::io::BufRead;
    let f = std::io::BufReader::new(std::fs::File::open(csv).expect("open export"));
    f.lines().count().saturating_sub(1) as u64
}

/// The `n` weekdays before `today`, newest first.
fn weekdays_before(today: chrono::NaiveDate, n: usize) -> Vec<chrono::NaiveDate> {
    use chrono::Datelike;
    let mut out = Vec::with_capacity(n);
    let mut day = today;
    while out.len() < n {
        day = day.pred_opt().expect("a date before today");
        if day.weekday().number_from_monday() <= 5 {
            out.push(day);
        }
    }
    out
}

fn export(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("read exports")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".csv"))
        })
        .unwrap_or_else(|| panic!("no {prefix} export in {}", dir.display()))
}

struct Bench {
    bin: PathBuf,
    project: PathBuf,
}

impl Bench {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--project").arg(&self.project).arg("-q").args(args);
        c
    }
    fn run(&self, args: &[&str]) -> Run {
        measure(
            &mut self.cmd(args),
            &format!("medallion {}", args.join(" ")),
        )
    }
}

struct Row {
    what: String,
    rows: u64,
    mb: f64,
    run: Run,
    floor: Option<Run>,
}

fn print(rows: &[Row]) {
    println!("\n| what | rows | seconds | rows/s | MB/s | peak RSS | × floor time | × floor RSS |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let ratio = |a: f64, b: f64| format!("{:.2}", a / b);
        let (t, m) = match r.floor {
            Some(f) => (ratio(r.run.secs, f.secs), ratio(r.run.peak_mb, f.peak_mb)),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.0} MB | {t} | {m} |",
            r.what,
            r.rows,
            r.run.secs,
            r.rows as f64 / r.run.secs,
            r.mb / r.run.secs,
            r.run.peak_mb,
        );
    }
}

fn scale(n: u64, bin: &Path, out: &mut Vec<Row>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let project = root.join("lake");
    let b = Bench {
        bin: bin.to_path_buf(),
        project: project.clone(),
    };
    let mut init = Command::new(bin);
    init.arg("init").arg(&project);
    measure(&mut init, "init");
    // About 1.47 attendance rows per student and calendar day (calibrated on the generator:
    // about 2 sessions a weekday).
    let days = 180u32;
    let students = ((n as f64) / (1.47 * f64::from(days))).ceil() as u64;
    let gen = root.join("exports");
    let t = Instant::now();
    // A term that ends the school day before the increment's, the increment being the last
    // weekday before today (the generator has no sessions at weekends; a session after today
    // would, rightly, be quarantined).
    let next_day = weekdays_before(chrono::Utc::now().date_naive(), 1)[0];
    let start_day = next_day - chrono::Days::new(u64::from(days));
    let start = start_day.to_string();
    b.run(&[
        "generate",
        "--out",
        gen.to_str().unwrap_or_default(),
        "--students",
        &students.to_string(),
        "--days",
        &days.to_string(),
        "--start",
        &start,
    ]);
    let attendance = export(&gen, "attendance_");
    let rows = rows_of(&attendance);
    let mb = std::fs::metadata(&attendance).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    eprintln!(
        "{n}: generated {rows} attendance rows ({mb:.0} MB) for {students} students in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    // The increment: the next school day, same roster (same seed), written apart.
    let next = next_day.to_string();
    let inc_dir = root.join("increment");
    b.run(&[
        "generate",
        "--out",
        inc_dir.to_str().unwrap_or_default(),
        "--students",
        &students.to_string(),
        "--days",
        "1",
        "--start",
        &next,
    ]);
    let increment = export(&inc_dir, "attendance_");
    let inc_rows = rows_of(&increment);
    let inc_mb = std::fs::metadata(&increment).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;

    let parquet = root.join("floor.parquet");
    let me = std::env::current_exe().expect("bench path");
    let floor_run = measure(
        Command::new(me)
            .arg("--floor")
            .arg(&attendance)
            .arg(&parquet),
        "floor",
    );
    out.push(Row {
        what: format!("floor: polars CSV → Parquet ({n})"),
        rows,
        mb,
        run: floor_run,
        floor: Some(floor_run),
    });

    // Reference data first (untimed): the rules check attendance against them.
    for d in ["courses", "students"] {
        b.run(&["land", d, export(&gen, d).to_str().unwrap_or_default()]);
    }
    b.run(&["promote", "courses", "students", "--to", "trusted"]);

    let land = b.run(&[
        "land",
        "attendance",
        attendance.to_str().unwrap_or_default(),
    ]);
    // Two processes (`--to raw`, then `--to trusted`) so each step's peak is seen apart; the
    // work is that of one `promote --to trusted`, plus one process start.
    let raw = b.run(&["promote", "attendance", "--to", "raw"]);
    let trusted = b.run(&["promote", "attendance", "--to", "trusted"]);
    for (step, r) in [
        ("land", land),
        ("landing → raw", raw),
        ("raw → trusted", trusted),
    ] {
        eprintln!("{n}: {step}: {:.2} s, peak {:.0} MB", r.secs, r.peak_mb);
    }
    let to_trusted = land.then(raw).then(trusted);
    out.push(Row {
        what: format!("land + promote attendance --to trusted ({n})"),
        rows,
        mb,
        run: to_trusted,
        floor: Some(floor_run),
    });
    let grades = export(&gen, "grades_");
    let g_rows = rows_of(&grades);
    let g = b
        .run(&["land", "grades", grades.to_str().unwrap_or_default()])
        .then(b.run(&["promote", "grades", "--to", "trusted"]));
    eprintln!(
        "{n}: grades {g_rows} rows to trusted in {:.1} s, peak {:.0} MB (not in the table)",
        g.secs, g.peak_mb
    );
    let curated = b.run(&["promote", "--all", "--to", "curated"]);
    eprintln!(
        "{n}: trusted → curated (all datasets): {:.2} s, peak {:.0} MB",
        curated.secs, curated.peak_mb
    );
    out.push(Row {
        what: format!("… then promote --all --to curated ({n})"),
        rows,
        mb,
        run: curated,
        floor: None,
    });
    out.push(Row {
        what: format!("landing → curated, attendance ({n})"),
        rows,
        mb,
        run: to_trusted.then(curated),
        floor: Some(floor_run),
    });
    let inc = b
        .run(&["land", "attendance", increment.to_str().unwrap_or_default()])
        .then(b.run(&["promote", "--all", "--to", "curated"]));
    let full = to_trusted.then(curated);
    out.push(Row {
        what: format!(
            "one more day into the lake, to curated ({n}): {:.1}% of the full run",
            100.0 * inc.secs / full.secs
        ),
        rows: inc_rows,
        mb: inc_mb,
        run: inc,
        floor: None,
    });
    let status = b.run(&["status"]);
    let noop = b.run(&["promote", "--all", "--to", "curated"]);
    eprintln!(
        "{n}: status {:.2} s, no-op promote --all {:.2} s",
        status.secs, noop.secs
    );
    out.push(Row {
        what: format!("status ({n})"),
        rows: 0,
        mb: 0.0,
        run: status,
        floor: None,
    });
    out.push(Row {
        what: format!("no-op promote --all ({n})"),
        rows: 0,
        mb: 0.0,
        run: noop,
        floor: None,
    });
    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--floor") {
        floor(&args[1], &args[2]);
        return;
    }
    let sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        sizes
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_medallion"));
    let mut rows = Vec::new();
    if std::env::var("BENCH_VERSIONS").as_deref() != Ok("0") {
        versions(200, &bin, &mut rows);
        print(&rows);
    }
    for n in sizes {
        scale(n, &bin, &mut rows);
        print(&rows);
    }
}

/// `status` and a no-op `promote --all` on a lake whose raw and trusted attendance tables hold
/// `days` versions each: a small school's `days` daily exports, each landed as its own file and
/// promoted to curated as its own batch (one commit per batch and table).
fn versions(days: u32, bin: &Path, out: &mut Vec<Row>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let b = Bench {
        bin: bin.to_path_buf(),
        project: root.join("lake"),
    };
    let mut init = Command::new(bin);
    init.arg("init").arg(&b.project);
    measure(&mut init, "init");
    // School days only: the generator writes no sessions at weekends (no export to land).
    let school_days = weekdays_before(chrono::Utc::now().date_naive(), days as usize);
    let daily = root.join("daily");
    std::fs::create_dir_all(&daily).expect("daily folder");
    let t = Instant::now();
    for (i, day) in school_days.iter().rev().enumerate() {
        let day = day.to_string();
        let gen = root.join(format!("gen-{i}"));
        let g = gen.to_str().unwrap_or_default();
        b.run(&[
            "generate",
            "--out",
            g,
            "--students",
            "20",
            "--days",
            "1",
            "--start",
            &day,
        ]);
        if i == 0 {
            for d in ["courses", "students"] {
                b.run(&["land", d, export(&gen, d).to_str().unwrap_or_default()]);
            }
        }
        // The same file name every day: each gets its own, so each lands as its own batch.
        std::fs::rename(
            export(&gen, "attendance_"),
            daily.join(format!("attendance_{i:04}.csv")),
        )
        .expect("move daily export");
        std::fs::remove_dir_all(&gen).expect("remove generated folder");
    }
    b.run(&["land", "attendance", daily.to_str().unwrap_or_default()]);
    let promoted = b.run(&["promote", "--all", "--to", "curated"]);
    eprintln!(
        "versions: {days} daily files generated and landed in {:.0} s, promoted to curated in \
         {:.1} s ({days} batches)",
        t.elapsed().as_secs_f64() - promoted.secs,
        promoted.secs
    );
    // The lake really holds that many versions (a version counts from 0).
    let json = b
        .cmd(&["status", "--format", "json"])
        .output()
        .expect("status --format json");
    let tables: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).expect("status JSON");
    for stage in ["raw", "trusted"] {
        let version = tables
            .iter()
            .find(|t| t["dataset"] == "attendance" && t["stage"] == stage && t["kind"] == "data")
            .and_then(|t| t["version"].as_u64())
            .unwrap_or_else(|| panic!("no {stage} attendance table in status"));
        assert!(
            version + 1 >= u64::from(days),
            "{stage} attendance has {} versions, not {days}",
            version + 1
        );
    }
    let status = b.run(&["status"]);
    let noop = b.run(&["promote", "--all", "--to", "curated"]);
    for (what, run) in [("status", status), ("no-op promote --all", noop)] {
        out.push(Row {
            what: format!("{what} ({days} versions of raw and trusted attendance)"),
            rows: 0,
            mb: 0.0,
            run,
            floor: None,
        });
    }
}
