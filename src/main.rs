use std::process::ExitCode;

use clap::Parser;
use redshift_audit_forwarder::cli::{run, tokio_runtime, Cli};

/// The variable the Lambda runtime sets: without a command, its presence means "serve events".
const LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

fn main() -> ExitCode {
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
