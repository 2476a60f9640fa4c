//! Records as OCSF 1.1.0 events (`OUTPUT_FORMAT=ocsf`), the schema Security Lake validates
//! custom sources against (issue 8, FORMAT.md "OCSF 1.1.0").
//!
//! | log | class | activity |
//! |---|---|---|
//! | connection log | Authentication 3002 | `initiating session` Logon (status Unknown), `authenticated` Logon (Success), `authentication failure` Logon (Failure), `disconnecting session` Logoff, else Other |
//! | user log | Account Change 3001 | `create` Create, `drop` Delete, else Other named after the action |
//! | user activity log | Datastore Activity 6005 | by the statement's first keyword: Query, Write, Update, Delete, Create, else Other |
//! | parse error | Base Event 0 | Other, the text in `raw_data`, the reason in `status_detail` |
//!
//! Every event carries `metadata` (version, product, `uid` = the record id, `log_name` = the log
//! type), `cloud` (account and region from the file name), `time` in epoch milliseconds (the
//! record's time; for a record without one, the file name's time, else 0) and `severity_id` 1
//! (Informational). The provenance (bucket, key, line, cluster, file time), the record's flags
//! and every column without an OCSF home go under `unmapped` with their raw names, so nothing of
//! the raw record is lost; null columns are left out.

use std::net::IpAddr;

mod session;

use super::json::{write_int, write_str};
use super::{largest_text_column, write_value, Join, Part, Provenance};
use crate::key::LogFileName;
use crate::logs::time::parse_iso_seconds;
use crate::logs::{
    Body, Columns, Kind, LogType, Record, Value, ACTIVITY_COLUMNS, CONNECTION_COLUMNS, MAX_COLUMNS,
    USER_COLUMNS,
};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";

/// Longest first keyword or event name used as an `activity_name`; longer text stays raw under
/// `unmapped` (a split part must not repeat it).
const MAX_ACTIVITY_NAME: usize = 64;

/// What the OCSF writer needs of a file's provenance, rendered once per file.
#[derive(Debug, Clone)]
pub(super) struct FileParts {
    /// `{"metadata":{…,"log_name":…,"uid":"`
    pub(super) metadata: Vec<u8>,
    /// `"},"cloud":{…}`
    pub(super) cloud: Vec<u8>,
    /// `,"unmapped":{"source":{"bucket":…,"key":…,"line":`
    pub(super) source: Vec<u8>,
    /// `},"cluster":…,"file_time":…` (absent fields left out)
    pub(super) file: Vec<u8>,
    /// The cluster named in the file name.
    pub(super) cluster: Option<String>,
    /// The file name's time, for records without a time of their own.
    pub(super) file_time_ms: Option<i64>,
}

impl FileParts {
    pub(super) fn new(
        log_type: LogType,
        name: Option<&LogFileName>,
        bucket: Option<&str>,
        key: &str,
    ) -> Self {
        let mut metadata = Vec::with_capacity(160);
        metadata.extend_from_slice(b"{\"metadata\":{\"version\":\"");
        metadata.extend_from_slice(OCSF_VERSION.as_bytes());
        metadata.extend_from_slice(
            b"\",\"product\":{\"name\":\"Amazon Redshift\",\"vendor_name\":\"AWS\"},\
              \"profiles\":[\"cloud\"],\"log_name\":",
        );
        write_str(&mut metadata, log_type.as_str());
        metadata.extend_from_slice(b",\"uid\":\"");

        let mut cloud = b"\"},\"cloud\":{\"provider\":\"AWS\"".to_vec();
        if let Some(name) = name {
            cloud.extend_from_slice(b",\"account\":{\"uid\":");
            write_str(&mut cloud, &name.account_id);
            cloud.extend_from_slice(b"},\"region\":");
            write_str(&mut cloud, &name.region);
        }
        cloud.push(b'}');

        let mut source = b",\"unmapped\":{\"source\":{\"bucket\":".to_vec();
        match bucket {
            Some(b) => write_str(&mut source, b),
            None => source.extend_from_slice(b"null"),
        }
        source.extend_from_slice(b",\"key\":");
        write_str(&mut source, key);
        source.extend_from_slice(b",\"line\":");

        let mut file = b"}".to_vec();
        if let Some(name) = name {
            file.extend_from_slice(b",\"cluster\":");
            write_str(&mut file, &name.cluster);
            file.extend_from_slice(b",\"file_time\":");
            write_str(&mut file, &name.file_time);
        }
        FileParts {
            metadata,
            cloud,
            source,
            file,
            cluster: name.map(|n| n.cluster.clone()),
            file_time_ms: name
                .and_then(|n| parse_iso_seconds(n.file_time.as_bytes()).ok())
                .map(|t| epoch_ms(&t)),
        }
    }
}

