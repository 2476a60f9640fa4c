//! Properties of the three parsers over generated input (issue 2, "Prove it"): no input makes a
//! parser panic or lose its count, a record rendered back into the file format parses to the same
//! record, and the user activity log has exactly one record per header line.

use std::io::{self, Read};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use redshift_audit_forwarder::logs::{
    render_activity, render_pipe_line, Body, Columns, Kind, LogType, Parser, Timestamp, Value,
    ACTIVITY_COLUMNS, CONNECTION_COLUMNS, MAX_COLUMNS, USER_COLUMNS,
};
use redshift_audit_forwarder::output::{write_record, Provenance};

/// Case counts stay modest so the whole file runs in seconds in a debug build;
/// `PROPTEST_CASES` overrides them for a deeper run.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Shrinking a failure is worth a little time, but not minutes.
        max_shrink_iters: 2_000,
        // Integration tests have no lib.rs beside them to keep a regressions file next to;
        // bugs found are pinned as plain tests below instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const HEADER: &str =
    "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: ";
const CONNECTION_LINE: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de";
const USER_LINE: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416";

// ---------------------------------------------------------------------------------------------
// Readers

/// Hands out the input a few bytes at a time (sizes cycle through `steps`), so every buffer
/// boundary of the line reader gets crossed.
struct Trickle<'a> {
    data: &'a [u8],
    steps: Vec<usize>,
    next: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = self.steps[self.next % self.steps.len()];
        self.next += 1;
        let n = buf.len().min(step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads the input, then fails the way a truncated gzip stream does.
struct FailsAtEnd<'a>(&'a [u8]);

impl Read for FailsAtEnd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut short"));
        }
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn parser<R: Read>(log_type: LogType, input: R, limit: Option<usize>) -> Parser<R> {
    match limit {
        Some(limit) => Parser::with_limit(log_type, input, limit),
        None => Parser::new(log_type, input),
    }
}

/// How a parse run ended.
#[derive(Debug, PartialEq)]
enum End {
    Finished,
    Failed(io::ErrorKind),
}

/// Reads every record, checking what must hold for any input: ordinals count 0, 1, 2, ...; line
/// numbers start at 1 and never go back; every record writes valid JSON that carries the log type
/// and a 32-hex id; after the end, the parser stays at the end. Returns each record's debug text.
fn drain<R: Read>(mut parser: Parser<R>) -> Result<(Vec<String>, End), TestCaseError> {
    let log_type = parser.log_type();
    let provenance = Provenance::new(log_type, None, None, "fuzz/input");
    let mut records = Vec::new();
    let mut last_line = 1;
    let mut buf = Vec::new();
    loop {
        let record = match parser.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => return Ok((records, End::Failed(e.kind()))),
        };
        prop_assert_eq!(
            record.ordinal,
            records.len() as u64,
            "ordinals are 0, 1, 2, ..."
        );
        prop_assert!(
            record.line >= last_line,
            "line {} after line {}",
            record.line,
            last_line
        );
        prop_assert_eq!(record.log_type, log_type);
        last_line = record.line;
        buf.clear();
        write_record(&mut buf, &record, &provenance);
        let json: serde_json::Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "record JSON does not parse ({e}): {}",
                    String::from_utf8_lossy(&buf)
                )))
            }
        };
        prop_assert_eq!(json["log_type"].as_str(), Some(log_type.as_str()));
        prop_assert_eq!(json["source"]["line"].as_u64(), Some(record.line));
        // 32 hex digits; a record the input failed inside has `-cut` after them (issue 12).
        let id = json["id"].as_str().unwrap_or("");
        let hex = if record.read_cut {
            id.strip_suffix("-cut").unwrap_or("")
        } else {
            id
        };
        prop_assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "id {:?}",
            id
        );
        records.push(format!("{record:?}"));
    }
    prop_assert!(
        matches!(parser.next_record(), Ok(None)),
        "a parser at its end stays there"
    );
    Ok((records, End::Finished))
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input

