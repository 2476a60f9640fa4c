//! The function's own log lines written by hand: one JSON object a line on stderr (which Lambda
//! captures), with the receipt, walk event or summary nested as an object so log queries can
//! filter on its fields. Everything else logs through `tracing`, whose writer is [`Stderr`].
//!
//! Every line on stderr goes through [`eprint`] (or [`Stderr`], which ends in it): masked and
//! bounded by `crate::mask::clean`; the string fields of the JSON lines written here are masked
//! and bounded one by one first, so a line stays valid JSON.

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use crate::mask::{clean, clean_json, FIELD_BYTES, LOG_LINE_BYTES};
use crate::time::{now_rfc3339, rfc3339_ms};

/// Writes one line on stderr, masked and cut to [`LOG_LINE_BYTES`]: the one way out to stderr.
pub fn eprint(line: &str) {
    let line = clean(line.trim_end_matches('\n'), LOG_LINE_BYTES);
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A JSON document with every string masked and bounded ([`FIELD_BYTES`]), as text: for lines
/// and documents built from values that may quote an input (summaries, responses, reports).
pub fn clean_document(value: &impl Serialize) -> String {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    clean_json(&mut value, FIELD_BYTES);
    value.to_string()
}

/// `tracing`'s writer: each event's line is gathered, then written through [`eprint`] when the
/// writer is dropped (the formatter takes one writer an event).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// One event's line being gathered for [`eprint`].
#[derive(Debug, Default)]
pub struct EventLine(Vec<u8>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = EventLine;

    fn make_writer(&'a self) -> EventLine {
        EventLine::default()
    }
}

impl Write for EventLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            eprint(&String::from_utf8_lossy(&self.0));
        }
    }
}

/// How bad a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Error => "ERROR",
        }
    }
}

/// `{"timestamp", "level", "message", <name>: <value>}` as one line.
pub fn line(level: Level, message: &str, name: &str, value: &impl Serialize) -> String {
    let mut object = json!({
        "timestamp": now_rfc3339(),
        "level": level.as_str(),
        "message": message,
    });
    if let Value::Object(map) = &mut object {
        map.insert(
            name.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }
    clean_json(&mut object, FIELD_BYTES);
    object.to_string()
}

/// One line per object forwarded: its receipt.
pub fn object_forwarded(receipt: &impl Serialize) {
    eprint(&line(Level::Info, "object forwarded", "receipt", receipt));
}

/// One line per object a dry run would send.
pub fn would_send(key: &str, size: u64, last_modified_ms: i64) {
    eprint(&clean_document(&json!({
        "timestamp": now_rfc3339(),
        "level": "INFO",
        "message": "would send",
        "key": key,
        "size": size,
        "last_modified": rfc3339_ms(last_modified_ms),
    })));
}

/// The line a backfill run ends with.
pub fn backfill_finished(summary: &impl Serialize, failed: bool) {
    let level = if failed { Level::Error } else { Level::Info };
    eprint(&line(level, "backfill finished", "summary", summary));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_value_nested() {
        let text = line(
            Level::Error,
            "backfill finished",
            "summary",
            &json!({"sent": 3}),
        );
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "backfill finished");
        assert_eq!(v["summary"]["sent"], 3);
        assert_eq!(v["timestamp"].as_str().map(str::len), Some(24));
    }

    #[test]
    fn a_line_masks_and_bounds_every_string_it_nests() {
        let reason = format!(
            "column 2 (recordtime) PASSWORD 'hunter2' {}",
            "x".repeat(1 << 20)
        );
        let text = line(
            Level::Info,
            "object forwarded",
            "receipt",
            &json!({"first_error": reason, "key": "AKIAIOSFODNN7EXAMPLE"}),
        );
        assert!(text.len() < 2 * FIELD_BYTES, "{}", text.len());
        assert!(!text.contains("hunter2") && !text.contains("IOSFODNN7EXAMPLE"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["receipt"]["key"], "AKIA[REDACTED]");
    }
}
