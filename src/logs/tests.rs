//! Parser behaviour over whole files: one test per fact of FORMAT.md that concerns more than a
//! single line.

use super::*;
use std::io::{self, Read};

/// (line, ordinal, parse error?, truncated, invalid_utf8, text of the main field)
fn parse_all(
    log_type: LogType,
    input: &[u8],
    limit: usize,
) -> Vec<(u64, u64, bool, bool, bool, String)> {
    let mut parser = Parser::with_limit(log_type, input, limit);
    let mut out = Vec::new();
    while let Some(r) = parser.next_record().unwrap() {
        let text = match &r.body {
            Body::Columns(c) => c
                .get("query")
                .or_else(|| c.get("event"))
                .or_else(|| c.get("username"))
                .and_then(|v| v.as_text())
                .unwrap_or("")
                .to_string(),
            Body::ParseError { raw, .. } => raw.to_string(),
        };
        out.push((
            r.line,
            r.ordinal,
            r.is_parse_error(),
            r.truncated,
            r.invalid_utf8,
            text,
        ));
    }
    out
}

const H1: &str = "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: SET statement_timeout TO 120000";
const H2: &str = "'2020-12-08T22:01:55Z UTC [ db=dev user=rdsdb pid=23170 userid=1 xid=245636 ]' LOG: SELECT  ss.node as node,";

#[test]
fn empty_input_has_no_records() {
    for t in LogType::ALL {
        assert!(parse_all(t, b"", 1 << 20).is_empty());
        assert!(
            parse_all(t, b"\n\n  \n", 1 << 20).is_empty(),
            "{t}: blank lines are not records"
        );
    }
}

#[test]
fn multi_line_statements_are_reassembled_with_newlines() {
    let input =
        format!("{H1}\n{H2}\n        bc.temporary as temporary\nFROM    stv_slices as ss;\n{H1}\n");
    let got = parse_all(LogType::UserActivityLog, input.as_bytes(), 1 << 20);
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].0, got[0].1), (1, 0));
    assert_eq!(got[0].5, "SET statement_timeout TO 120000");
    assert_eq!((got[1].0, got[1].1), (2, 1));
    assert_eq!(
        got[1].5,
        "SELECT  ss.node as node,\n        bc.temporary as temporary\nFROM    stv_slices as ss;"
    );
    assert_eq!(
        (got[2].0, got[2].1),
        (5, 2),
        "line numbers count continuation lines"
    );
}

#[test]
fn blank_lines_inside_a_statement_are_kept() {
    let input = format!("{H2}\n\nFROM t\n\n{H1}");
    let got = parse_all(LogType::UserActivityLog, input.as_bytes(), 1 << 20);
    assert_eq!(got[0].5, "SELECT  ss.node as node,\n\nFROM t\n");
    assert_eq!(
        got[1].5, "SET statement_timeout TO 120000",
        "last line without newline"
    );
}

#[test]
fn crlf_is_tolerated_everywhere() {
    let input = format!("{H2}\r\nFROM t\r\n{H1}\r\n");
    let got = parse_all(LogType::UserActivityLog, input.as_bytes(), 1 << 20);
    assert_eq!(got[0].5, "SELECT  ss.node as node,\nFROM t");
    let user =
        b"1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\r\n";
    let got = parse_all(LogType::UserLog, user, 1 << 20);
    assert!(!got[0].2, "CRLF line parses");
}

#[test]
fn text_before_the_first_header_is_one_parse_error() {
    let input = format!("tail of a query\nfrom an earlier file\n{H1}\n");
    let got = parse_all(LogType::UserActivityLog, input.as_bytes(), 1 << 20);
    assert_eq!(got.len(), 2);
    assert!(got[0].2);
    assert_eq!(got[0].5, "tail of a query\nfrom an earlier file");
    assert_eq!(got[0].0, 1);
    assert!(!got[1].2);
}

#[test]
fn header_lookalike_inside_a_query_starts_a_record() {
    // The format's own ambiguity (FORMAT.md): such a line cannot be told apart.
    let input = format!("{H2}\n{H1}\n");
    assert_eq!(
        parse_all(LogType::UserActivityLog, input.as_bytes(), 1 << 20).len(),
        2
    );
}

