use std::io::Cursor;
use std::time::Duration;

use super::*;
use crate::key::parse_file_name;
use crate::ports::memory::{ManualClock, MemoryStore};

/// 2024-03-01T10:00:00Z.
const HOUR: i64 = 1_709_287_200_000;

fn name(log_type: &str, hour: i64) -> LogFileName {
    let label = hour_label(hour);
    parse_file_name(&format!(
        "123456789012_redshift_us-east-1_prod_{log_type}_{label}:53.gz"
    ))
    .unwrap()
}

fn conn_time(ms: i64) -> String {
    let t = rfc3339_ms(ms);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = t[5..7].parse().unwrap();
    format!(
        "Fri, {} {} {} {}:{}",
        t[8..10].trim_start_matches('0'),
        MONTHS[month - 1],
        &t[0..4],
        &t[11..19],
        &t[20..23]
    )
}

fn open(ms: i64, host: &str, pid: i64) -> String {
    format!(
        "authenticated |{}|{host} |5439 |{pid}|dev |alice |password |0|TLSv1.2 |x |0| | | |psql |l |d |none |0|\n\
         initiating session |{}|{host} |5439 |{pid}|dev |alice |password |0|TLSv1.2 |x |0| | | |psql |l |d |none |0|\n",
        conn_time(ms),
        conn_time(ms + 2)
    )
}

fn close(ms: i64, started: i64, host: &str, pid: i64) -> String {
    format!(
        "disconnecting session |{}|{host} |5439 |{pid}|dev |alice |password |{}| | |0| | | |psql |l |d |none |0|\n",
        conn_time(ms),
        (ms - started) * 1000
    )
}

struct World {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    sessions: SessionStore,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::default());
    let clock = Arc::new(ManualClock::new(HOUR + 2 * HOUR_MS));
    let sessions = SessionStore::new(
        store.clone(),
        "state/",
        Duration::from_secs(1800),
        clock.clone(),
    );
    World {
        store,
        clock,
        sessions,
    }
}

impl World {
    async fn record(&self, hour: i64, key: &str, text: String) -> Traffic {
        self.sessions
            .record(
                &name("connectionlog", hour),
                "audit",
                key,
                Box::new(Cursor::new(text.into_bytes())),
                200,
            )
            .await
            .unwrap()
    }

    async fn load(&self, hour: i64, written_ms: i64) -> Result<Loaded, SessionError> {
        self.sessions
            .load(&name("useractivitylog", hour), written_ms)
            .await
    }
}

fn host(index: &Index, pid: i64, ms: i64) -> Option<String> {
    index
        .find(pid, ms)
        .and_then(|e| e.session.remotehost.as_deref().map(str::to_string))
}

#[tokio::test]
async fn a_connection_log_first_gives_its_hours_activity_the_sessions() {
    let w = world();
    let text =
        open(HOUR + 1_000, "10.0.0.1", 42) + &close(HOUR + 60_000, HOUR + 1_000, "10.0.0.1", 42);
    let written = w.record(HOUR, "c1", text).await;
    assert_eq!((written.writes, written.sessions), (1, 1));
    assert!(written.written_bytes > 50 && written.written_bytes < 400);
    let keys: Vec<String> = w.store.snapshot().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].starts_with("state/sessions/123456789012/us-east-1/prod/2024-03-01T10/"),
        "{keys:?}"
    );
    let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
    assert!(loaded.complete);
    assert_eq!(
        host(&loaded.index, 42, HOUR + 30_000).as_deref(),
        Some("10.0.0.1")
    );
    // One listing and one read for its hour, one listing for the hour before.
    assert_eq!((loaded.traffic.lists, loaded.traffic.reads), (2, 1));
}

#[tokio::test]
async fn an_activity_file_waits_for_its_hours_connection_log_until_the_wait_is_over() {
    let w = world();
    let written = HOUR + HOUR_MS;
    w.clock.set(written + 60_000);
    let waiting = w.load(HOUR, written).await.unwrap_err();
    assert!(waiting.is_retryable(), "{waiting}");
    assert!(waiting.to_string().contains("2024-03-01T10"), "{waiting}");
    w.record(HOUR, "c1", open(HOUR + 5_000, "10.0.0.7", 7))
        .await;
    let loaded = w.load(HOUR, written).await.unwrap();
    assert_eq!(
        host(&loaded.index, 7, HOUR + 9_000).as_deref(),
        Some("10.0.0.7")
    );
    // Another hour, never given its connection log: past the wait it goes with what is known.
    let next = HOUR + HOUR_MS;
    w.clock.set(next + HOUR_MS + 30 * 60_000);
    let loaded = w.load(next, next + HOUR_MS).await.unwrap();
    assert!(!loaded.complete);
    assert_eq!(
        host(&loaded.index, 7, next + 9_000).as_deref(),
        Some("10.0.0.7")
    );
}

#[tokio::test]
async fn an_old_file_copied_lately_does_not_wait() {
    let w = world();
    let old = HOUR - 30 * MS_PER_DAY;
    // Written (copied) a minute ago, but its name is a month old.
    let loaded = w.load(old, w.clock.now_ms() - 60_000).await.unwrap();
    assert!(!loaded.complete && loaded.index.is_empty());
}

