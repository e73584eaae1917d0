//! Bootstrap's and doctor's side of the workers: the live Batch job definition and Step
//! Functions state machine read, compared with their requests ([`super::job_definition`],
//! [`super::state_machine`]) and created or updated (see the parent module's invariants).

use std::collections::HashMap;

use serde_json::Value;

use super::{
    digest, job_definition, state_machine, WorkerSettings, DEFINITION_TAG, JOB_DEFINITION,
    STATE_MACHINE,
};
use crate::aws::{call, Aws, AwsError};
use crate::provision::Check;

/// How a live resource compares with its request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Live {
    /// Not there.
    Missing,
    /// There but different (what differs).
    Differs(String),
    /// As the request says (its name and revision).
    Same(String),
}

/// The latest ACTIVE revision of [`JOB_DEFINITION`] against the request's digest.
async fn job_definition_live(aws: &Aws, digest: &str) -> Result<(Live, i32), AwsError> {
    let mut latest: Option<(i32, Option<String>)> = None;
    let mut pages = aws
        .batch
        .describe_job_definitions()
        .job_definition_name(JOB_DEFINITION)
        .status("ACTIVE")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(call("batch", "DescribeJobDefinitions"))?;
        for d in page.job_definitions() {
            let rev = d.revision().unwrap_or_default();
            if latest.as_ref().is_none_or(|(r, _)| rev > *r) {
                let tag = d.tags().and_then(|t| t.get(DEFINITION_TAG)).cloned();
                latest = Some((rev, tag));
            }
        }
    }
    Ok(match latest {
        None => (Live::Missing, 0),
        Some((rev, Some(tag))) if tag == digest => {
            (Live::Same(format!("{JOB_DEFINITION}:{rev}")), rev)
        }
        Some((rev, _)) => (
            Live::Differs(format!(
                "{JOB_DEFINITION}:{rev} is not the definition `aws workers --dry-run` writes"
            )),
            rev,
        ),
    })
}

/// The live [`STATE_MACHINE`] (its ARN) against the request.
async fn state_machine_live(
    aws: &Aws,
    request: &Value,
) -> Result<(Live, Option<String>), AwsError> {
    let mut arn = None;
    let mut pages = aws.sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(call("states", "ListStateMachines"))?;
        if let Some(m) = page
            .state_machines()
            .iter()
            .find(|m| m.name() == STATE_MACHINE)
        {
            arn = Some(m.state_machine_arn().to_string());
            break;
        }
    }
    let Some(arn) = arn else {
        return Ok((Live::Missing, None));
    };
    let live = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .map_err(call("states", "DescribeStateMachine"))?;
    let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
    let want = request["definition"].as_str().and_then(parse);
    let state = if parse(live.definition()) != want {
        Live::Differs(format!(
            "{STATE_MACHINE}: its definition is not the one `aws workers --dry-run` writes"
        ))
    } else if Some(live.role_arn()) != request["roleArn"].as_str() {
        Live::Differs(format!(
            "{STATE_MACHINE}: it runs as {} but aws.workers.states_role_arn is {}",
            live.role_arn(),
            request["roleArn"].as_str().unwrap_or_default()
        ))
    } else {
        Live::Same(STATE_MACHINE.to_string())
    };
    Ok((state, Some(arn)))
}

/// Text of a JSON string member (empty when absent: the requests are built here).
fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A JSON array of strings.
fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

/// A JSON object of strings.
fn text_map(v: &Value) -> HashMap<String, String> {
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default()
}

/// A JSON integer as the SDK's `i32`.
fn int(v: &Value) -> Option<i32> {
    v.as_i64().and_then(|n| i32::try_from(n).ok())
}

/// Registers [`job_definition`]'s request as a new revision tagged with its digest; returns the
/// revision.
async fn register(aws: &Aws, request: &Value, digest: &str) -> Result<i32, AwsError> {
    use aws_sdk_batch::types::{
        AssignPublicIp, ContainerProperties, JobDefinitionType, JobTimeout, KeyValuePair,
        NetworkConfiguration, PlatformCapability, ResourceRequirement, ResourceType, RetryStrategy,
    };
    let c = &request["containerProperties"];
    let mut requirements = Vec::new();
    for r in c["resourceRequirements"].as_array().into_iter().flatten() {
        requirements.push(
            ResourceRequirement::builder()
                .r#type(ResourceType::from(text(&r["type"]).as_str()))
                .value(text(&r["value"]))
                .build(),
        );
    }
    let environment = c["environment"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            KeyValuePair::builder()
                .name(text(&e["name"]))
                .value(text(&e["value"]))
                .build()
        })
        .collect();
    let container = ContainerProperties::builder()
        .image(text(&c["image"]))
        .set_command(Some(texts(&c["command"])))
        .job_role_arn(text(&c["jobRoleArn"]))
        .execution_role_arn(text(&c["executionRoleArn"]))
        .set_resource_requirements(Some(requirements))
        .set_environment(Some(environment))
        .network_configuration(
            NetworkConfiguration::builder()
                .assign_public_ip(AssignPublicIp::from(
                    text(&c["networkConfiguration"]["assignPublicIp"]).as_str(),
                ))
                .build(),
        )
        .build();
    let mut tags = text_map(&request["tags"]);
    tags.insert(DEFINITION_TAG.to_string(), digest.to_string());
    let out = aws
        .batch
        .register_job_definition()
        .job_definition_name(text(&request["jobDefinitionName"]))
        .r#type(JobDefinitionType::from(text(&request["type"]).as_str()))
        .set_platform_capabilities(Some(
            texts(&request["platformCapabilities"])
                .iter()
                .map(|p| PlatformCapability::from(p.as_str()))
                .collect(),
        ))
        .set_parameters(Some(text_map(&request["parameters"])))
        .container_properties(container)
        .retry_strategy(
            RetryStrategy::builder()
                .set_attempts(int(&request["retryStrategy"]["attempts"]))
                .build(),
        )
        .timeout(
            JobTimeout::builder()
                .set_attempt_duration_seconds(int(&request["timeout"]["attemptDurationSeconds"]))
                .build(),
        )
        .set_propagate_tags(request["propagateTags"].as_bool())
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(call("batch", "RegisterJobDefinition"))?;
    Ok(out.revision().unwrap_or_default())
}

