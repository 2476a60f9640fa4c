//! Lines to Parquet objects: each line is placed ([`super::peek`]) in its partition (class,
//! region, account, event day), shredded into its object's column buffers (`shred.rs`) and,
//! once they hold a row group's worth, encoded as a row group (zstd, `encode.rs`), so memory
//! stays bounded whatever the input's size. The bytes of each object are handed out in chunks
//! as they are written ([`LakeWriter::take_ready`]) and its last chunk at
//! [`LakeWriter::finish`]; the caller decides where they go.

use std::collections::BTreeMap;
use std::sync::Arc;

use parquet::basic::ZstdLevel;
use parquet::file::properties::WriterProperties;

use super::encode::{self, Done, Encoder};
use super::schema::{schema, ClassSchema};
use super::shred::Rows;
use super::{event_day, partition_value, peek, Class, Partition};

/// Bounds of the objects written.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A row group is encoded once the lines shredded into it reach this many bytes (Security
    /// Lake: at most 256 MB compressed; the buffered rows are this function's memory).
    pub row_group_bytes: usize,
    /// Data pages are cut at this size uncompressed (Security Lake: at most 1 MB). The writer
    /// checks after every `write_batch` values, so the limit is this less room for them
    /// (256 statements of 2 KB).
    pub page_bytes: usize,
    pub write_batch: usize,
    pub zstd: ZstdLevel,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            row_group_bytes: 8 * 1024 * 1024,
            page_bytes: 512 * 1024,
            write_batch: 256,
            zstd: ZstdLevel::default(),
        }
    }
}

/// Why lines could not be written; none of these improves on a retry.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("line {line}: {source}")]
    Malformed { line: u64, source: super::Malformed },
    #[error("line {line}: class_uid {uid:?} is not one of the classes the lake takes")]
    UnknownClass { line: u64, uid: Option<i64> },
    #[error("line {line}: {class} has no source in SECURITY_LAKE_SOURCES")]
    NoSource { line: u64, class: &'static str },
    #[error("line {line}: an earlier line failed this input")]
    Failed { line: u64 },
    #[error("writing Parquet failed: {0}")]
    Parquet(String),
}

/// One object being written, by its index in the writer's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(pub usize);

/// Bytes of one object, in order: `last` marks its final chunk (the Parquet footer).
#[derive(Debug)]
pub struct Chunk {
    pub object: ObjectId,
    pub bytes: Vec<u8>,
    pub last: bool,
}

/// What the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LakeStats {
    /// Rows written (one per line).
    pub lake_rows: u64,
    /// Objects written.
    pub lake_objects: u64,
    /// Parquet bytes written.
    pub lake_bytes: u64,
    /// Rows whose `time` is earlier than the row before them in the same object (Security Lake
    /// asks for time order; rows are kept in input order, which is time order for Redshift).
    pub rows_out_of_order: u64,
}

struct Open {
    partition: Partition,
    schema: &'static ClassSchema,
    /// Rows not yet encoded; `None` while another object takes the lines.
    rows: Option<Rows>,
    last_time: Option<i64>,
    /// Encoded bytes not yet taken.
    ready: Vec<u8>,
}

impl Open {
    /// Keeps encoded bytes until they are taken.
    fn take(&mut self, bytes: Vec<u8>) {
        if self.ready.is_empty() {
            self.ready = bytes;
        } else {
            self.ready.extend_from_slice(&bytes);
        }
    }
}

/// Routes OCSF lines to one Parquet object per partition.
pub struct LakeWriter {
    limits: Limits,
    props: Arc<WriterProperties>,
    /// Classes that have somewhere to go; a line of another class is refused.
    classes: Vec<Class>,
    objects: Vec<Open>,
    by_partition: BTreeMap<Partition, usize>,
    /// Row buffers the encoder is done with, at most one per class, for the next rows.
    spare: Vec<Rows>,
    /// Started with the first object.
    encoder: Option<Encoder>,
    line: u64,
    /// Why an earlier line or row group failed: the objects are not to be completed.
    failed: Option<String>,
    stats: LakeStats,
}

