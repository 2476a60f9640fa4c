//! In-memory twins of the ports, for tests: a state store with S3's conditional-write rules, a
//! bucket that lists and serves objects as S3 does, a clock that moves only when told, and a
//! Firehose-like sink that sends in calls, takes time and fails when told.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use xxhash_rust::xxh3::xxh3_128;

use crate::sink::{Accepted, Sink, SinkError, SinkStats};

use super::{
    BoxFuture, Clock, Fetch, FetchError, Fetched, ListError, ListObjects, Listed, ObjectRef, Page,
    Precondition, StateError, StateStore, Stored,
};

/// State objects in memory, with S3's conditional-write rules and content ETags: for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Stored>>,
    /// Successful writes, for tests that count them.
    pub writes: AtomicU64,
}

impl MemoryStore {
    /// Every key and body, sorted by key.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = objects
            .iter()
            .map(|(k, v)| (k.clone(), v.body.clone()))
            .collect();
        all.sort();
        all
    }
}

impl StateStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, StateError>> {
        let found = self
            .objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Vec<u8>,
        condition: Precondition,
    ) -> BoxFuture<'a, Result<String, StateError>> {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let current = objects.get(key).map(|s| s.etag.clone());
        let allowed = match (&condition, &current) {
            (Precondition::None, _) => true,
            (Precondition::IfAbsent, current) => current.is_none(),
            (Precondition::IfMatch(want), Some(have)) => want == have,
            (Precondition::IfMatch(_), None) => false,
        };
        let result = if allowed {
            let etag = format!("\"{:032x}\"", xxh3_128(&body));
            objects.insert(
                key.to_string(),
                Stored {
                    body,
                    etag: etag.clone(),
                },
            );
            self.writes.fetch_add(1, Ordering::Relaxed);
            Ok(etag)
        } else {
            Err(StateError::Conflict {
                location: self.location(key),
            })
        };
        Box::pin(async move { result })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, StateError>> {
        let objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<String> = objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys.truncate(max);
        Box::pin(async move { Ok(keys) })
    }

    fn location(&self, key: &str) -> String {
        format!("memory://{key}")
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now_ms))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A bucket in memory: lists like `ListObjectsV2` (sorted keys, delimiter, pages of `page`
/// keys) and serves bodies. Fetching advances `clock` by `fetch_ms`, and keys in `broken`
/// fail to read.
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, (Vec<u8>, i64)>>,
    pub page: AtomicUsize,
    pub clock: Arc<ManualClock>,
    pub fetch_ms: AtomicI64,
    pub broken: Mutex<Vec<String>>,
    pub calls: Mutex<u64>,
}

impl MemoryBucket {
    pub fn new(clock: Arc<ManualClock>) -> MemoryBucket {
        MemoryBucket {
            objects: Mutex::default(),
            page: 1000.into(),
            clock,
            fetch_ms: 0.into(),
            broken: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    pub fn put(&self, key: &str, text: &str, last_modified_ms: i64) {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.into(), (text.as_bytes().to_vec(), last_modified_ms));
    }
}

/// The ETag the twin gives a body: a content hash, quoted as S3 quotes it.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body))
}

impl ListObjects for MemoryBucket {
    fn list_page<'a>(
        &'a self,
        _bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        token: Option<String>,
    ) -> BoxFuture<'a, Result<Page, ListError>> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        let mut page = Page::default();
        let mut count = 0;
        for (key, (body, lm)) in objects.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            let entry = match delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_string())
            }) {
                Some(common) => common,
                None => key.clone(),
            };
            if token.as_ref().is_some_and(|t| entry <= *t) {
                continue;
            }
            if page.prefixes.last() == Some(&entry) {
                continue;
            }
            if count == self.page.load(Ordering::SeqCst) {
                page.next = page
                    .objects
                    .last()
                    .map(|o| o.key.clone())
                    .max(page.prefixes.last().cloned());
                break;
            }
            count += 1;
            if entry == *key {
                page.objects.push(Listed {
                    key: key.clone(),
                    size: body.len() as u64,
                    etag: etag_of(body),
                    last_modified_ms: *lm,
                });
            } else {
                page.prefixes.push(entry);
            }
        }
        Box::pin(async move { Ok(page) })
    }
}

