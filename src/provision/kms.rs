//! The project's customer-managed KMS key (and its alias), with rotation on.
//!
//! Invariants: the key is found by its alias and created only when the alias names none; a dry
//! run creates nothing and returns no ARN.

use aws_sdk_kms::types::KeyUsageType;

use super::Check;
use crate::aws::{call, Aws, AwsError};

/// Whether the key's automatic rotation is on.
pub(super) async fn rotation_enabled(aws: &Aws, arn: &str) -> Result<bool, AwsError> {
    Ok(aws
        .kms
        .get_key_rotation_status()
        .key_id(arn)
        .send()
        .await
        .map_err(call("kms", "GetKeyRotationStatus"))?
        .key_rotation_enabled())
}

/// Finds the key by its alias (creating key and alias when missing) and turns rotation on;
/// `None` on a dry run that would create it.
pub(super) async fn ensure_key(
    aws: &Aws,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<Option<String>, AwsError> {
    let alias = &aws.cfg.kms_key_alias;
    let arn = match aws.key_arn().await {
        Ok(arn) => {
            out.push(Check::Ok(format!("KMS key {alias}")));
            arn
        }
        Err(_) if dry => {
            out.push(Check::Planned(format!(
                "KMS key {alias} (customer managed, rotation on)"
            )));
            return Ok(None);
        }
        Err(_) => {
            let k = aws
                .kms
                .create_key()
                .description("medallion lake key")
                .key_usage(KeyUsageType::EncryptDecrypt)
                .send()
                .await
                .map_err(call("kms", "CreateKey"))?;
            let meta = k
                .key_metadata()
                .ok_or_else(|| AwsError::NotBootstrapped("CreateKey returned no key".into()))?;
            aws.kms
                .create_alias()
                .alias_name(alias)
                .target_key_id(meta.key_id())
                .send()
                .await
                .map_err(call("kms", "CreateAlias"))?;
            out.push(Check::Changed(format!("KMS key {alias}")));
            meta.arn().unwrap_or_default().to_string()
        }
    };
    let rotating = rotation_enabled(aws, &arn).await?;
    if rotating {
        out.push(Check::Ok(format!("KMS key {alias}: rotation on")));
    } else if dry {
        out.push(Check::Planned(format!("KMS key {alias}: turn rotation on")));
    } else {
        aws.kms
            .enable_key_rotation()
            .key_id(&arn)
            .send()
            .await
            .map_err(call("kms", "EnableKeyRotation"))?;
        out.push(Check::Changed(format!("KMS key {alias}: rotation on")));
    }
    Ok(Some(arn))
}
