//! A fault-injecting HTTP/1.1 proxy between the code under test and a [`Moto`] server (issue 12,
//! "Prove it"): the binary reaches it through `AWS_ENDPOINT_URL`, SDK clients through their
//! `endpoint_url`, and it forwards to moto what it does not fail.
//!
//! What it injects ([`Fault`]), each at its own rate ([`Mix`]):
//!
//! - Firehose `PutRecordBatch` (`X-Amz-Target: Firehose_20150804.PutRecordBatch`): some entries
//!   failed in a 200 answer (only the others are forwarded; the answer is merged in the original
//!   order, `FailedPutCount`, `ErrorCode` `ServiceUnavailableException` or `InternalFailure` with
//!   an `ErrorMessage`, no `RecordId` for the failed ones); a 500 (`InternalFailure`), a 503 with
//!   no error code (as a load balancer sends it), throttling (400 `ServiceUnavailableException`:
//!   Firehose's throttling answer for this call; the API has no `ThrottlingException` or
//!   `LimitExceededException` for it), the connection closed before the request reaches moto, the
//!   connection closed after moto took it, and an answer held until the client gives up (after
//!   moto took it). None but the whole-call faults is forwarded in part or whole.
//! - S3: `GetObject` bodies of audit objects cut mid-stream (headers with the full
//!   `Content-Length`, part of the body, then the connection closed); 500 (`InternalError`) or 503
//!   (`SlowDown`) answers to `ListObjectsV2` and to state `GetObject`/`PutObject` (keys under the
//!   state path); and, for the benchmark's "before" run, every progress write refused (403).
//! - S3 writes outside the state path (the Security Lake objects: `PutObject`, `UploadPart`,
//!   `CompleteMultipartUpload`), only when forced ([`Forced::Write`]): the connection closed
//!   before moto sees the request, closed after moto took it (its answer lost), or the request
//!   held unforwarded until the client goes away (a test kills the binary while it waits:
//!   [`Report::held`] says when one is held).
//!
//! Only the two faults after moto took a call can create duplicates: their records are kept
//! ([`Report::lost_answers`]) as the bound a test checks duplicates against.
//!
//! Decisions are reproducible. Each request has an identity (a Firehose call: its body; an S3
//! call: method and target) and each identity an occurrence count; a decision is a hash of the
//! seed, the identity, the occurrence and the entry (SplitMix64), not a draw from a shared
//! sequence, so the order in which concurrent requests arrive (an object's body streams while
//! calls go out) changes nothing. `FAULT_SEED` replaces a test's seed; the seed is printed when
//! the proxy starts and, with what was injected, when a test fails. [`Mix::max_in_a_row`] bounds
//! the faults one identity gets in a row, so the SDK's own retries (3 for S3) and `MAX_ATTEMPTS`
//! always see it through.
//!
//! HTTP handling: one request per connection, answered with `Connection: close`; request bodies
//! by `Content-Length` or chunked (forwarded with a `Content-Length`), `Expect: 100-continue`
//! answered here; moto's answers read by `Content-Length`, chunked or to the end, and passed on
//! with a `Content-Length` (a `HEAD` answer keeps moto's and has no body).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::Moto;

/// Replaces the seed a test passes to [`FaultProxy::start`].
pub const SEED_VAR: &str = "FAULT_SEED";

/// The Firehose call the proxy fails in part.
const PUT_RECORD_BATCH: &str = "Firehose_20150804.PutRecordBatch";

/// Longest wait of a held answer ([`Fault::FirehoseSlow`]) for the client to hang up; the
/// binary's Firehose attempt timeout is 15 s (`aws::clients::FIREHOSE_ATTEMPT_TIMEOUT`). Past
/// it the answer is sent after all, and the call is not counted as lost.
const SLOW_LIMIT: Duration = Duration::from_secs(90);

/// Longest wait for moto's answer or a client's request (a hung peer fails the exchange, never
/// the test run).
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest request or answer head.
const MAX_HEAD: usize = 64 * 1024;

