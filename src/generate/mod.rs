//! A generator of realistic academic exports (courses, students, attendance, grades) with
//! optional injected defects, seedable so tests and benchmarks are reproducible.
//!
//! Every injected defect is written to `defects.jsonl` beside the exports with the file, line
//! and what medallion must do with it (`reject:<kind>`, `quarantine:<rule id>`, `duplicate`),
//! so a test can check that nothing was lost and every defect was caught by the right rule.
//!
//! Files: [`defect`] breaks lines, [`engagement`] writes the engagement export and the
//! assessment plan, [`out`] writes one export file; this file writes courses, students,
//! attendance and grades.
//!
//! Invariants: the same options (seed included) write the same bytes; every injected defect
//! is listed once in `defects.jsonl`, with the file and line it is on.

mod defect;
mod engagement;
mod out;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use defect::{attendance_defect, grades_defect};
use engagement::{assessment_plan, engagement};
use out::{ts, Out};

/// Errors writing the exports.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct GenerateError {
    /// File being written.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Students on the roster.
    pub students: usize,
    /// Calendar days of attendance and grades.
    pub days: u32,
    /// RNG seed.
    pub seed: u64,
    /// Share of rows given one defect (0..1).
    pub defect_rate: f64,
    /// First day of the term.
    pub start: NaiveDate,
    /// Courses each student takes.
    pub courses_per_student: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            students: 200,
            days: 30,
            seed: 7,
            defect_rate: 0.0,
            start: NaiveDate::from_ymd_opt(2026, 9, 7).unwrap_or_default(),
            courses_per_student: 4,
        }
    }
}

/// One injected defect and what must happen to it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Defect {
    /// Export file name.
    pub file: String,
    /// 1-based line in that file.
    pub line: u64,
    /// What was injected.
    pub kind: String,
    /// `reject:<kind>`, `quarantine:<rule id>` or `duplicate`.
    pub expect: String,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// Files written, with their data row counts.
    pub files: Vec<(String, u64)>,
    /// Injected defects (corrections included).
    pub defects: usize,
    /// Corrections (same record id, newer timestamp) included.
    pub corrections: usize,
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hugo", "Inès", "Jamal", "Kai", "Lena",
    "Mateo", "Nia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen",
    "Yara", "Zoë", "José",
];
const LAST: &[&str] = &[
    "Abara", "Brown", "Chen", "Dubois", "Eriksen", "García", "Haddad", "Ivanova", "Jones",
    "Kowalski", "Lee", "Müller", "Nguyen", "O'Brien", "Patel", "Rossi", "Silva", "Tanaka",
    "Walker", "Zhang",
];
const SUBJECTS: &[(&str, &str)] = &[
    ("MAT", "Calculus"),
    ("PHY", "Physics"),
    ("BIO", "Biology"),
    ("CHE", "Chemistry"),
    ("HIS", "History"),
    ("LIT", "Literature"),
    ("CS", "Programming"),
    ("ECO", "Economics"),
    ("ART", "Art History"),
    ("PSY", "Psychology"),
];
const PROGRAMS: &[&str] = &["Science", "Humanities", "Engineering", "Business"];

struct Student {
    id: String,
    name: String,
    email: String,
    attend: f64,
    ability: f64,
    diligence: f64,
    courses: Vec<usize>,
}

struct Course {
    id: String,
    meets: Vec<Weekday>,
    instructor: String,
}

