//! Compression detection and streaming decompression (gzip, every member, or plain text), and a
//! read-ahead thread so inflating runs beside parsing.
//!
//! Inputs are what their bytes say, never what their names say. Other compressions and container
//! formats (bzip2, xz, zstd, zip, Parquet, 7z, lz4) are refused before a byte is read as text:
//! the error is an [`io::Error`] of kind [`io::ErrorKind::InvalidData`] carrying a
//! [`ForeignFormat`]. After the last gzip member, zero padding (as some copy tools leave) ends
//! the stream as `gzip -d` ends it; any other trailing byte is an error carrying
//! [`TrailingBytes`]. Both are facts about the stored bytes, so retrying cannot help: tell them
//! from read errors with [`not_retryable`] (or [`foreign_format`] for the format's name).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use flate2::bufread::GzDecoder;

/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Input buffer for the decompressor.
const COMPRESSED_BUFFER: usize = 128 * 1024;

/// Bytes read before deciding: the longest magic in [`FOREIGN_MAGIC`].
const SNIFF: usize = 6;

/// A format that is not a Redshift audit log's (gzip or plain text), named by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignFormat {
    Bzip2,
    Xz,
    Zstd,
    Zip,
    Parquet,
    SevenZip,
    Lz4,
}

/// Magic bytes of the foreign formats, from each format's specification. bzip2's `BZh` is
/// followed by the block size digit, checked separately so text starting with `BZh` stays text.
const FOREIGN_MAGIC: [(&[u8], ForeignFormat); 8] = [
    (b"BZh", ForeignFormat::Bzip2),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], ForeignFormat::Xz),
    (&[0x28, 0xb5, 0x2f, 0xfd], ForeignFormat::Zstd),
    (b"PK\x03\x04", ForeignFormat::Zip),
    (b"PK\x05\x06", ForeignFormat::Zip), // an empty archive
    (b"PAR1", ForeignFormat::Parquet),
    (
        &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c],
        ForeignFormat::SevenZip,
    ),
    (&[0x04, 0x22, 0x4d, 0x18], ForeignFormat::Lz4),
];

impl ForeignFormat {
    /// The format's usual name, for messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ForeignFormat::Bzip2 => "bzip2",
            ForeignFormat::Xz => "xz",
            ForeignFormat::Zstd => "zstd",
            ForeignFormat::Zip => "zip",
            ForeignFormat::Parquet => "Parquet",
            ForeignFormat::SevenZip => "7z",
            ForeignFormat::Lz4 => "lz4",
        }
    }

    fn of(prefix: &[u8]) -> Option<ForeignFormat> {
        FOREIGN_MAGIC
            .iter()
            .find(|(magic, format)| {
                prefix.starts_with(magic)
                    && (*format != ForeignFormat::Bzip2
                        || prefix.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)))
            })
            .map(|&(_, format)| format)
    }
}

impl fmt::Display for ForeignFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the input is {} data (by its first bytes), not gzip or plain text; it was not read",
            self.name()
        )
    }
}

impl std::error::Error for ForeignFormat {}

/// Bytes after a gzip member that are neither another member nor zero padding to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "trailing bytes after gzip member {members} that are neither another gzip member nor zero \
     padding (first such byte 0x{first:02x}, {zeros} zero bytes before it)"
)]
pub struct TrailingBytes {
    /// Members decoded before the trailing bytes.
    pub members: u64,
    /// The first byte that is not padding.
    pub first: u8,
    /// Zero bytes between the last member and `first`.
    pub zeros: u64,
}

/// The foreign format an error from this module reports, if that is what it is.
pub fn foreign_format(err: &io::Error) -> Option<ForeignFormat> {
    err.get_ref()?.downcast_ref::<ForeignFormat>().copied()
}

/// Whether `err` says the stored bytes themselves are refused ([`ForeignFormat`] or
/// [`TrailingBytes`]), so reading the same object again cannot succeed. Other errors (a broken
/// connection, a truncated or corrupt gzip stream) cannot be told apart from transient ones.
pub fn not_retryable(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|e| e.is::<ForeignFormat>() || e.is::<TrailingBytes>() || e.is::<Expanded>())
}

/// Text read before the expansion bound applies: a small object may expand far (an hour of
/// idle connection log compresses 300 to 1), and 64 MiB of text is cheap to forward.
pub const EXPANSION_GRACE_BYTES: u64 = 64 * 1024 * 1024;

