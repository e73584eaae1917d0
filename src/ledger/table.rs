//! The column and array builders the ledger's tables share.
//!
//! Invariants: every ops column is non-null unless built with [`float`]`(_, true)`; instants are
//! microseconds in UTC.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray, UInt64Array};
use deltalake::arrow::datatypes::{DataType, Field, TimeUnit};

/// A text column.
pub(super) fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

/// A count column.
pub(super) fn count(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}

/// A float column.
pub(super) fn float(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}

/// An instant column (microseconds, UTC).
pub(super) fn instant(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

/// Text values.
pub(super) fn strs(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

/// Count values.
pub(super) fn u64s(v: Vec<u64>) -> ArrayRef {
    Arc::new(UInt64Array::from(v))
}

/// Instant values (microseconds, UTC).
pub(super) fn instants(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}
