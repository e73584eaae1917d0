//! The AWS backend against moto's server on loopback (a real S3/KMS/Glue/CloudWatch wire
//! protocol, not a mock in the process). Each test starts its own server on a free port.
//! moto is required when MEDALLION_REQUIRE_MOTO=1 (CI installs it).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medallion::aws::Aws;
use medallion::config::AwsConfig;

use crate::harness::{Run, TestProject};

pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn moto() -> Option<Moto> {
    let Ok(child) = (|| {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok::<_, std::io::Error>((child, port))
    })() else {
        assert!(
            std::env::var("MEDALLION_REQUIRE_MOTO").is_err(),
            "moto_server is required but not installed"
        );
        eprintln!("NOTE: moto_server not installed (pip install 'moto[server]==5.2.5'); AWS tests skipped");
        return None;
    };
    let (child, port) = child;
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    })
}

pub(crate) const ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

fn aws_cfg(m: &Moto) -> AwsConfig {
    AwsConfig {
        region: "us-east-1".into(),
        endpoint: Some(m.endpoint.clone()),
        bucket_prefix: "school".into(),
        kms_key_alias: "alias/medallion".into(),
        glue_database_prefix: "medallion".into(),
        cloudwatch_namespace: "Medallion".into(),
        apply_bucket_policies: false,
        landing_retention_days: 400,
        deleted_object_retention_days: 30,
        quicksight: None,
    }
}

fn aws_project(m: &Moto) -> TestProject {
    let p = TestProject::new();
    std::fs::write(
        p.path("medallion.yaml"),
        format!(
            "backend: aws\naws:\n  region: us-east-1\n  endpoint: {}\n  bucket_prefix: school\n  kms_key_alias: alias/medallion\n  glue_database_prefix: medallion\n  # moto cannot evaluate policy conditions (it would deny every put); the policies are checked as documents\n  apply_bucket_policies: false\n",
            m.endpoint
        ),
    )
    .unwrap();
    p
}

