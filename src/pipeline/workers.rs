//! Typing and rendering on worker threads, in order. What depends on the records before a record
//! (lines, ordinals, runs of control bytes: [`Parser::next_split`]) stays on the calling thread,
//! which copies the split records into batches and hands each to the worker with the fewest
//! batches not yet rendered (on a shared machine one worker's core is busier than another's:
//! handing out in turn would leave the other idle while the batch to emit next waits); each
//! worker types, redacts, counts and renders a whole batch, and the calling thread emits the
//! batches' lines in the order it handed them out. The lines are those of one thread doing it
//! all, byte for byte: only where the typing runs changes.
//!
//! Budget of this stage: at most [`BATCHES_IN_FLIGHT`] batches handed out, holding at most
//! [`TEXT_IN_FLIGHT`] bytes of text between them (a batch is closed before a record over
//! [`BIG_RECORD`]), each with its rendered lines (about 1 to 5 times its text); spare buffers
//! are kept for the next batches. A record over [`BIG_RECORD`] (a statement can reach
//! `MAX_RECORD_BYTES`, 20 MiB) is not copied into a batch: once the batches before it are
//! emitted it is typed and rendered here, from the parser's buffer, its lines emitted one by
//! one as one thread does it, so it costs no more memory than before the workers.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;

use super::{render, Counts, Spec, Stopped, RENDER_BUFFER};
use crate::logs::{time_column, Parser, Split, Value};
use crate::output::Format;
use crate::redact::{redact_record, redacts_columns};

/// Text a batch is closed at: a few thousand short records, so handing batches between threads
/// costs next to nothing per record.
const BATCH_TEXT: usize = 256 * 1024;
/// Records a batch is closed at.
const BATCH_RECORDS: usize = 4096;
/// Batches handed out and not yet emitted.
const BATCHES_IN_FLIGHT: usize = 4;
/// Text of the batches handed out and not yet emitted (a larger batch goes alone).
const TEXT_IN_FLIGHT: usize = 2 * 1024 * 1024;
/// Text over which a record is rendered on the calling thread rather than copied into a batch.
const BIG_RECORD: usize = 1024 * 1024;
/// Capacity a spare batch keeps (text, and its rendered lines).
const SPARE_TEXT: usize = 2 * BATCH_TEXT;
const SPARE_LINES: usize = 8 * BATCH_TEXT;

/// Split records and their text.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    splits: Vec<(Split, Range<usize>)>,
}

/// A batch's lines, each followed by a newline (`ends[i]` is where line `i` ends, before its
/// newline), and its counts.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// For each record, the lines up to and including its last.
    records: Vec<usize>,
    counts: Counts,
}

impl Lines {
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&end| end + 1));
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }
}

