//! The `parse` command end to end (issue 2, "Prove it"): the real binary on files written at test
//! time, one test per fact of FORMAT.md and DESIGN.md ("Command line", "Record schema"), asserting
//! on the NDJSON it prints, its stderr and its exit status.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::write::GzEncoder;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_redshift-audit-forwarder");

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const CLUSTER: &str = "analytics-prod";
const FILE_TIME: &str = "2024-03-01T00:53:00Z";

// Lines as FORMAT.md shows them, one per era of the connection log.
const CONN_2018: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |";
const CONN_2020: &str = "initiating session |Tue, 8 Dec 2020 20:01:55:177|::ffff:10.0.0.1 |5439 |5108|dev |rdsdb |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |1500| | | |psql |Linux 5.4 |libpq 13 |";
const CONN_2022: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de";
const USER_ALTER: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416";
const ACT_1: &str = "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SET statement_timeout TO 120000";
const ACT_2: &str = "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid=245636 ]' LOG: SELECT  ss.node as node,";

const CONNECTION_FIELDS: [&str; 22] = [
    "event",
    "recordtime",
    "remotehost",
    "remoteport",
    "pid",
    "dbname",
    "username",
    "authmethod",
    "duration",
    "sslversion",
    "sslcipher",
    "mtu",
    "sslcompression",
    "sslexpansion",
    "iamauthguid",
    "application_name",
    "os_version",
    "driver_version",
    "plugin_name",
    "protocol_version",
    "sessionid",
    "compression",
];
const PROVENANCE_FIELDS: [&str; 7] = [
    "log_type",
    "account_id",
    "region",
    "cluster",
    "file_time",
    "source",
    "id",
];

// ---------------------------------------------------------------------------------------------
// Harness

