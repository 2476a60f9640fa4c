//! The settings read from the environment: each variable's accepted forms, its default, and
//! every refusal naming the variable.

use super::*;
use std::collections::HashMap;

const STREAM: &str = "audit-stream";

/// Settings from `pairs` plus a valid `DELIVERY_STREAM` unless `pairs` sets it.
fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(var::DELIVERY_STREAM.into(), STREAM.into());
    for (k, v) in pairs {
        vars.insert((*k).into(), (*v).into());
    }
    Settings::from_vars(|name| vars.get(name).cloned())
}

fn ok(pairs: &[(&str, &str)]) -> Settings {
    match from(pairs) {
        Ok(s) => s,
        Err(e) => panic!("{pairs:?} refused: {e}"),
    }
}

fn problems(pairs: &[(&str, &str)]) -> Vec<Problem> {
    match from(pairs) {
        Ok(s) => panic!("{pairs:?} accepted: {s:?}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// The one problem `pairs` gives must name `variable` and contain `words`.
fn refused(pairs: &[(&str, &str)], variable: &str, words: &str) {
    let found = problems(pairs);
    assert_eq!(found.len(), 1, "{pairs:?}: {found:?}");
    assert_eq!(found[0].variable, variable, "{pairs:?}: {found:?}");
    assert!(
        found[0].reason.contains(words),
        "{pairs:?}: {:?} lacks {words:?}",
        found[0].reason
    );
}

#[test]
fn defaults_follow_the_design_table() {
    let s = ok(&[]);
    assert_eq!(
        s,
        Settings {
            delivery_stream: STREAM.into(),
            log_types: LogType::ALL.to_vec(),
            cloudtrail: false,
            cloudtrail_event_sources: vec![
                "redshift.amazonaws.com".into(),
                "redshift-serverless.amazonaws.com".into(),
                "redshift-data.amazonaws.com".into(),
                "sqlworkbench.amazonaws.com".into(),
            ],
            audit_bucket: None,
            audit_prefix: String::new(),
            audit_bucket_region: None,
            source_credentials: SourceCredentials::Default,
            expected_bucket_owner: None,
            allowed_buckets: vec![],
            backfill_start_time: None,
            backfill_lookback_days: 1,
            backfill_queue_url: None,
            state_bucket: None,
            state_prefix: "redshift-audit-forwarder/".into(),
            output_format: OutputFormat::Raw,
            redact_secrets: true,
            metrics: true,
            metrics_namespace: "RedshiftAuditForwarder".into(),
            metrics_cluster_dimension: true,
            stale_after: Duration::from_secs(3 * 3600),
            pack_records: true,
            max_attempts: 5,
            max_expansion: 200,
            sessions: SessionSettings::default(),
            destinations: lake::Destinations::default(),
        }
    );
}

#[test]
fn empty_and_blank_values_are_unset_for_every_variable() {
    for value in ["", "   ", "\t"] {
        let pairs: Vec<(&str, &str)> = var::ALL
            .iter()
            .filter(|v| **v != var::DELIVERY_STREAM)
            .map(|v| (*v, value))
            .collect();
        assert_eq!(ok(&pairs), ok(&[]), "{value:?}");
    }
    refused(
        &[(var::DELIVERY_STREAM, "")],
        var::DELIVERY_STREAM,
        "required",
    );
}

#[test]
fn delivery_stream_names() {
    for name in ["s", "audit-stream", "a.b_c-D9", "x".repeat(64).as_str()] {
        assert_eq!(ok(&[(var::DELIVERY_STREAM, name)]).delivery_stream, name);
    }
    assert_eq!(
        ok(&[(var::DELIVERY_STREAM, "  padded  ")]).delivery_stream,
        "padded"
    );
    for (name, words) in [
        ("has space", "not a Firehose stream name"),
        ("slash/name", "not a Firehose stream name"),
        ("x".repeat(65).as_str(), "not a Firehose stream name"),
        (
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
            "ARN",
        ),
    ] {
        refused(&[(var::DELIVERY_STREAM, name)], var::DELIVERY_STREAM, words);
    }
}

#[test]
fn log_types_are_a_trimmed_comma_list() {
    use LogType::*;
    let cases: &[(&str, &[LogType])] = &[
        ("userlog", &[UserLog]),
        (
            " connectionlog , useractivitylog ",
            &[ConnectionLog, UserActivityLog],
        ),
        ("UserLog,CONNECTIONLOG", &[UserLog, ConnectionLog]),
        ("userlog,userlog", &[UserLog]),
        ("userlog,", &[UserLog]),
        (
            "useractivitylog,userlog,connectionlog",
            &[UserActivityLog, UserLog, ConnectionLog],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(ok(&[(var::LOG_TYPES, text)]).log_types, *expected, "{text}");
    }
    for (text, words) in [
        ("querylog", "unknown log type \"querylog\""),
        ("userlog,foo,bar", "\"foo\", \"bar\""),
        (",", "selects no log type"),
    ] {
        refused(&[(var::LOG_TYPES, text)], var::LOG_TYPES, words);
    }
}

#[test]
fn audit_bucket_names() {
    for name in ["my-audit-logs", "a.b.c", "abc", "Legacy_Bucket"] {
        assert_eq!(
            ok(&[(var::AUDIT_BUCKET, name)]).audit_bucket.as_deref(),
            Some(name)
        );
    }
    for (name, words) in [
        ("s3://bucket", "URL or an ARN"),
        ("arn:aws:s3:::bucket", "URL or an ARN"),
        ("bucket/AWSLogs", "contains '/'"),
        ("ab", "not an S3 bucket name"),
        ("-bucket", "not an S3 bucket name"),
        ("bucket-", "not an S3 bucket name"),
        ("my bucket", "not an S3 bucket name"),
    ] {
        refused(&[(var::AUDIT_BUCKET, name)], var::AUDIT_BUCKET, words);
    }
}

#[test]
fn backfill_requires_the_audit_bucket() {
    let s = ok(&[]);
    let err = s.require_audit_bucket().err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("AUDIT_BUCKET")),
        "{err:?}"
    );
    let s = ok(&[(var::AUDIT_BUCKET, "logs")]);
    assert_eq!(s.require_audit_bucket().ok(), Some("logs"));
}

#[test]
fn audit_prefix_loses_its_trailing_slash_and_is_validated() {
    for (text, expected) in [
        (
            "AWSLogs/123456789012/redshift/us-east-1",
            "AWSLogs/123456789012/redshift/us-east-1",
        ),
        (
            "AWSLogs/123456789012/redshift/us-east-1/",
            "AWSLogs/123456789012/redshift/us-east-1",
        ),
        ("myprefix//", "myprefix"),
        ("/", ""),
    ] {
        assert_eq!(ok(&[(var::AUDIT_PREFIX, text)]).audit_prefix, expected);
    }
    refused(&[(var::AUDIT_PREFIX, "a b")], var::AUDIT_PREFIX, "' '");
    refused(
        &[(var::AUDIT_PREFIX, "a".repeat(513).as_str())],
        var::AUDIT_PREFIX,
        "513 characters",
    );
}

#[test]
fn filter_carries_prefix_and_log_types() {
    let s = ok(&[(var::AUDIT_PREFIX, "logs/"), (var::LOG_TYPES, "userlog")]);
    assert_eq!(
        s.filter(),
        Filter {
            prefix: "logs".into(),
            log_types: vec![LogType::UserLog],
            allowed_buckets: Vec::new(),
            cloudtrail: None,
        }
    );
    assert_eq!(ok(&[]).filter(), Filter::default());
    assert_eq!(
        ok(&[(var::AUDIT_BUCKET, "audit")]).filter().allowed_buckets,
        vec!["audit".to_string()]
    );
    assert_eq!(
        ok(&[
            (var::AUDIT_BUCKET, "audit"),
            (var::ALLOWED_BUCKETS, "audit,audit-eu")
        ])
        .filter()
        .allowed_buckets,
        vec!["audit".to_string(), "audit-eu".to_string()]
    );
}

#[test]
fn audit_bucket_region_names() {
    for region in [
        "us-east-1",
        "eu-central-1",
        "us-gov-west-1",
        "cn-northwest-1",
        "eu-isoe-west-1",
    ] {
        assert_eq!(
            ok(&[(var::AUDIT_BUCKET_REGION, region)])
                .audit_bucket_region
                .as_deref(),
            Some(region)
        );
    }
    for region in ["useast1", "US-EAST-1", "us-east", "us-east-1a", "eu-1"] {
        refused(
            &[(var::AUDIT_BUCKET_REGION, region)],
            var::AUDIT_BUCKET_REGION,
            "not an AWS region",
        );
    }
}

const ROLE: &str = "arn:aws:iam::210987654321:role/audit-reader";

#[test]
fn a_role_with_or_without_external_id_is_assumed() {
    assert_eq!(
        ok(&[(var::SOURCE_ROLE_ARN, ROLE)]).source_credentials,
        SourceCredentials::AssumeRole {
            role_arn: ROLE.into(),
            external_id: None
        }
    );
    assert_eq!(
        ok(&[
            (var::SOURCE_ROLE_ARN, ROLE),
            (var::SOURCE_EXTERNAL_ID, "x-Id_1+=,.@:/")
        ])
        .source_credentials,
        SourceCredentials::AssumeRole {
            role_arn: ROLE.into(),
            external_id: Some("x-Id_1+=,.@:/".into())
        }
    );
    for arn in [
        "arn:aws-us-gov:iam::210987654321:role/path/to/reader",
        "arn:aws-cn:iam::210987654321:role/r",
    ] {
        assert!(matches!(
            ok(&[(var::SOURCE_ROLE_ARN, arn)]).source_credentials,
            SourceCredentials::AssumeRole { .. }
        ));
    }
}

#[test]
fn malformed_role_arns_are_refused() {
    for arn in [
        "audit-reader",
        "arn:aws:iam::21098765432:role/r",
        "arn:aws:iam::210987654321:user/r",
        "arn:aws:iam::210987654321:role/",
        "arn:aws:sts::210987654321:role/r",
        "arn:aws:iam:us-east-1:210987654321:role/r",
    ] {
        refused(
            &[(var::SOURCE_ROLE_ARN, arn)],
            var::SOURCE_ROLE_ARN,
            "not an IAM role ARN",
        );
    }
}

#[test]
fn external_id_needs_a_role_and_a_valid_value() {
    refused(
        &[(var::SOURCE_EXTERNAL_ID, "abc")],
        var::SOURCE_EXTERNAL_ID,
        "without SOURCE_ROLE_ARN",
    );
    for id in ["x", "has space", "x".repeat(1225).as_str()] {
        refused(
            &[(var::SOURCE_ROLE_ARN, ROLE), (var::SOURCE_EXTERNAL_ID, id)],
            var::SOURCE_EXTERNAL_ID,
            "2 to 1224",
        );
    }
}

const KEY_ID: &str = "AKIAEXAMPLEKEYID0001";
const SECRET: &str = "s3cr3t/Value+ThatMustNeverLeak0000000000";

#[test]
fn static_keys_need_both_halves() {
    assert_eq!(
        ok(&[
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
            (var::SOURCE_SECRET_ACCESS_KEY, SECRET)
        ])
        .source_credentials,
        SourceCredentials::Static {
            access_key_id: KEY_ID.into(),
            secret_access_key: Secret::new(SECRET)
        }
    );
    refused(
        &[(var::SOURCE_ACCESS_KEY_ID, KEY_ID)],
        var::SOURCE_SECRET_ACCESS_KEY,
        "required when SOURCE_ACCESS_KEY_ID",
    );
    refused(
        &[(var::SOURCE_SECRET_ACCESS_KEY, SECRET)],
        var::SOURCE_ACCESS_KEY_ID,
        "required when SOURCE_SECRET_ACCESS_KEY",
    );
}

#[test]
fn a_role_and_static_keys_together_are_refused() {
    refused(
        &[
            (var::SOURCE_ROLE_ARN, ROLE),
            (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
            (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
        ],
        var::SOURCE_ROLE_ARN,
        "never both",
    );
    // Half a key pair next to a role: both mistakes are named.
    let found = problems(&[
        (var::SOURCE_ROLE_ARN, ROLE),
        (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
    ]);
    let vars: Vec<_> = found.iter().map(|p| p.variable).collect();
    assert_eq!(vars, [var::SOURCE_SECRET_ACCESS_KEY, var::SOURCE_ROLE_ARN]);
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let bad_secret = "bad secret with spaces";
    let err = from(&[
        (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
        (var::SOURCE_SECRET_ACCESS_KEY, bad_secret),
    ])
    .err()
    .map(|e| format!("{e} {e:?}"))
    .unwrap_or_default();
    assert!(err.contains(var::SOURCE_SECRET_ACCESS_KEY), "{err}");
    assert!(!err.contains(bad_secret), "{err}");

    let err = from(&[
        (var::SOURCE_ROLE_ARN, ROLE),
        (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
        (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
    ])
    .err()
    .map(|e| format!("{e} {e:?}"))
    .unwrap_or_default();
    assert!(!err.contains(SECRET) && !err.contains(KEY_ID), "{err}");

    let s = ok(&[
        (var::SOURCE_ACCESS_KEY_ID, KEY_ID),
        (var::SOURCE_SECRET_ACCESS_KEY, SECRET),
    ]);
    let shown = format!("{s:?} {s:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("ThatMustNeverLeak"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn expected_bucket_owner_is_twelve_digits() {
    assert_eq!(
        ok(&[(var::EXPECTED_BUCKET_OWNER, "123456789012")])
            .expected_bucket_owner
            .as_deref(),
        Some("123456789012")
    );
    for owner in ["12345678901", "1234567890123", "12345678901a", "my-account"] {
        refused(
            &[(var::EXPECTED_BUCKET_OWNER, owner)],
            var::EXPECTED_BUCKET_OWNER,
            "12-digit",
        );
    }
}

#[test]
fn backfill_start_times_in_every_rfc3339_form() {
    let cases = [
        (
            "2024-03-01T00:00:00Z",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-03-01t00:00:00z",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-03-01 00:00:00Z",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-03-01T00:00:00.999Z",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-03-01T08:00:00+08:00",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-02-29T19:00:00-05:00",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2024-02-29T23:59:60Z",
            1_709_251_200,
            "2024-03-01T00:00:00Z",
        ),
        (
            "2016-02-29T12:34:56.1234567890Z",
            1_456_749_296,
            "2016-02-29T12:34:56Z",
        ),
        (
            "2012-01-01T00:00:00Z",
            1_325_376_000,
            "2012-01-01T00:00:00Z",
        ),
    ];
    for (text, unix, utc) in cases {
        let t = ok(&[(var::BACKFILL_START_TIME, text)]).backfill_start_time;
        assert_eq!(
            t,
            Some(StartTime {
                unix_seconds: unix,
                utc: utc.into(),
                text: text.into()
            }),
            "{text}"
        );
    }
}

#[test]
fn start_time_day_is_the_utc_day() {
    let day = |text: &str| StartTime::parse(text).map(|t| t.utc_date());
    assert_eq!(day("2024-03-01T00:30:00+01:00"), Ok((2024, 2, 29)));
    assert_eq!(day("2023-12-31T23:30:00-01:00"), Ok((2024, 1, 1)));
    assert_eq!(day("1969-12-31T23:59:59Z"), Ok((1969, 12, 31)));
}

#[test]
fn malformed_start_times_are_refused_with_the_reason() {
    for (text, reason) in [
        ("2024-03-01", "too short"),
        ("2024-03-01T00:00:00", "zone is missing"),
        ("2024-03-01T00:00Z", "too short"),
        ("2024-0a-01T00:00:00Z", "month is not all digits"),
        ("2024/03/01T00:00:00Z", "not YYYY-MM-DD"),
        ("2024-03-01_00:00:00Z", "not separated"),
        ("2024-03-01T00-00-00Z", "not HH:MM:SS"),
        ("2024-13-01T00:00:00Z", "month out of range"),
        ("2024-00-01T00:00:00Z", "month out of range"),
        ("2023-02-29T00:00:00Z", "day out of range"),
        ("2024-04-31T00:00:00Z", "day out of range"),
        ("2024-03-00T00:00:00Z", "day out of range"),
        ("2024-03-01T24:00:00Z", "hour out of range"),
        ("2024-03-01T00:60:00Z", "minute out of range"),
        ("2024-03-01T00:00:61Z", "second out of range"),
        ("2024-03-01T00:00:00.Z", "no digits"),
        ("2024-03-01T00:00:00+0100", "zone is not"),
        ("2024-03-01T00:00:00+24:00", "zone offset out of range"),
        ("2024-03-01T00:00:00+01:60", "zone offset out of range"),
        ("2024-03-01T00:00:00UTC", "zone is not"),
        ("2024-03-01T00:00:00Zjunk", "zone is not"),
        ("2024-03-01T00:00:00\u{ff3a}", "non-ASCII"),
        ("1709251200", "too short"),
    ] {
        refused(
            &[(var::BACKFILL_START_TIME, text)],
            var::BACKFILL_START_TIME,
            reason,
        );
    }
}

#[test]
fn lookback_days_range_from_0_to_366() {
    for (text, days) in [("0", 0), ("1", 1), ("7", 7), ("366", 366), ("007", 7)] {
        assert_eq!(
            ok(&[(var::BACKFILL_LOOKBACK_DAYS, text)]).backfill_lookback_days,
            days
        );
    }
    for text in ["367", "-1", "+1", "1.5", "one", "99999999999"] {
        refused(
            &[(var::BACKFILL_LOOKBACK_DAYS, text)],
            var::BACKFILL_LOOKBACK_DAYS,
            "0 to 366",
        );
    }
}

#[test]
fn state_bucket_defaults_to_the_audit_bucket() {
    assert_eq!(
        ok(&[(var::AUDIT_BUCKET, "audit")]).state_bucket.as_deref(),
        Some("audit")
    );
    let s = ok(&[(var::AUDIT_BUCKET, "audit"), (var::STATE_BUCKET, "state")]);
    assert_eq!(s.state_bucket.as_deref(), Some("state"));
    assert_eq!(s.require_state_bucket().ok(), Some("state"));
    assert_eq!(
        ok(&[(var::STATE_BUCKET, "state")]).audit_bucket,
        None,
        "the state bucket never stands in for the audit bucket"
    );
    let err = ok(&[]).require_state_bucket().err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("STATE_BUCKET") && e.contains("AUDIT_BUCKET")));
    refused(
        &[(var::STATE_BUCKET, "s3://state")],
        var::STATE_BUCKET,
        "STATE_PREFIX",
    );
}

#[test]
fn state_prefix_always_ends_with_a_slash() {
    for (text, expected) in [
        ("state", "state/"),
        ("state/", "state/"),
        ("a/b/c", "a/b/c/"),
    ] {
        assert_eq!(ok(&[(var::STATE_PREFIX, text)]).state_prefix, expected);
    }
    refused(&[(var::STATE_PREFIX, "st ate")], var::STATE_PREFIX, "' '");
}

#[test]
fn output_format_is_raw_or_ocsf() {
    for text in ["raw", "RAW", " Raw "] {
        assert_eq!(
            ok(&[(var::OUTPUT_FORMAT, text)]).output_format,
            OutputFormat::Raw
        );
    }
    for text in ["ocsf", "OCSF", " Ocsf "] {
        assert_eq!(
            ok(&[(var::OUTPUT_FORMAT, text)]).output_format,
            OutputFormat::Ocsf
        );
    }
    refused(
        &[(var::OUTPUT_FORMAT, "json")],
        var::OUTPUT_FORMAT,
        "expected raw",
    );
}

#[test]
fn pack_records_reads_common_booleans() {
    for (text, value) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("Yes", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("no", false),
        ("NO", false),
    ] {
        assert_eq!(
            ok(&[(var::PACK_RECORDS, text)]).pack_records,
            value,
            "{text}"
        );
    }
    for text in ["on", "2", "truee", "y"] {
        refused(
            &[(var::PACK_RECORDS, text)],
            var::PACK_RECORDS,
            "not a boolean",
        );
    }
}

#[test]
fn every_problem_is_reported_at_once_one_line_each() {
    let mut vars = HashMap::new();
    for (k, v) in [
        (var::LOG_TYPES, "querylog"),
        (var::AUDIT_PREFIX, "bad prefix"),
        (var::AUDIT_BUCKET_REGION, "mars"),
        (var::SOURCE_EXTERNAL_ID, "orphan-id"),
        (var::EXPECTED_BUCKET_OWNER, "nobody"),
        (var::BACKFILL_START_TIME, "yesterday"),
        (var::BACKFILL_LOOKBACK_DAYS, "400"),
        (var::STATE_BUCKET, "a/b"),
        (var::OUTPUT_FORMAT, "json"),
        (var::PACK_RECORDS, "maybe"),
    ] {
        vars.insert(k, v.to_string());
    }
    let err = match Settings::from_vars(|name| vars.get(name).cloned()) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e,
    };
    assert!(!err.is_retryable());
    let named: Vec<_> = err.problems().iter().map(|p| p.variable).collect();
    assert_eq!(
        named,
        [
            var::DELIVERY_STREAM,
            var::LOG_TYPES,
            var::AUDIT_PREFIX,
            var::AUDIT_BUCKET_REGION,
            var::SOURCE_EXTERNAL_ID,
            var::EXPECTED_BUCKET_OWNER,
            var::BACKFILL_START_TIME,
            var::BACKFILL_LOOKBACK_DAYS,
            var::STATE_BUCKET,
            var::OUTPUT_FORMAT,
            var::PACK_RECORDS,
        ]
    );
    let message = err.to_string();
    let lines: Vec<_> = message.lines().collect();
    assert_eq!(lines[0], "11 invalid settings:");
    assert_eq!(lines.len(), 12, "{message}");
    for (line, variable) in lines[1..].iter().zip(named) {
        assert!(
            line.trim_start().starts_with(&format!("{variable}: ")),
            "{line}"
        );
    }
}

#[test]
fn log_types_may_add_cloudtrail() {
    use LogType::*;
    for (text, types, cloudtrail) in [
        ("cloudtrail", vec![], true),
        ("userlog,cloudtrail", vec![UserLog], true),
        (
            " CloudTrail , cloudtrail,connectionlog",
            vec![ConnectionLog],
            true,
        ),
        ("userlog", vec![UserLog], false),
    ] {
        let s = ok(&[(var::LOG_TYPES, text)]);
        assert_eq!((s.log_types, s.cloudtrail), (types, cloudtrail), "{text}");
    }
    refused(
        &[(var::LOG_TYPES, "cloudtrail,trail")],
        var::LOG_TYPES,
        "unknown log type \"trail\" (expected a comma-separated list of connectionlog, \
         userlog, useractivitylog, cloudtrail)",
    );
}

#[test]
fn cloudtrail_event_sources_are_a_list_of_amazonaws_names() {
    assert_eq!(
        ok(&[]).cloudtrail_event_sources,
        DEFAULT_CLOUDTRAIL_EVENT_SOURCES
    );
    assert_eq!(
        ok(&[(
            var::CLOUDTRAIL_EVENT_SOURCES,
            " redshift.amazonaws.com, S3.amazonaws.com,,redshift.amazonaws.com "
        )])
        .cloudtrail_event_sources,
        ["redshift.amazonaws.com", "s3.amazonaws.com"]
    );
    for (text, words) in [
        ("redshift", "\"redshift\" is not a CloudTrail event source"),
        (
            "redshift.amazonaws.com,x,y.com",
            "\"x\", \"y.com\" are not a CloudTrail event source",
        ),
        ("https://redshift.amazonaws.com", "ending in .amazonaws.com"),
        (",", "selects no event source"),
    ] {
        refused(
            &[(var::CLOUDTRAIL_EVENT_SOURCES, text)],
            var::CLOUDTRAIL_EVENT_SOURCES,
            words,
        );
    }
}

#[test]
fn allowed_buckets_default_to_the_audit_bucket() {
    assert_eq!(
        ok(&[(var::AUDIT_BUCKET, "audit")]).allowed_buckets,
        ["audit"]
    );
    assert!(ok(&[]).allowed_buckets.is_empty());
    assert_eq!(
        ok(&[
            (var::AUDIT_BUCKET, "audit"),
            (var::ALLOWED_BUCKETS, " other-bucket, audit,other-bucket,")
        ])
        .allowed_buckets,
        ["other-bucket", "audit"]
    );
    assert_eq!(
        ok(&[(var::ALLOWED_BUCKETS, "one,two")]).allowed_buckets,
        ["one", "two"]
    );
    for (pairs, words) in [
        (
            vec![
                (var::AUDIT_BUCKET, "audit"),
                (var::ALLOWED_BUCKETS, "other"),
            ],
            "does not name AUDIT_BUCKET \"audit\"",
        ),
        (
            vec![(var::ALLOWED_BUCKETS, "ok-bucket,s3://x")],
            "URL or an ARN",
        ),
        (vec![(var::ALLOWED_BUCKETS, "a/b")], "contains '/'"),
        (vec![(var::ALLOWED_BUCKETS, "ab")], "not an S3 bucket name"),
        (vec![(var::ALLOWED_BUCKETS, " , ")], "names no bucket"),
    ] {
        refused(&pairs, var::ALLOWED_BUCKETS, words);
    }
}

#[test]
fn state_prefix_inside_the_audit_prefix_of_the_same_bucket_is_refused() {
    let audit = [
        (var::AUDIT_BUCKET, "audit"),
        (var::AUDIT_PREFIX, "AWSLogs/1"),
    ];
    for state in ["AWSLogs/1/state", "AWSLogs/1/", "AWSLogs/1/a/b/"] {
        let found = problems(&[audit[0], audit[1], (var::STATE_PREFIX, state)]);
        assert_eq!(found.len(), 1, "{state}: {found:?}");
        assert_eq!(found[0].variable, var::STATE_PREFIX);
        for words in [
            "inside AUDIT_PREFIX \"AWSLogs/1\"",
            "STATE_PREFIX",
            "STATE_BUCKET",
        ] {
            assert!(found[0].reason.contains(words), "{:?}", found[0].reason);
        }
    }
    refused(
        &[
            audit[0],
            audit[1],
            (var::STATE_BUCKET, "audit"),
            (var::STATE_PREFIX, "AWSLogs/1/state"),
        ],
        var::STATE_PREFIX,
        "inside AUDIT_PREFIX",
    );
    refused(
        &[
            (var::AUDIT_BUCKET, "audit"),
            (var::AUDIT_PREFIX, "redshift-audit-forwarder"),
        ],
        var::STATE_PREFIX,
        "\"redshift-audit-forwarder/\" is inside AUDIT_PREFIX",
    );
    // Outside the folder, in another bucket, or beside a whole-bucket prefix: fine.
    for pairs in [
        vec![audit[0], audit[1], (var::STATE_PREFIX, "AWSLogs/10/state")],
        vec![audit[0], audit[1], (var::STATE_PREFIX, "AWSLogs/state")],
        vec![audit[0], audit[1], (var::STATE_PREFIX, "state")],
        vec![
            audit[0],
            audit[1],
            (var::STATE_BUCKET, "state"),
            (var::STATE_PREFIX, "AWSLogs/1/state"),
        ],
        vec![
            (var::AUDIT_PREFIX, "AWSLogs/1"),
            (var::STATE_PREFIX, "AWSLogs/1/s"),
        ],
        vec![audit[0], (var::STATE_PREFIX, "AWSLogs/1/state")],
    ] {
        let s = ok(&pairs);
        assert!(s.state_prefix.ends_with('/'), "{pairs:?}");
    }
}

#[test]
fn redact_secrets_and_metrics_are_booleans_on_by_default() {
    let s = ok(&[]);
    assert!(s.redact_secrets && s.metrics);
    let s = ok(&[(var::REDACT_SECRETS, "false"), (var::METRICS, "NO")]);
    assert!(!s.redact_secrets && !s.metrics);
    let s = ok(&[(var::REDACT_SECRETS, "1"), (var::METRICS, "yes")]);
    assert!(s.redact_secrets && s.metrics);
    for variable in [var::REDACT_SECRETS, var::METRICS] {
        refused(&[(variable, "off")], variable, "\"off\" is not a boolean");
    }
}

#[test]
fn metrics_cluster_dimension_is_a_boolean_on_by_default() {
    assert!(ok(&[]).metrics_cluster_dimension);
    assert!(!ok(&[(var::METRICS_CLUSTER_DIMENSION, "false")]).metrics_cluster_dimension);
    assert!(ok(&[(var::METRICS_CLUSTER_DIMENSION, "TRUE")]).metrics_cluster_dimension);
    refused(
        &[(var::METRICS_CLUSTER_DIMENSION, "per-cluster")],
        var::METRICS_CLUSTER_DIMENSION,
        "\"per-cluster\" is not a boolean",
    );
}

#[test]
fn metrics_namespace_is_printable_and_not_reserved() {
    assert_eq!(ok(&[]).metrics_namespace, "RedshiftAuditForwarder");
    for name in [
        "My/App 1",
        "a",
        "Team#1:audit_logs.v2-x",
        "aws/lower-is-not-reserved",
        &"n".repeat(255),
    ] {
        assert_eq!(
            ok(&[(var::METRICS_NAMESPACE, name)]).metrics_namespace,
            name
        );
    }
    for (name, words) in [
        ("AWS/Redshift", "starts with \"AWS/\""),
        (&"n".repeat(256), "1 to 255 of letters"),
        ("caf\u{e9}", "1 to 255 of letters"),
        ("tab\there", "1 to 255 of letters"),
        (",,,", "not a CloudWatch namespace"),
        ("a;b", "not a CloudWatch namespace"),
    ] {
        refused(
            &[(var::METRICS_NAMESPACE, name)],
            var::METRICS_NAMESPACE,
            words,
        );
    }
}

#[test]
fn stale_after_is_a_positive_duration_with_a_unit() {
    assert_eq!(ok(&[]).stale_after, Duration::from_secs(3 * 3600));
    for (text, seconds) in [
        ("3h", 3 * 3600),
        ("90m", 90 * 60),
        ("1d", 86_400),
        ("3600s", 3600),
        ("2H", 7200),
        ("366d", 366 * 86_400),
    ] {
        assert_eq!(
            ok(&[(var::STALE_AFTER, text)]).stale_after,
            Duration::from_secs(seconds),
            "{text}"
        );
    }
    for (text, words) in [
        ("0h", "must be more than zero"),
        ("0s", "must be more than zero"),
        ("367d", "more than 366 days"),
        ("99999999999999999999s", "more than 366 days"),
        ("3", "not a duration"),
        ("h", "not a duration"),
        ("3x", "not a duration"),
        ("1.5h", "not a duration"),
        ("-1h", "not a duration"),
        ("3 h", "not a duration"),
        ("3h30m", "not a duration"),
        ("3\u{e9}", "not a duration"),
    ] {
        refused(&[(var::STALE_AFTER, text)], var::STALE_AFTER, words);
    }
}

#[test]
fn max_attempts_range_from_1_to_100() {
    assert_eq!(ok(&[]).max_attempts, 5);
    for (text, attempts) in [("1", 1), ("5", 5), ("100", 100), ("007", 7)] {
        assert_eq!(ok(&[(var::MAX_ATTEMPTS, text)]).max_attempts, attempts);
    }
    for text in ["0", "101", "-1", "+1", "1.0", "five", "99999999999"] {
        refused(
            &[(var::MAX_ATTEMPTS, text)],
            var::MAX_ATTEMPTS,
            "from 1 to 100",
        );
    }
}

#[test]
fn max_expansion_range_from_50_to_100000() {
    assert_eq!(ok(&[]).max_expansion, 200);
    for (text, times) in [("50", 50), ("200", 200), ("100000", 100_000), ("0300", 300)] {
        assert_eq!(ok(&[(var::MAX_EXPANSION, text)]).max_expansion, times);
    }
    for text in ["0", "49", "100001", "-1", "2e3", "200x", "99999999999"] {
        refused(
            &[(var::MAX_EXPANSION, text)],
            var::MAX_EXPANSION,
            "from 50 to 100000",
        );
    }
}

#[test]
fn every_variable_is_checked_and_reported_in_the_table_order() {
    let bad: HashMap<&str, &str> = HashMap::from([
        (var::DELIVERY_STREAM, "has space"),
        (var::LOG_TYPES, "querylog"),
        (var::CLOUDTRAIL_EVENT_SOURCES, "redshift"),
        (var::AUDIT_BUCKET, "s3://audit"),
        (var::AUDIT_PREFIX, "a b"),
        (var::AUDIT_BUCKET_REGION, "mars"),
        (var::SOURCE_ROLE_ARN, "reader"),
        (var::SOURCE_EXTERNAL_ID, "x"),
        (var::SOURCE_ACCESS_KEY_ID, "has space"),
        (var::SOURCE_SECRET_ACCESS_KEY, "has space"),
        (var::EXPECTED_BUCKET_OWNER, "nobody"),
        (var::ALLOWED_BUCKETS, "a/b"),
        (var::BACKFILL_START_TIME, "yesterday"),
        (var::BACKFILL_LOOKBACK_DAYS, "400"),
        (var::BACKFILL_QUEUE_URL, "backfill"),
        (var::STATE_BUCKET, "a/b"),
        (var::STATE_PREFIX, "st ate"),
        (var::OUTPUT_FORMAT, "json"),
        (var::REDACT_SECRETS, "maybe"),
        (var::METRICS, "maybe"),
        (var::METRICS_NAMESPACE, "AWS/x"),
        (var::METRICS_CLUSTER_DIMENSION, "maybe"),
        (var::STALE_AFTER, "soon"),
        (var::PACK_RECORDS, "maybe"),
        (var::DESTINATIONS, "s3"),
        (var::SECURITY_LAKE_SOURCES, "x"),
        (var::SECURITY_LAKE_EXTERNAL_ID, "x"),
        (var::MAX_ATTEMPTS, "0"),
        (var::MAX_EXPANSION, "1"),
        (var::SESSION_JOIN, "maybe"),
        (var::SESSION_WAIT, "soon"),
    ]);
    assert_eq!(bad.len(), var::ALL.len());
    let err = match Settings::from_vars(|name| bad.get(name).map(|v| v.to_string())) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e,
    };
    let mut first_seen: Vec<&str> = Vec::new();
    for problem in err.problems() {
        if !first_seen.contains(&problem.variable) {
            first_seen.push(problem.variable);
        }
    }
    assert_eq!(first_seen, var::ALL);
}

#[test]
fn start_times_before_2012_or_in_the_future_are_refused() {
    let in_a_day = crate::time::rfc3339_ms(crate::time::now_ms() + 86_400_000);
    for (text, words) in [
        ("1900-01-01T00:00:00Z", "before 2012-01-01T00:00:00Z"),
        ("2011-12-31T23:59:59Z", "before 2012-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "before 2012-01-01T00:00:00Z"),
        ("2999-01-01T00:00:00Z", "in the future"),
        (in_a_day.as_str(), "in the future"),
    ] {
        refused(
            &[(var::BACKFILL_START_TIME, text)],
            var::BACKFILL_START_TIME,
            words,
        );
    }
    // Within the clock-skew allowance a start "now" on a fast clock is still taken.
    let soon = crate::time::rfc3339_ms(crate::time::now_ms() + 60_000);
    assert!(ok(&[(var::BACKFILL_START_TIME, soon.as_str())])
        .backfill_start_time
        .is_some());
}

#[test]
fn prefixes_that_select_nothing_are_refused() {
    for (prefix, words) in [
        ("/AWSLogs", "starts with '/'"),
        ("AWSLogs//123456789012", "empty segment"),
        ("AWSLogs/../x", "segment"),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/",
            "date partition",
        ),
        (
            "AWSLogs/123456789012/redshift/us-east-1/2024",
            "date partition",
        ),
    ] {
        refused(&[(var::AUDIT_PREFIX, prefix)], var::AUDIT_PREFIX, words);
    }
}

#[test]
fn bucket_names_s3_reserves_or_refuses_are_refused_with_the_rule() {
    for (name, words) in [
        ("192.168.1.1", "IP address"),
        ("xn--audit", "prefix S3 reserves"),
        ("audit-s3alias", "suffix S3 reserves"),
        ("audit--ol-s3", "suffix S3 reserves"),
        ("a..b", "adjacent periods"),
        ("ab", "3 to 255"),
    ] {
        refused(&[(var::AUDIT_BUCKET, name)], var::AUDIT_BUCKET, words);
        refused(&[(var::STATE_BUCKET, name)], var::STATE_BUCKET, words);
    }
}

#[test]
fn a_long_bad_value_is_quoted_in_excerpt_only() {
    let long = format!("/{}", "x".repeat(100_000));
    for variable in [
        var::AUDIT_PREFIX,
        var::AUDIT_BUCKET,
        var::METRICS_NAMESPACE,
        var::BACKFILL_START_TIME,
        var::LOG_TYPES,
        var::DELIVERY_STREAM,
        var::STALE_AFTER,
    ] {
        let err = from(&[(variable, long.as_str())]).unwrap_err();
        let problem = err
            .problems()
            .iter()
            .find(|p| p.variable == variable)
            .unwrap_or_else(|| panic!("{variable} not refused"));
        assert!(
            problem.reason.len() < 700,
            "{variable}: {}",
            problem.reason.len()
        );
        // Quoted in excerpt (its first characters and its length), or not quoted at all.
        assert!(
            !problem.reason.contains(&"x".repeat(100)),
            "{variable}: {}",
            problem.reason
        );
    }
}