/// `MAX_EXPANSION` when unset: gzip of log text expands about 3 to 15 times (the bench corpus:
/// 4 to 8), so 200 leaves room and still stops a gzip bomb (zeros expand about 1,000 times)
/// after its first 64 MiB.
pub const DEFAULT_MAX_EXPANSION: u32 = 200;

/// The decompressed text grew past `max` times the compressed bytes read for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "stopped: the text grew past {max} times the compressed size ({text_bytes} bytes of text \
     from {compressed_bytes} compressed bytes), which no Redshift audit log does (MAX_EXPANSION)"
)]
pub struct Expanded {
    pub text_bytes: u64,
    pub compressed_bytes: u64,
    pub max: u32,
}

/// Counts the bytes read through it into a shared counter.
struct Counted<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Fails with [`Expanded`] once the text is past the grace and `max` times the compressed bytes.
struct Bounded<R> {
    inner: R,
    compressed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    text: u64,
    max: u32,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.text += n as u64;
        if self.text > EXPANSION_GRACE_BYTES {
            let compressed = self.compressed.load(std::sync::atomic::Ordering::Relaxed);
            if self.text > compressed.saturating_mul(u64::from(self.max)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    Expanded {
                        text_bytes: self.text,
                        compressed_bytes: compressed,
                        max: self.max,
                    },
                ));
            }
        }
        Ok(n)
    }
}

/// How the bytes of an object are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Plain,
    /// Not an audit log's encoding: refused, never read.
    Foreign(ForeignFormat),
}

/// Decides from the first bytes alone (names lie: `.gz` files may be plain, and the other way).
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if let Some(format) = ForeignFormat::of(prefix) {
        Compression::Foreign(format)
    } else {
        Compression::Plain
    }
}

/// Wraps `input` in a decompressor if its first bytes say gzip. An empty input is plain (and
/// has no lines). Every gzip member is decoded, and zero padding after the last one is skipped;
/// a truncated or corrupt stream, or other trailing bytes, is an I/O error from `read` once the
/// good part has been read. A foreign format is an error here, before anything is read as text.
pub fn decompressed<R: Read + Send + 'static>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + Send>)> {
    let mut prefix = [0u8; SNIFF];
    let mut have = 0;
    while have < prefix.len() {
        match input.read(&mut prefix[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let head = io::Cursor::new(prefix[..have].to_vec());
    let whole = head.chain(input);
    Ok(match detect(&prefix[..have]) {
        Compression::Gzip => (
            Compression::Gzip,
            Box::new(Members::new(BufReader::with_capacity(
                COMPRESSED_BUFFER,
                whole,
            ))),
        ),
        Compression::Plain => (Compression::Plain, Box::new(whole)),
        Compression::Foreign(format) => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format))
        }
    })
}

/// Every gzip member of a stream in turn, then the end: at the end of the input, or at zero
/// padding that runs to the end. flate2's `MultiGzDecoder` would read padding as a broken
/// header; this is the same member loop with `gzip -d`'s rule for what may follow.
struct Members<R: BufRead> {
    /// The member being read, or the last one once it ended.
    decoder: Option<GzDecoder<R>>,
    /// Members started so far.
    members: u64,
    /// Zero bytes consumed after the last member.
    padding: u64,
}

/// What follows a finished member.
enum AfterMember {
    Member,
    End,
}

impl<R: BufRead> Members<R> {
    fn new(input: R) -> Self {
        Members {
            decoder: Some(GzDecoder::new(input)),
            members: 1,
            padding: 0,
        }
    }
}

/// Looks past gzip member number `members`, which just ended, consuming zero padding and
/// counting it in `zeros`. An error leaves the input where it stopped, so asking again answers
/// the same.
fn after_member(
    input: &mut impl BufRead,
    members: u64,
    zeros: &mut u64,
) -> io::Result<AfterMember> {
    let trailing = |first: u8, zeros: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            TrailingBytes {
                members,
                first,
                zeros,
            },
        )
    };
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let Some(&first) = available.first() else {
            return Ok(AfterMember::End);
        };
        if *zeros == 0 && first == GZIP_MAGIC[0] {
            // Another member; a bad header is the decoder's error to report.
            return Ok(AfterMember::Member);
        }
        match available.iter().position(|&b| b != 0) {
            Some(at) => return Err(trailing(available[at], *zeros + at as u64)),
            None => {
                let n = available.len();
                *zeros += n as u64;
                input.consume(n);
            }
        }
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            // The single-member decoder answers 0 only once its member's trailer checked out,
            // and from then on.
            let n = decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match after_member(decoder.get_mut(), self.members, &mut self.padding)? {
                AfterMember::End => return Ok(0),
                AfterMember::Member => {
                    let Some(done) = self.decoder.take() else {
                        return Ok(0);
                    };
                    self.decoder = Some(GzDecoder::new(done.into_inner()));
                    self.members += 1;
                }
            }
        }
    }
}