/// A directory of its own per test under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "parse-cli-{}-{}-{test}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Redshift audit log file name for the log type.
fn redshift_name(log_type: &str) -> String {
    format!("{ACCOUNT}_redshift_{REGION}_{CLUSTER}_{log_type}_2024-03-01T00:53.gz")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// What one run of `parse` gave.
#[derive(Debug)]
struct Run {
    success: bool,
    records: Vec<Value>,
    stderr: String,
}

fn parse(args: &[&OsStr]) -> Run {
    parse_with_stdin(args, None)
}

fn parse_with_stdin(args: &[&OsStr], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(BIN)
        .arg("parse")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for the binary");
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    assert!(
        stdout.is_empty() || stdout.ends_with('\n'),
        "NDJSON ends with a newline"
    );
    let records = stdout
        .lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v.is_object(), "one object a line: {line}");
            v
        })
        .collect();
    Run {
        success: out.status.success(),
        records,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn os(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// Parses files that must parse cleanly: exit 0, nothing on stderr.
fn parse_ok(args: &[&OsStr]) -> Vec<Value> {
    let run = parse(args);
    assert!(run.success, "exit status: stderr {}", run.stderr);
    assert_eq!(run.stderr, "", "nothing on stderr");
    run.records
}

/// Asserts the named columns have exactly these JSON values (types included).
fn assert_fields(record: &Value, want: &[(&str, Value)]) {
    for (name, value) in want {
        assert_eq!(&record[*name], value, "{name} in {record}");
        assert!(record.get(*name).is_some(), "{name} is present in {record}");
    }
}

fn is_record_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The provenance of a record parsed from a Redshift-named local file.
fn assert_provenance(record: &Value, log_type: &str, key: &Path, line: u64) {
    assert_fields(
        record,
        &[
            ("log_type", json!(log_type)),
            ("account_id", json!(ACCOUNT)),
            ("region", json!(REGION)),
            ("cluster", json!(CLUSTER)),
            ("file_time", json!(FILE_TIME)),
        ],
    );
    assert_eq!(
        record["source"],
        json!({"bucket": null, "key": key.to_str().expect("UTF-8 path"), "line": line}),
        "source of {record}"
    );
    assert!(is_record_id(&record["id"]), "id of {record}");
}

/// One field of every record, as a JSON array.
fn column(records: &[Value], field: &str) -> Value {
    records.iter().map(|r| r[field].clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Connection log eras

#[test]
fn connection_log_2018_fifteen_fields_and_trailing_pipe() {
    let dir = Scratch::new("conn2018");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2018}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_fields(
        r,
        &[
            ("event", json!("authenticated")),
            ("recordtime", json!("2020-12-07T20:01:55.177Z")),
            ("remotehost", json!("[local]")),
            ("remoteport", Value::Null),
            ("pid", json!(5108)),
            ("dbname", json!("dev")),
            ("username", json!("rdsdb")),
            ("authmethod", json!("Ident")),
            ("duration", json!(0)),
            ("sslversion", Value::Null),
            ("mtu", json!(0)),
            ("iamauthguid", Value::Null),
            ("application_name", Value::Null),
            ("sessionid", Value::Null),
            ("compression", Value::Null),
        ],
    );
    assert!(
        r.get("extra_columns").is_none(),
        "the trailing | adds no column"
    );
    assert_provenance(r, "connectionlog", &path, 1);
}

#[test]
fn connection_record_has_every_column_and_the_provenance_and_nothing_else() {
    let dir = Scratch::new("schema");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2018}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    let mut keys: Vec<&str> = records[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want: Vec<&str> = CONNECTION_FIELDS
        .iter()
        .chain(PROVENANCE_FIELDS.iter())
        .copied()
        .collect();
    want.sort_unstable();
    assert_eq!(keys, want);
}

#[test]
fn connection_log_2020_eighteen_fields_and_trailing_pipe() {
    let dir = Scratch::new("conn2020");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2020}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    assert_fields(
        &records[0],
        &[
            ("event", json!("initiating session")),
            ("recordtime", json!("2020-12-08T20:01:55.177Z")),
            ("remotehost", json!("::ffff:10.0.0.1")),
            ("remoteport", json!(5439)),
            ("authmethod", json!("password")),
            ("sslversion", json!("TLSv1.2")),
            ("sslcipher", json!("ECDHE-RSA-AES256-GCM-SHA384")),
            ("mtu", json!(1500)),
            ("sslcompression", Value::Null),
            ("iamauthguid", Value::Null),
            ("application_name", json!("psql")),
            ("os_version", json!("Linux 5.4")),
            ("driver_version", json!("libpq 13")),
            ("plugin_name", Value::Null),
            ("protocol_version", Value::Null),
        ],
    );
    assert!(records[0].get("extra_columns").is_none());
}

#[test]
fn connection_log_2022_twenty_one_fields_without_trailing_pipe() {
    let dir = Scratch::new("conn2022");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2022}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    assert_fields(
        &records[0],
        &[
            ("event", json!("authentication failure")),
            ("recordtime", json!("2022-03-16T08:18:14.766Z")),
            ("remotehost", json!("::ffff:223.233.72.13")),
            ("remoteport", json!(1224)),
            ("pid", json!(1073742045)),
            ("username", json!("alice")),
            ("os_version", json!("Windows 10 10.0 amd64")),
            (
                "driver_version",
                json!("Amazon Redshift JDBC Driver 1.2.55.1083"),
            ),
            ("plugin_name", json!("none")),
            ("protocol_version", json!(0)),
            ("sessionid", json!("da9edc00-a1e6-44e0-8274-9417e5f355de")),
            ("compression", Value::Null),
        ],
    );
    assert!(
        records[0]["pid"].is_i64(),
        "pid above 2^30 is a JSON integer"
    );
}

#[test]
fn connection_log_twenty_two_fields_fill_compression() {
    let dir = Scratch::new("conn22");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2022}|lz4 \n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_fields(
        &records[0],
        &[
            ("sessionid", json!("da9edc00-a1e6-44e0-8274-9417e5f355de")),
            ("compression", json!("lz4")),
        ],
    );
    assert!(records[0].get("extra_columns").is_none());
}

