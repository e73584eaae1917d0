//! Running a dataset's promotion steps in order: landing → raw → trusted, then curated. The
//! pipeline YAML it runs by is [`crate::config::pipeline`], re-exported here.

mod run;

pub use crate::config::pipeline::*;
pub use run::{promote, promote_curated, promote_step, PromoteOptions, PromotionSummary};
