//! Start-up wiring, done once: settings, AWS clients, the handler, the ledger and the backfill;
//! then the Lambda runtime loop, one `invoke` of the handler on an event file, or one `backfill`.

use crate::sessions::state::SessionStore;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::aws::lake::LakeBuckets;
use crate::aws::{self, AuditBucket, Clients, FirehoseSink, StateBucket};
use crate::backfill::{Backfill, RunOptions};
use crate::doctor::Doctor;
use crate::events::BackfillRequest;
use crate::forward::Forwarder;
use crate::handler::{Context, Handler, HandlerError};
use crate::ledger::Ledger;
use crate::metrics::{Metrics, Out};
use crate::pipeline::Output;
use crate::ports::{Clock, SystemClock};
use crate::progress::Progress;
use crate::settings::Settings;
use crate::sink::destinations::Destinations;
use crate::sink::lake::LakeSink;

mod targets;
pub use targets::Target;

/// What the deployed handler sends to: Firehose, the Security Lake, or both (`DESTINATIONS`).
pub type LiveSink = Destinations<FirehoseSink, LakeSink<LakeBuckets>>;

/// The handler as deployed: S3 in, Firehose and/or the lake out.
pub type LiveHandler = Handler<AuditBucket, Box<dyn Fn() -> LiveSink + Send + Sync>>;

/// The deployed handler and the state it works with.
pub struct Live {
    pub settings: Settings,
    pub handler: LiveHandler,
    /// `None` without a state bucket (neither `STATE_BUCKET` nor `AUDIT_BUCKET`).
    pub ledger: Option<Ledger>,
    /// `None` without `AUDIT_BUCKET` or a state bucket.
    pub backfill: Option<Backfill>,
    /// Answers `{"doctor": {}}`; set by [`build_live`].
    pub doctor: Option<Doctor>,
}

impl Live {
    /// The invocation context: this ledger and backfill, and the deadline if any.
    pub fn context(&self, deadline_ms: Option<i64>) -> Context<'_> {
        Context {
            ledger: self.ledger.as_ref(),
            backfill: self.backfill.as_ref(),
            deadline_ms,
            doctor: self.doctor.as_ref(),
        }
    }
}

/// Reads and validates the settings and builds the clients and the handler. Every problem with
/// the settings is reported here, at start-up, not halfway through an invocation.
pub async fn build_handler() -> Result<(Settings, LiveHandler), String> {
    build_live().await.map(|live| (live.settings, live.handler))
}

/// [`build_handler`] with the ledger and the backfill.
pub async fn build_live() -> Result<Live, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let clients = aws::clients_from_config(&base, &settings)
        .await
        .map_err(|e| e.to_string())?;
    let mut live = live_from(settings, &clients);
    targets::queue_from_settings(&base, &mut live);
    live.doctor = Some(crate::diagnose::doctor_for(
        &base,
        &live.settings,
        &clients,
        Vec::new(),
    ));
    Ok(live)
}

