//! Events are pinned to the audit bucket: an object of any other bucket is refused with one
//! WARN line naming the bucket, whatever the envelope.

use super::*;

fn pinned() -> Filter {
    Filter {
        allowed_buckets: vec![BUCKET.into(), "audit-eu".into()],
        ..Filter::default()
    }
}

/// The sample event with every bucket name replaced by `bucket`.
fn sample_in(name: &str, bucket: &str) -> Value {
    let text = sample(name).to_string().replace(BUCKET, bucket);
    serde_json::from_str(&text).expect("JSON")
}

fn all_objects(event: &Value, filter: &Filter) -> Vec<ObjectRef> {
    match parse_invocation(event, filter) {
        Ok(Invocation::Objects(objects)) => objects,
        Ok(Invocation::SqsBatch(messages)) => messages
            .into_iter()
            .flat_map(|m| m.objects.expect("well-formed message"))
            .collect(),
        other => panic!("expected objects, got {other:?}"),
    }
}

#[test]
fn objects_of_an_allowed_bucket_pass_in_every_envelope() {
    for name in ["s3-direct", "s3-sns", "s3-sqs", "s3-eventbridge"] {
        assert!(!all_objects(&sample(name), &pinned()).is_empty(), "{name}");
        assert!(
            !all_objects(&sample_in(name, "audit-eu"), &pinned()).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn objects_of_another_bucket_are_refused_in_every_envelope_with_a_warning_naming_it() {
    for name in ["s3-direct", "s3-sns", "s3-sqs", "s3-eventbridge"] {
        let event = sample_in(name, "attacker-bucket");
        let mut got = None;
        let logs = capture_logs(|| got = Some(all_objects(&event, &pinned())));
        assert_eq!(got, Some(vec![]), "{name}");
        assert!(logs.contains("WARN"), "{name}: {logs}");
        assert!(logs.contains("attacker-bucket"), "{name}: {logs}");
        assert!(
            logs.contains("is not AUDIT_BUCKET nor in ALLOWED_BUCKETS"),
            "{name}: {logs}"
        );
        assert_eq!(
            logs.lines()
                .filter(|l| l.contains("attacker-bucket"))
                .count(),
            all_objects(&sample(name), &pinned()).len(),
            "one line per object: {logs}"
        );
    }
}

#[test]
fn an_eventbridge_key_that_looks_encoded_is_refused_for_its_bucket_first() {
    let mut event = sample_in("s3-eventbridge", "attacker-bucket");
    let key = event["detail"]["object"]["key"]
        .as_str()
        .unwrap()
        .replace(':', "%3A");
    event["detail"]["object"]["key"] = json!(key);
    assert_eq!(all_objects(&event, &pinned()), vec![]);
}

#[test]
fn without_audit_bucket_any_bucket_is_accepted() {
    let event = sample_in("s3-direct", "any-bucket");
    let got = all_objects(&event, &Filter::default());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bucket, "any-bucket");
    assert_eq!(Filter::default().allows_bucket("x"), Ok(()));
    assert_eq!(
        pinned().allows_bucket("audit-bucket-2"),
        Err(Skip::ForeignBucket {
            bucket: "audit-bucket-2".into()
        })
    );
}
