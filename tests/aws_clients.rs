//! The AWS clients built from the settings, and the S3 source, against moto: streaming reads, errors, the expected
//! bucket owner, region detection, and the source credentials (assumed role, static keys).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use common::{create_bucket, put_object, s3_client, Moto, ACCESS_KEY_ID, REGION};
use redshift_audit_forwarder::aws::clients::{self as settings, ClientError as SettingsError};
use redshift_audit_forwarder::aws::{
    clients_from_config, open_object, BodyReader, BucketClient, Clients, SourceError,
};
use redshift_audit_forwarder::ports::{Fetch, ObjectRef};
use redshift_audit_forwarder::settings::{var, Settings};

const BUCKET: &str = "audit";
const KEY: &str = "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/\
                   123456789012_redshift_us-east-1_c1_useractivitylog_2024-03-01T00:53.gz";

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let get = |name: &str| {
        if name == var::DELIVERY_STREAM {
            return Some("audit-stream".to_string());
        }
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    Settings::from_vars(get).unwrap_or_else(|e| panic!("{e}"))
}

async fn try_clients(moto: &Moto, pairs: &[(&str, &str)]) -> Result<Clients, SettingsError> {
    let base = common::sdk_config(&moto.endpoint).await;
    clients_from_config(&base, &settings(pairs)).await
}

async fn clients(moto: &Moto, pairs: &[(&str, &str)]) -> Clients {
    try_clients(moto, pairs)
        .await
        .unwrap_or_else(|e| panic!("clients for {pairs:?}: {e}"))
}

/// Bytes that do not repeat with any short period, so a misplaced chunk cannot go unnoticed.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads the whole body on a blocking thread in `buffer`-sized reads; returns the bytes, the
/// number of reads that returned data, and the error that ended the read, if any.
async fn read_body(reader: BodyReader, buffer: usize) -> (Vec<u8>, usize, Option<std::io::Error>) {
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut out = Vec::new();
        let mut buf = vec![0u8; buffer];
        let mut reads = 0;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (out, reads, None),
                Ok(n) => {
                    reads += 1;
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) => return (out, reads, Some(e)),
            }
        }
    })
    .await
    .expect("reading thread")
}

/// The access key ID that signed a `ListObjectsV2` call of `bucket` (from the SigV4
/// `Authorization` header), and the session token header if any.
async fn signing_key_of(bucket: &BucketClient, name: &str) -> (String, bool) {
    let seen = Wire::default();
    let out = bucket
        .list_objects_v2(name)
        .customize()
        .interceptor(seen.clone())
        .send()
        .await;
    assert!(out.is_ok(), "list {name}: {:?}", out.err());
    let seen = seen.0.lock().expect("lock").clone();
    let request = seen.last().expect("one request");
    let key = request
        .authorization
        .as_deref()
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string();
    (key, request.session_token)
}

#[tokio::test]
async fn five_megabyte_object_streams_back_byte_for_byte_in_chunks() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    let data = pseudo_random(5 * 1024 * 1024);
    put_object(&s3, BUCKET, KEY, data.clone()).await;

    let clients = clients(&moto, &[(var::AUDIT_BUCKET, BUCKET)]).await;
    let opened = open_object(&clients.audit, BUCKET, KEY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.meta.bucket, BUCKET);
    assert_eq!(opened.meta.key, KEY);
    assert_eq!(opened.meta.content_length, Some(data.len() as u64));
    assert!(opened.meta.e_tag.is_some(), "{:?}", opened.meta);
    assert!(opened.meta.last_modified.is_some(), "{:?}", opened.meta);

    let (read, reads, err) = read_body(opened.reader, 64 * 1024).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(read.len(), data.len());
    assert!(read == data, "the bytes read differ from the bytes stored");
    assert!(reads >= 80, "5 MiB in 64 KiB reads took only {reads} reads");
}

