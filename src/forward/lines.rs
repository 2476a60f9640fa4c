//! The batches of lines the parsing thread hands the sink: one buffer a batch, reused for the
//! object's next batches, and the bounds that keep the channel's memory small.

use std::sync::{Arc, Mutex};

use crate::sink::MAX_LINE_BYTES;

/// Lines handed from the parsing thread to the sink in one buffer, each followed by a newline
/// (NDJSON: a rendered line never holds one). One allocation a batch, not one a line; none when
/// the batch comes from [`Buffers`], to which it returns its buffer once the sink is done.
#[derive(Debug, Default)]
pub(super) struct Lines {
    pub(super) bytes: Vec<u8>,
    pub(super) buffers: Option<Buffers>,
    /// The input's reading broke off after the lines sent before this (empty) batch: the
    /// sink ends with [`crate::sink::Sink::finish_broken`], so a destination that writes whole objects
    /// (the lake) writes none of a failed input.
    pub(super) broken: bool,
}

/// Buffers of batches the sink is done with, for the next batches of the same object: the
/// parsing thread writes into pages it touched before, where a fresh buffer a batch cost page
/// faults and zeroing (measured with `perf`: ~4% of `invoke`'s CPU on short statements). Holds
/// at most [`BATCHES_IN_FLIGHT`] + 2 buffers, none larger than a batch may grow.
#[derive(Debug, Default, Clone)]
pub(super) struct Buffers(pub(super) Arc<Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    /// An empty batch, in a used buffer when one is free.
    pub(super) fn lines(&self) -> Lines {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        Lines {
            bytes: reused.unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4)),
            buffers: Some(self.clone()),
            broken: false,
        }
    }

    pub(super) fn give_back(&self, mut bytes: Vec<u8>) {
        if bytes.capacity() > BATCH_BYTES + MAX_LINE_BYTES + 1 {
            return;
        }
        bytes.clear();
        if let Ok(mut free) = self.0.lock() {
            if free.len() < BATCHES_IN_FLIGHT + 2 {
                free.push(bytes);
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Some(buffers) = self.buffers.take() {
            buffers.give_back(std::mem::take(&mut self.bytes));
        }
    }
}

impl Lines {
    pub(super) fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
    }

    /// Takes whole lines from the front of `block` (lines each followed by a newline) while the
    /// batch is under `max` bytes, at least one; returns the rest.
    pub(super) fn take_from<'b>(&mut self, block: &'b [u8], max: usize) -> &'b [u8] {
        let room = max.saturating_sub(self.bytes.len());
        let end = if block.len() <= room {
            block.len()
        } else {
            match memchr::memrchr(b'\n', &block[..room]) {
                Some(at) => at + 1,
                None => memchr::memchr(b'\n', block).map_or(block.len(), |at| at + 1),
            }
        };
        self.bytes.extend_from_slice(&block[..end]);
        &block[end..]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The batch that says reading broke off.
    pub(super) fn broken() -> Lines {
        Lines {
            bytes: Vec::new(),
            buffers: None,
            broken: true,
        }
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        memchr::memchr_iter(b'\n', &self.bytes).map(move |end| {
            let line = &self.bytes[start..end];
            start = end + 1;
            line
        })
    }
}

/// Lines handed from the parsing thread to the sink in batches of about this many bytes, counted
/// after rendering. Budget of a batch: this plus one line (at most 1,000 KiB), so 1.25 MiB.
pub(super) const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight between the threads. Budget of the channel: this many batches queued, one
/// being filled and one being sent, 6 x 1.25 MiB = 7.5 MiB; the sink's calls in flight add
/// theirs (`sink::MAX_IN_FLIGHT`: one 4 MiB call and its ~5.6 MiB body, plus the 4 MiB batch
/// being packed). Measured whole (tests/hostile_moto.rs): under 80 MiB peak RSS on any input.
pub(super) const BATCHES_IN_FLIGHT: usize = 4;
