//! The command line: `parse`, `invoke`, `backfill`, `doctor` (DESIGN.md, "Command line").

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser as ClapParser, Subcommand};

use crate::key::parse_file_name;
use crate::logs::LogType;
use crate::output::Provenance;
use crate::pipeline::{self, Counts, Format, Input, Output, Spec, Stopped};
use crate::sessions::{ClusterId, Clusters, Index};

mod parquet;
mod replay;
mod sessions;

#[derive(Debug, ClapParser)]
#[command(
    name = "redshift-audit-forwarder",
    version,
    about = "Forward Amazon Redshift audit logs from S3 to Amazon Data Firehose as typed JSON records"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse audit log files (gzip or plain; `-` for standard input) to NDJSON on stdout.
    Parse {
        /// The log type, for files whose name is not a Redshift audit log name.
        #[arg(long, value_parser = parse_log_type)]
        log_type: Option<LogType>,
        /// `raw` (DESIGN.md's record schema) or `ocsf` (OCSF 1.1.0 events); default:
        /// `OUTPUT_FORMAT`, else raw. `parquet`: the Security Lake objects, under `--out`.
        #[arg(long, value_parser = parse_format)]
        format: Option<ParseFormat>,
        /// With `--format parquet`: the directory that receives
        /// `<class>/region=…/accountId=…/eventDay=…/<name>.parquet`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Keep secrets in SQL text as they are (default: masked, unless REDACT_SECRETS=false).
        #[arg(long)]
        no_redact: bool,
        /// Do not join user activity records to their sessions from the connection logs given
        /// (default: joined, unless SESSION_JOIN=false).
        #[arg(long)]
        no_join: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the Lambda handler once on an event file, with the settings from the environment.
    Invoke {
        /// A Lambda event (S3 notification, SNS, SQS, EventBridge, schedule), as JSON.
        event: PathBuf,
    },
    /// Walk the day partitions once, as the scheduled invocation does: send every selected
    /// file the ledger does not hold as done, in (last-modified, key) order from the cursor.
    Backfill {
        /// Walk from this RFC 3339 time instead of the saved cursor (files whose own time is at
        /// or after it; files already done are still skipped).
        #[arg(long, value_name = "RFC3339", value_parser = parse_since)]
        since: Option<String>,
        /// List what would be sent (JSON lines: key, size, last_modified); send nothing and
        /// write no state.
        #[arg(long)]
        dry_run: bool,
        /// Stop starting objects in time to end within this many seconds; the cursor is saved
        /// and the next run goes on from it.
        #[arg(long, value_name = "SECONDS")]
        max_duration: Option<u64>,
        /// Try the objects set aside (failed MAX_ATTEMPTS times, or for good) once more
        /// before the walk; `--dry-run` lists them.
        #[arg(long)]
        retry_set_aside: bool,
        /// Send each object to this SQS queue as an S3 notification instead of forwarding it
        /// (as BACKFILL_QUEUE_URL does); the function's workers consume the queue.
        #[arg(long, value_name = "QUEUE_URL", conflicts_with_all = ["dry_run", "manifest"])]
        enqueue: Option<String>,
        /// Write the S3 Batch Operations CSV manifest (bucket,URL-encoded key) of every object
        /// not done to FILE or s3://BUCKET/KEY; forward nothing and write no state.
        #[arg(long, value_name = "FILE|s3://BUCKET/KEY")]
        manifest: Option<String>,
    },
    /// Check the deployment with the function's settings and credentials: settings and
    /// identity, audit bucket, audit files, a sample file, bucket policy, trigger, state store
    /// and stream; one line per check. Exits 1 when any check failed.
    Doctor {
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The same times `BACKFILL_START_TIME` takes: a start before 2012 or in the future selects
/// nothing.
fn parse_since(s: &str) -> Result<String, String> {
    crate::settings::parse_start_time(s).map(|_| s.to_string())
}

/// What `parse` writes: NDJSON in a format, or Parquet objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseFormat {
    Lines(Format),
    Parquet,
}

fn parse_format(s: &str) -> Result<ParseFormat, String> {
    if s.trim() == "parquet" {
        return Ok(ParseFormat::Parquet);
    }
    crate::settings::parse_output_format(s).map(ParseFormat::Lines)
}

/// The output of `parse`: the flags, else `OUTPUT_FORMAT` and `REDACT_SECRETS`, else the
/// defaults (raw, masked). A bad variable is refused like a bad flag.
fn parse_output(format: Option<Format>, no_redact: bool) -> Result<Output, String> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let format = match (format, var(crate::settings::var::OUTPUT_FORMAT)) {
        (Some(f), _) => f,
        (None, Some(text)) => crate::settings::parse_output_format(&text).map_err(|e| {
            let e = crate::settings::value_problem(&text, &e);
            format!("{}: {e}", crate::settings::var::OUTPUT_FORMAT)
        })?,
        (None, None) => Format::Raw,
    };
    let redact = match var(crate::settings::var::REDACT_SECRETS) {
        _ if no_redact => false,
        Some(text) => crate::settings::parse_bool(&text).map_err(|e| {
            let e = crate::settings::value_problem(&text, &e);
            format!("{}: {e}", crate::settings::var::REDACT_SECRETS)
        })?,
        None => true,
    };
    Ok(Output {
        format,
        redact,
        ..Output::default()
    })
}

