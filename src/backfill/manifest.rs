//! `backfill --manifest`: the S3 Batch Operations CSV manifest (`bucket,URL-encoded key`, one
//! object a line) of every audit object the walk would send: under the prefix, from `--since`
//! (else the cursor, as a dry run) up to now, not done per the ledger and not set aside.
//! Nothing is forwarded and no state is written: it is a dry run whose objects become lines.

use super::{Backfill, BackfillError, Event, Halt, Run, RunOptions, Summary};
use crate::forward::Forwarder;
use crate::key::encode_event_key;
use crate::ports::{Fetch, Listed};
use crate::sink::Sink;

impl Backfill {
    /// Writes the manifest to `out`; the summary counts its lines in `would_send`.
    pub async fn manifest<F, M, S>(
        &self,
        forwarder: &Forwarder<F, M>,
        options: &RunOptions,
        out: &mut (dyn std::io::Write + Send),
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<Summary, BackfillError>
    where
        F: Fetch,
        M: Fn() -> S + Send + Sync,
        S: Sink,
    {
        let options = RunOptions {
            dry_run: true,
            ..options.clone()
        };
        let summary = self
            .run_writing(forwarder, &options, Some(&mut *out), on_event)
            .await?;
        out.flush().map_err(|e| BackfillError::Manifest {
            message: e.to_string(),
            retryable: false,
        })?;
        Ok(summary)
    }

    /// One manifest line for an object a dry run would send, when the run writes one.
    pub(super) fn write_manifest_line(
        &self,
        run: &mut Run<'_>,
        object: &Listed,
    ) -> Result<(), Halt> {
        let Some(out) = run.manifest.as_mut() else {
            return Ok(());
        };
        writeln!(out, "{},{}", self.bucket, encode_event_key(&object.key)).map_err(|e| {
            Halt::Error(BackfillError::Manifest {
                message: format!(
                    "writing the line of s3://{}/{}: {e}",
                    self.bucket, object.key
                ),
                retryable: false,
            })
        })
    }
}
