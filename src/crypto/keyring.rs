//! The local key ring: a JSON file holding the project's pseudonymisation key, created on first
//! use with owner-only permissions. It lives outside the lake's stages and is never committed.
//!
//! Invariants: the ring is created once (a racing creator's ring wins, never overwritten); its
//! `created_at` comes from the clock it was given.

use std::path::PathBuf;
use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{CryptoError, KeyProvider, Pseudonymizer};
use crate::clock::{Clock, SystemClock};

#[derive(Serialize, Deserialize)]
struct KeyRingFile {
    version: u32,
    pseudonymization_key_hex: String,
    created_at: String,
}

/// Key ring in a local file.
#[derive(Debug, Clone)]
pub struct LocalKeyRing {
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl LocalKeyRing {
    /// A key ring at `path` (created when first needed, stamped with the system clock).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            clock: Arc::new(SystemClock),
        }
    }

    /// Stamps a newly created ring with `clock`'s time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn err(&self, message: impl Into<String>) -> CryptoError {
        CryptoError::KeyRing {
            path: self.path.display().to_string(),
            message: message.into(),
        }
    }

    fn create(&self) -> Result<(), CryptoError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let file = KeyRingFile {
            version: 1,
            pseudonymization_key_hex: hex::encode(key),
            created_at: self.clock.now().to_rfc3339(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| self.err(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e.to_string()))?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        write_private(&tmp, text.as_bytes()).map_err(|e| self.err(e.to_string()))?;
        // hard_link fails if another process created the ring first: theirs wins.
        let linked = std::fs::hard_link(&tmp, &self.path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(self.err(e.to_string())),
        }
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyRing {
    fn name(&self) -> &'static str {
        "local key ring"
    }

    async fn pseudonymization_key(&self) -> Result<Pseudonymizer, CryptoError> {
        if !self.path.exists() {
            self.create()?;
            tracing::info!(path = %self.path.display(), "Created a new pseudonymisation key ring.");
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.err(e.to_string()))?;
        let file: KeyRingFile =
            serde_json::from_str(&text).map_err(|e| self.err(format!("not a key ring: {e}")))?;
        let bytes =
            hex::decode(&file.pseudonymization_key_hex).map_err(|_| self.err("key is not hex"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| self.err("key is not 32 bytes"))?;
        Ok(Pseudonymizer::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_once_then_stable() {
        let dir = tempfile::tempdir().unwrap();
        let ring = LocalKeyRing::new(dir.path().join("k/keyring.json"));
        let a = ring.pseudonymization_key().await.unwrap().pseudonym("S1");
        let b = ring.pseudonymization_key().await.unwrap().pseudonym("S1");
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k/keyring.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
