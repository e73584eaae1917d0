//! Pseudonymisation keys and the keyed hash applied to direct identifiers.
//!
//! Invariants: the key never leaves its provider except as the in-memory [`Pseudonymizer`];
//! it is never logged. Equal inputs give equal pseudonyms across datasets (so joins still work),
//! and a pseudonym cannot be reversed without the key.
//!
//! Backends: [`LocalKeyRing`] (a file) and, with the `aws` feature, [`KmsKeyProvider`];
//! [`build`] is the one place that picks between them.

mod keyring;
#[cfg(feature = "aws")]
mod kms;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Clock;

pub use keyring::LocalKeyRing;
#[cfg(feature = "aws")]
pub use kms::KmsKeyProvider;

/// Errors obtaining a key.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The cloud key service failed.
    #[error("key service: {0}")]
    Service(String),
    /// The key ring file could not be read or written.
    #[error("key ring {path}: {message}")]
    KeyRing {
        /// Key ring path.
        path: String,
        /// What failed.
        message: String,
    },
}

/// Supplies the project's pseudonymisation key.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Short backend name for messages.
    fn name(&self) -> &'static str;
    /// The 32-byte key, created on first use.
    ///
    /// # Errors
    /// When the key cannot be read or created.
    async fn pseudonymization_key(&self) -> Result<Pseudonymizer, CryptoError>;
}

/// Which [`KeyProvider`] [`build`] makes, with what that backend needs.
#[derive(Debug, Clone)]
pub enum KeysConfig {
    /// A key ring file at `path`, a new ring stamped with `clock`'s time.
    KeyRing {
        /// The key ring file.
        path: PathBuf,
        /// The project's clock.
        clock: Arc<dyn Clock>,
    },
    /// A KMS data key, its ciphertext in the project's ops bucket.
    #[cfg(feature = "aws")]
    Kms(Box<crate::aws::AwsContext>),
}

/// The key provider `cfg` names.
pub fn build(cfg: &KeysConfig) -> Arc<dyn KeyProvider> {
    match cfg {
        KeysConfig::KeyRing { path, clock } => {
            Arc::new(LocalKeyRing::new(path.clone()).with_clock(clock.clone()))
        }
        #[cfg(feature = "aws")]
        KeysConfig::Kms(ctx) => Arc::new(KmsKeyProvider::new(ctx.aws.clone(), ctx.key_arn.clone())),
    }
}

/// Keyed HMAC-SHA256 over identifiers. Debug output never shows the key.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// The HMAC state with the key already absorbed: each pseudonym clones it instead of
    /// hashing the key's inner and outer pads again (half the hashing per identifier).
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(<key redacted>)")
    }
}

impl Pseudonymizer {
    /// Wraps a raw key.
    pub fn new(key: [u8; 32]) -> Self {
        // `new_from_slice` accepts any key length; ours is always 32 bytes.
        let keyed = match Hmac::<Sha256>::new_from_slice(&key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        Self { keyed }
    }

    /// The pseudonym of `value`: `p_` + the first 20 bytes of HMAC-SHA256(key, value), hex.
    /// Leading and trailing whitespace is ignored, so ` S000123` and `S000123` agree.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(value.trim().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 42];
        out[..2].copy_from_slice(b"p_");
        // Hex written straight into the buffer (the iterator form is a char at a time).
        if hex::encode_to_slice(&digest[..20], &mut out[2..]).is_err() {
            unreachable!("20 bytes are 40 hex digits");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_opaque() {
        let a = Pseudonymizer::new([7; 32]);
        let b = Pseudonymizer::new([8; 32]);
        assert_eq!(a.pseudonym("S000123"), a.pseudonym(" S000123 "));
        assert_ne!(a.pseudonym("S000123"), b.pseudonym("S000123"));
        assert_ne!(a.pseudonym("S000123"), a.pseudonym("S000124"));
        assert!(!a.pseudonym("S000123").contains("000123"));
        assert_eq!(a.pseudonym("x").len(), 42);
        assert!(!format!("{a:?}").contains('7'));
    }

    #[test]
    fn the_pre_keyed_state_gives_the_plain_hmac() {
        let key = [42u8; 32];
        let mut plain = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        plain.update(b"S000123");
        let want = format!("p_{}", hex::encode(&plain.finalize().into_bytes()[..20]));
        let p = Pseudonymizer::new(key);
        assert_eq!(p.pseudonym("S000123"), want);
        // The state is not consumed: the next value starts from the key again.
        assert_eq!(p.pseudonym(" S000123"), want);
    }
}
