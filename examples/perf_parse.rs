//! `parse` without the rest of the binary, for quick profiling builds:
//! `cargo build --profile profiling --example perf_parse` then `perf_parse [--format F] FILE...`.

use std::io::Write;

use redshift_audit_forwarder::cli::parse_path;
use redshift_audit_forwarder::pipeline::{Format, Output};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut output = Output::default();
    if args.first().map(String::as_str) == Some("--format") && args.len() > 1 {
        output.format = args[1].parse::<Format>().expect("format");
        args.drain(..2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args {
        if let Err(e) = parse_path(std::path::Path::new(path), None, output, &mut out) {
            eprintln!("{path}: {e}");
        }
    }
    let _ = out.flush();
}
