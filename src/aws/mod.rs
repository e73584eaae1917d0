//! What the AWS backends share: the clients of one project (with request counting for the
//! cost metrics), the names of its buckets, databases, topic and queue, its key, and the error
//! type of an AWS call; plus the S3 inbox `medallion watch` reads ([`inbox`]). The backends themselves
//! sit with their traits, by capability: [`crate::storage::S3TableStore`],
//! [`crate::catalog::GlueCatalog`], [`crate::crypto::KmsKeyProvider`],
//! [`crate::metrics::CloudWatchSink`] and [`crate::metrics::SnsNotifier`], and Athena with the
//! query engine ([`crate::query::athena`]); creating and verifying the resources is
//! [`crate::provision`]'s.
//!
//! Invariants: every object medallion writes carries SSE-KMS with the configured customer key
//! (landing puts set it explicitly; delta-rs gets it through its storage options, for data
//! files and `_delta_log` alike); Delta commits on S3 use conditional PUT (delta-rs's safe
//! protocol), never unsafe rename; the pseudonymisation key exists in clear only in memory.

pub mod inbox;

use std::collections::HashMap;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};

use crate::config::AwsConfig;

/// Errors talking to AWS.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A call failed.
    #[error("{service} {operation}: {message}")]
    Call {
        /// Service (`s3`, `kms`, ...).
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// The SDK's message.
        message: String,
    },
    /// The set-up is missing something bootstrap creates.
    #[error("{0} (run `medallion aws bootstrap`)")]
    NotBootstrapped(String),
}

/// Wraps an SDK error with where it happened.
pub fn call<E: std::fmt::Debug + std::fmt::Display>(
    service: &'static str,
    operation: &'static str,
) -> impl Fn(E) -> AwsError {
    move |e| {
        let message = match format!("{e:?}") {
            d if d.contains("message: Some(") => d
                .split("message: Some(\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map_or_else(|| e.to_string(), str::to_string),
            _ => e.to_string(),
        };
        AwsError::Call {
            service,
            operation,
            message,
        }
    }
}

/// The AWS clients and settings of one project.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Settings from medallion.yaml.
    pub cfg: AwsConfig,
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// KMS.
    pub kms: aws_sdk_kms::Client,
    /// Glue.
    pub glue: aws_sdk_glue::Client,
    /// CloudWatch.
    pub cw: aws_sdk_cloudwatch::Client,
    /// Athena.
    pub athena: aws_sdk_athena::Client,
    /// SNS (the alerts topic).
    pub sns: aws_sdk_sns::Client,
    /// SQS (the inbox queue `medallion watch` reads).
    pub sqs: aws_sdk_sqs::Client,
    /// AWS Batch (the workers' job definition).
    pub batch: aws_sdk_batch::Client,
    /// Step Functions (the workers' state machine).
    pub sfn: aws_sdk_sfn::Client,
}

/// The lake's buckets, by purpose.
pub const BUCKETS: &[&str] = &["landing", "raw", "trusted", "curated", "ops"];

