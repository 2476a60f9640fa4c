//! The Security Lake destination on moto (issue 18): S3 as the lake bucket, the binary's
//! `invoke` and `backfill` with `DESTINATIONS` set. What lands is read back with pyarrow and
//! DuckDB (`scripts/lake_check.py`) and compared with what Firehose got from the same
//! invocation: every record, no more, no fewer; OCSF 1.1.0 valid; partitions right; one class
//! per object; one schema per class; zstd. Two runs over the same input write the same keys.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{put_object, read_all_objects, Moto};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const AUDIT: &str = "audit";
const LAKE: &str = "lake";
const STREAM: &str = "audit-stream";
const DEST: &str = "firehose-dest";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
const TRAIL_KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz";

const CONNECTION: &str = "authenticated |Fri, 1 Mar 2024 00:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\n\
not a connection log line\n\
disconnecting session |Fri, 1 Mar 2024 23:59:59:999|10.0.0.1 |5432 |5108|dev |rdsdb |Ident |120000| | |0| | |\n\
initiating session |Sat, 2 Mar 2024 00:00:00:001|10.0.0.2 |5433 |5109|dev |bob |password |0| | |0| | |\n";
const USER: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Fri, 1 Mar 2024 00:18:38:416\n\
101|alice | |create |0|0|0| |14873|1062|Fri, 1 Mar 2024 00:19:38:416\n";
const ACTIVITY: &str = "'2024-03-01T00:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: copy t from 's3://b/k'\n  credentials 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';\n\
'2024-03-01T00:00:05Z UTC [ db=dev user=rdsdb pid=687 userid=1 xid=245580 ]' LOG: SELECT 1\n";

fn trail() -> String {
    let event = |n: usize, name: &str| {
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","userName":"alice"}},"eventTime":"2024-03-01T00:4{n}:00Z","eventSource":"redshift.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{n}","userAgent":"aws-cli/2.15","requestParameters":{{"clusterIdentifier":"c-{n}"}},"responseElements":null,"requestID":"req-{n}","eventID":"ev-{n}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
        )
    };
    format!(
        "{{\"Records\":[{},{}]}}",
        event(1, "CreateCluster"),
        event(2, "DescribeClusters")
    )
}

use common::lake_sources as sources;

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
    keys: Vec<String>,
}

impl World {
    async fn new(test: &str, lakes: &[&str]) -> World {
        let mut buckets = vec![AUDIT];
        buckets.extend_from_slice(lakes);
        let (moto, s3, dir) = common::stream_world("lake_moto", test, &buckets, STREAM, DEST).await;
        let mut keys = Vec::new();
        for (t, text) in [
            ("connectionlog", CONNECTION),
            ("userlog", USER),
            ("useractivitylog", ACTIVITY),
        ] {
            let key = format!(
                "{DAY}123456789012_redshift_us-east-1_analytics-prod_{t}_2024-03-01T00:53.gz"
            );
            put_object(&s3, AUDIT, &key, common::gzip(text)).await;
            keys.push(key);
        }
        put_object(&s3, AUDIT, TRAIL_KEY, common::gzip(&trail())).await;
        keys.push(TRAIL_KEY.to_string());
        World {
            moto,
            s3,
            dir,
            keys,
        }
    }

    fn run(&self, args: &[&str], settings: &[(&str, String)]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("AUDIT_BUCKET", AUDIT)
            .env(
                "LOG_TYPES",
                "connectionlog,userlog,useractivitylog,cloudtrail",
            )
            .env("METRICS", "false")
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())));
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
    }

    async fn invoke(&self, settings: &[(&str, String)]) -> Output {
        let records: Vec<_> = self
            .keys
            .iter()
            .map(|k| common::s3_notification_record(AUDIT, k, "etag"))
            .collect();
        let event = self.dir.join("event.json");
        std::fs::write(
            &event,
            serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap(),
        )
        .unwrap();
        self.run(&["invoke", event.to_str().unwrap()], settings)
    }

    /// The lake bucket's objects under `ext/`, as `<class>/region=…/…` paths in a folder.
    async fn download(&self, bucket: &str, name: &str) -> (PathBuf, Vec<(String, Vec<u8>)>) {
        let dir = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let objects: Vec<(String, Vec<u8>)> = read_all_objects(&self.s3, bucket, "ext/")
            .await
            .into_iter()
            .map(|(k, b)| (k["ext/".len()..].to_string(), b))
            .collect();
        for (rel, body) in &objects {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, body).unwrap();
        }
        (dir, objects)
    }
}

