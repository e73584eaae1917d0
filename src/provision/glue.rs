//! The Glue databases the catalog registers tables in: one per stage, one for ops.
//!
//! Invariants: a database that exists is left as it is; tables are registered by the catalog
//! backend, not here.

use aws_sdk_glue::types::DatabaseInput;

use super::Check;
use crate::aws::{call, Aws, AwsError};

/// One Glue database per stage and one for the ops tables.
pub(super) async fn ensure_databases(
    aws: &Aws,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    for stage in ["raw", "trusted", "curated", "ops"] {
        let db = aws.database(stage);
        if aws.glue.get_database().name(&db).send().await.is_ok() {
            out.push(Check::Ok(format!("Glue database {db}")));
        } else if dry {
            out.push(Check::Planned(format!("Glue database {db}")));
        } else {
            let input = DatabaseInput::builder()
                .name(&db)
                .description(format!("medallion {stage} stage"))
                .build()
                .map_err(call("glue", "CreateDatabase"))?;
            aws.glue
                .create_database()
                .database_input(input)
                .send()
                .await
                .map_err(call("glue", "CreateDatabase"))?;
            out.push(Check::Changed(format!("Glue database {db}")));
        }
    }
    Ok(())
}