#[test]
fn unknown_connection_columns_are_kept_in_extra_columns() {
    let dir = Scratch::new("extra");
    let path = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2022}|lz4 |future one | 42\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_fields(
        &records[0],
        &[
            ("compression", json!("lz4")),
            ("extra_columns", json!(["future one", "42"])),
        ],
    );
}

#[test]
fn unpadded_and_padded_days_give_the_same_date() {
    let dir = Scratch::new("days");
    let content = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |1|dev |rdsdb |Ident |0| | |0| | | |\n\
                   authenticated |Mon, 07 Dec 2020 20:01:55:177|[local] | |2|dev |rdsdb |Ident |0| | |0| | | |\n\
                   authenticated |Wed, 16 Mar 2022 08:18:14:766|[local] | |3|dev |rdsdb |Ident |0| | |0| | | |\n";
    let path = dir.file(&redshift_name("connectionlog"), &gzip(content.as_bytes()));
    let records = parse_ok(&[os(&path)]);
    assert_eq!(
        column(&records, "recordtime"),
        json!([
            "2020-12-07T20:01:55.177Z",
            "2020-12-07T20:01:55.177Z",
            "2022-03-16T08:18:14.766Z"
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// User log

#[test]
fn user_log_types_ids_flags_and_password_expiry() {
    let dir = Scratch::new("userlog");
    let content = format!(
        "{USER_ALTER}\n\
         105|bob |robert |rename |0|0|0|2025-06-30 00:00:00|200|3000|Fri, 4 Dec 2020 01:02:03:004\n\
         106|carol | |create |0|1|0|infinity|201|3001|Fri, 4 Dec 2020 01:02:04:005\n\
         107|dave | |drop |0|0|0| |202|3002|Fri, 4 Dec 2020 01:02:05:006\n"
    );
    let path = dir.file(&redshift_name("userlog"), &gzip(content.as_bytes()));
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 4);
    assert_fields(
        &records[0],
        &[
            ("userid", json!(1)),
            ("username", json!("rdsdb")),
            ("oldusername", Value::Null),
            ("action", json!("alter")),
            ("usecreatedb", json!(true)),
            ("usesuper", json!(true)),
            ("usecatupd", json!(true)),
            ("valuntil", Value::Null),
            ("pid", json!(14872)),
            ("xid", json!(1061)),
            ("recordtime", json!("2020-12-03T10:18:38.416Z")),
        ],
    );
    assert_fields(
        &records[1],
        &[
            ("oldusername", json!("robert")),
            ("action", json!("rename")),
            ("usecreatedb", json!(false)),
            ("usesuper", json!(false)),
            ("valuntil", json!("2025-06-30 00:00:00")),
        ],
    );
    assert_fields(
        &records[2],
        &[("usesuper", json!(true)), ("valuntil", Value::Null)],
    );
    assert_fields(&records[3], &[("valuntil", Value::Null)]);
    for (i, r) in records.iter().enumerate() {
        assert_provenance(r, "userlog", &path, i as u64 + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// User activity log

#[test]
fn single_line_activity_statement() {
    let dir = Scratch::new("act1");
    let path = dir.file(
        &redshift_name("useractivitylog"),
        &gzip(format!("{ACT_1}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    assert_fields(
        &records[0],
        &[
            ("recordtime", json!("2020-12-08T22:00:03.000Z")),
            ("db", json!("dev")),
            ("user", json!("rdsdb")),
            ("pid", json!(685)),
            ("userid", json!(1)),
            ("xid", json!(245578)),
            ("query", json!("SET statement_timeout TO 120000")),
        ],
    );
    assert_provenance(&records[0], "useractivitylog", &path, 1);
}

#[test]
fn multi_line_activity_statement_keeps_its_newlines_and_starting_line() {
    let dir = Scratch::new("actmulti");
    let content =
        format!("{ACT_2}\n        bc.temporary as temporary\nFROM    stv_slices as ss;\n{ACT_1}\n");
    let path = dir.file(&redshift_name("useractivitylog"), &gzip(content.as_bytes()));
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0]["query"],
        "SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;"
    );
    assert_eq!(records[0]["pid"], json!(23170));
    assert_eq!(records[0]["source"]["line"], json!(1));
    assert_eq!(records[1]["query"], "SET statement_timeout TO 120000");
    assert_eq!(
        records[1]["source"]["line"],
        json!(4),
        "line counts the query lines"
    );
}

#[test]
fn leading_space_before_the_quote_is_tolerated() {
    let dir = Scratch::new("actspace");
    let content = format!(
        " '2020-12-08T22:00:03Z UTC [ db=dev user=IAM:alice pid=685 userid=1 xid=2 ]' LOG: select 1\n {ACT_1}\n"
    );
    let path = dir.file(&redshift_name("useractivitylog"), &gzip(content.as_bytes()));
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 2, "both indented headers start records");
    assert_fields(
        &records[0],
        &[("user", json!("IAM:alice")), ("query", json!("select 1"))],
    );
    assert_eq!(records[1]["xid"], json!(245578));
}

// ---------------------------------------------------------------------------------------------
// Line ends and text

#[test]
fn crlf_line_ends_leave_no_carriage_return_in_any_value() {
    let dir = Scratch::new("crlf");
    let conn = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2022}\r\n{CONN_2018}\r\n").as_bytes()),
    );
    let act = dir.file(
        &redshift_name("useractivitylog"),
        &gzip(format!("{ACT_2}\r\nFROM t\r\n{ACT_1}\r\n").as_bytes()),
    );
    let conn_records = parse_ok(&[os(&conn)]);
    assert_eq!(conn_records.len(), 2);
    assert_eq!(
        conn_records[0]["sessionid"],
        "da9edc00-a1e6-44e0-8274-9417e5f355de"
    );
    assert!(conn_records[1].get("extra_columns").is_none());
    let act_records = parse_ok(&[os(&act)]);
    assert_eq!(act_records.len(), 2);
    assert_eq!(act_records[0]["query"], "SELECT  ss.node as node,\nFROM t");
    assert_eq!(act_records[1]["query"], "SET statement_timeout TO 120000");
    for r in conn_records.iter().chain(&act_records) {
        assert!(!r.to_string().contains("\\r"), "a \\r is left in {r}");
    }
}

#[test]
fn invalid_utf8_is_replaced_and_flagged_on_its_record_only() {
    let dir = Scratch::new("utf8");
    let mut content = b"authenticated |Mon, 7 Dec 2020 20:01:55:177|10.0.0.1 |5439 |1|dev |rdsdb |password |0| | |0| | | |caf\xe9 \xff |Linux |jdbc |\n".to_vec();
    content.extend_from_slice(format!("{CONN_2018}\n").as_bytes());
    let path = dir.file(&redshift_name("connectionlog"), &gzip(&content));
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 2);
    assert_fields(
        &records[0],
        &[
            ("application_name", json!("caf\u{fffd} \u{fffd}")),
            ("os_version", json!("Linux")),
            ("invalid_utf8", json!(true)),
        ],
    );
    assert!(records[1].get("invalid_utf8").is_none());
}

// ---------------------------------------------------------------------------------------------
// Empty inputs and compression

#[test]
fn empty_plain_file_and_blank_lines_give_no_records() {
    let dir = Scratch::new("emptyplain");
    let empty = dir.file(
        "123456789012_redshift_us-east-1_analytics-prod_userlog_2024-03-01T00:53",
        b"",
    );
    let blank = dir.file(
        "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T00:53",
        b"\n  \n\r\n",
    );
    assert_eq!(parse_ok(&[os(&empty), os(&blank)]), Vec::<Value>::new());
}

#[test]
fn zero_byte_gz_file_gives_no_records() {
    let dir = Scratch::new("zerogz");
    let path = dir.file(&redshift_name("useractivitylog"), b"");
    assert_eq!(parse_ok(&[os(&path)]), Vec::<Value>::new());
}

#[test]
fn gzip_of_empty_content_gives_no_records() {
    let dir = Scratch::new("emptygz");
    let path = dir.file(&redshift_name("connectionlog"), &gzip(b""));
    assert_eq!(parse_ok(&[os(&path)]), Vec::<Value>::new());
}

#[test]
fn two_member_gzip_yields_both_members() {
    let dir = Scratch::new("twomember");
    let line = |pid: u32| {
        format!(
            "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |{pid}|dev |rdsdb |Ident |0| | |0| | | |\n"
        )
    };
    let mut both = gzip(format!("{}{}", line(1), line(2)).as_bytes());
    both.extend(gzip(format!("{}{}", line(3), line(4)).as_bytes()));
    let path = dir.file(&redshift_name("connectionlog"), &both);
    let records = parse_ok(&[os(&path)]);
    assert_eq!(column(&records, "pid"), json!([1, 2, 3, 4]));
    let lines: Value = records
        .iter()
        .map(|r| r["source"]["line"].clone())
        .collect();
    assert_eq!(
        lines,
        json!([1, 2, 3, 4]),
        "line numbers run on across members"
    );
}

#[test]
fn statement_split_across_gzip_members_is_one_record() {
    let dir = Scratch::new("splitmember");
    let mut both = gzip(format!("{ACT_2}\n  bc.temporary").as_bytes());
    both.extend(gzip(
        format!(" as temporary\nFROM t;\n{ACT_1}\n").as_bytes(),
    ));
    let path = dir.file(&redshift_name("useractivitylog"), &both);
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0]["query"],
        "SELECT  ss.node as node,\n  bc.temporary as temporary\nFROM t;"
    );
}

