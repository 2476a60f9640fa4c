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

use super::TrailProvenance;
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

/// Why an event has no OCSF rendering; it goes out as a `parse_error` record instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcsfError {
    #[error("event is not a JSON object: {0}")]
    NotObject(String),
    #[error("event has no eventTime in YYYY-MM-DDTHH:MM:SSZ form")]
    NoTime,
}

/// Appends the event (a [`super::Kept::Event`]'s bytes) as one OCSF API Activity JSON object
/// (no newline). The provenance members go under `unmapped` next to the event's own leftovers.
pub fn write_trail_ocsf(
    out: &mut Vec<u8>,
    event: &[u8],
    ordinal: u64,
    provenance: &TrailProvenance,
) -> Result<(), OcsfError> {
    let mut rest: Map<String, Value> =
        serde_json::from_slice(event).map_err(|e| OcsfError::NotObject(e.to_string()))?;
    let mut take = |key: &str| rest.remove(key);
    let event_time = take("eventTime");
    let time = event_time
        .as_ref()
        .and_then(Value::as_str)
        .and_then(epoch_ms)
        .ok_or(OcsfError::NoTime)?;
    let event_name = take("eventName");
    let event_source = take("eventSource");
    let event_id = take("eventID");
    let request_id = take("requestID");
    let region = take("awsRegion");
    let recipient = take("recipientAccountId");
    let api_version = take("apiVersion");
    let source_ip = take("sourceIPAddress");
    let user_agent = take("userAgent");
    let error_code = take("errorCode");
    let error_message = take("errorMessage");
    let identity = take("userIdentity");
    let (actor, identity_rest) = actor(identity);
    if let Some(left) = identity_rest {
        rest.insert("userIdentity".to_string(), left);
    }
    let activity = activity_of(event_name.as_ref().and_then(Value::as_str).unwrap_or(""));
    let failed = error_code.is_some();

    let mut api = Map::new();
    api.insert("operation".into(), event_name.unwrap_or(Value::Null));
    api.insert("service".into(), json!({ "name": event_source }));
    if let Some(uid) = request_id {
        api.insert("request".into(), json!({ "uid": uid }));
    }
    if failed || error_message.is_some() {
        let mut response = Map::new();
        if let Some(code) = &error_code {
            response.insert("error".into(), code.clone());
        }
        if let Some(message) = &error_message {
            response.insert("message".into(), message.clone());
        }
        api.insert("response".into(), Value::Object(response));
    }
    if let Some(version) = api_version {
        api.insert("version".into(), version);
    }

    let mut src_endpoint = Map::new();
    if let Some(Value::String(ip)) = source_ip {
        let key = if ip.parse::<std::net::IpAddr>().is_ok() {
            "ip"
        } else {
            "domain"
        };
        src_endpoint.insert(key.into(), Value::String(ip));
    } else if let Some(other) = source_ip {
        rest.insert("sourceIPAddress".into(), other);
    }

    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    if let Some(region) = region {
        cloud.insert("region".into(), region);
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
    if let Some(uid) = event_id {
        metadata.insert("uid".into(), uid);
    }
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
        top.insert("status_code".into(), code);
    }
    if let Some(message) = error_message {
        top.insert("status_detail".into(), message);
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
    if let Some(time) = event_time {
        // Kept as written too: OCSF's `time` has milliseconds only.
        rest.insert("eventTime".into(), time);
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
    if let Some(uid) = id.remove("principalId") {
        user.insert("uid".into(), uid);
    }
    if let Some(arn) = id.remove("arn") {
        user.insert("uid_alt".into(), arn);
    }
    if let Some(account) = id.remove("accountId") {
        user.insert(
            "account".into(),
            json!({ "uid": account, "type_id": 10, "type": "AWS Account" }),
        );
    }
    let access_key = id.remove("accessKeyId");
    if let Some(key) = &access_key {
        user.insert("credential_uid".into(), key.clone());
    }
    let invoked_by = id.remove("invokedBy");
    let mut session = Map::new();
    let mut issuer_name = None;
    if let Some(Value::Object(mut context)) = id.remove("sessionContext") {
        if let Some(Value::Object(mut attributes)) = context.remove("attributes") {
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
        if let Some(Value::Object(mut issuer)) = context.remove("sessionIssuer") {
            if let Some(arn) = issuer.remove("arn") {
                session.insert("issuer".into(), arn);
            }
            issuer_name = issuer.remove("userName");
            if !issuer.is_empty() {
                context.insert("sessionIssuer".into(), Value::Object(issuer));
            }
        }
        if !context.is_empty() {
            id.insert("sessionContext".into(), Value::Object(context));
        }
    }
    // The name: an IAM user's own, else the role a session was issued from, else the service.
    let name = id
        .remove("userName")
        .or(issuer_name)
        .or_else(|| invoked_by.clone());
    if let Some(name) = name {
        user.insert("name".into(), name);
    }
    if !session.is_empty() {
        if let Some(key) = access_key {
            session.insert("credential_uid".into(), key);
        }
    }
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user));
    if !session.is_empty() {
        actor.insert("session".into(), Value::Object(session));
    }
    if let Some(by) = invoked_by {
        actor.insert("invoked_by".into(), by);
    }
    let rest = (!id.is_empty()).then_some(Value::Object(id));
    (Value::Object(actor), rest)
}