/// Bytes that are mostly noise, with the pieces the parsers look for mixed in: line ends, `|`,
/// quotes, header fragments, whole valid lines, timestamps, broken UTF-8.
fn noisy_input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..48),
        2 => "[ -~]{0,24}".prop_map(String::into_bytes),
        2 => Just(b"\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"|".to_vec()),
        1 => Just(b"'".to_vec()),
        1 => Just(b" '".to_vec()),
        1 => Just(b"  ".to_vec()),
        1 => Just(HEADER.as_bytes().to_vec()),
        1 => Just(b"'2020-12-08T22:00:03Z UTC [ ".to_vec()),
        1 => "'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z UTC \\[ (db=[a-z]{0,3} )?(user=[a-z]{0,3} )?(pid=[0-9x]{0,3} )?(userid=[0-9]{0,2} )?(xid=[0-9-]{0,3} )?\\]' LOG: ?"
            .prop_map(String::into_bytes),
        1 => Just(b"]' LOG:".to_vec()),
        1 => Just(b" UTC [ ".to_vec()),
        1 => Just(CONNECTION_LINE.as_bytes().to_vec()),
        1 => Just(USER_LINE.as_bytes().to_vec()),
        1 => Just(b"Mon, 7 Dec 2020 20:01:55:177".to_vec()),
        1 => Just(b"Thu, 29 Feb 2024 23:59:60:999".to_vec()),
        1 => "[0-9]{1,25}".prop_map(String::into_bytes),
        1 => Just(vec![0xff]),
        1 => Just(vec![0xe2, 0x82]),
        1 => Just("é日🎉".as_bytes().to_vec()),
        1 => Just(vec![0x1f, 0x8b, 0x08]),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// No limit (the real one) or a small one, so long lines and statements get cut.
fn limit() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), (1usize..=200).prop_map(Some)]
}

fn log_type() -> impl Strategy<Value = LogType> {
    prop_oneof![
        Just(LogType::ConnectionLog),
        Just(LogType::UserLog),
        Just(LogType::UserActivityLog)
    ]
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn no_input_makes_a_parser_panic_or_lose_count(
        input in noisy_input(),
        log_type in log_type(),
        limit in limit(),
    ) {
        let (_, end) = drain(parser(log_type, &input[..], limit))?;
        prop_assert_eq!(end, End::Finished);
    }

    #[test]
    fn how_the_input_is_split_into_reads_does_not_change_the_records(
        input in noisy_input(),
        log_type in log_type(),
        limit in limit(),
        steps in prop::collection::vec(1usize..8, 1..4),
    ) {
        let (whole, _) = drain(parser(log_type, &input[..], limit))?;
        let trickle = Trickle { data: &input, steps, next: 0 };
        let (pieces, end) = drain(parser(log_type, trickle, limit))?;
        prop_assert_eq!(end, End::Finished);
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn a_read_error_is_never_swallowed(
        input in noisy_input(),
        log_type in log_type(),
        limit in limit(),
    ) {
        let (_, end) = drain(parser(log_type, FailsAtEnd(&input), limit))?;
        prop_assert_eq!(end, End::Failed(io::ErrorKind::UnexpectedEof));
    }
}

/// Found by `how_the_input_is_split_into_reads_does_not_change_the_records`: a line exactly as
/// long as the limit was cut (flagged truncated, plus an empty continuation record) when its
/// newline had not been read yet, and kept whole when it had.
#[test]
fn line_of_exactly_the_limit_is_whole_however_the_input_is_read() {
    let input = b"abcd\nef\n";
    for steps in [vec![1], vec![4], vec![5], vec![100]] {
        let trickle = Trickle {
            data: input,
            steps: steps.clone(),
            next: 0,
        };
        let mut parser = Parser::with_limit(LogType::ConnectionLog, trickle, 4);
        let mut got = Vec::new();
        while let Some(r) = parser.next_record().expect("no read error") {
            let raw = match &r.body {
                Body::ParseError { raw, .. } => raw.to_string(),
                Body::Columns(_) => String::from("<columns>"),
            };
            got.push((raw, r.line, r.truncated));
        }
        assert_eq!(
            got,
            vec![("abcd".to_string(), 1, false), ("ef".to_string(), 2, false)],
            "reads of {steps:?} bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generated records

/// An owned typed value; `Value` borrows its text.
#[derive(Debug, Clone)]
enum Gen {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Time(Timestamp),
}

impl Gen {
    fn value(&self) -> Value<'_> {
        match self {
            Gen::Null => Value::Null,
            Gen::Text(s) => Value::Text(s),
            Gen::Int(n) => Value::Int(*n),
            Gen::Bool(b) => Value::Bool(*b),
            Gen::Time(t) => Value::Time(*t),
        }
    }
}

/// Text as a pipe-separated log can carry it: no `|` or line break, no padding (the parser trims
/// it), never empty (empty is null).
fn field_text() -> impl Strategy<Value = String> {
    let edge = "[^|\r\n \t]";
    prop_oneof![
        3 => "[A-Za-z0-9:.;=/()-]{1,12}( [A-Za-z0-9.]{1,8}){0,3}",
        1 => proptest::string::string_regex(&format!("{edge}([^|\r\n]{{0,30}}{edge})?"))
            .expect("valid regex"),
    ]
}

fn count_int() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..100_000, (1i64 << 30)..(1i64 << 33), 0i64..=i64::MAX]
}

fn timestamp(max_milli: u32) -> impl Strategy<Value = Timestamp> {
    (
        prop_oneof![1u32..=9999, 2015u32..=2030],
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        0u32..=60,
        0u32..=max_milli,
    )
        .prop_filter_map("no such day", |(y, mo, d, h, mi, s, ms)| {
            Timestamp::from_parts(y, mo, d, h, mi, s, ms).ok()
        })
}

/// A value for a column of `kind`, sometimes null. A record time is always there: every record
/// Redshift writes has one.
fn value(kind: Kind) -> BoxedStrategy<Gen> {
    match kind {
        Kind::Text => {
            prop_oneof![1 => Just(Gen::Null), 3 => field_text().prop_map(Gen::Text)].boxed()
        }
        Kind::Int => prop_oneof![1 => Just(Gen::Null), 3 => count_int().prop_map(Gen::Int)].boxed(),
        Kind::Flag => {
            prop_oneof![1 => Just(Gen::Null), 3 => any::<bool>().prop_map(Gen::Bool)].boxed()
        }
        Kind::Time => timestamp(999).prop_map(Gen::Time).boxed(),
        Kind::ValidUntil => prop_oneof![
            1 => Just(Gen::Null),
            3 => field_text()
                .prop_filter("means never", |s| {
                    !s.eq_ignore_ascii_case("infinity") && s != "9223372036854775807"
                })
                .prop_map(Gen::Text),
        ]
        .boxed(),
    }
}

fn values(columns: &'static [(&'static str, Kind)]) -> Vec<BoxedStrategy<Gen>> {
    columns.iter().map(|&(_, kind)| value(kind)).collect()
}