/// One kind of fault, as counted in [`Report::faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// A `PutRecordBatch` answered 200 with some entries failed (one per call; the entries are
    /// in [`Report::entries_failed`]).
    EntriesFailed,
    /// Connection closed after the request was read, before it reached moto.
    FirehoseCutBefore,
    /// Forwarded, moto took it, then the connection closed without an answer.
    FirehoseCutAfter,
    /// 500 `InternalFailure`, not forwarded.
    Firehose500,
    /// 503 without an error code, not forwarded.
    Firehose503,
    /// 400 `ServiceUnavailableException` ("Slow down."), not forwarded.
    FirehoseThrottled,
    /// Forwarded, moto took it, the answer held until the client gave up.
    FirehoseSlow,
    /// An audit object's body cut mid-stream.
    S3BodyCut,
    /// 500 or 503 on `ListObjectsV2`.
    S3List5xx,
    /// 500 or 503 on a state `GetObject` (or `HeadObject`).
    S3StateGet5xx,
    /// 500 or 503 on a state `PutObject`.
    S3StatePut5xx,
    /// A progress write refused with 403 ([`Mix::refuse_progress`]).
    ProgressRefused,
    /// An S3 write closed before it reached moto ([`WriteFault::CutBefore`]).
    S3WriteCutBefore,
    /// An S3 write moto took, its answer lost ([`WriteFault::CutAfter`]).
    S3WriteCutAfter,
    /// An S3 write held until the client went away ([`WriteFault::Hold`]).
    S3WriteHeld,
}

/// The S3 writes [`Forced::Write`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WriteOp {
    /// `PutObject` (not a part).
    Put,
    /// `UploadPart` (`PUT ?partNumber=…&uploadId=…`).
    Part,
    /// `CompleteMultipartUpload` (`POST ?uploadId=…`).
    Complete,
}

/// What a forced write fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// The connection closes before the request reaches moto: nothing was written.
    CutBefore,
    /// moto takes the request, then the connection closes without its answer.
    CutAfter,
    /// The request is never forwarded; the proxy waits for the client to hang up (or be killed).
    Hold,
}

/// Rates of each fault. Firehose call faults are exclusive, drawn in field order; entries fail
/// each at `entry_failed` when the call is not failed whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    pub entry_failed: f64,
    pub cut_before: f64,
    pub cut_after: f64,
    pub firehose_500: f64,
    pub firehose_503: f64,
    pub throttled: f64,
    /// Rare by design: each costs the client's whole attempt timeout.
    pub slow: f64,
    /// Per `GetObject` of an audit object.
    pub body_cut: f64,
    pub list_5xx: f64,
    pub state_get_5xx: f64,
    pub state_put_5xx: f64,
    /// Every progress write refused (403): the code's behaviour without progress, where a retry
    /// starts from the object's first record.
    pub refuse_progress: bool,
    /// Most faults one identity gets in a row (0: no limit). 2 keeps every S3 call within the
    /// SDK's 3 attempts and every object under `MAX_ATTEMPTS` (5).
    pub max_in_a_row: u32,
}

impl Mix {
    /// No random faults (forced ones still apply).
    pub fn none() -> Mix {
        Mix::default()
    }

    /// The issue's benchmark mix: 5% of entries failed, 2% of calls cut (half before moto, half
    /// after), 1% each of 500, 503 and throttling; 10% of object bodies cut; 2% of listings
    /// and state calls answered 5xx.
    pub fn issue() -> Mix {
        Mix {
            entry_failed: 0.05,
            cut_before: 0.01,
            cut_after: 0.01,
            firehose_500: 0.01,
            firehose_503: 0.01,
            throttled: 0.01,
            slow: 0.0,
            body_cut: 0.10,
            list_5xx: 0.02,
            state_get_5xx: 0.02,
            state_put_5xx: 0.02,
            refuse_progress: false,
            max_in_a_row: 2,
        }
    }
}