impl LakeWriter {
    /// A writer for lines of `classes` (all five for `parse`; those with a source in the lake).
    pub fn new(classes: &[Class], limits: Limits) -> Self {
        LakeWriter {
            limits,
            props: encode::properties(&limits),
            classes: classes.to_vec(),
            objects: Vec::new(),
            by_partition: BTreeMap::new(),
            spare: Vec::new(),
            encoder: None,
            line: 0,
            failed: None,
            stats: LakeStats::default(),
        }
    }

    /// The partition of an object being written.
    pub fn partition(&self, object: ObjectId) -> &Partition {
        &self.objects[object.0].partition
    }

    /// Objects opened so far (ids `0..objects()`).
    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    pub fn stats(&self) -> LakeStats {
        self.stats
    }

    fn fail(&mut self, reason: String) -> LakeError {
        self.failed = Some(reason.clone());
        LakeError::Parquet(reason)
    }

    /// Writes one line (one OCSF event, no newline).
    pub fn push(&mut self, line: &[u8]) -> Result<(), LakeError> {
        self.line += 1;
        let n = self.line;
        if self.failed.is_some() {
            return Err(LakeError::Failed { line: n });
        }
        // Not checked for UTF-8 here (a pass over every byte): the lines are rendered from Rust
        // strings (`output::json`), and escapes are decoded to UTF-8 by the shredder.
        let placed = peek(line).map_err(|source| LakeError::Malformed { line: n, source })?;
        let class = placed
            .class_uid
            .and_then(Class::from_uid)
            .ok_or(LakeError::UnknownClass {
                line: n,
                uid: placed.class_uid,
            })?;
        if !self.classes.contains(&class) {
            return Err(LakeError::NoSource {
                line: n,
                class: class.name(),
            });
        }
        let partition = Partition {
            class,
            region: partition_value(placed.region.as_deref()),
            account: partition_value(placed.account.as_deref()),
            day: event_day(placed.time.unwrap_or(0)),
        };
        let at = match self.by_partition.get(&partition) {
            Some(&at) => at,
            None => self.open(partition)?,
        };
        let mut rows = match self.objects[at].rows.take() {
            Some(rows) => rows,
            None => self.rows_for(self.objects[at].schema),
        };
        let open = &mut self.objects[at];
        if let Err(source) = rows.push(open.schema, line) {
            self.failed = Some(format!("line {n}: {source}"));
            return Err(LakeError::Malformed { line: n, source });
        }
        if let (Some(last), Some(time)) = (open.last_time, placed.time) {
            if time < last {
                self.stats.rows_out_of_order += 1;
            }
        }
        if placed.time.is_some() {
            open.last_time = placed.time;
        }
        self.stats.lake_rows += 1;
        if rows.bytes >= self.limits.row_group_bytes {
            self.encode(at, rows)?;
        } else {
            self.objects[at].rows = Some(rows);
        }
        Ok(())
    }

    /// Hands the rows of object `at` to the encoder (waiting while it encodes earlier ones).
    fn encode(&mut self, at: usize, rows: Rows) -> Result<(), LakeError> {
        let sent = match self.encoder.as_ref() {
            Some(encoder) => encoder.rows(at, rows),
            None => Err(parquet::errors::ParquetError::General(
                "no encoder for the rows".into(),
            )),
        };
        self.collect();
        if let Err(e) = sent {
            // The thread's own reason, when it gave one, says more than the closed channel.
            self.failed.get_or_insert_with(|| e.to_string());
        }
        match &self.failed {
            Some(reason) => Err(LakeError::Parquet(reason.clone())),
            None => Ok(()),
        }
    }

    /// Hands every object's buffered rows to the encoder.
    fn encode_all(&mut self) -> Result<(), LakeError> {
        for at in 0..self.objects.len() {
            if let Some(rows) = self.objects[at].rows.take() {
                self.encode(at, rows)?;
            }
        }
        Ok(())
    }