/// Where the lines go.
pub(super) enum Out<'e> {
    /// Each line, without its newline; `false` stops the loop.
    Lines(&'e mut dyn FnMut(&[u8]) -> bool),
    /// Runs of whole lines, each followed by a newline; `false` stops the loop.
    Blocks(&'e mut dyn FnMut(&[u8]) -> bool),
}

/// Threads to type and render on: one a core (none, typing on the calling thread, when there
/// is one core), at most four.
pub(super) fn workers() -> usize {
    match thread::available_parallelism().map_or(1, |n| n.get()) {
        1 => 0,
        n => n.min(4),
    }
}

/// Runs the loop over `parser` with `workers` threads typing and rendering (none: all on this
/// thread), emitting every line in order until the end, a read failure, or `emit` saying stop.
pub(super) fn run<R: Read>(
    parser: &mut Parser<R>,
    spec: &Spec<'_>,
    workers: usize,
    mut emit: Out<'_>,
) -> (Counts, Result<(), Stopped>) {
    if workers == 0 {
        return run_here(parser, spec, &mut emit);
    }
    thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (batches, batches_rx) = mpsc::sync_channel::<(Batch, Lines)>(BATCHES_IN_FLIGHT);
            let (done_tx, done) = mpsc::sync_channel::<(Batch, Lines)>(BATCHES_IN_FLIGHT);
            let provenance = spec.provenance.clone();
            let (input, output, max_line) = (spec.input, spec.output, spec.max_line);
            let sessions = spec.sessions;
            let rendered = Arc::new(AtomicUsize::new(0));
            let counter = rendered.clone();
            let handle = scope.spawn(move || {
                let spec = Spec {
                    input,
                    output,
                    provenance: &provenance,
                    max_line,
                    sessions,
                    collect: None,
                };
                work(&spec, &batches_rx, &done_tx, &counter);
            });
            lanes.push(Lane {
                batches,
                done,
                handle,
                handed: Cell::new(0),
                rendered,
            });
        }
        let mut order = Order::default();
        let mut counts = Counts::default();
        // The worker each batch in flight went to, in order.
        let went_to = RefCell::new(std::collections::VecDeque::with_capacity(BATCHES_IN_FLIGHT));
        let hand = |_: usize, batch| {
            // To the worker with the fewest batches not yet rendered: one whose core is less
            // busy gets ahead, and takes more, rather than leave its core idle while the
            // batch to emit next waits behind another's.
            let at = (0..workers)
                .min_by_key(|&i| lanes[i].unrendered())
                .unwrap_or(0);
            let lane = &lanes[at];
            lane.batches.send(batch).map_err(|_| worker_gone())?;
            lane.handed.set(lane.handed.get() + 1);
            went_to.borrow_mut().push_back(at);
            Ok(())
        };
        let take = |_: usize| {
            let at = went_to.borrow_mut().pop_front().ok_or_else(worker_gone)?;
            lanes[at].done.recv().map_err(|_| worker_gone())
        };
        let mut result = order.drive(parser, spec, &mut counts, &mut emit, hand, take);
        // Closing the channels ends the workers; a panic in one is this object's error.
        let mut panicked = false;
        for lane in lanes {
            drop((lane.batches, lane.done));
            panicked |= lane.handle.join().is_err();
        }
        if panicked {
            result = Err(Stopped::Read(io::Error::other("a parsing thread panicked")));
        }
        counts.lines = parser.lines_read();
        counts.text_bytes = parser.bytes_read();
        (counts, result)
    })
}

/// A worker thread and its channels.
struct Lane<'s> {
    batches: SyncSender<(Batch, Lines)>,
    done: Receiver<(Batch, Lines)>,
    handle: thread::ScopedJoinHandle<'s, ()>,
    /// Batches handed to it, and (counted by the worker) rendered.
    handed: Cell<usize>,
    rendered: Arc<AtomicUsize>,
}

impl Lane<'_> {
    fn unrendered(&self) -> usize {
        (self.handed.get()).saturating_sub(self.rendered.load(Ordering::Relaxed))
    }
}

fn worker_gone() -> Stopped {
    Stopped::Read(io::Error::other("a parsing thread stopped"))
}

/// The calling thread's side: batches handed out in order and taken back in the same order.
#[derive(Default)]
struct Order {
    handed: usize,
    taken: usize,
    text_in_flight: usize,
    /// Text of each batch in flight, in order.
    sizes: std::collections::VecDeque<usize>,
    spare: Vec<(Batch, Lines)>,
    /// Buffers for the records over [`BIG_RECORD`].
    big: Big,
}