fn lake_check(dir: &Path, events: &[u8]) -> (bool, String) {
    let path = dir.with_extension("events.ndjson");
    std::fs::write(&path, events).unwrap();
    let out = Command::new(common::python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/lake_check.py"))
        .arg(dir)
        .arg(&path)
        .output()
        .expect("run scripts/lake_check.py (pyarrow, duckdb from requirements-dev.txt)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_delivers_every_input_kind_to_the_lake_as_firehose_gets_it() {
    let world = World::new("invoke-both", &[LAKE]).await;
    let settings = [
        ("DESTINATIONS", "firehose,security-lake".to_string()),
        ("DELIVERY_STREAM", STREAM.to_string()),
        ("OUTPUT_FORMAT", "ocsf".to_string()),
        // One source through its provider role, assumed with the external ID.
        (
            "SECURITY_LAKE_SOURCES",
            sources(LAKE).replace(
                "ext/authentication/",
                "ext/authentication/|arn:aws:iam::123456789012:role/AmazonSecurityLake-Provider-redshift-us-east-1",
            ),
        ),
        ("SECURITY_LAKE_EXTERNAL_ID", "lake-external-id".to_string()),
    ];
    let stderr = ok(&world.invoke(&settings).await);
    assert!(stderr.contains("\"lake_rows\""), "{stderr}");
    let delivered = common::delivered_lines(&world.s3, DEST).await;
    assert_eq!(delivered.len(), 10, "{delivered:?}");
    let (dir, objects) = world.download(LAKE, "lake").await;
    let (passed, report) = lake_check(&dir, (delivered.join("\n") + "\n").as_bytes());
    assert!(passed, "{report}");
    let folders: Vec<&str> = objects
        .iter()
        .map(|(k, _)| k.rsplit_once('/').unwrap().0)
        .collect();
    assert_eq!(
        folders,
        [
            "account_change/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "api_activity/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "authentication/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "authentication/region=us-east-1/accountId=123456789012/eventDay=20240302",
            "base_event/region=us-east-1/accountId=123456789012/eventDay=20240301",
            "datastore_activity/region=us-east-1/accountId=123456789012/eventDay=20240301",
        ]
    );
    // The ledger marked the objects done: a second delivery of the event writes nothing new.
    ok(&world.invoke(&settings).await);
    assert_eq!(world.download(LAKE, "again").await.1, objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_alone_through_backfill_writes_the_same_objects_as_invoke() {
    let world = World::new("backfill-lake", &[LAKE, "lake-two"]).await;
    let lake_only = |bucket: &str, state: &str| {
        vec![
            ("DESTINATIONS", "security-lake".to_string()),
            ("SECURITY_LAKE_SOURCES", sources(bucket)),
            ("STATE_PREFIX", format!("{state}/")),
        ]
    };
    ok(&world.invoke(&lake_only(LAKE, "state-one")).await);
    let out = world.run(&["backfill"], &lake_only("lake-two", "state-two"));
    ok(&out);
    let (_, first) = world.download(LAKE, "one").await;
    let (_, second) = world.download("lake-two", "two").await;
    assert_eq!(first.len(), 6);
    assert_eq!(first, second, "the same keys, byte for byte");
    // Without Firehose nothing went to the stream.
    assert!(common::delivered_lines(&world.s3, DEST).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_failed_between_two_classes_is_rewritten_into_a_clean_runs_objects() {
    let world = World::new("between-classes", &[LAKE, "clean"]).await;
    let settings = |lake: &str, state: &str| {
        vec![
            ("DESTINATIONS", "security-lake".to_string()),
            // base_event's location is in another bucket, missing at first.
            (
                "SECURITY_LAKE_SOURCES",
                sources(lake).replace(
                    &format!("s3://{lake}/ext/base_event/"),
                    &format!("s3://{lake}-base/ext/base_event/"),
                ),
            ),
            ("STATE_PREFIX", format!("{state}/")),
        ]
    };
    common::create_bucket(&world.s3, "clean-base").await;
    ok(&world.invoke(&settings("clean", "clean-state")).await);
    let (_, clean) = world.download("clean", "clean").await;
    let clean_base = read_all_objects(&world.s3, "clean-base", "ext/").await;
    assert_eq!((clean.len(), clean_base.len()), (5, 1));

    // The connection log's authentication objects go up, then its base_event object fails:
    // the input is not done and the invocation fails.
    let failed = world.invoke(&settings(LAKE, "state")).await;
    assert!(!failed.status.success());
    let (_, partial) = world.download(LAKE, "partial").await;
    assert!(
        partial
            .iter()
            .any(|(k, _)| k.starts_with("authentication/")),
        "{partial:?}"
    );
    common::create_bucket(&world.s3, "lake-base").await;
    ok(&world.invoke(&settings(LAKE, "state")).await);
    let (_, retried) = world.download(LAKE, "retried").await;
    assert_eq!(
        retried, clean,
        "exactly the objects of a clean run, byte for byte"
    );
    assert_eq!(
        read_all_objects(&world.s3, "lake-base", "ext/").await,
        clean_base
    );
}

/// Objects larger than a part go up as multipart uploads that moto completes, leaving no upload
/// open; the object reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_go_up_as_multipart_uploads_on_moto() {
    use redshift_audit_forwarder::lake::{Class, Limits};
    use redshift_audit_forwarder::settings::lake::{LakeSource, SecurityLake};
    use redshift_audit_forwarder::sink::lake::LakeSink;
    use redshift_audit_forwarder::sink::Sink;
    use std::sync::Arc;

    let moto = Moto::start();
    let s3 = common::s3_client(&moto).await;
    common::create_bucket(&s3, LAKE).await;
    let config = common::sdk_config(&moto.endpoint).await;
    let lake = SecurityLake {
        sources: vec![LakeSource {
            class: Class::DatastoreActivity,
            bucket: LAKE.into(),
            prefix: "ext/activity/".into(),
            role_arn: None,
        }],
        external_id: None,
    };
    let (buckets, locations) =
        redshift_audit_forwarder::aws::lake::lake_buckets(&config, &lake, true).await;
    let mut sink = LakeSink::new(Arc::new(buckets), Arc::new(locations))
        .with_part_bytes(5 * 1024 * 1024)
        .with_limits(Limits {
            row_group_bytes: 1024 * 1024,
            ..Limits::default()
        });
    sink.begin(&["audit", "big_useractivitylog.gz", "etag"]);
    let mut rows = 0u64;
    // About 16 MB of hex text, 8 MB of Parquet: two parts.
    for i in 0..25_000u64 {
        let noise: String = (0..40u64)
            .map(|k| {
                format!(
                    "{:016x}",
                    xxhash_rust::xxh3::xxh3_64(&(i * 64 + k).to_le_bytes())
                )
            })
            .collect();
        let line = format!(
            r#"{{"metadata":{{"uid":"u{i}"}},"cloud":{{"account":{{"uid":"123456789012"}},"region":"us-east-1"}},"class_uid":6005,"time":{},"query_info":{{"query_string":"{noise}"}}}}"#,
            1_709_251_200_000 + i
        );
        sink.send(line).await.unwrap();
        rows += 1;
    }
    let stats = sink.finish().await.unwrap();
    assert_eq!(stats.lake.unwrap().lake_rows, rows);
    let objects = read_all_objects(&s3, LAKE, "ext/").await;
    assert_eq!(objects.len(), 1);
    assert!(
        objects[0].1.len() > 5 * 1024 * 1024,
        "{} {stats:?}",
        objects[0].1.len()
    );
    assert!(stats.calls >= 3, "{stats:?}");
    let uploads = s3
        .list_multipart_uploads()
        .bucket(LAKE)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    // Read back: every row is there.
    let dir = std::env::temp_dir().join(format!("lake-moto-multipart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("o.parquet");
    std::fs::write(&path, &objects[0].1).unwrap();
    let out = Command::new(common::python())
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).num_rows)",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        rows.to_string(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_probes_each_lake_location_and_leaves_nothing_there() {
    use redshift_audit_forwarder::diagnose::checkup;
    use redshift_audit_forwarder::doctor::Status;
    use redshift_audit_forwarder::settings::Settings;

    let world = World::new("doctor", &[LAKE]).await;
    let config = common::sdk_config(&world.moto.endpoint).await;
    let report = |sources: String| {
        let vars = [
            ("DESTINATIONS", "security-lake".to_string()),
            ("AUDIT_BUCKET", AUDIT.to_string()),
            ("SECURITY_LAKE_SOURCES", sources),
        ];
        let settings =
            Settings::from_vars(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
                .expect("valid settings");
        let config = config.clone();
        async move { checkup(&config, &settings).await }
    };
    let without_trails = sources(LAKE).replace(",api_activity=s3://lake/ext/api_activity/", "");
    let good = report(without_trails.clone()).await;
    let lake = good.check("lake").expect("a lake check");
    assert_eq!(lake.status, Status::Ok, "{lake:?}");
    assert!(
        lake.detail
            .contains("datastore_activity -> s3://lake/ext/datastore_activity/"),
        "{lake:?}"
    );
    assert!(
        lake.detail.contains("no source for api_activity"),
        "{lake:?}"
    );
    // Firehose is not a destination: its check does not fail for want of a stream.
    assert_eq!(good.check("stream").unwrap().status, Status::Ok);
    assert!(
        read_all_objects(&world.s3, LAKE, "").await.is_empty(),
        "the probe leaves no object"
    );
    let uploads = world
        .s3
        .list_multipart_uploads()
        .bucket(LAKE)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "nor an upload");

    let bad = report(sources(LAKE).replace(
        "s3://lake/ext/base_event/",
        "s3://no-such-lake/ext/base_event/",
    ))
    .await;
    let lake = bad.check("lake").unwrap();
    assert_eq!(lake.status, Status::Failed, "{lake:?}");
    assert!(
        lake.detail
            .starts_with("base_event: cannot write s3://no-such-lake/ext/base_event/"),
        "{lake:?}"
    );
    assert!(
        lake.fix.as_deref().unwrap().contains("s3:PutObject"),
        "{lake:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudwatch_logs_batch_is_named_after_its_group_stream_and_first_event() {
    let world = World::new("cloudwatch", &[LAKE]).await;
    let event = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/cloudwatch-logs.json");
    let settings = [
        ("DESTINATIONS", "security-lake".to_string()),
        ("SECURITY_LAKE_SOURCES", sources(LAKE)),
    ];
    ok(&world.run(&["invoke", event.to_str().unwrap()], &settings));
    let (dir, first) = world.download(LAKE, "cw").await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0]
            .0
            .starts_with("datastore_activity/region=us-east-1/accountId=")
            && first[0].0.contains("/sales-wg-useractivitylog-"),
        "{}",
        first[0].0
    );
    // Delivered again (CloudWatch Logs retries a failed batch): the same key, the same bytes.
    ok(&world.run(&["invoke", event.to_str().unwrap()], &settings));
    assert_eq!(world.download(LAKE, "cw-again").await.1, first);
    let out = Command::new(common::python())
        .args(["-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.column('class_uid')[0])"])
        .arg(dir.join(&first[0].0))
        .output()
        .unwrap();
    // Four log events, one statement over two of them: three records, as `parse` gives.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3 6005",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