/// Whether `parse` joins activity records to their sessions: not with `--no-join`, else as
/// `SESSION_JOIN` says (default true). A bad variable is refused like a bad flag.
fn parse_join(no_join: bool) -> Result<bool, String> {
    let var = crate::settings::var::SESSION_JOIN;
    match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        _ if no_join => Ok(false),
        Some(text) => crate::settings::parse_bool(text.trim()).map_err(|e| format!("{var}: {e}")),
        None => Ok(true),
    }
}

fn parse_log_type(s: &str) -> Result<LogType, String> {
    s.parse()
        .map_err(|e: crate::logs::UnknownLogType| e.to_string())
}

/// Runs a command; the caller turns the result into the process exit status.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Parse {
            log_type,
            format,
            out,
            no_redact,
            no_join,
            files,
        } => match (format, out) {
            (Some(ParseFormat::Parquet), Some(dir)) => {
                match parse_output(Some(Format::Ocsf), no_redact) {
                    Ok(output) => parquet::run(log_type, output, &files, &dir),
                    Err(e) => {
                        crate::report::eprint(&e.to_string());
                        ExitCode::from(2)
                    }
                }
            }
            (Some(ParseFormat::Parquet), None) => {
                crate::report::eprint(
                    "--format parquet writes files: give the directory with --out DIR",
                );
                ExitCode::from(2)
            }
            (Some(ParseFormat::Lines(_)) | None, Some(_)) => {
                crate::report::eprint("--out is for --format parquet; NDJSON goes to stdout");
                ExitCode::from(2)
            }
            (format, None) => match parse_output(
                format.and_then(|f| match f {
                    ParseFormat::Lines(f) => Some(f),
                    ParseFormat::Parquet => None,
                }),
                no_redact,
            )
            .and_then(|o| Ok((o, parse_join(no_join)?)))
            {
                Ok((output, join)) => run_parse(log_type, output, join, &files),
                Err(e) => {
                    crate::report::eprint(&e.to_string());
                    ExitCode::from(2)
                }
            },
        },
        Command::Invoke { event } => match tokio_runtime() {
            Ok(rt) => rt.block_on(crate::runtime::invoke(&event)),
            Err(e) => {
                crate::report::eprint(&format!("cannot start the async runtime: {e}"));
                ExitCode::FAILURE
            }
        },
        Command::Doctor { json } => match tokio_runtime() {
            Ok(rt) => rt.block_on(crate::diagnose::doctor_command(json)),
            Err(e) => {
                crate::report::eprint(&format!("cannot start the async runtime: {e}"));
                ExitCode::FAILURE
            }
        },
        Command::Backfill {
            since,
            dry_run,
            max_duration,
            retry_set_aside,
            enqueue,
            manifest,
        } => {
            let target = match (enqueue, manifest) {
                (Some(url), _) => crate::runtime::Target::Enqueue(url),
                (None, Some(dest)) => crate::runtime::Target::Manifest(dest),
                (None, None) => crate::runtime::Target::Walk,
            };
            let request = crate::events::BackfillRequest {
                since,
                dry_run,
                retry_set_aside,
            };
            let max_duration = max_duration.map(std::time::Duration::from_secs);
            match tokio_runtime() {
                Ok(rt) => rt.block_on(crate::runtime::backfill(request, max_duration, target)),
                Err(e) => {
                    crate::report::eprint(&format!("cannot start the async runtime: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The async runtime for commands that talk to AWS, and for the Lambda loop. One thread is
/// enough for the network side (parsing runs on its own blocking threads), and fewer threads
/// mean fewer malloc arenas: measurably less peak memory.
pub fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Output is flushed in blocks of about this size.
const OUTPUT_BLOCK: usize = 256 * 1024;

/// What one file gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub records: u64,
    pub parse_errors: u64,
    /// The first parse error: (line, reason).
    pub first_error: Option<(u64, String)>,
    /// Something about the input worth a line although nothing failed.
    pub warning: Option<&'static str>,
}

/// Why a file could not be read to the end.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot tell the log type from the file name ({0}); pass --log-type")]
    UnknownType(crate::key::KeyError),
    #[error("cannot open: {0}")]
    Open(io::Error),
    #[error("read failed after {records} records (line {line}): {source}")]
    Read {
        records: u64,
        line: u64,
        source: io::Error,
    },
    #[error("writing the output failed: {0}")]
    Write(io::Error),
    /// A trail file or a saved CloudWatch Logs event that cannot be read as one.
    #[error("{0}")]
    Batch(String),
}

fn run_parse(log_type: Option<LogType>, output: Output, join: bool, files: &[PathBuf]) -> ExitCode {
    let clusters = join.then(|| sessions::collect(files, log_type, output.max_expansion));
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for path in files {
        let shown = path.display().to_string();
        match parse_path_joined(path, log_type, output, clusters.as_ref(), &mut out) {
            Ok(summary) => {
                if let Some(warning) = summary.warning {
                    crate::report::eprint(&format!("{shown}: warning: {warning}"));
                }
                if let Some((line, reason)) = &summary.first_error {
                    crate::report::eprint(&format!(
                        "{shown}: {} of {} records could not be parsed and were forwarded as parse_error (first at line {line}: {reason})",
                        summary.parse_errors, summary.records
                    ));
                }
            }
            Err(FileError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return ExitCode::SUCCESS
            }
            Err(e) => {
                crate::report::eprint(&format!("{shown}: {e}"));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Parses one file (`-` is standard input) to NDJSON on `out`.
pub fn parse_path(
    path: &std::path::Path,
    log_type: Option<LogType>,
    output: Output,
    out: &mut impl Write,
) -> Result<FileSummary, FileError> {
    parse_path_joined(path, log_type, output, None, out)
}

/// [`parse_path`], user activity records joined to the sessions of `clusters` when given.
pub fn parse_path_joined(
    path: &std::path::Path,
    log_type: Option<LogType>,
    output: Output,
    clusters: Option<&Clusters>,
    out: &mut impl Write,
) -> Result<FileSummary, FileError> {
    let shown = path.to_string_lossy();
    let name = parse_file_name(&shown);
    if log_type.is_none() && name.is_err() && shown != "-" {
        if let Some(result) = replay::parse_other(path, &shown, output, out) {
            return result;
        }
    }
    let log_type = match (log_type, &name) {
        (Some(t), _) => t,
        (None, Ok(n)) => n.log_type,
        (None, Err(e)) => return Err(FileError::UnknownType(e.clone())),
    };
    let provenance = Provenance::new(log_type, name.as_ref().ok(), None, &shown);
    let input: Box<dyn Read + Send> = if shown == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(FileError::Open)?)
    };
    let index = clusters.map(|c| c.sessions_of(&ClusterId::of(name.as_ref().ok())));
    parse_stream_joined(input, log_type, output, &provenance, index, out)
}

/// Decompresses (on a second thread), parses and writes every record of one input.
pub fn parse_stream(
    input: Box<dyn Read + Send>,
    log_type: LogType,
    output: Output,
    provenance: &Provenance,
    out: &mut impl Write,
) -> Result<FileSummary, FileError> {
    parse_stream_joined(input, log_type, output, provenance, None, out)
}

/// [`parse_stream`], user activity records joined to the sessions of `index` when given.
pub fn parse_stream_joined(
    input: Box<dyn Read + Send>,
    log_type: LogType,
    output: Output,
    provenance: &Provenance,
    index: Option<&Index>,
    out: &mut impl Write,
) -> Result<FileSummary, FileError> {
    let spec = Spec {
        input: Input::AuditLog(log_type),
        output,
        provenance,
        max_line: None,
        sessions: index,
        collect: None,
    };
    write_blocks(out, |emit| pipeline::run_blocks(input, &spec, emit))
}

/// Runs a loop whose lines come in runs of NDJSON ([`pipeline::run_blocks`]), writing each
/// run as it is.
fn write_blocks(
    out: &mut impl Write,
    run: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> (Counts, Result<(), Stopped>),
) -> Result<FileSummary, FileError> {
    let mut write_error: Option<io::Error> = None;
    let (counts, result) = run(&mut |block| match out.write_all(block) {
        Ok(()) => true,
        Err(e) => {
            write_error = Some(e);
            false
        }
    });
    if let Some(e) = write_error {
        return Err(FileError::Write(e));
    }
    out.flush().map_err(FileError::Write)?;
    summarize(counts, result)
}

/// Runs a loop, writing its lines to `out` in blocks.
pub(crate) fn write_all(
    out: &mut impl Write,
    run: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> (Counts, Result<(), Stopped>),
) -> Result<FileSummary, FileError> {
    let mut buf = Vec::with_capacity(OUTPUT_BLOCK + 64 * 1024);
    let mut write_error: Option<io::Error> = None;
    let (counts, result) = run(&mut |line| {
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if buf.len() >= OUTPUT_BLOCK {
            if let Err(e) = out.write_all(&buf) {
                write_error = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    });
    if let Some(e) = write_error {
        return Err(FileError::Write(e));
    }
    out.write_all(&buf).map_err(FileError::Write)?;
    out.flush().map_err(FileError::Write)?;
    summarize(counts, result)
}

/// What a loop's end makes of one input: its summary, or the read error.
fn summarize(counts: Counts, result: Result<(), Stopped>) -> Result<FileSummary, FileError> {
    let summary = FileSummary {
        records: counts.records,
        parse_errors: counts.parse_errors,
        first_error: counts.first_error,
        warning: counts.empty_trail.then_some(crate::cloudtrail::EMPTY_TRAIL),
    };
    match result {
        Ok(()) | Err(Stopped::Emit) => Ok(summary),
        Err(Stopped::Read(source)) => Err(FileError::Read {
            records: summary.records,
            line: counts.last_record_line + 1,
            source,
        }),
    }
}