/// The handler, ledger and backfill from settings and clients already built (tests pass
/// clients for moto).
pub fn live_from(settings: Settings, clients: &Clients) -> Live {
    let ledger = clients.state.clone().map(ledger_in);
    let backfill = match (&settings.audit_bucket, &ledger) {
        (Some(bucket), Some(ledger)) => Some(Backfill {
            bucket: bucket.clone(),
            prefix: settings.audit_prefix.clone(),
            start_time_ms: settings
                .backfill_start_time
                .as_ref()
                .map(|t| t.unix_seconds * 1000),
            lookback_days: settings.backfill_lookback_days,
            ledger: ledger.clone(),
            list: Arc::new(clients.audit.clone()),
            clock: Arc::new(SystemClock),
            queue: None,
        }),
        _ => None,
    };
    let (firehose, stream, pack) = (
        clients.firehose.clone(),
        settings.delivery_stream.clone(),
        settings.pack_records,
    );
    let (to_firehose, lake) = (settings.destinations.firehose, clients.lake.clone());
    let make_sink: Box<dyn Fn() -> LiveSink + Send + Sync> = Box::new(move || {
        let firehose = || FirehoseSink::new(firehose.clone(), stream.clone(), pack);
        match &lake {
            Some((buckets, locations)) => {
                let lake = LakeSink::new(Arc::new(buckets.clone()), locations.clone());
                if to_firehose {
                    // Records are split for Firehose: the lake joins their parts back.
                    Destinations::Both(firehose(), lake.with_parts_joined())
                } else {
                    Destinations::Lake(lake)
                }
            }
            None => Destinations::Firehose(firehose()),
        }
    });
    let mut forwarder = Forwarder::new(settings.filter(), clients.audit.clone(), make_sink);
    forwarder.output = Output {
        format: settings.output_format,
        redact: settings.redact_secrets,
        max_expansion: settings.max_expansion,
    };
    // Lambda sends stdout to CloudWatch Logs as it is; `invoke` and `backfill` use stderr.
    forwarder.metrics = Metrics::from_settings(&settings, Out::Stdout);
    // CloudWatch Logs batches do not name their region: the function's (Firehose's) it is.
    forwarder.region = clients.firehose.config().region().map(|r| r.to_string());
    forwarder.max_attempts = settings.max_attempts;
    // The session join keeps its index beside the ledger.
    forwarder.sessions = clients
        .state
        .clone()
        .filter(|_| settings.sessions.join)
        .map(|state| {
            let prefix = state.prefix.clone();
            SessionStore::new(
                Arc::new(state),
                &prefix,
                settings.sessions.wait,
                Arc::new(SystemClock),
            )
        });
    Live {
        settings,
        handler: Handler { forwarder },
        ledger,
        backfill,
        doctor: None,
    }
}

/// The ledger in the S3 state bucket.
pub fn ledger_in(state: StateBucket) -> Ledger {
    let prefix = state.prefix.clone();
    Ledger::new(Arc::new(state), &prefix)
}

/// Serves Lambda events until the runtime stops the process.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    // Lambda's own set-up (log level and format from Lambda's settings), through the masking
    // writer rather than straight to stdout.
    lambda_runtime::tracing::init_default_subscriber_with_writer(crate::report::Stderr);
    let live = build_live().await.map_err(|e| {
        tracing::error!(error = %e, "start-up failed");
        e
    })?;
    let live = &live;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            // The walk and the live path stop before this instant, with their state saved.
            let deadline_ms = usable_deadline(event.context.deadline, crate::time::now_ms());
            let context = live.context(deadline_ms);
            live.handler
                .handle_with(&event.payload, context)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, retryable = e.is_retryable(), "invocation failed");
                    diagnostic(&e)
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
            crate::report::eprint(&format!("{}: {e}", path.display()));
            return ExitCode::FAILURE;
        }
    };
    let mut live = match build_live().await {
        Ok(built) => built,
        Err(e) => {
            crate::report::eprint(&e.to_string());
            return ExitCode::from(2);
        }
    };
    live.handler.forwarder.metrics = Metrics::from_settings(&live.settings, Out::Stderr);
    match live.handler.handle_with(&event, live.context(None)).await {
        Ok(response) => {
            println!("{}", crate::report::clean_document(&response));
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::report::eprint(&format!("{}: {e}", path.display()));
            ExitCode::FAILURE
        }
    }
}

