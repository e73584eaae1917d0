//! The definitions that run the stage binaries as stateless workers past one machine — an AWS
//! Batch job definition (the medallion image, one child per landed file) and a Step Functions
//! state machine that promotes each dataset as a Batch array job (`AWS_BATCH_JOB_ARRAY_INDEX`
//! picks the child's file), in dependency order, then builds curated once.
//! `medallion aws workers --dry-run DIR` writes them as request files; `medallion aws
//! bootstrap` creates them ([`ensure_workers`]) from the same functions ([`job_definition`],
//! [`state_machine`]), and `aws doctor` compares the live ones with them.
//!
//! The landed-file counts are not baked into the state machine: they change with every land,
//! and the state machine is set-up, not a run. An execution's input carries them
//! (`{"files": {"attendance": 8, ...}}`, [`execution_input`]; `--dry-run` writes it as a
//! `StartExecution` request with the counts it finds in landing), and a Choice state per
//! dataset reads its count: two or more files run a Batch array of that size, one file a single
//! job (which promotes whatever is pending), none or absent skips the dataset.
//!
//! Invariants: each file is the request of one API call (`<service>-<operation>.json`, the
//! request's own members), so `aws <service> <operation> --cli-input-json file://...` creates
//! it; a dataset's array has one child per landed file of the execution's input; curated runs
//! after every dataset's workers. Bootstrap is idempotent: a Batch job definition revision is
//! registered only when the latest ACTIVE one does not carry the digest of [`job_definition`]
//! (tag [`DEFINITION_TAG`]: revisions are immutable, so the tag names their content); the state
//! machine is updated only when its definition or role differ. Without both role ARNs in
//! `aws.workers:` bootstrap creates neither and says why. IAM roles, the Batch compute
//! environment and job queue are the account's: bootstrap never creates them.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::WorkersConfig;

mod live;
pub(super) use live::{ensure_workers, workers_drift};

/// What the workers run and where.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Container image holding `medallion` and the project at `/project`.
    pub image: String,
    /// Batch job queue.
    pub job_queue: String,
    /// Role the containers run as (reads and writes the lake, KMS, Glue, CloudWatch).
    pub job_role_arn: String,
    /// Role Step Functions runs as (submits and watches the Batch jobs).
    pub states_role_arn: String,
    /// vCPUs and memory (MiB) per worker.
    pub vcpus: u32,
    /// Memory (MiB) per worker.
    pub memory_mib: u32,
}

/// A setting the workers cannot be created without is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aws.workers.{0} is not set in medallion.yaml")]
pub struct MissingSetting(pub &'static str);

impl WorkerSettings {
    /// The settings of the `aws.workers:` section.
    ///
    /// # Errors
    /// [`MissingSetting`] when the section or one of its role ARNs is absent.
    pub fn from_config(cfg: Option<&WorkersConfig>) -> Result<Self, MissingSetting> {
        let cfg = cfg.ok_or(MissingSetting("job_role_arn"))?;
        Ok(Self {
            image: cfg.image.clone(),
            job_queue: cfg.job_queue.clone(),
            job_role_arn: cfg
                .job_role_arn
                .clone()
                .ok_or(MissingSetting("job_role_arn"))?,
            states_role_arn: cfg
                .states_role_arn
                .clone()
                .ok_or(MissingSetting("states_role_arn"))?,
            vcpus: cfg.vcpus,
            memory_mib: cfg.memory_mib,
        })
    }
}

/// Name of the job definition and prefix of the jobs.
pub const JOB_DEFINITION: &str = "medallion-worker";
/// Name of the state machine.
pub const STATE_MACHINE: &str = "medallion-promote";
/// Tag bootstrap puts on the job definition revisions it registers: the SHA-256 of
/// [`job_definition`]'s request, so an unchanged definition registers no new revision.
pub const DEFINITION_TAG: &str = "medallion:definition-sha256";
/// The execution input's member holding each dataset's landed-file count.
const FILES: &str = "files";
/// The last state: `promote --all --to curated`.
const CURATED: &str = "build_curated";

/// The Batch `RegisterJobDefinition` request.
pub fn job_definition(s: &WorkerSettings) -> Value {
    json!({
        "jobDefinitionName": JOB_DEFINITION,
        "type": "container",
        "platformCapabilities": ["FARGATE"],
        "parameters": {"dataset": "attendance", "to": "trusted"},
        "containerProperties": {
            "image": s.image,
            "command": ["medallion", "--project", "/project", "promote", "Ref::dataset", "--to", "Ref::to"],
            "jobRoleArn": s.job_role_arn,
            "executionRoleArn": s.job_role_arn,
            "resourceRequirements": [
                {"type": "VCPU", "value": s.vcpus.to_string()},
                {"type": "MEMORY", "value": s.memory_mib.to_string()}
            ],
            "environment": [{"name": "RUST_LOG", "value": "info"}],
            "networkConfiguration": {"assignPublicIp": "DISABLED"}
        },
        // A lost commit race is retried inside the worker; a crashed worker is rerun whole
        // (every write is txn-guarded, so a rerun completes what it left).
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 3600},
        "propagateTags": true,
        "tags": {"app": "medallion"}
    })
}

