//! [`KeyProvider`] conformance: the key is created on first use and the same ever after, for
//! this provider and any other over the same store; pseudonyms are keyed, stable and opaque.

use std::sync::Arc;

use medallion::clock::{Clock, FixedClock};
use medallion::crypto::{self, KeyProvider, KeysConfig};

use super::at;

/// The guarantees of [`KeyProvider`], checked on `first` and `second`, two providers over the
/// same (initially empty) key store.
fn conforms(
    first: Arc<dyn KeyProvider>,
    second: Arc<dyn KeyProvider>,
    rt: &tokio::runtime::Runtime,
) {
    assert!(!first.name().is_empty());
    let created = rt
        .block_on(first.pseudonymization_key())
        .expect("create the key");
    let again = rt
        .block_on(first.pseudonymization_key())
        .expect("read the key");
    let other = rt
        .block_on(second.pseudonymization_key())
        .expect("read it elsewhere");
    let p = created.pseudonym("S000123");
    assert_eq!(again.pseudonym("S000123"), p, "the key is created once");
    assert_eq!(
        other.pseudonym("S000123"),
        p,
        "every provider of the store agrees"
    );
    assert!(p.starts_with("p_") && p.len() == 42, "{p}");
    assert!(!p.contains("000123"), "a pseudonym does not show the id");
    assert_ne!(created.pseudonym("S000124"), p);
    assert!(!format!("{created:?}").contains(&p[2..10]));
}

#[test]
fn key_provider_conformance() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(at(1)));
    let ring = KeysConfig::KeyRing {
        path: dir.path().join(".medallion").join("keyring.json"),
        clock,
    };
    let (a, b) = (crypto::build(&ring), crypto::build(&ring));
    assert_eq!(a.name(), "local key ring");
    conforms(a, b, &rt);

    #[cfg(feature = "aws")]
    if let Some((_moto, ctx)) = super::aws::context(&rt) {
        let kms = KeysConfig::Kms(Box::new(ctx));
        let (a, b) = (crypto::build(&kms), crypto::build(&kms));
        assert_eq!(a.name(), "kms");
        conforms(a, b, &rt);
    }
}
