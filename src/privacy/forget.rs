//! `medallion forget --student ID`: erase one student from every stage, history included.
//!
//! Invariants:
//! - every step is idempotent and the order makes a crash harmless: the tombstone first (later
//!   exports are held from then on), the books of the erasure (counted before anything is
//!   deleted, once per batch by txn), the deletes (each a Delta commit guarded by a txn), the
//!   curated rebuild of the student's courses, the landing rewrite (replacement before
//!   removal), and last the history purge (vacuum, checkpoint, old log files and, on S3,
//!   noncurrent object versions). A rerun redoes only what is left;
//! - no predicate, commit, books row or audit row names the student: rows are selected by the
//!   tombstone of the pseudonym ([`forgotten::predicate`]);
//! - afterwards the id, the e-mail and the pseudonym appear nowhere in the lake, and no earlier
//!   table version can be read.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::curated::CuratedConfig;
use crate::lake::Lake;
use crate::ledger;
use crate::stage::forgotten::{self, STUDENT_ID};
use crate::stage::{crash_point, Dataset, Result, StepError, SOURCE_HASH, SOURCE_LINE};
use crate::storage::delta::{self, txn_id, TableLoc};
use crate::storage::LandedFile;
use crate::vocab::{Stage, TableRef};

/// The step name in commits and books.
pub const STEP: &str = ledger::Step::Forget.as_str();

/// One landed file that mentions the student.
#[derive(Debug, Clone, Serialize)]
pub struct LandingErasure {
    /// Dataset.
    pub dataset: String,
    /// Batch id (kept by the replacement).
    pub batch_id: String,
    /// File as delivered.
    pub source_file: String,
    /// Lines removed (1-based, as in `_source_line`).
    pub lines: Vec<u64>,
}

/// What `forget` erased (or, on a dry run, would erase).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ForgetReport {
    /// Rows per table (`<stage>.<table>`), before the erasure.
    pub tables: BTreeMap<String, u64>,
    /// Landed files rewritten.
    pub landing: Vec<LandingErasure>,
    /// Courses whose curated rows were recomputed.
    pub courses: Vec<String>,
    /// Data files and log files no earlier version can use any more, removed.
    pub files_removed: u64,
    /// Noncurrent object versions removed (S3).
    pub versions_removed: u64,
    /// Whether anything was written.
    pub committed: bool,
}

/// A table the erasure touches.
struct Target {
    name: String,
    loc: TableLoc,
    predicate: String,
}

