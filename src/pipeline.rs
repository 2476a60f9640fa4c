//! decode -> parse -> render: the one loop that turns an input's bytes into NDJSON lines, used by
//! the `parse` command and by the Lambda path alike.
//!
//! What it reads is an [`Input`] (a Redshift audit log file of a known type; a CloudTrail trail
//! file, [`run_trail`] in `trail.rs`; a CloudWatch Logs batch, [`run_batch`] in `batch.rs`) and
//! what it writes is a [`Format`] (`raw` or `ocsf`), both chosen at start-up: a new source or a
//! new output format is a module of its own plus one arm here, not a branch in every caller. Secrets
//! in SQL text are redacted before a record is rendered or split (`redact`), so no part of a
//! split statement can carry half a secret. Lines go to an `emit` callback, one at a time or in
//! runs of NDJSON ([`run_blocks`]), which says whether to go on. Audit log records are typed and
//! rendered in batches on worker threads and emitted in order (`workers.rs`, with its budget);
//! trail files and CloudWatch Logs batches go record by record.

use std::cell::RefCell;
use std::io::{self, Read};

mod batch;
mod trail;
mod workers;
pub use batch::{run_batch, BatchSpec};
pub use trail::{run_trail, TrailSpec};

use crate::decode;
use crate::logs::{Body, LogType, Parser, Record, Timestamp};
use crate::output::{Join, Provenance};
use crate::sessions::{self, Builder, Index};

pub use crate::output::Format;

/// Capacity the render buffer keeps between records. Budget of the record stage: the parser's
/// buffers (line reader, statement being built, the one handed out: up to 3 x 20 MiB for an
/// over-long activity statement, 256 KiB otherwise) plus this buffer (one for each worker,
/// `workers.rs`), which holds one rendered line of at most `max_line` (1,000 KiB for Firehose),
/// or one whole record for the command line; the batches in flight have their own budget.
const RENDER_BUFFER: usize = 1024 * 1024;

/// What the loop reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A Redshift audit log file (gzip or plain) of this type.
    AuditLog(LogType),
}

/// How records leave: in which format, and whether secrets are masked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// `OUTPUT_FORMAT`.
    pub format: Format,
    /// `REDACT_SECRETS`: mask secrets in SQL text and unparsable lines.
    pub redact: bool,
    /// `MAX_EXPANSION`: a bound on the input rather than the output, carried here because every
    /// path hands these settings to the loop ([`decode::open_bounded`]).
    pub max_expansion: u32,
}

impl Default for Output {
    /// DESIGN.md's defaults: `raw`, secrets masked.
    fn default() -> Self {
        Output {
            format: Format::Raw,
            redact: true,
            max_expansion: decode::DEFAULT_MAX_EXPANSION,
        }
    }
}

/// One run of the loop: what to read, how to write it, and the provenance every record carries.
pub struct Spec<'a> {
    pub input: Input,
    pub output: Output,
    pub provenance: &'a Provenance,
    /// Longest line to emit: a longer record is split into ordered parts (Firehose); `None`
    /// writes every record whole (the command line).
    pub max_line: Option<usize>,
    /// The sessions of the file's cluster: user activity records are joined to theirs
    /// (`crate::sessions`); `None` leaves every record as it is.
    pub sessions: Option<&'a Index>,
    /// Takes every record in order, before redaction (a connection log's sessions, collected
    /// in the pass that sends its records: one read of the object serves both).
    pub collect: Option<&'a RefCell<Builder>>,
}

impl<'a> Spec<'a> {
    /// What the session join finds for `record`.
    fn join(&self, record: &Record<'_>) -> Join<'a> {
        match self.sessions {
            Some(index) => sessions::join(index, record),
            None => Join::Off,
        }
    }
}

/// What the loop counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Decompressed bytes read.
    pub text_bytes: u64,
    /// Lines of text read.
    pub lines: u64,
    /// Records, parse errors included.
    pub records: u64,
    pub parse_errors: u64,
    /// Records split into parts because one line could not hold them.
    pub split_records: u64,
    /// Records whose text had a secret masked.
    pub redacted: u64,
    /// Trail events left out because their `eventSource` is not selected.
    pub skipped_events: u64,
    /// A trail file that held nothing but whitespace (empty, or an empty gzip): no document at
    /// all, which CloudTrail never writes, so it is reported rather than passed over.
    pub empty_trail: bool,
    /// User activity records joined to their session, and those for which none was known
    /// (both zero without a join).
    pub joined: u64,
    pub unjoined: u64,
    /// The line the last record started on.
    pub last_record_line: u64,
    /// The first parse error: (line, reason).
    pub first_error: Option<(u64, String)>,
    /// Earliest and latest record time.
    pub first_time: Option<Timestamp>,
    pub last_time: Option<Timestamp>,
}

