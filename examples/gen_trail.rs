//! Writes a gzip CloudTrail trail file of about N MB for tests and benchmarks:
//! `cargo run --release --example gen_trail -- OUT.json.gz [MB] [REDSHIFT_EVERY]`.
//!
//! Events look like CloudTrail's (management events with a user identity, request
//! parameters and the usual fields); one in `REDSHIFT_EVERY` (default 10) comes from
//! `redshift.amazonaws.com`, one in four of those failed, the rest from other services.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use flate2::write::GzEncoder;
use flate2::Compression;

const NAMES: [&str; 8] = [
    "CreateCluster",
    "DescribeClusters",
    "ModifyClusterParameterGroup",
    "DisableLogging",
    "DeleteClusterSnapshot",
    "GetClusterCredentials",
    "PauseCluster",
    "ExecuteStatement",
];

fn event(n: usize, redshift: bool) -> String {
    let (source, name) = if redshift {
        let name = NAMES[n % NAMES.len()];
        let source = if name == "ExecuteStatement" {
            "redshift-data.amazonaws.com"
        } else {
            "redshift.amazonaws.com"
        };
        (source, name)
    } else {
        ("s3.amazonaws.com", "GetObject")
    };
    let error = if redshift && n % 4 == 0 {
        r#""errorCode":"InvalidClusterState","errorMessage":"The cluster is not in available state","#
    } else {
        ""
    };
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{n}","arn":"arn:aws:sts::123456789012:assumed-role/Admin/session-{n}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE{n:08}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/Admin","accountId":"123456789012","userName":"Admin"}},"attributes":{{"creationDate":"2024-03-01T00:10:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"2024-03-01T00:{:02}:{:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{}","userAgent":"aws-cli/2.15.0 Python/3.11","requestParameters":{{"clusterIdentifier":"analytics-{}","parameterGroupName":"default.redshift-1.0"}},{error}"responseElements":null,"requestID":"{n:08x}-0000-4000-8000-000000000000","eventID":"{n:08x}-1111-4000-8000-000000000000","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"redshift.us-east-1.amazonaws.com"}}}}"#,
        (n / 60) % 60,
        n % 60,
        n % 250,
        n % 7
    )
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: gen_trail OUT.json.gz [MB] [REDSHIFT_EVERY]");
        std::process::exit(2);
    };
    let mb: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let every: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    let target = mb * 1024 * 1024;
    let mut out = GzEncoder::new(BufWriter::new(File::create(path)?), Compression::default());
    out.write_all(b"{\"Records\":[")?;
    let (mut written, mut n) = (0, 0);
    while written < target {
        if n > 0 {
            out.write_all(b",")?;
        }
        let e = event(n, n % every == 0);
        out.write_all(e.as_bytes())?;
        written += e.len() + 1;
        n += 1;
    }
    out.write_all(b"]}")?;
    out.finish()?.flush()?;
    eprintln!("{path}: {n} events, {written} bytes before gzip");
    Ok(())
}
