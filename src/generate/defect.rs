//! The defects injected into generated attendance and grades lines: each one breaks a line in
//! one known way and names what medallion must do with it (`reject:<kind>`,
//! `quarantine:<rule id>`).
//!
//! Invariants: a defect changes only the fields it names; which defect is drawn depends only
//! on the generator's seeded random source, so a seed reproduces the same defects.

use rand::rngs::StdRng;
use rand::Rng;

pub(super) fn attendance_defect(rng: &mut StdRng, f: &mut Vec<Vec<u8>>) -> (&'static str, String) {
    let q = |r: &str| format!("quarantine:{r}");
    match rng.gen_range(0..11) {
        0 => {
            f[1].clear();
            ("missing_student_id", q("contract.student_id.required"))
        }
        1 => {
            f[0].clear();
            ("missing_record_id", q("contract.record_id.required"))
        }
        2 => {
            let d = String::from_utf8_lossy(&f[6]).to_string();
            f[6] = format!("{}/{}/{}", &d[5..7], &d[8..10], &d[0..4]).into_bytes();
            ("us_date_format", q("contract.session_date.type"))
        }
        3 => {
            let d = String::from_utf8_lossy(&f[6]).to_string();
            f[6] = format!("{}-02-30", &d[0..4]).into_bytes();
            ("impossible_date", q("contract.session_date.type"))
        }
        4 => {
            f[7] = b"tardy".to_vec();
            ("status_outside_set", q("contract.status.allowed_values"))
        }
        5 => {
            f[8] = if rng.gen_bool(0.5) {
                b"300".to_vec()
            } else {
                b"-5".to_vec()
            };
            ("minutes_out_of_range", q("contract.minutes_attended.range"))
        }
        6 => {
            f[8] = b"forty".to_vec();
            ("non_numeric_minutes", q("contract.minutes_attended.type"))
        }
        7 => {
            f.push(b"stray".to_vec());
            ("ragged_line", "reject:ragged_line".into())
        }
        8 => {
            // The name exported as Latin-1 instead of UTF-8.
            f[2] = b"Ren\xe9e Dupr\xe9".to_vec();
            ("latin1_bytes", "reject:invalid_utf8".into())
        }
        9 => {
            f[1] = b"<S12>".to_vec();
            ("malformed_student_id", q("contract.student_id.pattern"))
        }
        _ => {
            f[10] = b"yesterday".to_vec();
            ("bad_timestamp", q("contract.recorded_at.type"))
        }
    }
}

pub(super) fn grades_defect(
    rng: &mut StdRng,
    f: &mut Vec<Vec<u8>>,
    graded: bool,
) -> (&'static str, String) {
    let q = |r: &str| format!("quarantine:{r}");
    let pick = if graded {
        rng.gen_range(0..8)
    } else {
        rng.gen_range(3..8)
    };
    match pick {
        0 => {
            let max: f64 = String::from_utf8_lossy(&f[9]).parse().unwrap_or(10.0);
            f[8] = (max + 5.0).to_string().into_bytes();
            ("score_above_max", q("grades.score_within_max"))
        }
        1 => {
            f[8] = b"-3".to_vec();
            ("negative_score", q("contract.score.range"))
        }
        2 => {
            f[8] = b"A+".to_vec();
            ("non_numeric_score", q("contract.score.type"))
        }
        3 => {
            f[4] = b"essay".to_vec();
            (
                "type_outside_set",
                q("contract.assessment_type.allowed_values"),
            )
        }
        4 => {
            f[0].clear();
            ("missing_record_id", q("contract.record_id.required"))
        }
        5 => {
            f.pop();
            ("ragged_line", "reject:ragged_line".into())
        }
        6 => {
            f[3] = b"\xff\xfeQUIZ".to_vec();
            ("invalid_bytes", "reject:invalid_utf8".into())
        }
        _ => {
            f[10] = b"1.5".to_vec();
            ("weight_out_of_range", q("contract.weight.range"))
        }
    }
}
