//! The state the live path and the backfill share, in `STATE_BUCKET`/`STATE_PREFIX`: a done
//! marker per forwarded object, a cursor per partition tree, and the backfill's lease, all
//! written with S3 conditional requests where two writers could race.
//!
//! | object | key | written |
//! |---|---|---|
//! | done marker | `<prefix>done/<32 hex of xxh3-128(bucket \0 key)>.json` | after every record of the object was accepted |
//! | cursor | `<prefix>cursor/<32 hex of xxh3-128(bucket \0 tree prefix)>.json` | after each forwarded object, `If-Match` the previous cursor (`If-None-Match: *` the first) |
//! | lease | `<prefix>lease.json` | `If-None-Match: *` to create, `If-Match` to take over an expired one, renew or release |
//! | progress | `<prefix>progress/<same hash as the marker>.json` | while a large object is sent, at a deadline, after a failed attempt ([`progress`]) |
//! | set aside | `<prefix>aside/<same hash>.json` | when an object failed `MAX_ATTEMPTS` times or for good ([`progress`]) |
//! | claim | `<prefix>claim/<same hash>.json` | before an object's first record is sent, and released when the attempt ends ([`claim`]) |
//!
//! Every name ends in `.json`, so no state object ever looks like an audit log file (`*.gz`) and
//! writing one never triggers the function. Each object is JSON that names what it is about
//! (bucket, key, tree prefix, owner), so an operator can read it with `aws s3 cp ... -`, and
//! carries its schema version (`"v": 1`).
//!
//! State is checked, not trusted ([`check`]): an object that is not JSON, of another schema, or
//! holding values the function could not have written is refused with an error naming its key
//! ([`StateError::Corrupt`], never retryable). What a refusal means depends on the object:
//!
//! - a done marker, a progress or a set-aside record counts as absent: the object is sent
//!   again from its start (duplicates, not loss), and the record written after it replaces the
//!   refused one; callers log the refusal at WARN;
//! - a cursor or the lease stops the walk with an error that says how to repair it (delete the
//!   object), never a silent success and never a silent restart from the beginning.
//!
//! The lease and the claims are one shape, a record one holder at a time holds until it
//! expires or is released (`held.rs`: take, renew, release). Every call to the store is counted
//! ([`traffic`], [`Ledger::calls`]) for the backfill's summary.
//!
//! The store is a port ([`StateStore`]) with an S3 adapter (`aws::StateBucket`) and an
//! in-memory twin (`ports::memory::MemoryStore`) for tests. Its futures are boxed so that
//! [`Ledger`] is one concrete type the forwarder can hold without another generic parameter.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::ports::{Clock, Precondition, StateError, StateStore, SystemClock};
pub use crate::time::rfc3339_ms;

pub mod check;
pub mod claim;
mod held;
pub mod progress;
pub mod traffic;
pub mod walk_state;
pub use check::{CLOCK_SKEW_MS, EARLIEST_DAY, MAX_LEASE_HOLD_MS, MAX_LEASE_MS, SCHEMA_VERSION};
pub use claim::{new_holder, Claim, ClaimOutcome, HeldClaim, CLAIM_MARGIN_MS, MAX_CLAIM_MS};
pub use progress::{
    Progress, SetAside, MAX_LISTED_ASIDE, PROGRESS_EVERY_BYTES, PROGRESS_EVERY_MS,
    PROGRESS_MIN_BYTES,
};

/// Folder of the done markers under the state prefix.
const DONE_DIR: &str = "done/";
/// Folder of the cursors under the state prefix.
const CURSOR_DIR: &str = "cursor/";
/// The backfill's lease under the state prefix.
const LEASE_NAME: &str = "lease.json";

/// An ETag without its quotes (and weak marker): S3 notifications send it bare, listings and
/// `GetObject` quoted.
pub fn normalize_etag(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// What the refusal of a done marker means, for its error.
const MARKER_REFUSED: &str = "it counts as absent: the object is sent again and a new marker \
                              replaces this one";
/// How to repair a refused cursor, for its error.
const CURSOR_REPAIR: &str = "the walk stops until it is repaired: delete it, and the next walk \
                             starts from BACKFILL_START_TIME or the tree's first day, skipping \
                             every object whose done marker matches";
/// How to repair a refused lease, for its error.
const LEASE_REPAIR: &str = "every walk stops until it is repaired: delete it once no backfill \
                            is running";

/// An object was forwarded completely: every record accepted by the sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneMarker {
    pub bucket: String,
    pub key: String,
    /// The ETag of the version that was read, without quotes.
    pub etag: String,
    /// When the last record was accepted, RFC 3339 UTC.
    pub done_at: String,
    pub records: u64,
    /// `live` or `backfill`: which path forwarded it.
    pub via: String,
}