impl Order {
    /// Splits, hands out, takes back and emits until the input ends or something stops it.
    /// `hand(n, ..)` gives batch `n` to its worker and `take(n)` waits for it back; their
    /// errors are the loop's.
    fn drive<R: Read>(
        &mut self,
        parser: &mut Parser<R>,
        spec: &Spec<'_>,
        counts: &mut Counts,
        emit: &mut Out<'_>,
        hand: impl Fn(usize, (Batch, Lines)) -> Result<(), Stopped>,
        take: impl Fn(usize) -> Result<(Batch, Lines), Stopped>,
    ) -> Result<(), Stopped> {
        let mut pending: Option<(Batch, Lines)> = None;
        let mut ended: Option<Result<(), Stopped>> = None;
        let mut big: Option<Split> = None;
        loop {
            let in_flight = self.handed - self.taken;
            if pending.is_none()
                && ended.is_none()
                && big.is_none()
                && in_flight < BATCHES_IN_FLIGHT
            {
                let (mut batch, lines) = self.spare.pop().unwrap_or_default();
                match fill(parser, &mut batch) {
                    Ok(Filled::Full) => {}
                    Ok(Filled::End) => ended = Some(Ok(())),
                    Ok(Filled::Big(split)) => big = Some(split),
                    Err(e) => ended = Some(Err(Stopped::Read(e))),
                }
                if batch.splits.is_empty() {
                    self.spare.push((batch, lines));
                } else {
                    pending = Some((batch, lines));
                }
                continue;
            }
            if let Some((batch, lines)) = pending.take() {
                let size = batch.text.len();
                let fits = in_flight == 0
                    || (in_flight < BATCHES_IN_FLIGHT
                        && self.text_in_flight + size <= TEXT_IN_FLIGHT);
                if fits {
                    hand(self.handed, (batch, lines))?;
                    self.handed += 1;
                    self.text_in_flight += size;
                    self.sizes.push_back(size);
                    continue;
                }
                pending = Some((batch, lines));
            }
            if in_flight == 0 {
                if let Some(split) = big.take() {
                    // Everything before it is emitted: now the big record, here.
                    let go_on = self
                        .big
                        .emit(&split, parser.split_text(), spec, counts, emit);
                    parser.release();
                    if !go_on {
                        return Err(Stopped::Emit);
                    }
                    continue;
                }
                return ended.unwrap_or(Ok(()));
            }
            let (batch, lines) = take(self.taken)?;
            self.taken += 1;
            self.text_in_flight -= self.sizes.pop_front().unwrap_or(0);
            let go_on = emit_lines(&batch, &lines, counts, emit, spec);
            self.spare.push(recycle(batch, lines));
            if !go_on {
                return Err(Stopped::Emit);
            }
        }
    }
}

/// Emits a batch's lines and adds its counts; `false` when `emit` said stop. The counts are
/// those of the records emitted, the one `emit` stopped in included, as when one thread does
/// it all: after a stop the records up to it are counted again (here, once). A block counts
/// whole.
fn emit_lines(
    batch: &Batch,
    lines: &Lines,
    counts: &mut Counts,
    emit: &mut Out<'_>,
    spec: &Spec<'_>,
) -> bool {
    collect(batch, spec);
    let emit = match emit {
        Out::Blocks(emit) => {
            counts.absorb(&lines.counts);
            return lines.bytes.is_empty() || emit(&lines.bytes);
        }
        Out::Lines(emit) => emit,
    };
    let Some(stop) = lines.iter().position(|line| !emit(line)) else {
        counts.absorb(&lines.counts);
        return true;
    };
    let records = lines.records.partition_point(|&end| end <= stop) + 1;
    let mut recount = Lines::default();
    render_batch(batch, records, spec, &mut recount, &mut Scratch::default());
    counts.absorb(&recount.counts);
    false
}

/// Gives a batch's records to the spec's session builder, in order (on the calling thread,
/// where batches come back in the order they were split): typed from their text as it was
/// read, before redaction, as a connection log read on its own for its sessions is.
fn collect(batch: &Batch, spec: &Spec<'_>) {
    let Some(builder) = spec.collect else {
        return;
    };
    let mut builder = builder.borrow_mut();
    let mut decoded = String::new();
    for (split, range) in &batch.splits {
        builder.add(&split.record(&batch.text[range.clone()], &mut decoded));
    }
}

