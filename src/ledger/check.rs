//! What a state object may hold: the schema version every object carries, and the values the
//! function itself could have written. Anything else is refused with a reason; the ledger adds
//! the key and what to do about it.
//!
//! Why: by default the state lives in the audit bucket, so whoever can write there could steer
//! the function (a lease that never expires, a cursor in the future, a resume day that wraps the
//! day arithmetic). These checks turn such objects into loud failures. They cannot tell a
//! well-formed forgery from the real thing (a done marker for the object's current ETag, a lease
//! rewritten every few minutes): a state bucket of its own that the log writers cannot write
//! (the template's `StateBucket`) is the fix for that.
//!
//! | object | refused when |
//! |---|---|
//! | any | larger than [`MAX_STATE_BYTES`], not a JSON object, `v` other than [`SCHEMA_VERSION`] (missing `v`: written before versions, read as 1 when the fields fit), a field missing or of the wrong type |
//! | done marker | it names another bucket or key, its `etag` is not an S3 ETag, `via` is not `live` or `backfill`, `done_at` is not RFC 3339, before 2012 or after now plus [`CLOCK_SKEW_MS`] |
//! | cursor | it names another bucket or tree, its resume day is before [`EARLIEST_DAY`] or after tomorrow, its position is last modified before 2012 or after now plus the skew, or its key is not under the tree |
//! | progress | it names another bucket or key, its `etag` is not an S3 ETag, `output` is not one the function writes, fewer payload bytes than lines, more than [`MAX_RECORDED_ATTEMPTS`] attempts, an error longer than [`MAX_ERROR_BYTES`], `updated_at` not RFC 3339, before 2012 or in the future |
//! | set aside | as progress, and no attempt counted unless the error was final, `via` neither `live` nor `backfill` |
//! | claim | it names another bucket or key, its `etag` is not an S3 ETag, no holder, claimed before 2012 or after now plus the skew, expiring before it was claimed or more than [`MAX_CLAIM_MS`](super::claim::MAX_CLAIM_MS) plus the skew from now |
//! | lease | no owner, acquired after now plus the skew, expiring more than [`MAX_LEASE_MS`] plus the skew from now, or held (not expired, not released) for more than [`MAX_LEASE_HOLD_MS`] |

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::claim::{Claim, MAX_CLAIM_MS};
use super::{normalize_etag, Cursor, DoneMarker, Lease, Progress, SetAside};
use crate::time::{day_label, day_of, parse_rfc3339_ms, rfc3339_ms, MS_PER_DAY};

/// The `v` every state object is written with.
pub const SCHEMA_VERSION: u64 = 1;

/// How far another writer's clock may run ahead of ours (S3 stamps, other walkers' hosts).
pub const CLOCK_SKEW_MS: i64 = 15 * 60_000;

/// The longest a lease can run from its last write: the backfill's `LEASE_TTL_MS` plus
/// `LEASE_SLACK_MS` (the backfill asserts that at compile time).
pub const MAX_LEASE_MS: i64 = 17 * 60_000;

/// The longest one walker holds the lease. A Lambda walk ends within 15 minutes; only a
/// `backfill` run by hand without `--max-duration` renews it for longer, and a day of that is
/// unusual enough to alarm on: the scheduled runs report the lease as a failure meanwhile.
pub const MAX_LEASE_HOLD_MS: i64 = 24 * 3_600_000;

/// 2012-01-01 as days since 1970-01-01: no Redshift audit log is older (the service launched in
/// 2013), so no walk starts before it and no cursor points before it.
pub const EARLIEST_DAY: i64 = 15_340;

pub use crate::ports::MAX_STATE_BYTES;

/// S3 keys are at most 1,024 bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Longest lease owner: `host/pid/time/counter`, with the host a Lambda log stream name.
pub const MAX_OWNER_BYTES: usize = 512;

/// Parts of a multipart upload: at most 10,000.
const MAX_PARTS: u32 = 10_000;

/// Most failed attempts a record may count: `MAX_ATTEMPTS` is at most 100, and
/// `--retry-set-aside` adds one a run.
pub const MAX_RECORDED_ATTEMPTS: u32 = 100_000;

/// Longest error message a record keeps (the function truncates longer ones).
pub const MAX_ERROR_BYTES: usize = 4096;

/// The outputs a progress record may name.
const OUTPUTS: [&str; 4] = ["raw", "ocsf", "raw+unmasked", "ocsf+unmasked"];

/// The first instant a state object may name.
const EARLIEST_MS: i64 = EARLIEST_DAY * MS_PER_DAY;

/// `value` as JSON with `"v": 1` first.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct Stamped<'a, T> {
        v: u64,
        #[serde(flatten)]
        value: &'a T,
    }
    // Serializing these plain structs cannot fail; an empty body would fail to decode loudly.
    serde_json::to_vec(&Stamped {
        v: SCHEMA_VERSION,
        value,
    })
    .unwrap_or_default()
}

