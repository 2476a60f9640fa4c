//! The Security Lake destination under faults (issue 18, "Prove it"): the binary's `invoke`
//! writes through the fault proxy (`tests/common/fault_proxy.rs`) to moto, and each run below
//! fails one write of the lake's on purpose: a part upload cut before S3 sees it, a completion
//! S3 took whose answer was lost, the invocation killed while it waits between two classes of
//! one file, and killed in the middle of a multipart upload. After the retry, the lake holds
//! exactly the objects of a clean run, byte for byte, at the same keys; uploads a failure
//! could abort are aborted, and the one a kill leaves open is the one the lifecycle rule
//! (`AbortIncompleteMultipartUpload`, template.yaml) cleans.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fault_proxy::{FaultProxy, Forced, Mix, WriteFault, WriteOp};
use common::{put_object, read_all_objects, Moto};

const AUDIT: &str = "audit";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
/// Where state lives: `/<bucket>/<prefix>` for the proxy (no state fault is used here).
const STATE_PATH: &str = "/state/";

/// A connection log whose records are of two classes: authentication, and base_event for the
/// line that is not a connection log line (written second: the lake completes objects in the
/// order they were opened).
const CONNECTION: &str = "authenticated |Fri, 1 Mar 2024 00:01:55:177|10.0.0.9 |5432 |5108|dev |rdsdb |password |0| | |0| | |\n\
not a connection log line\n\
disconnecting session |Fri, 1 Mar 2024 00:09:59:999|10.0.0.9 |5432 |5108|dev |rdsdb |password |120000| | |0| | |\n";

/// A user activity log whose Parquet object is over the 5 MiB part size (a multipart upload):
/// statements of random letters and digits, which zstd cannot shrink below ~75%.
fn big_activity() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut text = String::with_capacity(9_500_000);
    for i in 0..4_500u64 {
        text.push_str(&format!(
            "'2024-03-01T00:{:02}:{:02}Z UTC [ db=dev user=alice pid={} userid=100 xid={} ]' LOG: select '",
            (i / 60) % 60,
            i % 60,
            1_000 + i % 50,
            300_000 + i
        ));
        for k in 0..250u64 {
            let word = xxhash_rust::xxh3::xxh3_64(&(i * 1_000 + k).to_le_bytes());
            for b in word.to_le_bytes() {
                text.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
        text.push_str("'\n");
    }
    text
}

fn key(log_type: &str) -> String {
    format!("{DAY}123456789012_redshift_us-east-1_analytics-prod_{log_type}_2024-03-01T00:53.gz")
}

use common::lake_sources as sources;

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    proxy: FaultProxy,
    event: std::path::PathBuf,
}

impl World {
    async fn new(test: &str, lakes: &[&str]) -> World {
        let moto = Moto::start();
        let s3 = common::s3_client(&moto).await;
        for bucket in [AUDIT, "state"].iter().chain(lakes) {
            common::create_bucket(&s3, bucket).await;
        }
        put_object(&s3, AUDIT, &key("connectionlog"), common::gzip(CONNECTION)).await;
        put_object(
            &s3,
            AUDIT,
            &key("useractivitylog"),
            common::gzip(&big_activity()),
        )
        .await;
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("lake_faults")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let records: Vec<_> = ["connectionlog", "useractivitylog"]
            .iter()
            .map(|t| common::s3_notification_record(AUDIT, &key(t), "etag"))
            .collect();
        let event = dir.join("event.json");
        std::fs::write(
            &event,
            serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap(),
        )
        .unwrap();
        let proxy = FaultProxy::start(&moto, 18, Mix::none(), STATE_PATH);
        World {
            moto,
            s3,
            proxy,
            event,
        }
    }

    /// `invoke` of both files into the lake bucket `lake`, with its own state prefix.
    fn command(&self, lake: &str) -> Command {
        let mut command = Command::new(common::faults_bin());
        command.arg("invoke").arg(&self.event);
        common::isolate(&mut command, &self.moto);
        command
            .env("AWS_ENDPOINT_URL", &self.proxy.endpoint)
            .env("AUDIT_BUCKET", AUDIT)
            .env("LOG_TYPES", "connectionlog,useractivitylog")
            .env("DESTINATIONS", "security-lake")
            .env("SECURITY_LAKE_SOURCES", sources(lake))
            .env("STATE_BUCKET", "state")
            .env("STATE_PREFIX", format!("{lake}/"))
            .env("METRICS", "false")
            .env("SESSION_JOIN", "false")
            .env("RUST_LOG", "warn");
        command
    }

    fn invoke(&self, lake: &str) -> Output {
        self.command(lake).output().expect("run the binary")
    }