#[tokio::test]
async fn zero_byte_object_is_an_empty_body() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    put_object(&s3, BUCKET, KEY, Vec::new()).await;

    let clients = clients(&moto, &[]).await;
    let opened = open_object(&clients.audit, BUCKET, KEY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.meta.content_length, Some(0));
    let (read, _, err) = read_body(opened.reader, 1024).await;
    assert!(err.is_none(), "{err:?}");
    assert!(read.is_empty());
}

#[tokio::test]
async fn missing_key_is_a_non_retryable_not_found_naming_the_key() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    let clients = clients(&moto, &[]).await;

    let err = open_object(&clients.audit, BUCKET, "no/such/key.gz")
        .await
        .err();
    assert!(
        matches!(&err, Some(SourceError::NotFound { bucket, key })
            if bucket == BUCKET && key == "no/such/key.gz"),
        "{err:?}"
    );
    let err = err.expect("an error");
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("s3://audit/no/such/key.gz"),
        "{err}"
    );

    // The handler's fetch says the same, and that retrying will not help.
    let object = ObjectRef {
        bucket: BUCKET.into(),
        key: "no/such/key.gz".into(),
        size: None,
        etag: None,
        version_id: None,
        alternate_key: None,
    };
    let fetched = clients.audit.fetch(&object).await.err();
    assert!(
        fetched
            .as_ref()
            .is_some_and(|e| !e.retryable && e.message.contains("no/such/key.gz")),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn missing_bucket_is_a_non_retryable_error() {
    let moto = Moto::start();
    let clients = clients(&moto, &[]).await;
    let err = open_object(&clients.audit, "no-such-bucket", KEY)
        .await
        .err();
    assert!(
        matches!(&err, Some(SourceError::NoSuchBucket { bucket, .. }) if bucket == "no-such-bucket"),
        "{err:?}"
    );
    assert!(err.is_some_and(|e| !e.is_retryable()));
}

#[tokio::test]
async fn handler_fetch_streams_the_object() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    put_object(&s3, BUCKET, KEY, b"line 1\nline 2\n".to_vec()).await;
    let clients = clients(&moto, &[]).await;
    let object = ObjectRef {
        bucket: BUCKET.into(),
        key: KEY.into(),
        size: None,
        etag: None,
        version_id: None,
        alternate_key: None,
    };
    let fetched = clients
        .audit
        .fetch(&object)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fetched.size, Some(14));
    let body = tokio::task::spawn_blocking(move || {
        let mut body = fetched.body;
        let mut text = String::new();
        body.read_to_string(&mut text).map(|_| text)
    })
    .await
    .expect("reading thread");
    assert_eq!(body.ok().as_deref(), Some("line 1\nline 2\n"));
}

/// What a client put on the wire for one request.
#[derive(Debug, Clone)]
struct Sent {
    request: String,
    expected_owner: Option<String>,
    authorization: Option<String>,
    session_token: bool,
}

/// Records every request a client (or one operation) sends.
#[derive(Debug, Clone, Default)]
struct Wire(Arc<Mutex<Vec<Sent>>>);

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let header = |name: &str| request.headers().get(name).map(str::to_owned);
        let sent = Sent {
            request: format!("{} {}", request.method(), request.uri()),
            expected_owner: header("x-amz-expected-bucket-owner"),
            authorization: header("authorization"),
            session_token: header("x-amz-security-token").is_some(),
        };
        if let Ok(mut seen) = self.0.lock() {
            seen.push(sent);
        }
        Ok(())
    }
}

