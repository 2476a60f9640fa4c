use super::*;
use crate::logs::{LogType, Parser};

/// Adds every record of the connection-log `lines` to `builder`.
fn add(builder: &mut Builder, lines: &[String]) {
    let text = lines.join("\n");
    let mut parser = Parser::new(LogType::ConnectionLog, text.as_bytes());
    while let Some(record) = parser.next_record().unwrap() {
        assert!(!record.is_parse_error(), "{record:?}");
        builder.add(&record);
    }
}

/// `2024-03-01T00:00:00Z` in milliseconds.
const DAY: i64 = 1_709_251_200_000;

/// A connection-log line of the 2022 layout at `ms` after [`DAY`] (may be negative).
fn line(event: &str, ms: i64, host: &str, port: &str, pid: i64, duration_us: i64) -> String {
    let t = crate::logs::Timestamp::from_parts(2024, 3, 1, 0, 0, 0, 0).unwrap();
    let at = epoch_ms(&t) + ms;
    let text = crate::time::rfc3339_ms(at);
    let b = text.as_bytes();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = text[5..7].parse().unwrap();
    let time = format!(
        "Fri, {} {} {} {}:{}",
        text[8..10].trim_start_matches('0'),
        months[month - 1],
        &text[0..4],
        &text[11..19],
        std::str::from_utf8(&b[20..23]).unwrap()
    );
    format!(
        "{event} |{time}|{host} |{port} |{pid}|dev |alice |password |{duration_us}|TLSv1.2 |ECDHE |0| | | |psql |Linux |libpq |none |0|sid-{pid}"
    )
}

fn build(lines: &[String]) -> Index {
    let mut builder = Builder::default();
    add(&mut builder, lines);
    Index::new(builder.build())
}

fn open(ms: i64, host: &str, pid: i64) -> [String; 2] {
    [
        line("authenticated", ms, host, "5439", pid, 0),
        line("initiating session", ms + 3, host, "5439", pid, 0),
    ]
}

fn close(ms: i64, started: i64, host: &str, pid: i64) -> String {
    line(
        "disconnecting session",
        ms,
        host,
        "5439",
        pid,
        (ms - started) * 1000,
    )
}

fn host_at(index: &Index, pid: i64, ms: i64) -> Option<String> {
    index.find(pid, DAY + ms).map(|e| {
        e.session
            .remotehost
            .as_deref()
            .unwrap_or_default()
            .to_string()
    })
}

#[test]
fn column_positions_match_the_connection_log_table() {
    let names: Vec<&str> = CONNECTION_COLUMNS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names[EVENT], "event");
    assert_eq!(names[RECORDTIME], "recordtime");
    assert_eq!(names[REMOTEHOST], "remotehost");
    assert_eq!(names[REMOTEPORT], "remoteport");
    assert_eq!(names[PID], "pid");
    assert_eq!(names[DBNAME], "dbname");
    assert_eq!(names[USERNAME], "username");
    assert_eq!(names[AUTHMETHOD], "authmethod");
    assert_eq!(names[DURATION], "duration");
    assert_eq!(names[SSLVERSION], "sslversion");
    assert_eq!(names[APPLICATION_NAME], "application_name");
    assert_eq!(names[SESSIONID], "sessionid");
}

#[test]
fn a_session_carries_every_field_the_log_has() {
    let mut lines = open(1_000, "::ffff:10.0.0.1", 42).to_vec();
    lines.push(close(60_000, 1_000, "::ffff:10.0.0.1", 42));
    let index = build(&lines);
    assert_eq!(index.len(), 1);
    let s = &index.find(42, DAY + 30_000).unwrap().session;
    assert_eq!(s.start_ms, DAY + 1_000);
    assert_eq!(s.end_ms, Some(DAY + 60_000));
    assert_eq!(s.remotehost.as_deref(), Some("::ffff:10.0.0.1"));
    assert_eq!(s.remoteport, Some(5439));
    assert_eq!(s.user.as_deref(), Some("alice"));
    assert_eq!(s.db.as_deref(), Some("dev"));
    assert_eq!(s.authmethod.as_deref(), Some("password"));
    assert_eq!(s.tls.as_deref(), Some("TLSv1.2"));
    assert_eq!(s.application.as_deref(), Some("psql"));
    assert_eq!(s.sessionid.as_deref(), Some("sid-42"));
}

