//! Any bytes through the userlog parser (gzip-detected, with and without a small record limit)
//! and the JSON writer: see `redshift_audit_forwarder_fuzz::parse_and_write`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redshift_audit_forwarder::logs::LogType;

fuzz_target!(|data: &[u8]| {
    redshift_audit_forwarder_fuzz::parse_and_write(LogType::UserLog, data);
});
