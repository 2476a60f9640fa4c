//! Bounded line reading: lines out of any `Read`, without a `String` per line and without
//! letting one endless line take unbounded memory.

use std::io::{self, Read};

/// Initial buffer size; it grows only for lines longer than this. Budget of the line reader:
/// 256 KiB, up to the record limit (20 MiB) + 2 while a longer line is read, and back to 256 KiB
/// after it ([`LineReader::release`]).
const INITIAL_BUFFER: usize = 256 * 1024;

/// One line, without its `\n` or `\r\n`.
#[derive(Debug)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// 1-based line number in the file.
    pub number: u64,
    /// This is a later piece of a line longer than the reader's limit.
    pub continuation: bool,
    /// The line goes on past this piece (it was cut at the limit).
    pub cut: bool,
    /// A read failed right after this piece: the line may be incomplete.
    pub at_failure: bool,
}

/// Where the last line read sits in the reader's buffer; valid until the next read.
#[derive(Debug, Clone)]
pub struct LineMeta {
    range: std::ops::Range<usize>,
    /// 1-based line number in the file.
    pub number: u64,
    /// This is a later piece of a line longer than the reader's limit.
    pub continuation: bool,
    /// The line goes on past this piece (it was cut at the limit).
    pub cut: bool,
    /// A read failed right after this piece: the line may be incomplete.
    pub at_failure: bool,
}