/// A fault the next matching request gets whatever the rates say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forced {
    /// The next `PutRecordBatch` gets this call fault (not [`Fault::EntriesFailed`] or an S3
    /// kind).
    Firehose(Fault),
    /// The next `PutRecordBatch` has these entries (by index) failed.
    Entries(Vec<usize>),
    /// The next `GetObject` of a key containing `key` is cut after `at` bytes of its body.
    CutBody { key: String, at: usize },
    /// The next S3 request of this kind ([`Fault::S3List5xx`], [`Fault::S3StateGet5xx`],
    /// [`Fault::S3StatePut5xx`]) is answered 500.
    S3(Fault),
    /// The next S3 write `op` outside the state path whose key contains `key` gets `fault`.
    Write {
        op: WriteOp,
        key: String,
        fault: WriteFault,
    },
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub faults: BTreeMap<Fault, u64>,
    /// Entries failed in 200 answers.
    pub entries_failed: u64,
    /// `PutRecordBatch` requests received.
    pub firehose_calls: u64,
    /// Firehose records forwarded to moto and taken.
    pub records_forwarded: u64,
    /// The records (decoded `Data`) of every call moto took whose answer the client never got:
    /// the only records a retry may legitimately deliver twice.
    pub lost_answers: Vec<Vec<u8>>,
    /// Calls whose answer was lost after moto took them ([`Fault::FirehoseCutAfter`], and
    /// [`Fault::FirehoseSlow`] when the client gave up).
    pub lost_calls: u64,
    /// `GetObject` requests for audit objects.
    pub object_gets: u64,
    /// Every state `PutObject` moto took: path and body.
    pub state_puts: Vec<(String, Vec<u8>)>,
    /// Requests per kind (`put_record_batch`, `get_object`, `list`, `state_get`, `state_put`,
    /// `other`).
    pub requests: BTreeMap<&'static str, u64>,
    /// S3 writes outside the state path, by kind, faulted or not.
    pub writes: BTreeMap<WriteOp, u64>,
    /// Writes being held now ([`WriteFault::Hold`]).
    pub held: u64,
}

impl Report {
    /// Faults injected of `kind`.
    pub fn count(&self, kind: Fault) -> u64 {
        self.faults.get(&kind).copied().unwrap_or(0)
    }

    /// Faults of every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// NDJSON lines in [`Report::lost_answers`]: the design's bound on duplicates.
    pub fn lost_lines(&self) -> usize {
        self.lost_answers
            .iter()
            .map(|r| r.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count())
            .sum()
    }

    /// How often each record id occurs in [`Report::lost_answers`].
    pub fn lost_ids(&self) -> HashMap<String, u32> {
        let mut ids = HashMap::new();
        for record in &self.lost_answers {
            for line in record.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(id) = record_id(line) {
                    *ids.entry(id).or_default() += 1;
                }
            }
        }
        ids
    }

    /// One line per fault kind, for a test's output.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "seed {} (replay: {SEED_VAR}={}); {} PutRecordBatch calls, {} records forwarded, \
             {} entries failed, {} object GETs, {} calls whose answer was lost after moto took \
             them ({} records, {} lines)",
            self.seed,
            self.seed,
            self.firehose_calls,
            self.records_forwarded,
            self.entries_failed,
            self.object_gets,
            self.lost_calls,
            self.lost_answers.len(),
            self.lost_lines()
        );
        for (kind, n) in &self.faults {
            text.push_str(&format!("\n  {kind:?}: {n}"));
        }
        text
    }
}

