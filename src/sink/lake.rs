//! The Security Lake destination: a [`Sink`] that turns the `ocsf` lines of one input into its
//! Parquet objects (`crate::lake`) and puts them under each class's source location, through the
//! [`LakeStore`] port (S3 in `aws/lake.rs`, [`MemoryLake`] for tests).
//!
//! Exactly once: an object's key is its source's location, its partition and a name derived
//! from the input ([`Sink::begin`]: bucket, key and ETag; a CloudWatch Logs batch's group,
//! stream and first event id), so a retry writes the same keys again. Nothing counts as accepted
//! before [`Sink::finish`] has completed every object, so the ledger marks an input done only
//! then, and a progress record never lets a retry skip lines. An object of up to
//! [`PART_BYTES`] goes up in one PutObject; a larger one as a multipart upload, its parts sent
//! as they fill (memory stays bounded), completed at the end and aborted on any failure or stop.
//! A crash in between leaves parts that the bucket's lifecycle rule removes
//! (docs/SECURITY_LAKE.md). An input whose reading broke off completes nothing
//! ([`Sink::finish_broken`]). With both destinations, records split into parts for Firehose are
//! joined back into one row ([`LakeSink::with_parts_joined`]).

use std::future::Future;
use std::sync::Arc;

use crate::lake::parts::Joiner;
use crate::lake::{object_name, Chunk, Class, LakeStats, LakeWriter, Limits, ObjectId, Partition};

use super::{Accepted, Sink, SinkError, SinkStats};

pub mod memory;
pub use memory::MemoryLake;

/// Parts of a multipart upload: S3's smallest (5 MiB, but for the last one), so that an object
/// not being written to (an earlier day of the file) holds less than that in memory.
pub const PART_BYTES: usize = 5 * 1024 * 1024;

/// Where one class's objects go: `s3://bucket/prefix`, the prefix empty or ending with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub class: Class,
    pub bucket: String,
    pub prefix: String,
}

/// One object in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LakeObject {
    pub class: Class,
    pub bucket: String,
    pub key: String,
}

/// Why a call to the lake failed, and whether trying again later can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub message: String,
    pub retryable: bool,
}

