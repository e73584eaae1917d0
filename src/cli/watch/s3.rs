//! The S3 inbox: the landing bucket's `inbox/` prefix, read through its SQS queue of
//! object-created events (or a durable listing cursor), each object handled as it arrives.
//!
//! Invariants: an event is acknowledged only once its object is landed (or gone: a duplicate
//! event); a landed object is removed from the inbox, an unmatched one stays for someone to
//! rename; objects that arrived together are taken reference data first.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use super::arrival::{handle, report, Arrived, Outcome};
use super::control::Ctl;
use super::{catch_up, stopped};
use crate::cli::{Exit, UsageError, WatchArgs};
use crate::project::Project;
use crate::stage::Dataset;

/// Watches the landing bucket's `inbox/` prefix until stopped.
pub(super) async fn watch(
    p: &Project,
    a: &WatchArgs,
    datasets: &[Dataset],
    ctl: &Ctl,
    out: &mut dyn Write,
) -> Result<Exit> {
    use crate::aws::inbox::{S3Inbox, Source};
    let cfg = p
        .config
        .aws
        .clone()
        .ok_or_else(|| UsageError("backend: aws needs an `aws:` section".into()))?;
    let aws = crate::aws::Aws::new(&cfg).await;
    let mut inbox = S3Inbox::open(aws, a.poll, Duration::from_millis(a.poll_ms.max(50))).await?;
    let how = match inbox.source() {
        Source::Queue(url) => format!("SQS queue {url}"),
        Source::Poll => format!("polling every {} ms with a durable cursor", a.poll_ms),
    };
    writeln!(
        out,
        "Watching s3://{}/{} ({how}); SIGINT/SIGTERM stops after the current step.",
        inbox.bucket(),
        crate::aws::inbox::PREFIX
    )?;
    out.flush()?;
    let mut ok = catch_up(p, datasets, ctl, out).await?;
    loop {
        if ctl.stopped() {
            break;
        }
        let mut arrivals = tokio::select! {
            r = inbox.next() => r?,
            _ = ctl.sleep(Duration::from_secs(3600)) => Vec::new(),
        };
        // Reference data first among what arrived together (as the local watch does).
        crate::aws::inbox::order(&mut arrivals, |name| {
            datasets
                .iter()
                .position(|d| d.pipeline.matches(name))
                .unwrap_or(usize::MAX)
        });
        let empty = arrivals.is_empty();
        for arrival in arrivals {
            if ctl.stopped() {
                break;
            }
            let name = arrival.name().to_string();
            let bytes = match inbox.fetch(&arrival).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    // Gone (a duplicate event of an object already handled): nothing to do.
                    inbox.ack(&arrival).await?;
                    continue;
                }
                Err(e) => {
                    writeln!(out, "{name}: FAILED to read: {e} (retried)")?;
                    ok = false;
                    continue;
                }
            };
            let outcome = handle(
                p,
                datasets,
                &name,
                Arrived::Bytes(&bytes),
                ctl,
                inbox.ack(&arrival),
            )
            .await?;
            // Landed: the lake's copy is the one `forget` can rewrite. A name nothing matches
            // stays in the inbox for someone to rename.
            if !matches!(outcome, Outcome::Unmatched) {
                inbox.remove(&arrival).await?;
            }
            ok &= report(&name, &outcome, out)?;
        }
        if a.once && empty {
            break;
        }
    }
    stopped(a, ok, out)
}
