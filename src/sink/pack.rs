//! Lines into Firehose records and records into PutRecordBatch-sized batches, within every limit.

use super::{
    billed_bytes, SinkError, SinkStats, Taken, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES,
};

/// Records ready for one PutRecordBatch call: at most [`MAX_BATCH_RECORDS`] records and
/// [`MAX_BATCH_BYTES`] bytes, each record at most [`MAX_RECORD_BYTES`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) records: Vec<Vec<u8>>,
    /// NDJSON lines in each record, in the order of `records`.
    pub(crate) record_lines: Vec<usize>,
    pub(crate) bytes: usize,
    /// NDJSON lines in the records: a batch carries a consecutive run of the lines pushed.
    pub(crate) lines: u64,
    /// What Firehose bills for the records.
    pub(crate) billed: u64,
}

/// Packs lines into records and records into batches; pure and synchronous, so every boundary is
/// unit-tested without a client.
///
/// Batches are handed out lazily, when the next line does not fit, so one `push` yields at most
/// one batch. In packed mode the open record may grow only up to the room left in the current
/// batch: a call then carries up to the full 4 MiB (four full records and a smaller fifth) rather
/// than stopping at four records, so calls per GB stay at the minimum the limits allow.
#[derive(Debug)]
pub(crate) struct Packer {
    pack: bool,
    open: Vec<u8>,
    /// Lines in the open record.
    open_lines: u64,
    batch: Batch,
    stats: SinkStats,
}

impl Packer {
    pub(crate) fn new(pack: bool) -> Self {
        Packer {
            pack,
            open: Vec::new(),
            open_lines: 0,
            batch: Batch::default(),
            stats: SinkStats::default(),
        }
    }

    /// Adds one line (the newline is appended here); returns a batch when one is complete.
    pub(crate) fn push(&mut self, line: &[u8]) -> Result<Option<Batch>, SinkError> {
        let len = line.len() + 1;
        if len > MAX_RECORD_BYTES {
            return Err(SinkError::LineTooLarge { len: line.len() });
        }
        self.stats.lines += 1;
        if !self.pack {
            let mut record = Vec::with_capacity(len);
            record.extend_from_slice(line);
            record.push(b'\n');
            return Ok(self.seal(record, 1));
        }
        let mut full = None;
        if !self.open.is_empty() && self.open.len() + len > self.record_room() {
            let record = std::mem::take(&mut self.open);
            let lines = std::mem::take(&mut self.open_lines);
            full = self.seal(record, lines);
        }
        if self.open.is_empty() && (len > self.record_room() || self.batch_is_full()) {
            // The line needs a fresh batch. `seal` above only hands out a batch when the count is
            // full, after which this batch holds one record and has room: never two at once.
            full = full.or_else(|| self.take_batch());
        }
        if self.open.is_empty() {
            // One allocation per record, not per line: most records fill up.
            self.open.reserve(MAX_RECORD_BYTES.min(self.record_room()));
        }
        self.open.extend_from_slice(line);
        self.open.push(b'\n');
        self.open_lines += 1;
        Ok(full)
    }

    /// Adds whole lines from the front of `run` (each followed by its newline) until one
    /// completes a batch or the run ends; returns what it took and the batch. The records and
    /// batches are exactly those [`Packer::push`] makes line by line: lines that fit the open
    /// record go in with one copy, every other line goes through `push`.
    pub(crate) fn push_run(&mut self, run: &[u8]) -> Result<(Taken, Option<Batch>), SinkError> {
        let mut taken = Taken::default();
        while taken.bytes < run.len() {
            let rest = &run[taken.bytes..];
            if self.pack && !self.open.is_empty() {
                // The record's room does not change while it grows: the lines that fit are
                // the longest run of whole lines within it.
                let room = self.record_room().saturating_sub(self.open.len());
                let fit =
                    memchr::memrchr(b'\n', &rest[..room.min(rest.len())]).map_or(0, |i| i + 1);
                if fit > 0 {
                    let chunk = &rest[..fit];
                    let lines = memchr::memchr_iter(b'\n', chunk).count() as u64;
                    self.open.extend_from_slice(chunk);
                    self.open_lines += lines;
                    self.stats.lines += lines;
                    taken.bytes += fit;
                    taken.lines += lines;
                    continue;
                }
            }
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let batch = self.push(&rest[..end])?;
            taken.bytes += (end + 1).min(rest.len());
            taken.lines += 1;
            if batch.is_some() {
                return Ok((taken, batch));
            }
        }
        Ok((taken, None))
    }