/// Writes `courses.csv`, `students.csv`, `attendance_<end>.csv`, `grades_<end>.csv`,
/// `engagement_<end>.csv` and
/// `defects.jsonl` into `dir`.
///
/// # Errors
/// I/O errors.
pub fn generate(dir: &Path, o: &GenerateOptions) -> Result<Generated, GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let end = o.start + Duration::days(i64::from(o.days.max(1)) - 1);
    let n_courses = (o.students * o.courses_per_student / 30).clamp(4, 200);
    let mut courses = Vec::new();
    let mut cf = Out::create(
        dir,
        "courses.csv",
        &[
            "course_id",
            "title",
            "term",
            "credits",
            "instructor_email",
            "start_date",
            "end_date",
        ],
    )?;
    for i in 0..n_courses {
        let (code, title) = SUBJECTS[i % SUBJECTS.len()];
        let id = format!("{code}{}", 101 + i / SUBJECTS.len());
        let meets = if i % 2 == 0 {
            vec![Weekday::Mon, Weekday::Wed, Weekday::Fri]
        } else {
            vec![Weekday::Tue, Weekday::Thu]
        };
        let instructor = format!("t{:04}@school.edu", i + 1);
        cf.row(&[
            id.clone(),
            format!("{title} {}", 1 + i / SUBJECTS.len()),
            "2026-FALL".into(),
            (3 + i % 3).to_string(),
            instructor.clone(),
            o.start.to_string(),
            (o.start + Duration::days(105)).to_string(),
        ])?;
        courses.push(Course {
            id,
            meets,
            instructor,
        });
    }
    let mut files: Vec<(String, u64)> = cf.finish()?.into_iter().collect();

    let mut sf = Out::create(
        dir,
        "students.csv",
        &[
            "student_id",
            "first_name",
            "last_name",
            "email",
            "date_of_birth",
            "cohort",
            "program",
            "enrolled_on",
            "status",
        ],
    )?;
    let mut students = Vec::with_capacity(o.students);
    for i in 0..o.students {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let id = format!("S{:06}", i + 1);
        let email = format!(
            "{}.{}{}@students.school.edu",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', ""),
            i + 1
        );
        let profile: f64 = rng.gen();
        let attend = if profile < 0.06 {
            rng.gen_range(0.55..0.8)
        } else if profile < 0.2 {
            rng.gen_range(0.82..0.92)
        } else {
            rng.gen_range(0.93..0.995)
        };
        let mut cs: Vec<usize> = Vec::new();
        while cs.len() < o.courses_per_student.min(n_courses) {
            let c = rng.gen_range(0..n_courses);
            if !cs.contains(&c) {
                cs.push(c);
            }
        }
        let dob = NaiveDate::from_ymd_opt(
            2004 + rng.gen_range(0..5),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28),
        )
        .unwrap_or_default();
        sf.row(&[
            id.clone(),
            first.to_string(),
            last.to_string(),
            email.clone(),
            dob.to_string(),
            (2023 + i % 4).to_string(),
            PROGRAMS[i % PROGRAMS.len()].to_string(),
            NaiveDate::from_ymd_opt(2023 + (i % 4) as i32, 9, 1)
                .unwrap_or_default()
                .to_string(),
            if rng.gen_bool(0.03) {
                "withdrawn".into()
            } else {
                "active".to_string()
            },
        ])?;
        students.push(Student {
            id,
            name: format!("{first} {last}"),
            email,
            attend,
            // Most students do well; about one in seven struggles.
            ability: if rng.gen_bool(0.14) {
                rng.gen_range(0.45..0.72)
            } else {
                rng.gen_range(0.72..0.98)
            },
            diligence: (attend + rng.gen_range(-0.1..0.05)).clamp(0.3, 1.0),
            courses: cs,
        });
    }
    files.extend(sf.finish()?);

    let mut defects: Vec<Defect> = Vec::new();
    let mut corrections = 0usize;
    let att_name = format!("attendance_{end}.csv");
    let mut af = Out::create(
        dir,
        &att_name,
        &[
            "record_id",
            "student_id",
            "student_name",
            "student_email",
            "course_id",
            "section",
            "session_date",
            "status",
            "minutes_attended",
            "recorded_by",
            "recorded_at",
        ],
    )?;
    for day in 0..o.days {
        let date = o.start + Duration::days(i64::from(day));
        let mut rec = 0u64;
        for s in &students {
            for &ci in &s.courses {
                let c = &courses[ci];
                if !c.meets.contains(&date.weekday()) {
                    continue;
                }
                rec += 1;
                let record_id = format!("A{}{:06}", date.format("%Y%m%d"), rec);
                let roll: f64 = rng.gen();
                let (status, minutes) = if roll < s.attend {
                    if rng.gen_bool(0.06) {
                        ("late", rng.gen_range(20..45))
                    } else {
                        ("present", 50)
                    }
                } else if rng.gen_bool(0.2) {
                    ("excused", 0)
                } else {
                    ("absent", 0)
                };
                let mut f: Vec<Vec<u8>> = vec![
                    record_id,
                    s.id.clone(),
                    s.name.clone(),
                    s.email.clone(),
                    c.id.clone(),
                    "01".into(),
                    date.to_string(),
                    status.into(),
                    minutes.to_string(),
                    c.instructor.clone(),
                    ts(date, 9 * 60 + rng.gen_range(0..480), rng.gen_bool(0.1)),
                ]
                .into_iter()
                .map(String::into_bytes)
                .collect();
                let defect = if o.defect_rate > 0.0 && rng.gen_bool(o.defect_rate.clamp(0.0, 1.0)) {
                    Some(attendance_defect(&mut rng, &mut f))
                } else {
                    None
                };
                let line = af.row(&f)?;
                match defect {
                    Some((kind, expect)) => defects.push(Defect {
                        file: att_name.clone(),
                        line,
                        kind: kind.into(),
                        expect,
                    }),
                    None if o.defect_rate > 0.0
                        && rng.gen_bool((o.defect_rate / 2.0).clamp(0.0, 1.0)) =>
                    {
                        if rng.gen_bool(0.5) {
                            let line = af.row(&f)?;
                            defects.push(Defect {
                                file: att_name.clone(),
                                line,
                                kind: "duplicate_record".into(),
                                expect: "duplicate".into(),
                            });
                        } else {
                            // A correction: same record, recorded later with another status.
                            f[7] = b"excused".to_vec();
                            f[8] = b"0".to_vec();
                            f[10] = ts(date, 23 * 60 + 30, false).into_bytes();
                            let line = af.row(&f)?;
                            corrections += 1;
                            defects.push(Defect {
                                file: att_name.clone(),
                                line,
                                kind: "correction".into(),
                                expect: "duplicate".into(),
                            });
                        }
                    }
                    None => {}
                }
            }
        }
    }
    files.extend(af.finish()?);

    let grades_name = format!("grades_{end}.csv");
    let mut gf = Out::create(
        dir,
        &grades_name,
        &[
            "record_id",
            "student_id",
            "course_id",
            "assessment_id",
            "assessment_type",
            "due_at",
            "submitted_at",
            "graded_at",
            "score",
            "max_score",
            "weight",
        ],
    )?;
    let as_of = end.and_hms_opt(23, 59, 59).unwrap_or_default();
    let mut grec = 0u64;
    let plan = assessment_plan(o.days);
    for s in &students {
        for &ci in &s.courses {
            let c = &courses[ci];
            for (k, (kind, due_day, max, weight)) in plan.iter().enumerate() {
                grec += 1;
                let due = o.start + Duration::days(i64::from(*due_day));
                let due_ts = due.and_hms_opt(23, 59, 0).unwrap_or_default();
                let submitted = rng.gen_bool(s.diligence.clamp(0.05, 0.99));
                let late = submitted && rng.gen_bool((1.0 - s.diligence).clamp(0.02, 0.6));
                let sub_ts = if !submitted {
                    None
                } else if late {
                    Some(due_ts + Duration::hours(rng.gen_range(2..96)))
                } else {
                    Some(due_ts - Duration::hours(rng.gen_range(1..72)))
                };
                // Nothing is submitted after the export was made.
                let sub_ts = sub_ts.filter(|t| *t <= as_of);
                let graded_ts = sub_ts
                    .map(|t| t + Duration::hours(rng.gen_range(12..120)))
                    .filter(|t| *t <= as_of);
                let trend = (k as f64 / plan.len() as f64 - 0.5) * (s.attend - 0.85);
                let pct = (s.ability + trend + rng.gen_range(-0.12..0.12)).clamp(0.0, 1.0);
                let score = graded_ts.map(|_| ((pct * max) * 2.0).round() / 2.0);
                let fmt_ts =
                    |t: chrono::NaiveDateTime| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"));
                let mut f: Vec<Vec<u8>> = vec![
                    format!("G{}{grec:07}", o.start.format("%Y%m%d")),
                    s.id.clone(),
                    c.id.clone(),
                    format!("{}-{kind}{}", c.id, k + 1),
                    (*kind).to_string(),
                    fmt_ts(due_ts),
                    sub_ts.map(fmt_ts).unwrap_or_default(),
                    graded_ts.map(fmt_ts).unwrap_or_default(),
                    score.map(|v| v.to_string()).unwrap_or_default(),
                    max.to_string(),
                    weight.to_string(),
                ]
                .into_iter()
                .map(String::into_bytes)
                .collect();
                let defect = if o.defect_rate > 0.0 && rng.gen_bool(o.defect_rate.clamp(0.0, 1.0)) {
                    Some(grades_defect(&mut rng, &mut f, graded_ts.is_some()))
                } else {
                    None
                };
                let line = gf.row(&f)?;
                match defect {
                    Some((kind, expect)) => defects.push(Defect {
                        file: grades_name.clone(),
                        line,
                        kind: kind.into(),
                        expect,
                    }),
                    None if o.defect_rate > 0.0
                        && rng.gen_bool((o.defect_rate / 4.0).clamp(0.0, 1.0)) =>
                    {
                        let line = gf.row(&f)?;
                        defects.push(Defect {
                            file: grades_name.clone(),
                            line,
                            kind: "duplicate_record".into(),
                            expect: "duplicate".into(),
                        });
                    }
                    None => {}
                }
            }
        }
    }
    files.extend(gf.finish()?);
    files.extend(engagement(dir, o, &students, &courses, end)?);

    let dpath = dir.join("defects.jsonl");
    let mut df = std::fs::File::create(&dpath).map_err(|source| GenerateError {
        path: dpath.clone(),
        source,
    })?;
    for d in &defects {
        let line = serde_json::to_string(d).map_err(|e| GenerateError {
            path: dpath.clone(),
            source: e.into(),
        })?;
        writeln!(df, "{line}").map_err(|source| GenerateError {
            path: dpath.clone(),
            source,
        })?;
    }
    Ok(Generated {
        files,
        defects: defects.len(),
        corrections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_output_is_reproducible_and_defects_are_recorded() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let o = GenerateOptions {
            students: 40,
            days: 14,
            defect_rate: 0.05,
            ..Default::default()
        };
        let ga = generate(a.path(), &o).unwrap();
        generate(b.path(), &o).unwrap();
        let name = "attendance_2026-09-20.csv";
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap()
        );
        assert!(ga.defects > 0);
        let text = std::fs::read_to_string(a.path().join("defects.jsonl")).unwrap();
        assert_eq!(text.lines().count(), ga.defects);
    }

    #[test]
    fn clean_output_has_no_defects() {
        let a = tempfile::tempdir().unwrap();
        let g = generate(
            a.path(),
            &GenerateOptions {
                students: 20,
                days: 7,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(g.defects, 0);
        assert!(g.files.iter().all(|(_, n)| *n > 0));
    }
}