#[tokio::test]
async fn every_bucket_client_request_carries_the_expected_owner() {
    const OWNER: &str = "123456789012";
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    put_object(&s3, BUCKET, KEY, b"x\n".to_vec()).await;

    // The settings' clients hand the owner to the audit bucket and to state kept in it.
    let clients = clients(
        &moto,
        &[
            (var::AUDIT_BUCKET, BUCKET),
            (var::EXPECTED_BUCKET_OWNER, OWNER),
        ],
    )
    .await;
    assert_eq!(clients.audit.expected_owner(), Some(OWNER));
    let state = clients.state.as_ref().expect("state in the audit bucket");
    assert_eq!(state.s3.expected_owner(), Some(OWNER));

    // Moto does not check the header, so what is sent is checked on the wire instead.
    let seen = Wire::default();
    let base = common::sdk_config(&moto.endpoint).await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&base)
            .force_path_style(true)
            .interceptor(seen.clone())
            .build(),
    );
    let bucket = BucketClient::new(client, REGION, Some(OWNER.to_string()));
    let opened = open_object(&bucket, BUCKET, KEY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(opened);
    let results = [
        bucket
            .list_objects_v2(BUCKET)
            .send()
            .await
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
        bucket
            .head_object(BUCKET, KEY)
            .send()
            .await
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
        bucket
            .head_bucket(BUCKET)
            .send()
            .await
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
        bucket
            .put_object(BUCKET, "state/x")
            .body(ByteStream::from_static(b"{}"))
            .send()
            .await
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
        bucket
            .delete_object(BUCKET, "state/x")
            .send()
            .await
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
    ];
    assert_eq!(results, [None, None, None, None, None]);

    let seen = seen.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    for sent in &seen {
        assert_eq!(
            sent.expected_owner.as_deref(),
            Some(OWNER),
            "{}",
            sent.request
        );
    }
}

#[tokio::test]
async fn moto_does_not_enforce_the_expected_owner() {
    // Pins why the test above checks the header on the wire: moto serves a bucket to any
    // expected owner. Real S3 answers 403 AccessDenied, which `open_object` reports as
    // `SourceError::AccessDenied`, not retryable.
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    put_object(&s3, BUCKET, KEY, b"x\n".to_vec()).await;
    let clients = clients(&moto, &[(var::EXPECTED_BUCKET_OWNER, "999999999999")]).await;
    let opened = open_object(&clients.audit, BUCKET, KEY).await;
    assert!(
        opened.is_ok(),
        "moto now enforces the owner: {:?}",
        opened.err()
    );
}

async fn create_bucket_in(moto: &Moto, bucket: &str, region: &str) {
    let base = common::sdk_config(&moto.endpoint).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&base)
            .region(Region::new(region.to_string()))
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket} in {region}: {e:?}"));
}

#[tokio::test]
async fn audit_and_state_bucket_regions_are_detected() {
    let moto = Moto::start();
    create_bucket_in(&moto, "eu-audit", "eu-west-1").await;
    create_bucket_in(&moto, "ap-state", "ap-southeast-2").await;

    // The clients start from us-east-1, as the function's own region.
    let clients = clients(
        &moto,
        &[
            (var::AUDIT_BUCKET, "eu-audit"),
            (var::STATE_BUCKET, "ap-state"),
        ],
    )
    .await;
    assert_eq!(clients.audit.region(), "eu-west-1");
    assert_eq!(
        clients.audit.client().config().region().map(|r| r.as_ref()),
        Some("eu-west-1")
    );
    let state = clients.state.as_ref().expect("state bucket");
    assert_eq!(state.bucket, "ap-state");
    assert_eq!(state.prefix, "redshift-audit-forwarder/");
    assert_eq!(state.s3.region(), "ap-southeast-2");
    assert_eq!(state.s3.expected_owner(), None);

    // And the detected region's client reads the bucket.
    let s3 = s3_client(&moto).await;
    put_object(&s3, "eu-audit", KEY, b"x\n".to_vec()).await;
    let opened = open_object(&clients.audit, "eu-audit", KEY).await;
    assert!(opened.is_ok(), "{:?}", opened.err());
}

#[tokio::test]
async fn state_in_the_audit_bucket_shares_its_region() {
    let moto = Moto::start();
    create_bucket_in(&moto, "eu-audit", "eu-central-1").await;
    let clients = clients(&moto, &[(var::AUDIT_BUCKET, "eu-audit")]).await;
    let state = clients.state.as_ref().expect("state bucket");
    assert_eq!(state.bucket, "eu-audit");
    assert_eq!(state.s3.region(), "eu-central-1");
}

