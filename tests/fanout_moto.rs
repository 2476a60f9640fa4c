//! History at scale against a private moto server (S3, SQS, Firehose): S3 Batch Operations
//! invocations answered task by task, the Batch Operations manifest of what is not done, and
//! the walk's SQS fan-out drained by several worker processes, each the real binary's `invoke`
//! on SQS events built from received messages as the event source mapping builds them.

mod common;
mod fanout;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{put_object, Moto};
use fanout::corpus::{self, LogFile, TREE};
use serde_json::{json, Value};

/// The binary under test: `BENCH_BIN` (an optimized build, for the benchmark), else this
/// crate's test build.
fn bin() -> String {
    std::env::var("BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_redshift-audit-forwarder").to_string())
}
const AUDIT: &str = "audit-bucket";
const STREAM: &str = "history";
const DEST: &str = "dest-history";

/// Moto with the audit bucket and a stream delivering into [`DEST`], and a scratch folder.
struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) = common::stream_world("fanout", test, &[AUDIT], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    async fn upload(&self, files: &[LogFile]) {
        for chunk in files.chunks(8) {
            let mut puts = tokio::task::JoinSet::new();
            for file in chunk {
                let (s3, key, body) = (self.s3.clone(), file.key.clone(), file.gz.clone());
                puts.spawn(async move { put_object(&s3, AUDIT, &key, body).await });
            }
            while let Some(done) = puts.join_next().await {
                done.expect("upload task");
            }
        }
    }

    /// The binary with this world's AWS settings, the stream, the audit bucket and prefix.
    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut command = Command::new(bin());
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", AUDIT)
            .env("AUDIT_PREFIX", TREE.trim_end_matches('/'))
            .env("METRICS", "false")
            // Records are compared with `parse` of each file alone: no session join.
            .env("SESSION_JOIN", "false")
            .envs(vars.iter().copied());
        command
    }

    /// `invoke` on `event`: its response on stdout.
    fn invoke(&self, name: &str, event: &Value) -> Value {
        let path = self.dir.join(format!("{name}.json"));
        std::fs::write(&path, event.to_string()).expect("event file");
        let out = self
            .command(&["invoke", path.to_str().expect("UTF-8 path")], &[])
            .output()
            .expect("run invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "invoke {name}: response is not JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// What the stream delivered, comparable with `corpus::expected`, and the ids.
    async fn delivered(&self) -> (Vec<Value>, Vec<String>) {
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for line in common::delivered_lines(&self.s3, DEST).await {
            let record: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            ids.push(record["id"].as_str().expect("an id").to_string());
            assert_eq!(record["source"]["bucket"], AUDIT);
            records.push(corpus::comparable(record));
        }
        (corpus::sort(records), ids)
    }

    /// Asserts that the stream delivered exactly the records of `files`, each once.
    async fn assert_delivered_once(&self, files: &[&LogFile]) {
        let (records, ids) = self.delivered().await;
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "a record was delivered twice");
        let want = corpus::expected(files);
        assert_eq!(records.len(), want.len(), "record count");
        assert!(records == want, "delivered records differ from parse's");
    }
}

// --- S3 Batch Operations -----------------------------------------------------------------------

/// A Batch Operations invocation of `schema` over `keys` (as given: the caller encodes).
fn batch_event(schema: &str, invocation: &str, keys: &[&str]) -> Value {
    let tasks: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| match schema {
            "1.0" => json!({
                "taskId": format!("task-{i}"),
                "s3Key": key,
                "s3VersionId": null,
                "s3BucketArn": format!("arn:aws:s3:::{AUDIT}"),
            }),
            _ => json!({
                "taskId": format!("task-{i}"),
                "s3Bucket": AUDIT,
                "s3Key": key,
                "s3VersionId": null,
            }),
        })
        .collect();
    let mut job = json!({ "id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce" });
    if schema == "2.0" {
        job["userArguments"] = json!({ "purpose": "test" });
    }
    json!({
        "invocationSchemaVersion": schema,
        "invocationId": invocation,
        "job": job,
        "tasks": tasks,
    })
}

