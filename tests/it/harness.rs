//! A temp-dir project and helpers to run the binary and read tables back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medallion::frame;
use medallion::generate::Defect;
use medallion::storage::delta::{self, TableLoc};
use polars::prelude::DataFrame;

pub const BIN: &str = env!("CARGO_BIN_EXE_medallion");

/// The curated products.
pub const PRODUCTS: &[&str] = medallion::curated::PRODUCTS;

/// A scaffolded project in a temporary folder.
pub struct TestProject {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    /// A key ring shared with another project (so pseudonyms agree), if any.
    pub keyring: Option<PathBuf>,
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestProject {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("proj");
        let out = Command::new(BIN)
            .arg("init")
            .arg(&root)
            .output()
            .expect("run init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            _dir: dir,
            root,
            keyring: None,
        }
    }

    /// A project scaffolded from a template (`medallion init --template T`).
    pub fn with_template(template: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("proj");
        let out = Command::new(BIN)
            .args(["init", "--template", template])
            .arg(&root)
            .output()
            .expect("run init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            _dir: dir,
            root,
            keyring: None,
        }
    }

    /// A project whose pseudonymisation key ring is `keyring` (shared with another project).
    pub fn with_keyring(keyring: &Path) -> Self {
        Self {
            keyring: Some(keyring.to_path_buf()),
            ..Self::new()
        }
    }

    /// Runs medallion with `--project` set and the key ring inside the project.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.arg("--project")
            .arg(&self.root)
            .args(args)
            .env_remove("MEDALLION_KEYRING");
        if let Some(k) = &self.keyring {
            cmd.env("MEDALLION_KEYRING", k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run medallion").into()
    }

    /// Runs and asserts exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "medallion {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Sets how many raw rows raw→trusted judges per chunk for `dataset` (small values make
    /// every batch span many chunks).
    pub fn set_trusted_chunk(&self, dataset: &str, rows: usize) {
        let path = self.path(&format!("pipelines/{dataset}.yaml"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("trusted:\n  chunk_rows: {rows}\n"));
        std::fs::write(&path, text).unwrap();
    }

    /// Generates exports into `<root>/inbox` (seed 11, the default term start).
    pub fn generate(&self, students: usize, days: u32, defect_rate: f64) -> PathBuf {
        self.generate_into("inbox", students, days, defect_rate, 11, None)
    }

    /// Generates exports into `<root>/<dir>` with a seed and, optionally, a term start.
    pub fn generate_into(
        &self,
        dir: &str,
        students: usize,
        days: u32,
        defect_rate: f64,
        seed: u64,
        start: Option<&str>,
    ) -> PathBuf {
        let inbox = self.path(dir);
        let inbox_s = inbox.to_string_lossy().to_string();
        let (s, d, r, seed) = (
            students.to_string(),
            days.to_string(),
            defect_rate.to_string(),
            seed.to_string(),
        );
        let mut args = vec![
            "generate",
            "--out",
            &inbox_s,
            "--students",
            &s,
            "--days",
            &d,
            "--defect-rate",
            &r,
            "--seed",
            &seed,
        ];
        if let Some(start) = start {
            args.extend(["--start", start]);
        }
        self.ok(&args);
        inbox
    }

    /// Lands every dataset from `inbox`.
    pub fn land_all(&self, inbox: &Path) {
        let inbox_s = inbox.to_string_lossy().to_string();
        for ds in ["courses", "students", "attendance", "grades", "engagement"] {
            self.ok(&["land", ds, &inbox_s]);
        }
    }

    pub fn loc(&self, stage: &str, table: &str) -> TableLoc {
        let dir = self.path("lake").join(stage).join(table);
        std::fs::create_dir_all(&dir).expect("mkdir");
        TableLoc {
            url: url::Url::from_directory_path(dir.canonicalize().expect("canon")).expect("url"),
            options: HashMap::new(),
        }
    }

    /// Reads a table into a frame (None when it was never written).
    pub fn read(&self, stage: &str, table: &str, sql: &str) -> Option<DataFrame> {
        let loc = self.loc(stage, table);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let (schema, batches) = delta::query(&loc, sql).await.expect("query")?;
            Some(frame::from_batches(&schema, &batches).expect("frame"))
        })
    }

    pub fn rows(&self, stage: &str, table: &str) -> u64 {
        self.read(stage, table, "SELECT count(*) AS n FROM t")
            .map(|df| {
                df.column("n")
                    .expect("n")
                    .i64()
                    .expect("i64")
                    .get(0)
                    .unwrap_or(0) as u64
            })
            .unwrap_or(0)
    }

    pub fn version(&self, stage: &str, table: &str) -> Option<u64> {
        let loc = self.loc(stage, table);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(delta::version(&loc)).expect("version")
    }

    /// `medallion status --format json`, parsed.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let r = self.ok(&["status", "--format", "json"]);
        serde_json::from_str(&r.stdout).expect("status json")
    }
}

/// The generated export of `dataset` in `inbox`.
pub fn export_of(inbox: &Path, dataset: &str) -> PathBuf {
    std::fs::read_dir(inbox)
        .expect("inbox")
        .map(|e| e.expect("entry").path())
        .find(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(dataset))
        })
        .expect("export")
}

/// Data lines of a generated CSV (no generated field holds a newline).
pub fn data_lines(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("read export");
    bytes.iter().filter(|b| **b == b'\n').count() as u64 - 1
}

pub fn defects(inbox: &Path) -> Vec<Defect> {
    std::fs::read_to_string(inbox.join("defects.jsonl"))
        .expect("defects")
        .lines()
        .map(|l| serde_json::from_str(l).expect("defect line"))
        .collect()
}

/// Every string value of a frame.
pub fn strings(df: &DataFrame) -> Vec<String> {
    let mut out = Vec::new();
    for c in df.columns() {
        if let Ok(ca) = c.as_materialized_series().str() {
            out.extend(ca.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// The rows of a CSV file as column → value maps.
pub fn csv_maps(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|x| {
            h.iter()
                .cloned()
                .zip(x.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Runs `tests/data/<script>` (python3 with botocore) on the request files in `dir` and asserts
/// the AWS models accept them (`what` names them in messages). Without botocore it says so and
/// returns, unless `MEDALLION_REQUIRE_BOTOCORE` is set.
pub fn botocore_accepts(script: &str, dir: &std::path::Path, what: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(script);
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output();
    let ok = out
        .as_ref()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stderr).contains("No module named 'botocore'"));
    if !ok {
        assert!(
            std::env::var("MEDALLION_REQUIRE_BOTOCORE").is_err(),
            "python3 with botocore is required"
        );
        eprintln!("NOTE: python3/botocore missing (pip install botocore); {what} not checked against the model");
        return;
    }
    let out = out.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(": 0 problems"),
        "the AWS model rejects the {what}:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
