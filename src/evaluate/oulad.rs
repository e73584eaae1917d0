//! Reading the OULAD folder (`--data`): courses, students, registrations, assessments,
//! submissions and VLE activity, from its CSV files and per-presentation Parquet files.
//!
//! Invariants: nothing dated after day N is kept (activity rows are dropped as they are read, a
//! submission counts only if `date_submitted <= N`, a registration ended after day N is not
//! known); a repeated activity row (same student, site and day) counts once, the later row's
//! clicks; a presentation whose activity was read from Parquet is not read again from CSV.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Assessment, EvalError, Oulad, Presentation, Result, SiteClicks};

fn find(dir: &Path, file: &'static str) -> Option<PathBuf> {
    [dir.join(file), dir.join("csv").join(file)]
        .into_iter()
        .find(|p| p.is_file())
}

fn read_csv(dir: &Path, file: &'static str) -> Result<Vec<HashMap<String, String>>> {
    let path = find(dir, file).ok_or_else(|| EvalError::Missing {
        dir: dir.to_path_buf(),
        file,
    })?;
    read_csv_path(&path)
}

fn read_csv_path(path: &Path) -> Result<Vec<HashMap<String, String>>> {
    let err = |e: csv::Error| EvalError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    let header: Vec<String> = r.headers().map_err(err)?.iter().map(String::from).collect();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(err)?;
        out.push(
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect(),
        );
    }
    Ok(out)
}

/// `?` and empty mean missing; ids and days may be written as floats (`11391.0`).
fn day(v: Option<&String>) -> Option<i64> {
    let v = v?.trim();
    if v.is_empty() || v == "?" {
        return None;
    }
    v.parse::<f64>().ok().map(|f| f as i64)
}

fn get<'a>(r: &'a HashMap<String, String>, k: &str) -> &'a str {
    r.get(k).map(String::as_str).unwrap_or_default()
}

impl Oulad {
    /// Reads the OULAD folder `dir` (files in it or in its `csv/` folder; activity from
    /// `studentVle*.csv` files and `parquet/studentVle/code_module=*/code_presentation=*/*.parquet`),
    /// keeping only what is dated on or before `as_of_day`.
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub async fn load(dir: &Path, as_of_day: i64, only: &[String]) -> Result<Self> {
        let mut o = Oulad::default();
        let keep = |p: &str| only.is_empty() || only.iter().any(|x| x == p);
        for r in read_csv(dir, "courses.csv")? {
            let p = Presentation::oulad(
                get(&r, "code_module"),
                get(&r, "code_presentation"),
                day(r.get("module_presentation_length")).unwrap_or(0),
            );
            if keep(&p.presentation) || keep(&p.course_id()) {
                o.presentations.push(p);
            }
        }
        let courses: HashMap<(String, String), Presentation> = o
            .presentations
            .iter()
            .map(|p| ((p.module.clone(), p.presentation.clone()), p.clone()))
            .collect();
        let course_of = |r: &HashMap<String, String>| {
            courses
                .get(&(
                    get(r, "code_module").to_string(),
                    get(r, "code_presentation").to_string(),
                ))
                .map(Presentation::course_id)
        };
        for r in read_csv(dir, "studentInfo.csv")? {
            if let Some(c) = course_of(&r) {
                let s = id(get(&r, "id_student"));
                o.results
                    .insert((c, s), get(&r, "final_result").to_string());
            }
        }
        if find(dir, "studentRegistration.csv").is_some() {
            for r in read_csv(dir, "studentRegistration.csv")? {
                if let Some(c) = course_of(&r) {
                    let s = id(get(&r, "id_student"));
                    let reg = day(r.get("date_registration"));
                    // A registration ended after day N is not known on day N.
                    let unreg = day(r.get("date_unregistration")).filter(|d| *d <= as_of_day);
                    o.registrations.insert((c, s), (reg, unreg));
                }
            }
        }
        for r in read_csv(dir, "assessments.csv")? {
            let Some(c) = course_of(&r) else { continue };
            let length = courses
                .get(&(
                    get(&r, "code_module").to_string(),
                    get(&r, "code_presentation").to_string(),
                ))
                .map_or(0, |p| p.length);
            let kind = match get(&r, "assessment_type") {
                "TMA" => "assignment",
                "CMA" => "quiz",
                _ => "exam",
            };
            o.assessments.insert(
                id(get(&r, "id_assessment")),
                Assessment {
                    course: c,
                    kind,
                    // A missing date is the final exam's: the end of the presentation.
                    due: day(r.get("date")).unwrap_or(length),
                    weight: get(&r, "weight").parse::<f64>().unwrap_or(0.0) / 100.0,
                },
            );
        }
        for r in read_csv(dir, "studentAssessment.csv")? {
            let a = id(get(&r, "id_assessment"));
            if !o.assessments.contains_key(&a) {
                continue;
            }
            let Some(sub) = day(r.get("date_submitted")) else {
                continue;
            };
            if sub > as_of_day {
                continue;
            }
            let score = get(&r, "score").trim().parse::<f64>().ok();
            o.submissions
                .insert((a, id(get(&r, "id_student"))), (sub, score));
        }
        o.load_activity(dir, as_of_day).await?;
        for days in o.activity.values_mut() {
            days.sort_unstable();
            days.dedup();
        }
        Ok(o)
    }