fn run(p: &TestProject, args: &[&str]) -> Run {
    let r = p.run_env(args, &ENV);
    assert_eq!(
        r.code, 0,
        "medallion {args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

fn clients(m: &Moto) -> (tokio::runtime::Runtime, Aws) {
    for (k, v) in ENV {
        // Same values in every test thread.
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let aws = rt.block_on(Aws::new(&aws_cfg(m)));
    (rt, aws)
}

#[test]
fn promotion_on_s3_is_encrypted_registered_and_measured() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    let first = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        first.contains("created  KMS key alias/medallion"),
        "{first}"
    );
    assert!(first.contains("created  bucket school-raw"), "{first}");
    let second = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        !second.lines().any(|l| l.starts_with("created")),
        "bootstrap is idempotent:\n{second}"
    );
    let inbox = p.generate(20, 5, 0.03);
    for ds in ["courses", "students", "attendance", "grades"] {
        run(&p, &["land", ds, inbox.to_str().unwrap()]);
    }
    let promoted = run(&p, &["promote", "--all"]).stdout;
    assert!(
        promoted.contains("books balance") && !promoted.contains("DO NOT BALANCE"),
        "{promoted}"
    );
    let again = run(&p, &["promote", "--all"]).stdout;
    assert!(again.contains("Nothing to promote"), "{again}");

    let (rt, aws) = clients(&m);
    rt.block_on(async {
        let key = aws.key_arn().await.unwrap();
        let key_id = key.rsplit('/').next().unwrap().to_string();
        // Every object written, landing files and Delta data and logs alike, is SSE-KMS with the key.
        let mut checked = 0;
        for purpose in ["landing", "raw", "trusted", "curated", "ops"] {
            let bucket = aws.bucket(purpose);
            let list = aws
                .s3
                .list_objects_v2()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
            for o in list.contents() {
                let k = o.key().unwrap();
                let head = aws
                    .s3
                    .head_object()
                    .bucket(&bucket)
                    .key(k)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    head.server_side_encryption().map(|s| s.as_str()),
                    Some("aws:kms"),
                    "{bucket}/{k}"
                );
                assert!(
                    head.ssekms_key_id().is_some_and(|id| id.contains(&key_id)),
                    "{bucket}/{k}: {:?}",
                    head.ssekms_key_id()
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} objects");
        let logs = aws
            .s3
            .list_objects_v2()
            .bucket("school-trusted")
            .prefix("attendance/_delta_log/")
            .send()
            .await
            .unwrap();
        assert!(logs
            .contents()
            .iter()
            .any(|o| o.key().unwrap().ends_with(".json")));

        // Glue: a Delta table Athena can read, columns and comments from the contract.
        let t = aws
            .glue
            .get_table()
            .database_name("medallion_trusted")
            .name("attendance")
            .send()
            .await
            .unwrap();
        let t = t.table().unwrap();
        let params = t.parameters().unwrap();
        assert_eq!(params.get("table_type").map(String::as_str), Some("DELTA"));
        assert_eq!(
            params.get("medallion.contract_version").map(String::as_str),
            Some("1.0.0")
        );
        let sd = t.storage_descriptor().unwrap();
        assert_eq!(sd.location(), Some("s3://school-trusted/attendance/"));
        let col = sd
            .columns()
            .iter()
            .find(|c| c.name() == "session_date")
            .unwrap();
        assert_eq!(col.r#type(), Some("date"));
        assert_eq!(col.comment(), Some("Date of the session."));
        assert!(aws
            .glue
            .get_table()
            .database_name("medallion_curated")
            .name("at_risk_students")
            .send()
            .await
            .is_ok());
        // Issue 15.5: every column of every Glue table carries a comment (Athena and
        // QuickSight show them to the analyst).
        let (mut columns, mut missing, mut tables) = (0, Vec::new(), Vec::new());
        for stage in ["raw", "trusted", "curated", "ops"] {
            let database = aws.database(stage);
            let listed = aws
                .glue
                .get_tables()
                .database_name(&database)
                .send()
                .await
                .unwrap();
            for t in listed.table_list() {
                tables.push(format!("{database}.{}", t.name()));
                for c in t
                    .storage_descriptor()
                    .map(|s| s.columns())
                    .unwrap_or_default()
                {
                    columns += 1;
                    if c.comment().unwrap_or_default().trim().is_empty() {
                        missing.push(format!("{database}.{}.{}", t.name(), c.name()));
                    }
                }
            }
        }
        for t in [
            "medallion_curated.course_summary",
            "medallion_ops.promotions",
            "medallion_ops.quality_results",
        ] {
            assert!(tables.iter().any(|x| x == t), "{t} not in Glue: {tables:?}");
        }
        assert!(
            missing.is_empty(),
            "{} of {columns} Glue columns have no comment:\n  {}",
            missing.len(),
            missing.join("\n  ")
        );

        // Lifecycle: landing expires; in the stage buckets only deleted (vacuumed) files do.
        let lc = aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket("school-trusted")
            .send()
            .await
            .unwrap();
        let rule = &lc.rules()[0];
        assert_eq!(rule.id(), Some("deleted-files-expiry"));
        assert!(rule.expiration().is_none(), "live Delta files never expire");
        assert_eq!(
            rule.noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days()),
            Some(30)
        );
        let lc = aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket("school-landing")
            .send()
            .await
            .unwrap();
        assert_eq!(lc.rules()[0].expiration().and_then(|e| e.days()), Some(400));

        // CloudWatch: the promotion's metrics and the alarms from catalog/alarms.yaml.
        let metrics = aws
            .cw
            .list_metrics()
            .namespace("Medallion")
            .metric_name("RowsPromoted")
            .send()
            .await
            .unwrap();
        assert!(metrics.metrics().iter().any(|mt| mt
            .dimensions()
            .iter()
            .any(|d| d.value() == Some("attendance"))));
        let alarms = aws
            .cw
            .describe_alarms()
            .alarm_name_prefix("medallion-attendance-")
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = alarms
            .metric_alarms()
            .iter()
            .filter_map(|a| a.alarm_name())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&"medallion-attendance-quarantine-rate-high"));
        let budget = aws
            .cw
            .describe_alarms()
            .alarm_names("medallion-daily-cost-over-budget")
            .send()
            .await
            .unwrap();
        let budget = &budget.metric_alarms()[0];
        assert_eq!(budget.metric_name(), Some("EstimatedCostUSD"));
        assert!(budget.dimensions().is_empty(), "the project's total");

        // Cost: measured requests and bytes, priced. Every promotion step reported them.
        let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            chrono::Utc::now().timestamp() + 600,
        );
        let start = aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            chrono::Utc::now().timestamp() - 3600,
        );
        let sum = |name: &'static str, dims: Vec<(&'static str, &'static str)>| {
            let aws = &aws;
            async move {
                let mut q = aws
                    .cw
                    .get_metric_statistics()
                    .namespace("Medallion")
                    .metric_name(name)
                    .start_time(start)
                    .end_time(now)
                    .period(86_400)
                    .statistics(aws_sdk_cloudwatch::types::Statistic::Sum);
                for (k, v) in dims {
                    q = q.dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder()
                            .name(k)
                            .value(v)
                            .build(),
                    );
                }
                let r = q.send().await.unwrap();
                r.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>()
            }
        };
        let att = vec![("Dataset", "attendance"), ("Stage", "trusted")];
        assert!(sum("BytesWritten", att.clone()).await > 1000.0);
        assert!(sum("S3Requests", att.clone()).await >= 3.0);
        assert!(sum("KmsRequests", att.clone()).await > 0.0);
        let cost = sum("EstimatedCostUSD", att).await;
        assert!(cost > 0.0 && cost < 0.1, "{cost}");
        assert!(sum("EstimatedCostUSD", vec![]).await >= cost);
    });

    let status: Vec<serde_json::Value> =
        serde_json::from_str(&run(&p, &["status", "--format", "json"]).stdout).unwrap();
    let trusted = status
        .iter()
        .find(|e| e["table"] == "trusted.attendance")
        .unwrap();
    assert!(trusted["rows"].as_u64().unwrap() > 0);
    assert_eq!(trusted["location"], "s3://school-trusted/attendance/");
    // A quarantine purge on S3: the rows go, and the catalog (Glue) shows it.
    let later = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let mut env = ENV.to_vec();
    env.push(("MEDALLION_NOW", later.as_str()));
    let purge = p.run_env(
        &[
            "quarantine",
            "purge",
            "attendance",
            "--older-than-days",
            "30",
        ],
        &env,
    );
    assert_eq!(purge.code, 0, "{}", purge.stderr);
    assert!(purge.stdout.contains("purged ("), "{}", purge.stdout);
    let status: Vec<serde_json::Value> =
        serde_json::from_str(&run(&p, &["status", "--format", "json"]).stdout).unwrap();
    let q = status
        .iter()
        .find(|e| e["table"] == "trusted.attendance_quarantine")
        .unwrap();
    assert_eq!(q["rows"], 0);
    let q = run(
        &p,
        &[
            "query",
            "--engine",
            "local",
            "SELECT count(*) AS n FROM curated.at_risk_students",
            "--format",
            "csv",
        ],
    )
    .stdout;
    assert!(q.starts_with("n\n"), "{q}");
    let doctor = run(&p, &["aws", "doctor"]).stdout;
    assert!(doctor.contains("No drift."), "{doctor}");
}

