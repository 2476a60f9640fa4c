//! CloudTrail events as OCSF 1.1.0 API Activity (class 6003) events.
//!
//! The mapping follows issue 9: `api.operation` from `eventName`, `api.service.name` from
//! `eventSource`, `api.request.uid` from `requestID`, `actor.user` from `userIdentity`,
//! `src_endpoint.ip` from `sourceIPAddress` (a service name such as `redshift.amazonaws.com`
//! goes to `src_endpoint.domain`), `cloud.region` from `awsRegion`, `metadata.uid` from
//! `eventID`, `time` from `eventTime`, `errorCode` / `errorMessage` into `api.response.error` /
//! `.message`. Every field of the event without an OCSF home, and the provenance, go under
//! `unmapped`, so nothing of the event is lost.

use serde_json::{json, Map, Value};

use super::{TrailError, TrailProvenance};
use crate::output::json::{write_int, write_str};
use crate::output::CUT_ID_SUFFIX;
use crate::time::day_of_date;

pub const CLASS_UID: u32 = 6003;
pub const CATEGORY_UID: u32 = 6;
/// Informational: an API call is a fact, not a finding.
pub const SEVERITY_ID: u32 = 1;

/// OCSF API Activity's activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Create = 1,
    Read = 2,
    Update = 3,
    Delete = 4,
    Other = 99,
}

impl Activity {
    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Activity::Create => "Create",
            Activity::Read => "Read",
            Activity::Update => "Update",
            Activity::Delete => "Delete",
            Activity::Other => "Other",
        }
    }
}

const CREATE: &[&str] = &["Create", "Run", "Generate", "Copy", "Restore"];
const READ: &[&str] = &["Get", "List", "Describe", "Search", "Lookup"];
const UPDATE: &[&str] = &[
    "Update",
    "Put",
    "Modify",
    "Add",
    "Remove",
    "Set",
    "Reset",
    "Start",
    "Stop",
    "Pause",
    "Resume",
    "Reboot",
    "Resize",
    "Attach",
    "Detach",
    "Associate",
    "Disassociate",
    "Tag",
    "Untag",
    "Enable",
    "Disable",
    "Register",
    "Deregister",
    "Authorize",
    "Revoke",
    "Rotate",
    "Cancel",
];
const DELETE: &[&str] = &["Delete", "Terminate", "Purge"];

/// The activity of an API call from the verb its name starts with (`CreateCluster` is
/// Create). `Batch<Verb>...` takes its verb's activity (so `BatchGet...` is Read, as the issue
/// asks, and `BatchDeleteClusterSnapshots` is Delete); anything else is Other.
pub fn activity_of(event_name: &str) -> Activity {
    let (verb, rest) = first_word(event_name);
    let verb = if verb == "Batch" {
        first_word(rest).0
    } else {
        verb
    };
    if CREATE.contains(&verb) {
        Activity::Create
    } else if READ.contains(&verb) {
        Activity::Read
    } else if UPDATE.contains(&verb) {
        Activity::Update
    } else if DELETE.contains(&verb) {
        Activity::Delete
    } else {
        Activity::Other
    }
}

/// `CreateCluster` -> (`Create`, `Cluster`): the first character and the lowercase ones after it.
fn first_word(name: &str) -> (&str, &str) {
    let end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_lowercase())
        .map_or(name.len(), |(i, _)| i);
    name.split_at(end)
}

