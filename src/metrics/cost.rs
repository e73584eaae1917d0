//! What a step cost: the requests and bytes it was measured to use ([`IoSnapshot`]), priced
//! with `catalog/prices.yaml`. Prices are data, never constants in the code.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::io::IoSnapshot;
use super::{Metric, Unit};
use crate::yaml::{self, YamlError};

/// S3 request and storage prices.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Prices {
    /// USD per 1,000 PUT, COPY, POST or LIST requests.
    pub write_requests_per_1000: f64,
    /// USD per 1,000 GET or HEAD requests.
    pub read_requests_per_1000: f64,
    /// USD per GB-month stored (the step is charged one month of what it wrote).
    pub storage_gb_month: f64,
}

/// KMS prices and how many KMS requests S3 makes per object request under SSE-KMS.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KmsPrices {
    /// USD per 10,000 requests.
    pub requests_per_10000: f64,
    /// KMS requests S3 makes per object request (about 1 without S3 bucket keys, far fewer
    /// with them).
    pub sse_requests_per_object_request: f64,
}

/// Glue Data Catalog prices.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GluePrices {
    /// USD per million requests.
    pub requests_per_million: f64,
}

/// CloudWatch prices.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchPrices {
    /// USD per 1,000 API requests (PutMetricData).
    pub requests_per_1000: f64,
}

/// Athena prices.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AthenaPrices {
    /// USD per TB scanned.
    pub per_tb_scanned: f64,
    /// Bytes billed at least, per query.
    pub minimum_bytes_per_query: u64,
}

/// `catalog/prices.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Region and date the prices were read, for the reader.
    pub source: String,
    /// S3.
    pub s3: S3Prices,
    /// KMS.
    pub kms: KmsPrices,
    /// Glue.
    pub glue: GluePrices,
    /// CloudWatch.
    pub cloudwatch: CloudWatchPrices,
    /// Athena.
    pub athena: AthenaPrices,
}

/// A step's measured usage and its price.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct StepCost {
    /// Measured requests and bytes.
    pub io: IoSnapshot,
    /// KMS requests: medallion's own plus those S3 makes for SSE-KMS objects.
    pub kms_requests: f64,
    /// Estimated USD.
    pub usd: f64,
}

impl Prices {
    /// Loads the price table.
    ///
    /// # Errors
    /// YAML errors with file:line:column.
    pub fn load(path: &Path) -> Result<Self, YamlError> {
        yaml::load(path)
    }

    /// The price of an Athena query that scanned `bytes`.
    pub fn athena_query(&self, bytes: u64) -> f64 {
        bytes.max(self.athena.minimum_bytes_per_query) as f64 / 1e12 * self.athena.per_tb_scanned
    }

    /// Prices `io`.
    pub fn cost(&self, io: IoSnapshot) -> StepCost {
        let kms_requests = io.kms_requests as f64
            + io.s3_requests() as f64 * self.kms.sse_requests_per_object_request;
        let usd = io.s3_write_requests as f64 / 1000.0 * self.s3.write_requests_per_1000
            + io.s3_read_requests as f64 / 1000.0 * self.s3.read_requests_per_1000
            + io.bytes_written as f64 / 1e9 * self.s3.storage_gb_month
            + kms_requests / 10_000.0 * self.kms.requests_per_10000
            + io.glue_requests as f64 / 1e6 * self.glue.requests_per_million
            + io.cloudwatch_requests as f64 / 1000.0 * self.cloudwatch.requests_per_1000;
        StepCost {
            io,
            kms_requests,
            usd,
        }
    }
}

impl StepCost {
    /// BytesWritten, S3Requests, KmsRequests and EstimatedCostUSD for one dataset and stage,
    /// plus EstimatedCostUSD without dimensions (the project's total, for a budget alarm).
    pub fn metrics(&self, dataset: &str, stage: &str) -> Vec<Metric> {
        vec![
            Metric::new(
                "BytesWritten",
                self.io.bytes_written as f64,
                Unit::Bytes,
                dataset,
                stage,
            ),
            Metric::new(
                "S3Requests",
                self.io.s3_requests() as f64,
                Unit::Count,
                dataset,
                stage,
            ),
            Metric::new(
                "KmsRequests",
                self.kms_requests,
                Unit::Count,
                dataset,
                stage,
            ),
            Metric::new("EstimatedCostUSD", self.usd, Unit::None, dataset, stage),
            Metric {
                name: "EstimatedCostUSD",
                value: self.usd,
                unit: Unit::None,
                dimensions: Vec::new(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Prices {
        yaml::parse(
            Path::new("prices.yaml"),
            include_str!("../../catalog/prices.yaml"),
        )
        .expect("shipped price table")
    }

    #[test]
    fn cost_adds_up_every_priced_item() {
        let p = Prices {
            source: "test".into(),
            s3: S3Prices {
                write_requests_per_1000: 5.0,
                read_requests_per_1000: 0.4,
                storage_gb_month: 23.0,
            },
            kms: KmsPrices {
                requests_per_10000: 3.0,
                sse_requests_per_object_request: 0.5,
            },
            glue: GluePrices {
                requests_per_million: 1.0,
            },
            cloudwatch: CloudWatchPrices {
                requests_per_1000: 10.0,
            },
            athena: AthenaPrices {
                per_tb_scanned: 5.0,
                minimum_bytes_per_query: 10_000_000,
            },
        };
        let io = IoSnapshot {
            s3_write_requests: 1000,
            s3_read_requests: 1000,
            bytes_written: 1_000_000_000,
            bytes_read: 5,
            kms_requests: 0,
            glue_requests: 1_000_000,
            cloudwatch_requests: 100,
        };
        let c = p.cost(io);
        // 5 + 0.4 + 23 + (1000 KMS = 2000 objects × 0.5) 0.3 + 1 + 1
        assert!((c.usd - 30.7).abs() < 1e-9, "{}", c.usd);
        assert_eq!(c.kms_requests, 1000.0);
        let m = c.metrics("grades", "trusted");
        assert_eq!(m.len(), 5);
        assert!(m
            .iter()
            .any(|m| m.name == "EstimatedCostUSD" && m.dimensions.is_empty()));
        // Athena bills 10 MB at least.
        assert!((p.athena_query(1) - 5e-5).abs() < 1e-12);
        assert!((p.athena_query(2_000_000_000_000) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_shipped_price_table_loads() {
        let p = shipped();
        assert!(p.s3.write_requests_per_1000 > p.s3.read_requests_per_1000);
    }
}