#[test]
fn invalid_utf8_is_replaced_and_flagged() {
    let mut input = H1.as_bytes().to_vec();
    input.extend_from_slice(b" -- caf\xe9\n");
    input.extend_from_slice(H1.as_bytes());
    let got = parse_all(LogType::UserActivityLog, &input, 1 << 20);
    assert!(got[0].4);
    assert!(got[0].5.ends_with("caf\u{fffd}"));
    assert!(!got[1].4, "the next record is clean");
}

#[test]
fn statement_over_the_limit_is_cut_and_continued_losing_nothing() {
    let body: String = (0..40).map(|i| format!("line {i:02}\n")).collect();
    let input = format!("{H1}\n{body}{H1}\n");
    let limit = 200;
    let got = parse_all(LogType::UserActivityLog, input.as_bytes(), limit);
    assert!(got[0].3, "first piece is flagged truncated");
    assert!(!got[0].2, "and is still a typed record");
    let pieces: Vec<_> = got
        .iter()
        .take_while(|r| r.5 != "SET statement_timeout TO 120000" || r.1 == 0)
        .collect();
    assert!(pieces.len() > 2);
    for p in &pieces[1..] {
        assert!(p.2, "continuations are parse errors");
    }
    // Every line of the body is in exactly one piece.
    let all: String = got
        .iter()
        .map(|r| r.5.clone())
        .collect::<Vec<_>>()
        .join("\n");
    for i in 0..40 {
        assert_eq!(
            all.matches(&format!("line {i:02}")).count(),
            1,
            "line {i:02}"
        );
    }
    assert_eq!(
        got.last().map(|r| r.2),
        Some(false),
        "the next statement parses"
    );
}

#[test]
fn endless_line_without_newline_stays_bounded_and_complete() {
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i % 200 + 32) as u8)
        .filter(|b| *b != b'\n')
        .collect();
    for t in LogType::ALL {
        let got = parse_all(t, &garbage, 1000);
        assert!(
            got.iter().all(|r| r.2 || r.3),
            "{t}: pieces are errors or truncated"
        );
        let total: usize = got.iter().map(|r| r.5.chars().count()).sum();
        assert!(
            total >= garbage.len() - 100,
            "{t}: nothing dropped ({total})"
        );
        assert!(got.iter().all(|r| r.5.len() <= 1000 * 3));
    }
}

