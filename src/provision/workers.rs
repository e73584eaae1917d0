//! `medallion aws workers --dry-run DIR`: the definitions that run the stage binaries as
//! stateless workers past one machine — an AWS Batch job definition (the medallion image, one
//! child per landed file) and a Step Functions state machine that promotes each dataset as a
//! Batch array job (`AWS_BATCH_JOB_ARRAY_INDEX` picks the child's file), in dependency order,
//! then builds curated once.
//!
//! Invariants: each file is the request of one API call (`<service>-<operation>.json`, the
//! request's own members), so `aws <service> <operation> --cli-input-json file://...` creates
//! it; a dataset's array has one child per landed file (no array below two files: the single
//! job then promotes whatever is pending); curated runs after every dataset's workers.

use serde_json::{json, Value};

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

/// Name of the job definition and prefix of the jobs.
pub const JOB_DEFINITION: &str = "medallion-worker";
/// Name of the state machine.
pub const STATE_MACHINE: &str = "medallion-promote";

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

/// One Batch job state: `datasets` promoted by `files` workers (or curated built once).
fn job_state(
    s: &WorkerSettings,
    name: &str,
    params: Value,
    files: usize,
    next: Option<&str>,
) -> Value {
    let mut p = json!({
        "JobName": format!("{JOB_DEFINITION}-{name}"),
        "JobQueue": s.job_queue,
        "JobDefinition": JOB_DEFINITION,
        "Parameters": params
    });
    if files >= 2 {
        p["ArrayProperties"] = json!({"Size": files});
    }
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": p,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2.0}]
    });
    match next {
        Some(n) => state["Next"] = json!(n),
        None => state["End"] = json!(true),
    }
    state
}

/// The Step Functions `CreateStateMachine` request: every dataset with landed files, in
/// dependency order (`datasets`, with their landed-file counts), then curated.
pub fn state_machine(s: &WorkerSettings, datasets: &[(String, usize)]) -> Value {
    let mut states = serde_json::Map::new();
    let todo: Vec<&(String, usize)> = datasets.iter().filter(|(_, n)| *n > 0).collect();
    let names: Vec<String> = todo.iter().map(|(d, _)| format!("promote_{d}")).collect();
    for (i, (dataset, files)) in todo.iter().enumerate() {
        let next = names.get(i + 1).map_or("build_curated", String::as_str);
        states.insert(
            names[i].clone(),
            job_state(
                s,
                dataset,
                json!({"dataset": dataset, "to": "trusted"}),
                *files,
                Some(next),
            ),
        );
    }
    let mut curated = job_state(s, "curated", json!({}), 1, None);
    // `promote --all --to curated`: every dataset's pending work, then the products.
    curated["Parameters"]["ContainerOverrides"] = json!({
        "Command": ["medallion", "--project", "/project", "promote", "--all", "--to", "curated"]
    });
    states.insert("build_curated".to_string(), curated);
    let definition = json!({
        "Comment": "medallion: each dataset's landed files promoted to trusted by one worker per file (an AWS Batch array; Delta's conditional-PUT commits order their writes), then curated built once.",
        "StartAt": names.first().map_or("build_curated", String::as_str),
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

    #[test]
    fn one_array_child_per_landed_file_in_dependency_order_then_curated() {
        let req = state_machine(
            &settings(),
            &[
                ("courses".into(), 1),
                ("students".into(), 0),
                ("attendance".into(), 8),
            ],
        );
        let def: Value = serde_json::from_str(req["definition"].as_str().unwrap()).unwrap();
        assert_eq!(def["StartAt"], "promote_courses");
        let states = def["States"].as_object().unwrap();
        assert!(
            !states.contains_key("promote_students"),
            "nothing landed: no job"
        );
        let courses = &states["promote_courses"];
        assert_eq!(courses["Next"], "promote_attendance");
        assert!(
            courses["Parameters"].get("ArrayProperties").is_none(),
            "one file: no array"
        );
        let att = &states["promote_attendance"];
        assert_eq!(att["Parameters"]["ArrayProperties"]["Size"], 8);
        assert_eq!(att["Parameters"]["Parameters"]["dataset"], "attendance");
        assert_eq!(att["Next"], "build_curated");
        assert_eq!(states["build_curated"]["End"], true);
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
}
