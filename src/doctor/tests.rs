//! The doctor against in-memory fakes: a healthy deployment passes every check; each broken
//! part fails or warns on its own check, with a fix.

use std::sync::{Arc, Mutex};

use super::state::probe_state;
use super::*;
use crate::events::{parse_invocation, Filter, Invocation};
use crate::ports::memory::{ManualClock, MemoryBucket, MemoryStore};
use crate::ports::ObjectRef;
use crate::ports::{
    BoxFuture, BucketFacts, Identity, Inspect, InspectError, NotificationTarget, Notifications,
    StreamFacts,
};

const LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";
/// 2024-03-01T12:00:00Z.
const NOW: i64 = 1_709_294_400_000;
const POLICY: &str = r#"{"Statement": [{"Effect": "Allow",
    "Principal": {"Service": "redshift.amazonaws.com"},
    "Action": ["s3:PutObject", "s3:GetBucketAcl"],
    "Resource": ["arn:aws:s3:::audit/*", "arn:aws:s3:::audit"]}]}"#;

/// What the fake answers; each test breaks one part.
#[derive(Clone)]
struct World {
    bucket: Result<BucketFacts, InspectError>,
    policy: Result<Option<String>, InspectError>,
    notifications: Notifications,
    stream: Result<StreamFacts, InspectError>,
}

impl Default for World {
    fn default() -> World {
        World {
            bucket: Ok(BucketFacts {
                region: "us-east-1".into(),
                owner_matches: None,
            }),
            policy: Ok(Some(POLICY.into())),
            notifications: Notifications {
                eventbridge: true,
                targets: Vec::new(),
            },
            stream: Ok(StreamFacts {
                status: "ACTIVE".into(),
                stream_type: "DirectPut".into(),
                destination: "S3 arn:aws:s3:::dest".into(),
            }),
        }
    }
}

struct Fake(Mutex<World>);

impl Inspect for Fake {
    fn caller_identity(&self) -> BoxFuture<'_, Result<Identity, InspectError>> {
        Box::pin(async {
            Ok(Identity {
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:role/forwarder".into(),
            })
        })
    }
    fn bucket<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BucketFacts, InspectError>> {
        let r = self.0.lock().unwrap().bucket.clone();
        Box::pin(async move { r })
    }
    fn bucket_policy<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, InspectError>> {
        let r = self.0.lock().unwrap().policy.clone();
        Box::pin(async move { r })
    }
    fn bucket_notifications<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Notifications, InspectError>> {
        let r = self.0.lock().unwrap().notifications.clone();
        Box::pin(async move { Ok(r) })
    }
    fn stream<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<StreamFacts, InspectError>> {
        let r = self.0.lock().unwrap().stream.clone();
        Box::pin(async move { r })
    }
}

