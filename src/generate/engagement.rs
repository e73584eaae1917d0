//! The generated engagement export (virtual-learning clicks per student, course and day) and
//! the assessment plan the grades follow.
//!
//! Invariants: seeded from the generator's seed (its own stream, so adding engagement changes
//! no other export); students at risk fade (fewer, shorter visits), so curated products have
//! a signal to find.

use std::path::Path;

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::out::{ts, Out};
use super::{Course, GenerateError, GenerateOptions, Student};

/// LMS activity types and their share of a student's clicks.
const ACTIVITY: &[(&str, f64)] = &[
    ("login", 0.15),
    ("resource", 0.45),
    ("forum", 0.1),
    ("quiz", 0.15),
    ("video", 0.15),
];

/// `engagement_<end>.csv`: daily LMS activity of the same students in the same courses, from
/// its own random stream (the other exports are unchanged by it). A student is active on a day
/// with a probability that follows their attendance, and a disengaging student (low diligence,
/// about one in five) fades out over the term, so the clicks fall before the grades do.
pub(super) fn engagement(
    dir: &Path,
    o: &GenerateOptions,
    students: &[Student],
    courses: &[Course],
    end: NaiveDate,
) -> Result<Option<(String, u64)>, GenerateError> {
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x656e_6761_6765);
    let name = format!("engagement_{end}.csv");
    let mut ef = Out::create(
        dir,
        &name,
        &[
            "record_id",
            "student_id",
            "course_id",
            "activity_date",
            "activity_type",
            "clicks",
            "minutes",
            "recorded_at",
        ],
    )?;
    let days = o.days.max(1);
    let mut rec = 0u64;
    for day in 0..days {
        let date = o.start + Duration::days(i64::from(day));
        let progress = f64::from(day) / f64::from(days);
        for s in students {
            let fading = s.diligence < 0.85;
            for &ci in &s.courses {
                let mut p = 0.25 + 0.5 * s.attend;
                if fading {
                    p *= (1.0 - progress).max(0.15);
                }
                if !rng.gen_bool(p.clamp(0.01, 0.99)) {
                    continue;
                }
                let total: f64 = rng.gen_range(3.0..40.0) * if fading { 0.6 } else { 1.0 };
                for (kind, share) in ACTIVITY {
                    if !rng.gen_bool(0.6) {
                        continue;
                    }
                    let clicks = (total * share * rng.gen_range(0.5..1.5)).round().max(1.0) as i64;
                    rec += 1;
                    // Time on task only for resources and videos, as many LMSs record it.
                    let minutes = matches!(*kind, "resource" | "video")
                        .then(|| (clicks * rng.gen_range(1..4)).min(1440).to_string())
                        .unwrap_or_default();
                    ef.row(&[
                        format!("E{}{rec:08}", o.start.format("%Y%m%d")),
                        s.id.clone(),
                        courses[ci].id.clone(),
                        date.to_string(),
                        (*kind).to_string(),
                        clicks.to_string(),
                        minutes,
                        ts(date, 20 * 60 + rng.gen_range(0..200), false),
                    ])?;
                }
            }
        }
    }
    ef.finish()
}

/// (type, due day offset, max score, weight) for a term of `days`.
pub(super) fn assessment_plan(days: u32) -> Vec<(&'static str, u32, f64, f64)> {
    let mut plan = Vec::new();
    let mut d = 6;
    let mut k = 0;
    while d < days {
        let kind = match k % 4 {
            0 | 2 => "quiz",
            1 => "assignment",
            _ => {
                if k % 8 == 7 {
                    "exam"
                } else {
                    "project"
                }
            }
        };
        let (max, weight) = match kind {
            "quiz" => (10.0, 0.05),
            "assignment" => (20.0, 0.1),
            "exam" => (100.0, 0.3),
            _ => (50.0, 0.2),
        };
        plan.push((kind, d, max, weight));
        d += 7;
        k += 1;
    }
    plan
}
