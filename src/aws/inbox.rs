//! The S3 inbox `medallion watch` reads on the AWS backend: objects put under the landing
//! bucket's `inbox/` prefix. Bootstrap wires the bucket's object-created notifications to the
//! SQS queue `<bucket_prefix>-inbox`; without the queue (or with `--poll`) the prefix is listed
//! and a durable cursor (`s3://<prefix>-ops/_watch/cursor.json`: newest handled object's
//! last-modified time and key) says what was handled.
//!
//! Delivery is at least once either way (a message is deleted, the cursor advanced, only after
//! the file is landed); landing is content-addressed, so a re-delivery promotes nothing twice.

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::{Deserialize, Serialize};

use super::{call, Aws, AwsError};

/// The key prefix of the inbox in the landing bucket.
pub const PREFIX: &str = "inbox/";
const CURSOR: &str = "_watch/cursor.json";

/// Where arrivals come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The SQS queue's URL.
    Queue(String),
    /// Listing with a durable cursor.
    Poll,
}

/// One object to handle.
#[derive(Debug, Clone)]
pub struct Arrival {
    key: String,
    /// The message to delete once handled (the last record of a message carries it).
    receipt: Option<String>,
    /// The receipt of the message the record came in (every record of it).
    message: Option<String>,
    /// The object's place in the poll order.
    position: Option<(i64, String)>,
}

impl Arrival {
    /// The file name (the key without its folders).
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    last_modified_ms: i64,
    key: String,
}

/// Puts the arrivals of one receive in the order to take them: by `rank` (reference data
/// first, as `promote --all` and the local watch do; a queue does not keep upload order), then
/// as they came. A message's receipt moves to the last of its records in the new order, so the
/// message is deleted only once all of them are landed. Listed arrivals keep the listing's
/// order: the poll cursor must only move forward.
pub fn order(arrivals: &mut [Arrival], rank: impl Fn(&str) -> usize) {
    if arrivals.iter().any(|a| a.position.is_some()) {
        return;
    }
    let mut receipts: Vec<String> = Vec::new();
    for a in arrivals.iter_mut() {
        if let Some(r) = a.receipt.take() {
            receipts.push(r);
        }
    }
    arrivals.sort_by_key(|a| rank(a.name()));
    for r in receipts {
        let last = arrivals
            .iter()
            .rposition(|a| a.message.as_deref() == Some(r.as_str()));
        if let Some(i) = last {
            arrivals[i].receipt = Some(r);
        }
    }
}

/// The inbox of one project.
#[derive(Debug)]
pub struct S3Inbox {
    aws: Aws,
    source: Source,
    poll: Duration,
    key_arn: String,
    cursor: Mutex<Cursor>,
}

/// An S3 event notification body (only what is read).
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    key: String,
}

/// Event keys are URL-encoded with `+` for spaces.
fn decode_key(key: &str) -> String {
    url::form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map_or_else(|| key.to_string(), |(_, v)| v.into_owned())
}

impl S3Inbox {
    /// The queue when bootstrap created it (and `poll` is off), else polling.
    ///
    /// # Errors
    /// AWS errors reading the key or the cursor.
    pub async fn open(aws: Aws, poll: bool, interval: Duration) -> Result<Self, AwsError> {
        let key_arn = aws.key_arn().await?;
        let source = if poll {
            Source::Poll
        } else {
            match aws
                .sqs
                .get_queue_url()
                .queue_name(aws.inbox_queue())
                .send()
                .await
            {
                Ok(o) => o
                    .queue_url()
                    .map_or(Source::Poll, |u| Source::Queue(u.to_string())),
                Err(_) => Source::Poll,
            }
        };
        let inbox = Self {
            aws,
            source,
            poll: interval,
            key_arn,
            cursor: Mutex::new(Cursor::default()),
        };
        if matches!(inbox.source, Source::Poll) {
            let c = inbox.read_cursor().await?;
            if let Ok(mut g) = inbox.cursor.lock() {
                *g = c;
            }
        }
        Ok(inbox)
    }

    /// Where arrivals come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The landing bucket.
    pub fn bucket(&self) -> String {
        self.aws.bucket("landing")
    }

    async fn read_cursor(&self) -> Result<Cursor, AwsError> {
        match self
            .aws
            .s3
            .get_object()
            .bucket(self.aws.bucket("ops"))
            .key(CURSOR)
            .send()
            .await
        {
            Ok(o) => {
                let bytes = o
                    .body
                    .collect()
                    .await
                    .map_err(call("s3", "GetObject"))?
                    .into_bytes();
                Ok(serde_json::from_slice(&bytes).unwrap_or_default())
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                Ok(Cursor::default())
            }
            Err(e) => Err(call("s3", "GetObject")(e)),
        }
    }

