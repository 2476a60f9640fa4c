//! Secrets out of records before they are rendered: the user activity log's `query` and the raw
//! text of every `parse_error` record, masked by the rule of [`crate::mask`].

use crate::logs::{Body, LogType, Record, Value};
pub use crate::mask::{redact, redact_into, MARKER};

/// Whether [`redact_record`] looks into the typed columns of this log type's records (only
/// the user activity log has SQL text); the others' records of columns come back as they are.
pub fn redacts_columns(log_type: LogType) -> bool {
    log_type == LogType::UserActivityLog
}

/// The record with its secrets redacted: the user activity log's `query`, and the raw text of a
/// `parse_error` record of any log type. When something was replaced, the text lives in
/// `scratch` and the record comes back with `redacted` set; otherwise it comes back unchanged
/// (nothing copied). Call it before `write_parts`, so a secret never straddles two parts.
pub fn redact_record<'a>(record: Record<'a>, scratch: &'a mut String) -> Record<'a> {
    let mut record = record;
    match &mut record.body {
        Body::Columns(columns) => {
            if !redacts_columns(record.log_type) {
                return record;
            }
            let Some(at) = columns.names.iter().position(|(n, _)| *n == "query") else {
                return record;
            };
            let Value::Text(text) = columns.values[at] else {
                return record;
            };
            if redact_into(text, scratch) {
                columns.values[at] = Value::Text(scratch.as_str());
                record.redacted = true;
            }
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
    fn other_log_types_columns_are_not_touched() {
        let line = "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | | | |password 'x' | | | | |\n";
        let mut parser = Parser::new(LogType::ConnectionLog, line.as_bytes());
        let record = parser.next_record().unwrap().unwrap();
        assert!(!record.is_parse_error());
        let mut scratch = String::new();
        assert!(!redact_record(record, &mut scratch).redacted);
    }
}