#[test]
fn doctor_reports_drift() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    run(&p, &["aws", "bootstrap"]);
    let (rt, aws) = clients(&m);
    rt.block_on(async {
        let key = aws.key_arn().await.unwrap();
        aws.kms
            .disable_key_rotation()
            .key_id(key)
            .send()
            .await
            .unwrap();
        aws.s3
            .delete_bucket_encryption()
            .bucket("school-raw")
            .send()
            .await
            .unwrap();
    });
    let r = p.run_env(&["aws", "doctor"], &ENV);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("DRIFT    KMS key alias/medallion: rotation is off"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("DRIFT    bucket school-raw: default encryption"),
        "{}",
        r.stdout
    );
    let fixed = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        fixed.contains("created  KMS key alias/medallion: rotation on"),
        "{fixed}"
    );
    assert!(run(&p, &["aws", "doctor"]).stdout.contains("No drift."));
}

#[test]
fn policies_are_least_privilege_and_buckets_deny_plaintext() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    run(&p, &["aws", "bootstrap", "--dry-run"]);
    let doc: serde_json::Value =
        serde_json::from_str(&run(&p, &["aws", "policies"]).stdout).unwrap();
    let lander = doc["lander"]["Statement"].as_array().unwrap();
    let puts: Vec<&serde_json::Value> = lander
        .iter()
        .filter(|s| s["Action"].to_string().contains("s3:PutObject"))
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0]["Resource"], "arn:aws:s3:::school-landing/*");
    let analyst = doc["analyst"].to_string();
    assert!(
        !analyst.contains("school-raw") && !analyst.contains("s3:PutObject"),
        "{analyst}"
    );
    let bp = &doc["bucket_policies"]["school-trusted"]["Statement"];
    assert_eq!(bp[0]["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(
        bp[1]["Condition"]["StringNotEquals"]["s3:x-amz-server-side-encryption"],
        "aws:kms"
    );
}

