//! The ledger's state calls counted as they are made: every read (`GET`, a listing) and every
//! write (`PUT`) of the store, whoever makes it (markers, progress, claims, cursors, the lease),
//! so the backfill's summary reports the calls made, not an estimate per outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ports::{BoxFuture, Precondition, StateError, StateStore, Stored};

/// Calls made so far (shared by a ledger and its clones).
#[derive(Debug, Default)]
pub struct Traffic {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// Reads and writes made, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub reads: u64,
    pub writes: u64,
}

impl Calls {
    /// The calls made between `earlier` and `self`.
    pub fn since(self, earlier: Calls) -> Calls {
        Calls {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
        }
    }
}

impl Traffic {
    pub fn calls(&self) -> Calls {
        Calls {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// A store that counts the calls made through it into [`Traffic`].
pub(super) struct Counted {
    pub(super) inner: Arc<dyn StateStore>,
    pub(super) traffic: Arc<Traffic>,
}

impl StateStore for Counted {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, StateError>> {
        self.traffic.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key)
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        condition: Precondition,
    ) -> BoxFuture<'a, Result<String, StateError>> {
        self.traffic.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, body, condition)
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StateError>> {
        self.traffic.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix, max)
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}
