//! S3 Batch Operations invocations (`LambdaInvoke`, schemas 1.0 and 2.0) to tasks, and the
//! answer Batch Operations expects back: one result per task.
//!
//! | schema | bucket | key | beside the tasks |
//! |---|---|---|---|
//! | `1.0` | `tasks[].s3BucketArn` (`arn:aws:s3:::NAME`) | `tasks[].s3Key`, URL-encoded | `job.id` |
//! | `2.0` | `tasks[].s3Bucket` | `tasks[].s3Key` | `job.id`, `job.userArguments` |
//!
//! Keys are decoded as S3 notifications' are (`+` a space, then `%XX`). The S3 guide says schema
//! 1.0 keys are URL-encoded and says nothing for 2.0: a 2.0 key that decoding changes keeps the
//! key as given as [`ObjectRef::alternate_key`], for the fetch to try once when the decoded key
//! names no object. `s3VersionId` is carried to the fetch.
//!
//! A malformed invocation (no `invocationId`, a schema version other than these two, a task
//! without a `taskId`) fails as a whole: it cannot be answered task by task. A task whose own
//! fields are wrong (a bucket that is not allowed, a key that is not an audit log or trail file
//! of a selected type, a bad escape) is a [`TaskRefusal`]: answered `PermanentFailure` without
//! fetching anything, since the same task fails the same way every time. Buckets are pinned to
//! the allowed buckets as for every envelope (see the module documentation of `events`).
//!
//! The answer ([`answer`]) repeats `invocationSchemaVersion` and `invocationId`, gives one result
//! per task in order, and says `treatMissingKeysAs: TemporaryFailure`: a task left without a
//! result was not handled, and the ledger makes trying it again safe.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json_path::{as_object, join, non_empty, required, typed};
use super::{EventError, Filter, ObjectRef};
use crate::key;

/// The schema versions this function answers.
const SCHEMAS: [&str; 2] = ["1.0", "2.0"];
/// What an S3 bucket ARN starts with (every partition's: `arn:aws:`, `arn:aws-cn:`, ...).
const BUCKET_ARN_SERVICE: &str = ":s3:::";
/// Longest `resultString`, in bytes: the completion report keeps it per task.
pub const MAX_RESULT_STRING_BYTES: usize = 512;

/// One Batch Operations invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJob {
    /// `invocationSchemaVersion`, `1.0` or `2.0`: answered as given.
    pub schema_version: String,
    pub invocation_id: String,
    /// `job.id`, for log lines.
    pub job_id: Option<String>,
    /// `job.userArguments` (schema 2.0): kept for the caller to see; this function takes no
    /// arguments, so a job's arguments change nothing.
    pub user_arguments: Map<String, Value>,
    pub tasks: Vec<BatchTask>,
}

/// One task: the object to forward, or why it is refused without fetching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    pub task_id: String,
    pub object: Result<ObjectRef, TaskRefusal>,
}

/// Why a task is answered `PermanentFailure` before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskRefusal(pub String);

/// The result codes Batch Operations knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    Succeeded,
    /// Batch Operations tries the task again (up to its own limit).
    TemporaryFailure,
    /// Reported failed in the completion report; not tried again.
    PermanentFailure,
}

impl ResultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Succeeded => "Succeeded",
            ResultCode::TemporaryFailure => "TemporaryFailure",
            ResultCode::PermanentFailure => "PermanentFailure",
        }
    }
}

/// One task's outcome, as the handler decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    pub task_id: String,
    pub code: ResultCode,
    /// Free text; masked and bounded by [`result_string`] before it leaves.
    pub text: String,
}