/// Reads lines of at most `max_line` bytes; a longer line is handed out in pieces of that size,
/// so no byte is lost and memory stays bounded.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    max_line: usize,
    next_number: u64,
    /// The previous piece was cut: the next one continues the same line.
    in_long_line: bool,
    bytes_read: u64,
    /// A read failed; handed out once the bytes before it are.
    failed: Option<io::Error>,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        let max_line = max_line.max(1);
        LineReader {
            inner,
            buf: vec![0; INITIAL_BUFFER.min(max_line + 2)],
            start: 0,
            end: 0,
            eof: false,
            max_line,
            next_number: 1,
            in_long_line: false,
            bytes_read: 0,
            failed: None,
        }
    }

    /// Lines begun so far (a long line counts once, from its first piece).
    pub fn lines_read(&self) -> u64 {
        self.next_number - 1 + u64::from(self.in_long_line)
    }

    /// Bytes read from the inner reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line, or `None` at the end of input. An I/O error (a truncated gzip stream, a
    /// dropped connection) ends the reading; what came before it was already handed out.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        Ok(self.advance()?.map(|m| self.line(&m)))
    }

    /// Gives back the memory a long line grew the buffer to, once the bytes left in it fit the
    /// initial size again. Invalidates the last `LineMeta`.
    pub fn release(&mut self) {
        let left = self.end - self.start;
        if self.buf.len() > 4 * INITIAL_BUFFER && left <= INITIAL_BUFFER / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = left;
            self.buf.truncate(INITIAL_BUFFER.min(self.max_line + 2));
            self.buf.shrink_to_fit();
        }
    }

    /// The line `meta` describes; `meta` must come from the latest `advance`.
    pub fn line(&self, meta: &LineMeta) -> Line<'_> {
        Line {
            bytes: &self.buf[meta.range.clone()],
            number: meta.number,
            continuation: meta.continuation,
            cut: meta.cut,
            at_failure: meta.at_failure,
        }
    }

    /// Like `next_line`, but leaves the bytes in the buffer (see `line`), so a caller may loop.
    pub fn advance(&mut self) -> io::Result<Option<LineMeta>> {
        let mut searched = 0;
        loop {
            let window = &self.buf[self.start + searched..self.end];
            if let Some(pos) = memchr::memchr(b'\n', window) {
                let line_end = self.start + searched + pos;
                let len = line_end - self.start;
                // A `\r` before the newline is not part of the line, so it does not count.
                if len <= self.max_line
                    || (len == self.max_line + 1 && self.buf[line_end - 1] == b'\r')
                {
                    let begin = self.start;
                    self.start = line_end + 1;
                    return Ok(Some(self.emit(begin, line_end, false, false)));
                }
            }
            searched = self.end - self.start;
            let may_be_crlf =
                searched == self.max_line + 1 && self.buf[self.start + self.max_line] == b'\r';
            if searched > self.max_line && !may_be_crlf {
                // Cut: hand out max_line bytes, keep the rest for the next piece.
                let begin = self.start;
                self.start += self.max_line;
                return Ok(Some(self.emit(begin, begin + self.max_line, true, false)));
            }
            if self.eof || self.failed.is_some() {
                if self.start == self.end {
                    return match self.failed.take() {
                        Some(e) => Err(e),
                        None => Ok(None),
                    };
                }
                // The last line; after a failed read it may be incomplete, so it counts as cut.
                let (begin, end) = (self.start, self.end);
                self.start = self.end;
                let cut = self.failed.is_some();
                return Ok(Some(self.emit(begin, end, cut, cut)));
            }
            if let Err(e) = self.fill() {
                self.failed = Some(e);
            }
        }
    }

    fn emit(&mut self, begin: usize, end: usize, cut: bool, at_failure: bool) -> LineMeta {
        let continuation = self.in_long_line;
        self.in_long_line = cut;
        let number = self.next_number;
        if !cut {
            self.next_number += 1;
        }
        let end = if !cut && end > begin && self.buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        LineMeta {
            range: begin..end,
            number,
            continuation,
            cut,
            at_failure,
        }
    }

    /// Makes room at the end of the buffer and reads once into it.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2)
                .min(self.max_line + 2)
                .max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(Vec<u8>, u64, bool, bool)> {
        // A reader that hands out 3 bytes at a time, to cross every boundary.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = LineReader::new(Trickle(input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.bytes.to_vec(), l.number, l.continuation, l.cut));
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        let got = collect(b"a\r\nbb\n\nccc", 100);
        let lines: Vec<_> = got.iter().map(|l| (l.0.as_slice(), l.1)).collect();
        assert_eq!(
            lines,
            vec![(&b"a"[..], 1), (b"bb", 2), (b"", 3), (b"ccc", 4)]
        );
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 10).is_empty());
    }

    #[test]
    fn long_line_comes_in_pieces_and_nothing_is_lost() {
        let got = collect(b"0123456789abc\nxy\n", 4);
        let pieces: Vec<_> = got
            .iter()
            .map(|l| String::from_utf8(l.0.clone()).unwrap())
            .collect();
        assert_eq!(pieces, vec!["0123", "4567", "89ab", "c", "xy"]);
        assert_eq!(
            got.iter().map(|l| l.1).collect::<Vec<_>>(),
            vec![1, 1, 1, 1, 2]
        );
        assert_eq!(
            got.iter().map(|l| l.2).collect::<Vec<_>>(),
            vec![false, true, true, true, false]
        );
        assert_eq!(
            got.iter().map(|l| l.3).collect::<Vec<_>>(),
            vec![true, true, true, false, false]
        );
    }

    #[test]
    fn line_of_exactly_the_limit_is_whole() {
        let got = collect(b"abcd\nef\n", 4);
        assert_eq!(got[0], (b"abcd".to_vec(), 1, false, false));
        assert_eq!(got[1], (b"ef".to_vec(), 2, false, false));
    }

    #[test]
    fn bytes_before_a_failed_read_come_first_marked_cut() {
        struct HalfThenFail(bool);
        impl Read for HalfThenFail {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
                }
                buf[..9].copy_from_slice(
                    b"one
two-h",
                );
                Ok(9)
            }
        }
        let mut r = LineReader::new(HalfThenFail(false), 100);
        let first = r.next_line().unwrap().unwrap();
        assert_eq!((first.bytes, first.cut), (&b"one"[..], false));
        let second = r.next_line().unwrap().unwrap();
        assert_eq!((second.bytes, second.cut), (&b"two-h"[..], true));
        assert_eq!(
            r.next_line().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn crlf_line_of_exactly_the_limit_is_whole() {
        let got = collect(b"abcd\r\nef\r\n", 4);
        assert_eq!(got[0], (b"abcd".to_vec(), 1, false, false));
        assert_eq!(got[1], (b"ef".to_vec(), 2, false, false));
        let got = collect(b"abcd\rX\n", 4);
        assert_eq!(
            got[0],
            (b"abcd".to_vec(), 1, false, true),
            "a lone \\r is data"
        );
    }

    #[test]
    fn io_error_is_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"))
            }
        }
        let mut r = LineReader::new(Broken, 10);
        assert!(r.next_line().is_err());
    }
}
