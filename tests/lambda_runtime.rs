//! The real Lambda runtime loop: `cargo lambda watch --only-lambda-apis` emulates the Lambda
//! control plane, the function is this crate's binary as cargo built it for the tests (started
//! here with the environment the emulator asks for, as Lambda starts `bootstrap`), `cargo lambda
//! invoke` sends it `events/s3-direct.json`, then a CloudWatch Logs subscription event built as
//! CloudWatch Logs sends it, and the records of both land in moto's Firehose destination.
//!
//! The test does not let the emulator build the function with `cargo run`: that build has no
//! dev-dependencies, so cargo resolves other features for the AWS SDK crates and builds them all a
//! second time, which doubles the target folder (gigabytes) and the time of a clean `make test`.
//!
//! cargo-lambda is found through `$CARGO_LAMBDA`, then the project's `.venv/bin` (`make venv`
//! installs the pinned version), then `PATH`. Both commands get an explicit loopback address and
//! a free port. The function gets its settings and the moto endpoint as its environment.

mod common;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::{create_bucket, create_delivery_stream_to_bucket, firehose_client, put_object, Moto};
use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::output::Provenance;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const FUNCTION: &str = "redshift-audit-forwarder";
const BUCKET: &str = "audit-bucket";
const DEST: &str = "delivered";
const STREAM: &str = "redshift-audit";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";
/// The object `events/s3-direct.json` names.
const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/\
                   123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53.gz";

/// Pauses between readiness checks of the emulator's port, and how many: only a bound on how
/// long a broken start hangs; no result depends on it.
const READY_PAUSE: Duration = Duration::from_millis(100);
const READY_ATTEMPTS: u32 = 600;
/// Bound on one `cargo lambda invoke` (the function is already built).
const INVOKE_ATTEMPTS: u32 = 6_000;
/// Bound on the emulator's orderly shutdown after SIGTERM, before SIGKILL.
const STOP_ATTEMPTS: u32 = 100;

const CONNECTION_LOG: &str = "\
authenticated |Fri, 1 Mar 2024 00:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | | | | |
authentication failure |Fri, 1 Mar 2024 00:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de
initiating session |Fri, 1 Mar 2024 00:20:00:001|10.1.2.3 |40000 |9001|analytics |IAM:bob |IAM AssumeUser |0|TLSv1.3 |TLS_AES_256_GCM_SHA384 |1500| | | |psql café |Linux |libpq 16 |none |3|5c4e0f2a-0000-4000-8000-000000000001
not a connection log line
disconnecting session |Fri, 1 Mar 2024 00:25:00:002|10.1.2.3 |40000 |9001|analytics |IAM:bob |IAM AssumeUser |300000001|TLSv1.3 |TLS_AES_256_GCM_SHA384 |1500| | | |psql café |Linux |libpq 16 |none |3|5c4e0f2a-0000-4000-8000-000000000001
";

/// A user activity log group of a provisioned cluster, as Redshift names it in CloudWatch Logs.
const LOG_GROUP: &str = "/aws/redshift/cluster/analytics-prod/useractivitylog";

/// A subscription event exactly as CloudWatch Logs sends it: the batch as JSON, gzip, base64,
/// under `awslogs.data`. The first statement spans two log events.
fn subscription_event() -> Value {
    let messages = [
        "'2024-03-01T00:01:55Z UTC [ db=dev user=alice pid=23170 userid=104 xid=245636 ]' LOG: \
         SELECT order_id,",
        "       total FROM sales WHERE region = 'EU';",
        "'2024-03-01T00:02:10Z UTC [ db=dev user=bob pid=23171 userid=105 xid=245637 ]' LOG: \
         select 1;",
    ];
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            json!({"id": format!("3813245680912345678901234567890123456789012345678901234{i}"),
                   "timestamp": 1_709_251_315_000i64 + i as i64, "message": message})
        })
        .collect();
    let batch = json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": LOG_GROUP, "logStream": "analytics-prod-useractivitylog",
        "subscriptionFilters": ["redshift-audit-forwarder"], "logEvents": events});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch.to_string().as_bytes()).expect("gzip");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    json!({"awslogs": {"data": data}})
}