fn codes(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {answer}"))
        .iter()
        .map(|r| r["resultCode"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Batch Operations invocations of both schemas over a good object, an object already done, a
/// foreign-format object and a missing key: the result code of each, and the good objects'
/// records delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_operations_tasks_of_both_schemas_get_the_result_code_of_their_outcome() {
    let world = World::new("batch_ops").await;
    let day = corpus::today() - 2;
    let good_1 = corpus::log_file("connectionlog", day * 86_400_000 + 3_600_000, 20);
    let good_2 = corpus::log_file("userlog", day * 86_400_000 + 3_600_000, 20);
    let good_3 = corpus::log_file("useractivitylog", day * 86_400_000 + 10_800_000, 20);
    // A foreign format under an audit log's name: bzip2's magic and block size.
    let foreign = corpus::log_key("useractivitylog", day * 86_400_000 + 3_600_000);
    let missing = corpus::log_key("useractivitylog", day * 86_400_000 + 7_200_000);
    world
        .upload(&[good_1.clone(), good_2.clone(), good_3.clone()])
        .await;
    put_object(
        &world.s3,
        AUDIT,
        &foreign,
        b"BZh91AY&SY\x00\x01\x02\x03".to_vec(),
    )
    .await;
    let encode = |key: &str| key.replace(':', "%3A");

    for (schema, good, done) in [("1.0", &good_1, &good_2), ("2.0", &good_3, &good_1)] {
        let keys = [
            encode(&good.key),
            encode(&done.key),
            encode(&foreign),
            encode(&missing),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        if schema == "1.0" {
            // `done` is done by an invocation of its own first.
            let first = world.invoke("first", &batch_event(schema, "inv-0", &keys[1..2]));
            assert_eq!(codes(&first), ["Succeeded"], "{first}");
        }
        let answer = world.invoke(
            schema,
            &batch_event(schema, &format!("inv-{schema}"), &keys),
        );
        assert_eq!(answer["invocationSchemaVersion"], schema);
        assert_eq!(answer["invocationId"], format!("inv-{schema}"));
        assert_eq!(answer["treatMissingKeysAs"], "TemporaryFailure");
        let ids: Vec<&str> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["taskId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["task-0", "task-1", "task-2", "task-3"]);
        assert_eq!(
            codes(&answer),
            [
                "Succeeded",
                "Succeeded",
                "PermanentFailure",
                "PermanentFailure"
            ],
            "{schema}: {answer}"
        );
        let strings: Vec<&str> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resultString"].as_str().unwrap())
            .collect();
        assert_eq!(strings[0], "forwarded 20 records", "{answer}");
        assert_eq!(strings[1], "already done", "{answer}");
        assert!(strings[2].contains("bzip2"), "{answer}");
        assert!(strings[2].contains(&foreign), "{answer}");
        assert!(strings[3].contains("does not exist"), "{answer}");
    }
    world
        .assert_delivered_once(&[&good_1, &good_2, &good_3])
        .await;
}

// --- the SQS fan-out ---------------------------------------------------------------------------

const QUEUE: &str = "backfill";

/// The backfill queue (standard; `visibility` seconds: short, so handed-back messages return
/// soon), its URL and ARN.
async fn create_queue(world: &World, visibility: u32) -> (aws_sdk_sqs::Client, String, String) {
    let sqs = aws_sdk_sqs::Client::new(&common::sdk_config(&world.moto.endpoint).await);
    let created = sqs
        .create_queue()
        .queue_name(QUEUE)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        )
        .send()
        .await
        .expect("CreateQueue");
    let url = created.queue_url().expect("a URL").to_string();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{QUEUE}");
    (sqs, url, arn)
}

/// The last stdout line of the binary: its summary.
fn summary_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_else(|| panic!("no output"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
}

fn count(summary: &Value, name: &str) -> u64 {
    summary.get(name).and_then(Value::as_u64).unwrap_or(0)
}

/// Drains the queue with `workers` concurrent worker processes, their AWS endpoint `endpoint`,
/// until `stop` says so; counts into `drained`.
#[allow(clippy::too_many_arguments)]
async fn drain_until(
    world: &World,
    endpoint: &str,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    workers: usize,
    drained: &Arc<fanout::workers::Drained>,
    stop: Arc<dyn Fn(&fanout::workers::Drained) -> bool + Send + Sync>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..workers {
        let endpoint = endpoint.to_string();
        let moto_env = world.moto.aws_env();
        let command: Arc<dyn Fn() -> Command + Send + Sync> = Arc::new(move || {
            let mut command = Command::new(bin());
            for name in common::setting_names() {
                command.env_remove(name);
            }
            for name in common::AWS_ENV_REMOVE {
                command.env_remove(name);
            }
            command
                .envs(moto_env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("DELIVERY_STREAM", STREAM)
                .env("AUDIT_BUCKET", AUDIT)
                .env("AUDIT_PREFIX", TREE.trim_end_matches('/'))
                .env("METRICS", "false")
                .env("SESSION_JOIN", "false");
            command
        });
        let (seen, stop) = (drained.clone(), stop.clone());
        let stop: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || stop(&seen));
        tasks.spawn(fanout::workers::worker(
            id,
            sqs.clone(),
            url.to_string(),
            arn.to_string(),
            world
                .dir
                .join(format!("w{}", drained.invocations.load(Ordering::SeqCst))),
            command,
            drained.clone(),
            stop,
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("worker");
    }
}

/// Drains the queue with `workers` concurrent worker processes until `expected` messages were
/// deleted.
async fn drain(
    world: &World,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    workers: usize,
    expected: u64,
) -> Arc<fanout::workers::Drained> {
    let drained = Arc::new(fanout::workers::Drained::default());
    let stop =
        Arc::new(move |d: &fanout::workers::Drained| d.deleted.load(Ordering::SeqCst) >= expected);
    let endpoint = world.moto.endpoint.clone();
    drain_until(world, &endpoint, sqs, url, arn, workers, &drained, stop).await;
    drained
}

/// The cursor of the tree as stored, and the done markers' count.
async fn state(world: &World) -> (Value, usize) {
    let objects = common::read_all_objects(&world.s3, AUDIT, "redshift-audit-forwarder/").await;
    let done = objects.iter().filter(|(k, _)| k.contains("/done/")).count();
    let cursors: Vec<Value> = objects
        .iter()
        .filter(|(k, _)| k.contains("/cursor"))
        .map(|(_, body)| serde_json::from_slice(body).expect("cursor JSON"))
        .collect();
    assert_eq!(cursors.len(), 1, "one tree, one cursor");
    (cursors[0].clone(), done)
}

/// Three days of files of every log type fanned out by the walk and drained by three worker
/// processes: every record delivered once, every object done, the cursor at the last object,
/// and a second walk enqueues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fanout_drained_by_concurrent_workers_delivers_every_record_once() {
    let world = World::new("fanout").await;
    let (sqs, url, arn) = create_queue(&world, 60).await;
    let today = corpus::today();
    let files = corpus::corpus(today - 3..today, &[1, 7, 13, 19], 30);
    assert_eq!(files.len(), 36);
    world.upload(&files).await;

    let out = world
        .command(&["backfill", "--enqueue", &url], &[])
        .output()
        .expect("run backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary_line(&out.stdout);
    assert_eq!(count(&summary, "enqueued"), 36, "{summary}");
    assert_eq!(count(&summary, "sent"), 0, "{summary}");
    assert_eq!(count(&summary, "queue_calls"), 4, "ten a call: {summary}");
    assert!(
        common::delivered_lines(&world.s3, DEST).await.is_empty(),
        "the walk forwards nothing itself"
    );

    let drained = drain(&world, &sqs, &url, &arn, 3, 36).await;
    assert_eq!(drained.done(), 36);
    assert_eq!(drained.handed_back.load(Ordering::SeqCst), 0);
    let refs: Vec<&LogFile> = files.iter().collect();
    world.assert_delivered_once(&refs).await;

    let (cursor, done) = state(&world).await;
    assert_eq!(done, 36, "a done marker per object");
    // The walk's position is the last object in (last-modified, key) order.
    let listed = world
        .s3
        .list_objects_v2()
        .bucket(AUDIT)
        .prefix(TREE)
        .send()
        .await
        .expect("ListObjectsV2");
    let last = listed
        .contents()
        .iter()
        .map(|o| {
            (
                o.last_modified().map(|t| t.secs()),
                o.key().unwrap_or_default(),
            )
        })
        .max()
        .expect("objects")
        .1;
    assert_eq!(cursor["position"]["key"], last, "{cursor}");

    // A second walk, through BACKFILL_QUEUE_URL: everything is done, nothing is enqueued.
    let out = world
        .command(&["backfill"], &[("BACKFILL_QUEUE_URL", url.as_str())])
        .output()
        .expect("run backfill");
    let summary = summary_line(&out.stdout);
    assert!(out.status.success(), "{summary}");
    assert_eq!(count(&summary, "enqueued"), 0, "{summary}");
    assert_eq!(count(&summary, "failed"), 0, "{summary}");
    let waiting = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("GetQueueAttributes");
    assert_eq!(
        waiting
            .attributes()
            .and_then(
                |a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            )
            .map(String::as_str),
        Some("0")
    );
    world.assert_delivered_once(&refs).await;
}

// --- the Batch Operations manifest --------------------------------------------------------------

/// `backfill --manifest` lists exactly the objects not done (to a file and to S3), forwards
/// nothing and writes no state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_lists_exactly_the_objects_not_done() {
    let world = World::new("manifest").await;
    let today = corpus::today();
    let files = corpus::corpus(today - 2..today, &[3, 15], 5);
    assert_eq!(files.len(), 12);
    world.upload(&files).await;
    // Three are done, through the live path.
    let records: Vec<Value> = files[..3]
        .iter()
        .map(|f| common::s3_notification_record(AUDIT, &f.key.replace(':', "%3A"), "x"))
        .collect();
    let answer = world.invoke("live", &json!({ "Records": records }));
    assert_eq!(
        answer["receipts"].as_array().map(Vec::len),
        Some(3),
        "{answer}"
    );
    let state_before =
        common::read_all_objects(&world.s3, AUDIT, "redshift-audit-forwarder/").await;
    let delivered_before = common::delivered_lines(&world.s3, DEST).await.len();

    let since = redshift_audit_forwarder::time::rfc3339_ms((today - 3) * 86_400_000);
    let want: Vec<String> = files[3..]
        .iter()
        .map(|f| format!("{AUDIT},{}", f.key.replace(':', "%3A")))
        .collect();
    let path = world.dir.join("manifest.csv");
    let out = world
        .command(
            &[
                "backfill",
                "--since",
                &since,
                "--manifest",
                path.to_str().unwrap(),
            ],
            &[],
        )
        .output()
        .expect("run backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary_line(&out.stdout);
    assert_eq!(count(&summary, "would_send"), 9, "{summary}");
    assert_eq!(count(&summary, "skipped_done"), 3, "{summary}");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(lines, sorted);

    let out = world
        .command(
            &[
                "backfill",
                "--since",
                &since,
                "--manifest",
                "s3://audit-bucket/manifests/history.csv",
            ],
            &[],
        )
        .output()
        .expect("run backfill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploaded = world
        .s3
        .get_object()
        .bucket(AUDIT)
        .key("manifests/history.csv")
        .send()
        .await
        .expect("the manifest object")
        .body
        .collect()
        .await
        .expect("its body")
        .into_bytes();
    let mut lines: Vec<String> = String::from_utf8(uploaded.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, sorted);

    let state_after = common::read_all_objects(&world.s3, AUDIT, "redshift-audit-forwarder/").await;
    assert_eq!(state_after, state_before, "no state written");
    assert_eq!(
        common::delivered_lines(&world.s3, DEST).await.len(),
        delivered_before,
        "nothing forwarded"
    );
}

/// What the doctor reads of the backfill queue on moto: waiting messages and the dead-letter
/// queue's depth, found through the redrive policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_adapter_reports_depth_and_dead_letters() {
    let moto = Moto::start();
    let config = common::sdk_config(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dlq = sqs
        .create_queue()
        .queue_name("backfill-dlq")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .unwrap()
        .to_string();
    let dlq_arn = "arn:aws:sqs:us-east-1:123456789012:backfill-dlq";
    let url = sqs
        .create_queue()
        .queue_name("backfill")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 20}).to_string(),
        )
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .unwrap()
        .to_string();
    for (queue, n) in [(&url, 2), (&dlq, 1)] {
        for i in 0..n {
            sqs.send_message()
                .queue_url(queue)
                .message_body(format!("m{i}"))
                .send()
                .await
                .expect("SendMessage");
        }
    }
    let queue = redshift_audit_forwarder::aws::SqsQueue::new(&config, &url);
    let stats = queue.stats().await.expect("stats");
    assert_eq!(stats.visible, 2);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.dead_letter_arn.as_deref(), Some(dlq_arn));
    assert_eq!(stats.dead_letters, Some(1));
    // SQS's default retention (4 days): the doctor's age warning is half of it.
    assert_eq!(stats.retention_s, Some(4 * 86_400));
}

/// The doctor's `backfill_queue` check reads the queue's oldest message age from CloudWatch
/// (moto serves `GetMetricData`): "no data yet" before any datapoint, then the age of the newest
/// `ApproximateAgeOfOldestMessage` datapoint the test puts, in `doctor --json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_reports_the_backfill_queues_oldest_message_age_from_cloudwatch() {
    let world = World::new("doctor_age").await;
    let (_, url, _) = create_queue(&world, 30).await;
    let check = || {
        let out = world
            .command(&["doctor", "--json"], &[("BACKFILL_QUEUE_URL", &url)])
            .output()
            .expect("run doctor");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == "backfill_queue")
            .unwrap_or_else(|| panic!("no backfill_queue check: {report}"))
            .clone()
    };
    let before = check();
    let detail = before["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("oldest message age: no data yet"),
        "{before}"
    );

    let cloudwatch =
        aws_sdk_cloudwatch::Client::new(&common::sdk_config(&world.moto.endpoint).await);
    let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    cloudwatch
        .put_metric_data()
        .namespace("AWS/SQS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("ApproximateAgeOfOldestMessage")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("QueueName")
                        .value(QUEUE)
                        .build(),
                )
                .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(a_minute_ago))
                .value(754.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Seconds)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
    let after = check();
    let detail = after["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("oldest message 12 min old"), "{after}");
    assert!(detail.contains("0 messages waiting"), "{after}");
    // moto's queue has no redrive policy: a warning for that, not for the age.
    assert_eq!(after["status"], "warning", "{after}");
    let fix = after["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains("redrive policy") && !fix.contains("BackfillConcurrency"),
        "{after}"
    );
}

/// The fan-out under the fault proxy (`tests/common/fault_proxy.rs`: the issue's mix of failed
/// entries, cut and failed Firehose calls, cut bodies, 5xx listings and state calls), the walk
/// and the workers both behind it. First one worker meets Firehose throttling past the sink's
/// retries on one object: that message is handed back (`batchItemFailures`), not counted against
/// the object, and the rest of its batch goes through. Then three workers drain the rest. Every
/// record is delivered; a record delivered twice is one of the calls whose answer the proxy
/// dropped after moto took it (the bound); every object is done; a second walk enqueues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fanout_under_faults_hands_throttled_messages_back_and_loses_nothing() {
    use common::fault_proxy::{Fault, FaultProxy, Forced, Mix};
    let world = World::new("fanout_faults").await;
    let (sqs, url, arn) = create_queue(&world, 5).await;
    let today = corpus::today();
    let files = corpus::corpus(today - 3..today, &[2, 8, 14, 20], 40);
    world.upload(&files).await;
    let proxy = FaultProxy::start(
        &world.moto,
        19,
        Mix::issue(),
        &format!("/{AUDIT}/redshift-audit-forwarder/"),
    );

    let mut walk = world.command(&["backfill", "--enqueue", &url], &[]);
    walk.env("AWS_ENDPOINT_URL", &proxy.endpoint);
    let out = walk.output().expect("run backfill");
    let summary = summary_line(&out.stdout);
    assert!(
        out.status.success(),
        "{summary} {}",
        proxy.report().summary()
    );
    assert_eq!(count(&summary, "enqueued"), 36, "{summary}");

    // One worker: the next object's call is throttled on every one of the sink's attempts.
    for _ in 0..redshift_audit_forwarder::sink::MAX_ATTEMPTS {
        proxy.force(Forced::Firehose(Fault::FirehoseThrottled));
    }
    let drained = Arc::new(fanout::workers::Drained::default());
    let handed_back =
        Arc::new(|d: &fanout::workers::Drained| d.handed_back.load(Ordering::SeqCst) >= 1);
    drain_until(
        &world,
        &proxy.endpoint,
        &sqs,
        &url,
        &arn,
        1,
        &drained,
        handed_back,
    )
    .await;
    // The throttled one (a body cut by the proxy may hand back another).
    assert!(drained.handed_back.load(Ordering::SeqCst) >= 1);
    assert!(
        proxy.report().count(Fault::FirehoseThrottled)
            >= u64::from(redshift_audit_forwarder::sink::MAX_ATTEMPTS)
    );
    // Throttling is the stream's failure, not the object's: it counts no attempt, so nothing
    // is set aside (a cut body counts one, and leaves a progress record with it). Progress
    // kept across a hand-back mid-object is `forward::resume`'s, tested there.
    let objects = common::read_all_objects(&world.s3, AUDIT, "redshift-audit-forwarder/").await;
    assert!(
        !objects.iter().any(|(k, _)| k.contains("/aside/")),
        "{:?}",
        objects.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );

    // Three workers drain the rest, the handed-back message included when it comes back (after
    // the 5 s it was given; later receives get 10 s, more than a batch takes here, so that a
    // message failed by a cut body comes back soon too).
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "60",
        )
        .send()
        .await
        .expect("SetQueueAttributes");
    let all = Arc::new(|d: &fanout::workers::Drained| d.done() >= 36);
    drain_until(&world, &proxy.endpoint, &sqs, &url, &arn, 3, &drained, all).await;
    assert_eq!(drained.done(), 36);

    let report = proxy.report();
    let lost = report.lost_ids();
    // A record cut by a failed read goes out flagged, under an id of its own (`-cut`), and its
    // retry sends it whole: the cut copies are counted apart.
    let mut records = Vec::new();
    let mut ids = Vec::new();
    let mut records_with_ids = Vec::new();
    let mut cut = 0;
    for line in common::delivered_lines(&world.s3, DEST).await {
        let record: Value = serde_json::from_str(&line).expect("JSON");
        let id = record["id"].as_str().expect("an id").to_string();
        if id.ends_with("-cut") {
            assert_eq!(record["truncated"], true, "{record}");
            cut += 1;
            continue;
        }
        let key = record["source"]["key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        records_with_ids.push((id.clone(), key));
        ids.push(id);
        records.push(corpus::comparable(record));
    }
    let records = corpus::sort(records);
    let mut copies: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for id in &ids {
        *copies.entry(id).or_default() += 1;
    }
    // Beyond the calls whose answer was lost, an object whose message SQS delivered again while
    // a worker still had it may go out twice (two workers at once, neither done yet).
    let redelivered: Vec<String> = drained.received_twice();
    let key_of: std::collections::HashMap<&str, &str> = records_with_ids
        .iter()
        .map(|(id, key)| (id.as_str(), key.as_str()))
        .collect();
    for (id, n) in &copies {
        if *n > 1 {
            let key = key_of[id];
            let again = redelivered
                .iter()
                .any(|body| body.contains(&key.replace(':', "%3A")));
            let bound = 1 + lost.get(*id).copied().unwrap_or(0) + u32::from(again);
            assert!(
                *n <= bound,
                "{id} delivered {n} times, bound {bound}: {}",
                report.summary()
            );
        }
    }
    let mut unique = records;
    unique.dedup();
    let refs: Vec<&LogFile> = files.iter().collect();
    assert!(
        unique == corpus::expected(&refs),
        "records lost or changed: {}",
        report.summary()
    );
    let (_, done) = state(&world).await;
    assert_eq!(done, 36, "a done marker per object");

    let mut walk = world.command(&["backfill", "--enqueue", &url], &[]);
    walk.env("AWS_ENDPOINT_URL", &proxy.endpoint);
    let out = walk.output().expect("run backfill");
    let summary = summary_line(&out.stdout);
    assert_eq!(count(&summary, "enqueued"), 0, "{summary}");
    eprintln!("{cut} cut copies; {}", report.summary());
}

