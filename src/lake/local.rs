//! `parse --format parquet --out DIR`: the objects the lake would get, written under
//! `DIR/<class>/region=…/accountId=…/eventDay=…/<name>.parquet`. Each object is written to a
//! `.partial` file as its bytes come and renamed into place once complete, so a directory never
//! holds half an object under its final name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{object_name, Chunk, Class, LakeStats, LakeWriter, Limits, ObjectId};

/// Bytes of an object written to its file at a time.
const WRITE_BYTES: usize = 1024 * 1024;

/// An [`io::Write`] taking NDJSON (`ocsf` lines) and writing the lake's objects of one input.
pub struct DirWriter {
    root: PathBuf,
    name: String,
    writer: Option<LakeWriter>,
    /// The start of a line whose end has not come yet.
    carry: Vec<u8>,
    files: Vec<(PathBuf, File)>,
}

impl DirWriter {
    /// Objects of the input `identity` (its path, as given) under `root`.
    pub fn new(root: &Path, identity: &str) -> Self {
        DirWriter {
            root: root.to_path_buf(),
            name: object_name(&[identity]),
            writer: Some(LakeWriter::new(&Class::ALL, Limits::default())),
            carry: Vec::new(),
            files: Vec::new(),
        }
    }

    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        if line.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::other("the objects were already finished"));
        };
        writer.push(line).map_err(io::Error::other)
    }

    /// Creates the `.partial` files of the objects up to `count`.
    fn open_files(&mut self, writer: &LakeWriter, count: usize) -> io::Result<()> {
        while self.files.len() < count {
            let partition = writer.partition(ObjectId(self.files.len()));
            let dir = self
                .root
                .join(partition.class.name())
                .join(partition.path());
            fs::create_dir_all(&dir)?;
            let path = dir.join(&self.name);
            let partial = path.with_extension("parquet.partial");
            self.files.push((path, File::create(&partial)?));
        }
        Ok(())
    }

    fn store(&mut self, chunks: Vec<Chunk>) -> io::Result<()> {
        for chunk in chunks {
            self.files[chunk.object.0].1.write_all(&chunk.bytes)?;
        }
        Ok(())
    }

    /// Completes every object and renames it into place; returns what was written.
    pub fn finish(mut self) -> io::Result<(Vec<PathBuf>, LakeStats)> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.line(&carry)?;
        }
        let Some(writer) = self.writer.take() else {
            return Err(io::Error::other("the objects were already finished"));
        };
        self.open_files(&writer, writer.objects())?;
        let (chunks, _, stats) = writer.finish().map_err(io::Error::other)?;
        self.store(chunks)?;
        let mut written = Vec::new();
        for (path, file) in std::mem::take(&mut self.files) {
            file.sync_all()?;
            drop(file);
            fs::rename(path.with_extension("parquet.partial"), &path)?;
            written.push(path);
        }
        Ok((written, stats))
    }

    /// Removes what a failed input left.
    pub fn abandon(mut self) {
        for (path, file) in std::mem::take(&mut self.files) {
            drop(file);
            let _ = fs::remove_file(path.with_extension("parquet.partial"));
        }
    }
}

impl Write for DirWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if self.carry.is_empty() {
                self.line(&rest[..end])?;
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(&rest[..end]);
                self.line(&line)?;
            }
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        if let Some(mut writer) = self.writer.take() {
            let ready = writer.take_ready(WRITE_BYTES);
            let opened = self.open_files(&writer, writer.objects());
            self.writer = Some(writer);
            opened?;
            self.store(ready)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
