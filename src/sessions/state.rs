//! The session index in the state store, for the Lambda (`STATE_BUCKET`/`STATE_PREFIX`).
//!
//! Each connection log file writes the sessions of its hour (the hour of its file name) as its
//! own shards, `sessions/<account>/<region>/<cluster>/<YYYY-MM-DDTHH>/<hash of its key>-<part>.json`:
//! one writer per object, so concurrent invocations never overwrite each other's sessions, and
//! a retry rewrites the same objects. A shard holds the file's sessions and the sessions still
//! open at the end of the last earlier hour that has shards (carried forward, so a session
//! opened yesterday still matches today's statements; one open for more than [`MAX_OPEN_MS`]
//! is dropped). Each part stays under the store's [`MAX_STATE_BYTES`], at most [`MAX_PARTS`] a
//! file.
//!
//! An activity file reads the shards of its own hour and of the hour before (one listing and a
//! few small reads each). When its hour has none yet, it waits: the forwarding fails retryably
//! ([`SessionError::Waiting`]) until `SESSION_WAIT` after the file was written, then goes out
//! with the sessions of the last hour that has shards. Every shard is checked as all state is
//! ([`check_shard`]); a refused one is logged at WARN naming its key, and the file's records go
//! out unjoined rather than with a wrong address.

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::index::{merge, Builder, Index, Session, Text, MAX_FIELD_BYTES};
use crate::cloudwatch::{LogGroup, Origin};
use crate::key::LogFileName;
use crate::ledger::check::{decode, encode, instant_in_range};
use crate::ledger::CLOCK_SKEW_MS;
use crate::logs::{LogType, Parser};
use crate::ports::{Clock, Precondition, StateError, StateStore, MAX_STATE_BYTES};
pub use crate::time::hour_start;
use crate::time::{hour_label, parse_rfc3339_ms, rfc3339_ms, MS_PER_DAY, MS_PER_HOUR};

/// Folder of the shards under the state prefix.
pub const SESSIONS_DIR: &str = "sessions/";
const HOUR_MS: i64 = MS_PER_HOUR;
/// Hours looked back for the last hour with shards (the carry; an activity file past its wait).
pub const LOOKBACK_HOURS: i64 = 24;
/// Longest a session is carried open without its disconnection seen.
pub const MAX_OPEN_MS: i64 = 7 * MS_PER_DAY;
/// Most parts one connection log file writes (at 64 KiB, some 30,000 sessions).
pub const MAX_PARTS: usize = 64;
/// Bytes of sessions a part holds at most: the store's limit less room for the rest.
const PART_BYTES: usize = MAX_STATE_BYTES - 2048;
/// Most shards read for one hour.
const MAX_SHARDS_PER_HOUR: usize = 1000;
/// Latest an hour's logs arrive after their file name's time (FORMAT.md: delivery lags 30 to
/// 120 minutes). A copy of an old file (a fresh last-modified time) does not wait.
pub const MAX_DELIVERY_LAG_MS: i64 = 2 * HOUR_MS;
/// A session in an hour's shard started before the hour ended (a file holds records older
/// than its name), give or take the writers' clocks.
const START_SLACK_MS: i64 = HOUR_MS + CLOCK_SKEW_MS;