/// Creates or updates the workers' Batch job definition and Step Functions state machine from
/// `aws.workers:` ([`job_definition`], [`state_machine`] over `datasets`, in dependency order);
/// skips both, saying why, when a role ARN is not configured.
///
/// # Errors
/// AWS errors.
pub(in crate::provision) async fn ensure_workers(
    aws: &Aws,
    datasets: &[String],
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    let s = match WorkerSettings::from_config(aws.cfg.workers.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::Skipped(format!(
                "workers (Batch job definition {JOB_DEFINITION}, state machine {STATE_MACHINE}): {e}"
            )));
            return Ok(());
        }
    };
    let job = job_definition(&s);
    let sum = digest(&job);
    match job_definition_live(aws, &sum).await? {
        (Live::Same(name), _) => out.push(Check::Ok(format!("Batch job definition {name}"))),
        (live, latest) if dry => out.push(Check::Planned(format!(
            "Batch job definition {JOB_DEFINITION}:{} ({})",
            latest + 1,
            match live {
                Live::Differs(why) => why,
                _ => "none registered".to_string(),
            }
        ))),
        _ => {
            let rev = register(aws, &job, &sum).await?;
            out.push(Check::Changed(format!(
                "Batch job definition {JOB_DEFINITION}:{rev}"
            )));
        }
    }
    let machine = state_machine(&s, datasets);
    let definition = text(&machine["definition"]);
    match state_machine_live(aws, &machine).await? {
        (Live::Same(name), _) => {
            out.push(Check::Ok(format!("Step Functions state machine {name}")))
        }
        (Live::Differs(why), _) if dry => out.push(Check::Planned(format!(
            "Step Functions state machine update ({why})"
        ))),
        (_, None) if dry => out.push(Check::Planned(format!(
            "Step Functions state machine {STATE_MACHINE}"
        ))),
        (_, Some(arn)) => {
            aws.sfn
                .update_state_machine()
                .state_machine_arn(&arn)
                .definition(&definition)
                .role_arn(&s.states_role_arn)
                .send()
                .await
                .map_err(call("states", "UpdateStateMachine"))?;
            out.push(Check::Changed(format!(
                "Step Functions state machine {STATE_MACHINE} (updated)"
            )));
        }
        (_, None) => {
            use aws_sdk_sfn::types::{StateMachineType, Tag};
            let mut create = aws
                .sfn
                .create_state_machine()
                .name(STATE_MACHINE)
                .definition(&definition)
                .role_arn(&s.states_role_arn)
                .r#type(StateMachineType::from(text(&machine["type"]).as_str()));
            for t in machine["tags"].as_array().into_iter().flatten() {
                create = create.tags(
                    Tag::builder()
                        .key(text(&t["key"]))
                        .value(text(&t["value"]))
                        .build(),
                );
            }
            create
                .send()
                .await
                .map_err(call("states", "CreateStateMachine"))?;
            out.push(Check::Changed(format!(
                "Step Functions state machine {STATE_MACHINE}"
            )));
        }
    }
    Ok(())
}

/// `aws doctor`'s lines for the workers: the live job definition and state machine against
/// what bootstrap creates (nothing to check when `aws.workers:` lacks a role ARN).
///
/// # Errors
/// AWS errors.
pub(in crate::provision) async fn workers_drift(
    aws: &Aws,
    datasets: &[String],
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    let s = match WorkerSettings::from_config(aws.cfg.workers.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::Skipped(format!("workers not checked: {e}")));
            return Ok(());
        }
    };
    out.push(
        match job_definition_live(aws, &digest(&job_definition(&s)))
            .await?
            .0
        {
            Live::Same(name) => Check::Ok(format!("Batch job definition {name}")),
            Live::Differs(why) => Check::Drift(format!("Batch job definition {why}")),
            Live::Missing => {
                Check::Drift(format!("Batch job definition {JOB_DEFINITION} is missing"))
            }
        },
    );
    out.push(
        match state_machine_live(aws, &state_machine(&s, datasets))
            .await?
            .0
        {
            Live::Same(name) => Check::Ok(format!("Step Functions state machine {name}")),
            Live::Differs(why) => Check::Drift(format!("Step Functions state machine {why}")),
            Live::Missing => Check::Drift(format!(
                "Step Functions state machine {STATE_MACHINE} is missing"
            )),
        },
    );
    Ok(())
}
