//! Settings from the environment (DESIGN.md, "Settings"), validated once at start-up. No AWS call
//! happens here: the clients and the audit bucket's region detection live with the AWS code.
//!
//! [`Settings::from_vars`] is a list of reads, one a variable in the table's order, each
//! required, optional or defaulted and each with its parser (`settings/parse.rs`). The reads
//! collect every problem and fail with one message listing them all, one line each, so a
//! deployment is fixed in one round.
//! An empty (or blank) value counts as unset everywhere, because SAM passes empty parameters
//! through. A secret's value never appears in an error or in `Debug` output.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::events::Filter;
use crate::logs::LogType;

pub mod lake;
mod parse;
pub mod queue;
mod sessions;
pub use sessions::{SessionSettings, DEFAULT_SESSION_WAIT, MAX_SESSION_WAIT};

/// The value parsers the command line shares with the settings.
pub use parse::{boolean as parse_bool, output_format as parse_output_format};

/// An RFC 3339 start time bounded as `BACKFILL_START_TIME` is: from 2012-01-01 to `now_ms`
/// (plus the clock skew). The backfill event's `since` and `--since` obey the same rule.
pub fn bounded_start_time(text: &str, now_ms: i64) -> Result<StartTime, String> {
    parse::start_time(now_ms)(text)
}

/// A start time as `BACKFILL_START_TIME` takes it (RFC 3339, from 2012 to now plus the clock
/// skew), for `backfill --since`.
pub fn parse_start_time(text: &str) -> Result<StartTime, String> {
    parse::start_time(crate::time::now_ms())(text)
}

pub use crate::time::StartTime;

/// The environment variables, as DESIGN.md's table names them: one constant each, named as the
/// variable, and [`var::ALL`] in the table's order, which is also the order problems are
/// reported in.
pub mod var {
    macro_rules! variables {
        ($($name:ident),* $(,)?) => {
            $(pub const $name: &str = stringify!($name);)*
            /// Every variable, in the table's order.
            pub const ALL: &[&str] = &[$($name),*];
        };
    }

    variables![
        DELIVERY_STREAM,
        LOG_TYPES,
        CLOUDTRAIL_EVENT_SOURCES,
        AUDIT_BUCKET,
        AUDIT_PREFIX,
        AUDIT_BUCKET_REGION,
        SOURCE_ROLE_ARN,
        SOURCE_EXTERNAL_ID,
        SOURCE_ACCESS_KEY_ID,
        SOURCE_SECRET_ACCESS_KEY,
        EXPECTED_BUCKET_OWNER,
        ALLOWED_BUCKETS,
        BACKFILL_START_TIME,
        BACKFILL_LOOKBACK_DAYS,
        BACKFILL_QUEUE_URL,
        STATE_BUCKET,
        STATE_PREFIX,
        OUTPUT_FORMAT,
        REDACT_SECRETS,
        METRICS,
        METRICS_NAMESPACE,
        METRICS_CLUSTER_DIMENSION,
        STALE_AFTER,
        PACK_RECORDS,
        DESTINATIONS,
        SECURITY_LAKE_SOURCES,
        SECURITY_LAKE_EXTERNAL_ID,
        MAX_ATTEMPTS,
        MAX_EXPANSION,
        SESSION_JOIN,
        SESSION_WAIT,
    ];
}

/// The `LOG_TYPES` name of CloudTrail trail files (not a Redshift [`LogType`]).
pub const CLOUDTRAIL: &str = "cloudtrail";
/// `CLOUDTRAIL_EVENT_SOURCES` when unset: the services Redshift's API calls come from.
pub const DEFAULT_CLOUDTRAIL_EVENT_SOURCES: [&str; 4] = [
    "redshift.amazonaws.com",
    "redshift-serverless.amazonaws.com",
    "redshift-data.amazonaws.com",
    "sqlworkbench.amazonaws.com",
];
/// `STATE_PREFIX` when unset (DESIGN.md).
pub const DEFAULT_STATE_PREFIX: &str = "redshift-audit-forwarder/";
/// `BACKFILL_LOOKBACK_DAYS` when unset (DESIGN.md).
pub const DEFAULT_LOOKBACK_DAYS: u32 = 1;
/// Largest `BACKFILL_LOOKBACK_DAYS`: a year (a leap one) of re-listing is already far more than
/// any late file needs; more is a typo.
pub const MAX_LOOKBACK_DAYS: u32 = 366;
/// `METRICS_NAMESPACE` when unset (DESIGN.md).
pub const DEFAULT_METRICS_NAMESPACE: &str = "RedshiftAuditForwarder";
/// `STALE_AFTER` when unset (DESIGN.md).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(3 * 3600);
/// Largest `STALE_AFTER`: a log type silent for a year has long stopped; more is a typo.
pub const MAX_STALE_AFTER: Duration = Duration::from_secs(366 * 86_400);
/// `MAX_ATTEMPTS` when unset, and its range.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=100;
/// `MAX_EXPANSION` when unset ([`crate::decode::DEFAULT_MAX_EXPANSION`]), and its range: below
/// 50 a real, repetitive log could be stopped; above 100,000 nothing is.
pub const DEFAULT_MAX_EXPANSION: u32 = crate::decode::DEFAULT_MAX_EXPANSION;
pub const MAX_EXPANSION_RANGE: RangeInclusive<u32> = 50..=100_000;