/// Empties a batch for reuse, giving back what a huge one grew.
fn recycle(mut batch: Batch, mut lines: Lines) -> (Batch, Lines) {
    batch.text.clear();
    batch.splits.clear();
    crate::logs::release(&mut batch.text, SPARE_TEXT);
    lines.bytes.clear();
    lines.ends.clear();
    lines.records.clear();
    lines.counts = Counts::default();
    crate::logs::release(&mut lines.bytes, SPARE_LINES);
    (batch, lines)
}

/// How filling a batch ended.
enum Filled {
    Full,
    /// The input ended.
    End,
    /// The next record is over [`BIG_RECORD`]: its text stays in the parser
    /// ([`Parser::split_text`]) until the parser is called again.
    Big(Split),
}

/// Splits records into `batch` until it is full, the input ends, or a big record comes. After a
/// read error the batch holds the records before it.
fn fill<R: Read>(parser: &mut Parser<R>, batch: &mut Batch) -> io::Result<Filled> {
    while batch.text.len() < BATCH_TEXT && batch.splits.len() < BATCH_RECORDS {
        let Some((split, text)) = parser.next_split()? else {
            return Ok(Filled::End);
        };
        if text.len() > BIG_RECORD {
            return Ok(Filled::Big(split));
        }
        let start = batch.text.len();
        batch.text.extend_from_slice(text);
        batch.splits.push((split, start..batch.text.len()));
        parser.release();
    }
    Ok(Filled::Full)
}

/// The buffers a record over [`BIG_RECORD`] is rendered with, on the calling thread.
#[derive(Default)]
struct Big {
    scratch: Scratch,
    /// A line and its newline, for [`Out::Blocks`].
    line: Vec<u8>,
}

impl Big {
    /// Types, redacts, counts, renders and emits one record whose text is `text`, line by line
    /// (parts, over the line limit); `false` when `emit` said stop.
    fn emit(
        &mut self,
        split: &Split,
        text: &[u8],
        spec: &Spec<'_>,
        counts: &mut Counts,
        out: &mut Out<'_>,
    ) -> bool {
        let Scratch {
            text: decoded,
            redacted,
            record: buf,
        } = &mut self.scratch;
        let record = split.record(text, decoded);
        if let Some(builder) = spec.collect {
            builder.borrow_mut().add(&record);
        }
        let record = if spec.output.redact {
            redact_record(record, redacted)
        } else {
            record
        };
        counts.count(&record);
        let join = spec.join(&record);
        counts.count_join(join);
        let go_on = match out {
            Out::Lines(emit) => render(&record, spec, buf, counts, join, *emit),
            Out::Blocks(emit) => {
                let line_buf = &mut self.line;
                render(&record, spec, buf, counts, join, &mut |line| {
                    line_buf.clear();
                    line_buf.extend_from_slice(line);
                    line_buf.push(b'\n');
                    emit(line_buf)
                })
            }
        };
        crate::logs::release(buf, RENDER_BUFFER);
        crate::logs::release(decoded, crate::logs::MAX_RAW_BYTES);
        crate::logs::release(redacted, crate::logs::MAX_RAW_BYTES);
        crate::logs::release(&mut self.line, RENDER_BUFFER);
        go_on
    }
}

/// A worker: types, redacts, counts and renders each batch it is handed, and hands it back.
fn work(
    spec: &Spec<'_>,
    batches: &Receiver<(Batch, Lines)>,
    done: &SyncSender<(Batch, Lines)>,
    rendered: &AtomicUsize,
) {
    let mut scratch = Scratch::default();
    for (batch, mut lines) in batches {
        render_batch(&batch, batch.splits.len(), spec, &mut lines, &mut scratch);
        rendered.fetch_add(1, Ordering::Relaxed);
        if done.send((batch, lines)).is_err() {
            return; // the calling thread stopped
        }
    }
}

/// Buffers a worker reuses from record to record.
#[derive(Default)]
struct Scratch {
    /// A record's text when it is not valid UTF-8.
    text: String,
    /// A redacted text.
    redacted: String,
    /// One rendered record (split into parts, or measured first).
    record: Vec<u8>,
}