fn settings(vars: &[(&str, &str)]) -> Settings {
    let mut all: std::collections::BTreeMap<String, String> = [
        ("DELIVERY_STREAM", "stream"),
        ("AUDIT_BUCKET", "audit"),
        ("AUDIT_PREFIX", PREFIX),
        ("STATE_BUCKET", "state"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        all.insert(k.to_string(), v.to_string());
    }
    Settings::from_vars(|n| all.get(n).cloned()).unwrap()
}

fn key(log_type: &str, time: &str) -> String {
    format!(
        "{PREFIX}/2024/03/01/123456789012_redshift_us-east-1_prod_{log_type}_2024-03-01T{time}.gz"
    )
}

/// A bucket with one fresh file of each type.
fn healthy_bucket() -> MemoryBucket {
    let bucket = MemoryBucket::new(Arc::new(ManualClock::new(NOW)));
    for log_type in ["connectionlog", "userlog"] {
        bucket.put(&key(log_type, "11:00"), &format!("{LINE}\n{LINE}\n"), NOW);
    }
    bucket.put(
        &key("useractivitylog", "11:00"),
        "'2024-03-01T10:59:00Z UTC [ db=dev user=a pid=1 userid=1 xid=2 ]' LOG: select 1;\n",
        NOW,
    );
    bucket
}

async fn run(world: World, settings: Settings, bucket: MemoryBucket, state: bool) -> Report {
    let store = state.then(|| Arc::new(MemoryStore::default()));
    run_with_store(world, settings, bucket, store).await
}

async fn run_with_store(
    world: World,
    settings: Settings,
    bucket: MemoryBucket,
    store: Option<Arc<MemoryStore>>,
) -> Report {
    let bucket = Arc::new(bucket);
    let doctor = Doctor {
        settings,
        inspect: Arc::new(Fake(Mutex::new(world))),
        list: bucket.clone(),
        state: store.map(|s| s as Arc<dyn StateStore>),
        clock: Arc::new(ManualClock::new(NOW)),
        setup_problems: Vec::new(),
        queue: None,
        queue_age: None,
        lake: None,
    };
    doctor.run(&SharedFetch(bucket)).await
}

struct SharedFetch(Arc<MemoryBucket>);
impl Fetch for SharedFetch {
    async fn fetch(
        &self,
        object: &ObjectRef,
    ) -> Result<crate::ports::Fetched, crate::ports::FetchError> {
        self.0.fetch(object).await
    }
}

fn status(report: &Report, name: &str) -> Status {
    report.check(name).unwrap().status
}

#[tokio::test]
async fn a_healthy_deployment_passes_every_check() {
    let report = run(World::default(), settings(&[]), healthy_bucket(), true).await;
    assert!(report.ok, "{}", report.text());
    assert_eq!(report.checks.len(), 9);
    for check in &report.checks {
        assert_eq!(check.status, Status::Ok, "{}", report.text());
        assert!(check.fix.is_none());
    }
    let sample = report.check("sample").unwrap();
    assert!(sample.detail.contains("records"), "{}", sample.detail);
    assert_eq!(
        report.check("set_aside").unwrap().detail,
        "no object is set aside"
    );
    let text = report.text();
    assert_eq!(text.lines().count(), 9);
    assert!(text.starts_with("1. settings"), "{text}");
}

#[tokio::test]
async fn the_state_probe_round_trips_and_is_overwritten_on_the_next_run() {
    let store = MemoryStore::default();
    for _ in 0..2 {
        assert!(probe_state(&store, "p/doctor/probe.json", NOW)
            .await
            .is_ok());
    }
    let all = store.snapshot();
    assert_eq!(all.len(), 1, "one probe object, overwritten");
    assert!(String::from_utf8_lossy(&all[0].1).contains("overwritten"));
}

#[tokio::test]
async fn an_empty_prefix_fails_the_files_check_and_skips_the_sample() {
    let bucket = MemoryBucket::new(Arc::new(ManualClock::new(NOW)));
    let report = run(World::default(), settings(&[]), bucket, true).await;
    assert!(!report.ok);
    let files = report.check("audit_files").unwrap();
    assert_eq!(files.status, Status::Failed, "{}", report.text());
    assert!(files.fix.as_deref().unwrap().contains("AUDIT_PREFIX"));
    assert_eq!(status(&report, "sample"), Status::Skipped);
}

#[tokio::test]
async fn only_other_log_types_fail_the_files_check_naming_them() {
    let report = run(
        World::default(),
        settings(&[("LOG_TYPES", "useractivitylog")]),
        {
            let b = MemoryBucket::new(Arc::new(ManualClock::new(NOW)));
            b.put(&key("connectionlog", "11:00"), LINE, NOW);
            b
        },
        true,
    )
    .await;
    let files = report.check("audit_files").unwrap();
    assert_eq!(files.status, Status::Failed, "{}", report.text());
    assert!(
        files.detail.contains("only connectionlog"),
        "{}",
        files.detail
    );
    assert!(files
        .fix
        .as_deref()
        .unwrap()
        .contains("enable_user_activity_logging"));
}

#[tokio::test]
async fn a_stale_newest_file_warns() {
    let bucket = MemoryBucket::new(Arc::new(ManualClock::new(NOW)));
    bucket.put(&key("connectionlog", "07:00"), LINE, NOW);
    let report = run(
        World::default(),
        settings(&[("LOG_TYPES", "connectionlog")]),
        bucket,
        true,
    )
    .await;
    let files = report.check("audit_files").unwrap();
    assert_eq!(files.status, Status::Warning, "{}", report.text());
    assert!(files.detail.contains("5 h 0 min old"), "{}", files.detail);
    assert!(report.ok, "a warning is not a failure");
}

#[tokio::test]
async fn each_broken_part_fails_or_warns_on_its_own_check() {
    let cases: Vec<(&str, Status, World)> = vec![
        (
            "audit_bucket",
            Status::Failed,
            World {
                bucket: Err(InspectError::NotFound("NoSuchBucket".into())),
                ..World::default()
            },
        ),
        (
            "audit_bucket",
            Status::Failed,
            World {
                bucket: Ok(BucketFacts {
                    region: "us-east-1".into(),
                    owner_matches: Some(false),
                }),
                ..World::default()
            },
        ),
        (
            "bucket_policy",
            Status::Warning,
            World {
                policy: Ok(Some(r#"{"Statement": []}"#.into())),
                ..World::default()
            },
        ),
        (
            "bucket_policy",
            Status::Warning,
            World {
                policy: Ok(None),
                ..World::default()
            },
        ),
        (
            "trigger",
            Status::Warning,
            World {
                notifications: Notifications::default(),
                ..World::default()
            },
        ),
        (
            "stream",
            Status::Failed,
            World {
                stream: Err(InspectError::NotFound("ResourceNotFoundException".into())),
                ..World::default()
            },
        ),
        (
            "stream",
            Status::Failed,
            World {
                stream: Ok(StreamFacts {
                    status: "ACTIVE".into(),
                    stream_type: "KinesisStreamAsSource".into(),
                    destination: "S3".into(),
                }),
                ..World::default()
            },
        ),
    ];
    for (name, want, world) in cases {
        let report = run(world, settings(&[]), healthy_bucket(), true).await;
        let check = report.check(name).unwrap();
        assert_eq!(check.status, want, "{}", report.text());
        assert!(check.fix.as_ref().is_some_and(|f| !f.is_empty()));
        let others_ok = report
            .checks
            .iter()
            .filter(|c| c.name != name)
            .all(|c| c.status == Status::Ok || c.status == Status::Skipped);
        assert!(others_ok, "only {name} is broken:\n{}", report.text());
        assert_eq!(report.ok, want != Status::Failed);
    }
}

#[tokio::test]
async fn a_notification_for_the_prefix_and_gz_counts_as_a_trigger() {
    let world = World {
        notifications: Notifications {
            eventbridge: false,
            targets: vec![NotificationTarget {
                kind: "lambda".into(),
                arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
                events: vec!["s3:ObjectCreated:*".into()],
                prefix: Some(format!("{PREFIX}/")),
                suffix: Some(".gz".into()),
            }],
        },
        ..World::default()
    };
    let report = run(world, settings(&[]), healthy_bucket(), true).await;
    assert_eq!(status(&report, "trigger"), Status::Ok, "{}", report.text());
}

#[tokio::test]
async fn state_in_the_audit_bucket_is_a_warning_with_its_fix() {
    let shared = run(
        World::default(),
        settings(&[("STATE_BUCKET", "audit")]),
        healthy_bucket(),
        true,
    )
    .await;
    assert_eq!(
        status(&shared, "state"),
        Status::Warning,
        "{}",
        shared.text()
    );
    assert!(
        shared.text().contains("bucket of its own"),
        "{}",
        shared.text()
    );
    let own = run(World::default(), settings(&[]), healthy_bucket(), true).await;
    assert_eq!(status(&own, "state"), Status::Ok, "{}", own.text());
}

#[tokio::test]
async fn no_state_store_fails_the_state_check() {
    let report = run(World::default(), settings(&[]), healthy_bucket(), false).await;
    assert_eq!(status(&report, "state"), Status::Failed);
    assert!(!report.ok);
}

#[test]
fn invalid_settings_fail_check_one_with_every_problem_and_skip_the_rest() {
    let err = Settings::from_vars(|n| (n == "METRICS").then(|| "maybe".to_string())).unwrap_err();
    let report = report_for_invalid_settings(&err);
    assert!(!report.ok);
    assert_eq!(report.checks[0].status, Status::Failed);
    assert!(report.checks[0].detail.contains("DELIVERY_STREAM"));
    assert!(report.checks[0].detail.contains("METRICS"));
    assert!(report.checks[1..]
        .iter()
        .all(|c| c.status == Status::Skipped));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checks"][0]["status"], "failed");
}

#[test]
fn the_doctor_event_is_an_empty_object_and_nothing_else() {
    let filter = Filter::default();
    let ok = parse_invocation(&serde_json::json!({"doctor": {}}), &filter).unwrap();
    assert_eq!(ok, Invocation::Doctor);
    for bad in [
        serde_json::json!({"doctor": {"fix": true}}),
        serde_json::json!({"doctor": {}, "backfill": {}}),
        serde_json::json!({"doctor": 1}),
    ] {
        assert!(parse_invocation(&bad, &filter).is_err(), "{bad}");
    }
}

#[test]
fn ages_read_as_people_say_them() {
    assert_eq!(age_text(42), "42 s");
    assert_eq!(age_text(17 * 60), "17 min");
    assert_eq!(age_text(5 * 3600 + 180), "5 h 3 min");
    assert_eq!(age_text(3 * 86_400 + 4 * 3600), "3 d 4 h");
}

/// The doctor on a healthy deployment whose state store is `store`.
async fn healthy_with_state(store: Arc<MemoryStore>) -> Report {
    run_with_store(
        World::default(),
        settings(&[]),
        healthy_bucket(),
        Some(store),
    )
    .await
}

fn aside(key: &str, etag: &str, attempts: u32, last_error: &str) -> crate::ledger::SetAside {
    crate::ledger::SetAside {
        bucket: "audit".into(),
        key: key.into(),
        etag: etag.into(),
        attempts,
        last_error: last_error.into(),
        retryable: attempts > 1,
        set_aside_at: crate::time::rfc3339_ms(NOW - 3_600_000),
        via: "backfill".into(),
    }
}

#[tokio::test]
async fn set_aside_objects_are_listed_with_their_last_error_and_a_warning() {
    let store = Arc::new(MemoryStore::default());
    let ledger = crate::ledger::Ledger::new(store.clone(), "redshift-audit-forwarder/")
        .with_clock(Arc::new(ManualClock::new(NOW)));
    let poison = key("connectionlog", "10:00");
    let foreign = key("userlog", "09:00");
    let recovered = key("useractivitylog", "08:00");
    ledger
        .mark_set_aside(&aside(
            &poison,
            &"1".repeat(32),
            5,
            "Firehose refused every record: InvalidArgument",
        ))
        .await
        .unwrap();
    ledger
        .mark_set_aside(&aside(
            &foreign,
            &"2".repeat(32),
            1,
            "not a Redshift audit log: line 1",
        ))
        .await
        .unwrap();
    ledger
        .mark_set_aside(&aside(&recovered, &"3".repeat(32), 5, "throttled"))
        .await
        .unwrap();
    // A retry went through since: done, so no longer waiting.
    ledger
        .mark_done(&crate::ledger::DoneMarker {
            bucket: "audit".into(),
            key: recovered.clone(),
            etag: "3".repeat(32),
            records: 1,
            done_at: crate::time::rfc3339_ms(NOW - 60_000),
            via: "backfill".into(),
        })
        .await
        .unwrap();

    let report = healthy_with_state(store).await;
    let check = report.check("set_aside").unwrap();
    assert_eq!(check.number, 9);
    assert_eq!(check.status, Status::Warning, "{}", report.text());
    assert!(report.ok, "a warning does not fail the doctor");
    assert!(
        check.detail.starts_with("2 object(s) set aside"),
        "{}",
        check.detail
    );
    assert!(
        check
            .detail
            .contains(&format!("s3://audit/{poison} (5 failed attempt(s)")),
        "{}",
        check.detail
    );
    assert!(check.detail.contains("InvalidArgument"), "{}", check.detail);
    assert!(
        check.detail.contains("not a Redshift audit log"),
        "{}",
        check.detail
    );
    assert!(!check.detail.contains(&recovered), "{}", check.detail);
    assert!(check.fix.as_deref().unwrap().contains("--retry-set-aside"));
    let keys: Vec<&str> = check.objects.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&poison.as_str()) && keys.contains(&foreign.as_str()));
    // `--json` carries the records themselves.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["checks"][8]["objects"].as_array().unwrap().len(), 2);
    assert!(json["checks"][7].get("objects").is_none());
}

#[tokio::test]
async fn a_forged_set_aside_record_is_named_as_refused() {
    let store = Arc::new(MemoryStore::default());
    let ledger = crate::ledger::Ledger::new(store.clone(), "redshift-audit-forwarder/");
    let forged_key = ledger.aside_key("audit", &key("connectionlog", "10:00"));
    store
        .put(
            &forged_key,
            b"{not json".to_vec(),
            crate::ports::Precondition::None,
        )
        .await
        .unwrap();
    let report = healthy_with_state(store).await;
    let check = report.check("set_aside").unwrap();
    assert_eq!(check.status, Status::Warning, "{}", report.text());
    assert!(
        check.detail.contains("1 record(s) refused"),
        "{}",
        check.detail
    );
    assert!(check.detail.contains(&forged_key), "{}", check.detail);
    assert!(check.objects.is_empty());
}

#[tokio::test]
async fn without_a_usable_state_store_the_set_aside_check_is_skipped() {
    let report = run(World::default(), settings(&[]), healthy_bucket(), false).await;
    assert_eq!(status(&report, "set_aside"), Status::Skipped);
}

/// A state store holding `objects` (key under the ledger's prefix, body) as written by hand.
async fn store_with(objects: &[(String, Vec<u8>)]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::default());
    for (key, body) in objects {
        store
            .put(key, body.clone(), crate::ports::Precondition::None)
            .await
            .unwrap();
    }
    store
}

