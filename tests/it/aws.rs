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

pub(crate) fn aws_cfg(m: &Moto) -> AwsConfig {
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
        workers: None,
    }
}

fn aws_project(m: &Moto) -> TestProject {
    aws_project_named(m, "school", "medallion", "medallion")
}

/// An AWS project on `m` with its own buckets (`prefix-*`), key alias and Glue databases.
pub(crate) fn aws_project_named(m: &Moto, prefix: &str, alias: &str, glue: &str) -> TestProject {
    let p = TestProject::new();
    std::fs::write(
        p.path("medallion.yaml"),
        format!(
            "backend: aws\naws:\n  region: us-east-1\n  endpoint: {}\n  bucket_prefix: {prefix}\n  kms_key_alias: alias/{alias}\n  glue_database_prefix: {glue}\n  # moto cannot evaluate policy conditions (it would deny every put); the policies are checked as documents\n  apply_bucket_policies: false\n",
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

const NOW: (&str, &str) = ("MEDALLION_NOW", "2026-12-01T00:00:00Z");

fn run_now(p: &TestProject, args: &[&str]) -> Run {
    let mut env = ENV.to_vec();
    env.push(NOW);
    let r = p.run_env(args, &env);
    assert_eq!(
        r.code, 0,
        "medallion {args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Puts `body` at `key` in the landing bucket, as a school's export job would.
async fn upload(aws: &Aws, key: &str, body: Vec<u8>) {
    aws.s3
        .put_object()
        .bucket(aws.bucket("landing"))
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

/// The pseudonym the project's KMS-held key gives `id`.
async fn pseudonym_on_aws(aws: &Aws, id: &str) -> String {
    use medallion::crypto::KeyProvider;
    let key = aws.key_arn().await.unwrap();
    medallion::crypto::KmsKeyProvider::new(aws.clone(), key)
        .pseudonymization_key()
        .await
        .unwrap()
        .pseudonym(id)
}

/// Three absences in a row for the first student of the generated attendance export
/// (`absent_in_a_row` fires on them); returns the file, the student id and the course.
fn absences(gen: &std::path::Path) -> (Vec<u8>, String, String) {
    let text = std::fs::read_to_string(crate::harness::export_of(gen, "attendance")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = format!("{header}\n");
    for (i, date) in ["2026-10-05", "2026-10-06", "2026-10-07"]
        .iter()
        .enumerate()
    {
        let mut r = row.clone();
        let id = format!("Xaway{i}");
        let at = format!("{date}T09:00:00Z");
        (r[0], r[6], r[7], r[8], r[10]) = (&id, date, "absent", "0", &at);
        out.push_str(&r.join(","));
        out.push('\n');
    }
    (out.into_bytes(), row[1].to_string(), row[4].to_string())
}

/// Issue 14 on AWS: bootstrap wires the landing bucket's `inbox/` events to SQS and creates the
/// alerts topic; `watch --once` lands what the events name (reference data first, whatever
/// order the queue hands them in) and removes it from the inbox, a re-delivered event promotes
/// nothing twice, and the alert
/// reaches the SNS topic with a pseudonym, never the raw id.
#[test]
fn watch_lands_s3_inbox_events_once_and_alerts_reach_sns() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    let boot = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(boot.contains("created  SQS queue school-inbox"), "{boot}");
    assert!(
        boot.contains("bucket school-landing: inbox/ object-created events go to school-inbox"),
        "{boot}"
    );
    assert!(
        boot.contains("created  SNS topic school-alerts (SSE-KMS)"),
        "{boot}"
    );
    let gen = p.generate_into("gen", 8, 3, 0.0, 13, None);
    let (away, student, course) = absences(&gen);
    let (rt, aws) = clients(&m);
    let alerts_queue = rt.block_on(async {
        // The set-up as bootstrap left it.
        let key = aws.key_arn().await.unwrap();
        let topic = aws.alerts_topic_arn().await.unwrap().unwrap();
        let attrs = aws
            .sns
            .get_topic_attributes()
            .topic_arn(&topic)
            .send()
            .await
            .unwrap();
        assert_eq!(
            attrs.attributes().unwrap().get("KmsMasterKeyId"),
            Some(&key),
            "the topic is SSE-KMS with the project key"
        );
        let n = aws
            .s3
            .get_bucket_notification_configuration()
            .bucket("school-landing")
            .send()
            .await
            .unwrap();
        let q = &n.queue_configurations()[0];
        assert!(q.queue_arn().ends_with(":school-inbox"));
        assert_eq!(
            q.events()
                .iter()
                .map(|e| e.as_str().to_string())
                .collect::<Vec<_>>(),
            ["s3:ObjectCreated:*"]
        );
        // Whoever reads alerts: an SQS queue subscribed to the topic (moto delivers SNS → SQS).
        let url = aws
            .sqs
            .create_queue()
            .queue_name("educators")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let arn = aws
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()
            .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .unwrap()
            .clone();
        aws.sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        // The dependent export first: the queue does not order events anyway.
        upload(&aws, "inbox/attendance_away.csv", away).await;
        for f in ["students.csv", "courses.csv"] {
            upload(&aws, &format!("inbox/{f}"), std::fs::read(gen.join(f)).unwrap()).await;
        }
        // S3 delivers at least once: a duplicate event for the attendance export.
        let inbox = aws
            .sqs
            .get_queue_url()
            .queue_name("school-inbox")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let event = serde_json::json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "school-landing"}, "object": {"key": "inbox/attendance_away.csv"}}
        }]});
        aws.sqs
            .send_message()
            .queue_url(&inbox)
            .message_body(event.to_string())
            .send()
            .await
            .unwrap();
        url
    });

    let watched = run_now(&p, &["watch", "--once"]).stdout;
    assert!(watched.contains("(SQS queue "), "{watched}");
    let promoted: Vec<&str> = watched
        .lines()
        .filter(|l| l.contains(": promoted as "))
        .collect();
    assert_eq!(promoted.len(), 3, "{watched}");
    assert!(
        promoted[2].starts_with("attendance_away.csv: promoted as attendance batch")
            && promoted[2]
                .contains("landing 3 = raw 3 + rejected 0; raw 3 = trusted 3 + quarantined 0"),
        "reference data first, so no attendance row is quarantined:\n{watched}"
    );
    // The duplicate event finds the export already landed and removed from the inbox.
    assert_eq!(
        watched.matches("attendance_away.csv:").count(),
        1,
        "{watched}"
    );
    assert!(
        watched.contains("books balance") && !watched.contains("DO NOT BALANCE"),
        "{watched}"
    );
    assert!(
        watched.contains("alert fired     absent_in_a_row"),
        "{watched}"
    );
    let q = run(
        &p,
        &[
            "query",
            "--engine",
            "local",
            "SELECT count(*) AS n FROM trusted.attendance",
            "--format",
            "csv",
        ],
    )
    .stdout;
    assert_eq!(q, "n\n3\n", "exactly once");

    rt.block_on(async {
        // Every event was consumed; one landed copy per export.
        let inbox = aws
            .sqs
            .get_queue_url()
            .queue_name("school-inbox")
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let left = aws
            .sqs
            .receive_message()
            .queue_url(&inbox)
            .send()
            .await
            .unwrap();
        assert!(left.messages().is_empty(), "{:?}", left.messages());
        let landed = aws
            .s3
            .list_objects_v2()
            .bucket("school-landing")
            .prefix("attendance/")
            .send()
            .await
            .unwrap();
        assert_eq!(landed.contents().len(), 2, "one file and its manifest");
        // Landed exports leave the inbox, every version of them: the lake's copy is the one
        // `forget` rewrites.
        let inbox_left = aws
            .s3
            .list_object_versions()
            .bucket("school-landing")
            .prefix("inbox/")
            .send()
            .await
            .unwrap();
        assert!(
            inbox_left.versions().is_empty() && inbox_left.delete_markers().is_empty(),
            "{inbox_left:?}"
        );

        // The alert reached the topic: the pseudonym, never the raw id.
        let pseudonym = pseudonym_on_aws(&aws, &student).await;
        let got = aws
            .sqs
            .receive_message()
            .queue_url(&alerts_queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let bodies: Vec<&str> = got.messages().iter().filter_map(|m| m.body()).collect();
        let fired: Vec<serde_json::Value> = bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .filter(|v: &serde_json::Value| v["rule_id"] == "absent_in_a_row")
            .collect();
        assert_eq!(fired.len(), 1, "{bodies:?}");
        assert_eq!(fired[0]["student_id"], pseudonym.as_str());
        assert_eq!(fired[0]["course_id"], course.as_str());
        assert_eq!(fired[0]["change"], "fired");
        for b in &bodies {
            assert!(!b.contains(&student), "raw id in an alert: {b}");
        }
    });
}

/// Every object version (and delete marker) in every bucket of the lake, with its bytes.
async fn every_version(aws: &Aws) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for purpose in medallion::aws::BUCKETS {
        let bucket = aws.bucket(purpose);
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = aws
                .s3
                .list_object_versions()
                .bucket(&bucket)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .unwrap();
            for v in page.versions() {
                let (key, id) = (v.key().unwrap(), v.version_id().unwrap());
                let bytes = aws
                    .s3
                    .get_object()
                    .bucket(&bucket)
                    .key(key)
                    .version_id(id)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes()
                    .to_vec();
                out.push((format!("s3://{bucket}/{key}?versionId={id}"), Some(bytes)));
            }
            for d in page.delete_markers() {
                out.push((
                    format!("s3://{bucket}/{} (delete marker)", d.key().unwrap()),
                    None,
                ));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
    }
    out
}

fn versions_holding(versions: &[(String, Option<Vec<u8>>)], needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for (what, bytes) in versions {
        let Some(bytes) = bytes else { continue };
        let bytes = bytes.to_ascii_lowercase();
        for n in needles {
            let n = n.to_ascii_lowercase();
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                hits.push(format!("{what} holds {n}"));
            }
        }
    }
    hits
}

