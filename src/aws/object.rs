//! S3 object bodies as `std::io::Read` streams for the synchronous parsers, streamed chunk by
//! chunk: the S3 adapter of the [`Fetch`] port.
//!
//! [`open_object`] sends `GetObject` and hands back a [`BodyReader`] fed by a task that pulls the
//! body's chunks into a bounded channel, so at most [`CHANNEL_CHUNKS`] chunks wait in memory
//! whatever the object's size. The reader blocks, so it belongs on a blocking thread
//! (`tokio::task::spawn_blocking` or a plain thread). A body that breaks off, or ends short of
//! its `Content-Length`, is an `io::Error` from `read`, never an early end of file: a truncated
//! object must fail and be retried, not be marked done.

use std::fmt;
use std::io::{self, Read};
use std::time::SystemTime;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::retry;
use super::s3::AuditBucket;
use crate::ports::{Fetch, FetchError, Fetched, ObjectRef};

/// Chunks buffered between the download task and the reader. The SDK's chunks are what the
/// connection delivers (typically 8 to 64 KiB, at most a few hundred), so this bounds a body in
/// flight to a few MiB at worst while keeping the download a little ahead of the parser.
pub const CHANNEL_CHUNKS: usize = 8;

/// Why an object could not be opened. Each variant says whether a retry can help
/// ([`SourceError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The key does not exist (deleted or never written): retrying never helps.
    #[error("s3://{bucket}/{key} does not exist (NoSuchKey)")]
    NotFound { bucket: String, key: String },
    /// The bucket does not exist: retrying never helps.
    #[error("bucket {bucket:?} does not exist (NoSuchBucket), reading {key:?}")]
    NoSuchBucket { bucket: String, key: String },
    /// Missing permission, a KMS key the reader may not use, or a bucket owned by another account
    /// than `EXPECTED_BUCKET_OWNER`: fixing the setup is needed first.
    #[error("s3://{bucket}/{key}: access denied ({code}): {message}")]
    AccessDenied {
        bucket: String,
        key: String,
        code: String,
        message: String,
    },
    /// S3 answered with an error; throttling and 5xx are retryable, the rest is not.
    #[error("s3://{bucket}/{key}: S3 error {status} {code}: {message}")]
    Service {
        bucket: String,
        key: String,
        status: u16,
        code: String,
        message: String,
        retryable: bool,
    },
    /// No answer: timeout, connection failure (retryable), or a request that could not be
    /// built or sent at all (bad endpoint, no credentials: not retryable).
    #[error("s3://{bucket}/{key}: {reason}")]
    Transport {
        bucket: String,
        key: String,
        reason: String,
        retryable: bool,
    },
}

impl SourceError {
    /// Whether opening the same object again later can succeed without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::NotFound { .. }
            | SourceError::NoSuchBucket { .. }
            | SourceError::AccessDenied { .. } => false,
            SourceError::Service { retryable, .. } | SourceError::Transport { retryable, .. } => {
                *retryable
            }
        }
    }
}

/// What S3 said about an object when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub bucket: String,
    pub key: String,
    /// Stored bytes (compressed, for `.gz` files).
    pub content_length: Option<u64>,
    /// As S3 gives it, with its quotes.
    pub e_tag: Option<String>,
    pub last_modified: Option<SystemTime>,
    pub version_id: Option<String>,
}

/// An opened object: its metadata and its body, to be read on a blocking thread.
#[derive(Debug)]
pub struct ObjectBody {
    pub meta: ObjectMeta,
    pub reader: BodyReader,
}

/// Opens `s3://bucket_name/key` with `GetObject` (with the expected bucket owner) and starts
/// streaming its body. Must be called inside a Tokio runtime: the download runs as a task.
pub async fn open_object(
    bucket: &AuditBucket,
    bucket_name: &str,
    key: &str,
) -> Result<ObjectBody, SourceError> {
    let out = bucket
        .get_object(bucket_name, key)
        .send()
        .await
        .map_err(|err| classify(bucket_name, key, err))?;
    let content_length = out.content_length().and_then(|n| u64::try_from(n).ok());
    let meta = ObjectMeta {
        bucket: bucket_name.to_string(),
        key: key.to_string(),
        content_length,
        e_tag: out.e_tag().map(str::to_owned),
        last_modified: out
            .last_modified()
            .and_then(|t| SystemTime::try_from(*t).ok()),
        version_id: out.version_id().map(str::to_owned),
    };
    let label = format!("s3://{bucket_name}/{key}");
    let reader = BodyReader::spawn(out.body, content_length, label);
    Ok(ObjectBody { meta, reader })
}

