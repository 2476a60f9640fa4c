//! The doctor against a private moto server: a healthy deployment passes every check, and each
//! broken part (missing bucket, empty prefix, only other log types, missing stream, missing
//! state bucket, a bucket policy without Redshift, no notification) fails or warns on its own
//! check, with a fix. One server for all cases; each case differs in its settings or its bucket.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_firehose::types::{
    CompressionFormat, DeliveryStreamType, ExtendedS3DestinationConfiguration,
};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use common::{create_bucket, put_object, sdk_config, Moto};
use redshift_audit_forwarder::diagnose::checkup;
use redshift_audit_forwarder::doctor::{Report, Status};
use redshift_audit_forwarder::settings::Settings;
use redshift_audit_forwarder::time::{date_of_day, day_label, day_of, now_ms};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";
const STREAM: &str = "audit-stream";
const STATE: &str = "state-bucket";
const MINUTE: i64 = 60_000;

const CONNECTION_LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
const USER_LINE: &str =
    "100|alice | |create |1|0|0|9223372036854775807|5108|1234|Mon, 7 Dec 2020 20:01:55:177";
const ACTIVITY_LINE: &str =
    "'2020-12-08T22:00:03Z UTC [ db=dev user=alice pid=1 userid=100 xid=2 ]' LOG: select 1;";

/// The key of a file of `log_type` written `ago_ms` before now.
fn key(log_type: &str, ago_ms: i64) -> String {
    let ms = now_ms() - ago_ms;
    let day = day_of(ms);
    let (y, m, d) = date_of_day(day).unwrap();
    let minutes = ms.rem_euclid(86_400_000) / MINUTE;
    format!(
        "{PREFIX}/{y:04}/{m:02}/{d:02}/123456789012_redshift_us-east-1_prod_{log_type}_{}T{:02}:{:02}.gz",
        day_label(day),
        minutes / 60,
        minutes % 60
    )
}

fn redshift_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Put", "Effect": "Allow", "Principal": {{"Service": "redshift.amazonaws.com"}},
              "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{bucket}/*"}},
            {{"Sid": "Acl", "Effect": "Allow", "Principal": {{"Service": "redshift.amazonaws.com"}},
              "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::{bucket}"}}]}}"#
    )
}

fn other_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Trail", "Effect": "Allow", "Principal": {{"Service": "cloudtrail.amazonaws.com"}},
              "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

struct World {
    moto: Moto,
    s3: aws_sdk_s3::Client,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start();
        let s3 = common::s3_client(&moto).await;
        let firehose = common::firehose_client(&moto).await;
        create_bucket(&s3, STATE).await;
        create_bucket(&s3, "dest").await;
        // Moto leaves out the compression format unless it was given, and the SDK requires it in
        // DescribeDeliveryStream's answer (AWS always sends it).
        firehose
            .create_delivery_stream()
            .delivery_stream_name(STREAM)
            .delivery_stream_type(DeliveryStreamType::DirectPut)
            .extended_s3_destination_configuration(
                ExtendedS3DestinationConfiguration::builder()
                    .role_arn(common::FIREHOSE_ROLE_ARN)
                    .bucket_arn("arn:aws:s3:::dest")
                    .compression_format(CompressionFormat::Uncompressed)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create the stream");
        World { moto, s3 }
    }

    /// An audit bucket with fresh files of every type, and as asked, a Redshift policy and an
    /// event notification for `.gz` objects under `notify` (moto does not return an
    /// `EventBridgeConfiguration`, so the unit tests cover that kind of trigger; and it answers a
    /// bucket without any notification with an empty body the SDK cannot read, where S3 sends an
    /// empty `NotificationConfiguration`, so "no notification" here is one for another prefix).
    async fn audit_bucket(&self, name: &str, policy: Option<String>, notify: &str) {
        create_bucket(&self.s3, name).await;
        for (log_type, line) in [
            ("connectionlog", CONNECTION_LINE),
            ("userlog", USER_LINE),
            ("useractivitylog", ACTIVITY_LINE),
        ] {
            let body = common::gzip(&format!("{line}\n{line}\n"));
            put_object(&self.s3, name, &key(log_type, 30 * MINUTE), body).await;
        }
        if let Some(policy) = policy {
            self.s3
                .put_bucket_policy()
                .bucket(name)
                .policy(policy)
                .send()
                .await
                .expect("put bucket policy");
        }
        {
            let rule = |name: FilterRuleName, value: &str| {
                FilterRule::builder().name(name).value(value).build()
            };
            let lambda = LambdaFunctionConfiguration::builder()
                .lambda_function_arn("arn:aws:lambda:us-east-1:123456789012:function:forwarder")
                .events(Event::from("s3:ObjectCreated:*"))
                .filter(
                    NotificationConfigurationFilter::builder()
                        .key(
                            S3KeyFilter::builder()
                                .filter_rules(rule(FilterRuleName::Prefix, notify))
                                .filter_rules(rule(FilterRuleName::Suffix, ".gz"))
                                .build(),
                        )
                        .build(),
                )
                .build()
                .unwrap();
            self.s3
                .put_bucket_notification_configuration()
                .bucket(name)
                .notification_configuration(
                    NotificationConfiguration::builder()
                        .lambda_function_configurations(lambda)
                        .build(),
                )
                .send()
                .await
                .expect("put notification configuration");
        }
    }