#[test]
fn binary_garbage_never_stops_the_parser() {
    let mut garbage = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..100_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        garbage.push((x >> 16) as u8);
    }
    for t in LogType::ALL {
        let got = parse_all(t, &garbage, 1 << 20);
        assert!(!got.is_empty());
        assert!(got.iter().all(|r| r.2), "{t}: garbage is parse errors");
        let ordinals: Vec<u64> = got.iter().map(|r| r.1).collect();
        assert_eq!(ordinals, (0..got.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn a_bad_line_does_not_stop_the_next() {
    let input = b"authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\nbroken line\nauthenticated |Mon, 7 Dec 2020 20:01:56:177|[local] | |5109|dev |rdsdb |Ident |0| | |0| | |\n";
    let got = parse_all(LogType::ConnectionLog, input, 1 << 20);
    assert_eq!(
        got.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn io_error_mid_file_comes_after_the_good_records() {
    struct Then<'a>(&'a [u8]);
    impl std::io::Read for Then<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "truncated gzip",
                ));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let input = format!("{H1}\n{H1}\n");
    let mut parser = Parser::new(LogType::UserActivityLog, Then(input.as_bytes()));
    let first = parser.next_record().unwrap().unwrap();
    assert!(!first.truncated && !first.read_cut);
    // What was read of the statement in hand is still handed out, flagged, then the error.
    let cut = parser.next_record().unwrap().unwrap();
    assert!(cut.truncated && cut.read_cut);
    assert!(parser.next_record().is_err());

    // A pipe-separated line cut by the failure is flagged the same way; a line cut only at the
    // size limit is not a read cut.
    let line = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
    let input = format!("{line}\n{}", &line[..30]);
    let mut parser = Parser::new(LogType::ConnectionLog, Then(input.as_bytes()));
    assert!(!parser.next_record().unwrap().unwrap().read_cut);
    let cut = parser.next_record().unwrap().unwrap();
    assert!(cut.truncated && cut.read_cut && cut.is_parse_error());
    assert!(parser.next_record().is_err());
    let long = format!("{line}{}\n", "x".repeat(200));
    let mut parser = Parser::with_limit(LogType::ConnectionLog, long.as_bytes(), 100);
    let piece = parser.next_record().unwrap().unwrap();
    assert!(piece.truncated && !piece.read_cut);
}

#[test]
fn record_time_is_the_timestamp_column_of_every_log_type() {
    // `record_time` knows where the three tables keep their time.
    for (table, at) in [
        (USER_COLUMNS, 10),
        (CONNECTION_COLUMNS, 1),
        (ACTIVITY_COLUMNS, 0),
    ] {
        assert_eq!(table.iter().position(|(_, k)| *k == Kind::Time), Some(at));
    }
    let inputs: [(LogType, &str, &str); 3] = [
        (
            LogType::ConnectionLog,
            "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |",
            "2020-12-07T20:01:55.177Z",
        ),
        (
            LogType::UserLog,
            "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
            "2020-12-03T10:18:38.416Z",
        ),
        (LogType::UserActivityLog, H1, "2020-12-08T22:00:03.000Z"),
    ];
    for (log_type, line, want) in inputs {
        let mut parser = Parser::new(log_type, line.as_bytes());
        let record = parser.next_record().unwrap().unwrap();
        let Body::Columns(c) = &record.body else {
            panic!("{log_type}: {:?}", record.body)
        };
        assert_eq!(
            c.record_time().map(|t| t.to_string()).as_deref(),
            Some(want),
            "{log_type}"
        );
    }
}

// --- bounded cost on hostile text -----------------------------------------------------------

const CONN_LINE: &str =
    "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
const USER_LINE: &str =
    "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416";

/// (parse error?, raw length, whole text's bytes, line) of every record.
fn shapes(log_type: LogType, input: &[u8], limit: usize) -> Vec<(bool, usize, Option<u64>, u64)> {
    let mut parser = Parser::with_limit(log_type, input, limit);
    let mut out = Vec::new();
    while let Some(r) = parser.next_record().unwrap() {
        let raw = match &r.body {
            Body::ParseError { raw, .. } => raw.len(),
            Body::Columns(_) => 0,
        };
        out.push((r.is_parse_error(), raw, r.whole.map(|w| w.bytes), r.line));
        parser.release();
    }
    out
}

fn good_line(log_type: LogType) -> &'static str {
    match log_type {
        LogType::ConnectionLog => CONN_LINE,
        LogType::UserLog => USER_LINE,
        LogType::UserActivityLog => H1,
    }
}

#[test]
fn a_long_unparsable_line_keeps_64_kib_of_raw_with_the_whole_length_and_hash() {
    for log_type in LogType::ALL {
        let junk = "not a record ".repeat(20_000); // 260,000 bytes
        let input = format!("{junk}\n{}\n", good_line(log_type));
        let mut parser = Parser::new(log_type, input.as_bytes());
        let first = parser.next_record().unwrap().unwrap();
        let Body::ParseError { raw, .. } = first.body else {
            panic!("{log_type}: not a parse error");
        };
        assert_eq!(raw.len(), MAX_RAW_BYTES, "{log_type}");
        assert!(junk.starts_with(raw));
        let whole = first.whole.expect("the whole text is described");
        assert_eq!(whole.bytes, junk.len() as u64, "{log_type}");
        assert_eq!(whole.xxh3, xxhash_rust::xxh3::xxh3_128(junk.as_bytes()));
        let next = parser.next_record().unwrap().unwrap();
        assert!(!next.is_parse_error(), "{log_type}: the good line after it");
    }
}

#[test]
fn a_short_unparsable_line_is_whole_and_has_no_length_or_hash() {
    for log_type in LogType::ALL {
        let got = shapes(log_type, b"not a record at all\n", MAX_RECORD_BYTES);
        assert_eq!(got, vec![(true, 19, None, 1)], "{log_type}");
    }
}

#[test]
fn a_run_of_control_bytes_is_one_record_in_every_log_type() {
    for log_type in LogType::ALL {
        // Zeros with no newline, then zero lines, then a good record: pieces of 1,000 bytes.
        let mut input = vec![0u8; 10_500];
        input.extend_from_slice(b"\n\x01\x02\x03\n\n\x1b\x1b\n");
        input.extend_from_slice(good_line(log_type).as_bytes());
        input.push(b'\n');
        let got = shapes(log_type, &input, 1000);
        // 10,500 zeros, then 3 + 2 control bytes on lines joined by `\n` (the blank line left
        // out where a pipe log skips it, kept inside an activity orphan).
        let run_bytes = match log_type {
            LogType::UserActivityLog => 10_500 + 1 + 3 + 1 + 1 + 2,
            _ => 10_500 + 1 + 3 + 1 + 2,
        };
        assert_eq!(
            got,
            vec![
                (true, RUN_SAMPLE_BYTES, Some(run_bytes), 1),
                (false, 0, None, 5)
            ],
            "{log_type}"
        );
    }
}

#[test]
fn a_run_hash_covers_the_whole_run_and_its_reason_names_the_lines() {
    let input = [vec![7u8; 5000], b"\n".to_vec(), vec![7u8; 10]].concat();
    let mut parser = Parser::with_limit(LogType::ConnectionLog, &input[..], 1000);
    let r = parser.next_record().unwrap().unwrap();
    let whole = r.whole.expect("whole");
    assert_eq!(whole.bytes, 5011);
    assert_eq!(whole.xxh3, xxhash_rust::xxh3::xxh3_128(&input));
    match r.body {
        Body::ParseError { reason, raw } => {
            assert!(reason.contains("lines 1 to 2"), "{reason}");
            assert_eq!(raw.len(), RUN_SAMPLE_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert!(parser.next_record().unwrap().is_none());
}

#[test]
fn text_with_few_control_bytes_is_no_run() {
    let line = format!("{}\u{1}\n", "x".repeat(50));
    let input = line.repeat(3);
    let got = shapes(LogType::UserLog, input.as_bytes(), MAX_RECORD_BYTES);
    assert_eq!(got.len(), 3, "one parse error a line: {got:?}");
    assert!(mostly_control(b"\0\0\0a"));
    assert!(!mostly_control(b"\0\0aa"));
    assert!(!mostly_control(b""));
    assert!(!mostly_control(b"\t\t\r\n"));
}

#[test]
fn control_bytes_are_found_and_counted_as_one_by_one() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Bytes drawn mostly from one class at a time, so the answer comes out either way.
    let classes: [&[u8]; 5] = [
        b"abc |:09",
        b"\0\x01\x1b\x7f\x1f",
        b"\t\n\r",
        &[0x80, 0xc3, 0xa9, 0xff],
        b" ",
    ];
    for len in (0..200).chain([254, 255, 256, 20_000]) {
        for _ in 0..100 {
            let main = classes[(next() % 5) as usize];
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let class = if next() % 4 == 0 {
                        classes[(next() % 5) as usize]
                    } else {
                        main
                    };
                    class[(next() % class.len() as u64) as usize]
                })
                .collect();
            let one_by_one = bytes
                .iter()
                .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
                .count();
            assert_eq!(
                mostly_control(&bytes),
                one_by_one * 2 > bytes.len(),
                "{bytes:?}"
            );
        }
    }
    // Past the 255-byte chunks of the count.
    assert!(mostly_control(&[0u8; 255 * 3 + 7]));
}

#[test]
fn the_pieces_of_an_over_long_statement_keep_the_record_limit() {
    let query = "select 1 from t where x = 'abc' ".repeat(400); // 12,800 bytes
    let input = format!("{H1} {query}\n{H2}\n");
    let limit = 5000;
    let got = shapes(LogType::UserActivityLog, input.as_bytes(), limit);
    assert!(!got[0].0, "the statement itself");
    let continuations: Vec<_> = got[1..got.len() - 1].to_vec();
    assert!(!continuations.is_empty());
    for (error, raw, whole, _) in continuations {
        assert!(error && whole.is_none() && raw > 1000, "{got:?}");
    }
}

#[test]
fn a_read_failure_inside_a_run_ends_it_cut_then_fails() {
    struct ZerosThenFail(usize);
    impl Read for ZerosThenFail {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(0);
            self.0 -= n;
            Ok(n)
        }
    }
    for log_type in LogType::ALL {
        let mut parser = Parser::with_limit(log_type, ZerosThenFail(5000), 1000);
        let r = parser.next_record().unwrap().unwrap();
        assert!(r.read_cut, "{log_type}");
        assert_eq!(r.whole.map(|w| w.bytes), Some(5000), "{log_type}");
        assert!(parser.next_record().is_err(), "{log_type}");
    }
}