/// A state object of schema version 1 (or of none: written before versions). Unknown fields
/// are ignored: a later minor addition keeps `v` 1 and older readers working.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.len() > MAX_STATE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_STATE_BYTES} a state object may have",
            body.len()
        ));
    }
    let mut value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let Some(fields) = value.as_object_mut() else {
        return Err("not a JSON object".into());
    };
    match fields.remove("v") {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "schema version {other}, which this version does not know (it reads \
                 {SCHEMA_VERSION}, and objects without one)"
            ))
        }
    }
    T::deserialize(value).map_err(|e| e.to_string())
}

/// Whether `etag` has the shape S3 gives: 32 hex digits, `-N` after them for a multipart
/// upload, in quotes or not.
pub fn is_etag(etag: &str) -> bool {
    let bare = normalize_etag(etag);
    let (digest, parts) = match bare.split_once('-') {
        Some((digest, parts)) => (digest, Some(parts)),
        None => (bare, None),
    };
    let parts_ok = parts.is_none_or(|p| {
        !p.starts_with('0')
            && p.len() <= 5
            && p.parse::<u32>().is_ok_and(|n| (1..=MAX_PARTS).contains(&n))
    });
    digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()) && parts_ok
}

/// A done marker read for `s3://bucket/key`.
pub fn check_marker(m: &DoneMarker, bucket: &str, key: &str, now_ms: i64) -> Result<(), String> {
    if m.bucket != bucket || m.key != key {
        return Err(format!(
            "it names s3://{}/{}, not s3://{bucket}/{key}",
            m.bucket, m.key
        ));
    }
    if !is_etag(&m.etag) {
        return Err(format!(
            "etag {:?} is not an S3 ETag (32 hex digits, then -N for a multipart upload)",
            m.etag
        ));
    }
    if m.via != "live" && m.via != "backfill" {
        return Err(format!(
            "via {:?} is neither \"live\" nor \"backfill\"",
            m.via
        ));
    }
    let done_ms = parse_rfc3339_ms(&m.done_at)
        .map_err(|e| format!("done_at {:?} is not an RFC 3339 time: {e}", m.done_at))?;
    instant_in_range("done_at", done_ms, now_ms)
}

/// A progress record read for `s3://bucket/key`.
pub fn check_progress(p: &Progress, bucket: &str, key: &str, now_ms: i64) -> Result<(), String> {
    names_object(&p.bucket, &p.key, &p.etag, bucket, key)?;
    if !OUTPUTS.contains(&p.output.as_str()) {
        return Err(format!(
            "output {:?} is none the function writes ({})",
            truncated(&p.output),
            OUTPUTS.join(", ")
        ));
    }
    if p.payload_bytes < p.lines {
        return Err(format!(
            "{} lines cannot take {} bytes (each has a newline)",
            p.lines, p.payload_bytes
        ));
    }
    attempts_in_range(p.attempts, p.last_error.as_deref().unwrap_or(""))?;
    let updated = parse_rfc3339_ms(&p.updated_at)
        .map_err(|e| format!("updated_at {:?} is not an RFC 3339 time: {e}", p.updated_at))?;
    instant_in_range("updated_at", updated, now_ms)
}

/// A set-aside record read for `s3://bucket/key`.
pub fn check_aside(a: &SetAside, bucket: &str, key: &str, now_ms: i64) -> Result<(), String> {
    names_object(&a.bucket, &a.key, &a.etag, bucket, key)?;
    attempts_in_range(a.attempts, &a.last_error)?;
    if a.attempts == 0 && a.retryable {
        return Err("set aside without a failed attempt, yet for an error worth retrying".into());
    }
    if a.via != "live" && a.via != "backfill" {
        return Err(format!(
            "via {:?} is neither \"live\" nor \"backfill\"",
            truncated(&a.via)
        ));
    }
    let at = parse_rfc3339_ms(&a.set_aside_at).map_err(|e| {
        format!(
            "set_aside_at {:?} is not an RFC 3339 time: {e}",
            a.set_aside_at
        )
    })?;
    instant_in_range("set_aside_at", at, now_ms)
}

/// The object a record names, and its ETag's shape.
fn names_object(
    has_bucket: &str,
    has_key: &str,
    etag: &str,
    bucket: &str,
    key: &str,
) -> Result<(), String> {
    if has_bucket != bucket || has_key != key {
        return Err(format!(
            "it names s3://{has_bucket}/{}, not s3://{bucket}/{key}",
            truncated(has_key)
        ));
    }
    if !is_etag(etag) {
        return Err(format!(
            "etag {:?} is not an S3 ETag (32 hex digits, then -N for a multipart upload)",
            truncated(etag)
        ));
    }
    Ok(())
}

