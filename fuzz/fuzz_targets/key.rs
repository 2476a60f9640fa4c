//! Any text through the object key functions: see `redshift_audit_forwarder_fuzz::keys`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redshift_audit_forwarder_fuzz::keys(data);
});