/// How every input is read for parsing: decompressed if its first bytes say gzip, on a read-ahead
/// thread so inflating runs beside parsing.
pub fn open<R: Read + Send + 'static>(input: R) -> io::Result<ReadAhead> {
    decompressed(input).and_then(|(_, reader)| ReadAhead::new(reader))
}

/// [`open`], stopping with an [`Expanded`] error once the text is past
/// [`EXPANSION_GRACE_BYTES`] and `max_expansion` times the compressed bytes read so far.
pub fn open_bounded<R: Read + Send + 'static>(
    input: R,
    max_expansion: u32,
) -> io::Result<ReadAhead> {
    let compressed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Counted {
        inner: input,
        count: compressed.clone(),
    };
    decompressed(counted).and_then(|(_, reader)| {
        ReadAhead::new(Bounded {
            inner: reader,
            compressed,
            text: 0,
            max: max_expansion,
        })
    })
}

/// Size of each chunk handed from the read-ahead thread.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the threads. Budget of the decode stage: `(CHUNKS + 2) * CHUNK`
/// (1.5 MiB: the chunks queued, the one being filled, the one being read) plus the 128 KiB
/// compressed buffer and the inflater's 32 KiB window.
const CHUNKS: usize = 4;

/// Reads `inner` on its own thread, a few chunks ahead of the consumer.
pub struct ReadAhead {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    worker: Option<JoinHandle<()>>,
}