/// The lake's object store: single puts and multipart uploads, each call under the class's own
/// credentials (the custom source's provider role).
pub trait LakeStore: Send + Sync {
    fn put(
        &self,
        object: &LakeObject,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Starts a multipart upload; returns its id.
    fn create_upload(
        &self,
        object: &LakeObject,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Uploads part `number` (from 1); returns its ETag.
    fn upload_part(
        &self,
        object: &LakeObject,
        upload: &str,
        number: i32,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn complete(
        &self,
        object: &LakeObject,
        upload: &str,
        parts: Vec<(i32, String)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn abort(
        &self,
        object: &LakeObject,
        upload: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One object being uploaded.
struct Upload {
    object: LakeObject,
    /// Bytes not yet sent.
    pending: Vec<u8>,
    /// The multipart upload, once the object outgrew one part, and its parts so far.
    upload: Option<String>,
    parts: Vec<(i32, String)>,
}

/// The lake as a sink: see the module documentation.
pub struct LakeSink<St> {
    store: Arc<St>,
    locations: Arc<Vec<Location>>,
    /// `None` once finished.
    writer: Option<LakeWriter>,
    lake: LakeStats,
    name: Option<String>,
    uploads: Vec<Upload>,
    part_bytes: usize,
    /// With both destinations: parts of records split for Firehose, joined back.
    parts: Option<Joiner>,
    stats: SinkStats,
}

impl<St: LakeStore> LakeSink<St> {
    pub fn new(store: Arc<St>, locations: Arc<Vec<Location>>) -> Self {
        let classes: Vec<Class> = locations.iter().map(|l| l.class).collect();
        LakeSink {
            store,
            locations,
            writer: Some(LakeWriter::new(&classes, Limits::default())),
            lake: LakeStats::default(),
            name: None,
            uploads: Vec::new(),
            part_bytes: PART_BYTES,
            parts: None,
            stats: SinkStats::default(),
        }
    }

    /// Parts of `bytes` instead of [`PART_BYTES`] (tests: multipart uploads of small objects;
    /// S3 refuses parts under 5 MiB but the last).
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    /// Joins the parts of records split for Firehose (`lake::parts`), for a lake that gets
    /// the lines rendered for Firehose (both destinations).
    pub fn with_parts_joined(mut self) -> Self {
        self.parts = Some(Joiner::default());
        self
    }

    /// Writes one line, or the record its parts make once the last one came.
    fn push(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Self::failed("the sink was already finished", false));
        };
        let Some(joiner) = self.parts.as_mut() else {
            return writer.push(line).map_err(|e| Self::failed(e, false));
        };
        let (joined, rest) = joiner.feed(line);
        for line in joined.as_deref().into_iter().chain(rest) {
            writer.push(line).map_err(|e| Self::failed(e, false))?;
        }
        Ok(())
    }

    /// Row groups and pages of other sizes (tests: many row groups from little data).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        let classes: Vec<Class> = self.locations.iter().map(|l| l.class).collect();
        self.writer = Some(LakeWriter::new(&classes, limits));
        self
    }

    fn failed(reason: impl std::fmt::Display, retryable: bool) -> SinkError {
        SinkError::Lake {
            reason: reason.to_string(),
            retryable,
        }
    }

    /// Opens the upload entries of the objects the writer opened since the last call.
    fn open_uploads(&mut self, partitions: &[Partition]) -> Result<(), SinkError> {
        for partition in partitions {
            let location = self
                .locations
                .iter()
                .find(|l| l.class == partition.class)
                .ok_or_else(|| Self::failed("no location for a class", false))?;
            let name = self
                .name
                .as_deref()
                .ok_or_else(|| Self::failed("the input was not named before its lines", false))?;
            self.uploads.push(Upload {
                object: LakeObject {
                    class: partition.class,
                    bucket: location.bucket.clone(),
                    key: format!("{}{}{name}", location.prefix, partition.path()),
                },
                pending: Vec::new(),
                upload: None,
                parts: Vec::new(),
            });
        }
        Ok(())
    }

    /// Queues the chunks' bytes on their objects' uploads.
    fn queue(&mut self, chunks: Vec<Chunk>) -> Result<(), SinkError> {
        for chunk in chunks {
            let up = self
                .uploads
                .get_mut(chunk.object.0)
                .ok_or_else(|| Self::failed("a chunk of an object not opened", false))?;
            if up.pending.is_empty() {
                up.pending = chunk.bytes;
            } else {
                up.pending.extend_from_slice(&chunk.bytes);
            }
        }
        Ok(())
    }

    /// Takes what the writer has ready and sends the parts that are full.
    async fn drain(&mut self) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Self::failed("the sink was already finished", false));
        };
        let ready = writer.take_ready(self.part_bytes);
        let new: Vec<Partition> = (self.uploads.len()..writer.objects())
            .map(|i| writer.partition(ObjectId(i)).clone())
            .collect();
        self.open_uploads(&new)?;
        self.queue(ready)?;
        self.send_parts().await
    }

    /// Sends a part of every object with at least `PART_BYTES` pending.
    async fn send_parts(&mut self) -> Result<(), SinkError> {
        for i in 0..self.uploads.len() {
            while self.uploads[i].pending.len() >= self.part_bytes {
                let rest = self.uploads[i].pending.split_off(self.part_bytes);
                let body = std::mem::replace(&mut self.uploads[i].pending, rest);
                self.part(i, body).await?;
            }
        }
        Ok(())
    }

