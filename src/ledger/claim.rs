//! Per-object claims: one invocation at a time sends a given object, so two that start it at
//! the same moment (the same S3 event in two SQS messages, a Batch Operations job over objects
//! the live path is forwarding, two backfill workers) do not both send it whole.
//!
//! | object | key | written |
//! |---|---|---|
//! | claim | `<prefix>claim/<same hash as the marker>.json` | before an object's first record is sent: `If-None-Match: *` to create, `If-Match` to take over one that is released, expired or refused; when the attempt ends: `If-Match` overwritten as released |
//!
//! A claim names its holder (unique per attempt) and when it expires: the invocation's
//! deadline plus [`CLAIM_MARGIN_MS`], so the object of a worker that crashed is picked up once
//! that time has passed, never later than [`MAX_CLAIM_MS`] after it was taken. The function has
//! no `s3:DeleteObject`: a claim is released by overwriting it, or simply expires.
//!
//! Exactly one of two racing writers wins a conditional write, so at most one holds a live
//! claim. The loser sees the object as busy: each path retries it later (see
//! `forward::ForwardError::Busy`). A claim is checked like all state ([`super::check`]); one
//! that is refused (forged, corrupt, expiring further away than any invocation runs) counts as
//! absent and is taken over, so it never blocks an object for ever.

use serde::{Deserialize, Serialize};

use super::held::{Holdable, Refused, Take};
use super::{check, normalize_etag, pair_hash, Ledger};
use crate::ports::StateError;

/// Folder of the claims under the state prefix.
const CLAIM_DIR: &str = "claim/";

/// Kept after the deadline before a claim expires: the calls in flight at the deadline finish
/// and the progress write lands before anyone else may start the object.
pub const CLAIM_MARGIN_MS: i64 = 60_000;

/// The longest a claim runs from when it was taken: a Lambda invocation's 15 minutes plus the
/// margin. Runs without a deadline (`invoke`, `backfill` by hand) claim for this long.
pub const MAX_CLAIM_MS: i64 = 15 * 60_000 + CLAIM_MARGIN_MS;

/// What refusing a claim means, for its error.
const CLAIM_REFUSED: &str = "it counts as absent: this invocation takes the object over";

/// One invocation sends the object until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub bucket: String,
    pub key: String,
    /// The version being sent, without quotes.
    pub etag: String,
    /// Unique per attempt: host, process, time, counter.
    pub holder: String,
    pub claimed_at_ms: i64,
    pub expires_at_ms: i64,
    /// Set by the holder when its attempt ended: free to take at once.
    pub released: bool,
}

impl Holdable for Claim {
    fn holder(&self) -> &str {
        &self.holder
    }
    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }
    fn released(&self) -> bool {
        self.released
    }
}

/// A claim this attempt holds, with the ETag its release must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub claim: Claim,
    pub etag: String,
    /// The holder of an expired claim taken over (it crashed or ran out of time).
    pub took_over_from: Option<String>,
    /// The refused claim taken over, naming its key: the caller logs it.
    pub refused: Option<String>,
}

/// What trying to claim an object gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Taken(HeldClaim),
    /// Another attempt is sending the object until `expires_at_ms` at the latest.
    Busy {
        holder: String,
        expires_at_ms: i64,
    },
}

/// A holder id unique to one attempt: host (the Lambda log stream), process, time, counter.
pub fn new_holder() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "local".into());
    let mut holder = format!(
        "{host}/{}/{:x}/{}",
        std::process::id(),
        crate::time::now_ms(),
        ATTEMPTS.fetch_add(1, Ordering::Relaxed)
    );
    // The check refuses longer holders; a log stream name is far shorter.
    holder.truncate(check::MAX_OWNER_BYTES);
    holder
}

impl Ledger {
    /// Key of the claim of `s3://bucket/key`.
    pub fn claim_key(&self, bucket: &str, key: &str) -> String {
        format!("{}{CLAIM_DIR}{}.json", self.prefix, pair_hash(bucket, key))
    }

    /// Claims `s3://bucket/key` (version `etag`) for `holder` until `expires_at_ms`: creates the
    /// claim, or takes over one that is released, expired or refused. A live claim of another
    /// holder, for any version (they share the progress record), is [`ClaimOutcome::Busy`]; so
    /// is losing the race to write it.
    pub async fn take_claim(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        holder: &str,
        expires_at_ms: i64,
    ) -> Result<ClaimOutcome, StateError> {
        let claim_key = self.claim_key(bucket, key);
        let now = self.clock.now_ms();
        let claim = Claim {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: normalize_etag(etag).to_string(),
            holder: holder.to_string(),
            claimed_at_ms: now,
            expires_at_ms: expires_at_ms.clamp(now, now + MAX_CLAIM_MS),
            released: false,
        };
        let read = |body: &[u8]| self.read_claim(&claim_key, body, bucket, key, now);
        Ok(
            match self
                .take_held(&claim_key, &claim, now, read, Refused::TakeOver)
                .await?
            {
                Take::Taken {
                    etag,
                    took_over_from,
                    refused,
                } => ClaimOutcome::Taken(HeldClaim {
                    claim,
                    etag,
                    took_over_from,
                    refused,
                }),
                Take::Busy {
                    holder,
                    expires_at_ms,
                } => ClaimOutcome::Busy {
                    holder,
                    expires_at_ms,
                },
            },
        )
    }