    async fn load_activity(&mut self, dir: &Path, as_of_day: i64) -> Result<()> {
        // id_site -> engagement activity type (vle.csv; without it every site is `other`).
        let mut types: HashMap<i64, &'static str> = HashMap::new();
        if find(dir, "vle.csv").is_some() {
            for r in read_csv(dir, "vle.csv")? {
                if let Some(site) = day(r.get("id_site")) {
                    types.insert(site, engagement_type(get(&r, "activity_type")));
                }
            }
        }
        // (course, student) -> (site, day) -> clicks: a repeated row overwrites, the later wins.
        let mut sites: SiteClicks = HashMap::new();
        let mut from_parquet = std::collections::BTreeSet::new();
        let root = dir.join("parquet").join("studentVle");
        for p in self.presentations.clone() {
            let part = root
                .join(format!("code_module={}", p.module))
                .join(format!("code_presentation={}", p.presentation));
            let Ok(entries) = std::fs::read_dir(&part) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            files.sort();
            for f in files {
                self.read_parquet(&f, &p.course_id(), as_of_day, &mut sites)
                    .await?;
                from_parquet.insert(p.course_id());
            }
        }
        let mut csvs = Vec::new();
        for d in [dir.to_path_buf(), dir.join("csv")] {
            if let Ok(entries) = std::fs::read_dir(&d) {
                csvs.extend(
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| {
                            f.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("studentVle") && n.ends_with(".csv"))
                        }),
                );
            }
        }
        csvs.sort();
        let courses: HashMap<(String, String), String> = self
            .presentations
            .iter()
            .map(|p| ((p.module.clone(), p.presentation.clone()), p.course_id()))
            .collect();
        for f in csvs {
            self.activity_files += 1;
            for r in read_csv_path(&f)? {
                let key = (
                    get(&r, "code_module").to_string(),
                    get(&r, "code_presentation").to_string(),
                );
                let Some(c) = courses.get(&key) else { continue };
                if from_parquet.contains(c) {
                    continue;
                }
                if let Some(d) = day(r.get("date")).filter(|d| *d <= as_of_day) {
                    let key = (c.clone(), id(get(&r, "id_student")));
                    let site = day(r.get("id_site")).unwrap_or_default();
                    let n = day(r.get("sum_click")).unwrap_or_default();
                    sites.entry(key.clone()).or_default().insert((site, d), n);
                    self.activity.entry(key).or_default().push(d);
                }
            }
        }
        for (key, rows) in sites {
            let per_day = self.clicks.entry(key).or_default();
            for ((site, d), n) in rows {
                let t = types.get(&site).copied().unwrap_or("other");
                *per_day.entry((d, t)).or_default() += n;
            }
        }
        Ok(())
    }

    async fn read_parquet(
        &mut self,
        path: &Path,
        course: &str,
        as_of_day: i64,
        sites: &mut SiteClicks,
    ) -> Result<()> {
        use deltalake::arrow::array::{Array, AsArray};
        use deltalake::arrow::compute::cast;
        use deltalake::arrow::datatypes::{DataType as ArrowType, Float64Type};
        use deltalake::datafusion::prelude::{ParquetReadOptions, SessionContext};
        let err = |m: String| EvalError::Read {
            path: path.to_path_buf(),
            message: m,
        };
        let ctx = SessionContext::new();
        let df = ctx
            .read_parquet(
                path.to_string_lossy().to_string(),
                ParquetReadOptions::default(),
            )
            .await
            .map_err(|e| err(e.to_string()))?;
        let batches = df.collect().await.map_err(|e| err(e.to_string()))?;
        self.activity_files += 1;
        for b in batches {
            let column = |name: &str| -> Result<_> {
                let c = b
                    .column_by_name(name)
                    .ok_or_else(|| err(format!("no column `{name}`")))?;
                cast(c, &ArrowType::Float64).map_err(|e| err(e.to_string()))
            };
            let (s, d) = (column("id_student")?, column("date")?);
            let (site, n) = (column("id_site")?, column("sum_click")?);
            let (s, d, site, n) = (
                s.as_primitive::<Float64Type>(),
                d.as_primitive::<Float64Type>(),
                site.as_primitive::<Float64Type>(),
                n.as_primitive::<Float64Type>(),
            );
            for i in 0..b.num_rows() {
                if s.is_null(i) || d.is_null(i) {
                    continue;
                }
                let day = d.value(i) as i64;
                if day <= as_of_day {
                    let key = (course.to_string(), format!("{}", s.value(i) as i64));
                    let clicks = if n.is_null(i) { 0 } else { n.value(i) as i64 };
                    let site = if site.is_null(i) {
                        0
                    } else {
                        site.value(i) as i64
                    };
                    sites
                        .entry(key.clone())
                        .or_default()
                        .insert((site, day), clicks);
                    self.activity.entry(key).or_default().push(day);
                }
            }
        }
        Ok(())
    }
}