/// Erases the student `student_id` (as delivered) from `datasets` and the curated products.
///
/// # Errors
/// Storage errors, or the curated rebuild stopping.
pub async fn forget(
    lake: &Lake,
    datasets: &[Dataset],
    curated: &CuratedConfig,
    student_id: &str,
    dry_run: bool,
) -> Result<ForgetReport> {
    let key = lake.keys.pseudonymization_key().await?;
    let tomb = forgotten::tombstone(&key.pseudonym(student_id));
    let by_student = forgotten::predicate(&tomb);
    let mut report = ForgetReport::default();

    // The student's lines in landing: any field equal to the id or one of their e-mails.
    let needles = identity_values(lake, datasets, student_id).await?;
    let mut rewrites: Vec<(LandedFile, Vec<u8>)> = Vec::new();
    for ds in datasets {
        for file in lake.store.list_landed(ds.name()).await? {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut lake.store.open_landed(&file).await?, &mut bytes)
                .map_err(|e| StepError::Parse {
                    file: file.original_name.clone(),
                    source: e.into(),
                })?;
            let (lines, kept) = without_lines_mentioning(&bytes, &needles);
            if !lines.is_empty() {
                report.landing.push(LandingErasure {
                    dataset: ds.name().to_string(),
                    batch_id: file.batch_id(),
                    source_file: file.original_name.clone(),
                    lines,
                });
                rewrites.push((file, kept));
            }
        }
    }

    // Every table holding the student, with its row count.
    let mut targets: Vec<Target> = Vec::new();
    for ds in datasets {
        let name = ds.name();
        if !ds.contract.source.iter().any(|c| c.name == STUDENT_ID) {
            continue;
        }
        for (stage, table) in [
            (Stage::Raw, name.to_string()),
            (Stage::Trusted, name.to_string()),
            (Stage::Trusted, TableRef::quarantine(name).name()),
        ] {
            targets.push(Target {
                name: format!("{}.{table}", stage.as_str()),
                loc: lake.loc(stage, &table)?,
                predicate: by_student.clone(),
            });
        }
        let hashes: Vec<(String, Vec<u64>)> = report
            .landing
            .iter()
            .filter(|l| l.dataset == name)
            .filter_map(|l| {
                rewrites
                    .iter()
                    .find(|(f, _)| f.batch_id() == l.batch_id)
                    .map(|(f, _)| (f.identity().to_string(), l.lines.clone()))
            })
            .collect();
        if !hashes.is_empty() {
            let any: Vec<String> = hashes
                .iter()
                .map(|(h, lines)| {
                    let list: Vec<String> = lines.iter().map(u64::to_string).collect();
                    format!(
                        "({SOURCE_HASH} = {} AND {SOURCE_LINE} IN ({}))",
                        delta::sql_literal(h),
                        list.join(", ")
                    )
                })
                .collect();
            targets.push(Target {
                name: TableRef::rejects(name).to_string(),
                loc: lake.table_loc(&TableRef::rejects(name))?,
                predicate: any.join(" OR "),
            });
        }
    }
    for product in crate::curated::PRODUCTS {
        if crate::curated::products::key(product).contains(&STUDENT_ID) {
            targets.push(Target {
                name: format!("curated.{product}"),
                loc: lake.loc(Stage::Curated, product)?,
                predicate: by_student.clone(),
            });
        }
    }
    // So does the attendance state curated keeps for increments.
    for table in crate::curated::increment::STATE_TABLES {
        targets.push(Target {
            name: format!("curated.{table}"),
            loc: lake.loc(Stage::Curated, table)?,
            predicate: by_student.clone(),
        });
    }
    // The educators' alerts name students by pseudonym too.
    targets.push(Target {
        name: format!("curated.{}", crate::alerts::TABLE),
        loc: lake.loc(Stage::Curated, crate::alerts::TABLE)?,
        predicate: by_student.clone(),
    });
    for t in &targets {
        let n = delta::count_where(&t.loc, Some(&t.predicate)).await?;
        if n > 0 {
            report.tables.insert(t.name.clone(), n);
        }
    }
    // The courses whose aggregates still count the student.
    let mut courses = BTreeSet::new();
    for t in targets.iter().filter(|t| t.name.starts_with("trusted.")) {
        let sql = format!("SELECT DISTINCT course_id FROM t WHERE {}", t.predicate);
        if let Ok(Some((schema, batches))) = delta::query(&t.loc, &sql).await {
            let df = crate::frame::from_batches(&schema, &batches)?;
            courses.extend(crate::frame::strings_of(&df, "course_id")?);
        }
    }
    report.courses = courses.iter().cloned().collect();
    if dry_run {
        return Ok(report);
    }
    report.committed = true;

    forgotten::record(lake, &tomb).await?;
    record_books(lake, datasets, &report, &tomb).await?;
    crash_point(STEP, "after-books");

    let label = format!("forget-{}", &tomb[..16]);
    let app = txn_id(STEP, &tomb);
    let meta = ledger::CommitMeta::batch(ledger::Step::Forget, label)
        .with_courses(report.courses.iter().cloned())
        .entries();
    // Side tables first, trusted data last (curated reads the trusted commit's courses).
    let mut order: Vec<&Target> = targets
        .iter()
        .filter(|t| !t.name.starts_with("curated."))
        .collect();
    order.sort_by_key(|t| {
        (
            t.name.starts_with("trusted.") && !TableRef::is_quarantine_name(&t.name),
            t.name.clone(),
        )
    });
    for t in order {
        delta::delete_with(&t.loc, &t.predicate, &app, &meta).await?;
    }
    crash_point(STEP, "after-tables");

    crate::pipeline::promote_curated(lake, curated, false).await?;
    // Belt and braces: no curated row of the student may survive the rebuild.
    for t in targets.iter().filter(|t| t.name.starts_with("curated.")) {
        delta::delete_with(&t.loc, &t.predicate, &app, &meta).await?;
    }
    lake.notifier
        .forget(&key.pseudonym(student_id))
        .await
        .map_err(StepError::Metrics)?;
    crash_point(STEP, "after-curated");

    for (file, kept) in &rewrites {
        lake.store.replace_landed(file, kept).await?;
    }
    crash_point(STEP, "after-landing");

    for t in &targets {
        report.files_removed += delta::forget_history(&t.loc).await?;
        report.versions_removed += lake.store.purge_versions(&t.loc.url).await?;
    }
    lake.sync_catalog().await?;
    tracing::info!(
        tables = report.tables.len(),
        files = report.landing.len(),
        "Erased a student from the lake."
    );
    Ok(report)
}

