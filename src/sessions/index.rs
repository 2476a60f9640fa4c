//! Sessions from the connection log, and the lookup of a statement's session.
//!
//! A session is opened by `initiating session` and `authenticated` (in either order, a few
//! milliseconds apart), closed by `disconnecting session`, and never opened by an
//! `authentication failure`. Process ids are reused: a statement belongs to the session of its
//! pid whose start is the latest at or before the statement's time and which had not ended
//! before it (FORMAT.md, "Sessions in the connection log"). A `disconnecting session` whose
//! opening is in an earlier file still gives the session (its start is the disconnection's
//! time less its `duration`), so a session that spans files is found from either end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::logs::time::epoch_ms;
use crate::logs::{Body, Columns, Record, Timestamp, Value, CONNECTION_COLUMNS};

/// The activity log's times are whole seconds, the connection log's milliseconds: a session
/// started within the statement's second may have run it.
pub const START_SLACK_MS: i64 = 999;

/// An opening event this close after a session's other opening event is the same session
/// (Redshift writes `initiating session` and `authenticated` within milliseconds).
pub const OPENING_WINDOW_MS: i64 = 60_000;

/// Longest text a session keeps of a connection-log column (application names can be JDBC
/// stack traces; the join needs none of it, the shards stay small).
pub const MAX_FIELD_BYTES: usize = 128;

/// Most sessions one builder holds: about 0.55 KB each at the peak of building the index with
/// the benchmark's texts (a distinct host and session id a session, shared user, database and
/// application names), so at most about 140 MB; an hour of a busy cluster has hundreds. Past
/// it, the records of new pids are counted as dropped.
pub const MAX_SESSIONS: usize = 250_000;

/// A session's text: shared between the sessions of a builder that have the same (users,
/// databases, auth methods, TLS versions, applications and hosts repeat across sessions).
pub type Text = Arc<str>;

// Column positions in the connection log's column table (checked by a test).
const EVENT: usize = 0;
const RECORDTIME: usize = 1;
const REMOTEHOST: usize = 2;
const REMOTEPORT: usize = 3;
const PID: usize = 4;
const DBNAME: usize = 5;
const USERNAME: usize = 6;
const AUTHMETHOD: usize = 7;
const DURATION: usize = 8;
const SSLVERSION: usize = 9;
const APPLICATION_NAME: usize = 15;
const SESSIONID: usize = 20;

/// One session of a cluster (or Serverless namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub pid: i64,
    /// Milliseconds since the epoch.
    pub start_ms: i64,
    /// When `disconnecting session` was seen.
    pub end_ms: Option<i64>,
    pub remotehost: Option<Text>,
    pub remoteport: Option<i64>,
    pub user: Option<Text>,
    pub db: Option<Text>,
    pub authmethod: Option<Text>,
    /// `sslversion`.
    pub tls: Option<Text>,
    pub application: Option<Text>,
    /// Unique to the session: not shared.
    pub sessionid: Option<Text>,
}

/// What a connection-log record says about sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Initiating,
    Authenticated,
    Failure,
    Disconnecting,
}

/// A connection-log record that opens, authenticates, fails or closes a session; its texts
/// borrowed from the record (copied only into a session that keeps them).
#[derive(Debug, Clone, Copy)]
struct Event<'a> {
    kind: Kind,
    time_ms: i64,
    duration_us: Option<i64>,
    pid: i64,
    remotehost: Option<&'a str>,
    remoteport: Option<i64>,
    user: Option<&'a str>,
    db: Option<&'a str>,
    authmethod: Option<&'a str>,
    tls: Option<&'a str>,
    application: Option<&'a str>,
    sessionid: Option<&'a str>,
}

