//! The ordered part of parsing: a [`Parser`] reads lines or activity-log pieces in order,
//! numbers them and gathers runs of control bytes into one record, handing out [`Split`]s.

use std::io::{self, Read};

use super::lines::{self, Line, LineReader};
use super::split::{piece_body, pipe_body, RunSplit, SplitKind};
use super::{
    activity, release, Body, LogType, Record, Split, WholeText, MAX_RAW_BYTES, MAX_RECORD_BYTES,
    RUN_SAMPLE_BYTES,
};

/// A streaming parser for one audit log file of a known type.
pub struct Parser<R> {
    log_type: LogType,
    lines: LineReader<R>,
    ordinal: u64,
    /// Decoded text of the record being handed out (when it needed replacing or joining).
    text: String,
    activity: activity::Assembler,
    /// A read error held back until the record read before it is handed out.
    failed: Option<io::Error>,
    /// The record size limit.
    limit: usize,
    /// The sample of a run of control bytes (the run's record borrows it).
    sample: String,
    /// A line (pipe logs) or piece (activity log) read past the end of a run, handed out next;
    /// its bytes are still where the reader left them.
    held_line: Option<lines::LineMeta>,
    held_piece: Option<activity::Piece>,
    /// Where the text of the record last split is ([`Parser::split_text`]).
    last: Option<TextAt>,
}

/// A run of control bytes being gathered into one record.
struct Run {
    line: u64,
    last_line: u64,
    hasher: xxhash_rust::xxh3::Xxh3Default,
    bytes: u64,
    invalid_utf8: bool,
    read_cut: bool,
}

impl Run {
    fn new(line: u64, bytes: &[u8], sample: &mut String) -> Self {
        let head = &bytes[..bytes.len().min(RUN_SAMPLE_BYTES)];
        sample.clear();
        sample.push_str(&String::from_utf8_lossy(head));
        let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
        hasher.update(bytes);
        Run {
            line,
            last_line: line,
            hasher,
            bytes: bytes.len() as u64,
            invalid_utf8: std::str::from_utf8(bytes).is_err(),
            read_cut: false,
        }
    }

    fn add(&mut self, line: u64, new_line: bool, bytes: &[u8]) {
        if new_line {
            self.hasher.update(b"\n");
            self.bytes += 1;
        }
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.last_line = line;
    }

    /// The run's record as split: its text is the sample, `whole` set when the sample is not
    /// all of it.
    fn split(self, log_type: LogType, ordinal: u64, sample_len: usize) -> Split {
        let reason = format!(
            "text of control bytes (NUL and the like, no audit record), {} bytes on lines {} to \
             {}: one record for the run, raw holds its first {} bytes",
            self.bytes, self.line, self.last_line, RUN_SAMPLE_BYTES
        );
        let whole = (self.bytes > sample_len as u64).then(|| WholeText {
            bytes: self.bytes,
            xxh3: self.hasher.digest128(),
        });
        Split {
            log_type,
            kind: SplitKind::Run(Box::new(RunSplit {
                reason,
                invalid_utf8: self.invalid_utf8,
                whole,
            })),
            line: self.line,
            ordinal,
            truncated: false,
            read_cut: self.read_cut,
            limit: 0,
        }
    }
}

/// Which of the parser's buffers holds the text of the record last split.
#[derive(Debug, Clone)]
enum TextAt {
    Line(lines::LineMeta),
    Ready,
    Sample,
}

/// Whether more than half the bytes are control bytes other than tab and line ends (NUL,
/// escape, DEL, ...): text no audit log holds, and which JSON escaping grows sixfold.
pub fn mostly_control(bytes: &[u8]) -> bool {
    // Every line of every object goes through here, and nearly no line holds a byte below 0x20
    // or DEL: eight bytes at a time, a word without one is passed over (the has-less and
    // has-zero tricks, exact as to whether any byte is one); the bytes are counted only once
    // one turns up (a tab, or the line ends of a statement of several lines, will do).
    // First 32 bytes at a time, in a form the compiler turns into SIMD (a 100-byte line of a
    // pipe log is three such blocks), then a word at a time.
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 32]>::try_from(block) else {
            break;
        };
        let low_or_del = block.iter().fold(0u8, |any, &b| {
            any | u8::from(b < 0x20) | u8::from(b == 0x7f)
        });
        if low_or_del != 0 {
            return count_control(bytes) * 2 > bytes.len();
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let del = w ^ (ONES * 0x7f);
        let low_or_del = (w.wrapping_sub(ONES * 0x20) & !w) | (del.wrapping_sub(ONES) & !del);
        if low_or_del & HIGHS != 0 {
            return count_control(bytes) * 2 > bytes.len();
        }
    }
    words.remainder().iter().any(|&b| is_control(b)) && count_control(bytes) * 2 > bytes.len()
}

