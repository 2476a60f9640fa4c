//! The session join on the Lambda path (`crate::sessions::state`): a connection log's sessions
//! are collected in the pass that sends its records and written to the state store before it
//! is marked done ([`FileJoin`]); an activity file's sessions are read before its records are,
//! and while its hour's connection log is not in, it fails retryably (until `SESSION_WAIT`).
//! CloudWatch Logs batches ([`BatchJoin`]) never wait.

use std::sync::Arc;

use super::ForwardError;
use crate::cloudwatch::{LogGroup, LogsData};
use crate::key::LogFileName;
use crate::logs::LogType;
use crate::ports::{Fetched, ObjectRef};
use crate::sessions::state::{
    hour_of, hour_start, tag_of, Scope, SessionError, SessionStore, Traffic,
};
use crate::sessions::{Builder, Index};

/// The session join of one file: a connection log's sessions, collected in the pass that sends
/// its records (one read of the object serves both) and written before it is marked done; an
/// activity log's index.
pub(super) enum FileJoin {
    Record {
        scope: Scope,
        hour: i64,
        /// The sessions carried in, until the pass takes it.
        builder: Option<Builder>,
        traffic: Traffic,
    },
    Join {
        index: Arc<Index>,
        traffic: Traffic,
    },
}

impl FileJoin {
    /// What the join needs before the records go: the carried sessions (a connection log) or
    /// the index (an activity log, which fails retryably while it waits); `None` for other
    /// logs. A state that cannot be read fails the file before anything is sent.
    pub(super) async fn prepare(
        object: &ObjectRef,
        name: &LogFileName,
        fetched: &Fetched,
        store: &SessionStore,
    ) -> Result<Option<FileJoin>, ForwardError> {
        let failed = |source| ForwardError::Sessions {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            source,
        };
        match name.log_type {
            LogType::ConnectionLog => {
                let (scope, hour) = (Scope::of_file(name), hour_of(name).map_err(failed)?);
                let mut traffic = Traffic::default();
                let builder = store
                    .begin(&scope, hour, false, &mut traffic)
                    .await
                    .map_err(failed)?;
                Ok(Some(FileJoin::Record {
                    scope,
                    hour,
                    builder: Some(builder),
                    traffic,
                }))
            }
            LogType::UserActivityLog => {
                // Unknown: the name's time plus the longest delivery lag stands in.
                let written = fetched.last_modified_ms.unwrap_or(i64::MAX / 4);
                let loaded = store.load(name, written).await.map_err(failed)?;
                if !loaded.complete {
                    tracing::warn!(bucket = %object.bucket, key = %object.key, sessions = loaded.index.len(), "no connection log of its hour arrived within SESSION_WAIT: its records are joined with the sessions known");
                }
                Ok(Some(FileJoin::Join {
                    index: Arc::new(loaded.index),
                    traffic: loaded.traffic,
                }))
            }
            LogType::UserLog => Ok(None),
        }
    }

    /// The index an activity log's records are joined with.
    pub(super) fn index(&self) -> Option<Arc<Index>> {
        match self {
            FileJoin::Join { index, .. } => Some(index.clone()),
            FileJoin::Record { .. } => None,
        }
    }

    /// The builder the pass adds a connection log's records to.
    pub(super) fn take_builder(&mut self) -> Option<Builder> {
        match self {
            FileJoin::Record { builder, .. } => builder.take(),
            FileJoin::Join { .. } => None,
        }
    }

    /// After every record was sent: a connection log's sessions (`collected` by the pass)
    /// written as its hour's shards, before the caller marks it done, so an activity file that
    /// finds it done finds its sessions. A failure fails the file, retryably: the next attempt
    /// reads it again (its progress skips what was delivered).
    pub(super) async fn finish(
        self,
        store: &SessionStore,
        object: &ObjectRef,
        collected: Option<Builder>,
    ) -> Result<Traffic, ForwardError> {
        match self {
            FileJoin::Join { traffic, .. } => Ok(traffic),
            FileJoin::Record {
                scope,
                hour,
                mut traffic,
                ..
            } => {
                let sessions = collected.unwrap_or_default().build();
                let tag = tag_of(&[&object.bucket, &object.key]);
                store
                    .write(&scope, hour, &object.key, &tag, sessions, &mut traffic)
                    .await
                    .map_err(|source| ForwardError::Sessions {
                        bucket: object.bucket.clone(),
                        key: object.key.clone(),
                        source,
                    })?;
                Ok(traffic)
            }
        }
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