#[test]
fn athena_runs_named_queries_in_an_encrypted_workgroup() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    let boot = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        boot.contains("created  Athena workgroup medallion: results SSE-KMS"),
        "{boot}"
    );
    // moto answers Athena queries with results seeded through its API (first row: header).
    let seed = serde_json::json!({"results": [{
        "rows": [
            {"Data": [{"VarCharValue": "course_id"}, {"VarCharValue": "risk_level"}, {"VarCharValue": "students"}]},
            {"Data": [{"VarCharValue": "MAT101"}, {"VarCharValue": "high"}, {"VarCharValue": "3"}]},
            {"Data": [{"VarCharValue": "MAT101"}, {"VarCharValue": "low"}, {"VarCharValue": "21"}]}
        ],
        "column_info": [
            {"Name": "course_id", "Type": "varchar", "CatalogName": "", "SchemaName": "", "TableName": "", "Label": "", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true},
            {"Name": "risk_level", "Type": "varchar", "CatalogName": "", "SchemaName": "", "TableName": "", "Label": "", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true},
            {"Name": "students", "Type": "bigint", "CatalogName": "", "SchemaName": "", "TableName": "", "Label": "", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false}
        ]
    }]});
    let status = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &seed.to_string(),
        ])
        .arg(format!(
            "{}/moto-api/static/athena/query-results",
            m.endpoint
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let r = run(
        &p,
        &["query", "--named", "at_risk_by_course", "--format", "csv"],
    );
    assert_eq!(
        r.stdout,
        "course_id,risk_level,students\nMAT101,high,3\nMAT101,low,21\n"
    );
    assert!(
        r.stderr.contains("bytes scanned, estimated cost $"),
        "{}",
        r.stderr
    );
    let (rt, aws) = clients(&m);
    rt.block_on(async {
        let wg = aws
            .athena
            .get_work_group()
            .work_group("medallion")
            .send()
            .await
            .unwrap();
        let enc = wg
            .work_group()
            .unwrap()
            .configuration()
            .unwrap()
            .result_configuration()
            .unwrap()
            .encryption_configuration()
            .unwrap()
            .clone();
        assert_eq!(enc.encryption_option().as_str(), "SSE_KMS");
        let ids = aws
            .athena
            .list_query_executions()
            .work_group("medallion")
            .send()
            .await
            .unwrap();
        let id = ids.query_execution_ids().first().unwrap().clone();
        let q = aws
            .athena
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .unwrap();
        let sql = q.query_execution().unwrap().query().unwrap().to_string();
        assert!(
            sql.contains("FROM medallion_curated.at_risk_students"),
            "{sql}"
        );
    });
}