#[tokio::test]
async fn open_sessions_are_carried_from_hour_to_hour_and_closed_ones_are_not() {
    let w = world();
    let day_before = HOUR - 20 * HOUR_MS;
    let text = open(day_before + 1_000, "10.1.1.1", 5)
        + &open(day_before + 2_000, "10.1.1.2", 6)
        + &close(day_before + 3_000, day_before + 2_000, "10.1.1.2", 6);
    w.record(day_before, "c0", text).await;
    // Hours later, a connection log with other sessions only: pid 5 is carried.
    let written = w
        .record(HOUR - HOUR_MS, "c1", open(HOUR - 1_000_000, "10.3.3.3", 9))
        .await;
    assert_eq!(written.sessions, 2);
    w.record(HOUR, "c2", open(HOUR + 10_000, "10.4.4.4", 10))
        .await;
    let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
    assert_eq!(
        host(&loaded.index, 5, HOUR + 20_000).as_deref(),
        Some("10.1.1.1")
    );
    assert_eq!(host(&loaded.index, 6, HOUR + 20_000), None);
    assert_eq!(
        host(&loaded.index, 9, HOUR + 20_000).as_deref(),
        Some("10.3.3.3")
    );
    // Closed in this hour: statements after the close find none.
    w.record(
        HOUR,
        "c3",
        close(HOUR + 600_000, day_before + 1_000, "10.1.1.1", 5),
    )
    .await;
    let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
    assert_eq!(
        host(&loaded.index, 5, HOUR + 500_000).as_deref(),
        Some("10.1.1.1")
    );
    assert_eq!(host(&loaded.index, 5, HOUR + 700_000), None);
}

#[tokio::test]
async fn two_connection_logs_of_one_hour_keep_each_others_sessions() {
    let w = world();
    let (a, b) = tokio::join!(
        w.record(HOUR, "first", open(HOUR + 1_000, "10.0.0.1", 1)),
        w.record(HOUR, "second", open(HOUR + 2_000, "10.0.0.2", 2)),
    );
    assert_eq!((a.writes, b.writes), (1, 1));
    let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
    assert_eq!(loaded.index.len(), 2);
    assert_eq!(
        host(&loaded.index, 2, HOUR + 3_000).as_deref(),
        Some("10.0.0.2")
    );
}

#[tokio::test]
async fn many_sessions_are_written_in_parts_under_the_state_limit() {
    let w = world();
    let mut text = String::new();
    for pid in 0..3_000 {
        text.push_str(&open(
            HOUR + pid * 100,
            &format!("::ffff:10.0.{}.{}", pid / 250, pid % 250),
            pid,
        ));
    }
    let written = w.record(HOUR, "busy", text).await;
    assert!(written.writes >= 3, "{written:?}");
    for (_, body) in w.store.snapshot() {
        assert!(body.len() <= MAX_STATE_BYTES);
    }
    let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
    assert_eq!(loaded.index.len(), 3_000);
    assert_eq!(
        host(&loaded.index, 2_999, HOUR + 400_000).as_deref(),
        Some("::ffff:10.0.11.249")
    );
}

#[tokio::test]
async fn a_forged_shard_is_refused_and_nothing_is_joined() {
    let w = world();
    w.record(HOUR, "c1", open(HOUR + 1_000, "10.0.0.1", 42))
        .await;
    let dir = w.sessions.hour_dir(&name("connectionlog", HOUR), HOUR);
    let forged = |sessions: &str| {
        format!(
            r#"{{"v":1,"cluster":"123456789012/us-east-1/prod","hour":"2024-03-01T10","source":"x","part":0,"parts":1,"sessions":[{sessions}]}}"#
        )
    };
    let cases = [
        forged(r#"[42,1709287201000,null,"6.6.6.6\u0007",1,null,null,null,null,null,null]"#),
        forged(r#"[42,1909287201000,null,"6.6.6.6",1,null,null,null,null,null,null]"#),
        forged(r#"[42,1709287201000,null,"6.6.6.6",70000,null,null,null,null,null,null]"#),
        forged(r#"[-1,1709287201000,null,"6.6.6.6",1,null,null,null,null,null,null]"#),
        forged("").replace("2024-03-01T10", "2024-03-01T11"),
        r#"{"v":2}"#.to_string(),
        "not json".to_string(),
    ];
    for body in cases {
        let key = format!("{dir}forged-0.json");
        w.store
            .put(&key, body.clone().into_bytes(), Precondition::None)
            .await
            .unwrap();
        let loaded = w.load(HOUR, HOUR + HOUR_MS).await.unwrap();
        assert_eq!(loaded.traffic.refused, 1, "{body}");
        assert!(loaded.index.is_empty(), "{body}");
    }
}

#[test]
fn shards_the_function_writes_pass_its_checks() {
    let sessions = vec![Session {
        pid: 1_073_742_045,
        start_ms: HOUR - 3 * MS_PER_DAY,
        end_ms: Some(HOUR + 5),
        remotehost: Some("[local]".into()),
        application: Some("x".repeat(MAX_FIELD_BYTES).into()),
        ..Session::default()
    }];
    let bodies = split("a/b/c".into(), hour_label(HOUR), "k", sessions);
    let shard: Shard = decode(&bodies[0]).unwrap();
    assert_eq!(
        check_shard(&shard, "a/b/c", &hour_label(HOUR), HOUR, HOUR + 10),
        Ok(())
    );
    assert!(check_shard(&shard, "a/b/d", &hour_label(HOUR), HOUR, HOUR + 10).is_err());
}