/// The id and the e-mail addresses delivered with it in any export, lowercase.
async fn identity_values(
    lake: &Lake,
    datasets: &[Dataset],
    student_id: &str,
) -> Result<Vec<String>> {
    let id = student_id.trim().to_lowercase();
    let mut out = vec![id.clone()];
    for ds in datasets {
        for file in lake.store.list_landed(ds.name()).await? {
            let reader = lake.store.open_landed(&file).await?;
            let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let Ok(header) = rdr.headers().cloned() else {
                continue;
            };
            let Some(idx) = header.iter().position(|h| h.trim() == STUDENT_ID) else {
                continue;
            };
            let emails: Vec<usize> = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.contains("email"))
                .map(|(i, _)| i)
                .collect();
            // A file without an e-mail column adds nothing: read its header only.
            if emails.is_empty() {
                continue;
            }
            for rec in rdr.records().flatten() {
                if rec.get(idx).is_some_and(|v| v.trim().to_lowercase() == id) {
                    for &e in &emails {
                        if let Some(v) = rec.get(e).map(|v| v.trim().to_lowercase()) {
                            if !v.is_empty() && !out.contains(&v) {
                                out.push(v);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The 1-based lines (record starts, as in `_source_line`) of CSV `bytes` whose fields include
/// one of `needles` (trimmed, case-insensitive), and the bytes without those records. The
/// header is never removed; every other byte is kept as delivered.
pub fn without_lines_mentioning(bytes: &[u8], needles: &[String]) -> (Vec<u64>, Vec<u8>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let (mut lines, mut kept) = (Vec::new(), Vec::with_capacity(bytes.len()));
    let mut first = true;
    loop {
        let start = rdr.position().clone();
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            // An unreadable rest of file is kept as delivered.
            Err(_) => {
                kept.extend_from_slice(&bytes[(start.byte() as usize).min(bytes.len())..]);
                return (lines, kept);
            }
        }
        // The csv reader stops a CRLF terminator between `\r` and `\n`: a record's bytes run
        // from after its predecessor's terminator to after its own.
        let whole = |b: usize| {
            let b = b.min(bytes.len());
            if b > 0 && b < bytes.len() && bytes[b] == b'\n' && bytes[b - 1] == b'\r' {
                b + 1
            } else {
                b
            }
        };
        let (from, to) = (
            whole(start.byte() as usize),
            whole(rdr.position().byte() as usize),
        );
        let chunk = &bytes[from..to];
        let hit = !first
            && rec.iter().any(|f| {
                let v = String::from_utf8_lossy(f).trim().to_lowercase();
                needles.contains(&v)
            });
        if hit {
            // Exact line of the record's first byte (as the parser counts `_source_line`).
            let at = rec.position().map_or(start.byte(), |p| p.byte()) as usize;
            let newlines = bytes[..=at.min(bytes.len().saturating_sub(1))]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            lines.push(newlines as u64 + 1);
        } else {
            kept.extend_from_slice(chunk);
        }
        first = false;
    }
    (lines, kept)
}

/// One books row per affected batch: landing lines erased = raw rows + rejects erased.
async fn record_books(
    lake: &Lake,
    datasets: &[Dataset],
    report: &ForgetReport,
    tomb: &str,
) -> Result<()> {
    for ds in datasets {
        let name = ds.name();
        for l in report.landing.iter().filter(|l| l.dataset == name) {
            let lines = l.lines.len() as u64;
            let rejects = lake_count(
                lake,
                Stage::Raw,
                &TableRef::rejects(name).name(),
                &format!(
                    "{SOURCE_LINE} IN ({}) AND _batch_id = {}",
                    l.lines
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    delta::sql_literal(&l.batch_id)
                ),
            )
            .await?;
            let quarantined = lake_count(
                lake,
                Stage::Trusted,
                &TableRef::quarantine(name).name(),
                &format!(
                    "{} AND _batch_id = {}",
                    forgotten::predicate(tomb),
                    delta::sql_literal(&l.batch_id)
                ),
            )
            .await?;
            ledger::record_books(
                lake,
                ledger::PromotionRow {
                    dataset: name.to_string(),
                    step: STEP.to_string(),
                    batch_id: format!("{}/forget-{}", l.batch_id, &tomb[..16]),
                    source_file: l.source_file.clone(),
                    rows_in: lines,
                    rows_promoted: lines.saturating_sub(rejects),
                    rejected: rejects,
                    quarantined,
                    duplicates_dropped: 0,
                    updated: 0,
                    warned_rules: 0,
                    contract_version: ds.contract.version.clone(),
                    recorded_at: String::new(),
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn lake_count(lake: &Lake, stage: Stage, table: &str, predicate: &str) -> Result<u64> {
    Ok(delta::count_where(&lake.loc(stage, table)?, Some(predicate)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_students_records_go_and_every_other_byte_stays() {
        let text = "student_id,name\r\nS1,\"Ann\nLee\"\r\nS2,Bo\r\nS10,Cy\r\n s1 ,Di\r\n";
        let (lines, kept) = without_lines_mentioning(text.as_bytes(), &["s1".to_string()]);
        assert_eq!(lines, [2, 6]);
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            "student_id,name\r\nS2,Bo\r\nS10,Cy\r\n"
        );
        // A header never goes, even when a field name matches.
        let (lines, _) = without_lines_mentioning(b"s1\nS1\n", &["s1".to_string()]);
        assert_eq!(lines, [2]);
    }
}