/// Many distinct connection-log lines, so the gzip stream is long enough to cut in the middle.
fn many_connection_lines(count: u32) -> String {
    (0..count)
        .map(|i| {
            format!(
                "authenticated |Mon, 7 Dec 2020 20:01:55:177|::ffff:10.{}.{}.{} |{} |{i}|dev |user{} |password |{}| | |0| | | |\n",
                i % 251,
                i.wrapping_mul(7) % 253,
                i.wrapping_mul(13) % 255,
                1024 + i.wrapping_mul(31) % 60000,
                i.wrapping_mul(2_654_435_761) % 1000,
                i.wrapping_mul(40_503) % 999_983,
            )
        })
        .collect()
}

#[test]
fn truncated_gzip_fails_naming_the_file_and_keeps_the_records_before_the_cut() {
    let dir = Scratch::new("truncated");
    let total = 20_000;
    let whole = gzip(many_connection_lines(total).as_bytes());
    let cut = &whole[..whole.len() / 2];
    let path = dir.file(&redshift_name("connectionlog"), cut);
    let run = parse(&[os(&path)]);
    assert!(!run.success, "a truncated file is a failure");
    let shown = path.display().to_string();
    let stderr_lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        stderr_lines.len(),
        1,
        "one line per failure: {}",
        run.stderr
    );
    assert!(
        stderr_lines[0].starts_with(&format!("{shown}: ")),
        "{}",
        run.stderr
    );
    assert!(
        stderr_lines[0].contains(&format!("read failed after {} records", run.records.len())),
        "says why, and how far it got: {}",
        run.stderr
    );
    let n = run.records.len();
    assert!(n > 1000 && n < total as usize, "{n} records before the cut");
    for (i, r) in run.records[..n - 1].iter().enumerate() {
        assert_eq!(r["pid"], json!(i), "record {i} is whole");
        assert_eq!(r["source"]["line"], json!(i + 1));
        assert!(r.get("truncated").is_none());
    }
    let last = &run.records[n - 1];
    assert!(
        last["truncated"] == json!(true) || last["pid"] == json!(n - 1),
        "the line the cut went through is flagged: {last}"
    );
}

