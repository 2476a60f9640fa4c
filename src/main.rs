use std::process::ExitCode;

use clap::Parser;
use redshift_audit_forwarder::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(command) => run(command),
        None => {
            eprintln!("no command given; see --help");
            ExitCode::from(2)
        }
    }
}