/// `parse`'s records for a saved subscription event, with the function's region.
fn parsed_subscription(event: &Path) -> Vec<Value> {
    let output = Command::new(BIN)
        .arg("parse")
        .arg(event)
        .env("AWS_REGION", common::REGION)
        .env_remove("OUTPUT_FORMAT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN} parse: {e}"));
    assert!(
        output.status.success(),
        "parse failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

/// `cargo lambda watch --only-lambda-apis` on a free loopback port, and the function polling it;
/// both stopped on drop.
struct Watch {
    child: Child,
    function: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Watch {
    fn start(cargo_lambda: &Path, function_env: &[(String, String)], log: PathBuf) -> Watch {
        let port = free_port();
        let out = std::fs::File::create(&log).expect("watch log");
        let mut command = Command::new(cargo_lambda);
        command
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("watch log"))
            .stderr(out.try_clone().expect("watch log"));
        // A process group of its own for the emulator.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", cargo_lambda.display()));
        let mut watch = Watch {
            child,
            function: None,
            port,
            log,
        };
        watch.wait_until_listening();

        // The function, with what the emulator says it MUST see (it logs these names at start)
        // and the test's settings; nothing of the developer's own environment.
        let mut function = Command::new(BIN);
        function
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{FUNCTION}"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .envs(function_env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("watch log"))
            .stderr(out);
        watch.function = Some(
            function
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}")),
        );
        watch
    }

    /// Whether the function process has ended (a start-up error): the emulator then holds the
    /// invoke request forever, so the test stops waiting at once.
    fn function_exited(&mut self) -> Option<ExitStatus> {
        self.function.as_mut()?.try_wait().ok().flatten()
    }

    /// A TCP connect, not an HTTP request: a request to the emulator can start a function
    /// instance of its own.
    fn wait_until_listening(&mut self) {
        for _ in 0..READY_ATTEMPTS {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "cargo lambda watch exited ({status}) before listening:\n{}",
                    self.output()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(READY_PAUSE);
        }
        panic!(
            "cargo lambda watch does not listen on 127.0.0.1:{}:\n{}",
            self.port,
            self.output()
        );
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(function) = self.function.as_mut() {
            let _ = function.kill();
            let _ = function.wait();
        }
        let pgid = self.child.id();
        // SIGTERM lets cargo-lambda stop in order; SIGKILL is the fallback.
        signal_group("TERM", pgid);
        for _ in 0..STOP_ATTEMPTS {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(READY_PAUSE);
        }
        signal_group("KILL", pgid);
        let _ = self.child.wait();
    }
}

/// Sends a signal to process group `pgid` through kill(1): the crate has no libc dependency.
fn signal_group(signal: &str, pgid: u32) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn cargo_lambda() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_LAMBDA").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/cargo-lambda");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("cargo-lambda"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found (looked at $CARGO_LAMBDA, {}, and PATH); `make venv` \
                 installs the pinned version",
                venv.display()
            )
        })
}

fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lambda_runtime")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("objects")).expect("scratch folder");
    dir
}

/// Runs `invoke` against `watch` to its end, bounded, with its output (kept in `dir`).
fn run_invoke(mut invoke: Command, watch: &mut Watch, dir: &Path) -> (ExitStatus, String, String) {
    let (out_path, err_path) = (dir.join("invoke.out"), dir.join("invoke.err"));
    let mut child = invoke
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("output file"))
        .stderr(std::fs::File::create(&err_path).expect("output file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start cargo lambda invoke: {e}"));
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let mut outcome = "did not finish";
    for _ in 0..INVOKE_ATTEMPTS {
        if let Ok(Some(status)) = child.try_wait() {
            return (status, read(&out_path), read(&err_path));
        }
        if let Some(status) = watch.function_exited() {
            outcome = if status.success() {
                "waits for a function that exited"
            } else {
                "waits for a function that failed"
            };
            break;
        }
        std::thread::sleep(READY_PAUSE);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "cargo lambda invoke {outcome}:\nstdout:\n{}\nstderr:\n{}\nwatch log:\n{}",
        read(&out_path),
        read(&err_path),
        watch.output()
    );
}

/// `parse`'s records for the local copy of `KEY`, with `source.bucket` and `id` as the Lambda
/// gives them for an object of `BUCKET` (see tests/lambda_moto.rs, which does this for every
/// envelope).
fn expected_records(objects: &Path) -> Vec<Value> {
    let output = Command::new(BIN)
        .args(["parse", KEY])
        .current_dir(objects)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN} parse: {e}"));
    assert!(output.status.success(), "parse failed");
    let name = parse_file_name(KEY).expect("an audit log name");
    let lambda = Provenance::new(name.log_type, Some(&name), Some(BUCKET), KEY);
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    common::sorted_records(
        text.lines()
            .enumerate()
            .map(|(ordinal, line)| {
                let mut record: Value = serde_json::from_str(line).expect("JSON");
                record["source"]["bucket"] = json!(BUCKET);
                let id = lambda.record_id(ordinal as u64);
                record["id"] = json!(String::from_utf8(id.to_vec()).expect("hex"));
                record
            })
            .collect(),
    )
}