#[test]
fn statements_outside_the_session_find_none() {
    let mut lines = open(10_000, "10.0.0.1", 7).to_vec();
    lines.push(close(20_000, 10_000, "10.0.0.1", 7));
    let index = build(&lines);
    assert_eq!(host_at(&index, 7, 5_000), None, "before the start");
    assert_eq!(host_at(&index, 7, 21_000), None, "after the end");
    assert_eq!(host_at(&index, 8, 15_000), None, "another pid");
    // Within the second it started (the activity log's times are whole seconds).
    assert_eq!(host_at(&index, 7, 9_990 - 990).as_deref(), None);
    assert_eq!(host_at(&index, 7, 9_500).as_deref(), Some("10.0.0.1"));
    assert_eq!(host_at(&index, 7, 20_000).as_deref(), Some("10.0.0.1"));
}

#[test]
fn a_reused_pid_within_the_hour_is_a_new_session() {
    let mut lines = open(1_000, "10.0.0.1", 5).to_vec();
    lines.push(close(100_000, 1_000, "10.0.0.1", 5));
    lines.extend(open(200_000, "10.0.0.2", 5));
    lines.push(close(300_000, 200_000, "10.0.0.2", 5));
    let index = build(&lines);
    assert_eq!(index.len(), 2);
    assert_eq!(host_at(&index, 5, 50_000).as_deref(), Some("10.0.0.1"));
    assert_eq!(host_at(&index, 5, 150_000), None, "between the two");
    assert_eq!(host_at(&index, 5, 250_000).as_deref(), Some("10.0.0.2"));
}

#[test]
fn a_reused_pid_whose_disconnection_was_lost_ends_the_older_session() {
    let mut lines = open(1_000, "10.0.0.1", 5).to_vec();
    lines.extend(open(7_200_000, "10.0.0.2", 5));
    let index = build(&lines);
    assert_eq!(host_at(&index, 5, 3_600_000).as_deref(), Some("10.0.0.1"));
    assert_eq!(host_at(&index, 5, 7_300_000).as_deref(), Some("10.0.0.2"));
}

#[test]
fn a_failed_authentication_opens_no_session() {
    let lines = [
        line("initiating session", 1_000, "10.0.0.9", "1234", 9, 0),
        line("authentication failure", 1_004, "10.0.0.9", "1234", 9, 0),
        line("authentication failure", 5_000, "10.0.0.8", "1234", 10, 0),
    ];
    let index = build(&lines);
    assert!(index.is_empty(), "{index:?}");
    assert_eq!(host_at(&index, 9, 2_000), None);
}

#[test]
fn a_failure_after_a_session_of_the_same_pid_leaves_it_alone() {
    let mut lines = open(1_000, "10.0.0.1", 3).to_vec();
    lines.push(close(2_000, 1_000, "10.0.0.1", 3));
    lines.push(line("authentication failure", 3_000, "10.0.0.6", "1", 3, 0));
    let index = build(&lines);
    assert_eq!(host_at(&index, 3, 1_500).as_deref(), Some("10.0.0.1"));
    assert_eq!(host_at(&index, 3, 3_500), None);
}

#[test]
fn local_connections_have_a_host_and_no_port() {
    let lines = [
        line("authenticated", 1_000, "[local]", "", 11, 0),
        line("initiating session", 1_001, "[local]", "", 11, 0),
    ];
    let index = build(&lines);
    let s = &index.find(11, DAY + 5_000).unwrap().session;
    assert_eq!(s.remotehost.as_deref(), Some("[local]"));
    assert_eq!(s.remoteport, None);
    assert_eq!(s.end_ms, None, "open until a disconnection is seen");
}