impl Aws {
    /// Builds the clients (credentials from the usual AWS chain: env, profile, role).
    pub async fn new(cfg: &AwsConfig) -> Self {
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(cfg.region.clone()));
        if let Some(ep) = &endpoint {
            // An emulator answers unimplemented calls with HTTP 500: fail fast, do not retry.
            loader = loader
                .endpoint_url(ep)
                .retry_config(RetryConfig::standard().with_max_attempts(1));
        }
        let sdk = loader.load().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(endpoint.is_some())
                .interceptor(CountRequests(Service::S3))
                .build(),
        );
        Self {
            cfg: AwsConfig {
                endpoint,
                ..cfg.clone()
            },
            s3,
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&sdk)
                    .interceptor(CountRequests(Service::Kms))
                    .build(),
            ),
            glue: aws_sdk_glue::Client::from_conf(
                aws_sdk_glue::config::Builder::from(&sdk)
                    .interceptor(CountRequests(Service::Glue))
                    .build(),
            ),
            cw: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&sdk)
                    .interceptor(CountRequests(Service::CloudWatch))
                    .build(),
            ),
            athena: aws_sdk_athena::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            batch: aws_sdk_batch::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
        }
    }

    /// Bucket name for a purpose (`landing`, `raw`, ...).
    pub fn bucket(&self, purpose: &str) -> String {
        format!("{}-{purpose}", self.cfg.bucket_prefix)
    }

    /// The SNS topic alerts are published to.
    pub fn alerts_topic(&self) -> String {
        format!("{}-alerts", self.cfg.bucket_prefix)
    }

    /// The SQS queue the landing bucket's `inbox/` notifications go to.
    pub fn inbox_queue(&self) -> String {
        format!("{}-inbox", self.cfg.bucket_prefix)
    }

    /// ARN of the alerts topic, if bootstrap created it.
    ///
    /// # Errors
    /// SNS errors.
    pub async fn alerts_topic_arn(&self) -> Result<Option<String>, AwsError> {
        let suffix = format!(":{}", self.alerts_topic());
        let mut pages = self.sns.list_topics().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(call("sns", "ListTopics"))?;
            if let Some(arn) = page
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .find(|a| a.ends_with(&suffix))
            {
                return Ok(Some(arn.to_string()));
            }
        }
        Ok(None)
    }

    /// Glue database for a stage.
    pub fn database(&self, stage: &str) -> String {
        format!("{}_{stage}", self.cfg.glue_database_prefix)
    }

    /// ARN of the customer-managed key behind the alias.
    ///
    /// # Errors
    /// [`AwsError::NotBootstrapped`] when the alias does not exist.
    pub async fn key_arn(&self) -> Result<String, AwsError> {
        let out = self
            .kms
            .describe_key()
            .key_id(&self.cfg.kms_key_alias)
            .send()
            .await
            .map_err(|e| {
                AwsError::NotBootstrapped(format!(
                    "KMS key {}: {}",
                    self.cfg.kms_key_alias,
                    call::<_>("kms", "DescribeKey")(e)
                ))
            })?;
        out.key_metadata()
            .and_then(|m| m.arn())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsError::NotBootstrapped(format!("KMS key {} has no ARN", self.cfg.kms_key_alias))
            })
    }

    /// delta-rs storage options: endpoint, region, credentials and SSE-KMS with the key.
    pub fn storage_options(&self, key_arn: &str) -> HashMap<String, String> {
        let mut o = HashMap::new();
        o.insert("AWS_REGION".into(), self.cfg.region.clone());
        o.insert("AWS_SERVER_SIDE_ENCRYPTION".into(), "aws:kms".into());
        o.insert("AWS_SSE_KMS_KEY_ID".into(), key_arn.to_string());
        if let Some(ep) = &self.cfg.endpoint {
            o.insert("AWS_ENDPOINT_URL".into(), ep.clone());
            o.insert(
                "AWS_ALLOW_HTTP".into(),
                ep.starts_with("http://").to_string(),
            );
            o.insert("AWS_VIRTUAL_HOSTED_STYLE_REQUEST".into(), "false".into());
        }
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            if let Ok(v) = std::env::var(k) {
                o.insert(k.into(), v);
            }
        }
        o
    }
}

/// What every AWS backend of a project is built from: the clients and the ARN of the
/// project's customer-managed key (everything medallion writes is encrypted with it).
#[derive(Debug, Clone)]
pub struct AwsContext {
    /// The clients.
    pub aws: Aws,
    /// ARN of the key behind the configured alias.
    pub key_arn: String,
}

impl AwsContext {
    /// Builds the clients and looks the key up.
    ///
    /// # Errors
    /// [`AwsError::NotBootstrapped`] when the key alias does not exist.
    pub async fn connect(cfg: &AwsConfig) -> Result<Self, AwsError> {
        let aws = Aws::new(cfg).await;
        let key_arn = aws.key_arn().await?;
        Ok(Self { aws, key_arn })
    }
}

#[derive(Debug, Clone, Copy)]
enum Service {
    S3,
    Kms,
    Glue,
    CloudWatch,
}

/// Counts every request (every attempt: retries are billed too) a client sends, for the cost
/// metrics ([`crate::metrics::io`]).
#[derive(Debug)]
struct CountRequests(Service);

impl aws_sdk_s3::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "medallion::CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        use crate::metrics::io::{add, Counter};
        let request = context.request();
        match self.0 {
            Service::S3 => {
                let method = request.method();
                // LIST is a GET but billed with PUTs.
                let write =
                    method != "GET" && method != "HEAD" || request.uri().contains("list-type=");
                add(
                    if write {
                        Counter::S3Write
                    } else {
                        Counter::S3Read
                    },
                    1,
                );
                if method == "PUT" || method == "POST" {
                    add(
                        Counter::BytesWritten,
                        request.body().content_length().unwrap_or(0),
                    );
                }
            }
            Service::Kms => add(Counter::Kms, 1),
            Service::Glue => add(Counter::Glue, 1),
            Service::CloudWatch => add(Counter::CloudWatch, 1),
        }
        Ok(())
    }
}
