//! Progress within an object and objects set aside: the two state objects that let an object
//! of any size finish across invocations, and keep one that never will from being retried
//! forever.
//!
//! | object | key | written |
//! |---|---|---|
//! | progress | `<prefix>progress/<32 hex of xxh3-128(bucket \0 key)>.json` | while an object is sent, at most once per [`PROGRESS_EVERY_BYTES`] of accepted payload (or [`PROGRESS_EVERY_MS`] and [`PROGRESS_MIN_BYTES`]); when sending stops at a deadline; after a failed attempt (with the attempt counted) |
//! | set aside | `<prefix>aside/<same hash>.json` | when an object failed [`MAX_ATTEMPTS`](crate::settings) times, or once with an error no retry can fix |
//!
//! A progress record says how many NDJSON lines of one version (ETag) of the object, rendered
//! in one output (`raw`/`ocsf`, masked or not), were accepted: always a prefix, so the next
//! attempt parses that many lines again and sends none of them. A record for another ETag or
//! another output counts as absent. The done marker supersedes it: it is read only when no
//! marker matches, so it is never deleted (the function has no `s3:DeleteObject`); a lifecycle
//! rule on `progress/` may expire old ones.
//!
//! A set-aside record holds the object's last error; a record for another ETag counts as
//! absent (an overwritten object starts afresh), and a done marker for the same ETag wins over
//! it (a retried object that went through).
//!
//! Both are checked like the others ([`super::check`]); a corrupt one counts as absent: the
//! object is sent from its start (duplicates, not loss) or tried again. A forged progress
//! record can make the function skip lines, as a forged done marker skips a whole object: the
//! state bucket of its own is the protection against both.

use serde::{Deserialize, Serialize};

use super::{check, encode, normalize_etag, pair_hash, Ledger};
use crate::ports::{Precondition, StateError};

/// Folder of the progress records under the state prefix.
const PROGRESS_DIR: &str = "progress/";
/// Folder of the set-aside records under the state prefix.
const ASIDE_DIR: &str = "aside/";

/// Accepted payload between two progress writes: a 1 GB object's ~4 GB of NDJSON costs about
/// 400 writes (one PUT per ~2 s at Firehose's default 5 MiB/s), and a retry resends at most the
/// calls in flight because the deadline and failures save progress too.
pub const PROGRESS_EVERY_BYTES: u64 = 10 * 1024 * 1024;

/// Longest time between two progress writes while lines are being accepted (slow streams),
/// once at least [`PROGRESS_MIN_BYTES`] more were accepted.
pub const PROGRESS_EVERY_MS: i64 = 60_000;

/// Accepted payload below which no progress is written before the object ends: a retry of so
/// little costs less than the writes.
pub const PROGRESS_MIN_BYTES: u64 = 1024 * 1024;

/// Most set-aside records listed (`backfill --dry-run`) or retried (`--retry-set-aside`) in one
/// run.
pub const MAX_LISTED_ASIDE: usize = 1_000;

/// What refusing a progress record means, for its error.
const PROGRESS_REFUSED: &str = "it counts as absent: the object is sent from its first line";
/// What refusing a set-aside record means, for its error.
const ASIDE_REFUSED: &str = "it counts as absent: the object is tried again";

/// How far one version of an object got, and how often it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub bucket: String,
    pub key: String,
    /// The version the lines belong to, without quotes.
    pub etag: String,
    /// NDJSON lines of the object accepted by the sink: a prefix of its lines.
    pub lines: u64,
    /// Their bytes, newlines included.
    pub payload_bytes: u64,
    /// The output the lines were rendered in: `raw` or `ocsf`, `+unmasked` without redaction.
    pub output: String,
    /// Attempts that failed (a stop at the deadline is not one).
    pub attempts: u32,
    /// The last failure, when there was one.
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// An object the function stopped trying: failed too often, or in a way no retry fixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: String,
    /// Whether that error could go away by itself (the attempts ran out) or not (set aside at
    /// once).
    pub retryable: bool,
    pub set_aside_at: String,
    /// `live` or `backfill`: the path that set it aside.
    pub via: String,
}

