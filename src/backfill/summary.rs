//! What a run reports: why it stopped, its summary line, the events it emits as it goes, and
//! why it could not run at all.

use serde::Serialize;

use super::MAX_REPORTED_ERRORS;
use crate::forward::{ForwardError, Receipt};
use crate::ports::{ListError, Listed, StateError};

/// Why a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Every tree was walked up to today.
    #[default]
    Complete,
    /// The time left fell below the margin; the next run goes on from the cursor.
    Deadline,
    /// `max_objects` objects were sent.
    ObjectBudget,
    /// Another walker holds the lease; nothing was done.
    LeaseHeld,
    /// Another walker took the lease over or moved a cursor: this one stopped at once.
    Overtaken,
    /// The sink failed (every later object would fail too), or the state store did.
    Failed,
}

/// What one run did: the JSON line a run ends with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub stopped: Stopped,
    pub dry_run: bool,
    /// Partition trees found under the prefix.
    pub trees: u64,
    pub days_walked: u64,
    /// `ListObjectsV2` calls, discovery included.
    pub list_calls: u64,
    /// Keys listed in the walked days (anything, audit log or not).
    pub keys_listed: u64,
    /// Audit logs of the selected types in the walked days.
    pub objects_seen: u64,
    pub sent: u64,
    /// Objects a dry run would send (a manifest run: the lines written).
    pub would_send: u64,
    /// Objects whose message the fan-out's queue took (`BACKFILL_QUEUE_URL`).
    #[serde(skip_serializing_if = "is_zero")]
    pub enqueued: u64,
    /// `SendMessageBatch` calls, resends alone included.
    #[serde(skip_serializing_if = "is_zero")]
    pub queue_calls: u64,
    /// Objects whose done marker matched (sent by the live path or an earlier run).
    pub skipped_done: u64,
    /// Objects well before the cursor: not even their marker was read.
    pub skipped_before_cursor: u64,
    /// Files whose time is before the start time.
    pub skipped_before_start: u64,
    /// Objects that could not be forwarded (see `errors`); those set aside by this run
    /// included.
    pub failed: u64,
    /// Objects this run set aside (failed `MAX_ATTEMPTS` times, or for good).
    pub set_aside: u64,
    /// Objects skipped because they were set aside before.
    pub skipped_set_aside: u64,
    /// Set-aside objects tried again (`--retry-set-aside`), and how many of them went through.
    #[serde(skip_serializing_if = "is_zero")]
    pub retried_set_aside: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub recovered_set_aside: u64,
    /// Objects stopped at the deadline partway, their progress saved.
    pub paused: u64,
    /// Objects another invocation was sending (its claim was live): left for a later walk,
    /// no attempt counted.
    #[serde(skip_serializing_if = "is_zero")]
    pub busy: u64,
    /// A dry run: the objects set aside (`key`, `etag`, `attempts`, `last_error`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside_objects: Vec<crate::ledger::SetAside>,
    /// Records sent (parse errors included).
    pub records: u64,
    /// Stored bytes of the objects sent (or that a dry run would send).
    pub bytes: u64,
    pub state_reads: u64,
    pub state_writes: u64,
    /// State objects refused as corrupt or forged (their keys are in `errors`): done markers,
    /// which count as absent (the object was sent again), and a cursor or lease, which stopped
    /// the walk. Anything above 0 deserves an alarm.
    pub state_refused: u64,
    /// Milliseconds left before the deadline when the run ended; `null` without one.
    pub time_left_ms: Option<i64>,
    pub duration_ms: i64,
    /// The lease's holder, when it was held by another walker, and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    /// The walker whose expired lease this run took over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_over_from: Option<String>,
    /// The first errors, word for word.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The newest file per source listed, and what an early stop left (`freshness.rs`).
    #[serde(flatten)]
    pub freshness: super::Freshness,
}

impl Summary {
    /// Whether the run must be reported as failed (Lambda error, non-zero exit). Being
    /// overtaken is not: the other walker carries on, and nothing was lost.
    pub fn is_failure(&self) -> bool {
        self.failed > 0 || self.stopped == Stopped::Failed
    }

    pub(super) fn error(&mut self, message: String) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(message);
        }
    }

    /// The walk could not go on: stopped as failed, with the error (and the refusal) counted.
    pub(super) fn fail(&mut self, e: &BackfillError) {
        self.stopped = Stopped::Failed;
        if e.is_state_refused() {
            self.state_refused += 1;
        }
        self.error(e.to_string());
    }

    /// A done marker that could not be trusted: counted, reported at WARN naming its key, and
    /// taken as absent by the caller (the object is sent again: duplicates, not loss).
    pub(super) fn marker_refused(&mut self, e: &StateError) {
        tracing::warn!(error = %e, "done marker refused; the object is sent again");
        self.state_refused += 1;
        self.error(e.to_string());
    }
}

/// What the walk reports as it goes, for progress and dry-run listings.
#[derive(Debug)]
pub enum Event<'a> {
    /// A day partition is being listed.
    Day {
        tree: &'a str,
        day: i64,
    },
    /// A day was listed: this many objects (and stored bytes) of it are to be handled.
    Listed {
        objects: u64,
        bytes: u64,
    },
    /// A dry run would send this object.
    WouldSend(&'a Listed),
    /// The fan-out's queue took this object's message.
    Enqueued(&'a Listed),
    Sent(&'a Receipt),
    SkippedDone(&'a Listed),
    Failed(&'a Listed, &'a ForwardError),
    /// A dry run lists a set-aside object.
    SetAside(&'a crate::ledger::SetAside),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a run could not be carried out at all (before or around the walk; failures of single
/// objects are counted in the [`Summary`] instead).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The request itself is wrong: retrying never helps.
    #[error("backfill request: {0}")]
    Request(String),
    #[error(transparent)]
    List(#[from] ListError),
    #[error("backfill state: {0}")]
    State(#[from] StateError),
    /// The manifest could not be written (disk full, upload refused).
    #[error("backfill manifest: {message}")]
    Manifest { message: String, retryable: bool },
}

impl BackfillError {
    /// Whether the walk stopped on a state object it refused (corrupt or forged cursor or
    /// lease): not retryable, and repaired by deleting the object the message names.
    pub fn is_state_refused(&self) -> bool {
        matches!(self, BackfillError::State(StateError::Corrupt { .. }))
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            BackfillError::Request(_) => false,
            BackfillError::List(e) => e.retryable,
            BackfillError::State(e) => e.is_retryable(),
            BackfillError::Manifest { retryable, .. } => *retryable,
        }
    }
}

/// How walking one tree (or the whole run) ended, when it ended early.
pub(super) enum Halt {
    Stop(Stopped),
    Error(BackfillError),
}

impl From<ListError> for Halt {
    fn from(e: ListError) -> Halt {
        Halt::Error(e.into())
    }
}

impl From<StateError> for Halt {
    fn from(e: StateError) -> Halt {
        match e {
            // A conditional write lost: another walker is at work.
            StateError::Conflict { .. } => Halt::Stop(Stopped::Overtaken),
            e => Halt::Error(e.into()),
        }
    }
}