fn state_ledger(store: &Arc<MemoryStore>) -> crate::ledger::Ledger {
    crate::ledger::Ledger::new(store.clone(), "redshift-audit-forwarder/")
        .with_clock(Arc::new(ManualClock::new(NOW)))
}

#[tokio::test]
async fn a_cursor_the_backfill_would_refuse_fails_the_state_check_naming_it_and_the_fix() {
    let ledger = state_ledger(&Arc::new(MemoryStore::default()));
    let cursor_key = ledger.cursor_key("audit", &format!("{PREFIX}/"));
    let store = store_with(&[(cursor_key.clone(), b"{not json".to_vec())]).await;
    let report = healthy_with_state(store).await;
    let check = report.check("state").unwrap();
    assert_eq!(check.status, Status::Failed, "{}", report.text());
    assert!(!report.ok);
    assert!(check.detail.contains(&cursor_key), "{}", check.detail);
    assert!(
        check.detail.contains("BackfillStateRefused"),
        "{}",
        check.detail
    );
    let fix = check.fix.as_deref().unwrap_or_default();
    assert!(fix.contains(&cursor_key), "{fix}");
    assert!(fix.contains("roll it back"), "{fix}");
}

#[tokio::test]
async fn a_lease_held_past_any_walk_fails_the_state_check() {
    let ledger = state_ledger(&Arc::new(MemoryStore::default()));
    let lease = format!(
        r#"{{"v":1,"owner":"forger","acquired_at_ms":{NOW},"expires_at_ms":{},"released":false}}"#,
        NOW + 30 * 86_400_000
    );
    let store = store_with(&[(ledger.lease_key(), lease.into_bytes())]).await;
    let report = healthy_with_state(store).await;
    let check = report.check("state").unwrap();
    assert_eq!(check.status, Status::Failed, "{}", report.text());
    assert!(check.detail.contains("lease.json"), "{}", check.detail);
    // The set-aside check still runs: the store itself works.
    assert_eq!(status(&report, "set_aside"), Status::Ok);
}

#[tokio::test]
async fn a_cursor_and_lease_the_walk_wrote_leave_the_state_check_ok() {
    let store = Arc::new(MemoryStore::default());
    let ledger = state_ledger(&store);
    let tree = format!("{PREFIX}/");
    let day = NOW.div_euclid(86_400_000);
    let cursor = crate::ledger::Cursor {
        bucket: "audit".into(),
        prefix: tree.clone(),
        position: Some(crate::ledger::Position {
            last_modified_ms: NOW - 60_000,
            key: format!("{tree}2024/03/01/x.gz"),
        }),
        last_modified: Some(crate::time::rfc3339_ms(NOW - 60_000)),
        resume_day: day,
        resume_date: "2024-03-01".into(),
        updated_at: crate::time::rfc3339_ms(NOW),
        owner: "walker".into(),
    };
    ledger.save_cursor(&cursor, None).await.unwrap();
    let held = ledger
        .acquire_lease("walker", NOW, NOW + 60_000)
        .await
        .unwrap();
    assert!(matches!(held, crate::ledger::LeaseOutcome::Acquired(_)));
    let report = healthy_with_state(store).await;
    assert_eq!(status(&report, "state"), Status::Ok, "{}", report.text());
}
