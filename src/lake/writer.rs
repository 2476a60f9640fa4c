//! Lines to Parquet objects: each line is placed ([`super::peek`]) in its partition (class,
//! region, account, event day), shredded into its object's column buffers (`shred.rs`) and,
//! once they hold a row group's worth, encoded as a row group (zstd, `encode.rs`), so memory
//! stays bounded whatever the input's size. The bytes of each object are handed out in chunks
//! as they are written ([`LakeWriter::take_ready`]) and its last chunk at
//! [`LakeWriter::finish`]; the caller decides where they go.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use parquet::basic::ZstdLevel;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::schema::{schema, ClassSchema};
use super::shred::Rows;
use super::{encode, event_day, partition_value, peek, Class, Partition};

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
            row_group_bytes: 16 * 1024 * 1024,
            page_bytes: 512 * 1024,
            write_batch: 256,
            zstd: encode::default_zstd(),
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
    file: SerializedFileWriter<Vec<u8>>,
    /// Rows not yet encoded; `None` while another object takes the lines.
    rows: Option<Rows>,
    last_time: Option<i64>,
}

/// Routes OCSF lines to one Parquet object per partition.
pub struct LakeWriter {
    limits: Limits,
    props: Arc<WriterProperties>,
    /// Classes that have somewhere to go; a line of another class is refused.
    classes: Vec<Class>,
    objects: Vec<Open>,
    by_partition: BTreeMap<Partition, usize>,
    /// Row buffers of objects that took no lines lately, by class, for the next object.
    spare: Vec<(Class, Rows)>,
    strings: Vec<ByteArray>,
    line: u64,
    /// A line failed half-shredded: the buffers are not to be written.
    failed: bool,
    stats: LakeStats,
}

fn parquet_error(e: parquet::errors::ParquetError) -> LakeError {
    LakeError::Parquet(e.to_string())
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
            strings: Vec::new(),
            line: 0,
            failed: false,
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
        if self.failed {
            return Err(LakeError::Failed { line: n });
        }
        // The pipeline writes UTF-8; anything else is made so rather than refused.
        let line: Cow<[u8]> = match std::str::from_utf8(line) {
            Ok(_) => Cow::Borrowed(line),
            Err(_) => Cow::Owned(String::from_utf8_lossy(line).into_owned().into_bytes()),
        };
        let placed = peek(&line).map_err(|source| LakeError::Malformed { line: n, source })?;
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
        if self.objects[at].rows.is_none() {
            let rows = self.rows_for(class, self.objects[at].schema);
            self.objects[at].rows = Some(rows);
        }
        let open = &mut self.objects[at];
        let Some(rows) = open.rows.as_mut() else {
            return Err(LakeError::Failed { line: n });
        };
        if let Err(source) = rows.push(open.schema, &line) {
            self.failed = true;
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
            encode::row_group(&mut open.file, rows, &mut self.strings).map_err(parquet_error)?;
        }
        Ok(())
    }

    /// A row buffer for an object of `class`: a spare one of the class, or a new one.
    fn rows_for(&mut self, class: Class, schema: &ClassSchema) -> Rows {
        match self.spare.iter().position(|(c, _)| *c == class) {
            Some(i) => self.spare.swap_remove(i).1,
            None => Rows::new(schema),
        }
    }

    fn open(&mut self, partition: Partition) -> Result<usize, LakeError> {
        // Rows come in time order: a new partition (the next day, mostly) means the others are
        // done with for now. Their rows are encoded and their buffers set aside, so one object
        // at a time holds rows in memory, however many days a file spans.
        for open in &mut self.objects {
            if let Some(mut rows) = open.rows.take() {
                encode::row_group(&mut open.file, &mut rows, &mut self.strings)
                    .map_err(parquet_error)?;
                if !self.spare.iter().any(|(c, _)| *c == open.partition.class) {
                    self.spare.push((open.partition.class, rows));
                }
            }
        }
        let class = partition.class;
        let schema = schema(class)
            .ok_or_else(|| LakeError::Parquet(format!("no schema for {}", class.name())))?;
        let file =
            SerializedFileWriter::new(Vec::new(), schema.parquet.clone(), self.props.clone())
                .map_err(parquet_error)?;
        self.objects.push(Open {
            partition: partition.clone(),
            schema,
            file,
            rows: None,
            last_time: None,
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
            let buffer = open.file.inner_mut();
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
        if self.failed {
            return Err(LakeError::Failed { line: self.line });
        }
        let mut chunks = Vec::new();
        let mut partitions = Vec::new();
        for (i, mut open) in std::mem::take(&mut self.objects).into_iter().enumerate() {
            if let Some(rows) = open.rows.as_mut() {
                encode::row_group(&mut open.file, rows, &mut self.strings)
                    .map_err(parquet_error)?;
            }
            let bytes = open.file.into_inner().map_err(parquet_error)?;
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

#[cfg(test)]
mod tests;
