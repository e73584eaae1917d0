//! trusted → curated: the learning-analytics products, derived only from trusted tables.
//!
//! The unit of recomputation is a course: a new trusted batch marks the courses it touches,
//! and every product row of those courses is recomputed and replaces the old rows in one Delta
//! commit (`replaceWhere course_id IN (...)`): from trusted, or, when the only new batches are
//! attendance that appends, from the attendance state curated keeps ([`increment`]). Every metric of a course depends
//! only on that course's trusted rows (its `as_of` is the course's newest timestamp), so an
//! incremental build equals a full rebuild. No product carries a direct identifier: students
//! appear only by pseudonym.
//!
//! Files: [`config`] reads the products file, [`products`] computes the products, [`rules`]
//! checks them; this file finds what to recompute and writes it.

mod config;
pub mod increment;
pub mod products;
mod read;
pub mod rules;

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;
use serde::Serialize;

use crate::frame;
use crate::lake::Lake;
use crate::ledger;
use crate::metrics::{Metric, Unit};
use crate::rules::eval::AsOf;
use crate::stage::{Registration, Result, StepOptions};
use crate::storage::delta::{self, txn_id};
use crate::vocab::Stage;

use read::{course_filter, only_courses, product_columns, sql_list};
pub use read::{course_groups, ByCourse, SORT_MEMORY};

pub use config::{AtRiskConfig, CuratedConfig, Indicator, Indicators, Levels, PassMark};

/// Name the curated step's shared reads of trusted are measured under (duration and cost),
/// apart from each product's own build and write.
pub const READS: &str = "trusted_reads";

/// Step name used in txn ids.
pub const STEP: &str = crate::ledger::Step::TrustedToCurated.as_str();

/// The curated products, in build order.
pub const PRODUCTS: &[&str] = &[
    "student_course_attendance",
    "attendance_weekly",
    "student_course_performance",
    "student_course_engagement",
    "engagement_weekly",
    "at_risk_students",
    "course_summary",
];

/// Trusted datasets a product reads (a product is built once any of them has rows).
fn inputs(product: &str) -> &'static [&'static str] {
    match product {
        "student_course_attendance" | "attendance_weekly" => &["attendance"],
        "student_course_performance" => &["grades"],
        "student_course_engagement" | "engagement_weekly" => &["engagement"],
        _ => &["attendance", "grades", "engagement"],
    }
}

/// What the curated step did for one product.
#[derive(Debug, Clone, Serialize)]
pub struct CuratedReport {
    /// Product name.
    pub product: String,
    /// Trusted batches newly consumed.
    pub batches: Vec<String>,
    /// Courses recomputed.
    pub courses: usize,
    /// Rows written for those courses.
    pub rows: u64,
    /// The product's rule results (none without a rules file).
    pub rules: Vec<crate::rules::eval::RuleResult>,
    /// Whether anything was written.
    pub committed: bool,
}

/// Starts reading `dataset`'s trusted rows of `courses` for the products (every column but the
/// lineage); `None` when the table does not exist yet.
async fn open_inputs(
    lake: &Lake,
    dataset: &str,
    courses: &BTreeSet<String>,
    memory: usize,
) -> Result<Option<ByCourse>> {
    match product_columns(lake, dataset).await? {
        Some(columns) => ByCourse::open(lake, dataset, &columns, courses, memory).await,
        None => Ok(None),
    }
}

/// The next group's rows (up to course `last`) of an input, `None` without the table.
async fn next_group(input: &mut Option<ByCourse>, last: Option<&str>) -> Result<Option<DataFrame>> {
    match input {
        Some(rows) => Ok(Some(rows.through(last).await?)),
        None => Ok(None),
    }
}

/// A trusted commit a product has not consumed yet: a promoted batch or a quarantine release.
#[derive(Debug, Clone)]
struct Pending {
    /// Input dataset.
    dataset: String,
    /// Batch id, or `release-<stamp>`.
    label: String,
    /// The curated txn that marks it consumed.
    app: String,
    /// Courses it touches, as recorded with the trusted commit (`None` for commits written
    /// before medallion recorded them: then read from the rows).
    courses: Option<Vec<String>>,
    /// Whether the commit only added records (a promoted batch that replaced none).
    appends: bool,
}

impl Pending {
    fn qualified(&self) -> String {
        format!("{}/{}", self.dataset, self.label)
    }
}

