//! Hostile objects through the real binary's `invoke` against a private moto server: peak RSS
//! (`/usr/bin/time -f %M`) stays under 128 MiB on each, the gzip of zeros costs a few KiB of
//! Firehose payload, and an object that expands past `MAX_EXPANSION` is stopped, not retried.
//!
//! The objects: four 20 MiB lines of control bytes (JSON escaping grows them sixfold), as a
//! connection log and as a user activity log; 1 GiB of zeros gzipped to about 1 MB, as a user
//! activity log (the text is an "orphan" before any header). `MAX_EXPANSION` is raised so each
//! object is read to its end, the worst case for memory; the default stops the zeros early.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use common::{put_object, Moto};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const BUCKET: &str = "audit-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";
const DAY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/";
/// The budget of the Lambda path, whatever the input.
const MAX_RSS_KIB: u64 = 128 * 1024;

fn key(log_type: &str, name: &str) -> String {
    format!("{DAY}123456789012_redshift_us-east-1_{name}_{log_type}_2024-03-01T00:53.gz")
}

fn gzip_best(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Four lines of 20 MiB of control bytes (no tab, no line end): one gzip member a line (the
/// same text as one member, compressed once).
fn control_lines() -> Vec<u8> {
    let pattern: Vec<u8> = (1u8..32).filter(|b| ![9, 10, 13].contains(b)).collect();
    let mut line: Vec<u8> = pattern.iter().copied().cycle().take(20 << 20).collect();
    line.push(b'\n');
    gzip_best(&line).repeat(4)
}

/// `mib` MiB of zeros (1 GiB is about 1 MB of gzip), as members of 16 MiB compressed once.
fn zeros(mib: usize) -> Vec<u8> {
    gzip_best(&vec![0u8; 16 << 20]).repeat(mib / 16)
}

/// The binary measured: this build's, or another (`HOSTILE_BIN`, to measure a release build or
/// an older one with the same test).
fn binary() -> String {
    std::env::var("HOSTILE_BIN").unwrap_or_else(|_| BIN.to_string())
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    dir: PathBuf,
}

/// What one `invoke` did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    peak_rss_kib: u64,
}

impl World {
    async fn new(test: &str) -> World {
        let (moto, s3, dir) =
            common::stream_world("hostile_moto", test, &[BUCKET], STREAM, DEST).await;
        World { moto, s3, dir }
    }

    /// Uploads `body` under `key` and runs `invoke` on a direct S3 event for it, under
    /// `/usr/bin/time`.
    async fn invoke(&self, key: &str, body: Vec<u8>, settings: &[(&str, &str)]) -> Run {
        put_object(&self.s3, BUCKET, key, body).await;
        let event = json!({"Records": [common::s3_notification_record(BUCKET, key, "0")]});
        let event_path = self.dir.join("event.json");
        std::fs::write(&event_path, event.to_string()).expect("write event");
        let rss_path = self.dir.join("rss");
        let mut command = Command::new("/usr/bin/time");
        command
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_path)
            .arg(binary())
            .arg("invoke")
            .arg(&event_path);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", BUCKET)
            .env("AUDIT_PREFIX", PREFIX)
            .envs(settings.iter().copied());
        let output = command.output().expect("run /usr/bin/time");
        let rss = std::fs::read_to_string(&rss_path).expect("time's output");
        let peak_rss_kib = rss
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no RSS in {rss:?}"));
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            peak_rss_kib,
        }
    }
}

impl Run {
    fn receipt(&self) -> Value {
        assert!(self.success, "invoke failed:\n{}", self.stderr);
        let response: Value = serde_json::from_str(self.stdout.trim()).expect("JSON response");
        response["receipts"][0].clone()
    }
}

/// Reads every object to its end: the worst case for memory.
const READ_ALL: (&str, &str) = ("MAX_EXPANSION", "100000");

