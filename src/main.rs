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

/// Bytes below which glibc serves an allocation from its heaps, not from a fresh `mmap`.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free bytes glibc keeps at the top of a heap before it gives them back to the system.
const TRIM_THRESHOLD: i32 = 32 << 20;

/// The pipeline allocates and frees buffers of a few hundred KB to a few MB all the time
/// (Parquet pages and their compressed copies, a zstd context per column chunk, rendered
/// batches). By default glibc maps the larger ones fresh and unmaps them when freed, or trims
/// its heap right after, so the next buffer of that size starts on pages the kernel has to fault
/// in and zero again. Buffers up to 4 MiB now come from the heaps, which keep up to 32 MiB free
/// before giving memory back; larger ones (a hostile line of many MB) are still mapped, so they
/// grow without copies and go back at once. Measured in docs/SECURITY_LAKE.md ("Measurements").
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
