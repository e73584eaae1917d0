//! Casting raw text to the contract's types, with explicit formats and no guessing:
//! integers `[+-]digits`, doubles as Rust parses them (finite only), dates `YYYY-MM-DD`,
//! timestamps RFC 3339 (`Z` or an offset) stored in UTC, booleans `true`/`false`.
//! A value that does not parse becomes null; the `contract.<col>.type` rule then sees
//! "text present, typed value missing" and quarantines the row with the text as delivered.

use chrono::{DateTime, NaiveDate};
use polars::prelude::*;

use crate::contract::ColumnType;

fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.len() != 10 {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from((d - NaiveDate::default()).num_days()).ok()
}

fn parse_timestamp(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_micros())
}

fn parse_double(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The text column with every value equal to one of `tokens` (the contract's `nullValues`,
/// such as OULAD's `?`) made null: a declared "missing" is not a type error.
///
/// # Errors
/// When the column is not text.
pub fn null_tokens(s: &Series, tokens: &[String]) -> PolarsResult<Series> {
    if tokens.is_empty() {
        return Ok(s.clone());
    }
    let ca = s.str()?;
    let out: StringChunked = ca
        .iter()
        .map(|o| o.filter(|v| !tokens.iter().any(|t| t == v.trim())))
        .collect();
    Ok(out.into_series().with_name(s.name().clone()))
}

/// Casts a text column to `ty`, nulls where the text does not parse.
///
/// # Errors
/// When the column is not text.
pub fn cast_text(s: &Series, ty: ColumnType) -> PolarsResult<Series> {
    let ca = s.str()?;
    let name = s.name().clone();
    let out = match ty {
        ColumnType::String => s.clone(),
        ColumnType::Integer => {
            let v: Int64Chunked = ca
                .iter()
                .map(|o| o.and_then(|v| v.trim().parse::<i64>().ok()))
                .collect();
            v.into_series()
        }
        ColumnType::Double => {
            let v: Float64Chunked = ca.iter().map(|o| o.and_then(parse_double)).collect();
            v.into_series()
        }
        ColumnType::Boolean => {
            let v: BooleanChunked = ca.iter().map(|o| o.and_then(parse_bool)).collect();
            v.into_series()
        }
        ColumnType::Date => {
            let v: Int32Chunked = ca.iter().map(|o| o.and_then(parse_date)).collect();
            v.into_series().cast(&DataType::Date)?
        }
        ColumnType::Timestamp => {
            let v: Int64Chunked = ca.iter().map(|o| o.and_then(parse_timestamp)).collect();
            v.into_series().cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))?
        }
    };
    Ok(out.with_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(values: &[Option<&str>], ty: ColumnType) -> Series {
        cast_text(&Series::new("c".into(), values), ty).unwrap()
    }

    #[test]
    fn dates_are_strict() {
        let s = cast(
            &[
                Some("2026-11-02"),
                Some("2026-02-30"),
                Some("11/02/2026"),
                Some("2026-1-2"),
                None,
            ],
            ColumnType::Date,
        );
        assert_eq!(s.null_count(), 4);
        assert_eq!(s.dtype(), &DataType::Date);
    }

    #[test]
    fn timestamps_accept_z_and_offsets_in_utc() {
        let s = cast(
            &[
                Some("2026-11-02T10:00:00Z"),
                Some("2026-11-02T11:00:00+01:00"),
                Some("2026-11-02 10:00"),
            ],
            ColumnType::Timestamp,
        );
        let phys = s.to_physical_repr().into_owned();
        let v: Vec<Option<i64>> = phys.i64().unwrap().iter().collect();
        assert_eq!(v[0], v[1]);
        assert_eq!(v[2], None);
    }

    #[test]
    fn numbers_reject_words_and_infinities() {
        let s = cast(
            &[Some("42"), Some("forty"), Some("4.5")],
            ColumnType::Integer,
        );
        assert_eq!(s.null_count(), 2);
        let d = cast(
            &[Some("4.5"), Some("inf"), Some("NaN"), Some(" 7 ")],
            ColumnType::Double,
        );
        assert_eq!(d.null_count(), 2);
    }
}