/// One Batch job state: a dataset promoted by an array of workers as large as the execution
/// input's count at `array_size` (a JSONPath), or by one job; or curated built once. The job's
/// result is dropped (`ResultPath: null`) so the counts reach the next state.
fn job_state(
    s: &WorkerSettings,
    name: &str,
    params: Value,
    array_size: Option<&str>,
    next: Option<&str>,
) -> Value {
    let mut p = json!({
        "JobName": format!("{JOB_DEFINITION}-{name}"),
        "JobQueue": s.job_queue,
        "JobDefinition": JOB_DEFINITION,
        "Parameters": params
    });
    if let Some(path) = array_size {
        p["ArrayProperties"] = json!({"Size.$": path});
    }
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": p,
        "ResultPath": null,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2.0}]
    });
    match next {
        Some(n) => state["Next"] = json!(n),
        None => state["End"] = json!(true),
    }
    state
}

/// The Step Functions `CreateStateMachine` request: every dataset in dependency order
/// (`datasets`), each promoted by as many workers as the execution input says it has landed
/// files ([`execution_input`]), then curated.
pub fn state_machine(s: &WorkerSettings, datasets: &[String]) -> Value {
    let mut states = serde_json::Map::new();
    let count = |d: &str| format!("count_{d}");
    for (i, dataset) in datasets.iter().enumerate() {
        let next = datasets
            .get(i + 1)
            .map_or_else(|| CURATED.to_string(), |n| count(n));
        let files = format!("$.{FILES}.{dataset}");
        let known = [
            json!({"Variable": files, "IsPresent": true}),
            json!({"Variable": files, "IsNumeric": true}),
        ];
        let rule = |test: Value, to: String| {
            let mut all = known.to_vec();
            all.push(test);
            json!({"And": all, "Next": to})
        };
        let (array, single) = (
            format!("promote_{dataset}"),
            format!("promote_{dataset}_file"),
        );
        states.insert(
            count(dataset),
            json!({
                "Type": "Choice",
                "Choices": [
                    rule(json!({"Variable": files, "NumericGreaterThanEquals": 2}), array.clone()),
                    rule(json!({"Variable": files, "NumericEquals": 1}), single.clone())
                ],
                "Default": next
            }),
        );
        let params = json!({"dataset": dataset, "to": "trusted"});
        states.insert(
            array,
            job_state(s, dataset, params.clone(), Some(&files), Some(&next)),
        );
        states.insert(single, job_state(s, dataset, params, None, Some(&next)));
    }
    let mut curated = job_state(s, "curated", json!({}), None, None);
    // `promote --all --to curated`: every dataset's pending work, then the products.
    curated["Parameters"]["ContainerOverrides"] = json!({
        "Command": ["medallion", "--project", "/project", "promote", "--all", "--to", "curated"]
    });
    states.insert(CURATED.to_string(), curated);
    let definition = json!({
        "Comment": "medallion: each dataset's landed files (the execution input's files.<dataset>) promoted to trusted by one worker per file (an AWS Batch array; Delta's conditional-PUT commits order their writes), then curated built once.",
        "StartAt": datasets.first().map_or_else(|| CURATED.to_string(), |d| count(d)),
        "States": states
    });
    json!({
        "name": STATE_MACHINE,
        "definition": definition.to_string(),
        "roleArn": s.states_role_arn,
        "type": "STANDARD",
        "tags": [{"key": "app", "value": "medallion"}]
    })
}

/// An execution's input: each dataset's landed-file count (what the state machine sizes its
/// arrays by).
pub fn execution_input(counts: &[(String, usize)]) -> Value {
    let files: serde_json::Map<String, Value> =
        counts.iter().map(|(d, n)| (d.clone(), json!(n))).collect();
    json!({ FILES: files })
}

/// The Step Functions `StartExecution` request that runs the state machine over `counts`
/// (`account` and `region` name its ARN).
pub fn start_execution(region: &str, account: &str, counts: &[(String, usize)]) -> Value {
    json!({
        "stateMachineArn": format!("arn:aws:states:{region}:{account}:stateMachine:{STATE_MACHINE}"),
        "input": execution_input(counts).to_string()
    })
}