fn attempts_in_range(attempts: u32, error: &str) -> Result<(), String> {
    if attempts > MAX_RECORDED_ATTEMPTS {
        return Err(format!(
            "{attempts} attempts, more than the {MAX_RECORDED_ATTEMPTS} any record counts"
        ));
    }
    if error.len() > MAX_ERROR_BYTES {
        return Err(format!(
            "an error of {} bytes, more than the {MAX_ERROR_BYTES} the function keeps",
            error.len()
        ));
    }
    Ok(())
}

/// A cursor read for the tree `tree` of `bucket`.
pub fn check_cursor(c: &Cursor, bucket: &str, tree: &str, now_ms: i64) -> Result<(), String> {
    if c.bucket != bucket || c.prefix != tree {
        return Err(format!(
            "it belongs to s3://{}/{}, not s3://{bucket}/{tree}",
            c.bucket, c.prefix
        ));
    }
    let tomorrow = day_of(now_ms).saturating_add(1);
    if !(EARLIEST_DAY..=tomorrow).contains(&c.resume_day) {
        return Err(format!(
            "resume_day {} ({}) is outside the days a walk covers ({} to {})",
            c.resume_day,
            day_label(c.resume_day),
            day_label(EARLIEST_DAY),
            day_label(tomorrow)
        ));
    }
    if let Some(p) = &c.position {
        instant_in_range("position.last_modified_ms", p.last_modified_ms, now_ms)?;
        if !p.key.starts_with(tree) || p.key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "position.key {:?} is not a key under the tree {tree:?}",
                truncated(&p.key)
            ));
        }
    }
    Ok(())
}

/// The lease as read at `now_ms`.
pub fn check_lease(l: &Lease, now_ms: i64) -> Result<(), String> {
    if l.owner.is_empty() || l.owner.len() > MAX_OWNER_BYTES {
        return Err(format!(
            "owner {:?} is not a walker's id",
            truncated(&l.owner)
        ));
    }
    if l.acquired_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
        return Err(format!(
            "acquired_at_ms {} ({}) is in the future (now {})",
            l.acquired_at_ms,
            rfc3339_ms(l.acquired_at_ms),
            rfc3339_ms(now_ms)
        ));
    }
    if l.expires_at_ms.saturating_sub(now_ms) > MAX_LEASE_MS + CLOCK_SKEW_MS {
        return Err(format!(
            "expires_at_ms {} ({}) is further from now ({}) than a lease ever runs ({} min)",
            l.expires_at_ms,
            rfc3339_ms(l.expires_at_ms),
            rfc3339_ms(now_ms),
            MAX_LEASE_MS / 60_000
        ));
    }
    if !l.is_free(now_ms) && now_ms.saturating_sub(l.acquired_at_ms) > MAX_LEASE_HOLD_MS {
        return Err(format!(
            "held by {:?} since {}, longer than any walk ({} h)",
            truncated(&l.owner),
            rfc3339_ms(l.acquired_at_ms),
            MAX_LEASE_HOLD_MS / 3_600_000
        ));
    }
    Ok(())
}

/// A claim read for `s3://bucket/key` at `now_ms`: a forged one must not block the object
/// longer than any invocation could.
pub fn check_claim(c: &Claim, bucket: &str, key: &str, now_ms: i64) -> Result<(), String> {
    names_object(&c.bucket, &c.key, &c.etag, bucket, key)?;
    if c.holder.is_empty() || c.holder.len() > MAX_OWNER_BYTES {
        return Err(format!(
            "holder {:?} is not an attempt's id",
            truncated(&c.holder)
        ));
    }
    instant_in_range("claimed_at_ms", c.claimed_at_ms, now_ms)?;
    if c.expires_at_ms < c.claimed_at_ms {
        return Err(format!(
            "expires_at_ms {} is before claimed_at_ms {}",
            c.expires_at_ms, c.claimed_at_ms
        ));
    }
    if c.expires_at_ms.saturating_sub(now_ms) > MAX_CLAIM_MS + CLOCK_SKEW_MS {
        return Err(format!(
            "expires_at_ms {} ({}) is further from now ({}) than a claim ever runs ({} min)",
            c.expires_at_ms,
            rfc3339_ms(c.expires_at_ms),
            rfc3339_ms(now_ms),
            MAX_CLAIM_MS / 60_000
        ));
    }
    Ok(())
}

/// An instant a state object names: not before 2012, not after now plus the skew.
pub fn instant_in_range(field: &str, ms: i64, now_ms: i64) -> Result<(), String> {
    if ms < EARLIEST_MS {
        return Err(format!(
            "{field} {ms} ({}) is before {}",
            rfc3339_ms(ms),
            day_label(EARLIEST_DAY)
        ));
    }
    if ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
        return Err(format!(
            "{field} {ms} ({}) is in the future (now {})",
            rfc3339_ms(ms),
            rfc3339_ms(now_ms)
        ));
    }
    Ok(())
}

/// The start of a long forged string, for messages.
fn truncated(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