    async fn part(&mut self, i: usize, body: Vec<u8>) -> Result<(), SinkError> {
        let store = self.store.clone();
        let up = &mut self.uploads[i];
        let id = match &up.upload {
            Some(id) => id.clone(),
            None => {
                let id = store.create_upload(&up.object).await.map_err(|e| {
                    Self::failed(
                        format!("s3://{}/{}: {e}", up.object.bucket, up.object.key),
                        e.retryable,
                    )
                })?;
                up.upload = Some(id.clone());
                id
            }
        };
        let number = up.parts.len() as i32 + 1;
        self.stats.calls += 1;
        let etag = store
            .upload_part(&up.object, &id, number, body)
            .await
            .map_err(|e| {
                Self::failed(
                    format!(
                        "s3://{}/{} part {number}: {e}",
                        up.object.bucket, up.object.key
                    ),
                    e.retryable,
                )
            })?;
        up.parts.push((number, etag));
        Ok(())
    }

    /// Aborts every multipart upload started (best effort: the lifecycle rule removes what an
    /// abort that fails leaves).
    async fn abort_all(&mut self) {
        for up in &mut self.uploads {
            if let Some(id) = up.upload.take() {
                if let Err(e) = self.store.abort(&up.object, &id).await {
                    tracing::warn!(bucket = %up.object.bucket, key = %up.object.key, error = %e, "aborting a multipart upload failed; the lake bucket's lifecycle rule removes its parts");
                }
            }
        }
    }

    /// Ends the writer and completes every object.
    async fn complete(&mut self) -> Result<(), SinkError> {
        if let Some(held) = self.parts.as_mut().and_then(Joiner::finish) {
            self.push(&held)?;
        }
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Self::failed("the sink was already finished", false))?;
        let (last, partitions, lake) = writer.finish().map_err(|e| Self::failed(e, false))?;
        self.lake = lake;
        self.open_uploads(&partitions[self.uploads.len()..])?;
        self.queue(last)?;
        for i in 0..self.uploads.len() {
            let body = std::mem::take(&mut self.uploads[i].pending);
            if self.uploads[i].upload.is_none() && body.len() <= self.part_bytes {
                self.stats.calls += 1;
                let up = &self.uploads[i];
                self.store.put(&up.object, body).await.map_err(|e| {
                    Self::failed(
                        format!("s3://{}/{}: {e}", up.object.bucket, up.object.key),
                        e.retryable,
                    )
                })?;
                continue;
            }
            if !body.is_empty() || self.uploads[i].parts.is_empty() {
                self.part(i, body).await?;
            }
            let up = &mut self.uploads[i];
            let (Some(id), parts) = (up.upload.take(), std::mem::take(&mut up.parts)) else {
                continue;
            };
            self.stats.calls += 1;
            if let Err(e) = self.store.complete(&up.object, &id, parts).await {
                up.upload = Some(id);
                return Err(Self::failed(
                    format!(
                        "s3://{}/{}: completing the upload: {e}",
                        up.object.bucket, up.object.key
                    ),
                    e.retryable,
                ));
            }
        }
        self.stats.lake = Some(self.lake);
        Ok(())
    }
}

impl<St: LakeStore> Sink for LakeSink<St> {
    fn begin(&mut self, identity: &[&str]) {
        self.name = Some(object_name(identity));
    }

    fn max_line(&self) -> Option<usize> {
        None
    }

    async fn send<L>(&mut self, line: L) -> Result<(), SinkError>
    where
        L: AsRef<[u8]> + Send,
    {
        let line = line.as_ref();
        self.stats.lines += 1;
        self.stats.payload_bytes += line.len() as u64 + 1;
        let result = match self.push(line) {
            Ok(()) => self.drain().await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.abort_all().await;
        }
        result
    }

    async fn finish(mut self) -> Result<SinkStats, SinkError> {
        let result = self.complete().await;
        if let Err(e) = result {
            self.abort_all().await;
            return Err(e);
        }
        Ok(self.stats)
    }

    fn accepted(&self) -> Accepted {
        Accepted::default()
    }

    /// The input failed: its objects would be partial, so they are aborted, as at a stop.
    async fn finish_broken(self) -> Result<(SinkStats, Accepted), SinkError> {
        self.stop().await
    }

    async fn stop(mut self) -> Result<(SinkStats, Accepted), SinkError> {
        self.abort_all().await;
        Ok((self.stats, Accepted::default()))
    }
}

#[cfg(test)]
mod tests;