/// The validated settings. Build with [`Settings::from_env`] or [`Settings::from_vars`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DELIVERY_STREAM`: the Firehose stream's name; empty when `DESTINATIONS` leaves
    /// Firehose out.
    pub delivery_stream: String,
    /// `LOG_TYPES`' Redshift log types, in the order given, without duplicates; empty only when
    /// `LOG_TYPES` names `cloudtrail` alone.
    pub log_types: Vec<LogType>,
    /// `LOG_TYPES` names `cloudtrail`: forward Redshift's API calls from trail files.
    pub cloudtrail: bool,
    /// `CLOUDTRAIL_EVENT_SOURCES`: the `eventSource` values kept from trail files, in the order
    /// given, without duplicates; never empty.
    pub cloudtrail_event_sources: Vec<String>,
    /// `AUDIT_BUCKET`; live events name their own bucket, the backfill needs this one.
    pub audit_bucket: Option<String>,
    /// `AUDIT_PREFIX` without a trailing `/`; empty for the whole bucket.
    pub audit_prefix: String,
    /// `AUDIT_BUCKET_REGION`; unset means the AWS code detects it.
    pub audit_bucket_region: Option<String>,
    /// `SOURCE_*`: how to read the audit bucket.
    pub source_credentials: SourceCredentials,
    /// `EXPECTED_BUCKET_OWNER`: 12-digit account ID.
    pub expected_bucket_owner: Option<String>,
    /// `ALLOWED_BUCKETS`, without duplicates, else the audit bucket alone; empty when neither is
    /// set.
    pub allowed_buckets: Vec<String>,
    /// `BACKFILL_START_TIME`; unset means the full history.
    pub backfill_start_time: Option<StartTime>,
    /// `BACKFILL_LOOKBACK_DAYS`, 0 to [`MAX_LOOKBACK_DAYS`].
    pub backfill_lookback_days: u32,
    /// `BACKFILL_QUEUE_URL`: the walk enqueues objects there instead of forwarding them.
    pub backfill_queue_url: Option<String>,
    /// `STATE_BUCKET`, or the audit bucket when unset; `None` when neither is set.
    pub state_bucket: Option<String>,
    /// `STATE_PREFIX`, always ending with `/`; outside `AUDIT_PREFIX` in the audit bucket.
    pub state_prefix: String,
    /// `OUTPUT_FORMAT`.
    pub output_format: OutputFormat,
    /// `REDACT_SECRETS`.
    pub redact_secrets: bool,
    /// `METRICS`.
    pub metrics: bool,
    /// `METRICS_NAMESPACE`.
    pub metrics_namespace: String,
    /// `METRICS_CLUSTER_DIMENSION`: metrics also per cluster (one more metric series per cluster
    /// and log type; CloudWatch bills each series).
    pub metrics_cluster_dimension: bool,
    /// `STALE_AFTER`: more than zero, at most [`MAX_STALE_AFTER`].
    pub stale_after: Duration,
    /// `PACK_RECORDS`.
    pub pack_records: bool,
    /// `MAX_ATTEMPTS`, in [`MAX_ATTEMPTS_RANGE`].
    pub max_attempts: u32,
    /// `MAX_EXPANSION`, in [`MAX_EXPANSION_RANGE`]: an object whose text grows past this many
    /// times its compressed size (after its first 64 MiB) is stopped, not retryable.
    pub max_expansion: u32,
    /// `SESSION_JOIN` (with `LOG_TYPES`) and `SESSION_WAIT`.
    pub sessions: SessionSettings,
    /// `DESTINATIONS`, `SECURITY_LAKE_SOURCES`, `SECURITY_LAKE_EXTERNAL_ID` (`settings/lake.rs`).
    pub destinations: lake::Destinations,
}

