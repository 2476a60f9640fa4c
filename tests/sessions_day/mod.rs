//! A generated day of one cluster's connection and user activity logs, for the session join's
//! tests (issue 20, "Prove it"): many sessions, pids reused within and across hours, sessions
//! over midnight, `[local]` connections, failed authentications, and an hour whose connection
//! log can be left out; with the reference join the statements must get, decided here from the
//! generator's own sessions and the rule of FORMAT.md, not by the code under test.

#![allow(dead_code)]

use std::collections::HashMap;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const CLUSTER: &str = "sessions-day";
/// 2024-02-29T22:00:00Z: the day starts two hours before midnight.
pub const BASE_MS: i64 = 1_709_244_000_000;
pub const HOURS: i64 = 26;
const HOUR_MS: i64 = 3_600_000;
/// The hour (from [`BASE_MS`]) whose connection log the tests leave out: 2024-03-01T12.
pub const MISSING_HOUR: i64 = 14;

/// What a statement's record must carry from the join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub remotehost: Option<String>,
    pub remoteport: Option<i64>,
    pub session_start: Option<String>,
}

/// One log file: its name (a Redshift file name) and its text.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub hour: i64,
    pub text: String,
}

#[derive(Debug)]
pub struct Day {
    pub connection: Vec<File>,
    pub activity: Vec<File>,
    /// By statement text (each is unique): the reference join with every connection log given.
    pub all: HashMap<String, Expected>,
    /// The same with the connection log of [`MISSING_HOUR`] left out.
    pub without_missing: HashMap<String, Expected>,
    pub sessions: usize,
    pub failures: usize,
    pub reused_pids: usize,
    pub over_midnight: usize,
    pub local: usize,
}

#[derive(Debug, Clone)]
struct Session {
    pid: i64,
    start: i64,
    end: Option<i64>,
    host: String,
    port: Option<i64>,
}

/// A small deterministic generator (no dependency, the same day on every machine).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n.max(1) as u64) as i64
    }
}

/// Civil date of a day number (days since 1970-01-01).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let (y, mo, d) = civil(ms.div_euclid(86_400_000));
    let of_day = ms.rem_euclid(86_400_000);
    (
        y,
        mo,
        d,
        of_day / HOUR_MS,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000,
    )
}

/// RFC 3339 with milliseconds, as the records write times.
pub fn rfc3339_ms(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

fn connection_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    format!(
        "Thu, {d} {} {y} {h:02}:{mi:02}:{s:02}:{milli:03}",
        MONTHS[mo as usize - 1]
    )
}

/// The file name of `log_type` for hour `hour` (from [`BASE_MS`]): `…T{HH}:59`.
pub fn file_name(log_type: &str, hour: i64) -> String {
    let (y, mo, d, h, _, _, _) = parts(BASE_MS + hour * HOUR_MS);
    format!("{ACCOUNT}_redshift_{REGION}_{CLUSTER}_{log_type}_{y:04}-{mo:02}-{d:02}T{h:02}:59.gz")
}

fn hour_of(ms: i64) -> i64 {
    (ms - BASE_MS).div_euclid(HOUR_MS)
}