/// A session as a shard stores it: pid, start and end (ms), host, port, user, database, auth
/// method, TLS version, application, session id.
type Row = (
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One shard: part `part` of `parts` of the sessions a connection log file wrote for an hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shard {
    /// `account/region/cluster`.
    pub cluster: String,
    /// `YYYY-MM-DDTHH`.
    pub hour: String,
    /// The connection log's key.
    pub source: String,
    pub part: usize,
    pub parts: usize,
    sessions: Vec<Row>,
}

fn row(s: Session) -> Row {
    let text = |t: Option<Text>| t.map(|t| t.to_string());
    (
        s.pid,
        s.start_ms,
        s.end_ms,
        text(s.remotehost),
        s.remoteport,
        text(s.user),
        text(s.db),
        text(s.authmethod),
        text(s.tls),
        text(s.application),
        text(s.sessionid),
    )
}

fn session(r: Row) -> Session {
    let (pid, start_ms, end_ms, remotehost, remoteport, user, db, authmethod, tls, app, id) = r;
    let text = |t: Option<String>| t.map(Text::from);
    Session {
        pid,
        start_ms,
        end_ms,
        remotehost: text(remotehost),
        remoteport,
        user: text(user),
        db: text(db),
        authmethod: text(authmethod),
        tls: text(tls),
        application: text(app),
        sessionid: text(id),
    }
}

/// State requests and bytes for one file: the receipt's `session_state`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub lists: u64,
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub written_bytes: u64,
    /// Shards refused by the checks.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: u64,
    /// Sessions written (connection logs) or read (activity logs).
    pub sessions: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Whose sessions a shard holds: an account, a region and a cluster (or Serverless namespace).
/// A file's come from its name; a CloudWatch Logs batch's from its owner, the function's region
/// and its log group (a provisioned cluster logging to CloudWatch shares its cluster's shards;
/// a namespace is written `namespace=<name>`, which no cluster identifier can be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    account: String,
    region: String,
    cluster: String,
}

impl Scope {
    pub fn of_file(name: &LogFileName) -> Scope {
        Scope {
            account: name.account_id.clone(),
            region: name.region.clone(),
            cluster: name.cluster.clone(),
        }
    }

    /// The scope of a batch of `group`, owned by `owner`, delivered in `region`.
    pub fn of_group(group: &LogGroup, owner: &str, region: &str) -> Scope {
        let cluster = match &group.origin {
            Origin::Cluster(c) => c.clone(),
            Origin::Namespace(n) => format!("namespace={n}"),
        };
        Scope {
            account: owner.to_string(),
            region: region.to_string(),
            cluster,
        }
    }

    /// `account/region/cluster`: a shard's `cluster`, and its folder under `sessions/`.
    fn label(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.cluster)
    }
}

/// The sessions an activity file is joined with.
#[derive(Debug)]
pub struct Loaded {
    pub index: Index,
    pub traffic: Traffic,
    /// The file's own hour had shards (else it waited its time and took what was known).
    pub complete: bool,
}

/// Why the session state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The hour's connection log is not in yet: try again later (until `until`).
    #[error("its hour's connection log ({hour}) is not processed yet; it waits for it until {until} (SESSION_WAIT)", until = rfc3339_ms(*.until_ms))]
    Waiting { hour: String, until_ms: i64 },
    #[error("session state: {0}")]
    State(#[from] StateError),
    /// The connection log could not be read for its sessions.
    #[error("reading its sessions failed: {0}")]
    Read(std::io::Error),
    /// The file name's time is not a time (never for a name the key parser accepted).
    #[error("the file name's time {0:?} is not a time")]
    Name(String),
}

impl SessionError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SessionError::Waiting { .. } | SessionError::Read(_) => true,
            SessionError::State(e) => e.is_retryable(),
            SessionError::Name(_) => false,
        }
    }
}

/// The session index under a state prefix.
#[derive(Clone)]
pub struct SessionStore {
    store: Arc<dyn StateStore>,
    /// Ends with `/` (or is empty).
    prefix: String,
    /// `SESSION_WAIT`.
    wait_ms: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("at", &self.store.location(&self.prefix))
            .finish()
    }
}

