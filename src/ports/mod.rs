//! The ports: the small traits the domain needs from the outside world, and their value types.
//! Object bodies come through [`Fetch`], day listings through [`ListObjects`], state through
//! [`StateStore`], time through [`Clock`]; the sink is [`crate::sink::Sink`]. The S3 adapters
//! live in `aws/`, the in-memory twins for tests in [`memory`].
//!
//! Nothing here knows AWS: errors say in words what failed and whether trying again can help.

pub mod inspect;
pub mod memory;
pub mod metric;
pub mod queue;

use std::future::Future;
use std::io::Read;
use std::pin::Pin;

use crate::key::{self, KeyError, LogFileName};
pub use inspect::{
    BucketFacts, Identity, Inspect, InspectError, NotificationTarget, Notifications, StreamFacts,
};
pub use metric::{Datapoint, MetricError, MetricQuery, ReadMetrics};
pub use queue::{FailedEntry, Queue, QueueEntry, QueueError, QueueStats};

/// A boxed future, so the traits that need it stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// --- objects -------------------------------------------------------------------------------

/// One stored object to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The real key, decoded: pass it to `GetObject` as it is.
    pub key: String,
    /// Size the event reported, if any; informational, the body decides.
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The key decoded, when an EventBridge key looks URL-encoded and its decoded form is
    /// selected too: the fetch tries it once when `key` names no object (and logs at WARN when
    /// that is missing too). Always `None` for S3 notifications, whose keys are decoded here.
    pub alternate_key: Option<String>,
}

impl ObjectRef {
    /// What the key's file name says; events only yield keys for which this succeeds.
    pub fn file_name(&self) -> Result<LogFileName, KeyError> {
        key::parse_file_name(&self.key)
    }
}

/// An object's body, ready to read, and what the store said about it.
pub struct Fetched {
    pub body: Box<dyn Read + Send>,
    /// Stored size in bytes.
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// When the object was written (ms since the epoch), when the store says.
    pub last_modified_ms: Option<i64>,
}

/// Why fetching failed, and whether trying again later can help. The message names the object.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

/// Where object bodies come from (S3 in Lambda; tests use memory).
pub trait Fetch: Send + Sync {
    fn fetch(&self, object: &ObjectRef)
        -> impl Future<Output = Result<Fetched, FetchError>> + Send;
}

// --- listings ------------------------------------------------------------------------------

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// As S3 lists it, with quotes.
    pub etag: String,
    pub last_modified_ms: i64,
}

/// One `ListObjectsV2` page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub objects: Vec<Listed>,
    /// Common prefixes, when a delimiter was given.
    pub prefixes: Vec<String>,
    /// Continuation token of the next page.
    pub next: Option<String>,
}

/// Listing failed; `retryable` says whether a later run can succeed without a change.
#[derive(Debug, thiserror::Error)]
#[error("listing s3://{bucket}/{prefix} failed: {message}")]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    pub message: String,
    pub retryable: bool,
}

/// Lists a bucket (S3; tests use memory).
pub trait ListObjects: Send + Sync {
    fn list_page<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        token: Option<String>,
    ) -> BoxFuture<'a, Result<Page, ListError>>;
}

// --- state ---------------------------------------------------------------------------------

/// When a write may happen (S3 conditional writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Always: done markers, whose last writer wins.
    None,
    /// Only when the key does not exist yet (`If-None-Match: *`).
    IfAbsent,
    /// Only when the stored object still has this ETag (`If-Match`).
    IfMatch(String),
}

/// A stored state object and its ETag (as the store gives it, quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub body: Vec<u8>,
    pub etag: String,
}

/// Why reading or writing state failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A conditional write lost: another writer created or changed the object first. Retrying
    /// the same write never helps; read the object again and decide anew.
    #[error("{location}: another writer changed it first (precondition failed)")]
    Conflict { location: String },
    /// The store failed or refused. Throttling, 5xx and timeouts are retryable; access denied
    /// and a missing bucket are not.
    #[error("{location}: {message}")]
    Store {
        location: String,
        message: String,
        retryable: bool,
    },
    /// The object is not the JSON this version writes. Retrying never helps: delete or fix it.
    #[error("{location}: not a valid state object: {reason}")]
    Corrupt { location: String, reason: String },
}

impl StateError {
    pub fn is_retryable(&self) -> bool {
        match self {
            StateError::Conflict { .. } | StateError::Corrupt { .. } => false,
            StateError::Store { retryable, .. } => *retryable,
        }
    }
}

/// The largest state object read: the function's own are a few hundred bytes, and a larger one
/// (forged) is refused as corrupt before its body is read.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

/// Where state objects are kept. Keys are full keys (the ledger adds the prefix).
pub trait StateStore: Send + Sync {
    /// The object, or `None` when it does not exist.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, StateError>>;
    /// Writes the object when `condition` holds and returns its new ETag;
    /// [`StateError::Conflict`] when it does not.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        condition: Precondition,
    ) -> BoxFuture<'a, Result<String, StateError>>;
    /// Keys under `prefix` in key order, at most `max` of them (set-aside records, which an
    /// operator lists and retries).
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StateError>>;
    /// `s3://bucket/key`, for messages.
    fn location(&self, key: &str) -> String;
}

// --- time ----------------------------------------------------------------------------------

/// Wall-clock time in milliseconds since the epoch. Leases compare times across processes, so
/// this is the system clock, not a monotonic one; tests drive a [`memory::ManualClock`].
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::time::now_ms()
    }
}