/// CloudTrail's `YYYY-MM-DDTHH:MM:SS[.fff]Z` as epoch milliseconds.
pub fn epoch_ms(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return None;
    }
    let shape = b"0000-00-00T00:00:00";
    let ok = b[..19].iter().zip(shape).all(|(&c, &p)| {
        if p == b'0' {
            c.is_ascii_digit()
        } else {
            c == p
        }
    });
    if !ok {
        return None;
    }
    let n = |r: std::ops::Range<usize>| b[r].iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    let (hour, minute, second) = (n(11..13), n(14..16), n(17..19));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let millis = match frac {
        [] => 0,
        [b'.', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            let mut ms = 0;
            for i in 0..3 {
                ms = ms * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let days = day_of_date(year, month as u32, day as u32)?;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Why an event has no OCSF rendering; it goes out as a Base Event instead
/// ([`write_trail_error_ocsf`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcsfError {
    #[error("event cannot be read as a JSON object: {0}")]
    NotObject(String),
}

/// Removes `key` from `map` and returns its text when it is a string; any other value stays
/// in `map`, so it goes out under `unmapped` as written (OCSF's attributes are typed: a number
/// or an object in a string attribute would not validate).
fn take_str(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(_)) => match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// Removes `key` from `map` and returns it when it is an object; any other value stays.
fn take_obj(map: &mut Map<String, Value>, key: &str) -> Option<Map<String, Value>> {
    match map.get(key) {
        Some(Value::Object(_)) => match map.remove(key) {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        },
        _ => None,
    }
}

/// Appends the event (a [`super::Kept::Event`]'s bytes) as one OCSF API Activity JSON object
/// (no newline). Only strings go into OCSF's string attributes; a field of another type, and
/// every field without an OCSF home, goes under `unmapped` with its CloudTrail name, as
/// written; the event's own members named like the provenance go under
/// `unmapped.event_fields` ([`super::members`]), and the provenance members follow. An event
/// without a readable `eventTime` takes the file name's time (else 0); one whose `eventName` is
/// not a string has `api.operation` `"Unknown"` and activity Other.
pub fn write_trail_ocsf(
    out: &mut Vec<u8>,
    event: &[u8],
    ordinal: u64,
    provenance: &TrailProvenance,
) -> Result<(), OcsfError> {
    let mut rest: Map<String, Value> =
        serde_json::from_slice(event).map_err(|e| OcsfError::NotObject(e.to_string()))?;
    // Kept as written too (OCSF's `time` has milliseconds only).
    let time = rest
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(epoch_ms)
        .or(provenance.file_time_ms)
        .unwrap_or(0);
    let event_name = take_str(&mut rest, "eventName");
    let event_source = take_str(&mut rest, "eventSource");
    // An empty id is no id: it stays under `unmapped`, and the record id stands in.
    let event_id = match rest.get("eventID") {
        Some(Value::String(id)) if !id.is_empty() => take_str(&mut rest, "eventID"),
        _ => None,
    };
    let request_id = take_str(&mut rest, "requestID");
    let region = take_str(&mut rest, "awsRegion");
    let recipient = take_str(&mut rest, "recipientAccountId");
    let api_version = take_str(&mut rest, "apiVersion");
    let source_ip = take_str(&mut rest, "sourceIPAddress");
    let user_agent = take_str(&mut rest, "userAgent");
    // A call failed when it has an error code, whatever its type (the code itself is typed).
    let failed = rest.get("errorCode").is_some_and(|c| !c.is_null());
    let error_code = take_str(&mut rest, "errorCode");
    let error_message = take_str(&mut rest, "errorMessage");
    let (actor, identity_rest) = actor(rest.remove("userIdentity"));
    if let Some(left) = identity_rest {
        rest.insert("userIdentity".to_string(), left);
    }
    let activity = activity_of(event_name.as_deref().unwrap_or(""));

    let mut api = Map::new();
    api.insert(
        "operation".into(),
        json!(event_name.unwrap_or_else(|| "Unknown".into())),
    );
    let mut service = Map::new();
    if let Some(source) = event_source {
        service.insert("name".into(), json!(source));
    }
    api.insert("service".into(), Value::Object(service));
    if let Some(uid) = request_id {
        api.insert("request".into(), json!({ "uid": uid }));
    }
    if error_code.is_some() || error_message.is_some() {
        let mut response = Map::new();
        if let Some(code) = &error_code {
            response.insert("error".into(), json!(code));
        }
        if let Some(message) = &error_message {
            response.insert("message".into(), json!(message));
        }
        api.insert("response".into(), Value::Object(response));
    }
    if let Some(version) = api_version {
        api.insert("version".into(), json!(version));
    }

    let mut src_endpoint = Map::new();
    if let Some(ip) = source_ip {
        let key = if ip.parse::<std::net::IpAddr>().is_ok() {
            "ip"
        } else {
            "domain"
        };
        src_endpoint.insert(key.into(), Value::String(ip));
    }

    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    if let Some(region) = region {
        cloud.insert("region".into(), json!(region));
    }
    if let Some(account) = recipient {
        cloud.insert(
            "account".into(),
            json!({ "uid": account, "type_id": 10, "type": "AWS Account" }),
        );
    }

    let mut metadata = Map::new();
    metadata.insert("version".into(), json!("1.1.0"));
    metadata.insert(
        "product".into(),
        json!({ "name": "Amazon Redshift", "vendor_name": "AWS" }),
    );
    // The event's id; an event without one is known by its record id.
    let uid = event_id
        .unwrap_or_else(|| String::from_utf8_lossy(&provenance.record_id(ordinal)).into_owned());
    metadata.insert("uid".into(), json!(uid));
    metadata.insert("log_name".into(), json!(super::LOG_TYPE));
    metadata.insert("profiles".into(), json!(["cloud"]));

    let mut top = Map::new();
    top.insert("activity_id".into(), json!(activity.id()));
    top.insert("activity_name".into(), json!(activity.name()));
    top.insert("category_uid".into(), json!(CATEGORY_UID));
    top.insert("category_name".into(), json!("Application Activity"));
    top.insert("class_uid".into(), json!(CLASS_UID));
    top.insert("class_name".into(), json!("API Activity"));
    top.insert("type_uid".into(), json!(CLASS_UID * 100 + activity.id()));
    top.insert(
        "type_name".into(),
        json!(format!("API Activity: {}", activity.name())),
    );
    top.insert("severity_id".into(), json!(SEVERITY_ID));
    top.insert("severity".into(), json!("Informational"));
    top.insert("status_id".into(), json!(if failed { 2 } else { 1 }));
    top.insert(
        "status".into(),
        json!(if failed { "Failure" } else { "Success" }),
    );
    if let Some(code) = error_code {
        top.insert("status_code".into(), json!(code));
    }
    if let Some(message) = error_message {
        top.insert("status_detail".into(), json!(message));
    }
    top.insert("time".into(), json!(time));
    top.insert("metadata".into(), Value::Object(metadata));
    top.insert("cloud".into(), Value::Object(cloud));
    top.insert("api".into(), Value::Object(api));
    top.insert("actor".into(), actor);
    top.insert("src_endpoint".into(), Value::Object(src_endpoint));
    if let Some(agent) = user_agent {
        top.insert("http_request".into(), json!({ "user_agent": agent }));
    }

    // The event's members named like the provenance, apart (no name twice in `unmapped`).
    let reserved: Vec<String> = rest
        .keys()
        .filter(|k| super::members::is_reserved(k))
        .cloned()
        .collect();
    if !reserved.is_empty() {
        let mut own = Map::new();
        for key in reserved {
            if let Some(value) = rest.remove(&key) {
                own.insert(key, value);
            }
        }
        rest.insert(super::EVENT_FIELDS.into(), Value::Object(own));
    }

    // `top` and `rest` are maps of JSON values: serializing them cannot fail.
    let before = out.len();
    if serde_json::to_writer(&mut *out, &top).is_err() || out.pop() != Some(b'}') {
        out.truncate(before);
        return Err(OcsfError::NotObject("could not be written".into()));
    }
    out.extend_from_slice(b",\"unmapped\":");
    let at = out.len();
    if serde_json::to_writer(&mut *out, &rest).is_err() || out.pop() != Some(b'}') {
        out.truncate(before);
        return Err(OcsfError::NotObject("could not be written".into()));
    }
    if out.len() > at + 1 {
        out.push(b',');
    }
    provenance.write_fields(out, ordinal);
    out.extend_from_slice(b"}}");
    Ok(())
}

/// Appends a trail element that has no API Activity rendering (not JSON, over the event limit,
/// a number out of range, nested too deep, a key twice, no `eventSource`) as an OCSF Base Event
/// (class 0, activity Other), as the audit logs' `parse_error` records are: the reason in
/// `status_detail`, the text in `raw_data`, and under `unmapped` the provenance (its `id`, and
/// `metadata.uid`, with `-cut` for an element over the event limit) and `raw_bytes`,
/// `raw_xxh3`, `invalid_utf8`, `truncated` as in the `raw` record. `time` is the event's own `eventTime`
/// when it could be read, else the file name's time, else 0.
pub fn write_trail_error_ocsf(
    out: &mut Vec<u8>,
    error: &TrailError<'_>,
    event_time: Option<&str>,
    ordinal: u64,
    provenance: &TrailProvenance,
) {
    out.extend_from_slice(
        b"{\"metadata\":{\"version\":\"1.1.0\",\"product\":{\"name\":\"Amazon Redshift\",\
          \"vendor_name\":\"AWS\"},\"profiles\":[\"cloud\"],\"log_name\":",
    );
    write_str(out, super::LOG_TYPE);
    out.extend_from_slice(b",\"uid\":\"");
    out.extend_from_slice(&provenance.record_id(ordinal));
    if error.cut() {
        out.extend_from_slice(CUT_ID_SUFFIX.as_bytes());
    }
    out.extend_from_slice(b"\"},\"cloud\":{\"provider\":\"AWS\"");
    if let Some((account, region)) = &provenance.account_region {
        out.extend_from_slice(b",\"account\":{\"uid\":");
        write_str(out, account);
        out.extend_from_slice(b",\"type_id\":10,\"type\":\"AWS Account\"},\"region\":");
        write_str(out, region);
    }
    out.extend_from_slice(
        b"},\"class_uid\":0,\"class_name\":\"Base Event\",\"category_uid\":0,\
          \"activity_id\":99,\"activity_name\":\"Other\",\"type_uid\":99,\
          \"type_name\":\"Base Event: Other\",\"severity_id\":1,\"severity\":\"Informational\",\
          \"time\":",
    );
    let time = event_time
        .and_then(epoch_ms)
        .or(provenance.file_time_ms)
        .unwrap_or(0);
    write_int(out, time);
    out.extend_from_slice(b",\"status_detail\":");
    write_str(out, error.reason);
    out.extend_from_slice(b",\"raw_data\":");
    write_str(out, &error.text);
    out.extend_from_slice(b",\"unmapped\":{");
    provenance.write_fields_cut(out, ordinal, error.cut());
    error.write_flags(out);
    out.extend_from_slice(b"}}");
}

/// `actor` from `userIdentity`, and what of `userIdentity` has no OCSF home.
fn actor(identity: Option<Value>) -> (Value, Option<Value>) {
    let Some(Value::Object(mut id)) = identity else {
        return (json!({ "user": {} }), identity);
    };
    let mut user = Map::new();
    // OCSF's `type` is the caption of `type_id`; CloudTrail's own identity type stays with the
    // rest of `userIdentity` (unmapped), so nothing is lost.
    if let Some(kind) = id.get("type") {
        let (type_id, caption) = match kind.as_str() {
            Some("IAMUser") => (1, "User"),
            Some("Root") => (2, "Admin"),
            Some("AWSService") => (3, "System"),
            _ => (99, "Other"),
        };
        user.insert("type_id".into(), json!(type_id));
        user.insert("type".into(), json!(caption));
    }
    if let Some(uid) = take_str(&mut id, "principalId") {
        user.insert("uid".into(), json!(uid));
    }
    if let Some(arn) = take_str(&mut id, "arn") {
        user.insert("uid_alt".into(), json!(arn));
    }
    if let Some(account) = take_str(&mut id, "accountId") {
        user.insert(
            "account".into(),
            json!({ "uid": account, "type_id": 10, "type": "AWS Account" }),
        );
    }
    let access_key = take_str(&mut id, "accessKeyId");
    if let Some(key) = &access_key {
        user.insert("credential_uid".into(), json!(key));
    }
    let invoked_by = take_str(&mut id, "invokedBy");
    let mut session = Map::new();
    let mut issuer_name = None;
    if let Some(mut context) = take_obj(&mut id, "sessionContext") {
        if let Some(mut attributes) = take_obj(&mut context, "attributes") {
            if let Some(created) = attributes.remove("creationDate") {
                match created.as_str().and_then(epoch_ms) {
                    Some(ms) => {
                        session.insert("created_time".into(), json!(ms));
                    }
                    None => {
                        attributes.insert("creationDate".into(), created);
                    }
                }
            }
            match attributes.remove("mfaAuthenticated") {
                Some(Value::String(s)) if s == "true" || s == "false" => {
                    session.insert("is_mfa".into(), json!(s == "true"));
                }
                Some(other) => {
                    attributes.insert("mfaAuthenticated".into(), other);
                }
                None => {}
            }
            if !attributes.is_empty() {
                context.insert("attributes".into(), Value::Object(attributes));
            }
        }
        if let Some(mut issuer) = take_obj(&mut context, "sessionIssuer") {
            if let Some(arn) = take_str(&mut issuer, "arn") {
                session.insert("issuer".into(), json!(arn));
            }
            issuer_name = take_str(&mut issuer, "userName");
            if !issuer.is_empty() {
                context.insert("sessionIssuer".into(), Value::Object(issuer));
            }
        }
        if !context.is_empty() {
            id.insert("sessionContext".into(), Value::Object(context));
        }
    }
    // The name: an IAM user's own, else the role a session was issued from, else the service.
    let name = take_str(&mut id, "userName")
        .or(issuer_name)
        .or_else(|| invoked_by.clone());
    if let Some(name) = name {
        user.insert("name".into(), json!(name));
    }
    if !session.is_empty() {
        if let Some(key) = access_key {
            session.insert("credential_uid".into(), json!(key));
        }
    }
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user));
    if !session.is_empty() {
        actor.insert("session".into(), Value::Object(session));
    }
    if let Some(by) = invoked_by {
        actor.insert("invoked_by".into(), json!(by));
    }
    let rest = (!id.is_empty()).then_some(Value::Object(id));
    (Value::Object(actor), rest)
}
