//! The shape the lease and the claims share: a record at one key that one holder at a time
//! holds until it expires or is released, taken with a conditional write (`If-None-Match: *`
//! to create, `If-Match` on the ETag read to take over one that is free), and released by
//! overwriting it as released (`If-Match` on the ETag the holder wrote). Of two racing writers
//! exactly one wins; the other sees the record as busy.

use serde::Serialize;

use super::{encode, Ledger};
use crate::ports::{Precondition, StateError};

/// A record one holder at a time holds.
pub(super) trait Holdable: Serialize {
    fn holder(&self) -> &str;
    fn expires_at_ms(&self) -> i64;
    fn released(&self) -> bool;

    /// Whether another holder may take it at `now_ms`.
    fn is_free(&self, now_ms: i64) -> bool {
        self.released() || self.expires_at_ms() <= now_ms
    }
}

/// What to do with a stored record the checks refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// It counts as absent and is taken over (claims: never block an object for good).
    TakeOver,
    /// Its error is returned (the lease: the walk stops and says how to repair it).
    Fail,
}

/// What trying to take a record gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Take {
    Taken {
        /// The ETag of the record written: its release must match it.
        etag: String,
        /// The holder of a record that expired without being released.
        took_over_from: Option<String>,
        /// A refused record taken over: its error, naming its key.
        refused: Option<String>,
    },
    /// Another holder has it until `expires_at_ms` (or won the race to write it).
    Busy { holder: String, expires_at_ms: i64 },
}

impl Ledger {
    /// Writes `record` at `key` unless a live record of another holder is there; `read` decodes
    /// and checks a stored body.
    pub(super) async fn take_held<T: Holdable>(
        &self,
        key: &str,
        record: &T,
        now_ms: i64,
        read: impl Fn(&[u8]) -> Result<T, StateError>,
        refused: Refused,
    ) -> Result<Take, StateError> {
        let (mut took_over_from, mut refused_error) = (None, None);
        let condition = match self.store.get(key).await? {
            None => Precondition::IfAbsent,
            Some(stored) => {
                match read(&stored.body) {
                    Ok(current) if !current.is_free(now_ms) => {
                        return Ok(Take::Busy {
                            holder: current.holder().to_string(),
                            expires_at_ms: current.expires_at_ms(),
                        })
                    }
                    Ok(current) => {
                        took_over_from = (!current.released()).then(|| current.holder().to_string())
                    }
                    Err(e) if refused == Refused::TakeOver => refused_error = Some(e.to_string()),
                    Err(e) => return Err(e),
                }
                Precondition::IfMatch(stored.etag)
            }
        };
        match self.store.put(key, encode(record), condition).await {
            Ok(etag) => Ok(Take::Taken {
                etag,
                took_over_from,
                refused: refused_error,
            }),
            // Another writer got there between our read and our write: it holds it now.
            Err(StateError::Conflict { .. }) => {
                let current = match self.store.get(key).await? {
                    Some(stored) => match read(&stored.body) {
                        Ok(current) => Some(current),
                        Err(_) if refused == Refused::TakeOver => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                Ok(match current {
                    Some(current) => Take::Busy {
                        holder: current.holder().to_string(),
                        expires_at_ms: current.expires_at_ms(),
                    },
                    None => Take::Busy {
                        holder: "another holder (its record changed meanwhile)".into(),
                        expires_at_ms: now_ms,
                    },
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Overwrites the holder's record at `key` (as released, or renewed) if it is still the one
    /// it wrote (`etag`); the new ETag. A conflict means it was taken over.
    pub(super) async fn rewrite_held<T: Serialize>(
        &self,
        key: &str,
        record: &T,
        etag: &str,
    ) -> Result<String, StateError> {
        self.store
            .put(key, encode(record), Precondition::IfMatch(etag.to_string()))
            .await
    }

    /// [`Ledger::rewrite_held`] as a release: taken over already is nothing to release.
    pub(super) async fn release_held<T: Serialize>(
        &self,
        key: &str,
        record: &T,
        etag: &str,
    ) -> Result<(), StateError> {
        match self.rewrite_held(key, record, etag).await {
            Ok(_) | Err(StateError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