// --- the benchmark (scripts/bench_fanout.sh) ----------------------------------------------------

/// Plain text bytes of the files.
fn text_bytes(files: &[LogFile]) -> u64 {
    files
        .iter()
        .map(|f| {
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&f.gz[..]),
                &mut text,
            )
            .expect("gzip");
            text.len() as u64
        })
        .sum()
}

/// CPU seconds (user + system) the moto server has used so far: its pid is in its log's name.
fn moto_cpu_s(moto: &Moto) -> f64 {
    let pid = moto
        .log_path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("moto-"))
        .unwrap_or_default()
        .to_string();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The same objects forwarded by the single walker (`backfill`) and by a fan-out drained by 1,
/// 2 and 4 worker processes, each on a fresh moto: objects/s and MB/s of text, wall clock.
/// `BENCH_DAYS`, `BENCH_HOURS` (files per day per log type), `BENCH_LINES` (lines a file) size it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: scripts/bench_fanout.sh"]
async fn bench_fanout_workers_beside_the_single_walker() {
    let var = |name: &str, default: i64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (days, hours, lines) = (
        var("BENCH_DAYS", 3),
        var("BENCH_HOURS", 8),
        var("BENCH_LINES", 2000),
    );
    let today = corpus::today();
    let hour_list: Vec<i64> = (0..hours).map(|h| h * 24 / hours).collect();
    let files = corpus::corpus(today - days..today, &hour_list, lines as u64);
    let mb = text_bytes(&files) as f64 / 1e6;
    let n = files.len() as f64;
    println!(
        "\n| engine | workers | objects | text MB | wall s | objects/s | MB/s | moto CPU s | moto CPU / wall |\n|---|---|---|---|---|---|---|---|---|"
    );
    for workers in [0usize, 1, 2, 4] {
        let world = World::new(&format!("bench-{workers}")).await;
        world.upload(&files).await;
        let mut moto_before = moto_cpu_s(&world.moto);
        let (engine, seconds) = if workers == 0 {
            let started = std::time::Instant::now();
            let out = world
                .command(&["backfill"], &[])
                .output()
                .expect("run backfill");
            let elapsed = started.elapsed().as_secs_f64();
            let summary = summary_line(&out.stdout);
            assert_eq!(count(&summary, "sent"), files.len() as u64, "{summary}");
            ("single walker", elapsed)
        } else {
            let (sqs, url, arn) = create_queue(&world, 600).await;
            let out = world
                .command(&["backfill", "--enqueue", &url], &[])
                .output()
                .expect("run backfill");
            let summary = summary_line(&out.stdout);
            assert_eq!(count(&summary, "enqueued"), files.len() as u64, "{summary}");
            moto_before = moto_cpu_s(&world.moto);
            let started = std::time::Instant::now();
            drain(&world, &sqs, &url, &arn, workers, files.len() as u64).await;
            ("SQS fan-out", started.elapsed().as_secs_f64())
        };
        let moto_s = moto_cpu_s(&world.moto) - moto_before;
        let delivered = common::delivered_lines(&world.s3, DEST).await.len();
        assert_eq!(delivered as i64, files.len() as i64 * lines, "every record");
        println!(
            "| {engine} | {} | {} | {mb:.1} | {seconds:.1} | {:.2} | {:.2} | {moto_s:.1} | {:.2} |",
            if workers == 0 {
                "-".to_string()
            } else {
                workers.to_string()
            },
            files.len(),
            n / seconds,
            mb / seconds,
            moto_s / seconds
        );
    }
}