impl SessionStore {
    pub fn new(
        store: Arc<dyn StateStore>,
        prefix: &str,
        wait: std::time::Duration,
        clock: Arc<dyn Clock>,
    ) -> SessionStore {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        SessionStore {
            store,
            prefix,
            wait_ms: i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4),
            clock,
        }
    }

    /// The folder of `name`'s cluster and the hour starting at `hour_ms`.
    pub fn hour_dir(&self, name: &LogFileName, hour_ms: i64) -> String {
        self.scope_dir(&Scope::of_file(name), hour_ms)
    }

    /// The folder of `scope` and the hour starting at `hour_ms`.
    pub fn scope_dir(&self, scope: &Scope, hour_ms: i64) -> String {
        format!(
            "{}{SESSIONS_DIR}{}/{}/",
            self.prefix,
            scope.label(),
            hour_label(hour_ms)
        )
    }

    /// Reads the connection log `body` (of `s3://bucket/key`) and writes its hour's shards: its
    /// sessions and those carried open from the hour before.
    pub async fn record(
        &self,
        name: &LogFileName,
        bucket: &str,
        key: &str,
        body: Box<dyn Read + Send>,
        max_expansion: u32,
    ) -> Result<Traffic, SessionError> {
        let (scope, hour) = (Scope::of_file(name), hour_of(name)?);
        let mut traffic = Traffic::default();
        let builder = self.begin(&scope, hour, false, &mut traffic).await?;
        let builder =
            tokio::task::spawn_blocking(move || read_events(body, max_expansion, builder))
                .await
                .map_err(|e| SessionError::Read(std::io::Error::other(e.to_string())))?
                .map_err(SessionError::Read)?;
        let tag = tag_of(&[bucket, key]);
        self.write(&scope, hour, key, &tag, builder.build(), &mut traffic)
            .await?;
        Ok(traffic)
    }

    /// A builder of the sessions of `scope`'s hour at `hour`, holding those carried open from
    /// the last earlier hour with shards; with `first_only`, only when the hour has no shard yet
    /// (a CloudWatch Logs batch: the hour's first batch carries, the later ones need not read
    /// the hour before again).
    pub async fn begin(
        &self,
        scope: &Scope,
        hour: i64,
        first_only: bool,
        traffic: &mut Traffic,
    ) -> Result<Builder, SessionError> {
        let mut builder = Builder::default();
        if first_only
            && !self
                .list(&self.scope_dir(scope, hour), traffic)
                .await?
                .is_empty()
        {
            return Ok(builder);
        }
        builder.carry(self.carried(scope, hour, traffic).await?);
        Ok(builder)
    }

    /// Writes `sessions` as the shards of `source` (a connection log's key, a batch's log
    /// group and stream) in `scope`'s hour at `hour`, named by `tag` so that a retry rewrites
    /// the same objects. Sessions a shard of the hour cannot hold (started more than
    /// [`MAX_OPEN_MS`] before it, or after it ended: a batch spanning hours) are left out.
    pub async fn write(
        &self,
        scope: &Scope,
        hour: i64,
        source: &str,
        tag: &str,
        mut sessions: Vec<Session>,
        traffic: &mut Traffic,
    ) -> Result<(), SessionError> {
        let (earliest, latest) = (hour - MAX_OPEN_MS, hour + HOUR_MS);
        sessions.retain(|s| (earliest..latest).contains(&s.start_ms));
        traffic.sessions = sessions.len() as u64;
        let dir = self.scope_dir(scope, hour);
        let source = &source[..floor_char_boundary(source, 1024)];
        let shards = split(scope.label(), hour_label(hour), source, sessions);
        for (part, body) in shards.into_iter().enumerate() {
            let shard_key = format!("{dir}{tag}-{part}.json");
            traffic.writes += 1;
            traffic.written_bytes += body.len() as u64;
            self.store.put(&shard_key, body, Precondition::None).await?;
        }
        Ok(())
    }

    /// The sessions an activity file of `name`, written at `written_ms`, is joined with; an
    /// error to retry while its hour's connection log is not in and the wait is not over.
    pub async fn load(&self, name: &LogFileName, written_ms: i64) -> Result<Loaded, SessionError> {
        let hour = hour_of(name)?;
        let file_ms = parse_rfc3339_ms(&name.file_time).unwrap_or(hour);
        let until_ms = written_ms.min(file_ms + MAX_DELIVERY_LAG_MS) + self.wait_ms;
        self.load_scope(&Scope::of_file(name), hour, Some(until_ms))
            .await
    }

    /// The sessions statements of `scope` in the hour at `hour` are joined with. While the
    /// hour has no shard, an error to retry until `wait_until` (`None`: never waits, what is
    /// known is taken at once).
    pub async fn load_scope(
        &self,
        scope: &Scope,
        hour: i64,
        wait_until: Option<i64>,
    ) -> Result<Loaded, SessionError> {
        let mut traffic = Traffic::default();
        let own = self
            .list(&self.scope_dir(scope, hour), &mut traffic)
            .await?;
        let complete = !own.is_empty();
        if let (false, Some(until_ms)) = (complete, wait_until) {
            if self.clock.now_ms() < until_ms {
                return Err(SessionError::Waiting {
                    hour: hour_label(hour),
                    until_ms,
                });
            }
        }
        let mut sessions = Vec::new();
        let mut refused = false;
        let read = self.read_hour(scope, hour, own, &mut traffic).await?;
        refused |= read.1;
        sessions.extend(read.0);
        // The hour before (statements near the hour's start), or past the wait, the last hour
        // with shards (its carried sessions are what is known).
        for back in 1..=LOOKBACK_HOURS {
            let at = hour - back * HOUR_MS;
            let keys = self.list(&self.scope_dir(scope, at), &mut traffic).await?;
            let found = !keys.is_empty();
            let (more, bad) = self.read_hour(scope, at, keys, &mut traffic).await?;
            refused |= bad;
            sessions.extend(more);
            if complete || found {
                break;
            }
        }
        let index = if refused {
            // One refused shard could hold the very session a statement needs: joining with
            // the rest could name another client. Nothing is joined.
            Index::default()
        } else {
            Index::new(merge(sessions))
        };
        traffic.sessions = index.len() as u64;
        Ok(Loaded {
            index,
            traffic,
            complete,
        })
    }

    /// The sessions still open at the end of the last hour before `hour` that has shards.
    async fn carried(
        &self,
        scope: &Scope,
        hour: i64,
        traffic: &mut Traffic,
    ) -> Result<Vec<Session>, SessionError> {
        for back in 1..=LOOKBACK_HOURS {
            let at = hour - back * HOUR_MS;
            let keys = self.list(&self.scope_dir(scope, at), traffic).await?;
            if keys.is_empty() {
                continue;
            }
            let (sessions, _) = self.read_hour(scope, at, keys, traffic).await?;
            return Ok(merge(sessions)
                .into_iter()
                .filter(|s| s.end_ms.is_none() && s.start_ms >= hour - MAX_OPEN_MS)
                .collect());
        }
        Ok(Vec::new())
    }

    async fn list(&self, dir: &str, traffic: &mut Traffic) -> Result<Vec<String>, StateError> {
        traffic.lists += 1;
        self.store.list(dir, MAX_SHARDS_PER_HOUR).await
    }

    /// The sessions of the shards `keys` of the hour at `hour`, and whether one was refused
    /// (logged at WARN with its key and left out).
    async fn read_hour(
        &self,
        scope: &Scope,
        hour: i64,
        keys: Vec<String>,
        traffic: &mut Traffic,
    ) -> Result<(Vec<Session>, bool), StateError> {
        let (cluster, label) = (scope.label(), hour_label(hour));
        let now = self.clock.now_ms();
        let mut sessions = Vec::new();
        let mut refused = false;
        for key in keys.iter().filter(|k| k.ends_with(".json")) {
            traffic.reads += 1;
            let Some(stored) = self.store.get(key).await? else {
                continue; // deleted since the listing
            };
            traffic.read_bytes += stored.body.len() as u64;
            let checked = decode::<Shard>(&stored.body)
                .and_then(|shard| check_shard(&shard, &cluster, &label, hour, now).map(|()| shard));
            match checked {
                Ok(shard) => sessions.extend(shard.sessions.into_iter().map(session)),
                Err(reason) => {
                    refused = true;
                    traffic.refused += 1;
                    let location = self.store.location(key);
                    tracing::warn!(key = %location, reason = %reason, "session shard refused: the records it would join go out without a session; delete the object if it is not the function's");
                }
            }
        }
        Ok((sessions, refused))
    }
}