impl Ledger {
    /// Key of the progress record of `s3://bucket/key`.
    pub fn progress_key(&self, bucket: &str, key: &str) -> String {
        format!(
            "{}{PROGRESS_DIR}{}.json",
            self.prefix,
            pair_hash(bucket, key)
        )
    }

    /// Key of the set-aside record of `s3://bucket/key`.
    pub fn aside_key(&self, bucket: &str, key: &str) -> String {
        format!("{}{ASIDE_DIR}{}.json", self.prefix, pair_hash(bucket, key))
    }

    /// The progress of this very version (`etag`) of `s3://bucket/key`; one for another ETag
    /// is `None`. A refused record is [`StateError::Corrupt`]: the caller logs it and starts
    /// from the first line.
    pub async fn progress(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<Progress>, StateError> {
        let progress_key = self.progress_key(bucket, key);
        let Some(stored) = self.store.get(&progress_key).await? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let progress = check::decode::<Progress>(&stored.body)
            .and_then(|p| check::check_progress(&p, bucket, key, now).map(|()| p))
            .map_err(|reason| self.refused(&progress_key, reason, PROGRESS_REFUSED))?;
        let same = normalize_etag(&progress.etag) == normalize_etag(etag);
        Ok(same.then_some(progress))
    }

    /// Saves the progress record (last writer wins: one object is sent by one invocation at a
    /// time, and a stale writer at worst makes the next attempt resend more).
    pub async fn save_progress(&self, progress: &Progress) -> Result<(), StateError> {
        let key = self.progress_key(&progress.bucket, &progress.key);
        let mut progress = progress.clone();
        progress.etag = normalize_etag(&progress.etag).to_string();
        self.store
            .put(&key, encode(&progress), Precondition::None)
            .await
            .map(|_| ())
    }

    /// The set-aside record of this version of `s3://bucket/key`, if any.
    pub async fn set_aside(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<SetAside>, StateError> {
        let aside_key = self.aside_key(bucket, key);
        let Some(stored) = self.store.get(&aside_key).await? else {
            return Ok(None);
        };
        let aside = self.read_aside(&aside_key, &stored.body, Some((bucket, key)))?;
        let same = normalize_etag(&aside.etag) == normalize_etag(etag);
        Ok(same.then_some(aside))
    }

    /// Records that the object is set aside.
    pub async fn mark_set_aside(&self, aside: &SetAside) -> Result<(), StateError> {
        let key = self.aside_key(&aside.bucket, &aside.key);
        let mut aside = aside.clone();
        aside.etag = normalize_etag(&aside.etag).to_string();
        self.store
            .put(&key, encode(&aside), Precondition::None)
            .await
            .map(|_| ())
    }

    /// Every set-aside record (at most [`MAX_LISTED_ASIDE`]), in key order; each one that is
    /// refused is its error. Records of objects done since (a retry went through) are included:
    /// the caller checks the done marker.
    pub async fn list_set_aside(&self) -> Result<Vec<Result<SetAside, StateError>>, StateError> {
        let folder = format!("{}{ASIDE_DIR}", self.prefix);
        let keys = self.store.list(&folder, MAX_LISTED_ASIDE).await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(stored) = self.store.get(&key).await? else {
                continue;
            };
            out.push(self.read_aside(&key, &stored.body, None));
        }
        Ok(out)
    }

    /// A set-aside record as stored at `aside_key`, checked; `expected` is the object it must
    /// name (listing: the one its key hashes).
    fn read_aside(
        &self,
        aside_key: &str,
        body: &[u8],
        expected: Option<(&str, &str)>,
    ) -> Result<SetAside, StateError> {
        let now = self.clock.now_ms();
        check::decode::<SetAside>(body)
            .and_then(|a| {
                let (bucket, key) = expected.unwrap_or((&a.bucket, &a.key));
                if self.aside_key(bucket, key) != aside_key {
                    return Err(format!(
                        "it names s3://{}/{}, whose record is not this key",
                        a.bucket, a.key
                    ));
                }
                check::check_aside(&a, bucket, key, now).map(|()| a)
            })
            .map_err(|reason| self.refused(aside_key, reason, ASIDE_REFUSED))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ports::memory::MemoryStore;
    use crate::ports::StateStore;

    const E1: &str = "\"9b2cf535f27731c974343645a3985328\"";
    const E2: &str = "d41d8cd98f00b204e9800998ecf8427e";

    fn ledger() -> (Arc<MemoryStore>, Ledger) {
        let store = Arc::new(MemoryStore::default());
        (store.clone(), Ledger::new(store, "state"))
    }

    fn progress(etag: &str, lines: u64) -> Progress {
        Progress {
            bucket: "audit".into(),
            key: "AWSLogs/x.gz".into(),
            etag: etag.into(),
            lines,
            payload_bytes: lines * 100,
            output: "raw".into(),
            attempts: 1,
            last_error: Some("reset".into()),
            updated_at: "2024-03-01T00:00:00.000Z".into(),
        }
    }

    fn aside(key: &str) -> SetAside {
        SetAside {
            bucket: "audit".into(),
            key: key.into(),
            etag: E2.into(),
            attempts: 5,
            last_error: "gzip: unexpected end of file".into(),
            retryable: true,
            set_aside_at: "2024-03-01T00:00:00.000Z".into(),
            via: "backfill".into(),
        }
    }

    #[tokio::test]
    async fn progress_counts_only_for_the_same_etag() {
        let (_, ledger) = ledger();
        assert_eq!(
            ledger.progress("audit", "AWSLogs/x.gz", E1).await.unwrap(),
            None
        );
        ledger.save_progress(&progress(E1, 700)).await.unwrap();
        let read = ledger
            .progress("audit", "AWSLogs/x.gz", E1.trim_matches('"'))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.lines, 700);
        assert_eq!(read.etag, E1.trim_matches('"'), "stored without quotes");
        assert_eq!(
            ledger.progress("audit", "AWSLogs/x.gz", E2).await.unwrap(),
            None,
            "an overwritten object starts from its first line"
        );
    }

    #[tokio::test]
    async fn a_corrupt_or_foreign_progress_record_is_refused_naming_its_key() {
        let (store, ledger) = ledger();
        let key = ledger.progress_key("audit", "AWSLogs/x.gz");
        store
            .put(&key, b"{\"v\":1,\"lines\":".to_vec(), Precondition::None)
            .await
            .unwrap();
        let err = ledger
            .progress("audit", "AWSLogs/x.gz", E1)
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(&key), "{err}");
        // Another object's record copied over this one.
        let mut other = progress(E1, 3);
        other.key = "AWSLogs/y.gz".into();
        store
            .put(&key, encode(&other), Precondition::None)
            .await
            .unwrap();
        let err = ledger
            .progress("audit", "AWSLogs/x.gz", E1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AWSLogs/y.gz"), "{err}");
    }

    #[tokio::test]
    async fn set_aside_records_are_found_by_object_and_listed() {
        let (_, ledger) = ledger();
        assert!(ledger.list_set_aside().await.unwrap().is_empty());
        ledger.mark_set_aside(&aside("AWSLogs/a.gz")).await.unwrap();
        ledger.mark_set_aside(&aside("AWSLogs/b.gz")).await.unwrap();
        let found = ledger
            .set_aside("audit", "AWSLogs/a.gz", E2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.attempts, 5);
        assert_eq!(
            ledger.set_aside("audit", "AWSLogs/a.gz", E1).await.unwrap(),
            None,
            "another version of the object is not set aside"
        );
        let mut listed: Vec<String> = ledger
            .list_set_aside()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.unwrap().key)
            .collect();
        listed.sort();
        assert_eq!(listed, ["AWSLogs/a.gz", "AWSLogs/b.gz"]);
    }

    #[tokio::test]
    async fn a_set_aside_record_under_another_objects_key_is_refused() {
        let (store, ledger) = ledger();
        let key = ledger.aside_key("audit", "AWSLogs/a.gz");
        store
            .put(&key, encode(&aside("AWSLogs/b.gz")), Precondition::None)
            .await
            .unwrap();
        let listed = ledger.list_set_aside().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(matches!(listed[0], Err(StateError::Corrupt { .. })));
    }
}