/// Unknown columns past the known ones, raw as they follow the last `|`. Each is non-empty: an
/// empty last one would be indistinguishable from a trailing `|`.
fn extra() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.3,
        prop::collection::vec("[^|\r\n]{1,12}", 1..4).prop_map(|c| c.join("|")),
    )
}

fn columns<'a>(
    names: &'static [(&'static str, Kind)],
    generated: &'a [Gen],
    extra: Option<&'a str>,
) -> Columns<'a> {
    let mut values = [Value::Null; MAX_COLUMNS];
    for (slot, g) in values.iter_mut().zip(generated) {
        *slot = g.value();
    }
    Columns {
        names,
        values: Box::new(values),
        extra,
    }
}

/// One generated pipe-separated record: all its values (those past `count` are not written) and
/// how it is laid out.
#[derive(Debug, Clone)]
struct PipeRecord {
    values: Vec<Gen>,
    count: usize,
    extra: Option<String>,
    trailing_pipe: bool,
}

impl PipeRecord {
    /// What the parser must give back: the values written, null past `count`.
    fn expected(&self, names: &'static [(&'static str, Kind)]) -> Columns<'_> {
        let mut c = columns(names, &self.values, self.extra.as_deref());
        for v in &mut c.values[self.count..] {
            *v = Value::Null;
        }
        c
    }
}

/// Connection-log column counts: every era (15, 18, 21, 22) often, anything from 2 up sometimes.
fn connection_count() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(15usize),
        Just(18usize),
        Just(21usize),
        Just(22usize),
        2usize..=22
    ]
}

fn connection_record() -> impl Strategy<Value = PipeRecord> {
    (
        values(CONNECTION_COLUMNS),
        connection_count(),
        extra(),
        any::<bool>(),
    )
        .prop_map(|(values, count, extra, trailing_pipe)| PipeRecord {
            values,
            count,
            // Extra columns follow the 22nd; with fewer, they would be read as known ones.
            extra: extra.filter(|_| count == CONNECTION_COLUMNS.len()),
            trailing_pipe,
        })
}

fn user_record() -> impl Strategy<Value = PipeRecord> {
    (values(USER_COLUMNS), extra(), any::<bool>()).prop_map(|(values, extra, trailing_pipe)| {
        PipeRecord {
            values,
            count: USER_COLUMNS.len(),
            extra,
            trailing_pipe,
        }
    })
}