    /// Takes in what the encoder did: bytes for the objects, buffers for the next rows.
    fn collect(&mut self) {
        let Some(encoder) = self.encoder.as_ref() else {
            return;
        };
        for done in encoder.done() {
            match done {
                Done::Bytes(object, bytes) => {
                    if let Some(open) = self.objects.get_mut(object) {
                        open.take(bytes);
                    }
                }
                Done::Rows(rows) => {
                    if !self.spare.iter().any(|r| r.class == rows.class) {
                        self.spare.push(rows);
                    }
                }
                Done::Failed(reason) => self.failed = Some(reason),
                Done::Finished(_) => {}
            }
        }
    }

    /// A row buffer for an object of `schema`'s class: a spare one, or a new one.
    fn rows_for(&mut self, schema: &ClassSchema) -> Rows {
        match self.spare.iter().position(|r| r.class == schema.class) {
            Some(i) => self.spare.swap_remove(i),
            None => Rows::new(schema),
        }
    }

    fn open(&mut self, partition: Partition) -> Result<usize, LakeError> {
        // Rows come in time order: a new partition (the next day, mostly) means the others are
        // done with for now. Their rows are encoded, so one object at a time holds rows in
        // memory, however many days a file spans.
        self.encode_all()?;
        let class = partition.class;
        let schema = schema(class)
            .ok_or_else(|| LakeError::Parquet(format!("no schema for {}", class.name())))?;
        if self.encoder.is_none() {
            let encoder =
                Encoder::start(self.props.clone()).map_err(|e| self.fail(e.to_string()))?;
            self.encoder = Some(encoder);
        }
        if let Some(Err(e)) = self
            .encoder
            .as_ref()
            .map(|e| e.open(schema.parquet.clone()))
        {
            return Err(self.fail(e.to_string()));
        }
        self.objects.push(Open {
            partition: partition.clone(),
            schema,
            rows: None,
            last_time: None,
            ready: Vec::new(),
        });
        let at = self.objects.len() - 1;
        self.by_partition.insert(partition, at);
        self.stats.lake_objects += 1;
        Ok(at)
    }

    /// Takes the bytes written so far of every object that has at least `min` of them.
    pub fn take_ready(&mut self, min: usize) -> Vec<Chunk> {
        self.collect();
        let mut chunks = Vec::new();
        for (i, open) in self.objects.iter_mut().enumerate() {
            if !open.ready.is_empty() && open.ready.len() >= min {
                self.stats.lake_bytes += open.ready.len() as u64;
                chunks.push(Chunk {
                    object: ObjectId(i),
                    bytes: std::mem::take(&mut open.ready),
                    last: false,
                });
            }
        }
        chunks
    }

    /// Ends every object: its last rows, row group and footer, as its last chunk.
    pub fn finish(mut self) -> Result<(Vec<Chunk>, Vec<Partition>, LakeStats), LakeError> {
        self.encode_all()?;
        if let Some(reason) = &self.failed {
            return Err(LakeError::Parquet(reason.clone()));
        }
        let mut last = Vec::new();
        for done in self.encoder.take().map(Encoder::finish).unwrap_or_default() {
            match done {
                Done::Bytes(object, bytes) => {
                    if let Some(open) = self.objects.get_mut(object) {
                        open.take(bytes);
                    }
                }
                Done::Rows(_) => {}
                Done::Finished(footers) => last = footers,
                Done::Failed(reason) => return Err(LakeError::Parquet(reason)),
            }
        }
        if last.len() != self.objects.len() {
            return Err(LakeError::Parquet("an object was not finished".into()));
        }
        let mut chunks = Vec::new();
        let mut partitions = Vec::new();
        for (i, (mut open, footer)) in std::mem::take(&mut self.objects)
            .into_iter()
            .zip(last)
            .enumerate()
        {
            open.ready.extend_from_slice(&footer);
            self.stats.lake_bytes += open.ready.len() as u64;
            chunks.push(Chunk {
                object: ObjectId(i),
                bytes: open.ready,
                last: true,
            });
            partitions.push(open.partition);
        }
        Ok((chunks, partitions, self.stats))
    }
}

#[cfg(test)]
mod tests;
