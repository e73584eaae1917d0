//! Trino (Athena engine v3) functions DataFusion lacks, registered on the local engine so a
//! named query written in Trino SQL runs on both engines.
//!
//! Each function here keeps Trino's name and argument order and delegates to the DataFusion
//! function that computes the same thing; forms of the Trino function that have no DataFusion
//! counterpart are refused at planning time rather than computed differently.
//!
//! - `approx_percentile(x, percentage)`: DataFusion's `approx_percentile_cont(x, percentage)`
//!   (both are t-digest estimates). Trino's weighted and array-of-percentages forms are not
//!   offered.

use deltalake::arrow::datatypes::{DataType, FieldRef};
use deltalake::datafusion::common::types::{logical_float64, NativeType};
use deltalake::datafusion::common::Result;
use deltalake::datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileCont;
use deltalake::datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use deltalake::datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, Signature, TypeSignatureClass,
    Volatility,
};
use deltalake::datafusion::prelude::SessionContext;

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(ApproxPercentile::new()));
}

/// Trino's `approx_percentile(x, percentage)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxPercentile {
    inner: ApproxPercentileCont,
    signature: Signature,
}

impl ApproxPercentile {
    fn new() -> Self {
        // The two-argument form of `approx_percentile_cont`: a number and a float percentage.
        let signature = Signature::coercible(
            vec![
                Coercion::new_implicit(
                    TypeSignatureClass::Float,
                    vec![TypeSignatureClass::Numeric],
                    NativeType::Float64,
                ),
                Coercion::new_implicit(
                    TypeSignatureClass::Native(logical_float64()),
                    vec![TypeSignatureClass::Numeric],
                    NativeType::Float64,
                ),
            ],
            Volatility::Immutable,
        );
        Self {
            inner: ApproxPercentileCont::new(),
            signature,
        }
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, Float64Array};

    use super::*;

    async fn one(ctx: &SessionContext, sql: &str) -> Result<f64> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let col = batches[0].column(0);
        let col = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("a float column");
        Ok(col.value(0))
    }

    #[tokio::test]
    async fn approx_percentile_matches_approx_percentile_cont() {
        let ctx = SessionContext::new();
        register(&ctx);
        let values = "(VALUES (1.0), (2.0), (3.0), (4.0), (50.0)) AS t(x)";
        let trino = one(
            &ctx,
            &format!("SELECT approx_percentile(x, 0.5) FROM {values}"),
        )
        .await
        .unwrap();
        let df = one(
            &ctx,
            &format!("SELECT approx_percentile_cont(x, 0.5) FROM {values}"),
        )
        .await
        .unwrap();
        assert_eq!(trino, df);
        assert_eq!(trino, 3.0);
        // Integers are coerced, as in Trino.
        let ints = one(
            &ctx,
            "SELECT approx_percentile(x, 0.5) FROM (VALUES (1), (2), (3)) AS t(x)",
        )
        .await
        .unwrap();
        assert_eq!(ints, 2.0);
        // Trino's weighted form is refused, not read as DataFusion's centroid count.
        assert!(one(
            &ctx,
            &format!("SELECT approx_percentile(x, 1, 0.5) FROM {values}")
        )
        .await
        .is_err());
    }
}