/// Credentials for reading the audit bucket (`SOURCE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceCredentials {
    /// The function's own credentials (the default chain).
    Default,
    /// Assume this role (through the default chain's credentials) for every audit-bucket call.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
    },
    /// Fixed keys, e.g. for a bucket of an account that cannot grant a role.
    Static {
        access_key_id: String,
        secret_access_key: Secret,
    },
}

/// A value that must never be logged: `Debug` prints `<redacted>` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (the credentials provider).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `OUTPUT_FORMAT`: the output formats' own type.
pub use crate::output::Format as OutputFormat;

/// One thing wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Fix the environment: retrying never helps.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

impl SettingsError {
    /// Whether starting again can succeed without changing the settings: never.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The problems, one a line of the message.
    pub fn problems(&self) -> &[Problem] {
        match self {
            SettingsError::Invalid(problems) => problems,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = match problems.len() {
        1 => "invalid setting:".to_string(),
        n => format!("{n} invalid settings:"),
    };
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    out
}

impl Settings {
    /// Reads the process environment. A value that is not UTF-8 is refused like any other bad
    /// value (it is read lossily, and the replacement character fails validation).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_vars(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Reads the variables through `get`; every problem is reported, not only the first.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let mut r = Reader {
            get,
            problems: Vec::new(),
        };
        let delivery_stream = if lake::wants_firehose(r.value(var::DESTINATIONS).as_deref()) {
            r.required(
                var::DELIVERY_STREAM,
                "is required: the name of the Firehose stream to send records to",
                parse::stream_name,
            )
        } else {
            Some(r.defaulted(var::DELIVERY_STREAM, String::new(), parse::stream_name))
        };
        let (log_types, cloudtrail) = r.defaulted(
            var::LOG_TYPES,
            (LogType::ALL.to_vec(), false),
            parse::log_types,
        );
        let cloudtrail_event_sources = r.defaulted(
            var::CLOUDTRAIL_EVENT_SOURCES,
            DEFAULT_CLOUDTRAIL_EVENT_SOURCES.map(String::from).to_vec(),
            parse::event_sources,
        );
        let audit_bucket = r.optional(var::AUDIT_BUCKET, parse::bucket_name(var::AUDIT_PREFIX));
        let audit_prefix = r.defaulted(var::AUDIT_PREFIX, String::new(), parse::audit_prefix);
        let audit_bucket_region = r.optional(var::AUDIT_BUCKET_REGION, parse::region);
        let source_credentials = source_credentials(&mut r);
        let expected_bucket_owner = r.optional(var::EXPECTED_BUCKET_OWNER, parse::account_id);
        let allowed_buckets = allowed_buckets(&mut r, audit_bucket.as_deref());
        let backfill_start_time = r.optional(
            var::BACKFILL_START_TIME,
            parse::start_time(crate::time::now_ms()),
        );
        let backfill_lookback_days = r.defaulted(
            var::BACKFILL_LOOKBACK_DAYS,
            DEFAULT_LOOKBACK_DAYS,
            parse::lookback,
        );
        let backfill_queue_url = r.optional(var::BACKFILL_QUEUE_URL, queue::queue_url);
        let (state_bucket, state_prefix) =
            state_location(&mut r, audit_bucket.as_deref(), &audit_prefix);
        let mut output_format =
            r.defaulted(var::OUTPUT_FORMAT, OutputFormat::Raw, parse::output_format);
        let redact_secrets = r.defaulted(var::REDACT_SECRETS, true, parse::boolean);
        let metrics = r.defaulted(var::METRICS, true, parse::boolean);
        let metrics_namespace = r.defaulted(
            var::METRICS_NAMESPACE,
            DEFAULT_METRICS_NAMESPACE.to_string(),
            parse::metrics_namespace,
        );
        let metrics_cluster_dimension =
            r.defaulted(var::METRICS_CLUSTER_DIMENSION, true, parse::boolean);
        let stale_after = r.defaulted(var::STALE_AFTER, DEFAULT_STALE_AFTER, parse::stale_after);
        let pack_records = r.defaulted(var::PACK_RECORDS, true, parse::boolean);
        let destinations = lake::read(&mut r, &log_types, cloudtrail, &mut output_format);
        let max_attempts =
            r.defaulted(var::MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS, parse::max_attempts);
        let max_expansion = r.defaulted(
            var::MAX_EXPANSION,
            DEFAULT_MAX_EXPANSION,
            parse::max_expansion,
        );
        let sessions = sessions::read(&mut r, &log_types);

        match delivery_stream {
            // Without a stream a problem was reported.
            Some(delivery_stream) if r.problems.is_empty() => Ok(Settings {
                delivery_stream,
                log_types,
                cloudtrail,
                cloudtrail_event_sources,
                audit_bucket,
                audit_prefix,
                audit_bucket_region,
                source_credentials,
                expected_bucket_owner,
                allowed_buckets,
                backfill_start_time,
                backfill_lookback_days,
                backfill_queue_url,
                state_bucket,
                state_prefix,
                output_format,
                redact_secrets,
                metrics,
                metrics_namespace,
                metrics_cluster_dimension,
                stale_after,
                pack_records,
                max_attempts,
                max_expansion,
                sessions,
                destinations,
            }),
            _ => Err(SettingsError::Invalid(r.problems)),
        }
    }