#[test]
fn binary_garbage_becomes_parse_error_records_with_the_raw_text() {
    let dir = Scratch::new("garbage");
    let mut garbage = Vec::with_capacity(20_000);
    let mut x: u32 = 0x2545_f491;
    while garbage.len() < 20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        // No `|`: a line with two fields and an empty time would be a (typed) record.
        garbage.push(match (x >> 24) as u8 {
            b'|' => b'/',
            b => b,
        });
    }
    garbage[0] = b'#'; // not the gzip magic
    let path = dir.file(&redshift_name("connectionlog"), &garbage);
    let expected: Vec<(usize, &[u8])> = garbage
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let run = parse(&[os(&path)]);
    assert!(
        run.success,
        "garbage is data, not a failure: {}",
        run.stderr
    );
    assert_eq!(run.records.len(), expected.len());
    for (r, (index, line)) in run.records.iter().zip(&expected) {
        assert!(r["parse_error"].is_string(), "{r}");
        assert_eq!(r["raw"], json!(String::from_utf8_lossy(line)));
        assert_eq!(r["source"]["line"], json!(index + 1));
        let replaced = std::str::from_utf8(line).is_err();
        assert_eq!(r.get("invalid_utf8") == Some(&json!(true)), replaced);
        assert!(is_record_id(&r["id"]));
    }
    let summary = format!(
        "{}: {n} of {n} records could not be parsed",
        path.display(),
        n = expected.len()
    );
    assert!(run.stderr.starts_with(&summary), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one summary line");
}

