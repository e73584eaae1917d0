//! The Athena workgroup medallion queries run in: results SSE-KMS encrypted in the ops bucket,
//! configuration enforced.
//!
//! Invariants: an existing workgroup with SSE-KMS results is left alone; otherwise it is
//! created or updated to the enforced configuration.

use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, WorkGroupConfiguration,
};

use super::Check;
use crate::aws::{call, Aws, AwsError};
use crate::query::athena::{results_location, WORKGROUP};

/// Creates or verifies the workgroup (results encrypted with SSE-KMS, configuration enforced).
///
/// # Errors
/// AWS errors.
pub async fn ensure_workgroup(aws: &Aws, key_arn: &str, dry: bool) -> Result<Check, AwsError> {
    // moto answers GetWorkGroup for an unknown name with an empty body: check the name.
    let existing = aws
        .athena
        .get_work_group()
        .work_group(WORKGROUP)
        .send()
        .await
        .ok()
        .filter(|w| w.work_group().is_some_and(|g| g.name() == WORKGROUP));
    let encrypted = existing
        .as_ref()
        .and_then(|w| w.work_group())
        .and_then(|w| w.configuration())
        .and_then(|c| c.result_configuration())
        .and_then(|r| r.encryption_configuration())
        .is_some_and(|e| e.encryption_option() == &EncryptionOption::SseKms);
    if encrypted {
        return Ok(Check::Ok(format!(
            "Athena workgroup {WORKGROUP}: results SSE-KMS"
        )));
    }
    if dry {
        return Ok(Check::Planned(format!(
            "Athena workgroup {WORKGROUP} with SSE-KMS results in {}",
            results_location(aws)
        )));
    }
    let enc = EncryptionConfiguration::builder()
        .encryption_option(EncryptionOption::SseKms)
        .kms_key(key_arn)
        .build()
        .map_err(call("athena", "CreateWorkGroup"))?;
    let conf = WorkGroupConfiguration::builder()
        .result_configuration(
            ResultConfiguration::builder()
                .output_location(results_location(aws))
                .encryption_configuration(enc)
                .build(),
        )
        .enforce_work_group_configuration(true)
        .publish_cloud_watch_metrics_enabled(true)
        .build();
    if existing.is_some() {
        aws.athena
            .update_work_group()
            .work_group(WORKGROUP)
            .configuration_updates(
                aws_sdk_athena::types::WorkGroupConfigurationUpdates::builder()
                    .result_configuration_updates(
                        aws_sdk_athena::types::ResultConfigurationUpdates::builder()
                            .output_location(results_location(aws))
                            .encryption_configuration(
                                conf.result_configuration()
                                    .and_then(|r| r.encryption_configuration())
                                    .cloned()
                                    .ok_or_else(|| {
                                        AwsError::NotBootstrapped("no encryption".into())
                                    })?,
                            )
                            .build(),
                    )
                    .enforce_work_group_configuration(true)
                    .build(),
            )
            .send()
            .await
            .map_err(call("athena", "UpdateWorkGroup"))?;
    } else {
        aws.athena
            .create_work_group()
            .name(WORKGROUP)
            .description("medallion queries; results SSE-KMS in the ops bucket")
            .configuration(conf)
            .send()
            .await
            .map_err(call("athena", "CreateWorkGroup"))?;
    }
    Ok(Check::Changed(format!(
        "Athena workgroup {WORKGROUP}: results SSE-KMS"
    )))
}