// --- claims: two workers on the same object ------------------------------------------------

/// An SQS event of one message (`id`) whose body is the S3 notification of `key`.
fn notification_message(id: &str, key: &str, etag: &str) -> Value {
    let body = json!({ "Records": [common::s3_notification_record(AUDIT, key, etag)] });
    json!({ "Records": [{
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body.to_string(),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:live",
        "awsRegion": "us-east-1",
    }]})
}

/// Runs `invoke` on each event as processes started together; their answers and stderr.
fn invoke_at_once(world: &World, events: &[(&str, Value)]) -> Vec<(Value, String)> {
    let children: Vec<_> = events
        .iter()
        .map(|(name, event)| {
            let path = world.dir.join(format!("{name}.json"));
            std::fs::write(&path, event.to_string()).expect("event file");
            world
                .command(&["invoke", path.to_str().expect("UTF-8 path")], &[])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start invoke")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("invoke ran");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            let answer = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
            (answer, stderr)
        })
        .collect()
}

/// The message ids an SQS answer hands back.
fn failed_ids(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not an SQS answer: {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Writes the object's claim as another worker would: held by `holder` until `expires_at_ms`.
async fn write_claim(
    world: &World,
    key: &str,
    etag: &str,
    holder: &str,
    claimed_at_ms: i64,
    expires_at_ms: i64,
) {
    use redshift_audit_forwarder::ledger::{check, Claim, Ledger};
    let ledger = Ledger::new(
        Arc::new(redshift_audit_forwarder::ports::memory::MemoryStore::default()),
        "redshift-audit-forwarder/",
    );
    let claim = Claim {
        bucket: AUDIT.into(),
        key: key.into(),
        etag: etag.trim_matches('"').into(),
        holder: holder.into(),
        claimed_at_ms,
        expires_at_ms,
        released: false,
    };
    put_object(
        &world.s3,
        AUDIT,
        &ledger.claim_key(AUDIT, key),
        check::encode(&claim),
    )
    .await;
}

/// Two worker processes get SQS messages for the same object at the same moment. While another
/// worker's claim is live, both hand their message back and send nothing; once it has expired
/// (that worker crashed), the two started together deliver every record exactly once: one
/// sends, the other hands its message back (busy) or finds the object done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_object_send_it_once_and_a_live_claim_holds_both_off() {
    let world = World::new("claims").await;
    let file = corpus::log_file("useractivitylog", (corpus::today() - 1) * 86_400_000, 200);
    world.upload(std::slice::from_ref(&file)).await;
    let head = world
        .s3
        .head_object()
        .bucket(AUDIT)
        .key(&file.key)
        .send()
        .await
        .expect("head");
    let etag = head.e_tag().expect("an ETag").to_string();
    let events = [
        ("worker-a", notification_message("msg-a", &file.key, &etag)),
        ("worker-b", notification_message("msg-b", &file.key, &etag)),
    ];
    let now = corpus::now_ms();

    write_claim(
        &world,
        &file.key,
        &etag,
        "crashed-worker",
        now,
        now + 600_000,
    )
    .await;
    let answers = invoke_at_once(&world, &events);
    for ((answer, stderr), id) in answers.iter().zip(["msg-a", "msg-b"]) {
        assert_eq!(
            failed_ids(answer),
            [id],
            "busy elsewhere: handed back\n{stderr}"
        );
        assert!(stderr.contains("busy"), "{stderr}");
    }
    assert!(
        world.delivered().await.1.is_empty(),
        "nothing sent while the claim is live"
    );

    // The claim's holder crashed: its claim expired a minute ago.
    write_claim(
        &world,
        &file.key,
        &etag,
        "crashed-worker",
        now - 1_200_000,
        now - 60_000,
    )
    .await;
    let answers = invoke_at_once(&world, &events);
    let handed_back: Vec<String> = answers.iter().flat_map(|(a, _)| failed_ids(a)).collect();
    let saw_done = answers
        .iter()
        .any(|(_, stderr)| stderr.contains("skipped object: already forwarded"));
    assert!(
        handed_back.len() == 1 || (handed_back.is_empty() && saw_done),
        "one sent; the other was busy or found it done: {answers:?}"
    );
    world.assert_delivered_once(&[&file]).await;

    // The one that sent released its claim: a third delivery finds the object done.
    let (answer, stderr) = &invoke_at_once(&world, &events[..1])[0];
    assert!(failed_ids(answer).is_empty(), "{answer}\n{stderr}");
    assert!(stderr.contains("already forwarded"), "{stderr}");
    world.assert_delivered_once(&[&file]).await;
}