#[test]
fn plain_text_under_a_gz_name_is_parsed() {
    let dir = Scratch::new("plaingz");
    let path = dir.file(
        &redshift_name("useractivitylog"),
        format!("{ACT_1}\n").as_bytes(),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["query"], "SET statement_timeout TO 120000");
}

#[test]
fn gzip_under_a_plain_name_is_parsed() {
    let dir = Scratch::new("gzplain");
    let path = dir.file(
        "123456789012_redshift_us-east-1_analytics-prod_userlog_2024-03-01T00:53",
        &gzip(format!("{USER_ALTER}\n").as_bytes()),
    );
    let records = parse_ok(&[os(&path)]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["username"], "rdsdb");
}

// ---------------------------------------------------------------------------------------------
// Names, log types and inputs

#[test]
fn log_type_flag_parses_a_non_redshift_name_with_null_name_fields() {
    let dir = Scratch::new("flag");
    let path = dir.file("audit.log", format!("{USER_ALTER}\n").as_bytes());
    let records = parse_ok(&[OsStr::new("--log-type"), OsStr::new("userlog"), os(&path)]);
    assert_eq!(records.len(), 1);
    assert_fields(
        &records[0],
        &[
            ("username", json!("rdsdb")),
            ("log_type", json!("userlog")),
            ("account_id", Value::Null),
            ("region", Value::Null),
            ("cluster", Value::Null),
            ("file_time", Value::Null),
        ],
    );
    assert_eq!(
        records[0]["source"],
        json!({"bucket": null, "key": path.to_str(), "line": 1})
    );
}