/// The handler's S3 fetch: `GetObject` on the audit bucket's client, streamed.
impl Fetch for AuditBucket {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        match open_object(self, &object.bucket, &object.key).await {
            Ok(opened) => Ok(Fetched {
                size: opened.meta.content_length,
                etag: opened.meta.e_tag,
                last_modified_ms: opened
                    .meta
                    .last_modified
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok()),
                body: Box::new(opened.reader),
            }),
            Err(e) => Err(FetchError {
                retryable: e.is_retryable(),
                message: e.to_string(),
            }),
        }
    }
}

fn classify(bucket: &str, key: &str, err: SdkError<GetObjectError>) -> SourceError {
    let (bucket, key) = (bucket.to_string(), key.to_string());
    let status = match &err {
        SdkError::ServiceError(context) => context.raw().status().as_u16(),
        _ => {
            return SourceError::Transport {
                bucket,
                key,
                reason: DisplayErrorContext(&err).to_string(),
                retryable: retry::classify(&err).retryable,
            }
        }
    };
    let code = err.code().unwrap_or_default().to_string();
    let message = err.message().unwrap_or_default().to_string();
    if matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_))) || code == "NoSuchKey" {
        return SourceError::NotFound { bucket, key };
    }
    if code == "NoSuchBucket" {
        return SourceError::NoSuchBucket { bucket, key };
    }
    if status == 404 {
        return SourceError::NotFound { bucket, key };
    }
    if status == 403 {
        return SourceError::AccessDenied {
            bucket,
            key,
            code,
            message,
        };
    }
    let retryable = retry::is_retryable_answer(status, Some(&code));
    SourceError::Service {
        bucket,
        key,
        status,
        code,
        message,
        retryable,
    }
}

/// One piece of a body. The SDK's chunk type (`bytes::Bytes`) is not a dependency of this crate,
/// so chunks travel as any owned byte buffer; one small box per chunk, no copy of the bytes.
type Chunk = Box<dyn AsRef<[u8]> + Send>;

/// What the download task tells the reader.
enum Message {
    Data(Chunk),
    /// The body ended and its length matched: the only way to a clean end of file.
    End,
    Failed(io::Error),
}

/// Reads a body that a task downloads a few chunks ahead. Blocks in `read`: use it on a
/// blocking thread, never on an async worker (Tokio panics there). Dropping it stops the download.
pub struct BodyReader {
    rx: mpsc::Receiver<Message>,
    chunk: Option<Chunk>,
    pos: usize,
    state: ReadState,
    /// Aborted on drop, which closes the connection of a body that is not read to the end.
    pump: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadState {
    Open,
    Ended,
    /// The failure's message, repeated by every later `read`: a failed body never turns into EOF.
    Failed(String),
}

impl fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyReader")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    /// Starts the task that pulls `body` into the channel. `expected` is the `Content-Length`.
    fn spawn(body: ByteStream, expected: Option<u64>, label: String) -> BodyReader {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let pump = tokio::spawn(pump(body, expected, label, tx));
        BodyReader::from_channel(rx, Some(pump))
    }