impl Counts {
    /// Adds the counts of the records that came after these (`text_bytes` and `lines` are the
    /// loop's, not added).
    fn absorb(&mut self, later: &Counts) {
        self.records += later.records;
        self.parse_errors += later.parse_errors;
        self.split_records += later.split_records;
        self.redacted += later.redacted;
        self.skipped_events += later.skipped_events;
        self.joined += later.joined;
        self.unjoined += later.unjoined;
        if later.records > 0 {
            self.last_record_line = later.last_record_line;
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&later.first_error);
        }
        self.first_time = match (self.first_time, later.first_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_time = match (self.last_time, later.last_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn count(&mut self, record: &Record<'_>) {
        self.redacted += u64::from(record.redacted);
        match &record.body {
            Body::ParseError { reason, .. } => {
                self.records += 1;
                self.last_record_line = record.line;
                self.parse_errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some((record.line, reason.to_string()));
                }
            }
            Body::Columns(c) => self.count_columns(record.line, c.record_time()),
        }
    }

    /// Counts what the session join found for a record.
    fn count_join(&mut self, join: Join<'_>) {
        match join {
            Join::Off => {}
            Join::Unknown => self.unjoined += 1,
            Join::Found(_) => self.joined += 1,
        }
    }

    /// Counts a record of typed columns (not redacted) on `line`, its time `time`.
    #[inline]
    fn count_columns(&mut self, line: u64, time: Option<Timestamp>) {
        self.records += 1;
        self.last_record_line = line;
        if let Some(t) = time {
            self.first_time = Some(self.first_time.map_or(t, |f| f.min(t)));
            self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
        }
    }
}

/// Why the loop stopped before the end of the input.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// Reading (or decompressing) failed after `Counts::lines` lines; every record before the
    /// failure was emitted.
    #[error("{0}")]
    Read(io::Error),
    /// `emit` asked to stop (its consumer failed; it knows why).
    #[error("the consumer of the records stopped")]
    Emit,
}

