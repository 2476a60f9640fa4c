//! The doctor tells the truth about the walk's state (issue 17, item 7), against a private moto
//! server and the real binary: a cursor or lease the backfill refuses (`src/ledger/check.rs`)
//! fails the doctor's `state` check, naming the object and the fix, while the backfill stops on
//! the same object; once the object is repaired, both are fine again.

mod common;

use std::process::{Command, Output};

use common::{
    create_bucket, create_delivery_stream_to_bucket, firehose_client, put_object, s3_client, Moto,
};
use redshift_audit_forwarder::time::{date_of_day, day_label, now_ms, MS_PER_DAY};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const AUDIT: &str = "audit-bucket";
const STATE: &str = "state-bucket";
const STREAM: &str = "audit-stream";
const DEST: &str = "dest-bucket";
const TREE: &str = "AWSLogs/123456789012/redshift/us-east-1";
const STATE_PREFIX: &str = "redshift-audit-forwarder/";

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
}

impl World {
    /// An audit bucket with one connection log of today, a state bucket, a stream.
    async fn new() -> World {
        let moto = Moto::start();
        let s3 = s3_client(&moto).await;
        for bucket in [AUDIT, STATE, DEST] {
            create_bucket(&s3, bucket).await;
        }
        create_delivery_stream_to_bucket(&firehose_client(&moto).await, STREAM, DEST).await;
        let day = now_ms().div_euclid(MS_PER_DAY);
        let (y, m, d) = date_of_day(day).expect("a calendar day");
        let key = format!(
            "{TREE}/{y:04}/{m:02}/{d:02}/123456789012_redshift_us-east-1_prod_connectionlog_{}T00:13.gz",
            day_label(day)
        );
        let line = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\n";
        put_object(&s3, AUDIT, &key, common::gzip(line)).await;
        World { moto, s3 }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        common::isolate(&mut command, &self.moto);
        command
            .env("DELIVERY_STREAM", STREAM)
            .env("AUDIT_BUCKET", AUDIT)
            .env("AUDIT_PREFIX", TREE)
            .env("STATE_BUCKET", STATE)
            .output()
            .expect("run the binary")
    }

    /// `doctor --json`: its exit status and its `state` check.
    fn doctor_state(&self) -> (Option<i32>, Value) {
        let out = self.run(&["doctor", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        });
        let state = report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == "state"))
            .cloned()
            .unwrap_or_else(|| panic!("no state check: {report}"));
        (out.status.code(), state)
    }

    async fn state_keys(&self, folder: &str) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(STATE)
            .prefix(format!("{STATE_PREFIX}{folder}"))
            .send()
            .await
            .expect("list the state");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    async fn read(&self, key: &str) -> Value {
        let body = self
            .s3
            .get_object()
            .bucket(STATE)
            .key(key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        serde_json::from_slice(&body).expect("JSON state")
    }

    async fn write(&self, key: &str, value: &Value) {
        put_object(&self.s3, STATE, key, value.to_string().into_bytes()).await;
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_or_lease_the_backfill_refuses_fails_the_doctors_state_check_naming_the_fix() {
    let world = World::new().await;
    let walked = world.run(&["backfill"]);
    assert!(
        walked.status.success(),
        "{}",
        String::from_utf8_lossy(&walked.stderr)
    );
    let (_, state) = world.doctor_state();
    assert_eq!(state["status"], "ok", "{state}");

    // The walk's own cursor, moved a month into the future: the backfill stops on it.
    let cursors = world.state_keys("cursor/").await;
    assert_eq!(cursors.len(), 1, "{cursors:?}");
    let cursor_key = &cursors[0];
    let saved = world.read(cursor_key).await;
    let mut forged = saved.clone();
    forged["resume_day"] = json!(now_ms().div_euclid(MS_PER_DAY) + 30);
    world.write(cursor_key, &forged).await;
    let stopped = world.run(&["backfill"]);
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(cursor_key.as_str()), "{stderr}");

    // The doctor fails on the same object, naming it and how to repair it.
    let (code, state) = world.doctor_state();
    assert_eq!(code, Some(1), "{state}");
    assert_eq!(state["status"], "failed", "{state}");
    let location = format!("s3://{STATE}/{cursor_key}");
    assert!(text(&state["detail"]).contains(&location), "{state}");
    assert!(
        text(&state["detail"]).contains("BackfillStateRefused"),
        "{state}"
    );
    let fix = text(&state["fix"]);
    assert!(fix.contains(&format!("aws s3 rm {location}")), "{fix}");
    assert!(
        fix.contains("roll it back to its previous version"),
        "{fix}"
    );

    // Rolled back to what the walk wrote: both are fine again.
    world.write(cursor_key, &saved).await;
    assert_eq!(world.doctor_state().1["status"], "ok");

    // A lease held for ever: the same.
    let lease_key = format!("{STATE_PREFIX}lease.json");
    world
        .write(
            &lease_key,
            &json!({"v": 1, "owner": "attacker", "acquired_at_ms": now_ms(),
                    "expires_at_ms": i64::MAX, "released": false}),
        )
        .await;
    let (code, state) = world.doctor_state();
    assert_eq!(code, Some(1), "{state}");
    assert_eq!(state["status"], "failed", "{state}");
    assert!(
        text(&state["detail"]).contains(&format!("s3://{STATE}/{lease_key}")),
        "{state}"
    );
}