    fn from_channel(rx: mpsc::Receiver<Message>, pump: Option<JoinHandle<()>>) -> BodyReader {
        BodyReader {
            rx,
            chunk: None,
            pos: 0,
            state: ReadState::Open,
            pump,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(chunk) = &self.chunk {
                let bytes = (**chunk).as_ref();
                if self.pos < bytes.len() {
                    let n = buf.len().min(bytes.len() - self.pos);
                    buf[..n].copy_from_slice(&bytes[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
                self.chunk = None;
            }
            match &self.state {
                ReadState::Open => {}
                ReadState::Ended => return Ok(0),
                ReadState::Failed(message) => return Err(io::Error::other(message.clone())),
            }
            match self.rx.blocking_recv() {
                Some(Message::Data(chunk)) => {
                    self.chunk = Some(chunk);
                    self.pos = 0;
                }
                Some(Message::End) => {
                    self.state = ReadState::Ended;
                    return Ok(0);
                }
                Some(Message::Failed(e)) => {
                    self.state = ReadState::Failed(e.to_string());
                    return Err(e);
                }
                // The task ended without saying how (aborted, panicked, runtime shut down):
                // the body is incomplete, whatever arrived so far.
                None => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the body's download stopped before the end",
                    );
                    self.state = ReadState::Failed(e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
    }
}

/// Moves `body`'s chunks into `tx` until the end, a failure, or the reader going away; the
/// channel's bound makes it wait for the reader. The end is only reported when the byte count
/// matches `expected`, so a connection cut at a chunk boundary is caught as well.
async fn pump(
    mut body: ByteStream,
    expected: Option<u64>,
    label: String,
    tx: mpsc::Sender<Message>,
) {
    let mut received: u64 = 0;
    let last = loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                if chunk.is_empty() {
                    continue;
                }
                received += chunk.len() as u64;
                if tx.send(Message::Data(Box::new(chunk))).await.is_err() {
                    return; // the reader is gone
                }
            }
            Ok(None) => match expected {
                Some(expected) if expected != received => {
                    break Message::Failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{label}: the body ended after {received} of {expected} bytes"),
                    ))
                }
                _ => break Message::End,
            },
            Err(e) => {
                break Message::Failed(io::Error::other(format!(
                    "{label}: reading the body failed after {received} bytes: {}",
                    DisplayErrorContext(&e)
                )))
            }
        }
    };
    let _ = tx.send(last).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: &[u8]) -> Message {
        Message::Data(Box::new(bytes.to_vec()))
    }

    /// A reader fed by `messages` from a plain thread (no runtime needed on either side).
    fn reader_of(messages: Vec<Message>) -> BodyReader {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        std::thread::spawn(move || {
            for m in messages {
                if tx.blocking_send(m).is_err() {
                    return;
                }
            }
        });
        BodyReader::from_channel(rx, None)
    }

    #[test]
    fn chunks_are_read_in_order_through_small_buffers() {
        let mut reader = reader_of(vec![
            chunk(b"hello "),
            chunk(b""),
            chunk(b"wor"),
            chunk(b"ld"),
            Message::End,
        ]);
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(out, b"hello world");
        // After the end, still the end.
        assert_eq!(reader.read(&mut buf).ok(), Some(0));
    }

    #[test]
    fn a_failure_mid_body_is_an_error_and_stays_one() {
        let mut reader = reader_of(vec![
            chunk(b"abc"),
            Message::Failed(io::Error::other("connection reset")),
        ]);
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).err();
        assert_eq!(out, b"abc");
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("connection reset")),
            "{err:?}"
        );
        let again = reader.read(&mut [0u8; 8]);
        assert!(again.is_err(), "a failed body read as {again:?} afterwards");
    }

    #[test]
    fn a_download_that_stops_without_an_end_is_not_eof() {
        // The sender is dropped after one chunk, as when the task is aborted or panics.
        let mut reader = reader_of(vec![chunk(b"partial")]);
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).err();
        assert_eq!(out, b"partial");
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
    }

    #[test]
    fn an_empty_buffer_reads_nothing_without_waiting() {
        let (_tx, rx) = mpsc::channel(1);
        let mut reader = BodyReader::from_channel(rx, None);
        assert_eq!(reader.read(&mut []).ok(), Some(0));
    }

    async fn read_in_blocking_thread(reader: BodyReader) -> (Vec<u8>, Option<io::Error>) {
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let mut out = Vec::new();
            let err = reader.read_to_end(&mut out).err();
            (out, err)
        })
        .await
        .expect("reading thread")
    }

    #[tokio::test]
    async fn body_shorter_than_its_content_length_fails() {
        let reader = BodyReader::spawn(
            ByteStream::from(b"0123456789".to_vec()),
            Some(20),
            "s3://b/k".into(),
        );
        let (out, err) = read_in_blocking_thread(reader).await;
        assert_eq!(out, b"0123456789");
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("s3://b/k") && err.contains("10 of 20"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn body_of_its_content_length_ends_cleanly() {
        for expected in [Some(10), None] {
            let reader = BodyReader::spawn(
                ByteStream::from(b"0123456789".to_vec()),
                expected,
                "s3://b/k".into(),
            );
            let (out, err) = read_in_blocking_thread(reader).await;
            assert_eq!(out, b"0123456789");
            assert!(err.is_none(), "{err:?}");
        }
    }

    #[tokio::test]
    async fn download_stays_a_few_chunks_ahead_of_the_reader() {
        const CHUNK: usize = 1024;
        const CHUNKS: usize = 256;
        let path = std::env::temp_dir().join(format!(
            "redshift-audit-forwarder-pump-{}.bin",
            std::process::id()
        ));
        let data: Vec<u8> = (0..CHUNK * CHUNKS).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write temp file");
        // A file-backed stream yields one chunk per buffer, like a network body.
        let body = ByteStream::read_from()
            .path(&path)
            .buffer_size(CHUNK)
            .build()
            .await
            .expect("file stream");
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let task = tokio::spawn(pump(body, Some(data.len() as u64), "file".into(), tx));
        // Nobody reads yet: the task must stop once the channel is full.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(rx.len(), CHANNEL_CHUNKS);
        assert!(!task.is_finished(), "the whole body was pulled into memory");

        let (out, err) = read_in_blocking_thread(BodyReader::from_channel(rx, Some(task))).await;
        let _ = std::fs::remove_file(&path);
        assert!(err.is_none(), "{err:?}");
        assert!(out == data, "bytes differ");
    }
}