/// Every record of `input` as [`Split::record`] types it, beside what [`Split::type_columns`]
/// makes of it: its columns (nulls after the ones handed out) and the rest of the record.
fn typed_both_ways(
    log_type: LogType,
    input: &[u8],
    limit: usize,
) -> Vec<(Record<'static>, Option<Record<'static>>)> {
    let mut parser = Parser::with_limit(log_type, input, limit);
    let mut out = Vec::new();
    while let Some((split, text)) = parser.next_split().unwrap() {
        let text: &'static [u8] = Box::leak(text.to_vec().into_boxed_slice());
        let record = split.record(text, Box::leak(Box::default()));
        let mut values = Box::new([Value::Null; MAX_COLUMNS]);
        let mut next = 0;
        let typed = split.type_columns(text, Box::leak(Box::default()), |at, value| {
            assert_eq!(at, next, "columns in order");
            next += 1;
            values[at] = value;
        });
        let streamed = typed.map(|t| {
            assert_eq!(t.columns, next);
            assert!(std::ptr::eq(t.names, log_type.columns()));
            Record {
                log_type: t.log_type,
                body: Body::Columns(Columns {
                    names: t.names,
                    values,
                    extra: t.extra,
                }),
                line: t.line,
                ordinal: t.ordinal,
                invalid_utf8: t.invalid_utf8,
                truncated: t.truncated,
                redacted: false,
                read_cut: t.read_cut,
                whole: None,
            }
        });
        out.push((record, streamed));
        parser.release();
    }
    out
}