/// Whether the event is a Batch Operations invocation: it has `invocationSchemaVersion` and
/// `tasks`, which no other envelope has.
pub(super) fn is_batch_job(top: &Map<String, Value>) -> bool {
    top.contains_key("invocationSchemaVersion") && top.contains_key("tasks")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJob {
    id: Option<String>,
    #[serde(default)]
    user_arguments: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    task_id: Option<String>,
    s3_key: Option<String>,
    s3_version_id: Option<String>,
    s3_bucket_arn: Option<String>,
    s3_bucket: Option<String>,
}

/// Reads the invocation; see the module documentation.
pub(super) fn batch_job(top: &Map<String, Value>, filter: &Filter) -> Result<BatchJob, EventError> {
    let version = typed::<String>(
        top.get("invocationSchemaVersion").unwrap_or(&Value::Null),
        "invocationSchemaVersion",
    )?;
    if !SCHEMAS.contains(&version.as_str()) {
        return Err(EventError::Invalid {
            path: "invocationSchemaVersion".into(),
            reason: format!("{} is not 1.0 or 2.0", crate::mask::quote(&version)),
        });
    }
    let invocation_id = typed::<Option<String>>(
        top.get("invocationId").unwrap_or(&Value::Null),
        "invocationId",
    )?;
    let invocation_id = required(invocation_id, "invocationId")?;
    non_empty(&invocation_id, "invocationId")?;
    let job: Option<RawJob> = typed(top.get("job").unwrap_or(&Value::Null), "job")?;
    let (job_id, user_arguments) = match job {
        Some(job) => (job.id, job.user_arguments.unwrap_or_default()),
        None => (None, Map::new()),
    };
    let tasks = top.get("tasks").unwrap_or(&Value::Null);
    let tasks = tasks.as_array().ok_or_else(|| EventError::WrongType {
        path: "tasks".into(),
        expected: "an array",
    })?;
    let mut read = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let path = format!("tasks[{i}]");
        as_object(task, &path)?;
        let raw: RawTask = typed(task, &path)?;
        let id_path = join(&path, "taskId");
        let task_id = required(raw.task_id.clone(), &id_path)?;
        non_empty(&task_id, &id_path)?;
        let object = task_object(raw, &path, &version, filter);
        read.push(BatchTask { task_id, object });
    }
    Ok(BatchJob {
        schema_version: version,
        invocation_id,
        job_id,
        user_arguments,
        tasks: read,
    })
}

/// One task's object, or why it is refused.
fn task_object(
    raw: RawTask,
    path: &str,
    version: &str,
    filter: &Filter,
) -> Result<ObjectRef, TaskRefusal> {
    let refuse = |e: EventError| TaskRefusal(e.to_string());
    let bucket = if version == "1.0" {
        let arn_path = join(path, "s3BucketArn");
        let arn = required(raw.s3_bucket_arn, &arn_path).map_err(refuse)?;
        bucket_of_arn(&arn).ok_or_else(|| {
            TaskRefusal(format!(
                "{arn_path}: {} is not an S3 bucket ARN",
                crate::mask::quote(&arn)
            ))
        })?
    } else {
        required(raw.s3_bucket, &join(path, "s3Bucket")).map_err(refuse)?
    };
    let key_path = join(path, "s3Key");
    let given = required(raw.s3_key, &key_path).map_err(refuse)?;
    non_empty(&given, &key_path).map_err(refuse)?;
    let decoded = key::decode_event_key(&given).map_err(|source| {
        refuse(EventError::Key {
            path: key_path.clone(),
            source,
        })
    })?;
    filter
        .allows_bucket(&bucket)
        .map_err(|skip| TaskRefusal(format!("s3://{bucket}/{decoded}: {skip}")))?;
    // A 2.0 key may have been given as it is: then the key as given is the one to select.
    let (key, alternate_key) = match filter.select(&decoded) {
        Ok(_) if version == "2.0" && decoded != given => (decoded, Some(given)),
        Ok(_) => (decoded, None),
        Err(_) if version == "2.0" && decoded != given && filter.select(&given).is_ok() => {
            (given, None)
        }
        Err(skip) => return Err(TaskRefusal(format!("s3://{bucket}/{decoded}: {skip}"))),
    };
    Ok(ObjectRef {
        bucket,
        key,
        size: None,
        etag: None,
        version_id: raw.s3_version_id.filter(|v| !v.is_empty()),
        alternate_key,
    })
}

/// `arn:PARTITION:s3:::NAME` to `NAME`.
fn bucket_of_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, name) = rest.split_once(BUCKET_ARN_SERVICE)?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
}

/// The answer Batch Operations reads: one result per task, in order.
pub fn answer(job: &BatchJob, results: &[TaskResult]) -> Value {
    let results: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "taskId": r.task_id,
                "resultCode": r.code.as_str(),
                "resultString": result_string(&r.text),
            })
        })
        .collect();
    json!({
        "invocationSchemaVersion": job.schema_version,
        "treatMissingKeysAs": ResultCode::TemporaryFailure.as_str(),
        "invocationId": job.invocation_id,
        "results": results,
    })
}

/// A `resultString`: the one rule for text that leaves ([`crate::mask::clean`]), its excerpt
/// short enough that the cut's `… (N bytes)` still fits [`MAX_RESULT_STRING_BYTES`].
pub fn result_string(text: &str) -> String {
    crate::mask::clean(text, MAX_RESULT_STRING_BYTES - 32).to_string()
}