/// A point in the (last-modified, key) order of a partition tree's objects. The derived order
/// compares the time first, then the key: a total order even when many objects share a
/// last-modified second.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Last-modified time in milliseconds since the epoch (S3 gives whole seconds).
    pub last_modified_ms: i64,
    pub key: String,
}

/// How far the backfill got in one partition tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub bucket: String,
    /// The tree: `.../redshift/<region>/`, the folder that holds `YYYY/MM/DD/`.
    pub prefix: String,
    /// The last object passed (forwarded or found done); everything before it in (last-modified,
    /// key) order was handled, up to the grace window the walk re-checks. `None` until a walk
    /// passed an object.
    pub position: Option<Position>,
    /// The position's instant as RFC 3339, for people reading the object.
    pub last_modified: Option<String>,
    /// The first partition day (days since 1970-01-01) that may still hold an object not handled:
    /// the next walk lists from this day minus the look-back. After a complete walk it is the
    /// day the walk ended on, so a tree whose selected files are rare is not listed from its
    /// beginning again; after an interrupted one, the earliest partition with an object left.
    pub resume_day: i64,
    /// The same day as `YYYY-MM-DD`, for people reading the object.
    pub resume_date: String,
    pub updated_at: String,
    pub owner: String,
}

/// A cursor as stored, with the ETag the next conditional write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: String,
}

/// The backfill's lease: one walker at a time per state prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
    /// Set by the holder when it is done: free to take at once.
    pub released: bool,
}

impl Lease {
    /// Whether another walker may take the lease at `now_ms`.
    pub fn is_free(&self, now_ms: i64) -> bool {
        held::Holdable::is_free(self, now_ms)
    }
}

impl held::Holdable for Lease {
    fn holder(&self) -> &str {
        &self.owner
    }
    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }
    fn released(&self) -> bool {
        self.released
    }
}

/// A lease this process holds, with the ETag its next write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub lease: Lease,
    pub etag: String,
    /// The previous holder, when an expired lease was taken over.
    pub took_over_from: Option<String>,
}

/// What trying to take the lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired(HeldLease),
    /// Another walker holds it until `expires_at_ms`.
    Held {
        owner: String,
        expires_at_ms: i64,
    },
}

/// The done markers, cursors and lease under one state prefix.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn StateStore>,
    /// Ends with `/` (or is empty).
    prefix: String,
    /// What "the future" means when checking markers and cursors.
    clock: Arc<dyn Clock>,
    /// The calls made through `store` (`traffic.rs`).
    traffic: Arc<traffic::Traffic>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("at", &self.store.location(&self.prefix))
            .finish()
    }
}

impl Ledger {
    /// A ledger under `prefix` (a `/` is added when missing) in `store`.
    pub fn new(store: Arc<dyn StateStore>, prefix: &str) -> Ledger {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        let traffic = Arc::new(traffic::Traffic::default());
        Ledger {
            store: Arc::new(traffic::Counted {
                inner: store,
                traffic: traffic.clone(),
            }),
            prefix,
            clock: Arc::new(SystemClock),
            traffic,
        }
    }

    /// The state reads and writes made through this ledger and its clones so far.
    pub fn calls(&self) -> traffic::Calls {
        self.traffic.calls()
    }