/// A trusted commit: its batch label, the courses it touches (when recorded), and whether it
/// only added records.
type TrustedCommit = (String, Option<Vec<String>>, bool);

/// The trusted commits of `ds` curated consumes, oldest first: from the table's history (one
/// read), plus landed batches whose commit the history no longer shows.
async fn trusted_commits(lake: &Lake, ds: &str) -> Result<Vec<TrustedCommit>> {
    use crate::stage::trusted::{FORGET_STEP, RELEASE_STEP, STEP as TRUSTED};
    let trusted = lake.loc(Stage::Trusted, ds)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for info in delta::step_commits(&trusted, &[TRUSTED, RELEASE_STEP, FORGET_STEP]).await? {
        let meta = ledger::CommitMeta::read(&info);
        let Some(label) = meta.batch else {
            continue;
        };
        let appends = meta.step == TRUSTED
            && ledger::CommitMeta::read_books(&info)
                .ok()
                .flatten()
                .is_some_and(|b| b.updated == 0);
        seen.insert(label.clone());
        out.push((label, meta.courses, appends));
    }
    for f in lake.store.list_landed(ds).await? {
        let b = f.batch_id();
        if !seen.contains(&b) && delta::has_batch(&trusted, &txn_id(TRUSTED, &b)).await? {
            out.push((b, None, false));
        }
    }
    out.reverse();
    Ok(out)
}