#[test]
fn a_session_over_midnight_is_found_on_both_days() {
    // Opened 23:30 the day before, closed 00:30.
    let mut lines = open(-1_800_000, "10.1.1.1", 77).to_vec();
    lines.push(close(1_800_000, -1_800_000, "10.1.1.1", 77));
    let index = build(&lines);
    assert_eq!(host_at(&index, 77, -60_000).as_deref(), Some("10.1.1.1"));
    assert_eq!(host_at(&index, 77, 60_000).as_deref(), Some("10.1.1.1"));
}

#[test]
fn a_disconnection_alone_gives_the_session_from_its_duration() {
    // Its opening was in yesterday's file, not given.
    let lines = [close(3_600_000, -7_200_000, "10.2.2.2", 88)];
    let index = build(&lines);
    let s = &index.find(88, DAY).unwrap().session;
    assert_eq!(s.start_ms, DAY - 7_200_000);
    assert_eq!(host_at(&index, 88, -8_000_000), None);
}

#[test]
fn files_in_time_order_build_sessions_across_files() {
    let mut hour1 = open(1_000, "10.0.0.1", 5).to_vec();
    hour1.extend(open(2_000, "10.0.0.3", 6));
    let hour2 = vec![
        close(4_000_000, 1_000, "10.0.0.1", 5),
        line("authenticated", 4_100_000, "10.0.0.2", "1", 5, 0),
        line("initiating session", 4_100_002, "10.0.0.2", "1", 5, 0),
    ];
    let forward = build(&[hour1, hour2].concat());
    assert_eq!(forward.len(), 3);
    assert_eq!(host_at(&forward, 5, 3_000_000).as_deref(), Some("10.0.0.1"));
    assert_eq!(host_at(&forward, 5, 4_200_000).as_deref(), Some("10.0.0.2"));
    assert_eq!(host_at(&forward, 6, 4_200_000).as_deref(), Some("10.0.0.3"));
}

#[test]
fn carried_sessions_are_closed_by_a_later_disconnection() {
    let carried = Session {
        pid: 4,
        start_ms: DAY - 86_400_000,
        remotehost: Some("10.9.9.9".into()),
        ..Session::default()
    };
    let mut builder = Builder::default();
    builder.carry([carried]);
    let l = close(600_000, -86_400_000, "10.9.9.9", 4);
    add(&mut builder, &[l]);
    let sessions = builder.build();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].end_ms, Some(DAY + 600_000));
}

#[test]
fn long_texts_are_cut_at_a_char_boundary() {
    let long = "é".repeat(200);
    let cut = bounded(&long);
    assert!(cut.len() <= MAX_FIELD_BYTES && cut.len() >= MAX_FIELD_BYTES - 1);
    assert!(long.starts_with(&cut));
}

#[test]
fn a_start_is_written_as_records_write_times() {
    let t = timestamp_of(DAY - 1).unwrap();
    assert_eq!(t.as_str(), "2024-02-29T23:59:59.999Z");
    assert_eq!(epoch_ms(&t), DAY - 1);
    assert!(timestamp_of(i64::MAX / 2).is_none());
}

#[test]
fn merging_keeps_one_copy_of_a_session_seen_in_two_files() {
    let opened = Session {
        pid: 1,
        start_ms: 1_000,
        remotehost: Some("10.0.0.1".into()),
        ..Session::default()
    };
    let closed = Session {
        pid: 1,
        start_ms: 1_000,
        end_ms: Some(9_000),
        ..Session::default()
    };
    let reused = Session {
        pid: 1,
        start_ms: 20_000,
        ..Session::default()
    };
    let older_open = Session {
        pid: 2,
        start_ms: 1_000,
        ..Session::default()
    };
    let newer = Session {
        pid: 2,
        start_ms: 50_000_000,
        ..Session::default()
    };
    let merged = merge(vec![reused, closed, opened, newer, older_open]);
    assert_eq!(merged.len(), 4, "{merged:?}");
    assert_eq!(merged[0].end_ms, Some(9_000));
    assert_eq!(merged[0].remotehost.as_deref(), Some("10.0.0.1"));
    assert_eq!(merged[1].end_ms, None);
    // An open session whose pid started another one had ended by then.
    assert_eq!(merged[2].end_ms, Some(50_000_000));
    assert_eq!(merged[3].end_ms, None);
}