/// Runs the loop over `body` until its end, a read failure, or `emit` returning `false`.
/// Returns the counts in every case, and why it stopped early if it did.
pub fn run(
    body: impl Read + Send + 'static,
    spec: &Spec<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> (Counts, Result<(), Stopped>) {
    run_to(body, spec, workers::Out::Lines(emit))
}

/// [`run`] handing out runs of whole lines, each followed by a newline (NDJSON as it is
/// written), rather than one line at a time: no copy of each line for a consumer that writes
/// them out as they are. After `emit` says stop, the counts include every record of the run it
/// was given.
pub fn run_blocks(
    body: impl Read + Send + 'static,
    spec: &Spec<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> (Counts, Result<(), Stopped>) {
    run_to(body, spec, workers::Out::Blocks(emit))
}

fn run_to(
    body: impl Read + Send + 'static,
    spec: &Spec<'_>,
    emit: workers::Out<'_>,
) -> (Counts, Result<(), Stopped>) {
    let counts = Counts::default();
    let reader = match decode::open_bounded(body, spec.output.max_expansion) {
        Ok(reader) => reader,
        Err(e) => return (counts, Err(Stopped::Read(e))),
    };
    let Input::AuditLog(log_type) = spec.input;
    let mut parser = Parser::new(log_type, reader);
    workers::run(&mut parser, spec, workers::workers(), emit)
}

/// Renders one record in the spec's format and emits its line(s); `false` when `emit` said stop.
fn render(
    record: &Record<'_>,
    spec: &Spec<'_>,
    buf: &mut Vec<u8>,
    counts: &mut Counts,
    join: Join<'_>,
    emit: &mut dyn FnMut(&[u8]) -> bool,
) -> bool {
    let format = spec.output.format;
    let Some(max_line) = spec.max_line else {
        buf.clear();
        format.write_record(buf, record, spec.provenance, join);
        return emit(buf);
    };
    let mut go_on = true;
    let mut sink = |line: &[u8]| go_on = go_on && emit(line);
    match format.write_parts(record, spec.provenance, join, max_line, buf, &mut sink) {
        Ok(1) => {}
        Ok(_) => counts.split_records += 1,
        Err(_) => {
            // Even without its largest text the record is over the limit (thousands of extra
            // columns): forward its JSON as the raw text of a parse error instead.
            buf.clear();
            format.write_record(buf, record, spec.provenance, Join::Off);
            let raw = String::from_utf8_lossy(buf).into_owned();
            let fallback = Record {
                body: Body::ParseError {
                    reason: "record too large for one Firehose record".into(),
                    raw: &raw,
                },
                ..record.clone()
            };
            let mut spare = Vec::new();
            if format
                .write_parts(
                    &fallback,
                    spec.provenance,
                    Join::Off,
                    max_line,
                    &mut spare,
                    &mut sink,
                )
                .is_ok()
            {
                counts.split_records += 1;
            }
        }
    }
    go_on
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";

    fn spec(provenance: &Provenance, max_line: Option<usize>) -> Spec<'_> {
        Spec {
            input: Input::AuditLog(LogType::ConnectionLog),
            output: Output::default(),
            provenance,
            max_line,
            sessions: None,
            collect: None,
        }
    }

    #[test]
    fn every_record_is_emitted_once_and_counted() {
        let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
        let text = format!("{LINE}\nnot a record\n{LINE}\n");
        let mut lines = Vec::new();
        let (counts, result) = run(
            io::Cursor::new(text.into_bytes()),
            &spec(&p, None),
            &mut |l| {
                lines.push(l.to_vec());
                true
            },
        );
        assert!(result.is_ok());
        assert_eq!(lines.len(), 3);
        assert_eq!(
            (counts.records, counts.parse_errors, counts.lines),
            (3, 1, 3)
        );
        assert_eq!(counts.first_error.map(|(line, _)| line), Some(2));
        assert_eq!(counts.last_record_line, 3);
        assert_eq!(
            counts.first_time.map(|t| t.to_string()).as_deref(),
            Some("2020-12-07T20:01:55.177Z")
        );
    }

    #[test]
    fn a_long_record_is_split_only_when_a_line_limit_is_given() {
        let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
        let long = format!("{}\n", "x".repeat(5000));
        let mut whole = 0;
        let (_, result) = run(
            io::Cursor::new(long.clone().into_bytes()),
            &spec(&p, None),
            &mut |_| {
                whole += 1;
                true
            },
        );
        assert!(result.is_ok());
        assert_eq!(whole, 1);
        let mut parts = Vec::new();
        let (counts, _) = run(
            io::Cursor::new(long.into_bytes()),
            &spec(&p, Some(1000)),
            &mut |l| {
                parts.push(l.len());
                true
            },
        );
        assert!(
            parts.len() > 4 && parts.iter().all(|&n| n <= 1000),
            "{parts:?}"
        );
        assert_eq!(counts.split_records, 1);
    }

    #[test]
    fn emit_can_stop_the_loop() {
        let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
        let text = format!("{LINE}\n{LINE}\n{LINE}\n");
        let mut seen = 0;
        let (counts, result) = run(
            io::Cursor::new(text.into_bytes()),
            &spec(&p, None),
            &mut |_| {
                seen += 1;
                false
            },
        );
        assert!(matches!(result, Err(Stopped::Emit)));
        assert_eq!((seen, counts.records), (1, 1));
    }

    #[test]
    fn a_read_failure_comes_after_the_records_before_it() {
        struct CutAfter(io::Cursor<Vec<u8>>);
        impl Read for CutAfter {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
                    n => Ok(n),
                }
            }
        }
        let p = Provenance::new(LogType::ConnectionLog, None, None, "f");
        let text = format!("{LINE}\n{LINE}\n");
        let mut seen = 0;
        let (counts, result) = run(
            CutAfter(io::Cursor::new(text.into_bytes())),
            &spec(&p, None),
            &mut |_| {
                seen += 1;
                true
            },
        );
        assert!(
            matches!(result, Err(Stopped::Read(e)) if e.kind() == io::ErrorKind::ConnectionReset)
        );
        assert_eq!((seen, counts.records), (2, 2));
    }
}
