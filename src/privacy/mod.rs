//! Privacy you can prove: [`scan`] finds direct identifiers in clear anywhere in the lake;
//! [`forget`] erases one student from every stage, history included.

pub mod forget;
pub mod scan;