#[tokio::test]
async fn configured_region_skips_detection() {
    let moto = Moto::start();
    // The bucket does not exist: detection would fail, so none happened.
    let clients = clients(
        &moto,
        &[
            (var::AUDIT_BUCKET, "not-created"),
            (var::AUDIT_BUCKET_REGION, "ap-south-1"),
            (var::STATE_BUCKET, "not-created"),
        ],
    )
    .await;
    assert_eq!(clients.audit.region(), "ap-south-1");
}

#[tokio::test]
async fn without_an_audit_bucket_the_function_region_is_used() {
    let moto = Moto::start();
    let clients = clients(&moto, &[]).await;
    assert_eq!(clients.audit.region(), REGION);
    assert!(clients.state.is_none());
}

#[tokio::test]
async fn audit_bucket_that_does_not_exist_fails_at_start_up() {
    let moto = Moto::start();
    let err = try_clients(&moto, &[(var::AUDIT_BUCKET, "not-created")])
        .await
        .err();
    assert!(
        matches!(&err, Some(SettingsError::NoSuchBucket { variable, bucket })
            if *variable == var::AUDIT_BUCKET && bucket == "not-created"),
        "{err:?}"
    );
    assert!(err.is_some_and(|e| !e.is_retryable()));
}

#[tokio::test]
async fn assumed_role_credentials_read_the_audit_bucket() {
    let moto = Moto::start();
    // In another region than the function's, so the audit client is derived from the probe.
    create_bucket_in(&moto, BUCKET, "eu-west-1").await;
    put_object(&s3_client(&moto).await, BUCKET, KEY, b"x\n".to_vec()).await;

    let clients = clients(
        &moto,
        &[
            (var::AUDIT_BUCKET, BUCKET),
            (
                var::SOURCE_ROLE_ARN,
                "arn:aws:iam::123456789012:role/audit-reader",
            ),
            (var::SOURCE_EXTERNAL_ID, "external-1234"),
        ],
    )
    .await;
    assert_eq!(clients.audit.region(), "eu-west-1");
    // The audit client signs with temporary credentials from moto's STS, not the base keys.
    let (key, session) = signing_key_of(&clients.audit, BUCKET).await;
    assert_ne!(key, ACCESS_KEY_ID);
    assert!(key.starts_with("ASIA"), "{key}");
    assert!(session, "assumed-role credentials carry a session token");

    // Moto's STS recorded the role, the external ID and the session name it was asked for.
    let state_dump: serde_json::Value =
        serde_json::from_str(&http_get(&moto, "/moto-api/data.json"))
            .unwrap_or_else(|e| panic!("moto state: {e}"));
    let roles = state_dump["sts"]["AssumedRole"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        roles.len(),
        1,
        "one AssumeRole call, cached after: {roles:?}"
    );
    assert_eq!(
        roles[0]["role_arn"],
        "arn:aws:iam::123456789012:role/audit-reader"
    );
    assert_eq!(roles[0]["external_id"], "external-1234");
    assert_eq!(roles[0]["session_name"], settings::SOURCE_SESSION_NAME);
    assert_eq!(roles[0]["access_key_id"], key.as_str());

    // The state client keeps the function's own credentials.
    let state = clients.state.as_ref().expect("state bucket");
    assert_eq!(
        signing_key_of(&state.s3, BUCKET).await,
        (ACCESS_KEY_ID.to_string(), false)
    );

    let opened = open_object(&clients.audit, BUCKET, KEY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (read, _, err) = read_body(opened.reader, 1024).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(read, b"x\n");
}

#[tokio::test]
async fn static_source_keys_read_the_audit_bucket() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    create_bucket(&s3, BUCKET).await;
    put_object(&s3, BUCKET, KEY, b"x\n".to_vec()).await;

    let clients = clients(
        &moto,
        &[
            (var::AUDIT_BUCKET, BUCKET),
            (var::STATE_BUCKET, BUCKET),
            (var::SOURCE_ACCESS_KEY_ID, "AKIASOURCEKEY0000001"),
            (var::SOURCE_SECRET_ACCESS_KEY, "source-secret"),
        ],
    )
    .await;
    let (key, session) = signing_key_of(&clients.audit, BUCKET).await;
    assert_eq!(key, "AKIASOURCEKEY0000001");
    assert!(!session);
    let state = clients.state.as_ref().expect("state bucket");
    assert_eq!(
        signing_key_of(&state.s3, BUCKET).await,
        (ACCESS_KEY_ID.to_string(), false)
    );

    let opened = open_object(&clients.audit, BUCKET, KEY).await;
    assert!(opened.is_ok(), "{:?}", opened.err());
}