pub use crate::logs::time::epoch_ms;

/// An OCSF event class.
struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: Option<&'static str>,
}

const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: Some("Identity & Access Management"),
};
const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: 3,
    category_name: Some("Identity & Access Management"),
};
const DATASTORE_ACTIVITY: Class = Class {
    uid: 6005,
    name: "Datastore Activity",
    category_uid: 6,
    category_name: Some("Application Activity"),
};
const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: None,
};

const OTHER: u32 = 99;

/// `activity_id` and its caption; for Other, `name` is the source's own word when it has one.
struct Activity<'a> {
    id: u32,
    caption: &'static str,
    name: Option<&'a str>,
    /// The name is a SQL keyword, written upper-case.
    upper: bool,
}

impl Activity<'_> {
    const fn of(id: u32, caption: &'static str) -> Self {
        Activity {
            id,
            caption,
            name: None,
            upper: false,
        }
    }
}

fn other(name: Option<&str>) -> Activity<'_> {
    Activity {
        id: OTHER,
        caption: "Other",
        name: name.filter(|n| !n.is_empty() && n.len() <= MAX_ACTIVITY_NAME),
        upper: false,
    }
}

/// `status_id` and its caption.
type Status = (u32, &'static str);
const STATUS_UNKNOWN: Status = (0, "Unknown");
const STATUS_SUCCESS: Status = (1, "Success");
const STATUS_FAILURE: Status = (2, "Failure");

// Column positions in the logs' column tables (checked by a test).
mod conn {
    pub const EVENT: usize = 0;
    pub const RECORDTIME: usize = 1;
    pub const REMOTEHOST: usize = 2;
    pub const REMOTEPORT: usize = 3;
    pub const PID: usize = 4;
    pub const DBNAME: usize = 5;
    pub const USERNAME: usize = 6;
    pub const DURATION: usize = 8;
    pub const SESSIONID: usize = 20;
}
mod user {
    pub const USERID: usize = 0;
    pub const USERNAME: usize = 1;
    pub const ACTION: usize = 3;
    pub const USESUPER: usize = 5;
    pub const RECORDTIME: usize = 10;
}
mod act {
    pub const RECORDTIME: usize = 0;
    pub const DB: usize = 1;
    pub const USER: usize = 2;
    pub const USERID: usize = 4;
    pub const QUERY: usize = 6;
}

/// Appends the record as one OCSF 1.1.0 event (no newline).
pub fn write_ocsf(out: &mut Vec<u8>, record: &Record<'_>, provenance: &Provenance) {
    write_event(out, record, provenance, None, Join::Off);
}

/// The columns as the event writes them: the split part's piece in place of the split column's
/// text. Decisions (activity, IP or host name) are taken on the whole values, so every part of
/// a split record is the same event but for that text.
struct View<'c, 'a> {
    columns: &'c Columns<'a>,
    split: Option<(usize, &'c str)>,
    /// Columns already written in the event's own fields.
    mapped: [bool; MAX_COLUMNS],
}

impl<'a> View<'_, 'a> {
    fn value(&self, i: usize) -> Value<'a> {
        self.columns.values.get(i).copied().unwrap_or(Value::Null)
    }
    fn text(&self, i: usize) -> Option<&str> {
        match self.split {
            Some((at, piece)) if at == i => Some(piece),
            _ => self.value(i).as_text(),
        }
    }
    /// Writes `"key":` and the column's text as a JSON string, and marks it mapped.
    fn put_text(&mut self, out: &mut Vec<u8>, key: &[u8], i: usize) -> bool {
        let Some(text) = self.text(i) else {
            return false;
        };
        out.extend_from_slice(key);
        write_str(out, text);
        self.mapped[i] = true;
        true
    }
    fn time_ms(&self, i: usize) -> Option<i64> {
        match self.value(i) {
            Value::Time(t) => Some(epoch_ms(&t)),
            _ => None,
        }
    }
}

