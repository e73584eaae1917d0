//! [`TableStore`] conformance: landing is content-addressed, idempotent and ordered; landed
//! files read back byte for byte; a replacement keeps its batch and is recognised; table
//! locations are distinct per stage and table.

use std::io::Read;
use std::sync::Arc;

use medallion::storage::{self, LandOutcome, LandedFile, StoreConfig, TableStore};
use medallion::vocab::Stage;

use super::at;

fn read_all(store: &dyn TableStore, rt: &tokio::runtime::Runtime, f: &LandedFile) -> Vec<u8> {
    let mut r = rt.block_on(store.open_landed(f)).expect("open landed");
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("read landed");
    out
}

fn landed(o: LandOutcome) -> LandedFile {
    match o {
        LandOutcome::Landed(f) => f,
        LandOutcome::AlreadyLanded(f) => panic!("{} was already landed", f.original_name),
    }
}

fn already(o: LandOutcome) -> LandedFile {
    match o {
        LandOutcome::AlreadyLanded(f) => f,
        LandOutcome::Landed(f) => panic!("{} landed twice", f.original_name),
    }
}

/// The guarantees of [`TableStore`], checked on `store` (empty).
fn conforms(store: Arc<dyn TableStore>, rt: &tokio::runtime::Runtime) {
    let s = store.as_ref();
    assert!(!s.name().is_empty());

    // Locations: one per stage and table, directory-like, distinct from the ops tables.
    let raw = s.table_url(Stage::Raw, "courses").expect("raw url");
    let trusted = s.table_url(Stage::Trusted, "courses").expect("trusted url");
    let other = s.table_url(Stage::Raw, "grades").expect("other url");
    let ops = s.ops_table_url("promotions").expect("ops url");
    let urls = [&raw, &trusted, &other, &ops];
    for (i, u) in urls.iter().enumerate() {
        assert!(u.as_str().ends_with('/'), "{u} is a directory");
        assert!(
            urls.iter().skip(i + 1).all(|v| v != u),
            "{u} is distinct from the others"
        );
    }

    // Landing: nothing yet, then content-addressed, idempotent by content, in landing order.
    assert!(rt
        .block_on(s.list_landed("courses"))
        .expect("list")
        .is_empty());
    let a = b"course_id,title\nC1,Algebra\n".to_vec();
    let b = b"course_id,title\nC2,Biology\n".to_vec();
    let fa = landed(
        rt.block_on(s.land("courses", "a.csv", "csv", &a, at(1)))
            .expect("land a"),
    );
    assert_eq!(fa.seq, 1);
    assert_eq!(fa.bytes, a.len() as u64);
    assert_eq!(fa.landed_instant().expect("landed_at"), at(1));
    let again = already(
        rt.block_on(s.land("courses", "a-renamed.csv", "csv", &a, at(2)))
            .expect("land a again"),
    );
    assert_eq!(again, fa, "the same content is the same landed file");
    let fb = landed(
        rt.block_on(s.land("courses", "b.csv", "csv", &b, at(3)))
            .expect("land b"),
    );
    assert_eq!(fb.seq, 2);
    assert_ne!(fa.batch_id(), fb.batch_id());
    let listed = rt.block_on(s.list_landed("courses")).expect("list");
    assert_eq!(listed, vec![fa.clone(), fb.clone()], "landing order");
    assert!(rt
        .block_on(s.list_landed("grades"))
        .expect("list")
        .is_empty());
    assert_eq!(read_all(s, rt, &fa), a, "read back byte for byte");

    // Replacement (erasure): same batch, new content, the original recognised as landed.
    let a2 = b"course_id,title\nC1,Algebra (erased)\n".to_vec();
    let fa2 = rt.block_on(s.replace_landed(&fa, &a2)).expect("replace");
    assert_eq!(fa2.batch_id(), fa.batch_id());
    assert_eq!(fa2.replaces.as_deref(), Some(fa.sha256.as_str()));
    let replay = rt
        .block_on(s.replace_landed(&fa, &a2))
        .expect("replace again");
    assert_eq!(replay.sha256, fa2.sha256, "replacing is idempotent");
    let listed = rt.block_on(s.list_landed("courses")).expect("list");
    assert_eq!(listed, vec![fa2.clone(), fb.clone()]);
    assert_eq!(read_all(s, rt, &fa2), a2);
    let original = already(
        rt.block_on(s.land("courses", "a.csv", "csv", &a, at(4)))
            .expect("land the original again"),
    );
    assert_eq!(original.batch_id(), fa.batch_id());

    // Purging old versions of a table that has none removes nothing.
    assert_eq!(rt.block_on(s.purge_versions(&raw)).expect("purge"), 0);

    // Landing from a path (streamed): the same content-addressed file as landing the bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let c: Vec<u8> = (0..300_000)
        .flat_map(|i| format!("C{i},Course {i}\n").into_bytes())
        .collect();
    let c_path = dir.path().join("c.csv");
    std::fs::write(&c_path, &c).expect("write c");
    let fc = landed(
        rt.block_on(s.land_path("courses", "c.csv", "csv", &c_path, at(5)))
            .expect("land c from its path"),
    );
    assert_eq!(fc.seq, 3);
    assert_eq!(fc.bytes, c.len() as u64);
    assert_eq!(fc.sha256, medallion::storage::Digest::of(&c).sha256);
    assert_eq!(read_all(s, rt, &fc), c, "read back byte for byte");
    let again = already(
        rt.block_on(s.land("courses", "c-bytes.csv", "csv", &c, at(6)))
            .expect("land c's bytes"),
    );
    assert_eq!(again, fc);
    let a_path = dir.path().join("a.csv");
    std::fs::write(&a_path, &a).expect("write a");
    let again = already(
        rt.block_on(s.land_path("courses", "a.csv", "csv", &a_path, at(7)))
            .expect("land a from its path"),
    );
    assert_eq!(again.batch_id(), fa.batch_id());
    let missing = rt.block_on(s.land_path(
        "courses",
        "gone.csv",
        "csv",
        &dir.path().join("gone.csv"),
        at(8),
    ));
    let message = missing.expect_err("a missing file is an error").to_string();
    assert!(message.contains("gone.csv"), "{message}");
    assert_eq!(
        rt.block_on(s.list_landed("courses")).expect("list").len(),
        3,
        "nothing landed for the missing file"
    );
}

#[test]
fn table_store_conformance() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let local = storage::build(&StoreConfig::Local {
        root: dir.path().join("lake"),
    })
    .expect("local store");
    assert_eq!(local.name(), "local");
    conforms(local, &rt);

    #[cfg(feature = "aws")]
    if let Some((_moto, ctx)) = super::aws::context(&rt) {
        let s3 = storage::build(&StoreConfig::S3(Box::new(ctx))).expect("s3 store");
        assert_eq!(s3.name(), "s3");
        conforms(s3, &rt);
    }
}