    /// The next arrivals (possibly none after a wait), in arrival order. Cancel-safe: a
    /// message received and dropped becomes visible again after its visibility timeout.
    ///
    /// # Errors
    /// AWS errors.
    pub async fn next(&mut self) -> Result<Vec<Arrival>, AwsError> {
        match &self.source {
            Source::Queue(url) => {
                let out = self
                    .aws
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .map_err(call("sqs", "ReceiveMessage"))?;
                let mut arrivals = Vec::new();
                for m in out.messages() {
                    let receipt = m.receipt_handle().map(str::to_string);
                    let keys: Vec<String> = m
                        .body()
                        .and_then(|b| serde_json::from_str::<Event>(b).ok())
                        .map(|e| {
                            e.records
                                .into_iter()
                                .map(|r| decode_key(&r.s3.object.key))
                                .collect()
                        })
                        .unwrap_or_default();
                    let keys: Vec<String> = keys
                        .into_iter()
                        .filter(|k| k.starts_with(PREFIX) && !k.ends_with('/'))
                        .collect();
                    if keys.is_empty() {
                        // A test event or something else: nothing to land.
                        if let Some(r) = &receipt {
                            self.delete_message(url, r).await?;
                        }
                        continue;
                    }
                    let n = keys.len();
                    for (i, key) in keys.into_iter().enumerate() {
                        arrivals.push(Arrival {
                            key,
                            receipt: if i + 1 == n { receipt.clone() } else { None },
                            message: receipt.clone(),
                            position: None,
                        });
                    }
                }
                if arrivals.is_empty() && out.messages().is_empty() {
                    // moto answers at once; do not spin.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(arrivals)
            }
            Source::Poll => {
                let cursor = self.cursor.lock().map(|c| c.clone()).unwrap_or_default();
                let mut found = Vec::new();
                let mut pages = self
                    .aws
                    .s3
                    .list_objects_v2()
                    .bucket(self.bucket())
                    .prefix(PREFIX)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(call("s3", "ListObjectsV2"))?;
                    for o in page.contents() {
                        let (Some(key), Some(lm)) = (o.key(), o.last_modified()) else {
                            continue;
                        };
                        let pos = Cursor {
                            last_modified_ms: lm.to_millis().unwrap_or(0),
                            key: key.to_string(),
                        };
                        if pos > cursor && !key.ends_with('/') {
                            found.push(pos);
                        }
                    }
                }
                found.sort();
                if found.is_empty() {
                    tokio::time::sleep(self.poll).await;
                }
                Ok(found
                    .into_iter()
                    .map(|c| Arrival {
                        position: Some((c.last_modified_ms, c.key.clone())),
                        key: c.key,
                        receipt: None,
                        message: None,
                    })
                    .collect())
            }
        }
    }

    async fn delete_message(&self, url: &str, receipt: &str) -> Result<(), AwsError> {
        self.aws
            .sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(call("sqs", "DeleteMessage"))?;
        Ok(())
    }

    /// The object's bytes, or `None` when it is gone.
    ///
    /// # Errors
    /// AWS errors.
    pub async fn fetch(&self, a: &Arrival) -> Result<Option<Vec<u8>>, AwsError> {
        match self
            .aws
            .s3
            .get_object()
            .bucket(self.bucket())
            .key(&a.key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(
                o.body
                    .collect()
                    .await
                    .map_err(call("s3", "GetObject"))?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(call("s3", "GetObject")(e)),
        }
    }

    /// Removes a landed arrival from the inbox, every version of it (the bucket is versioned):
    /// the lake holds its content-addressed copy, which `medallion forget` can rewrite; a copy
    /// left under `inbox/` would keep an erased student's lines until landing expiry.
    ///
    /// # Errors
    /// AWS errors.
    pub async fn remove(&self, a: &Arrival) -> Result<(), AwsError> {
        let bucket = self.bucket();
        let listed = self
            .aws
            .s3
            .list_object_versions()
            .bucket(&bucket)
            .prefix(&a.key)
            .send()
            .await
            .map_err(call("s3", "ListObjectVersions"))?;
        let versions = listed
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                listed
                    .delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter(|(k, _)| *k == Some(a.key.as_str()));
        for (_, version) in versions {
            self.aws
                .s3
                .delete_object()
                .bucket(&bucket)
                .key(&a.key)
                .set_version_id(version.map(str::to_string))
                .send()
                .await
                .map_err(call("s3", "DeleteObject"))?;
        }
        Ok(())
    }

    /// Marks an arrival handled: deletes its message, or advances and stores the cursor.
    ///
    /// # Errors
    /// AWS errors.
    pub async fn ack(&self, a: &Arrival) -> anyhow::Result<()> {
        match (&self.source, &a.receipt, &a.position) {
            (Source::Queue(url), Some(r), _) => self.delete_message(url, r).await?,
            (Source::Poll, _, Some((ms, key))) => {
                let c = Cursor {
                    last_modified_ms: *ms,
                    key: key.clone(),
                };
                let body = serde_json::to_vec(&c)?;
                self.aws
                    .s3
                    .put_object()
                    .bucket(self.aws.bucket("ops"))
                    .key(CURSOR)
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(&self.key_arn)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(call("s3", "PutObject"))?;
                if let Ok(mut g) = self.cursor.lock() {
                    *g = c;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(key: &str, message: &str, last: bool) -> Arrival {
        Arrival {
            key: key.to_string(),
            receipt: last.then(|| message.to_string()),
            message: Some(message.to_string()),
            position: None,
        }
    }

    #[test]
    fn reference_data_first_and_a_message_is_deleted_after_all_its_records() {
        let mut a = vec![
            arrival("inbox/attendance_1.csv", "m1", false),
            arrival("inbox/students.csv", "m1", true),
            arrival("inbox/courses.csv", "m2", true),
        ];
        let rank = |n: &str| usize::from(n.starts_with("attendance"));
        order(&mut a, rank);
        let keys: Vec<(&str, Option<&str>)> =
            a.iter().map(|a| (a.name(), a.receipt.as_deref())).collect();
        assert_eq!(
            keys,
            [
                ("students.csv", None),
                ("courses.csv", Some("m2")),
                ("attendance_1.csv", Some("m1")),
            ]
        );
    }
}