pub(super) fn write_event(
    out: &mut Vec<u8>,
    record: &Record<'_>,
    provenance: &Provenance,
    part: Option<Part<'_>>,
    join: Join<'_>,
) {
    match &record.body {
        Body::Columns(columns) => {
            let split = part.and_then(|p| largest_text_column(columns).map(|i| (i, p.text)));
            let mut view = View {
                columns,
                split,
                mapped: [false; MAX_COLUMNS],
            };
            let is = |table: &[(&str, Kind)]| {
                std::ptr::eq(columns.names, table) || columns.names == table
            };
            if is(CONNECTION_COLUMNS) {
                connection(out, &mut view, record, provenance);
            } else if is(USER_COLUMNS) {
                account_change(out, &mut view, record, provenance);
            } else if is(ACTIVITY_COLUMNS) {
                datastore(out, &mut view, record, provenance, join);
            } else {
                // Not one of the known tables: a base event with every column unmapped.
                let time = columns.record_time().map(|t| epoch_ms(&t));
                head(out, record, provenance, &BASE_EVENT, &other(None), time);
            }
            unmapped(out, record, provenance, Some(&view), part);
        }
        Body::ParseError { reason, raw } => {
            head(out, record, provenance, &BASE_EVENT, &other(None), None);
            out.extend_from_slice(b",\"status_detail\":");
            write_str(out, reason);
            out.extend_from_slice(b",\"raw_data\":");
            write_str(out, part.map_or(*raw, |p| p.text));
            unmapped(out, record, provenance, None, part);
        }
    }
}