/// Types, redacts, counts and renders the first `records` records of `batch` into `lines`.
fn render_batch(
    batch: &Batch,
    records: usize,
    spec: &Spec<'_>,
    lines: &mut Lines,
    scratch: &mut Scratch,
) {
    let Scratch {
        text,
        redacted,
        record: buf,
    } = scratch;
    // Which pipe-log lines hold a secret (they take the way through the record, which masks
    // their columns): one prefilter scan over the batch's text, not one call a line.
    let mut secret = Vec::new();
    let splits = &batch.splits[..records.min(batch.splits.len())];
    if spec.output.format == Format::Raw
        && spec.output.redact
        && splits
            .first()
            .is_some_and(|(split, _)| !redacts_columns(split.log_type))
    {
        let ranges: Vec<Range<usize>> = splits.iter().map(|(_, r)| r.clone()).collect();
        crate::mask::lines_to_mask(&batch.text, &ranges, &mut secret);
    }
    for (i, (split, range)) in splits.iter().enumerate() {
        let bytes = &batch.text[range.clone()];
        let secret = secret.get(i).copied().unwrap_or(false);
        // Rendered in place, the common case. A record over the line limit is taken back and
        // split into parts through `buf`, and one whose text alone could be (escaping grows
        // text up to sixfold) goes there at once, never rendered whole.
        let small = spec.max_line.is_none_or(|max| bytes.len() <= max / 8);
        if !(small && !secret && write_typed(split, bytes, spec, lines, text)) {
            let record = split.record(bytes, text);
            let record = if spec.output.redact {
                redact_record(record, redacted)
            } else {
                record
            };
            lines.counts.count(&record);
            let join = spec.join(&record);
            lines.counts.count_join(join);
            let start = lines.bytes.len();
            if small {
                spec.output
                    .format
                    .write_record(&mut lines.bytes, &record, spec.provenance, join);
            }
            if !small
                || spec
                    .max_line
                    .is_some_and(|max| lines.bytes.len() - start > max)
            {
                lines.bytes.truncate(start);
                let (bytes, ends) = (&mut lines.bytes, &mut lines.ends);
                render(&record, spec, buf, &mut lines.counts, join, &mut |line| {
                    bytes.extend_from_slice(line);
                    ends.push(bytes.len());
                    bytes.push(b'\n');
                    true
                });
            } else {
                lines.ends.push(lines.bytes.len());
                lines.bytes.push(b'\n');
            }
            lines.records.push(lines.ends.len());
        }
        // One huge record must not hold its memory for the rest of the object.
        crate::logs::release(buf, RENDER_BUFFER);
        crate::logs::release(text, crate::logs::MAX_RAW_BYTES);
        crate::logs::release(redacted, crate::logs::MAX_RAW_BYTES);
    }
}

/// Types and writes a whole line of a pipe log, `raw`, straight into `lines` as its columns
/// are typed (no record in between): the same line and counts as the way through
/// [`Split::record`], which is taken (`false`, `lines` as it was) for every other record, a
/// line that does not type (its `parse_error`), and a line over the line limit.
fn write_typed(
    split: &Split,
    text: &[u8],
    spec: &Spec<'_>,
    lines: &mut Lines,
    scratch: &mut String,
) -> bool {
    // A line that holds a secret takes the way through the record, which masks its columns:
    // the caller tells them apart ([`crate::mask::lines_to_mask`]).
    if spec.output.format != Format::Raw || (spec.output.redact && redacts_columns(split.log_type))
    {
        return false;
    }
    let names = split.log_type.columns();
    let out = &mut lines.bytes;
    let start = out.len();
    let Some(writer) = spec.provenance.begin_columns(out, names) else {
        return false;
    };
    let time_at = time_column(names);
    let mut time = None;
    let typed = split.type_columns(text, scratch, |at, value| {
        if Some(at) == time_at {
            if let Value::Time(t) = value {
                time = Some(t);
            }
        }
        writer.column(out, at, &value);
    });
    let Some(typed) = typed else {
        writer.cancel(out);
        return false;
    };
    writer.finish(out, &typed);
    if spec.max_line.is_some_and(|max| out.len() - start > max) {
        out.truncate(start);
        return false;
    }
    lines.ends.push(out.len());
    out.push(b'\n');
    lines.records.push(lines.ends.len());
    lines.counts.count_columns(typed.line, time);
    true
}

