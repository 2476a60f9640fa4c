//! Connection and user activity log lines for the session join's tests (files and CloudWatch
//! Logs batches alike), at times near now so the shards' checks (no time after now) pass.

use redshift_audit_forwarder::time::{now_ms, rfc3339_ms};

pub const HOUR_MS: i64 = 3_600_000;

/// The start of the hour before now: its logs are written, and still within their wait.
pub fn last_hour() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(HOUR_MS) - HOUR_MS
}

pub fn rfc3339(ms: i64) -> String {
    rfc3339_ms(ms)
}

/// One connection log line (no newline) of user alice on dev, with TLS and an application;
/// no `port` is `[local]`'s empty port.
pub fn conn_line(event: &str, at: i64, host: &str, port: Option<i64>, pid: i64, us: i64) -> String {
    let port = port.map_or(String::new(), |p| p.to_string());
    format!(
        "{event} |{}|{host} |{port} |{pid}|dev |alice |password |{us}|TLSv1.2 |ECDHE |0| | | |psql |Linux |libpq |none |0|sid-{pid}",
        super::log_time::log_time(at)
    )
}

/// A user activity log record (no newline) of `pid` at `at` (whole seconds): `select <xid>`.
pub fn statement_line(at: i64, pid: i64, xid: i64) -> String {
    let t = &rfc3339(at)[..19];
    format!("'{t}Z UTC [ db=dev user=alice pid={pid} userid=100 xid={xid} ]' LOG: select {xid}")
}