#[test]
fn typing_column_by_column_gives_the_record_or_leaves_its_parse_error_to_it() {
    let cases: [(LogType, &[u8]); 2] = [
        (
            LogType::UserLog,
            b"1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
              x1|rdsdb | |alter |1|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
              1|rdsdb | |alter |1|1|1||14872|99999999999999999999|Thu, 3 Dec 2020 10:18:38:416\n\
              1|rdsdb | |alter |7|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
              1|rdsdb | |alter |1|1|1||14872|1061|Thu, 33 Dec 2020 10:18:38:416\n\
              1|rdsdb | |alter |1|1|1\n\
              1|rdsdb | |alter |1|1|1|infinity|14872|1061|Thu, 3 Dec 2020 10:18:38:416|new |x|\n\
              1|r\xe9db | |alter |1|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416\n\
              \n\
              1|rdsdb | |alter |1|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416 and a line too long\n\
              \x01\x02\x03\x04\n",
        ),
        (
            LogType::ConnectionLog,
            b"authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |\n\
              authenticated |Mon, 7 Dec 2020 20:01:55:177\n\
              authenticated |Mon, 7 Dec 2020 25:01:55:177|[local] | |5108|\n\
              authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] |port |5108|\n\
              authenticated \n\
              |\n",
        ),
    ];
    for (log_type, input) in cases {
        let both = typed_both_ways(log_type, input, 100);
        assert!(both.len() >= 6, "{log_type}: {}", both.len());
        let mut typed = 0;
        for (record, streamed) in both {
            match streamed {
                Some(streamed) => {
                    typed += 1;
                    assert_eq!(streamed, record);
                }
                // Only what does not type is left to the record.
                None => assert!(record.is_parse_error(), "{record:?}"),
            }
        }
        assert!(typed >= 2, "{log_type}: {typed}");
    }
    // The activity log is never typed column by column.
    let activity = b"'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: select 1\n";
    let both = typed_both_ways(LogType::UserActivityLog, activity, 1000);
    assert_eq!(both.len(), 1);
    assert!(both[0].1.is_none() && !both[0].0.is_parse_error());
}