#[tokio::test]
async fn cargo_lambda_runtime_loop_forwards_an_s3_event_and_a_cloudwatch_logs_batch_to_firehose() {
    let cargo_lambda = cargo_lambda();
    let moto = Moto::start();
    let s3 = common::s3_client(&moto).await;
    let firehose = firehose_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    create_bucket(&s3, DEST).await;
    create_delivery_stream_to_bucket(&firehose, STREAM, DEST).await;

    let dir = scratch_dir();
    let body = common::gzip(CONNECTION_LOG);
    let local = dir.join("objects").join(KEY);
    std::fs::create_dir_all(local.parent().expect("folder")).expect("mkdir");
    std::fs::write(&local, &body).expect("write fixture");
    put_object(&s3, BUCKET, KEY, body).await;

    // The function's whole environment beyond what the emulator sets: settings and moto.
    let settings = [
        ("DELIVERY_STREAM", STREAM.to_string()),
        ("AUDIT_BUCKET", BUCKET.to_string()),
        ("AUDIT_PREFIX", PREFIX.to_string()),
        ("PACK_RECORDS", "true".to_string()),
        // Pinned against `parse` of each input alone; the join has its own tests
        // (sessions_moto, sessions_cloudwatch_moto).
        ("SESSION_JOIN", "false".to_string()),
    ];
    let function_env: Vec<(String, String)> = moto
        .aws_env()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .chain(settings.iter().map(|(n, v)| (n.to_string(), v.clone())))
        .collect();

    let mut watch = Watch::start(&cargo_lambda, &function_env, dir.join("watch.log"));

    let event = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/s3-direct.json");
    let response = invoke(&cargo_lambda, &mut watch, &dir, &event);
    let receipts = response["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 1, "{response}");
    assert_eq!(receipts[0]["key"], KEY);
    assert_eq!(receipts[0]["records"], 5, "4 records and a parse error");
    assert_eq!(receipts[0]["parse_errors"], 1);

    let delivered = common::sorted_records(
        common::delivered_lines(&s3, DEST)
            .await
            .iter()
            .map(|line| serde_json::from_str(line).expect("delivered JSON"))
            .collect(),
    );
    let expected = expected_records(&dir.join("objects"));
    assert_eq!(expected.len(), 5);
    assert_eq!(delivered, expected, "delivered records are parse's");

    // The same running function, now subscribed to a log group.
    let event = dir.join("cloudwatch-logs.json");
    std::fs::write(&event, subscription_event().to_string()).expect("event file");
    let response = invoke(&cargo_lambda, &mut watch, &dir, &event);
    let receipts = response["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 1, "{response}");
    assert_eq!(receipts[0]["log_group"], LOG_GROUP, "{response}");
    assert_eq!(receipts[0]["records"], 2, "{response}");
    let all: Vec<Value> = common::delivered_lines(&s3, DEST)
        .await
        .iter()
        .map(|line| serde_json::from_str(line).expect("delivered JSON"))
        .collect();
    let from_logs = common::sorted_records(
        all.into_iter()
            .filter(|r| r["source"]["log_group"] == LOG_GROUP)
            .collect(),
    );
    let expected = common::sorted_records(parsed_subscription(&event));
    assert_eq!(expected.len(), 2);
    assert_eq!(from_logs, expected, "delivered records are parse's");
    assert!(
        from_logs.iter().any(|r| r["query"]
            .as_str()
            .is_some_and(|q| q.contains("SELECT order_id") && q.contains("FROM sales"))),
        "the statement across two log events is one record: {from_logs:?}"
    );
    drop(watch);
}

/// `cargo lambda invoke` of `event` on the running function: its JSON response.
fn invoke(cargo_lambda: &Path, watch: &mut Watch, dir: &Path, event: &Path) -> Value {
    let mut invoke = Command::new(cargo_lambda);
    invoke
        .args(["lambda", "invoke", FUNCTION])
        .args(["-A", "127.0.0.1", "-P", &watch.port.to_string()])
        .arg("--data-file")
        .arg(event)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let (status, stdout, stderr) = run_invoke(invoke, watch, dir);
    assert!(
        status.success(),
        "cargo lambda invoke failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}\n\
         watch log:\n{}",
        watch.output()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the invoke printed no JSON response ({e}):\n{stdout}\nwatch log:\n{}",
            watch.output()
        )
    })
}