#[test]
fn unknown_name_without_log_type_fails_with_a_clear_message() {
    let dir = Scratch::new("unknown");
    let path = dir.file("audit.log", format!("{USER_ALTER}\n").as_bytes());
    let run = parse(&[os(&path)]);
    assert!(!run.success);
    assert!(run.records.is_empty());
    let shown = path.display().to_string();
    assert!(
        run.stderr.starts_with(&format!("{shown}: ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--log-type"),
        "says what to do: {}",
        run.stderr
    );
}

#[test]
fn unknown_log_type_value_is_refused() {
    let dir = Scratch::new("badflag");
    let path = dir.file("audit.log", format!("{USER_ALTER}\n").as_bytes());
    let run = parse(&[
        OsStr::new("--log-type"),
        OsStr::new("cloudwatch"),
        os(&path),
    ]);
    assert!(!run.success);
    assert!(run.records.is_empty());
    assert!(run.stderr.contains("cloudwatch"), "{}", run.stderr);
}

#[test]
fn dash_reads_standard_input() {
    let input = gzip(format!("{ACT_2}\nFROM t\n{ACT_1}\n").as_bytes());
    let run = parse_with_stdin(
        &[
            OsStr::new("--log-type"),
            OsStr::new("useractivitylog"),
            OsStr::new("-"),
        ],
        Some(&input),
    );
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.records.len(), 2);
    assert_eq!(run.records[0]["query"], "SELECT  ss.node as node,\nFROM t");
    assert_eq!(
        run.records[1]["source"],
        json!({"bucket": null, "key": "-", "line": 3})
    );
    assert_eq!(run.records[1]["account_id"], Value::Null);
}

#[test]
fn one_failing_file_does_not_stop_the_others() {
    let dir = Scratch::new("several");
    let conn = dir.file(
        &redshift_name("connectionlog"),
        &gzip(format!("{CONN_2022}\n").as_bytes()),
    );
    let missing = dir
        .0
        .join("123456789012_redshift_us-east-1_other_connectionlog_2024-03-01T01:53.gz");
    let user = dir.file(
        &redshift_name("userlog"),
        &gzip(format!("{USER_ALTER}\n").as_bytes()),
    );
    let run = parse(&[os(&conn), os(&missing), os(&user)]);
    assert!(!run.success, "any failed input fails the run");
    assert_eq!(
        column(&run.records, "log_type"),
        json!(["connectionlog", "userlog"]),
        "the files before and after the failure are parsed"
    );
    let stderr_lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(stderr_lines.len(), 1, "{}", run.stderr);
    assert!(
        stderr_lines[0].starts_with(&format!("{}: cannot open", missing.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn source_key_is_the_path_as_given() {
    let dir = Scratch::new("key");
    let name = redshift_name("userlog");
    let absolute = dir.file(&name, &gzip(format!("{USER_ALTER}\n").as_bytes()));
    let relative = format!("./{name}");
    let out = Command::new(BIN)
        .current_dir(&dir.0)
        .args(["parse", &relative])
        .output()
        .expect("run the binary");
    assert!(out.status.success());
    let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    assert_eq!(record["source"]["key"], json!(relative));
    assert_eq!(
        record["cluster"],
        json!(CLUSTER),
        "name fields come from the last segment"
    );
    let records = parse_ok(&[os(&absolute)]);
    assert_eq!(records[0]["source"]["key"], json!(absolute.to_str()));
}

#[test]
fn same_file_parsed_twice_gives_the_same_ids() {
    let dir = Scratch::new("ids");
    let content = gzip(many_connection_lines(50).as_bytes());
    let path = dir.file(&redshift_name("connectionlog"), &content);
    let first = parse_ok(&[os(&path)]);
    let again = parse_ok(&[os(&path)]);
    let ids: Vec<&str> = first.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(column(&first, "id"), column(&again, "id"));
    assert!(first.iter().all(|r| is_record_id(&r["id"])));
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "every record has its own id");
    // The key is part of the id: the same bytes under another name are other records.
    let copy = dir.file(
        "123456789012_redshift_us-east-1_analytics-prod_connectionlog_2024-03-01T01:53.gz",
        &content,
    );
    let other = parse_ok(&[os(&copy)]);
    assert!(first.iter().zip(&other).all(|(a, b)| a["id"] != b["id"]));
}
