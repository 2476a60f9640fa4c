//! The function's own log lines written by hand: one JSON object a line on stderr (which Lambda
//! captures), with the receipt, walk event or summary nested as an object so log queries can
//! filter on its fields. Everything else logs through `tracing`.

use serde::Serialize;
use serde_json::{json, Value};

use crate::time::{now_rfc3339, rfc3339_ms};

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
    object.to_string()
}

/// One line per object forwarded: its receipt.
pub fn object_forwarded(receipt: &impl Serialize) {
    eprintln!(
        "{}",
        line(Level::Info, "object forwarded", "receipt", receipt)
    );
}

/// One line per object a dry run would send.
pub fn would_send(key: &str, size: u64, last_modified_ms: i64) {
    eprintln!(
        "{}",
        json!({
            "timestamp": now_rfc3339(),
            "level": "INFO",
            "message": "would send",
            "key": key,
            "size": size,
            "last_modified": rfc3339_ms(last_modified_ms),
        })
    );
}

/// The line a backfill run ends with.
pub fn backfill_finished(summary: &impl Serialize, failed: bool) {
    let level = if failed { Level::Error } else { Level::Info };
    eprintln!("{}", line(level, "backfill finished", "summary", summary));
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
}
