//! Every refused value, the objects the previous version wrote (no `v`), and what the ledger
//! makes of a refusal.

use std::sync::Arc;

use super::*;
use crate::ledger::{Cursor, DoneMarker, Lease, LeaseOutcome, Ledger, Position};
use crate::ports::memory::{ManualClock, MemoryStore};
use crate::ports::{Precondition, StateError, StateStore};

/// 2024-03-01T00:00:00Z, "now" in these tests.
const NOW: i64 = 1_709_251_200_000;
const TODAY: i64 = 19_783;
const MINUTE: i64 = 60_000;
const DAY: i64 = MS_PER_DAY;
const ETAG: &str = "9b2cf535f27731c974343645a3985328";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1/";
const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/123456789012_redshift_us-east-1_c_connectionlog_2024-03-01T00:53.gz";

fn marker() -> DoneMarker {
    DoneMarker {
        bucket: "audit".into(),
        key: KEY.into(),
        etag: ETAG.into(),
        done_at: "2024-02-29T23:59:00.000Z".into(),
        records: 3,
        via: "live".into(),
    }
}

fn cursor() -> Cursor {
    Cursor {
        bucket: "audit".into(),
        prefix: TREE.into(),
        position: Some(Position {
            last_modified_ms: NOW - 10 * MINUTE,
            key: KEY.into(),
        }),
        last_modified: Some(rfc3339_ms(NOW - 10 * MINUTE)),
        resume_day: TODAY,
        resume_date: day_label(TODAY),
        updated_at: rfc3339_ms(NOW),
        owner: "me".into(),
    }
}

fn lease() -> Lease {
    Lease {
        owner: "host/1/18e0/0".into(),
        acquired_at_ms: NOW - MINUTE,
        expires_at_ms: NOW + 15 * MINUTE,
        released: false,
    }
}

fn refused_marker(m: DoneMarker, says: &str) {
    let err = check_marker(&m, "audit", KEY, NOW).expect_err("refused");
    assert!(err.contains(says), "{err}");
}

fn refused_cursor(c: Cursor, says: &str) {
    let err = check_cursor(&c, "audit", TREE, NOW).expect_err("refused");
    assert!(err.contains(says), "{err}");
}

fn refused_lease(l: Lease, says: &str) {
    let err = check_lease(&l, NOW).expect_err("refused");
    assert!(err.contains(says), "{err}");
}

// --- versions and shapes -----------------------------------------------------------------------

#[test]
fn every_object_is_written_with_schema_version_1_first() {
    for body in [encode(&marker()), encode(&cursor()), encode(&lease())] {
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.starts_with("{\"v\":1,"), "{text}");
    }
    assert_eq!(decode::<DoneMarker>(&encode(&marker())).unwrap(), marker());
    assert_eq!(decode::<Cursor>(&encode(&cursor())).unwrap(), cursor());
    assert_eq!(decode::<Lease>(&encode(&lease())).unwrap(), lease());
}

#[test]
fn objects_of_the_previous_version_without_v_are_read_as_version_1() {
    // Word for word what the version before schema versions wrote.
    let old_marker = format!(
        r#"{{"bucket":"audit","key":"{KEY}","etag":"{ETAG}","done_at":"2024-02-29T23:59:00.000Z","records":3,"via":"backfill"}}"#
    );
    let m: DoneMarker = decode(old_marker.as_bytes()).unwrap();
    assert_eq!(m.via, "backfill");
    check_marker(&m, "audit", KEY, NOW).unwrap();
    let old_cursor = format!(
        r#"{{"bucket":"audit","prefix":"{TREE}","position":{{"last_modified_ms":{},"key":"{KEY}"}},"last_modified":"x","resume_day":{TODAY},"resume_date":"2024-03-01","updated_at":"x","owner":"me"}}"#,
        NOW - MINUTE
    );
    let c: Cursor = decode(old_cursor.as_bytes()).unwrap();
    check_cursor(&c, "audit", TREE, NOW).unwrap();
    let old_lease = format!(
        r#"{{"owner":"o","acquired_at_ms":{},"expires_at_ms":{},"released":true}}"#,
        NOW - DAY,
        NOW - DAY + MINUTE
    );
    let l: Lease = decode(old_lease.as_bytes()).unwrap();
    check_lease(&l, NOW).unwrap();
    // A cursor of a tree never walked to the end has no position.
    let no_position = format!(
        r#"{{"bucket":"audit","prefix":"{TREE}","position":null,"last_modified":null,"resume_day":{TODAY},"resume_date":"2024-03-01","updated_at":"x","owner":"me"}}"#
    );
    let c: Cursor = decode(no_position.as_bytes()).unwrap();
    assert_eq!(c.position, None);
}