/// A control byte other than tab and line ends.
#[inline]
fn is_control(b: u8) -> bool {
    ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0x7f)
}

/// Control bytes other than tab and line ends: branch-free counts in chunks of 255, which the
/// compiler turns into SIMD.
fn count_control(bytes: &[u8]) -> usize {
    let mut control = 0usize;
    for chunk in bytes.chunks(255) {
        let mut n = 0u8;
        for &b in chunk {
            n += u8::from(is_control(b));
        }
        control += usize::from(n);
    }
    control
}

impl<R: Read> Parser<R> {
    pub fn new(log_type: LogType, input: R) -> Self {
        Self::with_limit(log_type, input, MAX_RECORD_BYTES)
    }

    /// A parser whose record size limit is `max_record` bytes (tests use small limits).
    pub fn with_limit(log_type: LogType, input: R, max_record: usize) -> Self {
        Parser {
            log_type,
            lines: LineReader::new(input, max_record),
            ordinal: 0,
            text: String::new(),
            activity: activity::Assembler::new(max_record),
            failed: None,
            limit: max_record,
            sample: String::new(),
            held_line: None,
            held_piece: None,
            last: None,
        }
    }

    pub fn log_type(&self) -> LogType {
        self.log_type
    }

    /// Lines of input read so far.
    pub fn lines_read(&self) -> u64 {
        self.lines.lines_read()
    }

