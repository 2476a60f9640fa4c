//! The PutRecordBatch request body, written by hand: `{"DeliveryStreamName":...,"Records":
//! [{"Data":"<base64>"},...]}`, the awsJson1_1 shape the SDK would serialize.
//!
//! Why not the SDK's serializer: it needs each record as an owned `Blob` (a copy of every byte,
//! kept beside ours for re-sends), base64-encodes each into a fresh `String`, scans that for JSON
//! escapes (base64 has none) and copies it once more into the body. Here each record is encoded
//! once, straight into one presized body (`base64-simd`), and the body is all a call keeps: a
//! re-send of failed entries copies their base64 text into a smaller body, so the records
//! themselves are not kept once their call is built.

use std::ops::Range;

use bytes::Bytes;

/// A request body and where each record's data lies in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PutBody {
    /// Shared with the call's request, which holds a second handle on the same bytes.
    json: Bytes,
    /// Each record's base64 text in `json`, and the NDJSON lines the record holds.
    entries: Vec<(Range<usize>, usize)>,
}

const OPEN: &[u8] = b"{\"DeliveryStreamName\":";
const RECORDS: &[u8] = b",\"Records\":[";
const CLOSE: &[u8] = b"]}";
const DATA_OPEN: &[u8] = b"{\"Data\":\"";
const DATA_CLOSE: &[u8] = b"\"}";

impl PutBody {
    /// The body for `records` sent to `stream`; `lines[i]` is the NDJSON lines record `i` holds.
    pub(crate) fn new<R: AsRef<[u8]>>(stream: &str, records: &[R], lines: &[usize]) -> Self {
        let data: usize = records
            .iter()
            .map(|r| base64_simd::STANDARD.encoded_length(r.as_ref().len()))
            .sum();
        let mut body = Builder::start(stream, records.len(), data);
        for (i, record) in records.iter().enumerate() {
            let record = record.as_ref();
            body.push_with(
                base64_simd::STANDARD.encoded_length(record.len()),
                lines.get(i).copied().unwrap_or(0),
                |out| base64_simd::STANDARD.encode_append(record, out),
            );
        }
        body.finish()
    }

    /// A body holding only the entries at `indexes` (ascending) of this one, in order.
    pub(crate) fn keep(&self, stream: &str, indexes: &[usize]) -> Self {
        let wanted: Vec<&(Range<usize>, usize)> = indexes
            .iter()
            .filter_map(|&i| self.entries.get(i))
            .collect();
        let data = wanted.iter().map(|(range, _)| range.len()).sum();
        let mut body = Builder::start(stream, wanted.len(), data);
        for (range, lines) in wanted {
            let text = &self.json[range.clone()];
            body.push_with(range.len(), *lines, |out| out.extend_from_slice(text));
        }
        body.finish()
    }

    /// The JSON text.
    #[cfg(test)]
    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }

    /// The JSON text as a request body: shared, not copied.
    pub(crate) fn bytes(&self) -> Bytes {
        self.json.clone()
    }

    /// Records in the body.
    pub(crate) fn records(&self) -> usize {
        self.entries.len()
    }

    /// NDJSON lines in the body's records.
    pub(crate) fn lines(&self) -> usize {
        self.entries.iter().map(|(_, lines)| lines).sum()
    }
}

/// A body being written.
struct Builder {
    json: Vec<u8>,
    entries: Vec<(Range<usize>, usize)>,
}

impl Builder {
    /// Opens a body for `records` records whose base64 texts total `data` bytes.
    fn start(stream: &str, records: usize, data: usize) -> Self {
        let name = serde_json::to_string(stream).unwrap_or_else(|_| String::from("\"\""));
        // Exactly the final length: the body is never reallocated while written.
        let commas = records.saturating_sub(1);
        let framing = OPEN.len() + name.len() + RECORDS.len() + CLOSE.len();
        let per_record = DATA_OPEN.len() + DATA_CLOSE.len();
        let mut json = Vec::with_capacity(framing + data + records * per_record + commas);
        json.extend_from_slice(OPEN);
        json.extend_from_slice(name.as_bytes());
        json.extend_from_slice(RECORDS);
        Builder {
            json,
            entries: Vec::with_capacity(records),
        }
    }

