//! The session join on the Lambda path (`crate::sessions::state`): a connection log's sessions
//! are written to the state store before its records are sent, so a failure retries the file
//! before anything left; an activity file's sessions are read before its records are, and
//! while its hour's connection log is not in, it fails retryably (until `SESSION_WAIT`).

use std::sync::Arc;

use super::ForwardError;
use crate::key::LogFileName;
use crate::logs::LogType;
use crate::pipeline::Output;
use crate::ports::{Fetch, Fetched, ObjectRef};
use crate::sessions::state::{SessionError, SessionStore, Traffic};
use crate::sessions::Index;

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