/// Issue 13 on AWS: `forget` on versioned S3 buckets leaves no object version — current,
/// noncurrent or of a replaced landing file — holding the student's id, e-mail or pseudonym.
#[test]
fn forget_on_s3_leaves_no_object_version_naming_the_student() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    run(&p, &["aws", "bootstrap"]);
    let gen = p.generate_into("gen", 8, 2, 0.0, 13, None);
    for ds in ["courses", "students", "attendance"] {
        run(&p, &["land", ds, gen.to_str().unwrap()]);
    }
    let promoted = run_now(&p, &["promote", "--all"]).stdout;
    assert!(promoted.contains("books balance"), "{promoted}");
    let id = "S000003";
    let roster = std::fs::read_to_string(gen.join("students.csv")).unwrap();
    let email = roster
        .lines()
        .find(|l| l.starts_with(&format!("{id},")))
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .to_string();
    let (rt, aws) = clients(&m);
    let needles = vec![
        id.to_string(),
        email,
        rt.block_on(pseudonym_on_aws(&aws, id)),
    ];
    let landed_keys = |aws: &Aws| {
        let aws = aws.clone();
        async move {
            let mut keys: Vec<String> = aws
                .s3
                .list_objects_v2()
                .bucket("school-landing")
                .send()
                .await
                .unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect();
            keys.sort();
            keys
        }
    };
    let before_keys = rt.block_on(landed_keys(&aws));
    let before = rt.block_on(every_version(&aws));
    // The id and the e-mail are in the landed exports (the pseudonym is in compressed Parquet
    // pages, where a byte search may not see it: the query below finds it instead).
    for n in &needles[..2] {
        assert!(
            !versions_holding(&before, std::slice::from_ref(n)).is_empty(),
            "{n} is in the lake before"
        );
    }
    let sql = format!(
        "SELECT count(*) AS n FROM trusted.students WHERE student_id = '{}'",
        needles[2]
    );
    let q = run(&p, &["query", "--engine", "local", &sql, "--format", "csv"]).stdout;
    assert_eq!(q, "n\n1\n", "the pseudonym is the student's");

    let r = run_now(&p, &["forget", "--student", id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(report["versions_removed"].as_u64().unwrap() > 0, "{report}");
    let after = rt.block_on(every_version(&aws));
    let left = versions_holding(&after, &needles);
    assert!(
        left.is_empty(),
        "the student survives:\n{}",
        left.join("\n")
    );

    // The landed files that held the student were replaced (new content, same batch) and the
    // originals are gone, every version of them.
    let after_keys = rt.block_on(landed_keys(&aws));
    let replaced: Vec<&String> = before_keys
        .iter()
        .filter(|k| !after_keys.contains(k))
        .collect();
    assert!(
        replaced.iter().any(|k| k.starts_with("students/")),
        "{before_keys:?} -> {after_keys:?}"
    );
    assert_eq!(before_keys.len(), after_keys.len(), "{after_keys:?}");
    for k in &replaced {
        assert!(
            !after
                .iter()
                .any(|(what, _)| what.starts_with(&format!("s3://school-landing/{k}"))),
            "a version of {k} is left"
        );
    }
    // The erasure reached every stage (counts before it, from the report).
    for t in ["raw.students", "trusted.students", "trusted.attendance"] {
        assert!(report["tables"][t].as_u64().unwrap() > 0, "{t}: {report}");
    }
}

/// Issue 12: bootstrap creates the workers' Batch job definition and Step Functions state
/// machine from the functions `aws workers --dry-run` writes; a second bootstrap registers no
/// new revision; doctor compares them; a changed setting registers one revision / updates.
#[test]
fn bootstrap_creates_the_workers_dry_run_writes_and_registers_no_revision_twice() {
    let Some(m) = moto() else { return };
    let p = aws_project(&m);
    let first = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        first.contains("skipped  workers") && first.contains("aws.workers.job_role_arn is not set"),
        "no role ARN: the workers are skipped, saying why\n{first}"
    );
    let yaml = std::fs::read_to_string(p.path("medallion.yaml")).unwrap();
    let workers = |image: &str, states_role: &str| {
        format!(
            "{yaml}  workers:\n    image: {image}\n    job_role_arn: arn:aws:iam::123456789012:role/medallion-worker\n    states_role_arn: arn:aws:iam::123456789012:role/{states_role}\n"
        )
    };
    std::fs::write(
        p.path("medallion.yaml"),
        workers("medallion:1", "medallion-states"),
    )
    .unwrap();

    let plan = run(&p, &["aws", "bootstrap", "--dry-run"]).stdout;
    assert!(
        plan.contains("plan     Batch job definition medallion-worker:1 (none registered)")
            && plan.contains("plan     Step Functions state machine medallion-promote"),
        "{plan}"
    );
    let boot = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        boot.contains("created  Batch job definition medallion-worker:1")
            && boot.contains("created  Step Functions state machine medallion-promote"),
        "{boot}"
    );
    let again = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        !again.lines().any(|l| l.starts_with("created")),
        "bootstrap is idempotent:\n{again}"
    );
    assert!(
        again.contains("ok       Batch job definition medallion-worker:1")
            && again.contains("ok       Step Functions state machine medallion-promote"),
        "{again}"
    );

    // What bootstrap created is what `--dry-run` writes (with one landed file: the execution
    // input counts it, and botocore checks the array size read from it).
    let inbox = p.generate(20, 5, 0.03);
    run(&p, &["land", "attendance", inbox.to_str().unwrap()]);
    let dir = p.path("workers");
    let printed = run(&p, &["aws", "workers", "--dry-run", dir.to_str().unwrap()]).stdout;
    assert!(
        printed.contains("attendance: 1 landed file(s)"),
        "{printed}"
    );
    let file = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let (job, machine) = (
        file("batch-register-job-definition.json"),
        file("stepfunctions-create-state-machine.json"),
    );
    let (rt, aws) = clients(&m);
    let (revisions, live) = rt.block_on(async {
        let defs = aws
            .batch
            .describe_job_definitions()
            .job_definition_name("medallion-worker")
            .status("ACTIVE")
            .send()
            .await
            .unwrap();
        let arn = aws
            .sfn
            .list_state_machines()
            .send()
            .await
            .unwrap()
            .state_machines()[0]
            .state_machine_arn()
            .to_string();
        let live = aws
            .sfn
            .describe_state_machine()
            .state_machine_arn(arn)
            .send()
            .await
            .unwrap();
        (defs.job_definitions().to_vec(), live)
    });
    assert_eq!(revisions.len(), 1, "one revision: {revisions:?}");
    let d = &revisions[0];
    let c = d.container_properties().unwrap();
    let want = &job["containerProperties"];
    assert_eq!(c.image(), want["image"].as_str());
    assert_eq!(c.image(), Some("medallion:1"));
    let command: Vec<&str> = want["command"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(c.command(), command.as_slice());
    assert_eq!(c.job_role_arn(), want["jobRoleArn"].as_str());
    assert_eq!(c.execution_role_arn(), want["executionRoleArn"].as_str());
    let requirements: Vec<(Option<&str>, Option<&str>)> = c
        .resource_requirements()
        .iter()
        .map(|r| (r.r#type().map(|t| t.as_str()), r.value()))
        .collect();
    let wanted: Vec<(Option<&str>, Option<&str>)> = want["resourceRequirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type"].as_str(), r["value"].as_str()))
        .collect();
    assert_eq!(requirements, wanted);
    let env: Vec<(Option<&str>, Option<&str>)> = c
        .environment()
        .iter()
        .map(|e| (e.name(), e.value()))
        .collect();
    assert_eq!(env, vec![(Some("RUST_LOG"), Some("info"))]);
    assert_eq!(
        c.network_configuration()
            .and_then(|n| n.assign_public_ip())
            .map(|a| a.as_str()),
        want["networkConfiguration"]["assignPublicIp"].as_str()
    );
    assert_eq!(d.r#type(), job["type"].as_str());
    assert_eq!(
        d.parameters()
            .and_then(|p| p.get("dataset"))
            .map(String::as_str),
        job["parameters"]["dataset"].as_str()
    );
    assert_eq!(
        d.retry_strategy().and_then(|r| r.attempts()),
        job["retryStrategy"]["attempts"].as_i64().map(|n| n as i32)
    );
    assert_eq!(
        d.timeout().and_then(|t| t.attempt_duration_seconds()),
        job["timeout"]["attemptDurationSeconds"]
            .as_i64()
            .map(|n| n as i32)
    );
    assert_eq!(d.propagate_tags(), job["propagateTags"].as_bool());
    let caps: Vec<&str> = d
        .platform_capabilities()
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(caps, vec!["FARGATE"]);
    assert_eq!(
        d.tags().and_then(|t| t.get("app")).map(String::as_str),
        Some("medallion")
    );
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    let start = file("stepfunctions-start-execution.json");
    assert_eq!(
        parse(start["input"].as_str().unwrap())["files"]["attendance"],
        1,
        "{start}"
    );
    assert_eq!(
        parse(live.definition()),
        parse(machine["definition"].as_str().unwrap()),
        "the state machine is the one --dry-run writes"
    );
    assert_eq!(Some(live.role_arn()), machine["roleArn"].as_str());
    crate::harness::botocore_accepts("aws_request_validate.py", &dir, "worker definitions");
    let doctor = run(&p, &["aws", "doctor"]).stdout;
    assert!(
        doctor.contains("ok       Batch job definition medallion-worker:1")
            && doctor.contains("ok       Step Functions state machine medallion-promote")
            && doctor.contains("No drift."),
        "{doctor}"
    );

    // A new image and a new Step Functions role: doctor sees the drift, bootstrap registers one
    // revision and updates the state machine, and doctor finds nothing more.
    std::fs::write(
        p.path("medallion.yaml"),
        workers("medallion:2", "medallion-sfn"),
    )
    .unwrap();
    let r = p.run_env(&["aws", "doctor"], &ENV);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("DRIFT    Batch job definition medallion-worker:1 is not")
            && r.stdout
                .contains("DRIFT    Step Functions state machine medallion-promote: it runs as"),
        "{}",
        r.stdout
    );
    let changed = run(&p, &["aws", "bootstrap"]).stdout;
    assert!(
        changed.contains("created  Batch job definition medallion-worker:2")
            && changed
                .contains("created  Step Functions state machine medallion-promote (updated)"),
        "{changed}"
    );
    let doctor = run(&p, &["aws", "doctor"]).stdout;
    assert!(
        doctor.contains("ok       Batch job definition medallion-worker:2")
            && doctor.contains("No drift."),
        "{doctor}"
    );
}
