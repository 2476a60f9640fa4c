//! Compression detection and streaming decompression (gzip, every member, or plain text), and a
//! read-ahead thread so inflating runs beside parsing.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use flate2::bufread::MultiGzDecoder;

/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Input buffer for the decompressor.
const COMPRESSED_BUFFER: usize = 128 * 1024;

/// How the bytes of an object are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Plain,
}

/// Decides from the first bytes alone (names lie: `.gz` files may be plain, and the other way).
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::Plain
    }
}

/// Wraps `input` in a decompressor if its first bytes say gzip. An empty input is plain (and
/// has no lines). Every gzip member is decoded; a truncated or corrupt stream is an I/O error
/// from `read` once the good part has been read.
pub fn decompressed<R: Read + Send + 'static>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + Send>)> {
    let mut prefix = [0u8; 2];
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
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                COMPRESSED_BUFFER,
                whole,
            ))),
        ),
        Compression::Plain => (Compression::Plain, Box::new(whole)),
    })
}

/// How every input is read for parsing: decompressed if its first bytes say gzip, on a read-ahead
/// thread so inflating runs beside parsing.
pub fn open<R: Read + Send + 'static>(input: R) -> io::Result<ReadAhead> {
    decompressed(input).and_then(|(_, reader)| ReadAhead::new(reader))
}

/// Size of each chunk handed from the read-ahead thread.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the threads: bounds memory to about `CHUNKS * CHUNK`.
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

    #[test]
    fn detection_table() {
        for (prefix, want) in [
            (&[0x1f, 0x8b, 8][..], Compression::Gzip),
            (b"authenticated |", Compression::Plain),
            (b"", Compression::Plain),
            (&[0x1f][..], Compression::Plain),
            (&[0x8b, 0x1f][..], Compression::Plain),
        ] {
            assert_eq!(detect(prefix), want, "{prefix:?}");
        }
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
        let cut = gz[..gz.len() / 2].to_vec();
        let (_, r) = decompressed(io::Cursor::new(cut)).unwrap();
        assert!(read_all(r).is_err());
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