impl<'a> Event<'a> {
    fn of(columns: &Columns<'a>) -> Option<Event<'a>> {
        if !std::ptr::eq(columns.names, CONNECTION_COLUMNS) && columns.names != CONNECTION_COLUMNS {
            return None;
        }
        let value = |i: usize| columns.values.get(i).copied().unwrap_or(Value::Null);
        let text = |i: usize| value(i).as_text();
        let kind = match value(EVENT).as_text()? {
            "initiating session" => Kind::Initiating,
            "authenticated" => Kind::Authenticated,
            "authentication failure" => Kind::Failure,
            "disconnecting session" => Kind::Disconnecting,
            _ => return None,
        };
        let Value::Time(time) = value(RECORDTIME) else {
            return None;
        };
        Some(Event {
            kind,
            time_ms: epoch_ms(&time),
            duration_us: value(DURATION).as_int().filter(|&d| d >= 0),
            pid: value(PID).as_int().filter(|&p| p >= 0)?,
            remotehost: text(REMOTEHOST),
            remoteport: value(REMOTEPORT)
                .as_int()
                .filter(|p| (0..=65_535).contains(p)),
            user: text(USERNAME),
            db: text(DBNAME),
            authmethod: text(AUTHMETHOD),
            tls: text(SSLVERSION),
            application: text(APPLICATION_NAME),
            sessionid: text(SESSIONID),
        })
    }

    /// The session this record describes, from `start_ms`, its texts shared through `pool`.
    fn session(&self, start_ms: i64, end_ms: Option<i64>, pool: &mut Pool) -> Session {
        let mut session = Session {
            pid: self.pid,
            start_ms,
            end_ms,
            ..Session::default()
        };
        fill(&mut session, self, pool);
        session
    }
}

/// The texts of a builder's sessions, each kept once (`Text` shared by every session with it).
/// Holds no more texts than the sessions do (at most six a session), and is dropped with the
/// builder.
#[derive(Debug, Default)]
struct Pool(HashSet<Text>);

impl Pool {
    fn text(&mut self, text: &str) -> Text {
        let text = &text[..cut(text)];
        if let Some(shared) = self.0.get(text) {
            return shared.clone();
        }
        let shared: Text = Arc::from(text);
        self.0.insert(shared.clone());
        shared
    }
}

/// Where `text` is cut to at most [`MAX_FIELD_BYTES`], at a char boundary.
fn cut(text: &str) -> usize {
    let mut end = text.len().min(MAX_FIELD_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `text`, cut at a char boundary to at most [`MAX_FIELD_BYTES`].
pub fn bounded(text: &str) -> String {
    text[..cut(text)].to_string()
}

/// Builds the sessions of one cluster from connection-log records fed in time order (the
/// records of a file are; feed files in the order of their names' times), after the sessions
/// carried from earlier. Holds the sessions only, at most [`MAX_SESSIONS`].
#[derive(Debug, Default)]
pub struct Builder {
    /// Most pids have one session: each list starts with room for one.
    by_pid: HashMap<i64, Vec<Open>>,
    pool: Pool,
    held: usize,
    /// Sessions left out past [`MAX_SESSIONS`].
    pub dropped: u64,
}

impl Builder {
    /// Takes what `record` says about a session, if anything (connection-log records only).
    pub fn add(&mut self, record: &Record<'_>) {
        if let Body::Columns(columns) = &record.body {
            self.add_columns(columns);
        }
    }

    pub fn add_columns(&mut self, columns: &Columns<'_>) {
        let Some(event) = Event::of(columns) else {
            return;
        };
        if self.held >= MAX_SESSIONS && !self.by_pid.contains_key(&event.pid) {
            self.dropped += 1;
            return;
        }
        let list = self
            .by_pid
            .entry(event.pid)
            .or_insert_with(|| Vec::with_capacity(1));
        let before = list.len();
        apply(list, event, &mut self.pool);
        self.held = self.held + list.len() - before;
    }

    /// Sessions known before the records (open sessions carried from an earlier hour): give
    /// them before any record.
    pub fn carry(&mut self, sessions: impl IntoIterator<Item = Session>) {
        for session in sessions {
            self.held += 1;
            let list = self
                .by_pid
                .entry(session.pid)
                .or_insert_with(|| Vec::with_capacity(1));
            let at = list.partition_point(|o| o.session.start_ms <= session.start_ms);
            list.insert(at, Open::carried(session));
        }
    }

    /// The sessions, in (pid, start) order; a pid's sessions with the same start in the order
    /// of its list. Sorted without a scratch buffer as large as the sessions: the pids (distinct:
    /// an unstable sort gives the one order), then each pid's few sessions; the list is sized
    /// once. At the peak, the builder and one list of sessions are held, nothing more.
    pub fn build(self) -> Vec<Session> {
        let held = self.held;
        let mut lists: Vec<(i64, Vec<Open>)> = self.by_pid.into_iter().collect();
        lists.sort_unstable_by_key(|(pid, _)| *pid);
        let mut sessions = Vec::with_capacity(held);
        for (_, mut list) in lists {
            list.sort_by_key(|o| o.session.start_ms);
            sessions.extend(list.into_iter().filter(|o| !o.failed).map(|o| o.session));
        }
        sessions
    }
}

/// A session being built, and which of its opening events were seen.
#[derive(Debug)]
struct Open {
    session: Session,
    initiated: bool,
    authenticated: bool,
    failed: bool,
}

impl Open {
    fn carried(session: Session) -> Open {
        Open {
            session,
            initiated: true,
            authenticated: true,
            failed: false,
        }
    }
}

/// Applies one event (in time order) to the sessions of its pid (in start order).
fn apply(list: &mut Vec<Open>, event: Event<'_>, pool: &mut Pool) {
    let t = event.time_ms;
    // The latest session of the pid that is not failed, if it is still open.
    let latest = list
        .iter()
        .rposition(|o| !o.failed)
        .filter(|&i| list[i].session.end_ms.is_none() && list[i].session.start_ms <= t);
    match event.kind {
        Kind::Initiating | Kind::Authenticated => {
            let initiating = event.kind == Kind::Initiating;
            let same = latest.filter(|&i| {
                let o = &list[i];
                t - o.session.start_ms <= OPENING_WINDOW_MS
                    && !(if initiating {
                        o.initiated
                    } else {
                        o.authenticated
                    })
            });
            if let Some(i) = same {
                let open = &mut list[i];
                fill(&mut open.session, &event, pool);
                open.initiated |= initiating;
                open.authenticated |= !initiating;
                return;
            }
            // A new session: a pid reused while an older session of it looks open means the
            // older one's disconnection was not seen; it ended by now.
            if let Some(older) = list.iter_mut().rev().find(|o| o.session.end_ms.is_none()) {
                older.session.end_ms = Some(t);
            }
            list.push(Open {
                session: event.session(t, None, pool),
                initiated: initiating,
                authenticated: !initiating,
                failed: false,
            });
        }
        Kind::Failure => {
            let opening = latest.filter(|&i| {
                !list[i].authenticated && t - list[i].session.start_ms <= OPENING_WINDOW_MS
            });
            if let Some(i) = opening {
                list[i].failed = true;
            }
        }
        Kind::Disconnecting => {
            let start = event.duration_us.map_or(t, |us| t - us / 1000);
            // Its own opening (or one close enough to be it).
            let own = latest.filter(|&i| list[i].session.start_ms + OPENING_WINDOW_MS >= start);
            if let Some(i) = own {
                let open = &mut list[i];
                open.session.end_ms = Some(t);
                fill(&mut open.session, &event, pool);
                return;
            }
            // The opening is in a file not seen (or the open session is an older one whose
            // disconnection was lost): the session is known from its end.
            if let Some(i) = latest {
                let older = &mut list[i].session;
                older.end_ms = Some(start.max(older.start_ms));
            }
            if event.duration_us.is_none() {
                return;
            }
            let session = event.session(start, Some(t), pool);
            let at = list.partition_point(|o| o.session.start_ms <= start);
            list.insert(at, Open::carried(session));
        }
    }
}

/// Fills the fields `into` lacks from the record `from`; the start is the earlier of the two.
/// Texts come from `pool` (the session id, unique to a session, is not pooled).
fn fill(into: &mut Session, from: &Event<'_>, pool: &mut Pool) {
    into.start_ms = into.start_ms.min(from.time_ms);
    if into.sessionid.is_none() {
        into.sessionid = from.sessionid.map(|t| Arc::from(&t[..cut(t)]));
    }
    let texts = [
        from.remotehost,
        from.user,
        from.db,
        from.authmethod,
        from.tls,
        from.application,
        None,
    ];
    fill_from(into, texts, |t| pool.text(t), from.remoteport);
}

/// Fills the fields `into` lacks from another copy of the session.
fn fill_session(into: &mut Session, from: Session) {
    let texts = [
        from.remotehost,
        from.user,
        from.db,
        from.authmethod,
        from.tls,
        from.application,
        from.sessionid,
    ];
    fill_from(into, texts, |text| text, from.remoteport);
}

/// The one rule of both fills: a field `into` already has is kept; `own` makes the text of one it
/// lacks (only then, so a record of a known session copies nothing).
fn fill_from<T>(
    into: &mut Session,
    texts: [Option<T>; 7],
    mut own: impl FnMut(T) -> Text,
    remoteport: Option<i64>,
) {
    let fields = [
        &mut into.remotehost,
        &mut into.user,
        &mut into.db,
        &mut into.authmethod,
        &mut into.tls,
        &mut into.application,
        &mut into.sessionid,
    ];
    for (field, text) in fields.into_iter().zip(texts) {
        if field.is_none() {
            *field = text.map(&mut own);
        }
    }
    if into.remoteport.is_none() {
        into.remoteport = remoteport;
    }
}

/// One list of the sessions of several shards, which can hold the same session twice (open in
/// the file that saw its start, closed in the one that saw its end): sessions of a pid starting
/// within [`OPENING_WINDOW_MS`] of each other, the later before the earlier ended, are one,
/// closed if either copy is; a session
/// still open when a later one of its pid starts had ended by then (pid reuse). In (pid,
/// start) order.
pub fn merge(mut sessions: Vec<Session>) -> Vec<Session> {
    sessions.sort_by_key(|s| (s.pid, s.start_ms, s.end_ms.is_none()));
    let mut merged: Vec<Session> = Vec::with_capacity(sessions.len());
    for session in sessions {
        match merged.last_mut() {
            Some(last)
                if last.pid == session.pid
                    && session.start_ms - last.start_ms <= OPENING_WINDOW_MS
                    && last.end_ms.is_none_or(|end| session.start_ms <= end) =>
            {
                last.end_ms = match (last.end_ms, session.end_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                fill_session(last, session);
            }
            Some(last) if last.pid == session.pid => {
                if last.end_ms.is_none() {
                    last.end_ms = Some(session.start_ms);
                }
                merged.push(session);
            }
            _ => merged.push(session),
        }
    }
    merged
}

/// The sessions of one cluster, for looking statements up: one list in (pid, start) order (no
/// map and no list a pid: a session costs its own size and a 16-byte key).
#[derive(Debug, Default, Clone)]
pub struct Index {
    entries: Vec<Entry>,
    /// (pid, start) of each entry: what a lookup searches, 16 bytes a session, so the search
    /// stays in the cache rather than touching a 160-byte session at every step.
    keys: Vec<(i64, i64)>,
}

/// A session as the index holds it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub session: Session,
}

impl Entry {
    /// Its start as the records write it; `None` for a start outside the calendar (a forged
    /// shard's; the checks refuse those).
    pub fn start(&self) -> Option<Timestamp> {
        timestamp_of(self.session.start_ms)
    }
}

impl Index {
    pub fn new(sessions: impl IntoIterator<Item = Session>) -> Index {
        let mut entries: Vec<Entry> = sessions
            .into_iter()
            .map(|session| Entry { session })
            .collect();
        // Stable: sessions of a pid with the same start keep their order. Sessions built or
        // merged come in order already: no sort, and no scratch buffer.
        let key = |e: &Entry| (e.session.pid, e.session.start_ms);
        if !entries.is_sorted_by_key(key) {
            entries.sort_by_key(key);
        }
        entries.shrink_to_fit();
        let keys = entries.iter().map(key).collect();
        Index { entries, keys }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The session that ran a statement of `pid` at `at_ms` (whole seconds): the one with the
    /// latest start at or before it (within its second), if that one had not ended before it.
    pub fn find(&self, pid: i64, at_ms: i64) -> Option<&Entry> {
        let after = self
            .keys
            .partition_point(|&k| k <= (pid, at_ms + START_SLACK_MS));
        let entry = self.entries.get(after.checked_sub(1)?)?;
        if entry.session.pid != pid {
            return None;
        }
        match entry.session.end_ms {
            Some(end) if end < at_ms => None,
            _ => Some(entry),
        }
    }

    /// Every session, in (pid, start) order.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.entries.iter().map(|e| &e.session)
    }
}

/// Milliseconds since the epoch as a record's timestamp.
pub fn timestamp_of(ms: i64) -> Option<Timestamp> {
    let day = crate::time::day_of(ms);
    let (year, month, date) = crate::time::date_of_day(day)?;
    let of_day = ms - day * crate::time::MS_PER_DAY;
    let (seconds, milli) = (of_day / 1000, of_day % 1000);
    Timestamp::from_parts(
        u32::try_from(year).ok()?,
        month,
        date,
        (seconds / 3600) as u32,
        (seconds / 60 % 60) as u32,
        (seconds % 60) as u32,
        milli as u32,
    )
    .ok()
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