/// The engagement activity type of an OULAD VLE `activity_type`, as the OULAD template's
/// `pipelines/engagement.yaml` maps it (the lake path reads the mapped type from trusted).
pub(super) fn engagement_type(t: &str) -> &'static str {
    match t {
        "homepage" | "login" => "login",
        "forumng" | "ouelluminate" | "ouwiki" | "forum" => "forum",
        "quiz" | "externalquiz" | "questionnaire" => "quiz",
        "resource" | "oucontent" | "url" | "subpage" | "page" | "glossary" => "resource",
        "oucollaborate" | "video" => "video",
        _ => "other",
    }
}

/// Ids are numeric; written `11391` or `11391.0`.
fn id(v: &str) -> String {
    let v = v.trim();
    match v.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 => format!("{}", f as i64),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::NaiveDate;
    use polars::prelude::*;

    use super::*;
    use crate::curated::products;
    use crate::evaluate::frames::{engagement_frame, members};

    /// An OULAD folder with one presentation, two students and the given VLE rows
    /// (id_student, id_site, date, sum_click).
    fn folder(vle: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        w(
            "courses.csv",
            "code_module,code_presentation,module_presentation_length\nAAA,2013J,268\n".into(),
        );
        w(
            "assessments.csv",
            "code_module,code_presentation,id_assessment,assessment_type,date,weight\n".into(),
        );
        w(
            "studentAssessment.csv",
            "id_assessment,id_student,date_submitted,is_banked,score\n".into(),
        );
        w("studentInfo.csv", "code_module,code_presentation,id_student,final_result\nAAA,2013J,1,Pass\nAAA,2013J,2,Fail\n".into());
        w("vle.csv", "id_site,code_module,code_presentation,activity_type,week_from,week_to\n10,AAA,2013J,quiz,?,?\n11,AAA,2013J,oucontent,?,?\n".into());
        let mut text =
            "code_module,code_presentation,id_student,id_site,date,sum_click\n".to_string();
        for (s, site, d, n) in vle {
            text.push_str(&format!("AAA,2013J,{s},{site},{d},{n}\n"));
        }
        w("studentVle_AAA_2013J.csv", text);
        dir
    }

    // polars blocks inside a runtime only on the multi-threaded one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn clicks_are_read_by_day_and_type_a_repeated_row_once() {
        // Student 1: a repeated row (site 10, day 3) counts once, the later row's clicks, as
        // trusted keeps it; two sites of one type on a day add up; day 60 is after the day.
        let dir = folder(&[
            ("1", "10", "3", "4"),
            ("1", "10", "3", "6"),
            ("1", "11", "3", "2"),
            ("1", "11", "-5", "1"),
            ("1", "11", "60", "9"),
            ("2", "12", "5", "7"),
        ]);
        let o = Oulad::load(dir.path(), 56, &[]).await.unwrap();
        let one = &o.clicks[&("AAA-2013J".to_string(), "1".to_string())];
        let want: BTreeMap<(i64, &str), i64> = [
            ((-5, "resource"), 1),
            ((3, "quiz"), 6),
            ((3, "resource"), 2),
        ]
        .into();
        assert_eq!(one, &want);
        // A site missing from vle.csv is `other`.
        let two = &o.clicks[&("AAA-2013J".to_string(), "2".to_string())];
        assert_eq!(two, &[((5, "other"), 7)].into());
        // The engagement rows the products read: one per student, day and type, dated from
        // the presentation's start (2013-10-01), pre-start activity included.
        let list = members(&o, 56).0;
        let eng = engagement_frame(&o, &list).unwrap().unwrap();
        assert_eq!(eng.height(), 4);
        let p = products::student_course_engagement(&eng).unwrap();
        let clicks: Vec<Option<i64>> = p.column("clicks").unwrap().i64().unwrap().iter().collect();
        assert_eq!(clicks, [Some(9), Some(7)]);
        let last: Vec<Option<i32>> = p
            .column("last_active_date")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap()
            .i32()
            .unwrap()
            .iter()
            .collect();
        let day0 = (NaiveDate::from_ymd_opt(2013, 10, 1).unwrap()
            - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32;
        assert_eq!(last, [Some(day0 + 3), Some(day0 + 5)]);
    }

    #[test]
    fn oulad_activity_types_map_as_the_template_does() {
        let yaml = include_str!("../../templates/oulad/pipelines/engagement.yaml");
        for (oulad, ours) in [
            ("homepage", "login"),
            ("forumng", "forum"),
            ("ouwiki", "forum"),
            ("externalquiz", "quiz"),
            ("oucontent", "resource"),
            ("subpage", "resource"),
            ("oucollaborate", "video"),
            ("dataplus", "other"),
        ] {
            assert_eq!(engagement_type(oulad), ours, "{oulad}");
            if ours != "other" {
                assert!(yaml.contains(&format!("{oulad}: {ours}")), "{oulad}");
            }
        }
    }
}