/// SHA-256 of a request, hex.
fn digest(request: &Value) -> String {
    hex::encode(Sha256::digest(request.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerSettings {
        WorkerSettings {
            image: "medallion:latest".into(),
            job_queue: "medallion-workers".into(),
            job_role_arn: "arn:aws:iam::123456789012:role/medallion-worker".into(),
            states_role_arn: "arn:aws:iam::123456789012:role/medallion-states".into(),
            vcpus: 2,
            memory_mib: 4096,
        }
    }

    /// The members of `job_definition`'s request that `register` sends (a unit test keeps the
    /// two in step).
    const REGISTERED: &[&str] = &[
        "jobDefinitionName",
        "type",
        "platformCapabilities",
        "parameters",
        "containerProperties",
        "retryStrategy",
        "timeout",
        "propagateTags",
        "tags",
    ];
    /// The members of its `containerProperties` that `register` sends.
    const REGISTERED_CONTAINER: &[&str] = &[
        "image",
        "command",
        "jobRoleArn",
        "executionRoleArn",
        "resourceRequirements",
        "environment",
        "networkConfiguration",
    ];

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn each_dataset_in_dependency_order_sized_by_the_execution_input_then_curated() {
        let req = state_machine(&settings(), &names(&["courses", "students", "attendance"]));
        let def: Value = serde_json::from_str(req["definition"].as_str().unwrap()).unwrap();
        assert_eq!(def["StartAt"], "count_courses");
        let states = def["States"].as_object().unwrap();
        let choice = &states["count_courses"];
        assert_eq!(choice["Type"], "Choice");
        assert_eq!(choice["Choices"][0]["Next"], "promote_courses");
        assert_eq!(choice["Choices"][1]["Next"], "promote_courses_file");
        assert_eq!(
            choice["Default"], "count_students",
            "no files: next dataset"
        );
        assert_eq!(states["promote_courses"]["Next"], "count_students");
        assert!(
            states["promote_courses_file"]["Parameters"]
                .get("ArrayProperties")
                .is_none(),
            "one file: no array"
        );
        let att = &states["promote_attendance"];
        assert_eq!(
            att["Parameters"]["ArrayProperties"]["Size.$"],
            "$.files.attendance"
        );
        assert_eq!(att["Parameters"]["Parameters"]["dataset"], "attendance");
        assert_eq!(att["Next"], "build_curated");
        assert_eq!(states["count_attendance"]["Default"], "build_curated");
        assert_eq!(states["build_curated"]["End"], true);
        for (name, s) in states {
            if s["Type"] == "Task" {
                assert!(
                    s["ResultPath"].is_null(),
                    "{name}: the counts reach the next state"
                );
            }
        }
    }

    #[test]
    fn no_dataset_builds_curated_only() {
        let req = state_machine(&settings(), &[]);
        let def: Value = serde_json::from_str(req["definition"].as_str().unwrap()).unwrap();
        assert_eq!(def["StartAt"], "build_curated");
    }

    #[test]
    fn the_execution_input_holds_each_datasets_count() {
        let counts = vec![("courses".to_string(), 1), ("attendance".to_string(), 8)];
        assert_eq!(
            execution_input(&counts),
            json!({"files": {"courses": 1, "attendance": 8}})
        );
        let req = start_execution("eu-west-1", "ACCOUNT_ID", &counts);
        assert_eq!(
            req["stateMachineArn"],
            "arn:aws:states:eu-west-1:ACCOUNT_ID:stateMachine:medallion-promote"
        );
        let input: Value = serde_json::from_str(req["input"].as_str().unwrap()).unwrap();
        assert_eq!(input["files"]["attendance"], 8);
    }

    #[test]
    fn the_job_runs_the_promote_verb_with_the_dataset_parameter() {
        let jd = job_definition(&settings());
        let cmd: Vec<&str> = jd["containerProperties"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            cmd.contains(&"Ref::dataset") && cmd.contains(&"promote"),
            "{cmd:?}"
        );
    }

    #[test]
    fn bootstrap_registers_every_member_of_the_request() {
        let jd = job_definition(&settings());
        for k in jd.as_object().unwrap().keys() {
            assert!(REGISTERED.contains(&k.as_str()), "{k} is not registered");
        }
        for k in jd["containerProperties"].as_object().unwrap().keys() {
            assert!(
                REGISTERED_CONTAINER.contains(&k.as_str()),
                "containerProperties.{k} is not registered"
            );
        }
    }

    #[test]
    fn the_digest_changes_with_the_content_only() {
        let a = digest(&job_definition(&settings()));
        assert_eq!(a, digest(&job_definition(&settings())));
        let mut other = settings();
        other.image = "medallion:2".into();
        assert_ne!(a, digest(&job_definition(&other)));
    }

    #[test]
    fn without_a_role_arn_there_are_no_settings() {
        assert_eq!(
            WorkerSettings::from_config(None).unwrap_err(),
            MissingSetting("job_role_arn")
        );
        let cfg = WorkersConfig {
            job_role_arn: Some("arn:aws:iam::1:role/w".into()),
            ..WorkersConfig::default()
        };
        assert_eq!(
            WorkerSettings::from_config(Some(&cfg)).unwrap_err(),
            MissingSetting("states_role_arn")
        );
        let cfg = WorkersConfig {
            states_role_arn: Some("arn:aws:iam::1:role/s".into()),
            ..cfg
        };
        let s = WorkerSettings::from_config(Some(&cfg)).unwrap();
        assert_eq!((s.image.as_str(), s.memory_mib), ("medallion:latest", 4096));
    }
}