    /// The audit bucket, which the backfill cannot do without.
    pub fn require_audit_bucket(&self) -> Result<&str, SettingsError> {
        self.audit_bucket.as_deref().ok_or_else(|| {
            SettingsError::Invalid(vec![Problem {
                variable: var::AUDIT_BUCKET,
                reason: "is required for the backfill: the bucket Redshift writes its audit \
                         logs to"
                    .into(),
            }])
        })
    }

    /// The state bucket (ledger, cursor, lease): `STATE_BUCKET`, else the audit bucket.
    pub fn require_state_bucket(&self) -> Result<&str, SettingsError> {
        self.state_bucket.as_deref().ok_or_else(|| {
            SettingsError::Invalid(vec![Problem {
                variable: var::STATE_BUCKET,
                reason: "is required for the ledger and the backfill cursor; set it or \
                         AUDIT_BUCKET"
                    .into(),
            }])
        })
    }

    /// Which objects to forward: `AUDIT_PREFIX`, `LOG_TYPES`, and the buckets events may name
    /// (`ALLOWED_BUCKETS`, else `AUDIT_BUCKET`; any without either).
    pub fn filter(&self) -> Filter {
        Filter {
            prefix: self.audit_prefix.clone(),
            log_types: self.log_types.clone(),
            allowed_buckets: self.allowed_buckets.clone(),
            cloudtrail: self.cloudtrail.then(|| self.event_sources()),
        }
    }

    /// `CLOUDTRAIL_EVENT_SOURCES` as the trail reader's filter (validated already; the default
    /// should the list be unusable).
    pub fn event_sources(&self) -> crate::cloudtrail::EventSources {
        crate::cloudtrail::EventSources::from_list(&self.cloudtrail_event_sources.join(","))
            .unwrap_or_default()
    }
}

/// Most bytes of a problem's reason: a value is quoted in excerpt ([`crate::mask::quote`]).
const REASON_BYTES: usize = 1024;

/// Why a parser refused `text`, fit to print: the parsers quote the value whole (`{text:?}`),
/// and here it becomes its masked excerpt ([`crate::mask::quote`]), the reason bounded.
pub fn value_problem(text: &str, reason: &str) -> String {
    let reason = reason.replace(&format!("{text:?}"), &crate::mask::quote(text));
    crate::mask::clean(&reason, REASON_BYTES).to_string()
}

/// Reads variables through `get` and collects every problem. Surrounding blanks are never meant
/// (a pasted parameter), so values are trimmed, and a blank value is unset.
struct Reader<G> {
    get: G,
    problems: Vec<Problem>,
}

impl<G: Fn(&str) -> Option<String>> Reader<G> {
    fn value(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn is_set(&self, name: &str) -> bool {
        self.value(name).is_some()
    }

    /// Records a problem; its reason is masked and bounded (it may quote a value).
    fn report(&mut self, variable: &'static str, reason: impl Into<String>) {
        self.problems.push(Problem {
            variable,
            reason: crate::mask::clean(&reason.into(), REASON_BYTES).to_string(),
        });
    }

    /// Whether a problem was reported for any of `variables`.
    fn refused(&self, variables: &[&str]) -> bool {
        self.problems
            .iter()
            .any(|p| variables.contains(&p.variable))
    }

    /// `None` when unset, or when `parse` refuses the value (then the problem is reported).
    fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.value(name)?;
        parse(&text)
            .map_err(|reason| self.report(name, value_problem(&text, &reason)))
            .ok()
    }

    /// An unset variable is reported with `missing`, the reason it is needed.
    fn required<T>(
        &mut self,
        name: &'static str,
        missing: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if !self.is_set(name) {
            self.report(name, missing);
        }
        self.optional(name, parse)
    }