/// Metadata, cloud, classification and time.
fn head(
    out: &mut Vec<u8>,
    record: &Record<'_>,
    provenance: &Provenance,
    class: &Class,
    activity: &Activity<'_>,
    time_ms: Option<i64>,
) {
    let file = &provenance.ocsf;
    out.extend_from_slice(&file.metadata);
    provenance.write_id(out, record);
    out.extend_from_slice(&file.cloud);
    out.extend_from_slice(b",\"class_uid\":");
    write_int(out, i64::from(class.uid));
    out.extend_from_slice(b",\"class_name\":");
    write_str(out, class.name);
    out.extend_from_slice(b",\"category_uid\":");
    write_int(out, i64::from(class.category_uid));
    if let Some(name) = class.category_name {
        out.extend_from_slice(b",\"category_name\":");
        write_str(out, name);
    }
    out.extend_from_slice(b",\"activity_id\":");
    write_int(out, i64::from(activity.id));
    out.extend_from_slice(b",\"activity_name\":");
    match activity.name {
        // A SQL keyword: ASCII letters only, nothing to escape.
        Some(name) if activity.upper => {
            out.push(b'"');
            out.extend(name.bytes().map(|b| b.to_ascii_uppercase()));
            out.push(b'"');
        }
        Some(name) => write_str(out, name),
        None => write_str(out, activity.caption),
    }
    out.extend_from_slice(b",\"type_uid\":");
    write_int(out, i64::from(class.uid) * 100 + i64::from(activity.id));
    out.extend_from_slice(b",\"type_name\":\"");
    out.extend_from_slice(class.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(activity.caption.as_bytes());
    out.extend_from_slice(b"\",\"severity_id\":1,\"severity\":\"Informational\",\"time\":");
    write_int(out, time_ms.or(provenance.ocsf.file_time_ms).unwrap_or(0));
}

fn status(out: &mut Vec<u8>, (id, caption): Status) {
    out.extend_from_slice(b",\"status_id\":");
    write_int(out, i64::from(id));
    out.extend_from_slice(b",\"status\":");
    write_str(out, caption);
}

/// Connection log: Authentication.
fn connection(out: &mut Vec<u8>, v: &mut View<'_, '_>, record: &Record<'_>, p: &Provenance) {
    let event = v.value(conn::EVENT).as_text();
    let split = v.split.is_some_and(|(i, _)| i == conn::EVENT);
    let (activity, state) = match event {
        Some("initiating session") => (Activity::of(1, "Logon"), Some(STATUS_UNKNOWN)),
        Some("authenticated") => (Activity::of(1, "Logon"), Some(STATUS_SUCCESS)),
        Some("authentication failure") => (Activity::of(1, "Logon"), Some(STATUS_FAILURE)),
        Some("disconnecting session") => (Activity::of(2, "Logoff"), None),
        // No event at all: an unknown activity is Other (Authentication has no Unknown).
        None => (other(None), None),
        // A split piece is written where the column's text goes: under `unmapped`.
        Some(_) => (other(event.filter(|_| !split)), None),
    };
    // The event's text is kept by the activity and status, or as the activity's name.
    v.mapped[conn::EVENT] = !split && (activity.id != OTHER || activity.name.is_some());
    head(
        out,
        record,
        p,
        &AUTHENTICATION,
        &activity,
        v.time_ms(conn::RECORDTIME),
    );
    v.mapped[conn::RECORDTIME] = v.time_ms(conn::RECORDTIME).is_some();
    if let Some(state) = state {
        status(out, state);
        if state == STATUS_FAILURE {
            out.extend_from_slice(b",\"status_detail\":\"authentication failure\"");
        }
    }
    if activity.id == 2 {
        if let Some(us) = v.value(conn::DURATION).as_int() {
            // Redshift counts microseconds, OCSF milliseconds; the exact value stays unmapped.
            out.extend_from_slice(b",\"duration\":");
            write_int(out, us / 1000);
        }
    }
    out.extend_from_slice(b",\"user\":{");
    v.put_text(out, b"\"name\":", conn::USERNAME);
    out.push(b'}');

    let host = v.value(conn::REMOTEHOST).as_text();
    let port = v
        .value(conn::REMOTEPORT)
        .as_int()
        .filter(|n| (0..=65_535).contains(n));
    if host.is_some() || port.is_some() {
        out.extend_from_slice(b",\"src_endpoint\":{");
        let mut first = true;
        if let Some(host) = host {
            // `[local]` and other names are not IP addresses.
            let key: &[u8] = if host.parse::<IpAddr>().is_ok() {
                b"\"ip\":"
            } else {
                b"\"hostname\":"
            };
            first = !v.put_text(out, key, conn::REMOTEHOST);
        }
        if let Some(port) = port {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"port\":");
            write_int(out, port);
            v.mapped[conn::REMOTEPORT] = true;
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"service\":{\"name\":\"Amazon Redshift\"}");
    let db = v.value(conn::DBNAME).as_text().is_some();
    if p.ocsf.cluster.is_some() || db {
        out.extend_from_slice(b",\"dst_endpoint\":{");
        if let Some(cluster) = &p.ocsf.cluster {
            out.extend_from_slice(b"\"name\":");
            write_str(out, cluster);
            if db {
                out.push(b',');
            }
        }
        v.put_text(out, b"\"svc_name\":", conn::DBNAME);
        out.push(b'}');
    }
    if v.value(conn::SESSIONID).as_text().is_some() {
        out.extend_from_slice(b",\"session\":{");
        v.put_text(out, b"\"uid\":", conn::SESSIONID);
        out.push(b'}');
    } else if let Some(pid) = v.value(conn::PID).as_int() {
        // The pid stays unmapped too: it joins the activity log's records.
        out.extend_from_slice(b",\"session\":{\"uid\":\"");
        write_int(out, pid);
        out.extend_from_slice(b"\"}");
    }
}

/// User log: Account Change.
fn account_change(out: &mut Vec<u8>, v: &mut View<'_, '_>, record: &Record<'_>, p: &Provenance) {
    let action = v.value(user::ACTION).as_text();
    let split = v.split.is_some_and(|(i, _)| i == user::ACTION);
    let activity = match action {
        Some("create") => Activity::of(1, "Create"),
        Some("drop") => Activity::of(6, "Delete"),
        None => other(None),
        Some(_) => other(action.filter(|_| !split)),
    };
    v.mapped[user::ACTION] = !split && (activity.id != OTHER || activity.name.is_some());
    head(
        out,
        record,
        p,
        &ACCOUNT_CHANGE,
        &activity,
        v.time_ms(user::RECORDTIME),
    );
    v.mapped[user::RECORDTIME] = v.time_ms(user::RECORDTIME).is_some();
    out.extend_from_slice(b",\"user\":{");
    let mut first = !v.put_text(out, b"\"name\":", user::USERNAME);
    if let Some(uid) = v.value(user::USERID).as_int() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"uid\":\"");
        write_int(out, uid);
        out.push(b'"');
        v.mapped[user::USERID] = true;
        first = false;
    }
    if let Value::Bool(superuser) = v.value(user::USESUPER) {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(if superuser {
            b"\"type_id\":2,\"type\":\"Admin\""
        } else {
            b"\"type_id\":1,\"type\":\"User\""
        });
        v.mapped[user::USESUPER] = true;
    }
    out.push(b'}');
}

