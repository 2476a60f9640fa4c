//! Stdout sink for the command line: each line and a newline to any writer.

use std::io::{BufWriter, Write};

use super::{Accepted, Sink, SinkError, SinkStats};

/// Writes each line followed by `\n`, buffered. Only `lines` and `payload_bytes` (bytes written)
/// are counted; the Firehose fields stay zero.
#[derive(Debug)]
pub struct WriteSink<W: Write> {
    out: BufWriter<W>,
    stats: SinkStats,
}

impl<W: Write> WriteSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        WriteSink {
            out: BufWriter::new(out),
            stats: SinkStats::default(),
        }
    }
}

impl WriteSink<std::io::Stdout> {
    /// A sink writing to standard output.
    pub fn stdout() -> Self {
        WriteSink::new(std::io::stdout())
    }
}

impl<W: Write + Send> Sink for WriteSink<W> {
    async fn send<L>(&mut self, line: L) -> Result<(), SinkError>
    where
        L: AsRef<[u8]> + Send,
    {
        let line = line.as_ref();
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.stats.lines += 1;
        self.stats.payload_bytes += line.len() as u64 + 1;
        Ok(())
    }

    async fn finish(mut self) -> Result<SinkStats, SinkError> {
        self.out.flush()?;
        Ok(self.stats)
    }

    /// Lines written to the buffer count: the buffer is flushed before the sink is dropped.
    fn accepted(&self) -> Accepted {
        Accepted::all(&self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_written_with_newlines_and_counted() {
        let mut buffer = Vec::new();
        let mut sink = WriteSink::new(&mut buffer);
        sink.send(b"{\"a\":1}").await.expect("write");
        sink.send(String::from("{\"b\":2}")).await.expect("write");
        sink.send(Vec::new()).await.expect("write");
        let stats = sink.finish().await.expect("flush");
        assert_eq!(buffer, b"{\"a\":1}\n{\"b\":2}\n\n");
        assert_eq!(stats.lines, 3);
        assert_eq!(stats.payload_bytes, buffer.len() as u64);
        assert_eq!(stats.firehose_records, 0);
        assert_eq!(stats.calls, 0);
    }

    /// A writer that always fails, like a closed pipe.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }

    #[tokio::test]
    async fn a_failing_writer_is_an_error() {
        let mut sink = WriteSink::new(Broken);
        // Buffered, so the failure shows when flushing.
        sink.send("x").await.expect("buffered");
        let err = sink.finish().await.expect_err("flush fails");
        assert!(matches!(err, SinkError::Write(_)));
        assert!(!err.is_retryable());
    }
}