    /// Bytes of (decompressed) input read so far.
    pub fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }

    /// Gives back memory a huge record left in the parser's buffers (call between records).
    pub fn release(&mut self) {
        // The last split's text may go with the memory (a long line's, say).
        self.last = None;
        release(&mut self.text, MAX_RAW_BYTES);
        // A held piece's text is still in the assembler, a held line's in the reader.
        if self.held_piece.is_none() {
            self.activity.release();
        }
        if self.held_line.is_none() {
            self.lines.release();
        }
    }

    /// The next record, or `None` at the end of the input. Unparsable text comes out as a
    /// `parse_error` record; only an I/O error (say, a truncated gzip stream) is an `Err`.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        self.last = None;
        let Some((split, at)) = self.split_next()? else {
            return Ok(None);
        };
        let text = match &at {
            TextAt::Line(meta) => self.lines.line(meta).bytes,
            TextAt::Ready => self.activity.ready(),
            TextAt::Sample => self.sample.as_bytes(),
        };
        Ok(Some(split.record(text, &mut self.text)))
    }

    /// The next record split but not typed, with its text (until the next call), or `None` at
    /// the end of the input; [`Split::record`] types it. Errors as for [`Parser::next_record`].
    pub fn next_split(&mut self) -> io::Result<Option<(Split, &[u8])>> {
        self.last = None;
        let Some((split, at)) = self.split_next()? else {
            return Ok(None);
        };
        self.last = Some(at);
        Ok(Some((split, self.split_text())))
    }

    /// The text of the record [`Parser::next_split`] handed out last, until the parser is
    /// called again (empty when there is none).
    pub fn split_text(&self) -> &[u8] {
        match &self.last {
            Some(TextAt::Line(meta)) => self.lines.line(meta).bytes,
            Some(TextAt::Ready) => self.activity.ready(),
            Some(TextAt::Sample) => self.sample.as_bytes(),
            None => &[],
        }
    }

    fn split_next(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        match self.log_type {
            LogType::ConnectionLog | LogType::UserLog => self.split_pipe_record(),
            LogType::UserActivityLog => self.split_activity_record(),
        }
    }

    /// The next line that is not blank (a later piece of a long line always counts).
    fn next_pipe_line(&mut self) -> io::Result<Option<lines::LineMeta>> {
        if let Some(meta) = self.held_line.take() {
            return Ok(Some(meta));
        }
        loop {
            let Some(meta) = self.lines.advance()? else {
                return Ok(None);
            };
            let line = self.lines.line(&meta);
            if line.continuation || !line.bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(meta));
            }
        }
    }

    fn split_pipe_record(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(meta) = self.next_pipe_line()? else {
            return Ok(None);
        };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let line = self.lines.line(&meta);
        if line_is_control(self.log_type, &line, &mut self.text, self.limit) {
            let mut run = Run::new(meta.number, line.bytes, &mut self.sample);
            run.read_cut = meta.at_failure;
            self.gather_pipe_run(&mut run);
            let split = run.split(self.log_type, ordinal, self.sample.len());
            return Ok(Some((split, TextAt::Sample)));
        }
        let split = Split {
            log_type: self.log_type,
            kind: SplitKind::PipeLine {
                continuation: meta.continuation,
                cut: meta.cut,
            },
            line: meta.number,
            ordinal,
            truncated: meta.cut,
            read_cut: meta.at_failure,
            limit: self.limit,
        };
        Ok(Some((split, TextAt::Line(meta))))
    }

    /// Adds the lines that go on a run of control bytes; the first that does not is held.
    fn gather_pipe_run(&mut self, run: &mut Run) {
        loop {
            let meta = match self.next_pipe_line() {
                Ok(Some(meta)) => meta,
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    run.read_cut = true;
                    return;
                }
            };
            let line = self.lines.line(&meta);
            let goes_on = line.continuation
                || line_is_control(self.log_type, &line, &mut self.text, self.limit);
            if !goes_on {
                self.held_line = Some(meta);
                return;
            }
            run.add(meta.number, !line.continuation, line.bytes);
            run.read_cut |= meta.at_failure;
        }
    }

    /// The next finished piece of the activity log, the held one first.
    fn next_piece(&mut self) -> io::Result<Option<activity::Piece>> {
        if let Some(piece) = self.held_piece.take() {
            return Ok(Some(piece));
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        loop {
            match self.lines.next_line() {
                Ok(line) => {
                    if let Some(piece) = self.activity.push(line) {
                        return Ok(piece);
                    }
                }
                Err(e) => {
                    return match self.activity.abort() {
                        Some(piece) => {
                            self.failed = Some(e);
                            Ok(Some(piece))
                        }
                        None => Err(e),
                    }
                }
            }
        }
    }

    /// Whether the piece in the assembler is a parse error of control bytes.
    fn piece_is_control(&mut self, piece: &activity::Piece) -> bool {
        let ready = self.activity.ready();
        match piece.kind {
            activity::PieceKind::Statement => {
                mostly_control(ready) && {
                    let (body, _) = piece_body(piece.kind, ready, &mut self.text, self.limit);
                    body_is_error(&body)
                }
            }
            _ => mostly_control(ready),
        }
    }

    fn split_activity_record(&mut self) -> io::Result<Option<(Split, TextAt)>> {
        let Some(piece) = self.next_piece()? else {
            return Ok(None);
        };
        let ordinal = self.ordinal;
        self.ordinal += 1;
        if self.piece_is_control(&piece) {
            let mut run = Run::new(piece.line, self.activity.ready(), &mut self.sample);
            run.read_cut = piece.read_cut;
            self.gather_activity_run(&mut run);
            let split = run.split(self.log_type, ordinal, self.sample.len());
            return Ok(Some((split, TextAt::Sample)));
        }
        let split = Split {
            log_type: self.log_type,
            kind: SplitKind::Piece(piece.kind),
            line: piece.line,
            ordinal,
            truncated: piece.truncated,
            read_cut: piece.read_cut,
            limit: self.limit,
        };
        Ok(Some((split, TextAt::Ready)))
    }

    /// Adds the pieces that go on a run of control bytes; the first that does not is held.
    fn gather_activity_run(&mut self, run: &mut Run) {
        loop {
            let piece = match self.next_piece() {
                Ok(Some(piece)) => piece,
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    run.read_cut = true;
                    return;
                }
            };
            if !self.piece_is_control(&piece) {
                self.held_piece = Some(piece);
                return;
            }
            run.add(piece.line, piece.new_line, self.activity.ready());
            run.read_cut |= piece.read_cut;
        }
    }
}

/// Whether a pipe-log line is part of a run of control bytes: mostly control bytes, and no
/// record. Counting is cheaper than parsing: a line is parsed here only when it is mostly
/// control bytes.
fn line_is_control(log_type: LogType, line: &Line<'_>, scratch: &mut String, limit: usize) -> bool {
    mostly_control(line.bytes) && {
        let (body, _) = pipe_body(
            log_type,
            line.bytes,
            line.number,
            line.continuation,
            line.cut,
            scratch,
            limit,
        );
        body_is_error(&body)
    }
}

fn body_is_error(body: &Body<'_>) -> bool {
    matches!(body, Body::ParseError { .. })
}
