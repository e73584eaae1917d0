//! Privacy you can prove: [`scan`] finds direct identifiers in clear anywhere in the lake.

pub mod scan;