    /// Seals the open record; returns what is left to send (at most two batches).
    pub(crate) fn finish(&mut self) -> (Vec<Batch>, SinkStats) {
        let mut out = Vec::new();
        if !self.open.is_empty() {
            let record = std::mem::take(&mut self.open);
            let lines = std::mem::take(&mut self.open_lines);
            out.extend(self.seal(record, lines));
        }
        out.extend(self.take_batch());
        (out, self.stats)
    }

    /// Bytes the open record may reach: the record limit, or the batch's remaining room.
    fn record_room(&self) -> usize {
        MAX_RECORD_BYTES.min(MAX_BATCH_BYTES - self.batch.bytes)
    }

    fn batch_is_full(&self) -> bool {
        self.batch.records.len() >= MAX_BATCH_RECORDS
    }

    /// Moves a finished record into the batch, first handing out the batch if it has no room.
    fn seal(&mut self, mut record: Vec<u8>, lines: u64) -> Option<Batch> {
        if record.capacity() > 2 * record.len() {
            // A short record cut off by a long next line would otherwise hold a 1 MB buffer
            // until its call completes.
            record.shrink_to_fit();
        }
        let full = if self.batch_is_full() || self.batch.bytes + record.len() > MAX_BATCH_BYTES {
            self.take_batch()
        } else {
            None
        };
        self.stats.firehose_records += 1;
        self.stats.payload_bytes += record.len() as u64;
        self.stats.billed_bytes += billed_bytes(record.len());
        self.batch.billed += billed_bytes(record.len());
        self.batch.lines += lines;
        self.batch.bytes += record.len();
        self.batch.records.push(record);
        self.batch.record_lines.push(lines as usize);
        full
    }

