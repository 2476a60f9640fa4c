//! Start-up wiring, done once: settings, AWS clients and the handler; then either the Lambda
//! runtime loop or one `invoke` of the handler on an event file.

use std::process::ExitCode;

use serde_json::Value;

use crate::handler::Handler;
use crate::settings::{self, AuditBucket, Settings};
use crate::sink::FirehoseSink;

/// The handler as deployed: S3 in, Firehose out.
pub type LiveHandler = Handler<AuditBucket, Box<dyn Fn() -> FirehoseSink + Send + Sync>>;

/// Reads and validates the settings and builds the clients and the handler. Every problem with
/// the settings is reported here, at start-up, not halfway through an invocation.
pub async fn build_handler() -> Result<(Settings, LiveHandler), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let clients = settings::clients(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let (firehose, stream, pack) = (
        clients.firehose.clone(),
        settings.delivery_stream.clone(),
        settings.pack_records,
    );
    let make_sink: Box<dyn Fn() -> FirehoseSink + Send + Sync> =
        Box::new(move || FirehoseSink::new(firehose.clone(), stream.clone(), pack));
    let handler = Handler {
        filter: settings.filter(),
        fetch: clients.audit.clone(),
        make_sink,
    };
    Ok((settings, handler))
}

/// Serves Lambda events until the runtime stops the process.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (_, handler) = build_handler().await.map_err(|e| {
        tracing::error!(error = %e, "start-up failed");
        e
    })?;
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            handler.handle(&event.payload).await.map_err(|e| {
                tracing::error!(error = %e, "invocation failed");
                lambda_runtime::Error::from(e.to_string())
            })
        },
    ))
    .await
}

/// `invoke EVENT.json`: the handler once; its response on stdout, logs on stderr.
pub async fn invoke(path: &std::path::Path) -> ExitCode {
    init_stderr_logging();
    let event: Value = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}")))
    {
        Ok(event) => event,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let (_, handler) = match build_handler().await {
        Ok(built) => built,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match handler.handle(&event).await {
        Ok(response) => {
            println!("{response}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Logs for command-line runs: JSON lines on stderr, level from `RUST_LOG` (default info).
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The current time as RFC 3339 UTC with milliseconds, for log lines written by hand.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// (year, month, day) from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(now_rfc3339().len(), 24);
    }
}