#[tokio::test]
async fn clients_have_timeouts_below_the_lambda_deadline() {
    let moto = Moto::start();
    let clients = clients(&moto, &[]).await;
    let s3 = clients.audit.client().config().timeout_config().cloned();
    let s3 = s3.expect("S3 timeouts");
    assert_eq!(s3.connect_timeout(), Some(settings::CONNECT_TIMEOUT));
    assert_eq!(
        s3.operation_attempt_timeout(),
        Some(settings::S3_ATTEMPT_TIMEOUT)
    );
    assert_eq!(s3.operation_timeout(), Some(settings::S3_OPERATION_TIMEOUT));
    let firehose = clients.firehose.config().timeout_config().cloned();
    let firehose = firehose.expect("Firehose timeouts");
    assert_eq!(
        firehose.operation_attempt_timeout(),
        Some(settings::FIREHOSE_ATTEMPT_TIMEOUT)
    );
    // The template's default function timeout is 300 s.
    for t in [s3.operation_timeout(), firehose.operation_timeout()] {
        assert!(t.is_some_and(|t| t < Duration::from_secs(60)), "{t:?}");
    }
}

/// The body of a plain GET to the moto server (HTTP/1.0: no chunked encoding to undo).
fn http_get(moto: &Moto, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", moto.port)).expect("connect moto");
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
        moto.port
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head[9..].starts_with("200") => {
            body.to_string()
        }
        _ => panic!("GET {path}: {response}"),
    }
}

/// A one-shot HTTP server on loopback that answers every request with 200, a `Content-Length`
/// of `declared` and only `sent` bytes of body, then closes the connection.
fn serve_truncated_body(declared: usize, sent: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => break,
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {declared}\r\nETag: \"0123\"\r\n\
                 Last-Modified: Fri, 01 Mar 2024 00:53:00 GMT\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b'a'; sent]);
            let _ = stream.flush();
            // Dropping the stream closes the connection mid-body.
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn connection_cut_mid_body_is_a_read_error_not_eof() {
    let endpoint = serve_truncated_body(1_000_000, 100_000);
    let base = common::sdk_config(&endpoint).await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&base)
            .force_path_style(true)
            .build(),
    );
    let bucket = BucketClient::new(client, REGION, None);
    let opened = open_object(&bucket, BUCKET, KEY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.meta.content_length, Some(1_000_000));
    let (read, _, err) = read_body(opened.reader, 64 * 1024).await;
    assert!(read.len() <= 100_000, "{}", read.len());
    let err = err.map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains(KEY) && e.contains("failed after 100000 bytes")),
        "a cut body read as {} bytes and then {err:?}",
        read.len()
    );
}

#[tokio::test]
async fn unreachable_s3_at_start_up_is_a_retryable_error() {
    // Nothing listens on a port freed right after binding it: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = common::sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let err = clients_from_config(&base, &settings(&[(var::AUDIT_BUCKET, BUCKET)]))
        .await
        .err();
    assert!(
        matches!(&err, Some(SettingsError::RegionLookup { variable, .. }) if *variable == var::AUDIT_BUCKET),
        "{err:?}"
    );
    let err = err.expect("an error");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("AUDIT_BUCKET_REGION"), "{err}");
}