/// Renders the records one a line (`\n` or `\r\n`), parses the file and compares each record.
fn assert_pipe_round_trip(
    log_type: LogType,
    names: &'static [(&'static str, Kind)],
    records: &[PipeRecord],
    crlf: bool,
) -> Result<(), TestCaseError> {
    let expected: Vec<Columns<'_>> = records.iter().map(|r| r.expected(names)).collect();
    let lines: Vec<String> = records
        .iter()
        .zip(&expected)
        .map(|(r, c)| render_pipe_line(c, r.count, r.trailing_pipe))
        .collect();
    let file = lines.join(if crlf { "\r\n" } else { "\n" });
    let mut parser = Parser::new(log_type, file.as_bytes());
    for (i, want) in expected.iter().enumerate() {
        let record = parser.next_record()?;
        let Some(record) = record else {
            return Err(TestCaseError::fail(format!("record {i} missing")));
        };
        prop_assert_eq!(record.line, i as u64 + 1);
        prop_assert!(!record.truncated && !record.invalid_utf8);
        match &record.body {
            Body::Columns(got) => prop_assert_eq!(got, want, "line {:?}", lines[i]),
            Body::ParseError { reason, raw } => {
                return Err(TestCaseError::fail(format!("{reason}: {raw:?}")))
            }
        }
    }
    prop_assert!(parser.next_record()?.is_none(), "no record more");
    Ok(())
}

/// One generated user activity statement.
#[derive(Debug, Clone)]
struct Statement {
    time: Timestamp,
    db: Option<String>,
    user: Option<String>,
    numbers: [i64; 3],
    query: String,
}

impl Statement {
    fn columns(&self) -> Columns<'_> {
        let mut values = [Value::Null; MAX_COLUMNS];
        values[0] = Value::Time(self.time);
        values[1] = self.db.as_deref().map_or(Value::Null, Value::Text);
        values[2] = self.user.as_deref().map_or(Value::Null, Value::Text);
        for (slot, n) in values[3..6].iter_mut().zip(self.numbers) {
            *slot = Value::Int(n);
        }
        values[6] = Value::Text(&self.query);
        Columns {
            names: ACTIVITY_COLUMNS,
            values: Box::new(values),
            extra: None,
        }
    }
}

/// Whether a line could be taken for a record header. Deliberately broader than the parser's
/// rule (FORMAT.md: quote, time, ` UTC [ `, `]' LOG:`), so a line it rejects is surely a query
/// line.
fn maybe_header(line: &[u8]) -> bool {
    let find = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    line.iter().find(|&&b| b != b' ') == Some(&b'\'') && find(b" UTC [ ") && find(b"]' LOG:")
}

/// A query line: never a header lookalike, no line break. Near-miss headers are included.
fn query_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ A-Za-z0-9_,.;()*=<>'\"\t-]{0,40}",
        2 => "[^\r\n]{0,30}",
        1 => Just(String::new()),
        1 => Just("'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=1 userid=1 xid=2 ]".to_string()),
        1 => Just(" '2020-12-08T22:00:03Z UTC db=dev ]' LOG: select".to_string()),
        1 => Just("  LOG: '2020-12-08T22:00:03Z UTC [ ]' LOG: x".to_string()),
    ]
    .prop_filter("looks like a header", |l| !maybe_header(l.as_bytes()))
}

fn activity_name() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.9, "[A-Za-z0-9_:]{1,16}")
}

fn statement() -> impl Strategy<Value = Statement> {
    (
        timestamp(0),
        activity_name(),
        activity_name(),
        [count_int(), count_int(), count_int()],
        prop::collection::vec(query_line(), 1..5),
    )
        .prop_map(|(time, db, user, numbers, lines)| Statement {
            time,
            db,
            user,
            numbers,
            query: lines.join("\n"),
        })
}

/// Renders statements into a user activity log, `\n`-separated. A final newline is optional,
/// except after a query that itself ends with an empty line (its last `\n` needs one after it).
fn activity_file(statements: &[Statement], final_newline: bool) -> String {
    let mut file = statements
        .iter()
        .map(|s| render_activity(&s.columns()))
        .collect::<Vec<_>>()
        .join("\n");
    let needs_one = statements.last().is_some_and(|s| s.query.ends_with('\n'));
    if final_newline || needs_one {
        file.push('\n');
    }
    file
}