/// [`run`] without threads: each batch typed and rendered here, then emitted.
fn run_here<R: Read>(
    parser: &mut Parser<R>,
    spec: &Spec<'_>,
    emit: &mut Out<'_>,
) -> (Counts, Result<(), Stopped>) {
    let mut counts = Counts::default();
    let mut scratch = Scratch::default();
    let mut big = Big::default();
    let (mut batch, mut lines) = (Batch::default(), Lines::default());
    let result = loop {
        let filled = fill(parser, &mut batch);
        render_batch(&batch, batch.splits.len(), spec, &mut lines, &mut scratch);
        if !emit_lines(&batch, &lines, &mut counts, emit, spec) {
            break Err(Stopped::Emit);
        }
        (batch, lines) = recycle(batch, lines);
        match filled {
            Ok(Filled::Full) => {}
            Ok(Filled::Big(split)) => {
                let go_on = big.emit(&split, parser.split_text(), spec, &mut counts, emit);
                parser.release();
                if !go_on {
                    break Err(Stopped::Emit);
                }
            }
            Ok(Filled::End) => break Ok(()),
            Err(e) => break Err(Stopped::Read(e)),
        }
    };
    counts.lines = parser.lines_read();
    counts.text_bytes = parser.bytes_read();
    (counts, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogType;
    use crate::output::{Join, Provenance};
    use crate::pipeline::{Input, Output};

    const USER: &str =
        "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416";
    /// Pipe-log lines for the user and the connection log, good and bad.
    const PIPE_LINES: &[&[u8]] = &[
        b"x1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        b"1|rdsdb | |alter |1|1|1|infinity|14872|99999999999999999999|Thu, 3 Dec 2020 10:18:38:416",
        b"1|rdsdb | |alter |7|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        b"1|rdsdb | |alter |1|1|1||14872|1061|Thu, 33 Dec 2020 10:18:38:416",
        b"1|rdsdb | |alter |1|1|1||14872|1061|",
        b"1|rdsdb | |alter |1|1|1",
        b"1|rdsdb | |alter |1|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416|new |col|",
        b"1|r\xe9db | |alter |1|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        b"authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |",
        b"initiating session |Tue, 8 Dec 2020 20:01:55:177|::ffff:10.0.0.1 |5439 |5108|dev |rdsdb |password |0|TLSv1.2 |ECDHE |1500| | | |psql |Linux 5.4 |libpq 13 |none |0|da9e|zstd |more| extra |",
        b"authenticated |Mon, 7 Dec 2020 25:01:55:177|[local] | |5108|",
        b"authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] |port |5108|",
        b"authenticated ",
        b"|",
        b"",
    ];
    const HEADER: &str =
        "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: ";

    /// Text of every kind of record: whole ones, parse errors, runs of control bytes, blank
    /// lines, cut lines, secrets, non-UTF-8.
    fn mixed(log_type: LogType, records: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..records {
            match (log_type, i % 11) {
                (_, 3) => text.extend_from_slice(b"not a record password 'hunter2'\n"),
                (_, 5) => text.extend_from_slice(&[0u8; 300]),
                (_, 6) => text.extend_from_slice(b"\x01\x02\x03\n\n"),
                (_, 7) => text.extend_from_slice(b"caf\xe9 \xff\n"),
                (_, 8) => text.extend_from_slice(&vec![b'x'; 3000]),
                // Lines of the pipe logs that do not type: each column's error, too few and
                // too many columns, extra columns, non-UTF-8 in a column.
                (LogType::ConnectionLog | LogType::UserLog, _) if i % 13 == 1 => {
                    text.extend_from_slice(PIPE_LINES[(i / 13) % PIPE_LINES.len()]);
                    text.push(b'\n');
                }
                (LogType::UserActivityLog, _) => {
                    text.extend_from_slice(HEADER.as_bytes());
                    text.extend_from_slice(
                        format!("select {i}\n  from t -- line two\n").as_bytes(),
                    );
                }
                _ => text.extend_from_slice(format!("{USER}\n").as_bytes()),
            }
        }
        text
    }

    /// The raw format of an audit log, redacted, as `parse` runs it.
    fn raw_spec<'a>(
        log_type: LogType,
        provenance: &'a Provenance,
        max_line: Option<usize>,
    ) -> Spec<'a> {
        Spec {
            input: Input::AuditLog(log_type),
            output: Output::default(),
            provenance,
            max_line,
            sessions: None,
            collect: None,
        }
    }

    fn run_with(
        log_type: LogType,
        text: &[u8],
        workers: usize,
        max_line: Option<usize>,
        stop_after: usize,
    ) -> (Vec<Vec<u8>>, Counts, String) {
        run_limited(log_type, text, 1000, workers, max_line, stop_after)
    }

    fn run_limited(
        log_type: LogType,
        text: &[u8],
        limit: usize,
        workers: usize,
        max_line: Option<usize>,
        stop_after: usize,
    ) -> (Vec<Vec<u8>>, Counts, String) {
        let provenance = Provenance::new(log_type, None, Some("b"), "k");
        let spec = raw_spec(log_type, &provenance, max_line);
        let mut parser = Parser::with_limit(log_type, text, limit);
        let mut lines = Vec::new();
        let (counts, result) = run(
            &mut parser,
            &spec,
            workers,
            Out::Lines(&mut |line| {
                lines.push(line.to_vec());
                lines.len() < stop_after
            }),
        );
        (lines, counts, format!("{result:?}"))
    }

    /// The loop as one thread does it, record by record: what the workers must match.
    fn one_by_one(
        log_type: LogType,
        text: &[u8],
        max_line: Option<usize>,
    ) -> (Vec<Vec<u8>>, Counts) {
        one_by_one_limited(log_type, text, 1000, max_line)
    }

    fn one_by_one_limited(
        log_type: LogType,
        text: &[u8],
        limit: usize,
        max_line: Option<usize>,
    ) -> (Vec<Vec<u8>>, Counts) {
        let provenance = Provenance::new(log_type, None, Some("b"), "k");
        let spec = raw_spec(log_type, &provenance, max_line);
        let mut parser = Parser::with_limit(log_type, text, limit);
        let (mut lines, mut counts) = (Vec::new(), Counts::default());
        let (mut buf, mut scratch) = (Vec::new(), String::new());
        while let Some(record) = parser.next_record().unwrap() {
            let record = redact_record(record, &mut scratch);
            counts.count(&record);
            render(
                &record,
                &spec,
                &mut buf,
                &mut counts,
                Join::Off,
                &mut |line| {
                    lines.push(line.to_vec());
                    true
                },
            );
        }
        counts.lines = parser.lines_read();
        counts.text_bytes = parser.bytes_read();
        (lines, counts)
    }

    #[test]
    fn any_number_of_workers_emits_the_same_lines_and_counts() {
        for log_type in LogType::ALL {
            // Enough records for many batches.
            let text = mixed(log_type, 8_000);
            for max_line in [None, Some(700), Some(2_000)] {
                let (want, want_counts, want_result) =
                    run_with(log_type, &text, 0, max_line, usize::MAX);
                assert!(want.len() > 6_000, "{log_type}: {}", want.len());
                let (reference, reference_counts) = one_by_one(log_type, &text, max_line);
                assert!(want == reference, "{log_type} {max_line:?}");
                assert_eq!(want_counts, reference_counts, "{log_type} {max_line:?}");
                for workers in [1, 2, 3] {
                    let (got, counts, result) =
                        run_with(log_type, &text, workers, max_line, usize::MAX);
                    assert!(got == want, "{log_type} {workers} workers {max_line:?}");
                    assert_eq!(counts, want_counts, "{log_type} {workers}");
                    assert_eq!(result, want_result);
                }
            }
        }
    }

    #[test]
    fn records_over_the_big_size_come_in_order_between_the_batches() {
        let big = |i: usize| format!("select {i}, '{}'\n", "y".repeat(BIG_RECORD + 10));
        for log_type in LogType::ALL {
            let mut text = Vec::new();
            for i in 0..3 {
                text.extend_from_slice(&mixed(log_type, 2_000));
                if log_type == LogType::UserActivityLog {
                    text.extend_from_slice(HEADER.as_bytes());
                }
                text.extend_from_slice(big(i).as_bytes());
            }
            let limit = 4 * BIG_RECORD;
            for max_line in [None, Some(BIG_RECORD / 2)] {
                let (want, want_counts) = one_by_one_limited(log_type, &text, limit, max_line);
                for workers in [0, 2] {
                    let (got, counts, result) =
                        run_limited(log_type, &text, limit, workers, max_line, usize::MAX);
                    assert!(got == want, "{log_type} {workers} workers {max_line:?}");
                    assert_eq!(counts, want_counts, "{log_type} {workers} {max_line:?}");
                    assert_eq!(result, "Ok(())");
                }
                // A stop in (or right after) the first big record counts the records up to it,
                // as one thread does. (How far reading got differs: workers read ahead.)
                let big_line = want.iter().position(|l| l.len() > 60_000);
                let stop = big_line.expect("a big record's line") + 2;
                let counted = |workers| {
                    let (lines, c, _) =
                        run_limited(log_type, &text, limit, workers, max_line, stop);
                    let counts = (
                        c.records,
                        c.parse_errors,
                        c.split_records,
                        c.last_record_line,
                    );
                    (lines.len(), counts, c.first_time, c.last_time)
                };
                assert_eq!(counted(0), counted(2), "{log_type} {max_line:?}");
                assert_eq!(counted(0).0, stop, "{log_type} {max_line:?}");
            }
        }
    }

    #[test]
    fn emit_stops_every_mode_at_the_same_line() {
        let text = mixed(LogType::UserLog, 20_000);
        for workers in [0, 1, 2] {
            let (got, counts, result) = run_with(LogType::UserLog, &text, workers, None, 5_000);
            assert_eq!(got.len(), 5_000, "{workers}");
            assert_eq!(result, "Err(Emit)");
            // The records emitted are counted, and no more.
            assert_eq!(counts.records, 5_000, "{workers}");
        }
    }

    #[test]
    fn a_read_failure_comes_after_every_record_before_it() {
        struct CutAfter(io::Cursor<Vec<u8>>);
        impl Read for CutAfter {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
                    n => Ok(n),
                }
            }
        }
        let log_type = LogType::ConnectionLog;
        let text = mixed(log_type, 10_000);
        let provenance = Provenance::new(log_type, None, Some("b"), "k");
        let spec = raw_spec(log_type, &provenance, None);
        let mut outcomes = Vec::new();
        for workers in [0, 2] {
            let mut parser = Parser::new(log_type, CutAfter(io::Cursor::new(text.clone())));
            let mut lines = 0;
            let (counts, result) = run(
                &mut parser,
                &spec,
                workers,
                Out::Lines(&mut |_| {
                    lines += 1;
                    true
                }),
            );
            assert!(
                matches!(&result, Err(Stopped::Read(e)) if e.kind() == io::ErrorKind::ConnectionReset),
                "{result:?}"
            );
            assert_eq!(lines, counts.records);
            outcomes.push((lines, counts));
        }
        assert_eq!(outcomes[0], outcomes[1]);
    }
}