    /// `default` when unset, or when `parse` refuses the value (then the problem is reported).
    fn defaulted<T>(
        &mut self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        self.optional(name, parse).unwrap_or(default)
    }
}

/// Reads the four `SOURCE_*` variables into one choice, reporting every inconsistency.
fn source_credentials(r: &mut Reader<impl Fn(&str) -> Option<String>>) -> SourceCredentials {
    let role_arn = r.optional(var::SOURCE_ROLE_ARN, parse::role_arn);
    let external_id = r.optional(var::SOURCE_EXTERNAL_ID, parse::external_id);
    let has_role = r.is_set(var::SOURCE_ROLE_ARN);
    if r.is_set(var::SOURCE_EXTERNAL_ID) && !has_role {
        r.report(
            var::SOURCE_EXTERNAL_ID,
            "is set without SOURCE_ROLE_ARN; an external ID only applies to a role",
        );
    }
    let key_id = r.optional(var::SOURCE_ACCESS_KEY_ID, parse::access_key_id);
    let secret = r.optional(var::SOURCE_SECRET_ACCESS_KEY, parse::secret_access_key);
    let has_keys = [var::SOURCE_ACCESS_KEY_ID, var::SOURCE_SECRET_ACCESS_KEY].map(|v| r.is_set(v));
    match has_keys {
        [true, false] => r.report(
            var::SOURCE_SECRET_ACCESS_KEY,
            "is required when SOURCE_ACCESS_KEY_ID is set",
        ),
        [false, true] => r.report(
            var::SOURCE_ACCESS_KEY_ID,
            "is required when SOURCE_SECRET_ACCESS_KEY is set",
        ),
        _ => {}
    }
    if has_role && has_keys.contains(&true) {
        r.report(
            var::SOURCE_ROLE_ARN,
            "is set together with static keys (SOURCE_ACCESS_KEY_ID/SOURCE_SECRET_ACCESS_KEY); \
             use a role or keys, never both",
        );
    }

    match (role_arn, key_id, secret) {
        (Some(role_arn), None, None) => SourceCredentials::AssumeRole {
            role_arn,
            external_id,
        },
        (None, Some(access_key_id), Some(secret_access_key)) => SourceCredentials::Static {
            access_key_id,
            secret_access_key,
        },
        // Either nothing is set, or a problem was reported above.
        _ => SourceCredentials::Default,
    }
}

/// `STATE_BUCKET` (else the audit bucket) and `STATE_PREFIX`, which in the audit bucket must lie
/// outside `AUDIT_PREFIX`.
fn state_location(
    r: &mut Reader<impl Fn(&str) -> Option<String>>,
    audit_bucket: Option<&str>,
    audit_prefix: &str,
) -> (Option<String>, String) {
    let state_bucket = r.defaulted(var::STATE_BUCKET, audit_bucket.map(String::from), |b| {
        parse::bucket_name(var::STATE_PREFIX)(b).map(Some)
    });
    let prefix = r.defaulted(
        var::STATE_PREFIX,
        DEFAULT_STATE_PREFIX.to_string(),
        parse::state_prefix,
    );
    let same_bucket = state_bucket.is_some() && state_bucket.as_deref() == audit_bucket;
    if same_bucket && !r.refused(&[var::AUDIT_PREFIX, var::STATE_BUCKET, var::STATE_PREFIX]) {
        if let Err(reason) = parse::state_outside_audit(&prefix, audit_prefix) {
            r.report(var::STATE_PREFIX, reason);
        }
    }
    (state_bucket, prefix)
}

/// `ALLOWED_BUCKETS`, else the audit bucket alone; a list must name the audit bucket, which the
/// backfill reads.
fn allowed_buckets(
    r: &mut Reader<impl Fn(&str) -> Option<String>>,
    audit_bucket: Option<&str>,
) -> Vec<String> {
    let default = audit_bucket.map(String::from).into_iter().collect();
    let buckets = r.defaulted(var::ALLOWED_BUCKETS, default, parse::bucket_list);
    if let Some(audit) = audit_bucket {
        if !buckets.iter().any(|b| b == audit) && !r.refused(&[var::ALLOWED_BUCKETS]) {
            r.report(
                var::ALLOWED_BUCKETS,
                format!("does not name AUDIT_BUCKET {audit:?}; list every bucket to read from"),
            );
        }
    }
    buckets
}

#[cfg(test)]
mod tests;