impl ReadAhead {
    pub fn new<R: Read + Send + 'static>(mut inner: R) -> io::Result<Self> {
        let (full_tx, full) = mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS);
        let (empty, empty_rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS + 1);
        let worker = thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || loop {
                let mut chunk = empty_rx.try_recv().unwrap_or_default();
                chunk.resize(CHUNK, 0);
                let mut filled = 0;
                let result = loop {
                    match inner.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                let last = filled == 0 || result.is_err();
                if filled > 0 && full_tx.send(Ok(chunk)).is_err() {
                    return; // the consumer is gone
                }
                if let Err(e) = result {
                    let _ = full_tx.send(Err(e));
                }
                if last {
                    return;
                }
            })?;
        Ok(ReadAhead {
            full,
            empty,
            current: Vec::new(),
            pos: 0,
            done: false,
            worker: Some(worker),
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.full.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    let _ = self.empty.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Unblock the worker (its sends fail once `full` is gone), then wait for it.
        let (_, dead) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.full, dead));
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn read_to_end_bounded(body: Vec<u8>, max: u32) -> (u64, io::Result<()>) {
        let mut reader = open_bounded(io::Cursor::new(body), max).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (total, Ok(())),
                Ok(n) => total += n as u64,
                Err(e) => return (total, Err(e)),
            }
        }
    }

    #[test]
    fn text_past_max_expansion_after_the_grace_stops_not_retryable() {
        let text = vec![0u8; 80 << 20];
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&text).unwrap();
        let body = encoder.finish().unwrap();
        assert!(
            (80u64 << 20) > body.len() as u64 * 200,
            "zeros expand past 200"
        );
        let (read, result) = read_to_end_bounded(body.clone(), 200);
        let err = result.expect_err("stopped");
        assert!(not_retryable(&err), "{err}");
        assert!(err.to_string().contains("MAX_EXPANSION"), "{err}");
        assert!((EXPANSION_GRACE_BYTES..80 << 20).contains(&read), "{read}");
        // With room for it, the same object reads to its end.
        let (read, result) = read_to_end_bounded(body, 100_000);
        assert!(result.is_ok());
        assert_eq!(read, 80 << 20);
    }

    #[test]
    fn text_under_the_grace_is_never_stopped_however_it_expands() {
        let (read, result) = read_to_end_bounded(gzip(&vec![0u8; 10 << 20]), 50);
        assert!(result.is_ok());
        assert_eq!(read, 10 << 20);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(r: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut r = r;
        r.read_to_end(&mut out).map(|_| out)
    }

    /// Reads until the end or the first error, keeping what came before the error.
    fn read_until_error(mut r: impl Read) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    /// Hands out one byte a call, so every buffer boundary is crossed.
    struct OneByte(io::Cursor<Vec<u8>>);
    impl Read for OneByte {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn lines(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    /// A small but real file of each foreign format (first bytes as its writer puts them).
    fn foreign_samples() -> Vec<(&'static str, Vec<u8>, ForeignFormat)> {
        let with = |magic: &[u8]| {
            let mut v = magic.to_vec();
            v.extend_from_slice(b"\x00\x01\x02 the rest of the file");
            v
        };
        vec![
            ("bzip2", with(b"BZh91AY&SY"), ForeignFormat::Bzip2),
            (
                "xz",
                with(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
                ForeignFormat::Xz,
            ),
            ("zstd", with(&[0x28, 0xb5, 0x2f, 0xfd]), ForeignFormat::Zstd),
            ("zip", with(b"PK\x03\x04\x14\x00"), ForeignFormat::Zip),
            ("empty zip", b"PK\x05\x06".to_vec(), ForeignFormat::Zip),
            ("parquet", with(b"PAR1"), ForeignFormat::Parquet),
            (
                "7z",
                with(&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]),
                ForeignFormat::SevenZip,
            ),
            ("lz4", with(&[0x04, 0x22, 0x4d, 0x18]), ForeignFormat::Lz4),
        ]
    }

    #[test]
    fn detection_table() {
        for (prefix, want) in [
            (&[0x1f, 0x8b, 8][..], Compression::Gzip),
            (b"authenticated |", Compression::Plain),
            (b"", Compression::Plain),
            (&[0x1f][..], Compression::Plain),
            (&[0x8b, 0x1f][..], Compression::Plain),
            (b"BZh9", Compression::Foreign(ForeignFormat::Bzip2)),
            (b"BZh1", Compression::Foreign(ForeignFormat::Bzip2)),
            // Text that merely starts like a magic stays text.
            (b"BZh", Compression::Plain),
            (b"BZhello", Compression::Plain),
            (b"PAR", Compression::Plain),
            (b"PK ", Compression::Plain),
            (&[0xfd, b'7', b'z', b'X', b'Z'][..], Compression::Plain),
            (b"7z archive", Compression::Plain),
        ] {
            assert_eq!(detect(prefix), want, "{prefix:?}");
        }
        for (name, bytes, format) in foreign_samples() {
            assert_eq!(detect(&bytes), Compression::Foreign(format), "{name}");
        }
    }

    #[test]
    fn foreign_formats_are_refused_by_name_before_any_text_is_read() {
        for (name, bytes, format) in foreign_samples() {
            for err in [
                decompressed(io::Cursor::new(bytes.clone())).err(),
                open(io::Cursor::new(bytes.clone())).err(),
                // A reader that dribbles its bytes still shows the whole magic.
                decompressed(OneByte(io::Cursor::new(bytes.clone()))).err(),
            ] {
                let err = err.unwrap_or_else(|| panic!("{name}: read as text"));
                assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}");
                assert_eq!(foreign_format(&err), Some(format), "{name}");
                assert!(not_retryable(&err), "{name}");
                assert!(err.to_string().contains(format.name()), "{name}: {err}");
            }
        }
    }

    #[test]
    fn ordinary_read_errors_are_not_foreign_nor_refused() {
        let err = io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream");
        assert_eq!(foreign_format(&err), None);
        assert!(!not_retryable(&err));
        let err = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(!not_retryable(&err));
    }

    #[test]
    fn zero_padding_after_the_last_member_ends_the_stream_cleanly() {
        let data = lines(50_000);
        let gz = gzip(&data);
        for padding in [
            1,
            2,
            512,
            COMPRESSED_BUFFER - 1,
            COMPRESSED_BUFFER,
            COMPRESSED_BUFFER + 7,
            3 * COMPRESSED_BUFFER + 5,
            1 << 20,
        ] {
            let mut padded = gz.clone();
            padded.resize(gz.len() + padding, 0);
            let (c, r) = decompressed(io::Cursor::new(padded.clone())).unwrap();
            assert_eq!(c, Compression::Gzip);
            assert_eq!(read_all(r).unwrap(), data, "{padding} zero bytes");
            let via_thread = read_all(open(io::Cursor::new(padded.clone())).unwrap());
            assert_eq!(
                via_thread.unwrap(),
                data,
                "{padding} zero bytes, read ahead"
            );
            if padding <= COMPRESSED_BUFFER + 7 {
                let (_, r) = decompressed(OneByte(io::Cursor::new(padded))).unwrap();
                assert_eq!(
                    read_all(r).unwrap(),
                    data,
                    "{padding} zero bytes, one at a time"
                );
            }
        }
    }

    #[test]
    fn two_members_then_padding_are_both_read() {
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        two.extend([0u8; 4096]);
        let (_, r) = decompressed(io::Cursor::new(two)).unwrap();
        assert_eq!(read_all(r).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn other_trailing_bytes_are_an_error_after_the_good_data() {
        let data = lines(1000);
        let mut bzip2 = b"BZh91AY&SY".to_vec();
        bzip2.extend([0u8; 100]);
        let mut late_garbage = vec![0u8; 3 * COMPRESSED_BUFFER];
        late_garbage.push(0x01);
        let mut padding_then_member = vec![0u8; 10];
        padding_then_member.extend(gzip(b"hidden\n"));
        for (name, tail, first, zeros) in [
            ("one byte", b"x".to_vec(), b'x', 0),
            ("text", b"authenticated |...\n".to_vec(), b'a', 0),
            ("bzip2 after gzip", bzip2, b'B', 0),
            ("zeros then a byte", b"\x00\x00\x00x".to_vec(), b'x', 3),
            (
                "zeros past buffers then a byte",
                late_garbage,
                1,
                3 * COMPRESSED_BUFFER as u64,
            ),
            ("zeros then a member", padding_then_member, 0x1f, 10),
        ] {
            let mut input = gzip(&data);
            input.extend(&tail);
            let (_, r) = decompressed(io::Cursor::new(input.clone())).unwrap();
            let (got, err) = read_until_error(r);
            assert_eq!(got, data, "{name}: the member before is delivered");
            let err = err.unwrap_or_else(|| panic!("{name}: trailing bytes accepted"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}");
            let found = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<TrailingBytes>());
            assert_eq!(
                found,
                Some(&TrailingBytes {
                    members: 1,
                    first,
                    zeros
                }),
                "{name}"
            );
            assert!(not_retryable(&err), "{name}");
            // Through the read-ahead thread the error keeps its type.
            let (_, err) = read_until_error(open(io::Cursor::new(input)).unwrap());
            assert!(err.as_ref().is_some_and(not_retryable), "{name}: {err:?}");
        }
    }

    #[test]
    fn a_broken_second_member_is_an_error() {
        for tail in [&[0x1f][..], &[0x1f, 0x8b], &[0x1f, 0x00, 0x00, 0x00]] {
            let mut input = gzip(b"first\n");
            input.extend(tail);
            let (_, r) = decompressed(io::Cursor::new(input)).unwrap();
            let (got, err) = read_until_error(r);
            assert_eq!(got, b"first\n");
            assert!(err.is_some(), "{tail:?} accepted");
        }
    }

    #[test]
    fn asking_again_after_trailing_bytes_repeats_the_error() {
        let mut input = gzip(b"first\n");
        input.extend([0, 0, 0x1f, 0x8b]);
        let (_, mut r) = decompressed(io::Cursor::new(input)).unwrap();
        let (_, err) = read_until_error(&mut r);
        assert!(err.is_some());
        let mut buf = [0u8; 16];
        assert!(r.read(&mut buf).is_err(), "a second read ends cleanly");
    }

    #[test]
    fn plain_passes_through() {
        let (c, r) = decompressed(io::Cursor::new(b"abc\n".to_vec())).unwrap();
        assert_eq!(c, Compression::Plain);
        assert_eq!(read_all(r).unwrap(), b"abc\n");
    }

    #[test]
    fn zero_bytes_is_empty_plain() {
        let (c, r) = decompressed(io::Cursor::new(Vec::new())).unwrap();
        assert_eq!(c, Compression::Plain);
        assert!(read_all(r).unwrap().is_empty());
    }

    #[test]
    fn every_gzip_member_is_read() {
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        let (c, r) = decompressed(io::Cursor::new(two)).unwrap();
        assert_eq!(c, Compression::Gzip);
        assert_eq!(read_all(r).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        for cut in [2, 10, gz.len() / 2, gz.len() - 4, gz.len() - 1] {
            let (_, r) = decompressed(io::Cursor::new(gz[..cut].to_vec())).unwrap();
            let err = read_all(r).err();
            assert!(err.is_some(), "cut at {cut} of {}", gz.len());
            assert!(!err.as_ref().is_some_and(not_retryable), "cut at {cut}");
        }
    }

    #[test]
    fn read_ahead_delivers_everything_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let got = read_all(ReadAhead::new(io::Cursor::new(data.clone())).unwrap()).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn read_ahead_passes_errors_on_after_the_data() {
        struct Fails(usize);
        impl Read for Fails {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let mut r = ReadAhead::new(Fails(10)).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 10);
        assert_eq!(
            r.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        let endless = io::repeat(b'a');
        let mut r = ReadAhead::new(endless).unwrap();
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        drop(r); // must not hang
    }
}
