//! The SQS queue `medallion watch` reads, and the landing bucket's notifications feeding it.
//!
//! Invariants: the queue is encrypted (SSE-SQS); only `inbox/` object-created events are sent.

use serde_json::json;

use super::Check;
use crate::aws::{call, Aws, AwsError};

/// The SQS queue `medallion watch` reads (SSE-SQS encrypted; S3 can deliver to it) and the
/// landing bucket's object-created notifications for `inbox/` wired to it.
pub(super) async fn ensure_inbox_queue(
    aws: &Aws,
    dry: bool,
    out: &mut Vec<Check>,
) -> Result<(), AwsError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = aws.inbox_queue();
    if dry {
        out.push(Check::Planned(format!(
            "SQS queue {name} (encrypted) receiving the landing bucket's inbox/ object-created events"
        )));
        return Ok(());
    }
    let bucket = aws.bucket("landing");
    let existed = aws
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .is_ok();
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(call("sqs", "CreateQueue"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let qarn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(call("sqs", "GetQueueAttributes"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LandingBucketInboxEvents",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": qarn,
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}}
        }]
    });
    aws.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(call("sqs", "SetQueueAttributes"))?;
    out.push(if existed {
        Check::Ok(format!("SQS queue {name}"))
    } else {
        Check::Changed(format!("SQS queue {name}"))
    });
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(crate::aws::inbox::PREFIX)
                        .build(),
                )
                .build(),
        )
        .build();
    let queue = QueueConfiguration::builder()
        .id("medallion-inbox")
        .queue_arn(&qarn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .map_err(call("s3", "PutBucketNotificationConfiguration"))?;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .map_err(call("s3", "PutBucketNotificationConfiguration"))?;
    out.push(Check::Ok(format!(
        "bucket {bucket}: inbox/ object-created events go to {name}"
    )));
    Ok(())
}
