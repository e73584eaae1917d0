//! Pseudonymisation key from KMS, by envelope: a KMS data key whose ciphertext is stored at
//! `s3://<prefix>-ops/_keys/pseudonymization.key.enc` and decrypted through KMS at run time.
//!
//! Invariants: the plaintext key is never written anywhere; the data key is created once (a
//! conditional put: a racing creator's ciphertext wins).

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::{CryptoError, KeyProvider, Pseudonymizer};
use crate::aws::{call, Aws};

const KEY_OBJECT: &str = "_keys/pseudonymization.key.enc";
const CONTEXT: (&str, &str) = ("purpose", "medallion-pseudonymization");

/// Envelope-encrypted pseudonymisation key.
#[derive(Debug, Clone)]
pub struct KmsKeyProvider {
    aws: Aws,
    key_arn: String,
}

impl KmsKeyProvider {
    /// A provider using the project's KMS key.
    pub fn new(aws: Aws, key_arn: String) -> Self {
        Self { aws, key_arn }
    }

    fn fail(e: impl std::fmt::Display) -> CryptoError {
        CryptoError::Service(e.to_string())
    }

    async fn stored_ciphertext(&self) -> Result<Option<Vec<u8>>, CryptoError> {
        let r = self
            .aws
            .s3
            .get_object()
            .bucket(self.aws.bucket("ops"))
            .key(KEY_OBJECT)
            .send()
            .await;
        match r {
            Ok(o) => Ok(Some(
                o.body
                    .collect()
                    .await
                    .map_err(Self::fail)?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(Self::fail(call("s3", "GetObject")(e))),
        }
    }

    async fn create(&self) -> Result<(), CryptoError> {
        let dk = self
            .aws
            .kms
            .generate_data_key()
            .key_id(&self.key_arn)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(|e| Self::fail(call("kms", "GenerateDataKey")(e)))?;
        let blob = dk
            .ciphertext_blob()
            .ok_or_else(|| Self::fail("KMS returned no ciphertext"))?
            .as_ref()
            .to_vec();
        let r = self
            .aws
            .s3
            .put_object()
            .bucket(self.aws.bucket("ops"))
            .key(KEY_OBJECT)
            .if_none_match("*")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.key_arn)
            .body(ByteStream::from(blob))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Another process created it first: theirs is the key.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(()),
            Err(e) => Err(Self::fail(call("s3", "PutObject")(e))),
        }
    }
}

#[async_trait]
impl KeyProvider for KmsKeyProvider {
    fn name(&self) -> &'static str {
        "kms"
    }

    async fn pseudonymization_key(&self) -> Result<Pseudonymizer, CryptoError> {
        let blob = match self.stored_ciphertext().await? {
            Some(b) => b,
            None => {
                self.create().await?;
                self.stored_ciphertext()
                    .await?
                    .ok_or_else(|| Self::fail("the new data key vanished"))?
            }
        };
        let out = self
            .aws
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(|e| Self::fail(call("kms", "Decrypt")(e)))?;
        let plain = out
            .plaintext()
            .ok_or_else(|| Self::fail("KMS returned no plaintext"))?
            .as_ref();
        let key: [u8; 32] = plain
            .try_into()
            .map_err(|_| Self::fail("data key is not 32 bytes"))?;
        Ok(Pseudonymizer::new(key))
    }
}
