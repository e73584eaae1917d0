//! The books equations over random batches (DESIGN: "the books always balance, per batch and
//! in total"): `landing rows = raw rows + raw rejects` and `raw rows = trusted rows promoted +
//! quarantined + duplicates dropped`, checked against the parser alone (many cases, cheap) and
//! through the whole landing → raw → trusted promotion (a few cases, each a fresh project),
//! where the recorded books must also agree with what the tables hold.

use std::path::Path;

use medallion::crypto::Pseudonymizer;
use medallion::pipeline::{self, PromoteOptions};
use medallion::project::{Project, ProjectOptions};
use medallion::stage::parse::Parser;
use medallion::vocab::Stage;
use proptest::prelude::*;

use crate::harness::TestProject;

const HEADER: &str = "course_id,title,term,credits,instructor_email,start_date,end_date";

/// One data line of a courses export.
#[derive(Debug, Clone)]
enum Line {
    /// Parses; `key` repeats across lines (duplicates and corrections), `late_start` breaks
    /// the quarantine rule `courses.ends_after_start`, credits outside 1..=12 break the
    /// contract's range.
    Row {
        key: u8,
        credits: i32,
        late_start: bool,
    },
    /// Credits that are not a number (a contract type failure, quarantined in trusted).
    NotANumber { key: u8 },
    /// Fewer fields than the header (rejected in raw).
    Ragged,
    /// Bytes that are not UTF-8 (rejected in raw).
    NotUtf8,
}

impl Line {
    fn rejected(&self) -> bool {
        matches!(self, Self::Ragged | Self::NotUtf8)
    }

    /// The line's bytes in batch `b` (every batch's content differs, so each lands anew).
    fn bytes(&self, b: usize) -> Vec<u8> {
        match self {
            Self::Row {
                key,
                credits,
                late_start,
            } => {
                let end = if *late_start {
                    "2026-08-01"
                } else {
                    "2026-12-15"
                };
                format!(
                    "C{key},Course {key} v{b},2026-FALL,{credits},prof{key}@school.edu,2026-09-01,{end}"
                )
                .into_bytes()
            }
            Self::NotANumber { key } => format!(
                "C{key},Course {key} v{b},2026-FALL,many,p@school.edu,2026-09-01,2026-12-15"
            )
            .into_bytes(),
            Self::Ragged => format!("C9,Only three fields v{b},2026-FALL").into_bytes(),
            Self::NotUtf8 => {
                let mut l = b"C8,Caf".to_vec();
                l.extend_from_slice(&[0xff, 0xfe]);
                l.extend_from_slice(
                    format!(" v{b},2026-FALL,3,p@school.edu,2026-09-01,2026-12-15").as_bytes(),
                );
                l
            }
        }
    }
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        6 => (0u8..6, 0i32..=14, proptest::bool::weighted(0.2)).prop_map(|(key, credits, late_start)| Line::Row { key, credits, late_start }),
        1 => (0u8..6).prop_map(|key| Line::NotANumber { key }),
        1 => Just(Line::Ragged),
        1 => Just(Line::NotUtf8),
    ]
}

/// A CSV export of `lines`, as batch `b`, CRLF line ends when `crlf`.
fn export(lines: &[Line], b: usize, crlf: bool) -> Vec<u8> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = HEADER.as_bytes().to_vec();
    out.extend_from_slice(eol);
    for l in lines {
        out.extend(l.bytes(b));
        out.extend_from_slice(eol);
    }
    out
}

fn courses_contract() -> medallion::contract::Contract {
    medallion::contract::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contracts/courses.yaml"
    )))
    .expect("the shipped courses contract")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Raw's equation at the parser: every data line is one row or one reject, in any chunking,
    /// and each is located at its own line.
    #[test]
    fn every_landing_line_is_a_raw_row_or_a_reject(
        lines in proptest::collection::vec(line(), 0..40),
        chunk_rows in 1usize..8,
        crlf in any::<bool>(),
    ) {
        let contract = courses_contract();
        let keys = Pseudonymizer::new([7; 32]);
        let parser = Parser::new(&contract, &keys, chunk_rows);
        let bytes = export(&lines, 0, crlf);
        let mut chunks = parser.csv(bytes.as_slice());
        let (mut rows, mut rejects, mut located) = (0u64, 0u64, Vec::new());
        while let Some(chunk) = chunks.next_chunk().expect("parse") {
            prop_assert!(chunk.len() + chunk.rejects.len() <= chunk_rows);
            rows += chunk.len() as u64;
            rejects += chunk.rejects.len() as u64;
            located.extend(chunk.lines.iter().map(|&l| l as u64));
            located.extend(chunk.rejects.iter().map(|r| r.line));
        }
        let want_rejects = lines.iter().filter(|l| l.rejected()).count() as u64;
        prop_assert_eq!(rows + rejects, lines.len() as u64);
        prop_assert_eq!(rejects, want_rejects);
        located.sort_unstable();
        let every_line: Vec<u64> = (2..lines.len() as u64 + 2).collect();
        prop_assert_eq!(located, every_line);
    }
}

