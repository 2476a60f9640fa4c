//! S3 Batch Operations invocations: both schemas read into tasks, tasks refused for what no
//! retry fixes, malformed invocations refused as a whole, and the answer's shape.

use super::*;

fn batch_sample(name: &str) -> Value {
    let text = match name {
        "1.0" => include_str!("../../../events/s3-batch-ops-1.0.json"),
        "2.0" => include_str!("../../../events/s3-batch-ops-2.0.json"),
        other => panic!("no sample {other}"),
    };
    serde_json::from_str(text).expect("sample is JSON")
}

fn pinned() -> Filter {
    Filter {
        allowed_buckets: vec![BUCKET.into()],
        ..Filter::default()
    }
}

fn job(event: &Value) -> BatchJob {
    match parse_invocation(event, &pinned()) {
        Ok(Invocation::BatchJob(job)) => job,
        other => panic!("expected a Batch Operations job, got {other:?}"),
    }
}

fn refusal(event: &Value) -> String {
    let job = job(event);
    match &job.tasks[0].object {
        Err(refusal) => refusal.to_string(),
        Ok(object) => panic!("expected a refusal, got {object:?}"),
    }
}

#[test]
fn schema_1_0_task_names_the_bucket_of_its_arn_and_the_decoded_key() {
    let job = job(&batch_sample("1.0"));
    assert_eq!(job.schema_version, "1.0");
    assert_eq!(
        job.invocation_id,
        "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo"
    );
    assert_eq!(
        job.job_id.as_deref(),
        Some("f3cc4f60-61f6-4a2b-8a21-d07600c373ce")
    );
    assert_eq!(job.tasks.len(), 1);
    assert_eq!(job.tasks[0].task_id, "dGFza2lkZ29lc2hlcmUK");
    let object = job.tasks[0].object.as_ref().expect("a good task");
    assert_eq!(object.bucket, BUCKET);
    assert_eq!(object.key, full(CONN));
    assert_eq!(object.alternate_key, None);
    assert_eq!(object.version_id, None);
}

#[test]
fn schema_2_0_task_names_its_bucket_and_carries_the_user_arguments() {
    let job = job(&batch_sample("2.0"));
    assert_eq!(job.schema_version, "2.0");
    assert_eq!(job.user_arguments["note"], "history backfill");
    let object = job.tasks[0].object.as_ref().expect("a good task");
    assert_eq!(object.bucket, BUCKET);
    assert_eq!(object.key, full(USER));
}

#[test]
fn schema_2_0_encoded_key_is_decoded_with_the_key_as_given_as_alternate() {
    let mut event = batch_sample("2.0");
    let encoded = full(USER).replace(':', "%3A");
    event["tasks"][0]["s3Key"] = json!(encoded);
    let job = job(&event);
    let object = job.tasks[0].object.as_ref().expect("a good task");
    assert_eq!(object.key, full(USER));
    assert_eq!(object.alternate_key.as_deref(), Some(encoded.as_str()));
}

#[test]
fn version_id_is_carried_to_the_fetch() {
    let mut event = batch_sample("1.0");
    event["tasks"][0]["s3VersionId"] = json!("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd");
    let job = job(&event);
    let object = job.tasks[0].object.as_ref().expect("a good task");
    assert_eq!(
        object.version_id.as_deref(),
        Some("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
    );
}

#[test]
fn task_of_a_bucket_not_allowed_is_refused_without_fetching() {
    let mut event = batch_sample("1.0");
    event["tasks"][0]["s3BucketArn"] = json!("arn:aws:s3:::someone-elses-bucket");
    let text = refusal(&event);
    assert!(text.contains("someone-elses-bucket"), "{text}");
    assert!(text.contains("ALLOWED_BUCKETS"), "{text}");
    let mut event = batch_sample("2.0");
    event["tasks"][0]["s3Bucket"] = json!("someone-elses-bucket");
    assert!(refusal(&event).contains("not AUDIT_BUCKET"));
}

#[test]
fn task_whose_key_is_not_an_audit_log_is_refused() {
    let mut event = batch_sample("2.0");
    event["tasks"][0]["s3Key"] = json!(format!("{DAY}notes.txt"));
    let text = refusal(&event);
    assert!(text.contains("not a Redshift audit log"), "{text}");
}

#[test]
fn task_whose_arn_is_not_a_bucket_arn_is_refused_naming_the_field() {
    let mut event = batch_sample("1.0");
    event["tasks"][0]["s3BucketArn"] = json!("arn:aws:sqs:us-east-1:123456789012:queue");
    let text = refusal(&event);
    assert!(text.contains("tasks[0].s3BucketArn"), "{text}");
}

#[test]
fn task_with_a_bad_escape_is_refused_naming_the_field() {
    let mut event = batch_sample("1.0");
    event["tasks"][0]["s3Key"] = json!(format!("{DAY}x%ZZ.gz"));
    assert!(refusal(&event).contains("tasks[0].s3Key"));
}

#[test]
fn invocation_without_an_id_or_with_another_schema_fails_as_a_whole() {
    let mut event = batch_sample("1.0");
    event.as_object_mut().unwrap().remove("invocationId");
    assert!(parse_invocation(&event, &pinned())
        .unwrap_err()
        .to_string()
        .contains("invocationId missing"));
    let mut event = batch_sample("1.0");
    event["invocationSchemaVersion"] = json!("3.0");
    let text = parse_invocation(&event, &pinned()).unwrap_err().to_string();
    assert!(text.contains("invocationSchemaVersion"), "{text}");
    let mut event = batch_sample("2.0");
    event["tasks"][0].as_object_mut().unwrap().remove("taskId");
    let text = parse_invocation(&event, &pinned()).unwrap_err().to_string();
    assert!(text.contains("tasks[0].taskId missing"), "{text}");
}

#[test]
fn answer_repeats_the_invocation_and_gives_one_result_per_task_in_order() {
    let job = job(&batch_sample("2.0"));
    let results = vec![
        TaskResult {
            task_id: "a".into(),
            code: ResultCode::Succeeded,
            text: "forwarded 3 records".into(),
        },
        TaskResult {
            task_id: "b".into(),
            code: ResultCode::TemporaryFailure,
            text: "throttled".into(),
        },
    ];
    let answer = batch_job_answer(&job, &results);
    assert_eq!(answer["invocationSchemaVersion"], "2.0");
    assert_eq!(answer["invocationId"], json!(job.invocation_id));
    assert_eq!(answer["treatMissingKeysAs"], "TemporaryFailure");
    assert_eq!(answer["results"][0]["taskId"], "a");
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded");
    assert_eq!(answer["results"][1]["resultCode"], "TemporaryFailure");
    assert_eq!(answer["results"][1]["resultString"], "throttled");
}

#[test]
fn result_string_is_masked_and_bounded() {
    let text = format!(
        "s3://b/k: line 3: CREATE USER bob PASSWORD 'hunter2secret' {}",
        "é".repeat(2000)
    );
    let out = result_string(&text);
    assert!(!out.contains("hunter2secret"), "{out}");
    assert!(
        out.len() <= crate::events::batch_ops::MAX_RESULT_STRING_BYTES,
        "{}",
        out.len()
    );
    // Cut as every text that leaves is: the excerpt, then its whole length.
    assert!(out.ends_with(&format!("… ({} bytes)", text.len())), "{out}");
}