#[test]
fn unknown_schema_versions_are_refused() {
    let body = String::from_utf8(encode(&lease())).unwrap();
    for v in ["2", "0", "\"1\"", "1.0", "-1", "null", "true"] {
        let forged = body.replacen("\"v\":1", &format!("\"v\":{v}"), 1);
        let err = decode::<Lease>(forged.as_bytes()).unwrap_err();
        assert!(err.contains("schema version"), "{v}: {err}");
    }
}

#[test]
fn bodies_that_are_not_a_state_object_are_refused() {
    for (body, says) in [
        (b"not json".to_vec(), "not JSON"),
        (Vec::new(), "not JSON"),
        (b"[1, 2]".to_vec(), "not a JSON object"),
        (b"{\"v\":1}".to_vec(), "missing field"),
        (
            b"{\"owner\":\"o\",\"acquired_at_ms\":\"soon\",\"expires_at_ms\":1,\"released\":false}"
                .to_vec(),
            "invalid type",
        ),
        (vec![b' '; MAX_STATE_BYTES + 1], "more than"),
    ] {
        let err = decode::<Lease>(&body).unwrap_err();
        assert!(err.contains(says), "{says}: {err}");
    }
}

// --- done markers ------------------------------------------------------------------------------

#[test]
fn a_plausible_marker_is_accepted() {
    check_marker(&marker(), "audit", KEY, NOW).unwrap();
    let multipart = DoneMarker {
        etag: format!("\"{ETAG}-12\""),
        via: "backfill".into(),
        ..marker()
    };
    check_marker(&multipart, "audit", KEY, NOW).unwrap();
}

#[test]
fn a_marker_naming_another_bucket_or_key_is_refused() {
    refused_marker(
        DoneMarker {
            bucket: "other".into(),
            ..marker()
        },
        "names s3://other/",
    );
    refused_marker(
        DoneMarker {
            key: format!("{KEY}.old"),
            ..marker()
        },
        "not s3://audit/",
    );
}

#[test]
fn a_marker_whose_etag_is_not_an_etag_is_refused() {
    for etag in [
        "",
        "\"\"",
        "e1",
        "anything",
        "9b2cf535f27731c974343645a398532",
        "9b2cf535f27731c974343645a39853281",
        "9b2cf535f27731c974343645a398532g",
        "9b2cf535f27731c974343645a3985328-",
        "9b2cf535f27731c974343645a3985328-0",
        "9b2cf535f27731c974343645a3985328-01",
        "9b2cf535f27731c974343645a3985328-10001",
        "9b2cf535f27731c974343645a3985328-1-2",
        "9b2cf535f27731c974343645a3985328 ",
    ] {
        refused_marker(
            DoneMarker {
                etag: etag.into(),
                ..marker()
            },
            "not an S3 ETag",
        );
    }
    for etag in [
        ETAG,
        "\"9B2CF535F27731C974343645A3985328\"",
        "W/\"9b2cf535f27731c974343645a3985328\"",
        "9b2cf535f27731c974343645a3985328-1",
        "9b2cf535f27731c974343645a3985328-10000",
    ] {
        assert!(is_etag(etag), "{etag}");
    }
}

#[test]
fn a_marker_done_in_the_future_or_before_2012_or_by_no_known_path_is_refused() {
    let at = |ms: i64| DoneMarker {
        done_at: rfc3339_ms(ms),
        ..marker()
    };
    check_marker(&at(NOW + CLOCK_SKEW_MS), "audit", KEY, NOW).unwrap();
    refused_marker(at(NOW + CLOCK_SKEW_MS + 1000), "in the future");
    refused_marker(at(EARLIEST_DAY * DAY - 1000), "before 2012-01-01");
    refused_marker(
        DoneMarker {
            done_at: "yesterday".into(),
            ..marker()
        },
        "not an RFC 3339 time",
    );
    refused_marker(
        DoneMarker {
            via: "attacker".into(),
            ..marker()
        },
        "neither",
    );
}

// --- cursors -----------------------------------------------------------------------------------

#[test]
fn a_plausible_cursor_is_accepted_up_to_tomorrow_and_back_to_2012() {
    check_cursor(&cursor(), "audit", TREE, NOW).unwrap();
    for day in [EARLIEST_DAY, TODAY + 1] {
        let c = Cursor {
            resume_day: day,
            ..cursor()
        };
        check_cursor(&c, "audit", TREE, NOW).unwrap();
    }
}

