use std::process::ExitCode;

use clap::Parser;
use redshift_audit_forwarder::cli::{run, tokio_runtime, Cli};

/// The variable the Lambda runtime sets: without a command, its presence means "serve events".
const LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Some(command) => run(command),
        None if std::env::var_os(LAMBDA_RUNTIME_API).is_some() => {
            let served = tokio_runtime()
                .map_err(lambda_runtime::Error::from)
                .and_then(|rt| rt.block_on(redshift_audit_forwarder::runtime::serve()));
            // A failure was already logged (as JSON) by `serve`.
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        None => {
            redshift_audit_forwarder::report::eprint(&format!(
                "no command given (and {LAMBDA_RUNTIME_API} is not set); see --help"
            ));
            ExitCode::from(2)
        }
    }
}

/// Bytes below which glibc serves an allocation from its heaps, not from a fresh `mmap`: where
/// glibc's own sliding threshold ends (its maximum on 64-bit targets).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free bytes glibc keeps at the top of a heap before it gives them back to the system: twice
/// the above, as glibc's sliding threshold sets it.
const TRIM_THRESHOLD: i32 = 64 << 20;

/// The pipeline allocates and frees buffers of a few hundred KB to a few MB all the time
/// (Parquet pages and their compressed copies, a zstd context per column chunk, request bodies,
/// rendered batches). Until glibc's sliding thresholds have grown to the sizes in use, it maps
/// the larger ones fresh, unmaps them when freed and gives freed memory at the top of its heaps
/// back soon after: the lake's encoding thread kept faulting in and zeroing pages for every row
/// group (system time of `parse --format parquet` on 1 GB: 0.7 to 1.1 s, with this 0.3 to
/// 0.5 s). This starts where the sliding thresholds end. Smaller fixed thresholds (4 or 8 MiB
/// mapped, 32 MiB kept) cost the packed Firehose path 0.5 s of CPU on 1 GB instead: its 5 MB
/// request bodies were mapped again for every call. docs/SECURITY_LAKE.md, "Measurements".
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets two of the allocator's parameters; it is called before any
    // thread is started, and glibc takes its own lock for it anyway.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
