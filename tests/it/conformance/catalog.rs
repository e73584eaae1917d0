//! [`Catalog`] conformance: an entry reads back as registered, `register` replaces the entry of
//! the same table (idempotent), and `list` is ordered by dataset, stage, kind.

use std::sync::Arc;

use medallion::catalog::{self, Catalog, CatalogConfig, ColumnEntry, TableEntry};

fn entry(dataset: &str, stage: &str, kind: &str, rows: u64) -> TableEntry {
    let table = match kind {
        "data" => format!("{stage}.{dataset}"),
        k => format!("{stage}.{dataset}_{k}"),
    };
    TableEntry {
        dataset: dataset.into(),
        stage: stage.into(),
        kind: kind.into(),
        location: format!("s3://conformance-{stage}/{}/", table.replace('.', "_")),
        table,
        version: rows,
        rows,
        schema: vec![
            ColumnEntry {
                name: "course_id".into(),
                ty: "string".into(),
                comment: "Course code.".into(),
            },
            ColumnEntry {
                name: "credits".into(),
                ty: "bigint".into(),
                comment: "Credits, 1 to 12.".into(),
            },
        ],
        contract_version: "1.0.0".into(),
        last_batch: Some(format!("b00000{rows}-abc")),
        description: format!("{kind} of {dataset}"),
        updated_at: "2026-03-01T08:30:00Z".into(),
    }
}

/// The guarantees of [`Catalog`], checked on `c` (empty).
fn conforms(c: Arc<dyn Catalog>, rt: &tokio::runtime::Runtime) {
    assert!(!c.name().is_empty());
    assert!(rt.block_on(c.list()).expect("list").is_empty());

    let raw = entry("courses", "raw", "data", 3);
    rt.block_on(c.register(raw.clone())).expect("register");
    assert_eq!(rt.block_on(c.list()).expect("list"), vec![raw.clone()]);

    // Registering the same table again replaces its entry.
    let raw2 = entry("courses", "raw", "data", 5);
    rt.block_on(c.register(raw2.clone()))
        .expect("register again");
    rt.block_on(c.register(raw2.clone())).expect("and again");
    assert_eq!(rt.block_on(c.list()).expect("list"), vec![raw2.clone()]);

    // Ordered by dataset, stage, kind, whatever the registration order.
    let quarantine = entry("courses", "trusted", "quarantine", 1);
    let trusted = entry("courses", "trusted", "data", 4);
    let attendance = entry("attendance", "trusted", "data", 9);
    for e in [&quarantine, &trusted, &attendance] {
        rt.block_on(c.register(e.clone())).expect("register");
    }
    assert_eq!(
        rt.block_on(c.list()).expect("list"),
        vec![attendance, raw2, trusted, quarantine]
    );
}

#[test]
fn catalog_conformance() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = catalog::build(&CatalogConfig::File {
        path: dir.path().join("_catalog").join("catalog.json"),
    });
    assert_eq!(file.name(), "file");
    conforms(file, &rt);

    #[cfg(feature = "aws")]
    if let Some((_moto, ctx)) = super::aws::context(&rt) {
        let glue = catalog::build(&CatalogConfig::Glue {
            aws: Box::new(ctx.aws),
            owner: catalog::OWNER.into(),
        });
        assert_eq!(glue.name(), "glue");
        conforms(glue, &rt);
    }
}
