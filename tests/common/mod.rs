//! Integration-test harness: a private `moto_server` on loopback and real AWS SDK clients for it.
//!
//! Every test starts its own [`Moto`] (one server process, about a second to start), so tests
//! share no buckets or streams and can run in parallel. The process is killed when the `Moto`
//! drops, also when the test panics. A server shared per test binary through a `static` would
//! never be dropped and would outlive the test run.
//!
//! How moto delivers Firehose records to an S3 destination (pinned by `tests/moto_smoke.rs`):
//! each `PutRecord`/`PutRecordBatch` call writes ONE object holding the call's record data
//! concatenated in order, with nothing added between records (no newline). Its key is
//! `{Prefix}YYYY/MM/DD/HH/{stream}-1-YYYY-MM-DD-HH-MM-SS-{random uuid}`, so keys of calls made in
//! the same second sort in random order: compare delivered records as a sorted list (or within one
//! object), never by object order. Moto does not buffer, compress, transform or fail records:
//! `FailedPutCount` is always 0 (partial failures are tested with `aws-smithy-mocks`).

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod fault_proxy;
pub mod log_time;
pub mod session_lines;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_firehose::types::{ExtendedS3DestinationConfiguration, Record};
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

/// Region every test client and the server's resources use.
pub const REGION: &str = "us-east-1";
/// The account moto assigns to any access key it did not issue itself.
pub const ACCOUNT_ID: &str = "123456789012";
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";
/// Moto accepts any role ARN for a delivery stream; it never assumes it.
pub const FIREHOSE_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/firehose-delivery";

/// Upper bound on waiting for a starting server (a cold Python import on a busy 2-core machine).
/// It only limits how long a broken start hangs; no test result depends on it.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const READY_ATTEMPTS: u32 = 200;
const READY_PAUSE: Duration = Duration::from_millis(100);

/// A `moto_server` process of this test, listening on a free loopback port.
pub struct Moto {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` and `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    pub port: u16,
    /// The server's own output (one line per request), kept for debugging a failed test.
    pub log_path: PathBuf,
    child: Child,
}

impl Moto {
    /// Starts a server and returns once it answers HTTP.
    ///
    /// The server binds port 0 itself and the port is read from its start-up line: no window in
    /// which another process could take a port picked here and freed again.
    pub fn start() -> Moto {
        let program = moto_server_path();
        let mut child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Werkzeug writes the "Running on" line and then one line per request to stderr.
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));

        let stderr = child.stderr.take().expect("stderr is piped");
        let log_path = log_dir().join(format!("moto-{}.log", child.id()));
        let mut log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let (port_tx, port_rx) = mpsc::channel();
        // Drains stderr for the server's whole life: a full pipe would block the server.
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(port) = listening_port(&line) {
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });

        let port = match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "moto_server ({}) did not report a port; its output:\n{}",
                    program.display(),
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            log_path,
            child,
        };
        moto.wait_until_ready();
        moto
    }

    fn wait_until_ready(&self) {
        for _ in 0..READY_ATTEMPTS {
            if http_get_ok(self.port, "/moto-api/") {
                return;
            }
            std::thread::sleep(READY_PAUSE);
        }
        panic!(
            "moto_server on port {} does not answer; its output:\n{}",
            self.port,
            std::fs::read_to_string(&self.log_path).unwrap_or_default()
        );
    }

    /// Environment for a child process (the binary, `cargo lambda`) that talks to this server
    /// through the standard AWS configuration. Remove [`AWS_ENV_REMOVE`] as well, or use
    /// [`Moto::configure`].
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Points `command` at this server and strips the developer's own AWS settings from it.
    pub fn configure<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        for name in AWS_ENV_REMOVE {
            command.env_remove(name);
        }
        command.envs(self.aws_env())
    }
}

/// Variables that would override the test configuration of [`Moto::aws_env`].
pub const AWS_ENV_REMOVE: &[&str] = &[
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds `moto_server`: `$MOTO_SERVER` (set by the Makefile), then the project's `.venv`, then
/// `PATH`.
fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    }) {
        return found;
    }
    panic!(
        "moto_server not found (looked at $MOTO_SERVER, {}, and PATH). Run `make test`, which \
         installs it into .venv, or `make venv` and then cargo test.",
        venv.display()
    );
}

fn log_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The port in Werkzeug's " * Running on http://127.0.0.1:PORT" line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("Running on http://")? + "Running on http://".len()..];
    let port = rest.rsplit(':').next()?;
    port.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

/// One plain HTTP/1.1 GET; true on a 200 answer.
fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).is_ok()
        && status.starts_with(b"HTTP/1.")
        && &status[9..12] == b"200"
}

/// SDK configuration for the server at `endpoint`: fixed region and test credentials, nothing
/// read from the developer's profile or environment.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "moto-test",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// S3 client for the server; path-style, since `BUCKET.127.0.0.1` does not resolve.
pub async fn s3_client(moto: &Moto) -> aws_sdk_s3::Client {
    let config = sdk_config(&moto.endpoint).await;
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

pub async fn firehose_client(moto: &Moto) -> aws_sdk_firehose::Client {
    aws_sdk_firehose::Client::new(&sdk_config(&moto.endpoint).await)
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
}

pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: impl Into<Vec<u8>>,
) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"));
}

