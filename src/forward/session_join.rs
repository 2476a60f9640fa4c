//! The session join on the Lambda path (`crate::sessions::state`): a connection log's sessions
//! are written to the state store before its records are sent, so a failure retries the file
//! before anything left; an activity file's sessions are read before its records are, and
//! while its hour's connection log is not in, it fails retryably (until `SESSION_WAIT`).
//! CloudWatch Logs batches ([`BatchJoin`]) never wait.

use std::sync::Arc;

use super::ForwardError;
use crate::cloudwatch::{LogGroup, LogsData};
use crate::key::LogFileName;
use crate::logs::LogType;
use crate::pipeline::Output;
use crate::ports::{Fetch, Fetched, ObjectRef};
use crate::sessions::state::{hour_start, tag_of, Scope, SessionError, SessionStore, Traffic};
use crate::sessions::{Builder, Index};

/// For a connection log, its sessions written (no index); for an activity log, the index its
/// records are joined with; `None` for other logs.
pub(super) async fn prepare<F: Fetch>(
    fetch: &F,
    object: &ObjectRef,
    name: &LogFileName,
    fetched: &Fetched,
    store: &SessionStore,
    output: Output,
) -> Result<Option<(Option<Arc<Index>>, Traffic)>, ForwardError> {
    let failed = |source| ForwardError::Sessions {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        source,
    };
    match name.log_type {
        LogType::ConnectionLog => {
            // Read a second time (a connection log is tens of KB): the sessions are whole even
            // when sending resumes halfway through the file.
            let again = fetch
                .fetch(object)
                .await
                .map_err(|source| ForwardError::Fetch {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    source,
                })?;
            let traffic = store
                .record(
                    name,
                    &object.bucket,
                    &object.key,
                    again.body,
                    output.max_expansion,
                )
                .await
                .map_err(|e| match e {
                    // The file's own fault (a corrupt gzip) or a broken connection: judged as
                    // the forwarding judges them, and counted as an attempt.
                    SessionError::Read(source) => ForwardError::Read {
                        bucket: object.bucket.clone(),
                        key: object.key.clone(),
                        line: 0,
                        source,
                    },
                    e => failed(e),
                })?;
            Ok(Some((None, traffic)))
        }
        LogType::UserActivityLog => {
            // Unknown: the name's time plus the longest delivery lag stands in.
            let written = fetched.last_modified_ms.unwrap_or(i64::MAX / 4);
            let loaded = store.load(name, written).await.map_err(failed)?;
            if !loaded.complete {
                tracing::warn!(bucket = %object.bucket, key = %object.key, sessions = loaded.index.len(), "no connection log of its hour arrived within SESSION_WAIT: its records are joined with the sessions known");
            }
            Ok(Some((Some(Arc::new(loaded.index)), loaded.traffic)))
        }
        LogType::UserLog => Ok(None),
    }
}

/// The session join of one CloudWatch Logs batch (Redshift Serverless, or a cluster logging to
/// CloudWatch). CloudWatch Logs invokes the function asynchronously: a failed batch is retried
/// twice, then dropped (or sent to the on-failure destination). So a batch never waits and never
/// fails for the join: an activity batch is joined at once with the sessions known (those of
/// its hour and the hour before, or the last hour with shards), and a state error leaves its
/// records unjoined and counted, logged at WARN; a connection batch's sessions are collected
/// in the pass that sends its records and written afterwards, one shard a batch.
pub(super) struct BatchJoin {
    pub scope: Scope,
    /// The hour whose shards the batch reads (activity) or writes (connection).
    pub hour: i64,
    /// Activity batches: the sessions to join with (empty when the state could not be read).
    pub index: Option<Index>,
    /// Connection batches: the sessions carried in, to which the batch's records are added.
    pub builder: Option<Builder>,
    pub traffic: Traffic,
}

impl BatchJoin {
    /// What the join needs before the batch's records go; `None` when nothing is joined (no
    /// region to name the shards by, no log events, a log type without sessions).
    pub(super) async fn prepare(
        store: &SessionStore,
        data: &LogsData,
        group: &LogGroup,
        region: Option<&str>,
    ) -> Option<BatchJoin> {
        let region = region?;
        let times = data.log_events.iter().map(|e| e.timestamp);
        let (first, last) = (times.clone().min()?, times.max()?);
        let scope = Scope::of_group(group, &data.owner, region);
        let mut traffic = Traffic::default();
        let warn = |e: &SessionError| tracing::warn!(log_group = %data.log_group, log_stream = %data.log_stream, error = %e, "session state not available: the batch goes out with the sessions it has");
        match group.log_type {
            LogType::UserActivityLog => {
                // The latest event's hour and the hour before cover a batch of minutes.
                let hour = hour_start(last);
                let index = match store.load_scope(&scope, hour, None).await {
                    Ok(loaded) => {
                        traffic = loaded.traffic;
                        loaded.index
                    }
                    Err(e) => {
                        warn(&e);
                        Index::default()
                    }
                };
                Some(BatchJoin {
                    scope,
                    hour,
                    index: Some(index),
                    builder: None,
                    traffic,
                })
            }
            LogType::ConnectionLog => {
                // The earliest event's hour: its sessions started in it or later, and the
                // activity of that hour and the next reads them.
                let hour = hour_start(first);
                let builder = match store.begin(&scope, hour, true, &mut traffic).await {
                    Ok(builder) => builder,
                    Err(e) => {
                        warn(&e);
                        Builder::default()
                    }
                };
                Some(BatchJoin {
                    scope,
                    hour,
                    index: None,
                    builder: Some(builder),
                    traffic,
                })
            }
            LogType::UserLog => None,
        }
    }

    /// Writes a connection batch's sessions (collected while its records were sent) as its
    /// shard, named by its log group, stream and first event id; a failure is logged at WARN
    /// (the records are delivered; only later statements lose these sessions).
    pub(super) async fn finish(
        &mut self,
        store: &SessionStore,
        data: &LogsData,
        builder: Option<Builder>,
    ) {
        let Some(builder) = builder else {
            return;
        };
        let first = data.log_events.first().map_or("", |e| e.id.as_str());
        let tag = tag_of(&[&data.log_group, &data.log_stream, first]);
        let source = format!("{}:{}", data.log_group, data.log_stream);
        let written = store
            .write(
                &self.scope,
                self.hour,
                &source,
                &tag,
                builder.build(),
                &mut self.traffic,
            )
            .await;
        if let Err(e) = written {
            tracing::warn!(log_group = %data.log_group, log_stream = %data.log_stream, error = %e, "the batch's sessions could not be written: later statements of them go out unjoined");
        }
    }
}