/// `backfill [--since T] [--dry-run] [--max-duration S]`: one walk. Dry-run lines (key, size,
/// last-modified) and the summary go to stdout as JSON lines; progress goes to stderr. Exits 0
/// when the walk ended normally (also when another walker holds the lease), 1 when objects or
/// the walk failed, 2 when the settings do not allow a backfill.
pub async fn backfill(
    request: BackfillRequest,
    max_duration: Option<Duration>,
    target: Target,
) -> ExitCode {
    init_stderr_logging();
    let mut live = match build_live().await {
        Ok(built) => built,
        Err(e) => {
            crate::report::eprint(&e.to_string());
            return ExitCode::from(2);
        }
    };
    live.handler.forwarder.metrics = Metrics::from_settings(&live.settings, Out::Stderr);
    let Some(walk) = &live.backfill else {
        let reason = live
            .settings
            .require_audit_bucket()
            .and_then(|_| live.settings.require_state_bucket())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no state bucket".into());
        crate::report::eprint(&format!("cannot backfill: {reason}"));
        return ExitCode::from(2);
    };
    let deadline_ms = max_duration.map(|d| {
        SystemClock
            .now_ms()
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    let options = match RunOptions::from_request(&request, deadline_ms) {
        Ok(options) => options,
        Err(e) => {
            crate::report::eprint(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let mut progress = Progress::new();
    let ran = match targets::run(&live, walk, &options, target, &mut |event| {
        progress.on(event)
    })
    .await
    {
        Ok(ran) => ran,
        Err(e) => {
            crate::report::eprint(&e.to_string());
            return ExitCode::from(2);
        }
    };
    progress.done();
    match ran {
        Ok(summary) => {
            println!("{}", crate::report::clean_document(&summary));
            if summary.is_failure() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            crate::report::eprint(&format!(
                "backfill failed (retryable: {}): {e}",
                e.is_retryable()
            ));
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
        .with_writer(crate::report::Stderr)
        .try_init();
}

/// The invocation's deadline in ms since the epoch, when it is one: Lambda always sends a future
/// instant, but local emulators may send something else (`cargo lambda watch` sends the timeout
/// itself, 600000); a deadline already past when the invocation starts is ignored with a
/// warning rather than stopping every object before it starts.
pub fn usable_deadline(deadline_ms: u64, now_ms: i64) -> Option<i64> {
    let deadline = i64::try_from(deadline_ms).ok()?;
    if deadline > now_ms {
        Some(deadline)
    } else {
        tracing::warn!(
            deadline_ms,
            now_ms,
            "the invocation's deadline is already past; ignoring it"
        );
        None
    }
}

/// How a failed invocation reaches Lambda: an error type that tells retryable failures (a
/// later attempt can succeed: throttling, a dropped connection, a walk cut short) from final
/// ones (a malformed event, a missing object, a refused stream), and the message.
pub fn diagnostic(error: &HandlerError) -> lambda_runtime::Diagnostic {
    let kind = if error.is_retryable() {
        "Retryable"
    } else {
        "NotRetryable"
    };
    lambda_runtime::Diagnostic {
        error_type: format!("{kind}.{}", error.kind()),
        error_message: crate::mask::clean(&error.to_string(), crate::mask::FIELD_BYTES).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventError;

    #[test]
    fn a_deadline_in_the_past_is_ignored_a_future_one_kept() {
        let now = 1_796_093_170_095;
        assert_eq!(usable_deadline(600_000, now), None);
        assert_eq!(usable_deadline(u64::MAX, now), None);
        assert_eq!(
            usable_deadline(now as u64 + 30_000, now),
            Some(now + 30_000)
        );
    }

    #[test]
    fn lambda_sees_whether_a_retry_can_help_in_the_error_type() {
        let malformed = HandlerError::Event(EventError::Missing {
            path: "Records[0].s3.object.key".into(),
        });
        let d = diagnostic(&malformed);
        assert_eq!(d.error_type, "NotRetryable.MalformedEvent");
        assert!(d.error_message.contains("Records[0].s3.object.key missing"));
        let walk = HandlerError::BackfillObjects {
            failed: 2,
            first: "s3://b/k: reset".into(),
        };
        let d = diagnostic(&walk);
        assert_eq!(d.error_type, "Retryable.BackfillObjectsFailed");
        assert!(d.error_message.contains("2 objects failed"));
    }
}