/// The day of `seed`.
pub fn generate(seed: u64) -> Day {
    let mut rng = Rng(seed);
    let pids: Vec<i64> = (0..48)
        .map(|i| {
            if i % 4 == 0 {
                1_073_741_900 + i
            } else {
                20_000 + i * 7
            }
        })
        .collect();
    let mut free_at: HashMap<i64, i64> = pids.iter().map(|&p| (p, 0)).collect();
    let mut used: HashMap<i64, usize> = HashMap::new();
    let end_of_day = BASE_MS + HOURS * HOUR_MS;
    let mut starts: Vec<i64> = (0..600)
        .map(|_| BASE_MS + rng.below(HOURS * HOUR_MS - 600_000))
        .collect();
    starts.sort_unstable();
    let mut sessions = Vec::new();
    let mut failures: Vec<(i64, i64)> = Vec::new();
    let mut events: Vec<(i64, String)> = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        // A pid free for at least two minutes (Redshift does not hand out a live pid).
        let offset = rng.below(pids.len() as i64) as usize;
        let Some(&pid) = (0..pids.len())
            .map(|k| &pids[(offset + k) % pids.len()])
            .find(|p| free_at[p] + 120_000 <= start)
        else {
            continue;
        };
        if i % 9 == 4 {
            // A failed authentication: no session.
            free_at.insert(pid, start + 1_000);
            failures.push((pid, start));
            let host = format!("::ffff:192.0.2.{}", i % 250);
            events.push((
                start,
                conn("initiating session", start, &host, Some(40_000), pid, 0),
            ));
            events.push((
                start + 3,
                conn(
                    "authentication failure",
                    start + 3,
                    &host,
                    Some(40_000),
                    pid,
                    0,
                ),
            ));
            continue;
        }
        let duration = match rng.below(3) {
            0 => 30_000 + rng.below(270_000),
            1 => 300_000 + rng.below(3_300_000),
            _ => HOUR_MS + rng.below(5 * HOUR_MS),
        };
        let end = Some(start + duration).filter(|&e| e < end_of_day);
        let (host, port) = match i % 10 {
            0 => ("[local]".to_string(), None),
            3 | 6 => (
                format!("10.0.{}.{}", i / 250, i % 250),
                Some(50_000 + i as i64),
            ),
            _ => (
                format!("::ffff:172.16.{}.{}", i / 250, i % 250),
                Some(40_000 + i as i64),
            ),
        };
        free_at.insert(pid, end.unwrap_or(i64::MAX / 4));
        *used.entry(pid).or_default() += 1;
        events.push((start, conn("authenticated", start, &host, port, pid, 0)));
        events.push((
            start + 2,
            conn("initiating session", start + 2, &host, port, pid, 0),
        ));
        if let Some(end) = end {
            events.push((
                end,
                conn(
                    "disconnecting session",
                    end,
                    &host,
                    port,
                    pid,
                    (end - start) * 1000,
                ),
            ));
        }
        sessions.push(Session {
            pid,
            start,
            end,
            host,
            port,
        });
    }

    // Statements: up to five a session, and one from each failed authentication's pid.
    let mut statements: Vec<(i64, i64, String)> = Vec::new();
    let mut id = 0;
    for (n, s) in sessions.iter().enumerate() {
        let last = s.end.unwrap_or(end_of_day - 1).min(end_of_day - 1);
        for _ in 0..rng.below(6) {
            let t = s.start + rng.below(last - s.start + 1);
            id += 1;
            statements.push((t, s.pid, format!("select {id} /* session {n} */")));
        }
    }
    for &(pid, t) in &failures {
        id += 1;
        statements.push((t + 500, pid, format!("select {id} /* failed login */")));
    }
    statements.sort_by_key(|(t, _, _)| *t);

    let mut connection = Vec::new();
    events.sort_by_key(|(t, _)| *t);
    for hour in 0..HOURS {
        let lines: Vec<&str> = events
            .iter()
            .filter(|(t, _)| hour_of(*t) == hour)
            .map(|(_, l)| l.as_str())
            .collect();
        connection.push(File {
            name: file_name("connectionlog", hour),
            hour,
            text: lines.join("\n") + "\n",
        });
    }
    let mut activity = Vec::new();
    for hour in 0..HOURS {
        let mut text = String::new();
        for (t, pid, query) in statements.iter().filter(|(t, _, _)| hour_of(*t) == hour) {
            let (y, mo, d, h, mi, s, _) = parts(*t);
            text.push_str(&format!(
                "'{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z UTC [ db=dev user=alice pid={pid} userid=100 xid={} ]' LOG: {query}\n",
                t % 100_000
            ));
        }
        activity.push(File {
            name: file_name("useractivitylog", hour),
            hour,
            text,
        });
    }

    let reference = |missing: Option<i64>| {
        let seen = |t: i64| Some(hour_of(t)) != missing;
        // The sessions as the given connection-log records show them: from their opening, else
        // from a disconnection with its duration; the end only when the disconnection is given.
        // A pid's next connection attempt seen (a session's start, a failed login) ends its
        // older session at the latest: a live pid is not handed out again.
        let visible: Vec<(i64, i64, Option<i64>, &Session)> = sessions
            .iter()
            .filter_map(|s| {
                let closed = s.end.filter(|&e| seen(e));
                (seen(s.start) || closed.is_some()).then_some((s.pid, s.start, closed, s))
            })
            .collect();
        let attempts: Vec<(i64, i64)> = visible
            .iter()
            .map(|(pid, start, _, _)| (*pid, *start))
            .chain(failures.iter().copied().filter(|(_, t)| seen(*t)))
            .collect();
        let visible: Vec<(i64, i64, Option<i64>, &Session)> = visible
            .into_iter()
            .map(|(pid, start, end, s)| {
                let next = attempts
                    .iter()
                    .filter(|(p, t)| *p == pid && *t > start)
                    .map(|(_, t)| *t)
                    .min();
                let end = match (end, next) {
                    (Some(e), Some(n)) => Some(e.min(n)),
                    (e, n) => e.or(n),
                };
                (pid, start, end, s)
            })
            .collect();
        statements
            .iter()
            .map(|(t, pid, query)| {
                let second = t - t.rem_euclid(1000);
                let found = visible
                    .iter()
                    .filter(|(p, start, _, _)| p == pid && *start <= second + 999)
                    .max_by_key(|(_, start, _, _)| *start)
                    .filter(|(_, _, end, _)| end.is_none_or(|e| e >= second));
                let expected = match found {
                    Some((_, start, _, s)) => Expected {
                        remotehost: Some(s.host.clone()),
                        remoteport: s.port,
                        session_start: Some(rfc3339_ms(*start)),
                    },
                    None => Expected {
                        remotehost: None,
                        remoteport: None,
                        session_start: None,
                    },
                };
                (query.clone(), expected)
            })
            .collect::<HashMap<_, _>>()
    };
    let all = reference(None);
    let without_missing = reference(Some(MISSING_HOUR));
    let midnight = BASE_MS + 2 * HOUR_MS;
    Day {
        connection,
        activity,
        all,
        without_missing,
        sessions: sessions.len(),
        failures: failures.len(),
        reused_pids: used.values().filter(|&&n| n > 1).count(),
        over_midnight: sessions
            .iter()
            .filter(|s| s.start < midnight && s.end.is_none_or(|e| e > midnight))
            .count(),
        local: sessions.iter().filter(|s| s.port.is_none()).count(),
    }
}

fn conn(event: &str, ms: i64, host: &str, port: Option<i64>, pid: i64, duration_us: i64) -> String {
    let port = port.map_or(String::new(), |p| p.to_string());
    format!(
        "{event} |{}|{host} |{port} |{pid}|dev |alice |password |{duration_us}|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | |psql |Linux |libpq |none |0|",
        connection_time(ms)
    )
}