    async fn doctor(&self, vars: &[(&str, &str)]) -> Report {
        let mut all: BTreeMap<String, String> = [
            ("DELIVERY_STREAM", STREAM),
            ("AUDIT_BUCKET", "audit"),
            ("AUDIT_PREFIX", PREFIX),
            ("STATE_BUCKET", STATE),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            all.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::from_vars(|n| all.get(n).cloned()).expect("valid settings");
        checkup(&sdk_config(&self.moto.endpoint).await, &settings).await
    }
}

/// Asserts `name` came out `want` with a fix, and says what the report said otherwise.
fn assert_check(report: &Report, name: &str, want: Status, words: &str) {
    let check = report.check(name).unwrap();
    assert_eq!(check.status, want, "{name}:\n{}", report.text());
    assert!(
        check.detail.contains(words),
        "{name} should say {words:?}:\n{}",
        report.text()
    );
    assert!(
        check.fix.as_ref().is_some_and(|f| f.len() > 20),
        "{name} has a fix:\n{}",
        report.text()
    );
    assert_eq!(report.ok, want != Status::Failed, "{}", report.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_passes_a_healthy_deployment_and_names_each_broken_part() {
    let world = World::new().await;
    world
        .audit_bucket(
            "audit",
            Some(redshift_policy("audit")),
            &format!("{PREFIX}/"),
        )
        .await;

    let healthy = world.doctor(&[]).await;
    assert!(healthy.ok, "{}", healthy.text());
    for check in &healthy.checks {
        assert_eq!(check.status, Status::Ok, "{}", healthy.text());
    }
    assert!(healthy
        .check("settings")
        .unwrap()
        .detail
        .contains("123456789012"));
    assert!(healthy
        .check("sample")
        .unwrap()
        .detail
        .contains("2 records"));
    assert!(healthy
        .check("stream")
        .unwrap()
        .detail
        .contains("arn:aws:s3:::dest"));
    // The state probe is one object, overwritten on every run.
    world.doctor(&[]).await;
    let probes = common::read_all_objects(&world.s3, STATE, "redshift-audit-forwarder/").await;
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(probes[0].0.ends_with("doctor/probe.json"));

    let missing_bucket = world.doctor(&[("AUDIT_BUCKET", "no-such-audit")]).await;
    assert_check(
        &missing_bucket,
        "audit_bucket",
        Status::Failed,
        "does not exist",
    );

    let empty_prefix = world
        .doctor(&[("AUDIT_PREFIX", "AWSLogs/123456789012/redshift/eu-west-1")])
        .await;
    assert_check(
        &empty_prefix,
        "audit_files",
        Status::Failed,
        "no day partitions",
    );

    world
        .s3
        .create_bucket()
        .bucket("audit-conn")
        .send()
        .await
        .unwrap();
    put_object(
        &world.s3,
        "audit-conn",
        &key("connectionlog", 20 * MINUTE),
        common::gzip(CONNECTION_LINE),
    )
    .await;
    let only_other = world
        .doctor(&[
            ("AUDIT_BUCKET", "audit-conn"),
            ("LOG_TYPES", "useractivitylog"),
        ])
        .await;
    assert_check(
        &only_other,
        "audit_files",
        Status::Failed,
        "only connectionlog",
    );

    let missing_stream = world.doctor(&[("DELIVERY_STREAM", "no-such-stream")]).await;
    assert_check(&missing_stream, "stream", Status::Failed, "does not exist");

    let missing_state = world.doctor(&[("STATE_BUCKET", "no-such-state")]).await;
    assert_check(&missing_state, "state", Status::Failed, "no-such-state");

    world
        .audit_bucket(
            "audit-nopolicy",
            Some(other_policy("audit-nopolicy")),
            &format!("{PREFIX}/"),
        )
        .await;
    let no_redshift = world.doctor(&[("AUDIT_BUCKET", "audit-nopolicy")]).await;
    assert_check(
        &no_redshift,
        "bucket_policy",
        Status::Warning,
        "does not grant Redshift",
    );

    world
        .audit_bucket(
            "audit-nonotify",
            Some(redshift_policy("audit-nonotify")),
            "elsewhere/",
        )
        .await;
    let no_notification = world.doctor(&[("AUDIT_BUCKET", "audit-nonotify")]).await;
    assert_check(
        &no_notification,
        "trigger",
        Status::Warning,
        "neither EventBridge",
    );
    assert!(healthy
        .check("trigger")
        .unwrap()
        .detail
        .contains("function:forwarder"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_command_prints_one_line_per_check_and_fails_on_a_failed_check() {
    let world = World::new().await;
    world
        .audit_bucket(
            "audit",
            Some(redshift_policy("audit")),
            &format!("{PREFIX}/"),
        )
        .await;
    let run = |stream: &str, json: bool| {
        let mut command = Command::new(BIN);
        common::isolate(&mut command, &world.moto);
        command
            .arg("doctor")
            .args(json.then_some("--json"))
            .env("DELIVERY_STREAM", stream)
            .env("AUDIT_BUCKET", "audit")
            .env("AUDIT_PREFIX", PREFIX)
            .env("STATE_BUCKET", STATE)
            .output()
            .expect("run the binary")
    };
    let ok = run(STREAM, false);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(text.lines().count(), 9, "{text}");
    assert!(text.lines().all(|l| l.contains(" ok ")), "{text}");

    let failed = run("no-such-stream", true);
    assert_eq!(failed.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["checks"][7]["name"], "stream");
    assert_eq!(report["checks"][7]["status"], "failed");

    // Invalid settings: check 1 lists them, exit 1, no AWS call needed.
    let mut command = Command::new(BIN);
    for name in common::setting_names() {
        command.env_remove(name);
    }
    let invalid = command
        .args(["doctor"])
        .env("METRICS", "maybe")
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    let text = String::from_utf8_lossy(&invalid.stdout);
    assert!(
        text.contains("DELIVERY_STREAM") && text.contains("METRICS"),
        "{text}"
    );
}
