//! CloudTrail object keys: which account, region and time a trail file holds, taken from its
//! file name, and which keys under a trail are not event files (digests, Insights).
//!
//! `[prefix/]AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`
//! (FORMAT.md, "Redshift API calls in CloudTrail"). Like `crate::key`, only the last segment
//! decides; the folders give the organization ID when there is one, and say "digest" or
//! "Insights" when the name alone would not.

/// The service field of an event file name (`<account>_CloudTrail_...`).
const EVENTS: &str = "CloudTrail";
/// The service field, and folder, of digest files (integrity hashes, no events).
const DIGEST: &str = "CloudTrail-Digest";
/// The service field, and folder, of CloudTrail Insights files (anomaly events, not API calls).
const INSIGHT: &str = "CloudTrail-Insight";

/// What a CloudTrail event file's key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFileName {
    /// 12-digit account whose events the file holds.
    pub account_id: String,
    /// Region the events happened in.
    pub region: String,
    /// The name's timestamp as RFC 3339 UTC, e.g. `2024-03-01T00:55:00Z`.
    pub file_time: String,
    /// `o-...` when the key sits under an organization trail's `AWSLogs/<org-id>/<account>/`.
    pub organization_id: Option<String>,
}

/// The kinds of CloudTrail files that hold no API events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEvents {
    /// `CloudTrail-Digest/`: hashes of the event files, for integrity validation.
    Digest,
    /// `CloudTrail-Insight/`: unusual-activity summaries.
    Insight,
}

impl NotEvents {
    pub fn as_str(self) -> &'static str {
        match self {
            NotEvents::Digest => "a CloudTrail digest file (integrity hashes, no events)",
            NotEvents::Insight => "a CloudTrail Insights file (activity summaries, not API calls)",
        }
    }
}

/// Why a key is not a CloudTrail event file. Retrying never helps: the key itself says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailKeyError {
    /// Expected under a trail; the usual one-line "left out" reason.
    #[error("{key:?} is {}", kind.as_str())]
    NotEvents { key: String, kind: NotEvents },
    #[error("key {key:?} has no file name (it is empty or ends with '/')")]
    NoFileName { key: String },
    #[error(
        "{name:?} is not a CloudTrail file name: expected \
         <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json[.gz] ({reason})"
    )]
    Shape { name: String, reason: &'static str },
    #[error("{name:?}: account {account:?} is not 12 digits")]
    BadAccount { name: String, account: String },
    #[error("{name:?}: region {region:?} does not look like an AWS region (e.g. us-east-1)")]
    BadRegion { name: String, region: String },
    #[error("{name:?}: file time {time:?} is not a valid YYYYMMDDTHHmmZ: {reason}")]
    BadTime {
        name: String,
        time: String,
        reason: &'static str,
    },
}

impl TrailKeyError {
    /// True for keys a trail writes that are not event files (skip them quietly, with the reason).
    pub fn is_not_events(&self) -> bool {
        matches!(self, TrailKeyError::NotEvents { .. })
    }
}

/// Parses a CloudTrail key or bare file name. The account, region and time come from the file
/// name; `.json.gz` or `.json` (a local plain copy) ends it.
pub fn parse_trail_key(key: &str) -> Result<TrailFileName, TrailKeyError> {
    let (folders, name) = key.rsplit_once('/').unwrap_or(("", key));
    if name.is_empty() {
        return Err(TrailKeyError::NoFileName {
            key: key.to_string(),
        });
    }
    let not_events = |kind| TrailKeyError::NotEvents {
        key: key.to_string(),
        kind,
    };
    for folder in folders.split('/') {
        match folder {
            DIGEST => return Err(not_events(NotEvents::Digest)),
            INSIGHT => return Err(not_events(NotEvents::Insight)),
            _ => {}
        }
    }
    let shape = |reason| TrailKeyError::Shape {
        name: name.to_string(),
        reason,
    };
    let stem = name
        .strip_suffix(".json.gz")
        .or_else(|| name.strip_suffix(".json"))
        .ok_or_else(|| shape("it does not end in .json.gz or .json"))?;
    // Account, service, region and time never contain '_'; the unique part has no meaning.
    let mut fields = stem.splitn(5, '_');
    let account = fields.next().unwrap_or("");
    let service = fields
        .next()
        .ok_or_else(|| shape("too few '_'-separated fields"))?;
    match service {
        EVENTS => {}
        DIGEST => return Err(not_events(NotEvents::Digest)),
        INSIGHT => return Err(not_events(NotEvents::Insight)),
        _ => return Err(shape("the second field is not CloudTrail")),
    }
    let (Some(region), Some(time), Some(unique)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(shape("too few '_'-separated fields"));
    };
    if unique.is_empty() || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(shape("the unique part is empty or not letters and digits"));
    }
    if !is_account_id(account) {
        return Err(TrailKeyError::BadAccount {
            name: name.to_string(),
            account: account.to_string(),
        });
    }
    if !is_region(region) {
        return Err(TrailKeyError::BadRegion {
            name: name.to_string(),
            region: region.to_string(),
        });
    }
    let file_time = compact_time_rfc3339(time).map_err(|reason| TrailKeyError::BadTime {
        name: name.to_string(),
        time: time.to_string(),
        reason,
    })?;
    Ok(TrailFileName {
        account_id: account.to_string(),
        region: region.to_string(),
        file_time,
        organization_id: organization_id(folders, account),
    })
}

/// Whether a key's file name has CloudTrail's service field (`<account>_CloudTrail_...`): then
/// the trail parser's reason (a bad time, account or region) says more than "not a Redshift
/// audit log file name".
pub fn has_trail_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.split('_').nth(1) == Some(EVENTS)
}

/// `AWSLogs/<o-...>/<account>/CloudTrail/...`: the organization of an organization trail.
fn organization_id(folders: &str, account: &str) -> Option<String> {
    let parts: Vec<&str> = folders.split('/').collect();
    parts.windows(4).find_map(|w| {
        (w[0] == "AWSLogs" && w[1].starts_with("o-") && w[2] == account && w[3] == EVENTS)
            .then(|| w[1].to_string())
    })
}

/// Same rule as `crate::key`'s (kept private there): `<2 letters>(-<letters>)+-<digits>`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [first, middle @ .., last] = &parts[..] else {
        return false;
    };
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    first.len() == 2
        && lower(first)
        && !middle.is_empty()
        && middle.iter().all(|p| lower(p))
        && !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYYMMDDTHHmmZ` to `YYYY-MM-DDTHH:mm:00Z`, checking the calendar.
fn compact_time_rfc3339(time: &str) -> Result<String, &'static str> {
    const SHAPE: &[u8; 14] = b"00000000T0000Z";
    let b = time.as_bytes();
    if b.len() != SHAPE.len()
        || !b.iter().zip(SHAPE).all(|(&c, &p)| {
            if p == b'0' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
    {
        return Err("expected 8 digits, 'T', 4 digits, 'Z'");
    }
    let n = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (year, month, day, hour, minute) = (n(0..4), n(4..6), n(6..8), n(9..11), n(11..13));
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day == 0 || day > crate::time::days_in_month(year, month) {
        return Err("day out of range for the month");
    }
    if hour > 23 {
        return Err("hour out of range");
    }
    if minute > 59 {
        return Err("minute out of range");
    }
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z"
    ))
}
