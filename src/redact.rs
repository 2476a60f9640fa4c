//! Secrets out of records before they are rendered: every text column of every log type (the
//! user activity log's `query` above all) and the raw text of every `parse_error` record,
//! masked by the rule of [`crate::mask`].

use crate::logs::{Body, LogType, Record, Value};
pub use crate::mask::{redact, redact_into, would_mask, MARKER};

/// Shorter text holds no secret in a masked form (`password'x'` is 11 bytes): such columns
/// (names, numbers as text, flags) are not scanned.
const MIN_SECRET_BYTES: usize = 11;

/// Whether every record of this log type goes through [`redact_record`]: the user activity
/// log's, whose statements are SQL. A line of the other logs only needs it when it holds a
/// secret ([`would_mask`]; the pipeline asks `crate::mask::lines_to_mask` for a whole batch).
pub fn redacts_columns(log_type: LogType) -> bool {
    log_type == LogType::UserActivityLog
}

/// The record with its secrets redacted: every text column and the extra columns, and the raw
/// text of a `parse_error` record, of any log type. When something was replaced, the text lives
/// in `scratch` and the record comes back with `redacted` set; otherwise it comes back
/// unchanged (nothing copied). Call it before `write_parts`, so a secret never straddles two
/// parts.
pub fn redact_record<'a>(record: Record<'a>, scratch: &'a mut String) -> Record<'a> {
    let mut record = record;
    match &mut record.body {
        Body::Columns(columns) => {
            // The common case, one column changed (an activity log's statement), is masked
            // straight into `scratch`; further ones are gathered and appended after it.
            let mut first: Option<Option<usize>> = None;
            let mut more: Vec<(Option<usize>, String)> = Vec::new();
            let texts = columns
                .values
                .iter()
                .enumerate()
                .filter_map(|(at, v)| match v {
                    Value::Text(t) => Some((Some(at), *t)),
                    _ => None,
                })
                .chain(columns.extra.map(|e| (None, e)));
            for (at, text) in texts {
                if text.len() < MIN_SECRET_BYTES {
                    continue;
                }
                if first.is_none() {
                    if redact_into(text, scratch) {
                        first = Some(at);
                    }
                } else if let Some(masked) = redact(text) {
                    more.push((at, masked));
                }
            }
            let Some(first) = first else {
                return record;
            };
            let mut ranges = vec![(first, 0, scratch.len())];
            for (at, masked) in more {
                let start = scratch.len();
                scratch.push_str(&masked);
                ranges.push((at, start, scratch.len()));
            }
            let text: &'a String = scratch;
            for (at, start, end) in ranges {
                let value = &text[start..end];
                match at {
                    Some(i) => columns.values[i] = Value::Text(value),
                    None => columns.extra = Some(value),
                }
            }
            record.redacted = true;
        }
        Body::ParseError { raw, .. } => {
            if redact_into(raw, scratch) {
                *raw = scratch.as_str();
                record.redacted = true;
            }
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Parser;

    const HEADER: &str =
        "'2020-12-08T22:00:03Z UTC [ db=dev user=rdsdb pid=685 userid=1 xid=245578 ]' LOG: ";

    #[test]
    fn activity_query_is_redacted_and_flagged() {
        let input = format!("{HEADER}create user bob\npassword 'hunter2';\n{HEADER}select 1\n");
        let mut parser = Parser::new(LogType::UserActivityLog, input.as_bytes());
        let mut scratch = String::new();
        let record = redact_record(parser.next_record().unwrap().unwrap(), &mut scratch);
        assert!(record.redacted);
        let Body::Columns(c) = &record.body else {
            panic!()
        };
        assert_eq!(
            c.get("query").unwrap().as_text(),
            Some("create user bob\npassword '[REDACTED]';")
        );
        assert_eq!(c.get("user").unwrap().as_text(), Some("rdsdb"));
        assert_eq!(c.get("xid").unwrap().as_int(), Some(245578));
        let clean = parser.next_record().unwrap().unwrap();
        let expected = clean.clone();
        let record = redact_record(clean, &mut scratch);
        assert!(!record.redacted);
        assert_eq!(record, expected);
    }

    #[test]
    fn parse_error_raw_text_is_redacted_in_every_log_type() {
        for log_type in LogType::ALL {
            let input = "garbage before any header PASSWORD 'hunter2' AKIAIOSFODNN7EXAMPLE\n";
            let mut parser = Parser::new(log_type, input.as_bytes());
            let mut scratch = String::new();
            let record = redact_record(parser.next_record().unwrap().unwrap(), &mut scratch);
            assert!(record.redacted, "{log_type}");
            let Body::ParseError { raw, .. } = record.body else {
                panic!("{log_type}")
            };
            assert_eq!(
                raw,
                "garbage before any header PASSWORD '[REDACTED]' AKIA[REDACTED]"
            );
        }
    }

    #[test]
    fn every_text_column_of_every_log_type_is_redacted() {
        let line = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |password 'x' |AKIAIOSFODNN7EXAMPLE | | | | |x|session_token=abcdefgh\n";
        let mut parser = Parser::new(LogType::ConnectionLog, line.as_bytes());
        let record = parser.next_record().unwrap().unwrap();
        assert!(!record.is_parse_error());
        let mut scratch = String::new();
        let record = redact_record(record, &mut scratch);
        assert!(record.redacted);
        let Body::Columns(c) = &record.body else {
            panic!()
        };
        assert_eq!(
            c.get("application_name").unwrap().as_text(),
            Some("password '[REDACTED]'")
        );
        assert_eq!(
            c.get("os_version").unwrap().as_text(),
            Some("AKIA[REDACTED]")
        );
        assert_eq!(c.get("username").unwrap().as_text(), Some("rdsdb"));
        assert_eq!(c.extra, Some("session_token=[REDACTED]"));
        let clean = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | |\n";
        let mut parser = Parser::new(LogType::ConnectionLog, clean.as_bytes());
        let record = parser.next_record().unwrap().unwrap();
        assert!(!redact_record(record, &mut scratch).redacted);
    }
}