    /// The same ledger checking markers and cursors against `clock` instead of the system
    /// clock (tests that move time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Ledger {
        self.clock = clock;
        self
    }

    /// Key of the done marker of `s3://bucket/key`.
    pub fn done_key(&self, bucket: &str, key: &str) -> String {
        format!("{}{DONE_DIR}{}.json", self.prefix, pair_hash(bucket, key))
    }

    /// Key of the cursor of the partition tree `tree` in `bucket`.
    pub fn cursor_key(&self, bucket: &str, tree: &str) -> String {
        format!(
            "{}{CURSOR_DIR}{}.json",
            self.prefix,
            pair_hash(bucket, tree)
        )
    }

    /// Key of the lease.
    pub fn lease_key(&self) -> String {
        format!("{}{LEASE_NAME}", self.prefix)
    }

    /// The marker of `s3://bucket/key` when it says this very version (`etag`) was forwarded.
    /// A marker for another ETag (the object was overwritten) does not count. A marker that is
    /// corrupt or refused by the checks is [`StateError::Corrupt`]: the caller logs it at WARN
    /// and forwards the object as if there were none.
    pub async fn done(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<DoneMarker>, StateError> {
        let marker_key = self.done_key(bucket, key);
        let Some(stored) = self.store.get(&marker_key).await? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let marker = check::decode::<DoneMarker>(&stored.body)
            .and_then(|m| check::check_marker(&m, bucket, key, now).map(|()| m))
            .map_err(|reason| self.refused(&marker_key, reason, MARKER_REFUSED))?;
        let same = normalize_etag(&marker.etag) == normalize_etag(etag);
        Ok(same.then_some(marker))
    }

    /// Records that every record of the object was accepted. The last writer wins: both paths
    /// write the same facts.
    pub async fn mark_done(&self, marker: &DoneMarker) -> Result<(), StateError> {
        let key = self.done_key(&marker.bucket, &marker.key);
        let mut marker = marker.clone();
        marker.etag = normalize_etag(&marker.etag).to_string();
        self.store
            .put(&key, encode(&marker), Precondition::None)
            .await
            .map(|_| ())
    }

    /// The tree's cursor, if a walk saved one.
    pub async fn cursor(
        &self,
        bucket: &str,
        tree: &str,
    ) -> Result<Option<Versioned<Cursor>>, StateError> {
        let key = self.cursor_key(bucket, tree);
        let Some(stored) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let value = check::decode::<Cursor>(&stored.body)
            .and_then(|c| check::check_cursor(&c, bucket, tree, now).map(|()| c))
            .map_err(|reason| self.refused(&key, reason, CURSOR_REPAIR))?;
        Ok(Some(Versioned {
            value,
            etag: stored.etag,
        }))
    }

    /// Saves the cursor if nobody moved it since `previous` (`None`: it must not exist yet) and
    /// returns its new ETag; [`StateError::Conflict`] means another walker moved it: stop.
    pub async fn save_cursor(
        &self,
        cursor: &Cursor,
        previous: Option<&str>,
    ) -> Result<String, StateError> {
        let key = self.cursor_key(&cursor.bucket, &cursor.prefix);
        let condition = match previous {
            None => Precondition::IfAbsent,
            Some(etag) => Precondition::IfMatch(etag.to_string()),
        };
        self.store.put(&key, encode(cursor), condition).await
    }

    /// Takes the lease for `owner` until `expires_at_ms`: creates it, or takes over one that
    /// was released or has expired (`held.rs`). Two walkers racing for it: exactly one write
    /// succeeds. A lease the checks refuse is an error: the walk stops and says how to repair it.
    pub async fn acquire_lease(
        &self,
        owner: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<LeaseOutcome, StateError> {
        let key = self.lease_key();
        let lease = Lease {
            owner: owner.to_string(),
            acquired_at_ms: now_ms,
            expires_at_ms,
            released: false,
        };
        let read = |body: &[u8]| self.read_lease(&key, body, now_ms);
        Ok(
            match self
                .take_held(&key, &lease, now_ms, read, held::Refused::Fail)
                .await?
            {
                held::Take::Taken {
                    etag,
                    took_over_from,
                    ..
                } => LeaseOutcome::Acquired(HeldLease {
                    lease,
                    etag,
                    took_over_from,
                }),
                held::Take::Busy {
                    holder,
                    expires_at_ms,
                } => LeaseOutcome::Held {
                    owner: holder,
                    expires_at_ms,
                },
            },
        )
    }

    /// Extends a held lease; [`StateError::Conflict`] means it was taken over: stop walking.
    pub async fn renew_lease(
        &self,
        held: &mut HeldLease,
        expires_at_ms: i64,
    ) -> Result<(), StateError> {
        let mut lease = held.lease.clone();
        lease.expires_at_ms = expires_at_ms;
        let etag = self
            .rewrite_held(&self.lease_key(), &lease, &held.etag)
            .await?;
        held.lease = lease;
        held.etag = etag;
        Ok(())
    }

    /// Gives the lease up by overwriting it as released (`If-Match`), which works on every S3
    /// that has conditional writes; conditional deletes came later and are not needed. A
    /// conflict means it was taken over already: nothing to release.
    pub async fn release_lease(&self, held: &HeldLease, now_ms: i64) -> Result<(), StateError> {
        let mut lease = held.lease.clone();
        lease.released = true;
        lease.expires_at_ms = now_ms;
        self.release_held(&self.lease_key(), &lease, &held.etag)
            .await
    }

    /// The lease as stored, checked at `now_ms`.
    fn read_lease(&self, key: &str, body: &[u8], now_ms: i64) -> Result<Lease, StateError> {
        check::decode::<Lease>(body)
            .and_then(|l| check::check_lease(&l, now_ms).map(|()| l))
            .map_err(|reason| self.refused(key, reason, LEASE_REPAIR))
    }

    /// The error of a state object that is corrupt or refused: its location, why, and what
    /// happens now.
    fn refused(&self, key: &str, reason: String, consequence: &str) -> StateError {
        StateError::Corrupt {
            location: self.store.location(key),
            reason: format!("{reason}; {consequence}"),
        }
    }
}

/// 32 hex digits of xxh3-128 over `a \0 b`: fixed-length, safe in any key, and `\0` cannot occur
/// in a bucket name, so different pairs never hash the same input.
fn pair_hash(a: &str, b: &str) -> String {
    let mut input = Vec::with_capacity(a.len() + b.len() + 1);
    input.extend_from_slice(a.as_bytes());
    input.push(0);
    input.extend_from_slice(b.as_bytes());
    format!("{:032x}", xxh3_128(&input))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    check::encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryStore;

    /// Two S3 ETags (MD5 hex), as the store lists them.
    const E1: &str = "\"9b2cf535f27731c974343645a3985328\"";
    const E2: &str = "\"d41d8cd98f00b204e9800998ecf8427e\"";
    /// 2024-03-01T00:00:00Z.
    const MAR_1: i64 = 1_709_251_200_000;
    const TREE: &str = "AWSLogs/1/redshift/us-east-1/";

    fn ledger() -> (Arc<MemoryStore>, Ledger) {
        let store = Arc::new(MemoryStore::default());
        (store.clone(), Ledger::new(store, "state"))
    }

    fn marker(etag: &str) -> DoneMarker {
        DoneMarker {
            bucket: "audit".into(),
            key: "AWSLogs/x.gz".into(),
            etag: etag.into(),
            done_at: "2024-03-01T00:00:00.000Z".into(),
            records: 3,
            via: "live".into(),
        }
    }

    /// A cursor at `ms` after 2024-03-01 on the key `TREE` + `key`.
    fn cursor(ms: i64, key: &str) -> Cursor {
        let ms = MAR_1 + ms;
        Cursor {
            bucket: "audit".into(),
            prefix: TREE.into(),
            position: Some(Position {
                last_modified_ms: ms,
                key: format!("{TREE}{key}"),
            }),
            last_modified: Some(rfc3339_ms(ms)),
            resume_day: 19_783,
            resume_date: "2024-03-01".into(),
            updated_at: rfc3339_ms(ms),
            owner: "me".into(),
        }
    }

    #[test]
    fn state_keys_are_json_under_the_prefix_and_never_audit_logs() {
        let (_, ledger) = ledger();
        for key in [
            ledger.done_key("audit", "AWSLogs/x.gz"),
            ledger.cursor_key("audit", "AWSLogs/1/redshift/us-east-1/"),
            ledger.lease_key(),
            ledger.progress_key("audit", "AWSLogs/x.gz"),
            ledger.aside_key("audit", "AWSLogs/x.gz"),
            ledger.claim_key("audit", "AWSLogs/x.gz"),
        ] {
            assert!(key.starts_with("state/"), "{key}");
            assert!(key.ends_with(".json"), "{key}");
            assert!(crate::key::parse_file_name(&key).is_err(), "{key}");
        }
        // The separator keeps (bucket, key) pairs apart that concatenate alike.
        assert_ne!(
            ledger.done_key("audit", "x/y.gz"),
            ledger.done_key("auditx", "/y.gz")
        );
    }

    #[tokio::test]
    async fn done_marker_counts_only_for_the_same_etag() {
        let (_, ledger) = ledger();
        assert_eq!(
            ledger.done("audit", "AWSLogs/x.gz", E1).await.unwrap(),
            None
        );
        ledger.mark_done(&marker(E1)).await.unwrap();
        // Quoted (listing) and bare (S3 notification) spellings are the same ETag.
        assert!(ledger
            .done("audit", "AWSLogs/x.gz", E1.trim_matches('"'))
            .await
            .unwrap()
            .is_some());
        assert!(ledger
            .done("audit", "AWSLogs/x.gz", E1)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            ledger.done("audit", "AWSLogs/x.gz", E2).await.unwrap(),
            None,
            "an overwritten object is forwarded again"
        );
        assert_eq!(
            ledger.done("other", "AWSLogs/x.gz", E1).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn cursor_writes_are_conditional() {
        let (_, ledger) = ledger();
        let tree = TREE;
        assert!(ledger.cursor("audit", tree).await.unwrap().is_none());
        let e1 = ledger.save_cursor(&cursor(1000, "a"), None).await.unwrap();
        // A second creator loses.
        assert!(matches!(
            ledger.save_cursor(&cursor(1000, "b"), None).await,
            Err(StateError::Conflict { .. })
        ));
        let e2 = ledger
            .save_cursor(&cursor(2000, "b"), Some(&e1))
            .await
            .unwrap();
        // A walker still holding the old ETag was overtaken: it must stop.
        let stale = ledger.save_cursor(&cursor(3000, "c"), Some(&e1)).await;
        assert!(matches!(stale, Err(StateError::Conflict { .. })));
        assert!(!stale.unwrap_err().is_retryable());
        let now = ledger.cursor("audit", tree).await.unwrap().unwrap();
        assert_eq!(now.etag, e2);
        assert_eq!(now.value.position.unwrap().key, format!("{TREE}b"));
    }

    #[test]
    fn positions_order_by_time_then_key() {
        let p = |ms, key: &str| Position {
            last_modified_ms: ms,
            key: key.into(),
        };
        let mut all = vec![p(2000, "a"), p(1000, "z"), p(1000, "b"), p(1000, "c")];
        all.sort();
        assert_eq!(
            all,
            vec![p(1000, "b"), p(1000, "c"), p(1000, "z"), p(2000, "a")]
        );
    }

    #[test]
    fn lease_is_free_when_released_or_expired() {
        let lease = Lease {
            owner: "a".into(),
            acquired_at_ms: 0,
            expires_at_ms: 100,
            released: false,
        };
        assert!(!lease.is_free(99));
        assert!(lease.is_free(100));
        assert!(Lease {
            released: true,
            ..lease
        }
        .is_free(0));
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time_and_expired_leases_are_taken_over() {
        let (_, ledger) = ledger();
        let LeaseOutcome::Acquired(a) = ledger.acquire_lease("a", 0, 100).await.unwrap() else {
            panic!("the first walker gets the lease");
        };
        assert_eq!(a.took_over_from, None);
        assert_eq!(
            ledger.acquire_lease("b", 50, 150).await.unwrap(),
            LeaseOutcome::Held {
                owner: "a".into(),
                expires_at_ms: 100
            }
        );
        // a's lease ran out (it crashed): b takes over.
        let LeaseOutcome::Acquired(b) = ledger.acquire_lease("b", 100, 200).await.unwrap() else {
            panic!("an expired lease is taken over");
        };
        assert_eq!(b.took_over_from.as_deref(), Some("a"));
        // a wakes up: renewing fails, releasing is a no-op that leaves b's lease alone.
        let mut a = a;
        assert!(matches!(
            ledger.renew_lease(&mut a, 300).await,
            Err(StateError::Conflict { .. })
        ));
        ledger.release_lease(&a, 120).await.unwrap();
        assert!(matches!(
            ledger.acquire_lease("c", 120, 220).await.unwrap(),
            LeaseOutcome::Held { ref owner, .. } if owner == "b"
        ));
        // b renews and releases; c can take it at once, before the expiry.
        let mut b = b;
        ledger.renew_lease(&mut b, 500).await.unwrap();
        ledger.release_lease(&b, 130).await.unwrap();
        let LeaseOutcome::Acquired(c) = ledger.acquire_lease("c", 131, 231).await.unwrap() else {
            panic!("a released lease is free");
        };
        assert_eq!(
            c.took_over_from, None,
            "a released lease is not a take-over"
        );
    }

    #[tokio::test]
    async fn a_corrupt_state_object_is_reported_not_overwritten() {
        let (store, ledger) = ledger();
        store
            .put(
                &ledger.lease_key(),
                b"not json".to_vec(),
                Precondition::None,
            )
            .await
            .unwrap();
        let err = ledger.acquire_lease("a", 0, 100).await.unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("state/lease.json"), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
    }

    #[test]
    fn rfc3339_from_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_709_254_380_123), "2024-03-01T00:53:00.123Z");
    }
}
