//! Lines to Parquet objects: each line is placed ([`super::peek`]) in its partition (class,
//! region, account, event day), conformed to its class's schema, decoded into Arrow batches
//! (arrow-json, the schema given) and written as row groups (zstd) that are flushed as they fill,
//! so memory stays bounded whatever the input's size. The bytes of each object are handed out
//! in chunks as they are written ([`LakeWriter::take_ready`]) and its last chunk at
//! [`LakeWriter::finish`]; the caller decides where they go.

use std::collections::BTreeMap;

use arrow_json::reader::{Decoder, ReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{conform, event_day, partition_value, peek, schema::schema, Class, Partition};

/// Bounds of the objects written.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows decoded into one Arrow batch before it is encoded.
    pub batch_rows: usize,
    /// A row group is flushed once its encoded size reaches this (Security Lake: at most 256 MB
    /// compressed; a smaller group bounds this function's memory).
    pub row_group_bytes: usize,
    /// Data pages are cut at this size uncompressed (Security Lake: at most 1 MB). The writer
    /// checks after every `write_batch` values, so the limit is this less room for them
    /// (256 statements of 2 KB).
    pub page_bytes: usize,
    pub write_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_rows: 1024,
            row_group_bytes: 8 * 1024 * 1024,
            page_bytes: 512 * 1024,
            write_batch: 256,
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
    #[error("line {line}: Arrow decoding failed: {reason}")]
    Decode { line: u64, reason: String },
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
    decoder: Decoder,
    writer: ArrowWriter<Vec<u8>>,
    last_time: Option<i64>,
    /// Lines given to the decoder and not yet flushed into a batch; the first one's number.
    pending: usize,
    first_pending_line: u64,
    rows: u64,
    /// [`Limits::row_group_bytes`].
    row_group_bytes: usize,
}

/// Routes OCSF lines to one Parquet object per partition.
pub struct LakeWriter {
    limits: Limits,
    /// Classes that have somewhere to go; a line of another class is refused.
    classes: Vec<Class>,
    objects: Vec<Open>,
    by_partition: BTreeMap<Partition, usize>,
    conformed: Vec<u8>,
    line: u64,
    stats: LakeStats,
}