/// The trusted commits (`commits`, per input dataset) not yet in `product`.
async fn pending(
    lake: &Lake,
    product: &str,
    commits: &HashMap<&str, Vec<TrustedCommit>>,
) -> Result<Vec<Pending>> {
    let loc = lake.loc(Stage::Curated, product)?;
    let mut out = Vec::new();
    // The product's history is read once, not its log once per batch.
    let consumed = delta::batches_in_history(&loc, STEP).await?;
    for ds in inputs(product) {
        for (label, courses, appends) in commits.get(ds).into_iter().flatten() {
            let p = Pending {
                dataset: (*ds).to_string(),
                app: txn_id(STEP, &format!("{ds}/{label}")),
                label: label.clone(),
                courses: courses.clone(),
                appends: *appends,
            };
            if consumed.contains(&p.qualified()) || delta::has_batch(&loc, &p.app).await? {
                continue;
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// Courses touched by the pending commits: as recorded with each trusted commit (including the
/// courses corrected records left), else the courses of the batch's rows.
async fn touched_courses(lake: &Lake, todo: &[Pending]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let datasets: BTreeSet<&str> = todo.iter().map(|p| p.dataset.as_str()).collect();
    for ds in datasets {
        let mut unrecorded = BTreeSet::new();
        for p in todo.iter().filter(|p| p.dataset == ds) {
            match &p.courses {
                Some(c) => out.extend(c.iter().cloned()),
                None => {
                    unrecorded.insert(p.label.clone());
                }
            }
        }
        if unrecorded.is_empty() {
            continue;
        }
        let filter = format!("_batch_id IN ({})", sql_list(&unrecorded));
        out.extend(courses_where(lake, ds, &filter).await?);
    }
    Ok(out)
}

/// The courses of a trusted table's rows matching `filter` (SQL).
async fn courses_where(lake: &Lake, dataset: &str, filter: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let loc = lake.loc(Stage::Trusted, dataset)?;
    let sql = format!("SELECT DISTINCT course_id FROM t WHERE {filter}");
    if let Some((schema, batches)) = delta::query(&loc, &sql).await? {
        frame::distinct_text(
            &frame::from_batches(&schema, &batches)?,
            "course_id",
            &mut out,
        )?;
    }
    Ok(out)
}

/// The qualified batches (`dataset/label`) `product` has pending in `plan`.
fn qualified(plan: &[Planned], product: &str) -> BTreeSet<String> {
    plan.iter()
        .filter(|(p, _, _)| *p == product)
        .flat_map(|(_, todo, _)| todo.iter().map(Pending::qualified))
        .collect()
}

/// What a product recomputes: its pending commits and the courses they touch.
type Planned = (&'static str, Vec<Pending>, BTreeSet<String>);

/// When every planned product reads attendance and has the same pending commits, all of them
/// attendance batches that only added records: their labels and courses.
fn appends_only(plan: &[Planned]) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let first = qualified(plan, "student_course_attendance");
    for (product, todo, _) in plan {
        if !increment::PRODUCTS.contains(product)
            || todo.iter().any(|p| p.dataset != "attendance" || !p.appends)
            || qualified(plan, product) != first
        {
            return None;
        }
    }
    let (_, todo, courses) = plan
        .iter()
        .find(|(p, _, _)| *p == "student_course_attendance")?;
    Some((
        todo.iter().map(|p| p.label.clone()).collect(),
        courses.clone(),
    ))
}

/// `product` from `builder` over `inp`, checked; with `student_course_attendance`, the
/// attendance state it was made of too.
fn build_one(
    builder: &mut products::Builder<'_>,
    product: &str,
    inp: &products::Inputs,
) -> Result<(DataFrame, Option<(DataFrame, DataFrame)>)> {
    // A product reads only its own inputs (`inputs`); the others are unused.
    let df = builder.build(product)?;
    products::check(product, &df, inp)?;
    let state = if product == "student_course_attendance" {
        builder.attendance_state()?
    } else {
        None
    };
    Ok((df, state))
}

/// Builds every curated product whose inputs have new trusted batches.
///
/// # Errors
/// Storage or polars errors; a curated `fail` check stops before any write.
pub async fn run(
    lake: &Lake,
    cfg: &CuratedConfig,
    opts: StepOptions,
) -> Result<Vec<CuratedReport>> {
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    // Each input's trusted history is read once per run, not once per product.
    let mut commits = HashMap::new();
    for ds in PRODUCTS.iter().flat_map(|p| inputs(p)) {
        if !commits.contains_key(ds) {
            commits.insert(*ds, trusted_commits(lake, ds).await?);
        }
    }
    // What each product has to recompute.
    let mut plan: Vec<Planned> = Vec::new();
    for product in PRODUCTS {
        let todo = pending(lake, product, &commits).await?;
        if !todo.is_empty() {
            let courses = touched_courses(lake, &todo).await?;
            plan.push((*product, todo, courses));
        }
    }
    if plan.is_empty() {
        return Ok(reports);
    }
    tracing::debug!(
        secs = started.elapsed().as_secs_f64(),
        "Curated planned (trusted and product histories read)."
    );
    let read_started = std::time::Instant::now();
    let read_io = crate::metrics::io::IoSnapshot::now();
    let students = match delta::query(
        &lake.loc(Stage::Trusted, "students")?,
        // One row per student (an OULAD project has one per registration): active wins.
        "SELECT student_id, min(status) AS status FROM t GROUP BY student_id ORDER BY student_id",
    )
    .await?
    {
        Some((s, b)) => Some(frame::from_batches(&s, &b)?),
        None => None,
    };
    // The attendance state: what it must reflect after this run, and whether it reflects what
    // the products consumed before it (else the products' courses are rebuilt whole).
    let attendance_batches: BTreeSet<String> = commits
        .get("attendance")
        .into_iter()
        .flatten()
        .map(|(label, _, _)| format!("attendance/{label}"))
        .collect();
    let state_planned = plan
        .iter()
        .any(|(p, _, _)| *p == "student_course_attendance");
    let mut state_rebuild = false;
    let mut incremental = None;
    if state_planned {
        let consumed: BTreeSet<String> = attendance_batches
            .difference(&qualified(&plan, "student_course_attendance"))
            .cloned()
            .collect();
        if !increment::covers(lake, &consumed).await? {
            // A lake from before the state (or a crash between its commit and the products'):
            // every course of attendance is rebuilt, and the state with it.
            state_rebuild = true;
            let all = courses_where(lake, "attendance", "TRUE").await?;
            for (p, _, courses) in plan.iter_mut() {
                if *p == "student_course_attendance" {
                    courses.extend(all.iter().cloned());
                }
            }
        } else if let Some((labels, courses)) = appends_only(&plan) {
            let t = std::time::Instant::now();
            incremental = increment::build(lake, cfg, &labels, &courses, students.as_ref())
                .await?
                .map(|built| (built, t.elapsed().as_secs_f64()));
        }
    }
    if incremental.is_some() {
        tracing::info!(
            batches = qualified(&plan, "student_course_attendance").len(),
            "Curated adds the attendance batches to the kept state (no rebuild)."
        );
    } else if state_rebuild {
        tracing::info!(
            batches = attendance_batches.len(),
            "Curated rebuilds every course: the attendance state is not current."
        );
    }
    let mut built: HashMap<&str, Vec<DataFrame>> = HashMap::new();
    // Time spent building each product (its share of reading is reported apart).
    let mut build_secs: HashMap<&str, f64> = HashMap::new();
    // The increment's new attendance state (a rebuild writes each group's as it is built).
    let mut added_state: Option<(DataFrame, DataFrame)> = None;
    if let Some((inc, secs)) = incremental {
        // One computation made the four products: its time is shared between them.
        let share = secs / inc.products.len().max(1) as f64;
        for (product, df) in inc.products {
            build_secs.insert(product, share);
            built.insert(product, vec![df]);
        }
        added_state = Some((inc.totals, inc.recent));
    } else {
        // Every product is built group of courses by group, each group's trusted rows read
        // once for all products: a course's metrics depend only on its own rows.
        let all: BTreeSet<String> = plan
            .iter()
            .flat_map(|(_, _, c)| c.iter().cloned())
            .collect();
        let read: BTreeSet<&str> = plan
            .iter()
            .flat_map(|(p, _, _)| inputs(p).iter().copied())
            .collect();
        // Each input is read once for the run, sorted by course, and handed out group by group.
        let mut att = open_inputs(lake, "attendance", &all, cfg.sort_memory()).await?;
        let mut grades = open_inputs(lake, "grades", &all, cfg.sort_memory()).await?;
        let mut eng = if read.contains("engagement") {
            open_inputs(lake, "engagement", &all, cfg.sort_memory()).await?
        } else {
            None
        };
        for group in course_groups(lake, Some(&all), &read, cfg.chunk_rows.max(1)).await? {
            let last = group.last().map(String::as_str);
            let group_inputs = products::Inputs {
                students: students.clone(),
                attendance: next_group(&mut att, last).await?,
                grades: next_group(&mut grades, last).await?,
                engagement: next_group(&mut eng, last).await?,
            };
            // What several products read (the per-student products, the at-risk list) is
            // computed once per group.
            let mut shared = products::Builder::new(&group_inputs, cfg);
            for (product, _, courses) in &plan {
                // A product with no course to recompute is still built once, empty (its schema).
                let mine: BTreeSet<String> = group.intersection(courses).cloned().collect();
                let schema_only = courses.is_empty() && !built.contains_key(product);
                if mine.is_empty() && !schema_only {
                    continue;
                }
                let t = std::time::Instant::now();
                let whole = mine.len() == group.len();
                let narrowed = if whole {
                    None
                } else {
                    Some(products::Inputs {
                        attendance: only_courses(&group_inputs.attendance, &mine)?,
                        grades: only_courses(&group_inputs.grades, &mine)?,
                        students: students.clone(),
                        engagement: only_courses(&group_inputs.engagement, &mine)?,
                    })
                };
                let (df, state) = match &narrowed {
                    None => build_one(&mut shared, product, &group_inputs)?,
                    Some(n) => build_one(&mut products::Builder::new(n, cfg), product, n)?,
                };
                *build_secs.entry(product).or_default() += t.elapsed().as_secs_f64();
                if let (Some((totals, recent)), false) = (state, opts.dry_run) {
                    // Written as built (not held for the run): its record of the batches it
                    // reflects comes last, after every group's (see below).
                    increment::write_state(lake, totals, recent, &mine, None).await?;
                }
                // Kept until every group is built: copied out of the group's string buffers (a
                // product's ids are views into its inputs, which would otherwise stay alive).
                built.entry(product).or_default().push(frame::compact(df)?);
            }
        }
    }
    // The shared reads, once for the run.
    let total_build: f64 = build_secs.values().sum();
    let mut read_metrics = vec![Metric::new(
        "DurationSeconds",
        (read_started.elapsed().as_secs_f64() - total_build).max(0.0),
        Unit::Seconds,
        READS,
        "curated",
    )];
    read_metrics.extend(lake.cost_metrics(&read_io, READS, "curated"));
    if !opts.dry_run {
        lake.metrics.emit(&read_metrics).await?;
    }
    // Every product is judged before anything is written: a `fail` rule stops the step with
    // no product and no state changed.
    let mut judged = Vec::new();
    for (product, todo, courses) in plan.iter() {
        let started = std::time::Instant::now();
        let mut parts = built.remove(product).unwrap_or_default().into_iter();
        let Some(mut df) = parts.next() else {
            continue;
        };
        for p in parts {
            df.vstack_mut_owned(p)?;
        }
        let by: Vec<PlSmallStr> = products::key(product).iter().map(|k| (*k).into()).collect();
        let df = df.sort(by, SortMultipleOptions::default())?;
        let product_rules = match &cfg.rules_dir {
            Some(dir) => rules::load(dir, product, &df)?,
            None => crate::rules::RuleSet::default(),
        };
        let history = ledger::rule_history(lake, product, Stage::Curated).await?;
        let results = rules::judge(
            product,
            &df,
            &product_rules,
            &history,
            AsOf(lake.clock.now()),
        )?;
        let report = CuratedReport {
            product: (*product).to_string(),
            batches: todo.iter().map(Pending::qualified).collect(),
            courses: courses.len(),
            rows: df.height() as u64,
            rules: results,
            committed: !opts.dry_run,
        };
        *build_secs.entry(*product).or_default() += started.elapsed().as_secs_f64();
        judged.push((*product, todo, courses, df, report));
    }
    if opts.dry_run {
        reports.extend(judged.into_iter().map(|(_, _, _, _, r)| r));
        return Ok(reports);
    }
    // The state's write is measured (time, bytes, requests) with the product it is made for.
    let state_started = (
        std::time::Instant::now(),
        crate::metrics::io::IoSnapshot::now(),
    );
    if state_planned {
        // The state before the products, with the record of the batches it now reflects: a
        // crash before the products leaves it ahead of them, which the next run sees and
        // rebuilds (as it does when a rebuild stops between groups: no record yet).
        let courses = plan
            .iter()
            .find(|(p, _, _)| *p == "student_course_attendance")
            .map(|(_, _, c)| c.clone())
            .unwrap_or_default();
        let (totals, recent, courses) = match added_state {
            Some((t, r)) => (t, r, courses),
            None => (
                products::attendance_state::empty_totals()?,
                products::attendance_state::empty_recent()?,
                BTreeSet::new(),
            ),
        };
        increment::write_state(lake, totals, recent, &courses, Some(&attendance_batches)).await?;
        crate::stage::crash_point(STEP, "after-state");
    }
    for (product, todo, courses, mut df, report) in judged {
        let (started, io_start) = if state_planned && product == "student_course_attendance" {
            state_started
        } else {
            (
                std::time::Instant::now(),
                crate::metrics::io::IoSnapshot::now(),
            )
        };
        let rows = report.rows;
        // Results first, product last: a crash in between reruns the same build, whose
        // results are then already recorded (same batch label, same txn).
        let label = report.batches.last().cloned().unwrap_or_default();
        ledger::record_rules(lake, product, Stage::Curated, &label, &report.rules).await?;
        crate::stage::crash_point(STEP, "after-results");
        let (schema, data) = frame::to_batches(&mut df)?;
        let loc = lake.loc(Stage::Curated, product)?;
        let txns: Vec<String> = todo.iter().map(|p| p.app.clone()).collect();
        // No course touched (batches without rows): nothing to replace, the txns still land.
        let predicate = (!courses.is_empty() || rows > 0).then(|| course_filter(courses));
        let meta = ledger::CommitMeta::new(ledger::Step::TrustedToCurated)
            .with_batches(report.batches.clone())
            .entries();
        delta::replace_where(&loc, schema, data, predicate.as_deref(), &txns, &meta).await?;
        crate::stage::crash_point(STEP, "after-product");
        lake.register(Registration {
            dataset: product,
            stage: Some(Stage::Curated),
            table: product,
            kind: "data",
            description: products::description(product),
            contract: None,
            last_batch: report.batches.last().map(String::as_str),
            comments: Some(products::column_comments(product)),
        })
        .await?;
        let metrics = crate::stage::step::batch_metrics(
            lake,
            (product, Stage::Curated),
            vec![("RowsPromoted", rows as f64, Unit::Count)],
            started.elapsed().as_secs_f64() + build_secs.get(product).copied().unwrap_or(0.0),
            &report.rules,
            &io_start,
        );
        lake.metrics.emit(&metrics).await?;
        reports.push(report);
    }
    Ok(reports)
}
