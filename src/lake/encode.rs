//! Shredded rows encoded as Parquet: the writer properties of every object (zstd, page and
//! dictionary limits, statistics where queries filter) and one row group written from a
//! [`Rows`] buffer with parquet's column writers, column after column.

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, ZstdLevel};
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

/// The default compression level: zstd's fastest, which keeps most of its ratio on this data
/// (docs/SECURITY_LAKE.md, "Measurements").
pub fn default_zstd() -> ZstdLevel {
    ZstdLevel::default()
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