    /// Gives the claim up by overwriting it as released (`If-Match`). A conflict means it was
    /// taken over already (this attempt outlived its claim): nothing to release.
    pub async fn release_claim(&self, held: &HeldClaim) -> Result<(), StateError> {
        let mut claim = held.claim.clone();
        claim.released = true;
        claim.expires_at_ms = self.clock.now_ms().max(claim.claimed_at_ms);
        let key = self.claim_key(&claim.bucket, &claim.key);
        self.release_held(&key, &claim, &held.etag).await
    }

    /// A claim as stored at `claim_key` for `s3://bucket/key`, checked at `now_ms`.
    fn read_claim(
        &self,
        claim_key: &str,
        body: &[u8],
        bucket: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Claim, StateError> {
        check::decode::<Claim>(body)
            .and_then(|c| check::check_claim(&c, bucket, key, now_ms).map(|()| c))
            .map_err(|reason| self.refused(claim_key, reason, CLAIM_REFUSED))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ledger::encode;
    use crate::ports::memory::{ManualClock, MemoryStore};
    use crate::ports::{Precondition, StateStore};

    const E1: &str = "\"9b2cf535f27731c974343645a3985328\"";
    /// 2024-03-01T00:00:00Z.
    const MAR_1: i64 = 1_709_251_200_000;

    fn ledger() -> (Arc<MemoryStore>, Arc<ManualClock>, Ledger) {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::new(MAR_1));
        let ledger = Ledger::new(store.clone(), "state").with_clock(clock.clone());
        (store, clock, ledger)
    }

    async fn take(ledger: &Ledger, holder: &str, until: i64) -> ClaimOutcome {
        ledger
            .take_claim("audit", "AWSLogs/x.gz", E1, holder, until)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_released() {
        let (_, _, ledger) = ledger();
        let ClaimOutcome::Taken(a) = take(&ledger, "a", MAR_1 + 60_000).await else {
            panic!("the first attempt claims the object");
        };
        assert_eq!(a.claim.etag, E1.trim_matches('"'));
        assert_eq!(
            take(&ledger, "b", MAR_1 + 60_000).await,
            ClaimOutcome::Busy {
                holder: "a".into(),
                expires_at_ms: MAR_1 + 60_000
            }
        );
        ledger.release_claim(&a).await.unwrap();
        let ClaimOutcome::Taken(b) = take(&ledger, "b", MAR_1 + 60_000).await else {
            panic!("a released claim is free at once");
        };
        assert_eq!(b.took_over_from, None, "a release is not a take-over");
        // a, released already, cannot release b's claim.
        ledger.release_claim(&a).await.unwrap();
        assert!(
            matches!(take(&ledger, "c", MAR_1).await, ClaimOutcome::Busy { holder, .. } if holder == "b")
        );
    }

    #[tokio::test]
    async fn an_expired_claim_is_taken_over() {
        let (_, clock, ledger) = ledger();
        let ClaimOutcome::Taken(_) = take(&ledger, "crashed", MAR_1 + 1_000).await else {
            panic!("claimed");
        };
        clock.set(MAR_1 + 1_000);
        let ClaimOutcome::Taken(b) = take(&ledger, "b", MAR_1 + 61_000).await else {
            panic!("an expired claim is taken over");
        };
        assert_eq!(b.took_over_from.as_deref(), Some("crashed"));
    }

    #[tokio::test]
    async fn a_claim_never_runs_longer_than_an_invocation_plus_the_margin() {
        let (_, _, ledger) = ledger();
        let ClaimOutcome::Taken(a) = take(&ledger, "a", i64::MAX).await else {
            panic!("claimed");
        };
        assert_eq!(a.claim.expires_at_ms, MAR_1 + MAX_CLAIM_MS);
    }

    #[tokio::test]
    async fn a_forged_claim_is_refused_naming_its_key_and_taken_over() {
        let (store, _, ledger) = ledger();
        let key = ledger.claim_key("audit", "AWSLogs/x.gz");
        let forged = Claim {
            bucket: "audit".into(),
            key: "AWSLogs/x.gz".into(),
            etag: E1.trim_matches('"').into(),
            holder: "squatter".into(),
            claimed_at_ms: MAR_1,
            // A year: no invocation claims for that long.
            expires_at_ms: MAR_1 + 365 * 86_400_000,
            released: false,
        };
        for body in [encode(&forged), b"{\"v\":2}".to_vec()] {
            store.put(&key, body, Precondition::None).await.unwrap();
            let ClaimOutcome::Taken(held) = take(&ledger, "a", MAR_1 + 60_000).await else {
                panic!("a refused claim never blocks the object");
            };
            let refused = held.refused.expect("the refusal is reported");
            assert!(refused.contains(&key), "{refused}");
        }
    }
}