/// User activity log: Datastore Activity.
fn datastore(
    out: &mut Vec<u8>,
    v: &mut View<'_, '_>,
    record: &Record<'_>,
    p: &Provenance,
    join: Join<'_>,
) {
    let keyword = v.value(act::QUERY).as_text().map_or("", first_keyword);
    let activity = STATEMENTS
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(keyword))
        .map(|&(_, id, caption)| Activity::of(id, caption))
        .unwrap_or(Activity {
            upper: true,
            ..other(Some(keyword))
        });
    head(
        out,
        record,
        p,
        &DATASTORE_ACTIVITY,
        &activity,
        v.time_ms(act::RECORDTIME),
    );
    v.mapped[act::RECORDTIME] = v.time_ms(act::RECORDTIME).is_some();
    out.extend_from_slice(b",\"actor\":{\"user\":{");
    let first = !v.put_text(out, b"\"name\":", act::USER);
    if let Some(uid) = v.value(act::USERID).as_int() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"uid\":\"");
        write_int(out, uid);
        out.push(b'"');
        v.mapped[act::USERID] = true;
    }
    out.push(b'}');
    session::actor_session(out, join);
    out.extend_from_slice(b"},\"database\":{");
    if v.put_text(out, b"\"name\":", act::DB) {
        out.push(b',');
    }
    out.extend_from_slice(b"\"type_id\":1,\"type\":\"Relational\"}");
    if v.text(act::QUERY).is_some() {
        out.extend_from_slice(b",\"query_info\":{");
        v.put_text(out, b"\"query_string\":", act::QUERY);
        out.push(b'}');
    }
    // The activity log names no client: the session join gives it, else the endpoint stays
    // empty rather than invented.
    session::src_endpoint(out, join);
}

/// Datastore Activity by the statement's first keyword (issue 8's table).
const STATEMENTS: [(&str, u32, &str); 12] = [
    ("SELECT", 4, "Query"),
    ("WITH", 4, "Query"),
    ("SHOW", 4, "Query"),
    ("EXPLAIN", 4, "Query"),
    ("INSERT", 5, "Write"),
    ("COPY", 5, "Write"),
    ("MERGE", 5, "Write"),
    ("UPDATE", 2, "Update"),
    ("DELETE", 7, "Delete"),
    ("TRUNCATE", 7, "Delete"),
    ("DROP", 7, "Delete"),
    ("CREATE", 6, "Create"),
];

/// The statement's first keyword: leading spaces, parentheses and comments skipped.
pub fn first_keyword(sql: &str) -> &str {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n + 1);
        } else if b[i..].starts_with(b"/*") {
            i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |n| i + 2 + n + 2);
        } else {
            break;
        }
    }
    let len = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    // ASCII letters only: both ends are char boundaries.
    &sql[i..i + len]
}

/// Provenance, flags, the columns not written above and the part numbers.
fn unmapped(
    out: &mut Vec<u8>,
    record: &Record<'_>,
    provenance: &Provenance,
    view: Option<&View<'_, '_>>,
    part: Option<Part<'_>>,
) {
    let file = &provenance.ocsf;
    out.extend_from_slice(&file.source);
    if provenance.line_in_source {
        write_int(out, record.line as i64);
    }
    out.extend_from_slice(&file.file);
    if let Some(view) = view {
        let columns = view.columns;
        let keys = std::ptr::eq(columns.names, provenance.table).then_some(&provenance.keys[..]);
        for (i, (name, value)) in columns.iter().enumerate() {
            if view.mapped[i] || matches!(value, Value::Null) {
                continue;
            }
            match keys {
                Some(keys) => out.extend_from_slice(&keys[i]),
                None => {
                    out.extend_from_slice(b",\"");
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"\":");
                }
            }
            match view.text(i) {
                Some(text) => write_str(out, text),
                None => write_value(out, value),
            }
        }
        if columns.extra.is_some() {
            out.extend_from_slice(b",\"extra_columns\":[");
            for (i, column) in columns.extra_columns().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, column);
            }
            out.push(b']');
        }
    }
    if record.invalid_utf8 {
        out.extend_from_slice(b",\"invalid_utf8\":true");
    }
    if record.truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    if record.redacted {
        out.extend_from_slice(b",\"redacted\":true");
    }
    super::write_whole(out, record);
    if let Some(p) = part {
        out.extend_from_slice(b",\"part\":");
        write_int(out, p.part as i64);
        out.extend_from_slice(b",\"parts\":");
        write_int(out, p.parts as i64);
    }
    out.extend_from_slice(b"}}");
}