    /// Appends one `{"Data":"..."}` whose base64 text (`len` bytes) `write` appends.
    fn push_with(&mut self, len: usize, lines: usize, write: impl FnOnce(&mut Vec<u8>)) {
        if !self.entries.is_empty() {
            self.json.push(b',');
        }
        self.json.extend_from_slice(DATA_OPEN);
        let start = self.json.len();
        write(&mut self.json);
        debug_assert_eq!(self.json.len() - start, len);
        self.entries.push((start..self.json.len(), lines));
        self.json.extend_from_slice(DATA_CLOSE);
    }

    fn finish(mut self) -> PutBody {
        self.json.extend_from_slice(CLOSE);
        debug_assert_eq!(self.json.len(), self.json.capacity());
        PutBody {
            json: Bytes::from(self.json),
            entries: self.entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// The body for `records`, their lines counted as the packer counts them.
    fn body_of<R: AsRef<[u8]>>(stream: &str, records: &[R]) -> PutBody {
        let lines: Vec<usize> = records
            .iter()
            .map(|r| r.as_ref().iter().filter(|&&b| b == b'\n').count())
            .collect();
        PutBody::new(stream, records, &lines)
    }

    fn decoded(body: &PutBody) -> (String, Vec<Vec<u8>>) {
        let value: serde_json::Value = serde_json::from_slice(body.json()).expect("valid JSON");
        let stream = value["DeliveryStreamName"]
            .as_str()
            .expect("name")
            .to_owned();
        let records = value["Records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().expect("data"))
                    .expect("base64")
            })
            .collect();
        (stream, records)
    }

    #[test]
    fn records_round_trip_through_the_json_the_sdk_would_send() {
        // Lengths 0 to 5 cover every base64 padding case; one record holds raw binary.
        let mut records: Vec<Vec<u8>> = (0..6).map(|n| b"a\nbcd\n"[..n].to_vec()).collect();
        records.push((0..=255u8).collect());
        let body = body_of("audit-stream", &records);
        assert_eq!(decoded(&body), ("audit-stream".to_owned(), records.clone()));
        assert_eq!(body.records(), 7);
        // Newlines: none in "", "a"; one in "a\n" .. "a\nbcd"; and one in the 256 bytes.
        assert_eq!(body.lines(), 4 + 1);
        let expected =
            r#"{"DeliveryStreamName":"audit-stream","Records":[{"Data":""},{"Data":"YQ=="}"#;
        assert!(String::from_utf8_lossy(body.json()).starts_with(expected));
    }

    #[test]
    fn an_odd_stream_name_is_escaped() {
        let body = body_of("a\"b\\c", &[b"x\n"]);
        assert_eq!(decoded(&body).0, "a\"b\\c");
    }

    #[test]
    fn keeping_entries_copies_their_text_in_order() {
        let records: Vec<Vec<u8>> = (0..6u8)
            .map(|i| vec![b'0' + i; usize::from(i) + 1])
            .collect();
        let body = body_of("s", &records);
        let kept = body.keep("s", &[0, 3, 5]);
        assert_eq!(
            decoded(&kept).1,
            [records[0].clone(), records[3].clone(), records[5].clone()]
        );
        assert_eq!(kept.records(), 3);
        assert_eq!(
            body.keep("s", &[]).json(),
            br#"{"DeliveryStreamName":"s","Records":[]}"#
        );
        // An index past the end (a short answer from the service) keeps nothing more.
        assert_eq!(body.keep("s", &[5, 9]).records(), 1);
    }

    #[test]
    fn lines_are_counted_per_record_and_kept_with_them() {
        let body = body_of("s", &[&b"a\nb\nc\n"[..], b"d\n", b"e\nf\n"]);
        assert_eq!(body.lines(), 6);
        assert_eq!(body.keep("s", &[0, 2]).lines(), 5);
    }
}