impl Fetch for MemoryBucket {
    async fn fetch(&self, object: &ObjectRef) -> Result<Fetched, FetchError> {
        self.clock.advance(self.fetch_ms.load(Ordering::SeqCst));
        let found = self
            .objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&object.key)
            .cloned();
        let Some((body, last_modified_ms)) = found else {
            return Err(FetchError {
                message: format!("no such key {}", object.key),
                retryable: false,
            });
        };
        let etag = etag_of(&body);
        let reader: Box<dyn io::Read + Send> = if self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&object.key)
        {
            Box::new(Broken)
        } else {
            Box::new(io::Cursor::new(body.clone()))
        };
        Ok(Fetched {
            body: reader,
            size: Some(body.len() as u64),
            etag: Some(etag),
            last_modified_ms: Some(last_modified_ms),
        })
    }
}

/// A body whose connection breaks.
pub struct Broken;
impl io::Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
    }
}

/// A Firehose twin for tests: lines go out in calls of `per_call` lines, in order; each call
/// moves `clock` on by `call_ms` (a call that takes time); once `calls_left` (shared between the
/// sinks of several attempts) runs out, a call fails as Firehose does when its retries are
/// exhausted, after delivering the first half of its lines (taken, but the answer was lost).
/// `delivered` holds every line that reached the "stream", duplicates included.
pub struct MemorySink {
    delivered: Arc<Mutex<Vec<String>>>,
    per_call: usize,
    clock: Option<(Arc<ManualClock>, i64)>,
    calls_left: Option<Arc<AtomicI64>>,
    buffer: Vec<Vec<u8>>,
    accepted: Accepted,
    stats: SinkStats,
}

impl MemorySink {
    pub fn new(delivered: Arc<Mutex<Vec<String>>>, per_call: usize) -> MemorySink {
        MemorySink {
            delivered,
            per_call: per_call.max(1),
            clock: None,
            calls_left: None,
            buffer: Vec::new(),
            accepted: Accepted::default(),
            stats: SinkStats::default(),
        }
    }

    /// Each call moves `clock` on by `call_ms`.
    pub fn taking(mut self, clock: Arc<ManualClock>, call_ms: i64) -> MemorySink {
        self.clock = Some((clock, call_ms));
        self
    }

    /// Calls fail once `calls_left` is spent.
    pub fn failing_after(mut self, calls_left: Arc<AtomicI64>) -> MemorySink {
        self.calls_left = Some(calls_left);
        self
    }

    fn call(&mut self) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.buffer);
        if let Some((clock, ms)) = &self.clock {
            clock.advance(*ms);
        }
        self.stats.calls += 1;
        let mut delivered = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        let text = |l: &Vec<u8>| String::from_utf8_lossy(l).into_owned();
        if let Some(left) = &self.calls_left {
            if left.fetch_sub(1, Ordering::SeqCst) <= 0 {
                delivered.extend(lines[..lines.len() / 2].iter().map(text));
                return Err(SinkError::RetriesExhausted {
                    stream: "memory".into(),
                    records: lines.len(),
                    lines: lines.len(),
                    attempts: 1,
                    code: "ServiceUnavailableException".into(),
                    message: "Slow down.".into(),
                });
            }
        }
        delivered.extend(lines.iter().map(text));
        self.accepted.lines += lines.len() as u64;
        self.accepted.bytes += lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
        Ok(())
    }
}

impl Sink for MemorySink {
    async fn send<L>(&mut self, line: L) -> Result<(), SinkError>
    where
        L: AsRef<[u8]> + Send,
    {
        let line = line.as_ref().to_vec();
        self.stats.lines += 1;
        self.stats.payload_bytes += line.len() as u64 + 1;
        self.buffer.push(line);
        if self.buffer.len() >= self.per_call {
            self.call()?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<SinkStats, SinkError> {
        self.call()?;
        Ok(self.stats)
    }

    fn accepted(&self) -> Accepted {
        self.accepted
    }

    async fn stop(self) -> Result<(SinkStats, Accepted), SinkError> {
        Ok((self.stats, self.accepted))
    }
}
