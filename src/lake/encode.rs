//! Shredded rows encoded as Parquet: the writer properties of every object (zstd, page and
//! dictionary limits, statistics where queries filter) and one row group written from a
//! [`Rows`] buffer with parquet's column writers, column after column.

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use super::schema::Leaf;
use super::shred::Rows;
use super::writer::Limits;

/// The properties every object is written with.
pub fn properties(limits: &Limits) -> Arc<WriterProperties> {
    // Statistics where queries filter (time, class, activity, status, severity); no dictionary
    // where values rarely repeat (statements, raw text, ids, unmapped values).
    let mut props = WriterProperties::builder().set_statistics_enabled(EnabledStatistics::None);
    for column in [
        "time",
        "class_uid",
        "activity_id",
        "status_id",
        "severity_id",
    ] {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Chunk);
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
    Arc::new(
        props
            .set_compression(Compression::ZSTD(limits.zstd))
            .set_data_page_size_limit(limits.page_bytes)
            .set_dictionary_page_size_limit(limits.page_bytes)
            .set_write_batch_size(limits.write_batch)
            .set_created_by(format!(
                "redshift-audit-forwarder {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build(),
    )
}

/// Writes `rows` as one row group of `file` and empties them (their memory is kept).
/// `strings` is scratch space for the values of string columns.
pub fn row_group(
    file: &mut SerializedFileWriter<Vec<u8>>,
    rows: &mut Rows,
    strings: &mut Vec<ByteArray>,
) -> Result<(), ParquetError> {
    if rows.rows == 0 {
        return Ok(());
    }
    let mut group = file.next_row_group()?;
    for buffer in &mut rows.columns {
        let Some(mut column) = group.next_column()? else {
            return Err(ParquetError::General("more buffers than columns".into()));
        };
        let def = Some(&buffer.def[..]);
        let rep = buffer.repeated.then_some(&buffer.rep[..]);
        let mut text = None;
        match (column.untyped(), buffer.leaf) {
            (ColumnWriter::ByteArrayColumnWriter(w), Leaf::Str) => {
                // One shared buffer, each value a slice of it: no allocation per value.
                let data = Bytes::from(std::mem::take(&mut buffer.data));
                let mut start = 0;
                strings.clear();
                strings.extend(buffer.ends.iter().map(|&end| {
                    let value = ByteArray::from(data.slice(start..end));
                    start = end;
                    value
                }));
                w.write_batch(strings, def, rep)?;
                strings.clear();
                text = Some(data);
            }
            (ColumnWriter::Int32ColumnWriter(w), Leaf::Int) => {
                w.write_batch(&buffer.ints, def, rep)?;
            }
            (ColumnWriter::Int64ColumnWriter(w), Leaf::Long) => {
                w.write_batch(&buffer.longs, def, rep)?;
            }
            (ColumnWriter::BoolColumnWriter(w), Leaf::Bool) => {
                w.write_batch(&buffer.bools, def, rep)?;
            }
            _ => return Err(ParquetError::General("a buffer of another type".into())),
        }
        column.close()?;
        // The column writer let go of the values (its dictionary went with it): the buffer's
        // memory comes back for the next rows.
        if let Some(Ok(data)) = text.map(Bytes::try_into_mut) {
            buffer.data = Vec::from(data);
        }
    }
    group.close()?;
    rows.clear();
    Ok(())
}

/// What the writer asks of the encoding thread.
enum Job {
    /// A new object (its index is the next one), written with its class's schema.
    Open(parquet::schema::types::TypePtr),
    /// Rows of an object, to be written as one row group.
    Rows(usize, Rows),
    /// Every object's footer.
    Finish,
}

/// What the encoding thread hands back.
pub enum Done {
    /// Bytes of an object, in order.
    Bytes(usize, Vec<u8>),
    /// Rows written, their buffers empty, for the next rows.
    Rows(Rows),
    /// The last bytes of every object (the footers), by object.
    Finished(Vec<Vec<u8>>),
    Failed(String),
}

/// Parquet encoding (levels, dictionaries, zstd) on a thread of its own, beside the thread that
/// parses and shreds: row groups go to it through a rendezvous channel, so at most two row
/// groups of rows exist (one being filled, one being encoded) and a slow encoder holds the
/// shredder back instead of letting rows pile up.
pub struct Encoder {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    done: std::sync::mpsc::Receiver<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const STOPPED: &str = "the Parquet encoding thread stopped";

impl Encoder {
    pub fn start(props: Arc<WriterProperties>) -> Result<Encoder, ParquetError> {
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(0);
        let (outbox, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lake-encode".into())
            .spawn(move || {
                if let Err(e) = encode_jobs(&inbox, &outbox, &props) {
                    let _ = outbox.send(Done::Failed(e.to_string()));
                }
            })
            .map_err(|e| ParquetError::General(format!("starting the encoding thread: {e}")))?;
        Ok(Encoder {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) -> Result<(), ParquetError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| ParquetError::General(STOPPED.into()))
    }

    pub fn open(&self, schema: parquet::schema::types::TypePtr) -> Result<(), ParquetError> {
        self.send(Job::Open(schema))
    }

    /// Hands `rows` of object `object` over; waits while the thread encodes earlier rows.
    pub fn rows(&self, object: usize, rows: Rows) -> Result<(), ParquetError> {
        self.send(Job::Rows(object, rows))
    }

    /// What the thread has done since the last call, without waiting.
    pub fn done(&self) -> impl Iterator<Item = Done> + '_ {
        self.done.try_iter()
    }

    /// Ends every object; returns what the thread did meanwhile, its last being
    /// [`Done::Finished`] or [`Done::Failed`].
    pub fn finish(mut self) -> Vec<Done> {
        let sent = self.send(Job::Finish);
        self.jobs = None;
        let mut out: Vec<Done> = Vec::new();
        if sent.is_ok() {
            for done in self.done.iter() {
                let end = matches!(done, Done::Finished(_) | Done::Failed(_));
                out.push(done);
                if end {
                    break;
                }
            }
        }
        if !matches!(out.last(), Some(Done::Finished(_) | Done::Failed(_))) {
            out.push(Done::Failed(STOPPED.into()));
        }
        out
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn encode_jobs(
    inbox: &std::sync::mpsc::Receiver<Job>,
    outbox: &std::sync::mpsc::Sender<Done>,
    props: &Arc<WriterProperties>,
) -> Result<(), ParquetError> {
    let mut files: Vec<SerializedFileWriter<Vec<u8>>> = Vec::new();
    let mut strings = Vec::new();
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Open(schema) => files.push(SerializedFileWriter::new(
                Vec::new(),
                schema,
                props.clone(),
            )?),
            Job::Rows(object, mut rows) => {
                let file = files
                    .get_mut(object)
                    .ok_or_else(|| ParquetError::General("rows of an unknown object".into()))?;
                row_group(file, &mut rows, &mut strings)?;
                let bytes = std::mem::take(file.inner_mut());
                if !bytes.is_empty() {
                    let _ = outbox.send(Done::Bytes(object, bytes));
                }
                let _ = outbox.send(Done::Rows(rows));
            }
            Job::Finish => {
                let last = files
                    .drain(..)
                    .map(SerializedFileWriter::into_inner)
                    .collect::<Result<Vec<_>, _>>()?;
                let _ = outbox.send(Done::Finished(last));
                return Ok(());
            }
        }
    }
    Ok(())
}
