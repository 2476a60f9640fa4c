//! The walk's targets on the command line and in Lambda: forwarding (the default), the fan-out
//! to a queue (`BACKFILL_QUEUE_URL`, `backfill --enqueue`) and the Batch Operations manifest
//! (`backfill --manifest FILE|s3://BUCKET/KEY`).

use std::io::BufWriter;
use std::sync::Arc;

use aws_config::SdkConfig;

use super::Live;
use crate::aws::SqsQueue;
use crate::backfill::{Backfill, BackfillError, Event, RunOptions, Summary};

/// What `backfill` does with the objects it walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Forward them, or enqueue them when `BACKFILL_QUEUE_URL` is set.
    Walk,
    /// Enqueue them to this queue.
    Enqueue(String),
    /// Write the manifest to this file or `s3://` location.
    Manifest(String),
}

/// With `BACKFILL_QUEUE_URL`, the walk (scheduled or `backfill`) fans out to that queue.
pub(super) fn queue_from_settings(base: &SdkConfig, live: &mut Live) {
    if let (Some(url), Some(walk)) = (&live.settings.backfill_queue_url, &mut live.backfill) {
        walk.queue = Some(Arc::new(SqsQueue::new(base, url)));
    }
}

/// Runs the walk for `target`. `Err` is a bad flag (exit 2); the walk's own outcome is inside.
pub(super) async fn run(
    live: &Live,
    walk: &Backfill,
    options: &RunOptions,
    target: Target,
    on_event: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Result<Summary, BackfillError>, String> {
    let forwarder = &live.handler.forwarder;
    match target {
        Target::Walk => Ok(walk.run(forwarder, options, on_event).await),
        Target::Enqueue(url) => {
            let url =
                crate::settings::queue::queue_url(&url).map_err(|e| format!("--enqueue: {e}"))?;
            let base = base_config().await;
            let walk = Backfill {
                queue: Some(Arc::new(SqsQueue::new(&base, &url))),
                ..walk.clone()
            };
            Ok(walk.run(forwarder, options, on_event).await)
        }
        Target::Manifest(dest) => {
            let s3 = parse_s3_location(&dest)?;
            let path = match &s3 {
                None => std::path::PathBuf::from(&dest),
                Some(_) => std::env::temp_dir().join(format!(
                    "redshift-audit-manifest-{}.csv",
                    std::process::id()
                )),
            };
            let file = std::fs::File::create(&path)
                .map_err(|e| format!("--manifest: cannot create {}: {e}", path.display()))?;
            let mut out = BufWriter::new(file);
            // The lines go to the manifest, not to stdout as a dry run's would.
            let mut events = |event: Event<'_>| {
                if !matches!(event, Event::WouldSend(_)) {
                    on_event(event)
                }
            };
            let written = walk
                .manifest(forwarder, options, &mut out, &mut events)
                .await;
            drop(out);
            let Some((bucket, key)) = s3 else {
                return Ok(written);
            };
            let uploaded = match written {
                Ok(summary) => {
                    let base = base_config().await;
                    crate::aws::upload::upload_file(&base, &bucket, &key, &path)
                        .await
                        .map(|()| summary)
                        .map_err(|(message, retryable)| BackfillError::Manifest {
                            message: format!("uploading to s3://{bucket}/{key}: {message}"),
                            retryable,
                        })
                }
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&path);
            Ok(uploaded)
        }
    }
}

/// `s3://BUCKET/KEY` to its parts; `None` for a local path.
fn parse_s3_location(dest: &str) -> Result<Option<(String, String)>, String> {
    let Some(rest) = dest.strip_prefix("s3://") else {
        return Ok(None);
    };
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') => {
            Ok(Some((bucket.to_string(), key.to_string())))
        }
        _ => Err(format!(
            "--manifest: {dest:?} is not s3://BUCKET/KEY (a key naming the manifest object)"
        )),
    }
}

async fn base_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_destinations_are_a_path_or_an_s3_object() {
        assert_eq!(parse_s3_location("out/manifest.csv").unwrap(), None);
        assert_eq!(
            parse_s3_location("s3://ops/manifests/m.csv").unwrap(),
            Some(("ops".into(), "manifests/m.csv".into()))
        );
        for bad in ["s3://ops", "s3://ops/", "s3:///k", "s3://ops/dir/"] {
            assert!(parse_s3_location(bad).is_err(), "{bad}");
        }
    }
}