/// The hour of a file name's time, in ms.
pub fn hour_of(name: &LogFileName) -> Result<i64, SessionError> {
    let ms = parse_rfc3339_ms(&name.file_time)
        .map_err(|_| SessionError::Name(name.file_time.clone()))?;
    Ok(hour_start(ms))
}

/// The name of a writer's shards: a hash of what names its source (bucket and key; log group,
/// stream and first event id), the same at every retry.
pub fn tag_of(parts: &[&str]) -> String {
    format!("{:016x}", xxh3_64(parts.join("\0").as_bytes()))
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut end = text.len().min(at);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `builder` with the connection-log records of `body` (gzip or plain).
fn read_events(
    body: Box<dyn Read + Send>,
    max_expansion: u32,
    mut builder: Builder,
) -> std::io::Result<Builder> {
    let reader = crate::decode::open_bounded(body, max_expansion)?;
    let mut parser = Parser::new(LogType::ConnectionLog, reader);
    while let Some(record) = parser.next_record()? {
        builder.add(&record);
    }
    Ok(builder)
}

/// The shards' bodies: sessions in parts of at most [`PART_BYTES`], at most [`MAX_PARTS`]
/// (the sessions past them are the latest started, left out with a warning).
fn split(cluster: String, hour: String, source: &str, sessions: Vec<Session>) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<Row>> = vec![Vec::new()];
    let mut bytes = 0;
    let total = sessions.len();
    let mut kept = 0;
    for s in sessions {
        let r = row(s);
        let len = serde_json::to_vec(&r).map_or(PART_BYTES, |b| b.len() + 1);
        if bytes + len > PART_BYTES {
            if parts.len() == MAX_PARTS {
                break;
            }
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += len;
        kept += 1;
        if let Some(part) = parts.last_mut() {
            part.push(r);
        }
    }
    if kept < total {
        tracing::warn!(
            source,
            kept,
            total,
            "more sessions than the shards hold: the rest are not joined"
        );
    }
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(part, sessions)| {
            encode(&Shard {
                cluster: cluster.clone(),
                hour: hour.clone(),
                source: source.to_string(),
                part,
                parts: count,
                sessions,
            })
        })
        .collect()
}