/// The `id` of an NDJSON record line (the last `"id":"..."` of the line: ids end the record).
pub fn record_id(line: &[u8]) -> Option<String> {
    let at = memchr::memmem::rfind(line, b"\"id\":\"")? + 6;
    let end = at + memchr::memchr(b'"', &line[at..])?;
    String::from_utf8(line[at..end].to_vec()).ok()
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL` and `endpoint_url`.
    pub endpoint: String,
    pub seed: u64,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    port: u16,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    moto_port: u16,
    seed: u64,
    mix: Mix,
    /// Request paths of state objects: `/<state bucket>/<state prefix>`.
    state_path: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per identity: requests seen, faults in a row.
    seen: HashMap<u64, (u64, u32)>,
    forced: VecDeque<Forced>,
    report: Report,
}

impl FaultProxy {
    /// Starts a proxy in front of `moto` on a free loopback port. `seed` is used unless
    /// `FAULT_SEED` is set; `state_path` is where state objects live
    /// (`/<bucket>/<STATE_PREFIX>`).
    pub fn start(moto: &Moto, seed: u64, mix: Mix, state_path: &str) -> FaultProxy {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(seed);
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let shared = Arc::new(Shared {
            moto_port: moto.port,
            seed,
            mix,
            state_path: state_path.to_string(),
            inner: Mutex::new(Inner {
                report: Report {
                    seed,
                    ..Report::default()
                },
                ..Inner::default()
            }),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || serve(conn, &shared));
                }
            })
        };
        eprintln!(
            "fault proxy on port {port}: seed {seed} (replay with {SEED_VAR}={seed}), {mix:?}"
        );
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            seed,
            shared,
            stop,
            port,
            accept: Some(accept),
        }
    }

    /// Queues a fault for the next matching request, ahead of the rates.
    pub fn force(&self, fault: Forced) {
        self.shared.lock().forced.push_back(fault);
    }

    /// Drops the forced faults no request has taken yet.
    pub fn clear_forced(&self) {
        self.shared.lock().forced.clear();
    }

    /// What was injected and seen so far.
    pub fn report(&self) -> Report {
        self.shared.lock().report.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("fault proxy at failure: {}", self.report().summary());
        }
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking connection thread must not hide the report.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A uniform draw in [0, 1) for (`identity`, `occurrence`, `index`): SplitMix64 over the
    /// seed and the parts.
    fn draw(&self, identity: u64, occurrence: u64, index: u64) -> f64 {
        let mut h = splitmix64(self.seed);
        for part in [identity, occurrence, index] {
            h = splitmix64(h ^ part);
        }
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks among `rates` (exclusive, in order) for the request `identity` of kind `op`, or
    /// `None`, and counts the faults in a row; a `forced` fault draws nothing but counts.
    fn decide<T: Copy>(
        &self,
        op: &str,
        identity: u64,
        rates: &[(f64, T)],
        forced: bool,
    ) -> (u64, Option<T>) {
        let mut inner = self.lock();
        let seen = inner.seen.entry(identity).or_default();
        let occurrence = seen.0;
        seen.0 += 1;
        let capped = self.mix.max_in_a_row > 0 && seen.1 >= self.mix.max_in_a_row;
        let mut pick = None;
        if !capped && !forced {
            let mut u = self.draw(identity, occurrence, u64::MAX);
            for &(rate, kind) in rates {
                if u < rate {
                    pick = Some(kind);
                    break;
                }
                u -= rate;
            }
        }
        seen.1 = if pick.is_some() || forced {
            seen.1 + 1
        } else {
            0
        };
        *inner.report.requests.entry(op_name(op)).or_default() += 1;
        (occurrence, pick)
    }

    fn count(&self, kind: Fault) {
        *self.lock().report.faults.entry(kind).or_default() += 1;
    }

    /// Takes the first forced fault `matches` accepts.
    fn take_forced(&self, matches: impl Fn(&Forced) -> bool) -> Option<Forced> {
        let mut inner = self.lock();
        let at = inner.forced.iter().position(matches)?;
        inner.forced.remove(at)
    }
}

fn op_name(op: &str) -> &'static str {
    match op {
        "put_record_batch" => "put_record_batch",
        "get_object" => "get_object",
        "list" => "list",
        "state_get" => "state_get",
        "state_put" => "state_put",
        _ => "other",
    }
}

/// `text` with its `%XX` escapes decoded (S3 request paths escape `:` and others).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn identity(parts: &[&[u8]]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(part);
        hasher.update(&[0]);
    }
    hasher.digest()
}

// --- HTTP ------------------------------------------------------------------------------------

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Headers that belong to one connection, not to the message.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "expect",
        "proxy-connection",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Header names and values, in order.
type Headers = Vec<(String, String)>;

/// Reads a start line and headers; `None` at a clean end of stream.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<(String, Headers)>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    let mut size = start.len();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        size += n;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "head cut short",
            ));
        }
        if size > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some((start.trim_end().to_string(), headers)))
}

/// A chunked body, decoded (trailers dropped).
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))
        })
        .transpose()
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<Request>> {
    let Some((start, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    let mut parts = start.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if is_chunked(&headers) {
        read_chunked(reader)?
    } else {
        let mut body = vec![0; content_length(&headers)?.unwrap_or(0)];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
    }))
}

fn read_response(stream: TcpStream, head_request: bool) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((start, headers)) = read_head(&mut reader)? else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
        };
        let mut parts = start.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        let reason = parts.next().unwrap_or("").to_string();
        if (100..200).contains(&status) {
            continue;
        }
        let body = if head_request || status == 204 || status == 304 {
            Vec::new()
        } else if is_chunked(&headers) {
            read_chunked(&mut reader)?
        } else if let Some(len) = content_length(&headers)? {
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            body
        };
        return Ok(Response {
            status,
            reason,
            headers,
            body,
        });
    }
}

/// Sends `request` (with `body` instead of its own) to moto on a fresh connection.
fn forward(moto_port: u16, request: &Request, body: &[u8]) -> io::Result<Response> {
    let stream = TcpStream::connect(("127.0.0.1", moto_port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.headers {
        if !hop_by_hop(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut writer = stream.try_clone()?;
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()?;
    read_response(stream, request.method == "HEAD")
}

/// The head of `response` for the client, declaring `length` bytes of body (a `HEAD` answer
/// keeps moto's own `Content-Length`).
fn response_head(response: &Response, length: usize, head_request: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
    for (name, value) in &response.headers {
        let keep_length = head_request && name.eq_ignore_ascii_case("content-length");
        if keep_length || !hop_by_hop(name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !head_request {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

fn send(client: &mut TcpStream, response: &Response, head_request: bool) -> io::Result<()> {
    client.write_all(&response_head(response, response.body.len(), head_request))?;
    client.write_all(&response.body)?;
    client.flush()
}

fn answer(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    Response {
        status,
        reason: reason.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

/// A JSON 1.1 protocol error as Firehose sends it.
fn json_error(status: u16, reason: &str, code: &str, message: &str) -> Response {
    let body = json!({ "__type": code, "message": message }).to_string();
    answer(
        status,
        reason,
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", "00000000-0000-4000-8000-fa017fa017fa"),
        ],
        body.as_bytes(),
    )
}

/// An S3 REST error.
fn s3_error(status: u16, reason: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FA017FA017FA017F</RequestId></Error>"
    );
    answer(
        status,
        reason,
        &[("Content-Type", "application/xml")],
        body.as_bytes(),
    )
}

/// Drops a connection without an answer: the client sees it closed.
fn hang_up(client: &TcpStream) {
    let _ = client.shutdown(Shutdown::Both);
}

// --- serving ---------------------------------------------------------------------------------

fn serve(client: TcpStream, shared: &Shared) {
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let _ = client.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(read_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut client = client;
    let request = match read_request(&mut reader, &mut client) {
        Ok(Some(request)) => request,
        _ => return,
    };
    let result = if header(&request.headers, "x-amz-target") == Some(PUT_RECORD_BATCH) {
        put_record_batch(&mut client, shared, &request)
    } else {
        s3(&mut client, shared, &request)
    };
    if let Err(e) = result {
        // The client sees a closed connection, as from any broken peer.
        eprintln!("fault proxy: {} {}: {e}", request.method, request.target);
    }
    hang_up(&client);
}

/// The kinds of S3 request the proxy tells apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum S3Op {
    GetObject,
    List,
    StateGet,
    StatePut,
    Write(WriteOp),
    Other,
}

fn s3_op(request: &Request, state_path: &str) -> S3Op {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let method = request.method.as_str();
    if method == "GET" && query.split('&').any(|p| p == "list-type=2") {
        return S3Op::List;
    }
    if path.starts_with(state_path) {
        return match method {
            "GET" | "HEAD" => S3Op::StateGet,
            "PUT" => S3Op::StatePut,
            _ => S3Op::Other,
        };
    }
    // `/bucket/key`: an object, not the bucket.
    let object = path
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty());
    let upload = query.split('&').any(|p| p.starts_with("uploadId="));
    let part = query.split('&').any(|p| p.starts_with("partNumber="));
    match (method, object) {
        ("GET", true) => S3Op::GetObject,
        ("PUT", true) if upload && part => S3Op::Write(WriteOp::Part),
        ("PUT", true) if !upload && !part => S3Op::Write(WriteOp::Put),
        ("POST", true) if upload => S3Op::Write(WriteOp::Complete),
        _ => S3Op::Other,
    }
}

/// An S3 write outside the state path: forwarded, or failed as a [`Forced::Write`] says.
fn s3_write(
    client: &mut TcpStream,
    shared: &Shared,
    request: &Request,
    op: WriteOp,
) -> io::Result<()> {
    let id = identity(&[request.method.as_bytes(), request.target.as_bytes()]);
    shared.decide::<()>("other", id, &[], false);
    *shared.lock().report.writes.entry(op).or_default() += 1;
    let path = percent_decode(request.target.split('?').next().unwrap_or(""));
    let forced = shared.take_forced(|f| match f {
        Forced::Write { op: o, key, .. } => *o == op && path.contains(key.as_str()),
        _ => false,
    });
    let fault = match forced {
        Some(Forced::Write { fault, .. }) => Some(fault),
        _ => None,
    };
    match fault {
        None => {
            let response = forward(shared.moto_port, request, &request.body)?;
            send(client, &response, false)
        }
        Some(WriteFault::CutBefore) => {
            shared.count(Fault::S3WriteCutBefore);
            Ok(())
        }
        Some(WriteFault::CutAfter) => {
            forward(shared.moto_port, request, &request.body)?;
            shared.count(Fault::S3WriteCutAfter);
            Ok(())
        }
        Some(WriteFault::Hold) => {
            shared.count(Fault::S3WriteHeld);
            shared.lock().report.held += 1;
            client_hung_up(client);
            shared.lock().report.held -= 1;
            Ok(())
        }
    }
}

fn s3(client: &mut TcpStream, shared: &Shared, request: &Request) -> io::Result<()> {
    let op = s3_op(request, &shared.state_path);
    let id = identity(&[request.method.as_bytes(), request.target.as_bytes()]);
    let mix = shared.mix;
    let head_request = request.method == "HEAD";
    match op {
        S3Op::GetObject => {
            let forced = shared.take_forced(|f| match f {
                Forced::CutBody { key, .. } => {
                    percent_decode(&request.target).contains(key.as_str())
                }
                _ => false,
            });
            let (occurrence, cut) =
                shared.decide("get_object", id, &[(mix.body_cut, ())], forced.is_some());
            shared.lock().report.object_gets += 1;
            let response = forward(shared.moto_port, request, &request.body)?;
            let at = match forced {
                Some(Forced::CutBody { at, .. }) => Some(at),
                _ if cut.is_some() => {
                    let fraction = shared.draw(id, occurrence, 1);
                    Some((fraction * response.body.len() as f64) as usize)
                }
                _ => None,
            };
            match at {
                Some(at) if response.status == 200 && response.body.len() >= 2 => {
                    let at = at.clamp(1, response.body.len() - 1);
                    shared.count(Fault::S3BodyCut);
                    client.write_all(&response_head(&response, response.body.len(), false))?;
                    client.write_all(&response.body[..at])?;
                    client.flush()?;
                    hang_up(client);
                    Ok(())
                }
                _ => send(client, &response, head_request),
            }
        }
        S3Op::List | S3Op::StateGet | S3Op::StatePut => {
            let (name, rate, kind) = match op {
                S3Op::List => ("list", mix.list_5xx, Fault::S3List5xx),
                S3Op::StateGet => ("state_get", mix.state_get_5xx, Fault::S3StateGet5xx),
                _ => ("state_put", mix.state_put_5xx, Fault::S3StatePut5xx),
            };
            if op == S3Op::StatePut && mix.refuse_progress && request.target.contains("/progress/")
            {
                shared.decide::<()>(name, id, &[], false);
                shared.count(Fault::ProgressRefused);
                return send(
                    client,
                    &s3_error(403, "Forbidden", "AccessDenied", "Access Denied"),
                    false,
                );
            }
            let forced = shared.take_forced(|f| *f == Forced::S3(kind)).map(|_| true);
            let (occurrence, fault) = shared.decide(name, id, &[(rate, true)], forced.is_some());
            if forced.or(fault).is_some() {
                shared.count(kind);
                let error = if forced.is_none() && shared.draw(id, occurrence, 2) < 0.5 {
                    s3_error(
                        503,
                        "Slow Down",
                        "SlowDown",
                        "Please reduce your request rate.",
                    )
                } else {
                    s3_error(
                        500,
                        "Internal Server Error",
                        "InternalError",
                        "We encountered an internal error. Please try again.",
                    )
                };
                return send(client, &error, head_request);
            }
            let response = forward(shared.moto_port, request, &request.body)?;
            if op == S3Op::StatePut && response.status == 200 {
                let path = request.target.split('?').next().unwrap_or("").to_string();
                shared
                    .lock()
                    .report
                    .state_puts
                    .push((path, request.body.clone()));
            }
            send(client, &response, head_request)
        }
        S3Op::Write(write) => s3_write(client, shared, request, write),
        S3Op::Other => {
            shared.decide::<()>("other", id, &[], false);
            let response = forward(shared.moto_port, request, &request.body)?;
            send(client, &response, head_request)
        }
    }
}

/// What happens to one `PutRecordBatch` call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Whole(Fault),
    Entries,
}

fn put_record_batch(client: &mut TcpStream, shared: &Shared, request: &Request) -> io::Result<()> {
    let parsed: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let Some(records) = parsed["Records"].as_array() else {
        // Not a request we understand: moto answers it.
        let response = forward(shared.moto_port, request, &request.body)?;
        return send(client, &response, false);
    };
    let mix = shared.mix;
    let id = identity(&[b"PutRecordBatch", &request.body]);
    shared.lock().report.firehose_calls += 1;
    let forced = shared.take_forced(|f| matches!(f, Forced::Firehose(_) | Forced::Entries(_)));
    let (occurrence, whole) = shared.decide(
        "put_record_batch",
        id,
        &[
            (mix.cut_before, Fault::FirehoseCutBefore),
            (mix.cut_after, Fault::FirehoseCutAfter),
            (mix.firehose_500, Fault::Firehose500),
            (mix.firehose_503, Fault::Firehose503),
            (mix.throttled, Fault::FirehoseThrottled),
            (mix.slow, Fault::FirehoseSlow),
        ],
        forced.is_some(),
    );
    let mut failed: Vec<bool> = (0..records.len())
        .map(|i| shared.draw(id, occurrence, i as u64) < mix.entry_failed)
        .collect();
    let call = match forced {
        Some(Forced::Firehose(kind)) => Call::Whole(kind),
        Some(Forced::Entries(indexes)) => {
            failed = (0..records.len()).map(|i| indexes.contains(&i)).collect();
            Call::Entries
        }
        _ => whole.map_or(Call::Entries, Call::Whole),
    };
    let data = |indexes: &mut dyn Iterator<Item = usize>| -> Vec<Vec<u8>> {
        indexes
            .filter_map(|i| records[i]["Data"].as_str())
            .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .collect()
    };
    match call {
        Call::Whole(kind) => {
            shared.count(kind);
            match kind {
                Fault::FirehoseCutBefore => {
                    hang_up(client);
                    Ok(())
                }
                Fault::Firehose500 => send(
                    client,
                    &json_error(
                        500,
                        "Internal Server Error",
                        "InternalFailure",
                        "An internal error occurred.",
                    ),
                    false,
                ),
                Fault::Firehose503 => send(
                    client,
                    &answer(
                        503,
                        "Service Unavailable",
                        &[("Content-Type", "text/html")],
                        b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                    ),
                    false,
                ),
                Fault::FirehoseThrottled => send(
                    client,
                    &json_error(
                        400,
                        "Bad Request",
                        "ServiceUnavailableException",
                        "Slow down.",
                    ),
                    false,
                ),
                Fault::FirehoseCutAfter | Fault::FirehoseSlow => {
                    let response = forward(shared.moto_port, request, &request.body)?;
                    if response.status != 200 {
                        return send(client, &response, false);
                    }
                    let lost = kind == Fault::FirehoseCutAfter || client_hung_up(client);
                    let mut inner = shared.lock();
                    inner.report.records_forwarded += records.len() as u64;
                    if lost {
                        let taken = data(&mut (0..records.len()));
                        inner.report.lost_answers.extend(taken);
                        inner.report.lost_calls += 1;
                        drop(inner);
                        hang_up(client);
                        Ok(())
                    } else {
                        drop(inner);
                        send(client, &response, false)
                    }
                }
                _ => {
                    let response = forward(shared.moto_port, request, &request.body)?;
                    send(client, &response, false)
                }
            }
        }
        Call::Entries => {
            let failures = failed.iter().filter(|f| **f).count();
            if failures == 0 {
                let response = forward(shared.moto_port, request, &request.body)?;
                if response.status == 200 {
                    shared.lock().report.records_forwarded += records.len() as u64;
                }
                return send(client, &response, false);
            }
            shared.count(Fault::EntriesFailed);
            shared.lock().report.entries_failed += failures as u64;
            let kept: Vec<Value> = records
                .iter()
                .zip(&failed)
                .filter(|(_, f)| !**f)
                .map(|(r, _)| r.clone())
                .collect();
            let mut taken = Vec::new();
            let mut encrypted = Value::Bool(false);
            if !kept.is_empty() {
                let body = json!({
                    "DeliveryStreamName": parsed["DeliveryStreamName"].clone(),
                    "Records": kept,
                })
                .to_string();
                let response = forward(shared.moto_port, request, body.as_bytes())?;
                if response.status != 200 {
                    return send(client, &response, false);
                }
                let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                taken = answer["RequestResponses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                encrypted = answer["Encrypted"].clone();
                shared.lock().report.records_forwarded += kept.len() as u64;
            }
            let mut taken = taken.into_iter();
            let entries: Vec<Value> = failed
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if !*f {
                        return taken.next().unwrap_or_else(|| json!({}));
                    }
                    if shared.draw(id, occurrence, (i as u64) | (1 << 63)) < 0.5 {
                        json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
                    } else {
                        json!({"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."})
                    }
                })
                .collect();
            let body = json!({
                "FailedPutCount": failures,
                "Encrypted": if encrypted.is_null() { Value::Bool(false) } else { encrypted },
                "RequestResponses": entries,
            })
            .to_string();
            send(
                client,
                &answer(
                    200,
                    "OK",
                    &[
                        ("Content-Type", "application/x-amz-json-1.1"),
                        ("x-amzn-RequestId", "00000000-0000-4000-8000-fa017fa017fa"),
                    ],
                    body.as_bytes(),
                ),
                false,
            )
        }
    }
}

/// Waits (at most [`SLOW_LIMIT`]) for the client to close its side: true when it gave up.
fn client_hung_up(client: &TcpStream) -> bool {
    let _ = client.set_read_timeout(Some(SLOW_LIMIT));
    let mut byte = [0u8; 1];
    let hung_up = match (&*client).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    };
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    hung_up
}