    /// Starts `invoke` and returns once the proxy holds one of its writes.
    fn invoke_until_held(&self, lake: &str) -> Child {
        let mut child = self
            .command(lake)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the binary");
        // Waits for an event, not a time: the deadline only ends a run that went wrong.
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.proxy.report().held == 0 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the binary ended ({status}) before its write was held\n{}",
                    self.proxy.report().summary()
                );
            }
            assert!(Instant::now() < deadline, "no write was held");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// The lake bucket's objects, keys relative to the bucket.
    async fn objects(&self, lake: &str) -> Vec<(String, Vec<u8>)> {
        read_all_objects(&self.s3, lake, "ext/").await
    }

    /// Keys of the multipart uploads left open in `lake`.
    async fn open_uploads(&self, lake: &str) -> Vec<String> {
        let listed = self
            .s3
            .list_multipart_uploads()
            .bucket(lake)
            .send()
            .await
            .unwrap();
        listed
            .uploads()
            .iter()
            .map(|u| u.key().unwrap_or_default().to_string())
            .collect()
    }

    /// A clean run into `lake`: its objects, after checking what a clean run is.
    async fn clean(&self, lake: &str) -> Vec<(String, Vec<u8>)> {
        ok(&self.invoke(lake));
        let objects = self.objects(lake).await;
        let classes: Vec<&str> = objects
            .iter()
            .map(|(k, _)| k.split('/').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            classes,
            ["authentication", "base_event", "datastore_activity"],
            "{:?}",
            objects.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        let activity = &objects[2].1;
        assert!(
            activity.len() > 5 * 1024 * 1024,
            "the activity object must need a multipart upload: {} bytes",
            activity.len()
        );
        assert!(self.open_uploads(lake).await.is_empty());
        objects
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The same objects at the same keys (the lake buckets differ), byte for byte.
fn assert_same(got: &[(String, Vec<u8>)], clean: &[(String, Vec<u8>)], what: &str) {
    let names = |o: &[(String, Vec<u8>)]| o.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(clean), "{what}: the keys of a clean run");
    for ((key, got), (_, clean)) in got.iter().zip(clean) {
        assert!(got == clean, "{what}: {key} differs from the clean run's");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_upload_cut_fails_the_run_aborts_the_upload_and_the_retry_writes_a_clean_run() {
    let world = World::new("part-cut", &["clean", "lake"]).await;
    let clean = world.clean("clean").await;
    let parts_clean = world.proxy.report().writes[&WriteOp::Part];
    assert!(parts_clean >= 1, "a multipart upload: {parts_clean} parts");

    // More cuts in a row than the SDK's attempts: the part cannot go up.
    for _ in 0..8 {
        world.proxy.force(Forced::Write {
            op: WriteOp::Part,
            key: "datastore_activity".into(),
            fault: WriteFault::CutBefore,
        });
    }
    let failed = world.invoke("lake");
    assert!(!failed.status.success(), "a part that cannot go up fails");
    let cuts = world
        .proxy
        .report()
        .count(common::fault_proxy::Fault::S3WriteCutBefore);
    assert!(cuts >= 1, "{}", world.proxy.report().summary());
    world.proxy.clear_forced();
    assert_eq!(
        world.open_uploads("lake").await,
        Vec::<String>::new(),
        "the failed upload is aborted, not left for the lifecycle rule"
    );
    assert!(
        !world
            .objects("lake")
            .await
            .iter()
            .any(|(k, _)| k.contains("datastore_activity")),
        "no activity object from the failed run"
    );
    ok(&world.invoke("lake"));
    assert_same(&world.objects("lake").await, &clean, "after a cut part");
    assert!(world.open_uploads("lake").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_whose_answer_was_lost_ends_in_a_clean_runs_objects() {
    let world = World::new("complete-lost", &["clean", "lake"]).await;
    let clean = world.clean("clean").await;
    world.proxy.force(Forced::Write {
        op: WriteOp::Complete,
        key: "datastore_activity".into(),
        fault: WriteFault::CutAfter,
    });
    let first = world.invoke("lake");
    let lost = world
        .proxy
        .report()
        .count(common::fault_proxy::Fault::S3WriteCutAfter);
    assert_eq!(lost, 1, "{}", world.proxy.report().summary());
    eprintln!(
        "the run whose completion answer was lost {}",
        if first.status.success() {
            "succeeded (the SDK's retry was answered 200)"
        } else {
            "failed; retrying"
        }
    );
    if !first.status.success() {
        // The SDK's retry of the completion found the upload already complete: the object is
        // whole, the file is not marked done, and the retry writes the same keys again.
        ok(&world.invoke("lake"));
    }
    assert_same(
        &world.objects("lake").await,
        &clean,
        "after a lost completion",
    );
    assert!(world.open_uploads("lake").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_killed_between_two_classes_is_retried_into_a_clean_runs_objects() {
    let world = World::new("killed-between", &["clean", "lake"]).await;
    let clean = world.clean("clean").await;
    world.proxy.force(Forced::Write {
        op: WriteOp::Put,
        key: "/base_event/".into(),
        fault: WriteFault::Hold,
    });
    let mut child = world.invoke_until_held("lake");
    let before_kill = world.objects("lake").await;
    let classes: Vec<&str> = before_kill
        .iter()
        .map(|(k, _)| k.split('/').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(classes, ["authentication"], "killed between two classes");
    child.kill().unwrap();
    child.wait().unwrap();
    ok(&world.invoke("lake"));
    assert_same(&world.objects("lake").await, &clean, "after a kill");
    assert!(world.open_uploads("lake").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_killed_mid_upload_leaves_one_upload_for_the_lifecycle_rule_and_the_retry_is_clean(
) {
    let world = World::new("killed-mid-upload", &["clean", "lake"]).await;
    let clean = world.clean("clean").await;
    world.proxy.force(Forced::Write {
        op: WriteOp::Part,
        key: "datastore_activity".into(),
        fault: WriteFault::Hold,
    });
    let mut child = world.invoke_until_held("lake");
    child.kill().unwrap();
    child.wait().unwrap();
    let activity_key = &clean[2].0;
    assert_eq!(
        world.open_uploads("lake").await,
        vec![activity_key.clone()],
        "a killed process cannot abort: its upload is left, under the object's own key"
    );
    ok(&world.invoke("lake"));
    assert_same(
        &world.objects("lake").await,
        &clean,
        "after a kill mid-upload",
    );
    // The retry completed its own upload; the killed one stays for the lifecycle rule.
    assert_eq!(world.open_uploads("lake").await, vec![activity_key.clone()]);
}