impl LakeWriter {
    /// A writer for lines of `classes` (all five for `parse`; those with a source in the lake).
    pub fn new(classes: &[Class], limits: Limits) -> Self {
        LakeWriter {
            limits,
            classes: classes.to_vec(),
            objects: Vec::new(),
            by_partition: BTreeMap::new(),
            conformed: Vec::with_capacity(4096),
            line: 0,
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

    /// Writes one line (one OCSF event, no newline).
    pub fn push(&mut self, line: &[u8]) -> Result<(), LakeError> {
        self.line += 1;
        let n = self.line;
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
        self.conformed.clear();
        conform(line, schema(class).fields(), &mut self.conformed)
            .map_err(|source| LakeError::Malformed { line: n, source })?;
        self.conformed.push(b'\n');
        let limits = self.limits;
        let open = &mut self.objects[at];
        if let (Some(last), Some(time)) = (open.last_time, placed.time) {
            if time < last {
                self.stats.rows_out_of_order += 1;
            }
        }
        if placed.time.is_some() {
            open.last_time = placed.time;
        }
        if open.pending == 0 {
            open.first_pending_line = n;
        }
        let mut rest = &self.conformed[..];
        while !rest.is_empty() {
            let used = open.decoder.decode(rest).map_err(|e| LakeError::Decode {
                line: n,
                reason: e.to_string(),
            })?;
            rest = &rest[used..];
            if !rest.is_empty() {
                open.flush_batch()?;
            }
        }
        open.pending += 1;
        open.rows += 1;
        self.stats.lake_rows += 1;
        if open.pending >= limits.batch_rows {
            open.flush_batch()?;
        }
        Ok(())
    }

    fn open(&mut self, partition: Partition) -> Result<usize, LakeError> {
        // Rows come in time order: a new partition (the next day, mostly) means the others are
        // done with for now. Their row groups are flushed, so one object at a time holds rows
        // in memory, however many days a file spans.
        for open in &mut self.objects {
            open.flush_batch()?;
            open.writer
                .flush()
                .map_err(|e| LakeError::Parquet(e.to_string()))?;
        }
        let class = partition.class;
        let decoder = ReaderBuilder::new(schema(class))
            .with_batch_size(self.limits.batch_rows)
            .with_coerce_primitive(true)
            .with_strict_mode(true)
            .build_decoder()
            .map_err(|e| LakeError::Parquet(e.to_string()))?;
        // Statistics where queries filter (time, class, activity, status, partition facts); no
        // dictionary where values rarely repeat (statements, raw text, ids, unmapped values).
        let mut props = WriterProperties::builder().set_statistics_enabled(EnabledStatistics::None);
        for column in [
            "time",
            "class_uid",
            "activity_id",
            "status_id",
            "severity_id",
        ] {
            props = props
                .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Chunk);
        }
        for column in [
            &["query_info", "query_string"][..],
            &["raw_data"],
            &["metadata", "uid"],
            &["unmapped", "key_value", "value"],
        ] {
            props = props.set_column_dictionary_enabled(
                ColumnPath::new(column.iter().map(|c| c.to_string()).collect()),
                false,
            );
        }
        let props = props
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_bytes(Some(self.limits.row_group_bytes))
            .set_max_row_group_row_count(Some(1024 * 1024))
            .set_data_page_size_limit(self.limits.page_bytes)
            .set_dictionary_page_size_limit(self.limits.page_bytes)
            .set_write_batch_size(self.limits.write_batch)
            .set_created_by(format!(
                "redshift-audit-forwarder {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema(class), Some(props))
            .map_err(|e| LakeError::Parquet(e.to_string()))?;
        self.objects.push(Open {
            partition: partition.clone(),
            decoder,
            writer,
            last_time: None,
            pending: 0,
            first_pending_line: 0,
            rows: 0,
            row_group_bytes: self.limits.row_group_bytes,
        });
        let at = self.objects.len() - 1;
        self.by_partition.insert(partition, at);
        self.stats.lake_objects += 1;
        Ok(at)
    }

    /// Takes the bytes written so far of every object that has at least `min` of them.
    pub fn take_ready(&mut self, min: usize) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for (i, open) in self.objects.iter_mut().enumerate() {
            let buffer = open.writer.inner_mut();
            if !buffer.is_empty() && buffer.len() >= min {
                self.stats.lake_bytes += buffer.len() as u64;
                chunks.push(Chunk {
                    object: ObjectId(i),
                    bytes: std::mem::take(buffer),
                    last: false,
                });
            }
        }
        chunks
    }

    /// Ends every object: its last rows, row group and footer, as its last chunk.
    pub fn finish(mut self) -> Result<(Vec<Chunk>, Vec<Partition>, LakeStats), LakeError> {
        let mut chunks = Vec::new();
        let mut partitions = Vec::new();
        for (i, mut open) in std::mem::take(&mut self.objects).into_iter().enumerate() {
            open.flush_batch()?;
            open.writer
                .finish()
                .map_err(|e| LakeError::Parquet(e.to_string()))?;
            let bytes = std::mem::take(open.writer.inner_mut());
            self.stats.lake_bytes += bytes.len() as u64;
            chunks.push(Chunk {
                object: ObjectId(i),
                bytes,
                last: true,
            });
            partitions.push(open.partition);
        }
        Ok((chunks, partitions, self.stats))
    }
}

impl Open {
    /// Encodes the lines decoded so far.
    fn flush_batch(&mut self) -> Result<(), LakeError> {
        let batch = self.decoder.flush().map_err(|e| LakeError::Decode {
            line: self.first_pending_line,
            reason: e.to_string(),
        })?;
        self.pending = 0;
        if let Some(batch) = batch {
            self.writer
                .write(&batch)
                .map_err(|e| LakeError::Parquet(e.to_string()))?;
            // The encoded-size estimate can run far below what the column writers hold
            // (dictionaries, buffered values): their memory bounds the row group too.
            if self.writer.memory_size() > self.row_group_bytes {
                self.writer
                    .flush()
                    .map_err(|e| LakeError::Parquet(e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