#[test]
fn a_resume_day_outside_the_walked_range_is_refused_without_wrapping() {
    for day in [i64::MIN, -1, 0, EARLIEST_DAY - 1, TODAY + 2, i64::MAX] {
        refused_cursor(
            Cursor {
                resume_day: day,
                ..cursor()
            },
            &format!("resume_day {day} "),
        );
    }
}

#[test]
fn a_cursor_position_in_the_future_or_before_2012_is_refused() {
    let at = |ms: i64| Cursor {
        position: Some(Position {
            last_modified_ms: ms,
            key: KEY.into(),
        }),
        ..cursor()
    };
    check_cursor(&at(NOW + CLOCK_SKEW_MS), "audit", TREE, NOW).unwrap();
    refused_cursor(at(NOW + CLOCK_SKEW_MS + 1), "in the future");
    refused_cursor(at(NOW + 365 * DAY), "in the future");
    refused_cursor(at(i64::MAX), "in the future");
    refused_cursor(at(i64::MIN), "before 2012-01-01");
    refused_cursor(at(0), "before 2012-01-01");
}

#[test]
fn a_cursor_of_another_bucket_or_tree_or_a_position_outside_the_tree_is_refused() {
    refused_cursor(
        Cursor {
            bucket: "other".into(),
            ..cursor()
        },
        "belongs to s3://other/",
    );
    refused_cursor(
        Cursor {
            prefix: "AWSLogs/1/redshift/eu-west-1/".into(),
            ..cursor()
        },
        "belongs to",
    );
    refused_cursor(
        Cursor {
            position: Some(Position {
                last_modified_ms: NOW,
                key: "AWSLogs/999999999999/redshift/us-east-1/x.gz".into(),
            }),
            ..cursor()
        },
        "not a key under the tree",
    );
    refused_cursor(
        Cursor {
            position: Some(Position {
                last_modified_ms: NOW,
                key: format!("{TREE}{}", "x".repeat(1024)),
            }),
            ..cursor()
        },
        "not a key under the tree",
    );
}

// --- leases ------------------------------------------------------------------------------------

#[test]
fn a_plausible_lease_is_accepted_held_or_free() {
    check_lease(&lease(), NOW).unwrap();
    // At the longest: taken at now + skew by a clock ahead of ours.
    check_lease(
        &Lease {
            acquired_at_ms: NOW + CLOCK_SKEW_MS,
            expires_at_ms: NOW + CLOCK_SKEW_MS + MAX_LEASE_MS,
            ..lease()
        },
        NOW,
    )
    .unwrap();
    // Taken long ago and released, or expired: free, and nothing odd.
    for l in [
        Lease {
            acquired_at_ms: NOW - 30 * DAY,
            expires_at_ms: NOW - 30 * DAY + MINUTE,
            released: true,
            ..lease()
        },
        Lease {
            acquired_at_ms: NOW - 30 * DAY,
            expires_at_ms: NOW - 29 * DAY,
            released: false,
            ..lease()
        },
    ] {
        check_lease(&l, NOW).unwrap();
    }
}

#[test]
fn a_lease_expiring_further_away_than_a_lease_runs_is_refused() {
    for expires in [
        NOW + MAX_LEASE_MS + CLOCK_SKEW_MS + 1,
        NOW + DAY,
        // The year 292,278,994.
        i64::MAX,
    ] {
        refused_lease(
            Lease {
                expires_at_ms: expires,
                ..lease()
            },
            "further from now",
        );
    }
    // Released does not make it plausible: the function writes expiry = release time.
    refused_lease(
        Lease {
            expires_at_ms: i64::MAX,
            released: true,
            ..lease()
        },
        "further from now",
    );
}

#[test]
fn a_lease_acquired_in_the_future_is_refused() {
    refused_lease(
        Lease {
            acquired_at_ms: NOW + CLOCK_SKEW_MS + 1,
            ..lease()
        },
        "in the future",
    );
    refused_lease(
        Lease {
            acquired_at_ms: i64::MAX,
            ..lease()
        },
        "in the future",
    );
}

#[test]
fn a_lease_held_by_one_owner_longer_than_any_walk_is_refused() {
    // Renewed again and again (expiry near), but taken more than a day ago.
    refused_lease(
        Lease {
            acquired_at_ms: NOW - MAX_LEASE_HOLD_MS - 1,
            ..lease()
        },
        "longer than any walk",
    );
    refused_lease(
        Lease {
            acquired_at_ms: i64::MIN,
            ..lease()
        },
        "longer than any walk",
    );
    check_lease(
        &Lease {
            acquired_at_ms: NOW - MAX_LEASE_HOLD_MS,
            ..lease()
        },
        NOW,
    )
    .unwrap();
}