/// The books of one case, as the summary reported them and as the ledger recorded them.
fn promote_batches(batches: &[(Vec<Line>, bool)]) -> Result<(), TestCaseError> {
    let p = TestProject::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let options = ProjectOptions {
            now: Some("2026-03-01T08:30:00Z".into()),
            keyring: None,
        };
        let project = Project::open_with(&p.root, &options).await.expect("open");
        let lake = &project.lake;
        let ds = project.dataset("courses").expect("courses");
        for (b, (lines, crlf)) in batches.iter().enumerate() {
            let bytes = export(lines, b, *crlf);
            lake.store
                .land(
                    "courses",
                    &format!("courses_{b}.csv"),
                    "csv",
                    &bytes,
                    lake.clock.now(),
                )
                .await
                .expect("land");
        }
        let opts = PromoteOptions {
            to: Stage::Trusted,
            dry_run: false,
            // Heavy random defects would hold a batch; the books must balance either way.
            accept_held: true,
        };
        let summary = pipeline::promote(lake, &ds, opts).await.expect("promote");
        prop_assert_eq!(summary.raw.len(), batches.len());
        prop_assert_eq!(summary.trusted.len(), batches.len());
        prop_assert!(summary.balanced());
        for (r, (lines, _)) in summary.raw.iter().zip(batches) {
            prop_assert_eq!(r.landing_rows, lines.len() as u64);
            prop_assert_eq!(
                r.rejected,
                lines.iter().filter(|l| l.rejected()).count() as u64
            );
            prop_assert_eq!(r.landing_rows, r.raw_rows + r.rejected);
        }
        for (t, r) in summary.trusted.iter().zip(&summary.raw) {
            prop_assert_eq!(&t.batch_id, &r.batch_id);
            prop_assert_eq!(t.raw_rows, r.raw_rows);
            prop_assert_eq!(
                t.raw_rows,
                t.inserted + t.quarantined + t.duplicates_dropped
            );
        }

        // What the ledger recorded is what the steps reported, and balances the same way.
        let history = medallion::ledger::history(lake, "courses")
            .await
            .expect("history");
        let raw_books: Vec<_> = history
            .books
            .iter()
            .filter(|b| b.step == "landing-to-raw")
            .collect();
        let trusted_books: Vec<_> = history
            .books
            .iter()
            .filter(|b| b.step == "raw-to-trusted")
            .collect();
        prop_assert_eq!(raw_books.len(), batches.len());
        prop_assert_eq!(trusted_books.len(), batches.len());
        for b in &raw_books {
            prop_assert_eq!(b.rows_in, b.rows_promoted + b.rejected);
        }
        for b in &trusted_books {
            prop_assert_eq!(
                b.rows_in,
                b.rows_promoted + b.quarantined + b.duplicates_dropped
            );
        }
        let sum = |rows: &[&medallion::ledger::PromotionRow],
                   f: fn(&medallion::ledger::PromotionRow) -> u64| {
            rows.iter().map(|b| f(b)).sum::<u64>()
        };
        Ok((
            sum(&raw_books, |b| b.rows_promoted),
            sum(&raw_books, |b| b.rejected),
            sum(&trusted_books, |b| b.rows_promoted),
            sum(&trusted_books, |b| b.quarantined),
        ))
    })
    .and_then(|(raw, rejected, trusted, quarantined)| {
        // In total: the tables hold what the books say.
        prop_assert_eq!(p.rows("raw", "courses"), raw);
        prop_assert_eq!(p.rows("raw", "courses_rejects"), rejected);
        prop_assert_eq!(p.rows("trusted", "courses"), trusted);
        prop_assert_eq!(p.rows("trusted", "courses_quarantine"), quarantined);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    /// Both equations through the whole promotion, per batch and in total, over one to three
    /// random batches (repeated keys across batches make updates and stale rows).
    #[test]
    fn the_books_balance_per_batch_and_in_total(
        batches in proptest::collection::vec(
            (proptest::collection::vec(line(), 1..20), any::<bool>()),
            1..=3,
        ),
    ) {
        promote_batches(&batches)?;
    }
}