    fn take_batch(&mut self) -> Option<Batch> {
        if self.batch.records.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.batch))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MAX_LINE_BYTES;

    /// Pushes every line and returns the batches in order, with the stats.
    fn run(pack: bool, lines: &[Vec<u8>]) -> (Vec<Batch>, SinkStats) {
        let mut packer = Packer::new(pack);
        let mut batches = Vec::new();
        for line in lines {
            batches.extend(packer.push(line).expect("line fits"));
        }
        let (rest, stats) = packer.finish();
        assert!(
            packer.finish().0.is_empty(),
            "a second finish finds nothing left"
        );
        batches.extend(rest);
        (batches, stats)
    }

    fn lines(count: usize, len: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| vec![b'a' + (i % 26) as u8; len])
            .collect()
    }

    /// Every batch and record respects the limits; records end with a newline.
    fn assert_within_limits(batches: &[Batch]) {
        for batch in batches {
            assert!(!batch.records.is_empty());
            assert!(batch.records.len() <= MAX_BATCH_RECORDS);
            assert!(batch.bytes <= MAX_BATCH_BYTES);
            assert_eq!(
                batch.bytes,
                batch.records.iter().map(Vec::len).sum::<usize>()
            );
            for record in &batch.records {
                assert!(record.len() <= MAX_RECORD_BYTES);
                assert_eq!(record.last(), Some(&b'\n'));
            }
            let lines: Vec<usize> = batch
                .records
                .iter()
                .map(|r| r.iter().filter(|&&b| b == b'\n').count())
                .collect();
            assert_eq!(batch.record_lines, lines, "lines counted per record");
            assert_eq!(batch.lines, lines.iter().sum::<usize>() as u64);
        }
    }

    /// The lines as they come out of the records, in order.
    fn unpacked(batches: &[Batch]) -> Vec<Vec<u8>> {
        batches
            .iter()
            .flat_map(|b| &b.records)
            .flat_map(|r| r[..r.len() - 1].split(|&c| c == b'\n').map(<[u8]>::to_vec))
            .collect()
    }

    #[test]
    fn a_line_of_exactly_the_max_size_fills_one_record() {
        let (batches, stats) = run(true, &lines(1, MAX_LINE_BYTES));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records.len(), 1);
        assert_eq!(batches[0].records[0].len(), MAX_RECORD_BYTES);
        assert_eq!(stats.billed_bytes, MAX_RECORD_BYTES as u64);
    }

    #[test]
    fn a_line_one_byte_too_long_is_refused() {
        let mut packer = Packer::new(true);
        let err = packer
            .push(&vec![b'x'; MAX_LINE_BYTES + 1])
            .expect_err("too long");
        assert!(matches!(err, SinkError::LineTooLarge { len } if len == MAX_RECORD_BYTES));
        assert!(!err.is_retryable());
        let mut unpacked = Packer::new(false);
        assert!(unpacked.push(&vec![b'x'; MAX_LINE_BYTES + 1]).is_err());
    }

    #[test]
    fn lines_that_just_fit_share_one_record() {
        // 1,000 + 1 and 1,022,998 + 1 bytes: exactly MAX_RECORD_BYTES together.
        let input = vec![vec![b'a'; 1_000], vec![b'b'; MAX_RECORD_BYTES - 1_002]];
        let (batches, stats) = run(true, &input);
        assert_eq!(stats.firehose_records, 1);
        assert_eq!(batches[0].records[0].len(), MAX_RECORD_BYTES);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn lines_one_byte_over_start_a_second_record() {
        let input = vec![vec![b'a'; 1_000], vec![b'b'; MAX_RECORD_BYTES - 1_001]];
        let (batches, stats) = run(true, &input);
        assert_eq!(stats.firehose_records, 2);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records[0].len(), 1_001);
        assert_eq!(batches[0].records[1].len(), MAX_RECORD_BYTES - 1_000);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn unpacked_mode_makes_one_record_per_line() {
        let input = lines(7, 100);
        let (batches, stats) = run(false, &input);
        assert_eq!(stats.lines, 7);
        assert_eq!(stats.firehose_records, 7);
        assert_eq!(batches.len(), 1);
        assert!(batches[0].records.iter().all(|r| r.len() == 101));
        assert_eq!(stats.payload_bytes, 7 * 101);
        assert_eq!(stats.billed_bytes, 7 * 5_120);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn packed_mode_packs_small_lines_into_one_record() {
        let input = lines(7, 100);
        let (batches, stats) = run(true, &input);
        assert_eq!(stats.lines, 7);
        assert_eq!(stats.firehose_records, 1);
        assert_eq!(stats.payload_bytes, 7 * 101);
        assert_eq!(stats.billed_bytes, 5_120);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn a_call_is_cut_at_500_records() {
        let input = lines(1_001, 9);
        let (batches, stats) = run(false, &input);
        let counts: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
        assert_eq!(counts, [500, 500, 1]);
        assert_eq!(stats.firehose_records, 1_001);
        assert_within_limits(&batches);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn a_call_is_cut_at_4_mib_without_packing() {
        // Full-size records: four fit in 4 MiB (4,096,000 bytes), a fifth does not.
        let input = lines(9, MAX_LINE_BYTES);
        let (batches, _) = run(false, &input);
        let counts: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
        assert_eq!(counts, [4, 4, 1]);
        assert_within_limits(&batches);
    }

    #[test]
    fn packed_calls_fill_4_mib_with_a_smaller_last_record() {
        // 100,001-byte lines: ten per record (1,000,010 bytes); after four records 194,264 bytes
        // remain, enough for one more line, so the fifth record holds one.
        let input = lines(60, 100_000);
        let (batches, stats) = run(true, &input);
        assert_within_limits(&batches);
        let first: Vec<usize> = batches[0].records.iter().map(Vec::len).collect();
        assert_eq!(first, [1_000_010, 1_000_010, 1_000_010, 1_000_010, 100_001]);
        assert_eq!(batches[0].bytes, 4_100_041);
        assert_eq!(stats.lines, 60);
        assert_eq!(unpacked(&batches), input);
    }

    #[test]
    fn packed_full_size_lines_make_four_records_a_call() {
        let input = lines(9, MAX_LINE_BYTES);
        let (batches, stats) = run(true, &input);
        let counts: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
        assert_eq!(counts, [4, 4, 1]);
        assert_eq!(stats.billed_bytes, 9 * MAX_RECORD_BYTES as u64);
        assert_within_limits(&batches);
    }

    #[test]
    fn mixed_sizes_keep_order_and_limits() {
        // Sizes that cross both record and batch boundaries at odd points.
        let sizes = [
            10,
            700_000,
            400_000,
            1,
            MAX_LINE_BYTES,
            0,
            333_333,
            999_999,
            5,
            800_000,
        ];
        let input: Vec<Vec<u8>> = (0..40)
            .map(|i| vec![b'a' + (i % 26) as u8; sizes[i % sizes.len()]])
            .collect();
        for pack in [true, false] {
            let (batches, stats) = run(pack, &input);
            assert_within_limits(&batches);
            assert_eq!(unpacked(&batches), input, "pack={pack}");
            let records: usize = batches.iter().map(|b| b.records.len()).sum();
            assert_eq!(stats.firehose_records, records as u64);
            let bytes: usize = batches.iter().map(|b| b.bytes).sum();
            assert_eq!(stats.payload_bytes, bytes as u64);
            assert_eq!(
                stats.payload_bytes,
                input.iter().map(|l| l.len() as u64 + 1).sum::<u64>()
            );
        }
    }

    #[test]
    fn no_lines_make_no_batch() {
        let (batches, stats) = run(true, &[]);
        assert!(batches.is_empty());
        assert_eq!(stats, SinkStats::default());
    }

    /// The lines pushed as runs of NDJSON cut every `cut` bytes at most (whole lines), with
    /// the batches in order, as `run` gives them line by line.
    fn run_in_runs(pack: bool, lines: &[Vec<u8>], cut: usize) -> (Vec<Batch>, SinkStats) {
        let text: Vec<u8> = lines
            .iter()
            .flat_map(|l| [l.as_slice(), b"\n"].concat())
            .collect();
        let mut packer = Packer::new(pack);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < text.len() {
            // A run of whole lines of at most `cut` bytes (at least one line).
            let limit = (start + cut).min(text.len());
            let end = memchr::memrchr(b'\n', &text[start..limit])
                .map(|i| start + i + 1)
                .filter(|&end| end > start)
                .unwrap_or_else(|| {
                    start
                        + memchr::memchr(b'\n', &text[start..])
                            .map_or(text.len() - start, |i| i + 1)
                });
            let mut at = start;
            while at < end {
                let (taken, batch) = packer.push_run(&text[at..end]).expect("lines fit");
                assert!(taken.bytes > 0);
                let newlines = text[at..at + taken.bytes].iter().filter(|&&b| b == b'\n');
                assert_eq!(taken.lines, newlines.count() as u64);
                at += taken.bytes;
                if let Some(batch) = batch {
                    batches.push(batch);
                    // A batch ends the run's turn: the caller may stop there.
                }
            }
            start = end;
        }
        let (rest, stats) = packer.finish();
        batches.extend(rest);
        (batches, stats)
    }

    #[test]
    fn runs_of_lines_pack_exactly_as_lines_one_by_one() {
        // Sizes from a fixed generator: many short lines, some long, a few near the limit.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let input: Vec<Vec<u8>> = (0..1_200)
            .map(|i| {
                let len = match next() % 100 {
                    0 => MAX_LINE_BYTES - (next() % 3) as usize,
                    1..=4 => 100_000 + (next() % 600_000) as usize,
                    _ => 1 + (next() % 700) as usize,
                };
                vec![b'a' + (i % 26) as u8; len]
            })
            .collect();
        for pack in [true, false] {
            let (expected, expected_stats) = run(pack, &input);
            for cut in [1, 300, 256 * 1024, usize::MAX / 2] {
                let (batches, stats) = run_in_runs(pack, &input, cut);
                assert_eq!(batches, expected, "pack={pack} cut={cut}");
                assert_eq!(stats, expected_stats, "pack={pack} cut={cut}");
            }
        }
    }

    #[test]
    fn a_run_hands_back_as_soon_as_a_batch_is_complete() {
        // 600 lines of 10 bytes, one record each: the 501st line completes the first batch.
        let text = b"123456789\n".repeat(600);
        let mut packer = Packer::new(false);
        let (taken, batch) = packer.push_run(&text).expect("fits");
        assert_eq!(
            taken,
            Taken {
                bytes: 501 * 10,
                lines: 501
            }
        );
        assert_eq!(batch.expect("a batch").records.len(), MAX_BATCH_RECORDS);
        let (taken, batch) = packer.push_run(&text[501 * 10..]).expect("fits");
        assert_eq!(
            (taken, batch),
            (
                Taken {
                    bytes: 99 * 10,
                    lines: 99
                },
                None
            )
        );
        // A line too long for a record is refused, as by `push`.
        let mut long = vec![b'x'; MAX_LINE_BYTES + 1];
        long.push(b'\n');
        assert!(matches!(
            Packer::new(true).push_run(&long),
            Err(SinkError::LineTooLarge { .. })
        ));
    }
}