#[test]
fn a_lease_without_an_owner_is_refused() {
    refused_lease(
        Lease {
            owner: String::new(),
            ..lease()
        },
        "owner",
    );
}

// --- through the ledger ------------------------------------------------------------------------

fn ledger() -> (Arc<MemoryStore>, Ledger) {
    let store = Arc::new(MemoryStore::default());
    let ledger = Ledger::new(store.clone(), "state").with_clock(Arc::new(ManualClock::new(NOW)));
    (store, ledger)
}

async fn put(store: &MemoryStore, key: &str, body: &[u8]) {
    store
        .put(key, body.to_vec(), Precondition::None)
        .await
        .unwrap();
}

fn corrupt(err: StateError, key: &str, says: &[&str]) {
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("memory://{key}")), "{text}");
    for s in says {
        assert!(text.contains(s), "{s}: {text}");
    }
}

#[tokio::test]
async fn a_corrupt_or_forged_done_marker_is_an_error_naming_its_key_that_says_it_counts_as_absent()
{
    let (store, ledger) = ledger();
    let key = ledger.done_key("audit", KEY);
    for (body, says) in [
        (b"{\"bucket\": \"aud".to_vec(), "not JSON"),
        (
            encode(&DoneMarker {
                etag: "forged".into(),
                ..marker()
            }),
            "not an S3 ETag",
        ),
        (
            encode(&DoneMarker {
                bucket: "elsewhere".into(),
                ..marker()
            }),
            "names s3://elsewhere/",
        ),
    ] {
        put(&store, &key, &body).await;
        let err = ledger.done("audit", KEY, ETAG).await.unwrap_err();
        corrupt(err, &key, &[says, "counts as absent"]);
    }
    // The marker written after the object is sent again replaces it.
    ledger.mark_done(&marker()).await.unwrap();
    assert!(ledger.done("audit", KEY, ETAG).await.unwrap().is_some());
    // An old marker without `v` still counts.
    let old = format!(
        r#"{{"bucket":"audit","key":"{KEY}","etag":"{ETAG}","done_at":"2024-02-29T23:59:00.000Z","records":3,"via":"live"}}"#
    );
    put(&store, &key, old.as_bytes()).await;
    assert!(ledger.done("audit", KEY, ETAG).await.unwrap().is_some());
}

#[tokio::test]
async fn a_refused_cursor_is_an_error_naming_its_key_and_the_repair() {
    let (store, ledger) = ledger();
    let key = ledger.cursor_key("audit", TREE);
    for (body, says) in [
        (b"\x1f\x8b garbage".to_vec(), "not JSON"),
        (
            encode(&Cursor {
                resume_day: i64::MIN,
                ..cursor()
            }),
            "resume_day -9223372036854775808",
        ),
        (
            encode(&Cursor {
                position: Some(Position {
                    last_modified_ms: NOW + 400 * DAY,
                    key: KEY.into(),
                }),
                ..cursor()
            }),
            "in the future",
        ),
    ] {
        put(&store, &key, &body).await;
        let err = ledger.cursor("audit", TREE).await.unwrap_err();
        corrupt(err, &key, &[says, "delete it"]);
    }
}

#[tokio::test]
async fn a_forged_lease_is_an_error_naming_its_key_not_a_lease_held() {
    let (store, ledger) = ledger();
    let key = ledger.lease_key();
    for (forged, says) in [
        (
            Lease {
                expires_at_ms: i64::MAX,
                ..lease()
            },
            "further from now",
        ),
        (
            Lease {
                acquired_at_ms: NOW - 2 * DAY,
                ..lease()
            },
            "longer than any walk",
        ),
    ] {
        put(&store, &key, &encode(&forged)).await;
        let err = ledger
            .acquire_lease("walker", NOW, NOW + 16 * MINUTE)
            .await
            .unwrap_err();
        corrupt(err, &key, &[says, "delete it once no backfill is running"]);
    }
    // A plausible lease of another walker is held, as before.
    put(&store, &key, &encode(&lease())).await;
    assert!(matches!(
        ledger
            .acquire_lease("walker", NOW, NOW + 16 * MINUTE)
            .await
            .unwrap(),
        LeaseOutcome::Held { .. }
    ));
}
