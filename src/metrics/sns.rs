//! Alerts to the SNS topic `<bucket_prefix>-alerts` (created by bootstrap, SSE-KMS with the
//! project key).
//!
//! Invariants: messages carry pseudonyms only; subjects are cut to SNS's 100 ASCII characters;
//! the topic is looked up once per notifier.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use tokio::sync::OnceCell;

use super::{MetricsError, Notifier};
use crate::aws::{call, Aws};

/// Publishes alert changes to the project's alerts topic.
#[derive(Debug)]
pub struct SnsNotifier {
    aws: Aws,
    topic: OnceCell<String>,
}

impl SnsNotifier {
    /// A notifier for the project's topic (looked up on first use).
    pub fn new(aws: Aws) -> Self {
        Self {
            aws,
            topic: OnceCell::new(),
        }
    }
}

fn err(topic: &str, e: impl std::fmt::Display) -> MetricsError {
    MetricsError {
        path: format!("sns:{topic}"),
        source: std::io::Error::other(e.to_string()),
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn name(&self) -> &'static str {
        "sns"
    }

    async fn notify(&self, subject: &str, message: &serde_json::Value) -> Result<(), MetricsError> {
        let name = self.aws.alerts_topic();
        let arn = self
            .topic
            .get_or_try_init(|| async {
                self.aws
                    .alerts_topic_arn()
                    .await
                    .map_err(|e| err(&name, e))?
                    .ok_or_else(|| {
                        err(
                            &name,
                            "the alerts topic does not exist (run `medallion aws bootstrap`)",
                        )
                    })
            })
            .await?;
        let rule = message
            .get("rule_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        // SNS subjects are at most 100 ASCII characters.
        let subject: String = subject.chars().filter(char::is_ascii).take(100).collect();
        let mut publish = self
            .aws
            .sns
            .publish()
            .topic_arn(arn)
            .subject(subject)
            .message(message.to_string());
        if !rule.is_empty() {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(rule)
                .build()
                .map_err(|e| err(&name, e))?;
            publish = publish.message_attributes("rule_id", attr);
        }
        publish
            .send()
            .await
            .map_err(|e| err(&name, call("sns", "Publish")(e)))?;
        Ok(())
    }
}