#[tokio::test]
async fn control_byte_lines_stay_under_128_mib_and_cost_little_in_both_log_types() {
    let world = World::new("control").await;
    let body = control_lines();
    for log_type in ["connectionlog", "useractivitylog"] {
        let key = key(log_type, "control");
        let run = world.invoke(&key, body.clone(), &[READ_ALL]).await;
        let receipt = run.receipt();
        eprintln!(
            "{log_type}: four 20 MiB lines of control bytes ({} bytes gzip): peak RSS {} KiB, payload {} bytes",
            body.len(),
            run.peak_rss_kib,
            receipt["payload_bytes"]
        );
        assert!(
            run.peak_rss_kib < MAX_RSS_KIB,
            "{log_type}: {} KiB",
            run.peak_rss_kib
        );
        assert_eq!(
            receipt["text_bytes"],
            4 * ((20 << 20) + 1),
            "{log_type}: read to the end"
        );
        assert_eq!(receipt["records"], 1, "{log_type}: one record for the run");
        let payload = receipt["payload_bytes"].as_u64().expect("payload_bytes");
        assert!(payload < 4096, "{log_type}: {payload} bytes of payload");
    }
}

#[tokio::test]
async fn a_gzip_of_zeros_costs_a_few_kib_of_payload_under_128_mib() {
    // 256 MiB read to the end (1 GiB takes minutes in a debug build; the release numbers for
    // 1 GiB are in the README).
    let world = World::new("zeros").await;
    let body = zeros(256);
    let key = key("useractivitylog", "zeros");
    let run = world.invoke(&key, body.clone(), &[READ_ALL]).await;
    let receipt = run.receipt();
    eprintln!(
        "256 MiB of zeros ({} bytes gzip), read to the end: peak RSS {} KiB, payload {} bytes",
        body.len(),
        run.peak_rss_kib,
        receipt["payload_bytes"]
    );
    assert!(run.peak_rss_kib < MAX_RSS_KIB, "{} KiB", run.peak_rss_kib);
    assert_eq!(receipt["text_bytes"], 256u64 << 20);
    assert_eq!(receipt["records"], 1);
    let payload = receipt["payload_bytes"].as_u64().expect("payload_bytes");
    assert!(payload < 4096, "{payload} bytes of payload");
    let delivered = common::delivered_lines(&world.s3, DEST).await;
    let record: Value = serde_json::from_str(&delivered[0]).expect("JSON record");
    assert_eq!(record["raw_bytes"], 256u64 << 20);
    assert_eq!(record["raw_xxh3"].as_str().map(str::len), Some(32));
}

#[tokio::test]
async fn a_one_mb_gzip_of_zeros_is_stopped_by_max_expansion_naming_it_not_retryable() {
    let world = World::new("bomb").await;
    let body = zeros(1024);
    assert!(body.len() < 1_100_000, "about 1 MB: {}", body.len());
    let key = key("useractivitylog", "bomb");
    let stopped = world.invoke(&key, body, &[]).await;
    eprintln!(
        "1 GiB of zeros, default MAX_EXPANSION: peak RSS {} KiB",
        stopped.peak_rss_kib
    );
    assert!(!stopped.success, "stopped:\n{}", stopped.stdout);
    assert!(
        stopped.peak_rss_kib < MAX_RSS_KIB,
        "{} KiB",
        stopped.peak_rss_kib
    );
    let failure = stopped
        .stderr
        .lines()
        .find(|l| l.contains("MAX_EXPANSION") && l.contains("retryable"))
        .unwrap_or_else(|| panic!("no MAX_EXPANSION error:\n{}", stopped.stderr));
    assert!(failure.contains(&key), "names the object: {failure}");
    assert!(
        failure.contains("\"retryable\":false"),
        "not retryable: {failure}"
    );
    // What was read before the stop (the run's one record) was delivered, and costs little.
    let delivered = common::delivered_lines(&world.s3, DEST).await;
    assert_eq!(delivered.len(), 1, "one record for the run");
    assert!(delivered[0].len() < 4096, "{} bytes", delivered[0].len());
}