/// What a shard may hold, as the function writes it: its own cluster and hour (those of its
/// key), at most [`MAX_PARTS`] parts, and sessions whose pids are not negative, whose times lie
/// between 2012 and now (plus the clock skew), started before its hour ended and at most
/// [`MAX_OPEN_MS`] plus a day before it began, ended no earlier than started, with ports of
/// 0 to 65535 and texts of at most [`MAX_FIELD_BYTES`] without control characters.
pub fn check_shard(
    shard: &Shard,
    cluster: &str,
    hour_label: &str,
    hour_ms: i64,
    now_ms: i64,
) -> Result<(), String> {
    if shard.cluster != cluster || shard.hour != hour_label {
        return Err(format!(
            "it names cluster {} and hour {}, not those of its key",
            crate::mask::quote(&shard.cluster),
            crate::mask::quote(&shard.hour)
        ));
    }
    if shard.parts == 0 || shard.parts > MAX_PARTS || shard.part >= shard.parts {
        return Err(format!(
            "part {} of {} is not a part it writes",
            shard.part, shard.parts
        ));
    }
    if shard.source.len() > 1024 {
        return Err("its source is longer than an S3 key".into());
    }
    // What its hour can hold: started at most `MAX_OPEN_MS` plus a day before it, and before it
    // ended (give or take the writers' clocks); every instant also as all state's instants are.
    let hour_holds = (hour_ms - MAX_OPEN_MS - MS_PER_DAY)..=(hour_ms + START_SLACK_MS);
    for (i, r) in shard.sessions.iter().enumerate() {
        let (pid, start, end, host, port, user, db, auth, tls, app, id) = r;
        let bad = |what: &str| Err(format!("session {i}: {what}"));
        if *pid < 0 {
            return bad("a negative pid");
        }
        instant_in_range(&format!("session {i}: its start"), *start, now_ms)?;
        if !hour_holds.contains(start) {
            return bad(&format!(
                "a start ({start} ms) outside the times its hour can hold"
            ));
        }
        if let Some(end) = end {
            instant_in_range(&format!("session {i}: its end"), *end, now_ms)?;
            if end < start {
                return bad("an end before its start");
            }
        }
        if port.is_some_and(|p| !(0..=65_535).contains(&p)) {
            return bad("a port outside 0 to 65535");
        }
        let texts = [host, user, db, auth, tls, app, id];
        if texts.iter().any(|t| {
            t.as_deref()
                .is_some_and(|t| t.len() > MAX_FIELD_BYTES || t.chars().any(char::is_control))
        }) {
            return bad("a text longer than it keeps, or with control characters");
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
