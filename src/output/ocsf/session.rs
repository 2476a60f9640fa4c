//! What the session join (`crate::sessions`) adds to a Datastore Activity event: the client as
//! `src_endpoint` and the session as `actor.session` (OCSF 1.1.0 has no `session` on the class
//! itself).

use std::net::IpAddr;

use super::epoch_ms;
use crate::output::json::{write_int, write_str};
use crate::output::Join;

/// `,"session":{"uid":…,"created_time":…}` inside `actor`, for a record whose session is known:
/// the connection log's `sessionid`, else its pid, as the connection log's own events name it.
pub(super) fn actor_session(out: &mut Vec<u8>, join: Join<'_>) {
    let Join::Found(session) = join else {
        return;
    };
    out.extend_from_slice(b",\"session\":{\"uid\":");
    match session.sessionid {
        Some(id) => write_str(out, id),
        None => {
            out.push(b'"');
            write_int(out, session.pid);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"created_time\":");
    write_int(out, epoch_ms(&session.start));
    out.push(b'}');
}

/// `,"src_endpoint":{…}`: `ip` when the session's host is an address, `hostname` otherwise
/// (`[local]`), and `port`; empty when no session is known.
pub(super) fn src_endpoint(out: &mut Vec<u8>, join: Join<'_>) {
    out.extend_from_slice(b",\"src_endpoint\":{");
    if let Join::Found(session) = join {
        let mut first = true;
        if let Some(host) = session.remotehost {
            let key: &[u8] = if host.parse::<IpAddr>().is_ok() {
                b"\"ip\":"
            } else {
                b"\"hostname\":"
            };
            out.extend_from_slice(key);
            write_str(out, host);
            first = false;
        }
        if let Some(port) = session.remoteport.filter(|n| (0..=65_535).contains(n)) {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"port\":");
            write_int(out, port);
        }
    }
    out.push(b'}');
}