/// A Direct PUT stream whose records moto writes straight into `dest_bucket` (no key prefix).
pub async fn create_delivery_stream_to_bucket(
    firehose: &aws_sdk_firehose::Client,
    stream: &str,
    dest_bucket: &str,
) {
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(FIREHOSE_ROLE_ARN)
        .bucket_arn(format!("arn:aws:s3:::{dest_bucket}"))
        .build()
        .expect("role and bucket are set");
    firehose
        .create_delivery_stream()
        .delivery_stream_name(stream)
        .delivery_stream_type(aws_sdk_firehose::types::DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create delivery stream {stream}: {e:?}"));
}

/// Sends `records` in one `PutRecordBatch` call and asserts that moto accepted all of them.
pub async fn put_record_batch(
    firehose: &aws_sdk_firehose::Client,
    stream: &str,
    records: &[&[u8]],
) {
    let records = records
        .iter()
        .map(|data| {
            Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new(data.to_vec()))
                .build()
                .expect("data is set")
        })
        .collect::<Vec<_>>();
    let out = firehose
        .put_record_batch()
        .delivery_stream_name(stream)
        .set_records(Some(records))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put record batch to {stream}: {e:?}"));
    assert_eq!(out.failed_put_count(), 0, "moto failed records of a batch");
}

/// Every object under `prefix` in `bucket`, with its body, sorted by key.
pub async fn read_all_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("list s3://{bucket}/{prefix}: {e:?}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys.sort();

    let mut objects = Vec::with_capacity(keys.len());
    for key in keys {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"))
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("read s3://{bucket}/{key}: {e:?}"))
            .into_bytes()
            .to_vec();
        objects.push((key, body));
    }
    objects
}

/// The NDJSON lines Firehose delivered into `bucket`, sorted: objects (one per call) come back in
/// no particular order, so only the sorted list is comparable. Every record is expected to end
/// with `\n`; a record without one would merge with the next record of its call.
pub async fn delivered_lines(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, body) in read_all_objects(s3, bucket, "").await {
        let text = String::from_utf8(body).unwrap_or_else(|e| panic!("{key} is not UTF-8: {e}"));
        lines.extend(text.lines().map(str::to_owned));
    }
    lines.sort();
    lines
}

/// Every variable the binary reads as a setting, plus per-service endpoint overrides and the log
/// filter: removed from a child's environment first, so a developer's own values never leak into
/// a test.
pub fn setting_names() -> Vec<&'static str> {
    let mut names = redshift_audit_forwarder::settings::var::ALL.to_vec();
    names.extend([
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_FIREHOSE",
        "RUST_LOG",
    ]);
    names
}

/// `text` gzipped in memory, as Redshift writes its files.
pub fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Delivered records in a stable order (moto's objects come in random order): by key, line and
/// part, then by content.
pub fn sorted_records(mut records: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    records.sort_by_cached_key(|r| {
        (
            r["source"]["key"].as_str().unwrap_or_default().to_string(),
            r["source"]["line"].as_u64(),
            r["part"].as_u64(),
            r.to_string(),
        )
    });
    records
}

/// The venv's Python (beside `MOTO_SERVER`, else the project's `.venv`).
pub fn python() -> std::path::PathBuf {
    let from_moto = std::env::var_os("MOTO_SERVER")
        .filter(|p| !p.is_empty())
        .and_then(|p| {
            std::path::PathBuf::from(p)
                .parent()
                .map(|d| d.join("python"))
        });
    let from_venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    from_moto.filter(|p| p.exists()).unwrap_or(from_venv)
}

/// Runs the OCSF 1.1.0 checker (`scripts/ocsf_check.py`, pydantic-ocsf) on NDJSON events:
/// (success, its report).
pub fn ocsf_check(ndjson: &[u8], test: &str) -> (bool, String) {
    let path =
        std::env::temp_dir().join(format!("ocsf-check-{}-{test}.ndjson", std::process::id()));
    std::fs::write(&path, ndjson).expect("write events");
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ocsf_check.py");
    let python = python();
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run `make venv` (pydantic-ocsf from requirements-dev.txt)",
                python.display()
            )
        });
    let _ = std::fs::remove_file(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A moto server with `buckets` and a Firehose stream `stream` delivering to the bucket `dest`
/// (created too), and an empty scratch folder `<target tmp>/<suite>/<test>-<pid>`: the world
/// most integration tests start from.
pub async fn stream_world(
    suite: &str,
    test: &str,
    buckets: &[&str],
    stream: &str,
    dest: &str,
) -> (Moto, aws_sdk_s3::Client, std::path::PathBuf) {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    let firehose = firehose_client(&moto).await;
    for bucket in buckets {
        create_bucket(&s3, bucket).await;
    }
    create_bucket(&s3, dest).await;
    create_delivery_stream_to_bucket(&firehose, stream, dest).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    (moto, s3, dir)
}

/// One record of a direct S3 notification as S3 sends it: `key` as given (the caller encodes
/// it as S3 would), the ETag without quotes.
pub fn s3_notification_record(bucket: &str, key: &str, etag: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2024-03-01T02:14:07.318Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "redshift-audit-forwarder",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": 1, "eTag": etag.trim_matches('"'), "sequencer": "00"}
        }
    })
}

/// The binary the fault tests run: `FAULTS_BIN` (a release build, for the benchmarks), else the
/// test build of this crate.
pub fn faults_bin() -> String {
    std::env::var("FAULTS_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_redshift-audit-forwarder").to_string())
}

/// Makes `command` (the binary, run by a test) see only what the test sets: none of the
/// developer's settings or AWS profile, and `moto` as its AWS endpoint and credentials.
pub fn isolate(command: &mut std::process::Command, moto: &Moto) {
    for name in setting_names() {
        command.env_remove(name);
    }
    moto.configure(command);
}

/// `SECURITY_LAKE_SOURCES` with every class under `s3://<bucket>/ext/<class>/`.
pub fn lake_sources(bucket: &str) -> String {
    [
        "authentication",
        "account_change",
        "datastore_activity",
        "api_activity",
        "base_event",
    ]
    .iter()
    .map(|c| format!("{c}=s3://{bucket}/ext/{c}/"))
    .collect::<Vec<_>>()
    .join(",")
}
