//! The session state the Lambda reads and writes per file on the generated day
//! (`sessions_day`), through the library's state store over the in-memory twin: every
//! connection log hour recorded in order, every activity hour loaded; the requests and bytes a
//! file costs are what S3 would see. Also: the join through the state matches the reference
//! join, carried sessions included. `cargo test --test sessions_state -- --nocapture` prints
//! the figures docs/SESSIONS.md quotes.

mod sessions_day;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use redshift_audit_forwarder::key::parse_file_name;
use redshift_audit_forwarder::ports::memory::{ManualClock, MemoryStore};
use redshift_audit_forwarder::sessions::state::{SessionStore, Traffic};
use redshift_audit_forwarder::sessions::Index;
use sessions_day::{BASE_MS, HOURS};

fn add(total: &mut Traffic, t: &Traffic) {
    total.lists += t.lists;
    total.reads += t.reads;
    total.read_bytes += t.read_bytes;
    total.writes += t.writes;
    total.written_bytes += t.written_bytes;
    total.sessions += t.sessions;
}

/// (pid, time in ms) of each statement of an activity file's text, with its query.
fn statements(text: &str) -> Vec<(i64, i64, String)> {
    text.lines()
        .map(|l| {
            let time = &l[1..21];
            let ms = redshift_audit_forwarder::time::parse_rfc3339_ms(time).unwrap();
            let pid: i64 = l
                .split("pid=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let query = l.split("LOG: ").nth(1).unwrap().to_string();
            (pid, ms, query)
        })
        .collect()
}

#[tokio::test]
async fn state_read_and_written_per_file_on_the_generated_day() {
    let day = sessions_day::generate(20);
    let store = Arc::new(MemoryStore::default());
    let clock = Arc::new(ManualClock::new(BASE_MS + (HOURS + 3) * 3_600_000));
    let sessions = SessionStore::new(store.clone(), "state/", Duration::from_secs(1800), clock);
    let (mut written, mut read) = (Traffic::default(), Traffic::default());
    let mut max_part = 0;
    for f in &day.connection {
        let name = parse_file_name(&f.name).unwrap();
        let body = Box::new(Cursor::new(f.text.clone().into_bytes()));
        let t = sessions
            .record(&name, "audit", &f.name, body, 200)
            .await
            .unwrap();
        add(&mut written, &t);
        max_part = max_part.max(t.written_bytes / t.writes.max(1));
    }
    let (mut joined, mut total, mut mismatched) = (0, 0, 0);
    for f in &day.activity {
        let name = parse_file_name(&f.name).unwrap();
        let loaded = sessions.load(&name, i64::MAX / 4).await.unwrap();
        assert!(loaded.complete, "{}", f.name);
        add(&mut read, &loaded.traffic);
        let index: &Index = &loaded.index;
        for (pid, ms, query) in statements(&f.text) {
            total += 1;
            let found = index.find(pid, ms).map(|e| e.session.start_ms);
            let want = day.all[&query].session_start.as_ref().map(|s| {
                redshift_audit_forwarder::time::parse_rfc3339(&format!("{}Z", &s[..19])).unwrap()
                    * 1000
                    + s[20..23].parse::<i64>().unwrap()
            });
            joined += usize::from(found.is_some());
            mismatched += usize::from(found != want);
        }
    }
    let files = day.connection.len() as u64;
    println!("| per file | listings | reads | bytes read | writes | bytes written | sessions |");
    println!("|---|---|---|---|---|---|---|");
    for (what, t) in [("connection log", &written), ("activity log", &read)] {
        println!(
            "| {what} | {:.2} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} |",
            t.lists as f64 / files as f64,
            t.reads as f64 / files as f64,
            t.read_bytes as f64 / files as f64,
            t.writes as f64 / files as f64,
            t.written_bytes as f64 / files as f64,
            t.sessions as f64 / files as f64,
        );
    }
    println!(
        "statements joined through the state: {joined} of {total} ({:.1}%); the {} failed logins' probes have none",
        100.0 * joined as f64 / total as f64,
        day.failures
    );
    assert_eq!(
        mismatched, 0,
        "the state's join differs from the reference join"
    );
    assert_eq!(joined, total - day.failures);
    // An activity file: two listings (its hour, the hour before) and one read a shard.
    assert!(
        read.lists <= 2 * files && read.reads <= 2 * files,
        "{read:?}"
    );
    assert!(
        written.writes == files && max_part < 64 * 1024,
        "{written:?}"
    );
}