/// A line of an activity log: a header (valid, or with a bad value) or any other line.
#[derive(Debug, Clone)]
enum ActivityLine {
    Header(String),
    Other(Vec<u8>),
}

fn activity_line() -> impl Strategy<Value = ActivityLine> {
    let header = (
        statement(),
        prop_oneof![Just(""), Just(" "), Just("  ")],
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(("pid=", "pid=x"))),
            1 => Just(Some(("-12-", "-13-"))),
            1 => Just(Some((" user=", " usr="))),
        ],
    )
        .prop_map(|(s, lead, damage)| {
            let first = render_activity(&s.columns());
            let first = first.lines().next().unwrap_or("").to_string();
            let damaged = match damage {
                Some((from, to)) => first.replacen(from, to, 1),
                None => first,
            };
            ActivityLine::Header(format!("{lead}{damaged}"))
        });
    let other = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..60),
        query_line().prop_map(String::into_bytes),
        Just(b"   ".to_vec()),
        Just(b"\r".to_vec()),
    ]
    .prop_map(|mut bytes| {
        bytes.retain(|&b| b != b'\n');
        bytes
    })
    .prop_filter("looks like a header", |b| !maybe_header(b))
    .prop_map(ActivityLine::Other);
    prop_oneof![1 => header, 2 => other]
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn connection_record_rendered_back_parses_to_the_same_record(
        records in prop::collection::vec(connection_record(), 1..6),
        crlf in any::<bool>(),
    ) {
        assert_pipe_round_trip(LogType::ConnectionLog, CONNECTION_COLUMNS, &records, crlf)?;
    }

    #[test]
    fn user_record_rendered_back_parses_to_the_same_record(
        records in prop::collection::vec(user_record(), 1..6),
        crlf in any::<bool>(),
    ) {
        assert_pipe_round_trip(LogType::UserLog, USER_COLUMNS, &records, crlf)?;
    }

    #[test]
    fn activity_statements_rendered_back_parse_to_the_same_statements(
        statements in prop::collection::vec(statement(), 1..6),
        final_newline in any::<bool>(),
    ) {
        let file = activity_file(&statements, final_newline);
        let mut parser = Parser::new(LogType::UserActivityLog, file.as_bytes());
        let mut line = 1;
        let mut count = 0;
        while let Some(record) = parser.next_record()? {
            let Some(want) = statements.get(count) else {
                return Err(TestCaseError::fail(format!("extra record {record:?}")));
            };
            prop_assert_eq!(record.line, line, "statement {} starts on line {}", count, line);
            match &record.body {
                Body::Columns(got) => prop_assert_eq!(got, &want.columns()),
                Body::ParseError { reason, raw } => {
                    return Err(TestCaseError::fail(format!("{reason}: {raw:?}")))
                }
            }
            line += want.query.split('\n').count() as u64;
            count += 1;
        }
        prop_assert_eq!(count, statements.len(), "one record per header");
    }

    #[test]
    fn activity_records_equal_header_lines(lines in prop::collection::vec(activity_line(), 0..30)) {
        let mut file = Vec::new();
        let mut header_lines = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                file.push(b'\n');
            }
            match line {
                ActivityLine::Header(h) => {
                    header_lines.push(i as u64 + 1);
                    file.extend_from_slice(h.as_bytes());
                }
                ActivityLine::Other(bytes) => file.extend_from_slice(bytes),
            }
        }
        // Non-blank text before the first header (the tail of an earlier file's statement)
        // comes out as one parse_error record of its own.
        let orphan = lines
            .iter()
            .take_while(|l| matches!(l, ActivityLine::Other(_)))
            .any(|l| matches!(l, ActivityLine::Other(b) if !b.iter().all(u8::is_ascii_whitespace)));
        let (records, end) = drain(Parser::new(LogType::UserActivityLog, &file[..]))?;
        prop_assert_eq!(end, End::Finished);
        prop_assert_eq!(records.len(), header_lines.len() + usize::from(orphan));

        let mut parser = Parser::new(LogType::UserActivityLog, &file[..]);
        if orphan {
            let first = parser.next_record()?;
            prop_assert!(first.is_some_and(|r| r.is_parse_error()), "orphan text is a parse_error");
        }
        for want in header_lines {
            let record = parser.next_record()?;
            prop_assert_eq!(record.map(|r| r.line), Some(want), "a record starts on each header line");
        }
    }
}
