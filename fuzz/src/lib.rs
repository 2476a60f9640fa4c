//! What the fuzz targets run: any bytes through decompression, a parser and the JSON writer, and
//! any text through the object key functions, asserting what must hold for every input.

use std::io::Cursor;

use redshift_audit_forwarder::decode::decompressed;
use redshift_audit_forwarder::key::{
    day_prefix, decode_event_key, is_under_prefix, parse_file_name, validate_prefix,
};
use redshift_audit_forwarder::logs::{Body, LogType, Parser, Record};
use redshift_audit_forwarder::output::{write_parts, write_record, Provenance};
use serde_json::{Map, Value};

/// Parts are split to fit this many bytes: small enough that long lines and statements split.
const MAX_PART: usize = 1500;

/// Feeds `data` to the `log_type` parser and writes every record. A first byte below 0x40 picks
/// a small record limit (and is not part of the input), so cutting long lines is fuzzed too.
/// Gzip input (by its magic bytes) is inflated first, as the `parse` command does.
///
/// Checked for every record: ordinals count 0, 1, 2, ...; line numbers start at 1 and never go
/// back; the JSON parses; split parts fit `MAX_PART`, share the id and join back to the record.
/// At the end, the parser stays at the end.
pub fn parse_and_write(log_type: LogType, data: &[u8]) {
    let (limit, input) = match data.split_first() {
        Some((&first, rest)) if first < 0x40 => (Some(usize::from(first) * 3 + 1), rest),
        _ => (None, data),
    };
    let Ok((_, reader)) = decompressed(Cursor::new(input.to_vec())) else {
        return;
    };
    let mut parser = match limit {
        Some(limit) => Parser::with_limit(log_type, reader, limit),
        None => Parser::new(log_type, reader),
    };
    let provenance = Provenance::new(log_type, None, Some("audit-bucket"), "AWSLogs/fuzz.gz");
    let mut expected_ordinal = 0;
    let mut last_line = 1;
    let mut buf = Vec::new();
    loop {
        match parser.next_record() {
            Ok(Some(record)) => {
                assert_eq!(record.ordinal, expected_ordinal, "ordinals count up");
                assert!(record.line >= last_line, "line numbers never go back");
                assert_eq!(record.log_type, log_type);
                expected_ordinal += 1;
                last_line = record.line;
                check_json(&record, &provenance, &mut buf);
            }
            Ok(None) => {
                assert!(matches!(parser.next_record(), Ok(None)), "stays at the end");
                return;
            }
            // Only a read error (corrupt or truncated gzip) ends the input early.
            Err(_) => return,
        }
    }
}

fn object(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => map,
        other => panic!(
            "not a JSON object ({other:?}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn check_json(record: &Record<'_>, provenance: &Provenance, buf: &mut Vec<u8>) {
    buf.clear();
    write_record(buf, record, provenance);
    let whole = object(buf);
    assert_eq!(whole["source"]["line"], Value::from(record.line));
    assert_eq!(whole.contains_key("parse_error"), record.is_parse_error());
    if let Body::ParseError { raw, .. } = &record.body {
        assert_eq!(whole["raw"], Value::from(*raw));
    }

    let mut parts = Vec::new();
    let mut scratch = Vec::new();
    let result = write_parts(record, provenance, MAX_PART, &mut scratch, |part| {
        assert!(part.len() <= MAX_PART, "part of {} bytes", part.len());
        parts.push(object(part));
    });
    let Ok(count) = result else {
        assert!(
            parts.is_empty(),
            "nothing is emitted for a record that cannot be split"
        );
        return;
    };
    assert_eq!(count, parts.len());
    if count == 1 {
        assert_eq!(parts[0], whole, "a record that fits is written whole");
        return;
    }
    // Every part is the whole record but for one text field, whose pieces join back to it.
    let mut split_key: Option<String> = None;
    let mut joined = String::new();
    for (i, mut part) in parts.into_iter().enumerate() {
        assert_eq!(part.remove("part"), Some(Value::from(i + 1)));
        assert_eq!(part.remove("parts"), Some(Value::from(count)));
        assert_eq!(
            part.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>()
        );
        for (key, value) in &part {
            if *value == whole[key] && split_key.as_deref() != Some(key) {
                continue;
            }
            match &split_key {
                None => split_key = Some(key.clone()),
                Some(k) => assert_eq!(k, key, "only one field is split"),
            }
            joined.push_str(value.as_str().expect("the split field is text"));
        }
    }
    let key = split_key.expect("a split record has a split field");
    assert_eq!(whole[&key], Value::from(joined), "the pieces join back");
}

/// Runs the key functions on any UTF-8 text. Checked: a name that parses rebuilds to itself;
/// percent-encoding every byte decodes back to the text; text without `%` or `+` decodes to
/// itself.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = parse_file_name(text) {
        let last = text.rsplit('/').next().unwrap_or(text);
        let rebuilt = format!(
            "{}_redshift_{}_{}_{}_{}",
            name.account_id,
            name.region,
            name.cluster,
            name.log_type,
            &name.file_time[..16]
        );
        assert!(
            last == rebuilt || last.strip_suffix(".gz") == Some(rebuilt.as_str()),
            "{last:?} rebuilt as {rebuilt:?}"
        );
        assert_eq!(parse_file_name(&rebuilt), Ok(name));
    }
    let _ = validate_prefix(text);
    let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(decode_event_key(&encoded).as_deref(), Ok(text));
    match decode_event_key(text) {
        Ok(decoded) if !text.contains(['%', '+']) => assert_eq!(decoded, text),
        Ok(_) => {}
        Err(_) => assert!(text.contains('%'), "only a bad escape can fail: {text:?}"),
    }
    let day = day_prefix(text, 2024, 3, 1);
    assert!(day.ends_with("2024/03/01/"));
    assert!(
        is_under_prefix(&format!("{day}x.gz"), text),
        "{day:?} lies under {text:?}"
    );
}
