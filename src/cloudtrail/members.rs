//! One pass over a trail event's bytes for what the renderings must know before they copy it:
//! a key repeated in any object (a record must never carry duplicate keys, and readers disagree
//! on which copy wins), and the top-level members whose names the forwarder writes itself
//! ([`crate::output::RECORD_FIELDS`]: an event must not forge provenance), which go under
//! [`EVENT_FIELDS`] instead.
//!
//! The bytes are an element serde_json has already read as a JSON object, so this only follows
//! strings, escapes and nesting; it still never panics nor reads out of bounds on anything else.

use std::borrow::Cow;
use std::ops::Range;

use crate::output::RECORD_FIELDS;

/// The object of a trail record that holds the event's own top-level members whose names are
/// the forwarder's ([`crate::output::RECORD_FIELDS`], and `event_fields` itself), as written.
pub const EVENT_FIELDS: &str = "event_fields";

/// Longest excerpt of a duplicated key quoted in a reason.
const MAX_KEY_EXCERPT: usize = 64;

/// Deepest nesting of objects and arrays, the event's own object included: serde_json's limit,
/// so that the `raw` and OCSF renderings refuse the same events, and any reader can read a
/// record back (deeper JSON overflows the stack of recursive readers).
pub const MAX_DEPTH: usize = 127;

/// Longest excerpt of a number out of range quoted in a reason.
const MAX_NUMBER_EXCERPT: usize = 32;

/// Whether an event's own top-level member named `name` must move under [`EVENT_FIELDS`].
pub fn is_reserved(name: &str) -> bool {
    name == EVENT_FIELDS || RECORD_FIELDS.contains(&name)
}

/// [`is_reserved`] of a key's bytes.
fn is_reserved_bytes(key: &[u8]) -> bool {
    key == EVENT_FIELDS.as_bytes() || RECORD_FIELDS.iter().any(|n| n.as_bytes() == key)
}

/// One open object or array.
struct Frame {
    object: bool,
    /// Where its keys start in the key list.
    keys_from: usize,
    /// In an object: the next string is a key.
    expect_key: bool,
}

/// Scans `event` (one JSON object): returns the byte ranges of its top-level members whose
/// names are reserved ([`is_reserved`]), each from its key's opening quote to its value's last
/// byte, in order; or why it cannot be copied as it stands (a phrase after "event N"): a key
/// repeated in one object (named, masked and cut to a short excerpt), nesting deeper than
/// [`MAX_DEPTH`], a number no reader can hold, bytes that are not UTF-8, or that are not one
/// JSON object.
pub fn scan(event: &[u8]) -> Result<Vec<Range<usize>>, String> {
    // JSON is UTF-8, and a record copies the event's bytes: readers refuse any other.
    if let Err(e) = std::str::from_utf8(event) {
        return Err(format!("is not UTF-8 (byte {})", e.valid_up_to() + 1));
    }
    let mut reserved = Vec::new();
    // Sized for a real event (nesting about 5 deep, about 40 keys): one allocation each.
    let mut stack: Vec<Frame> = Vec::with_capacity(16);
    let mut keys: Vec<Cow<'_, [u8]>> = Vec::with_capacity(64);
    // The reserved top-level member being read: its start.
    let mut member: Option<usize> = None;
    // Just past the last byte of the last token.
    let mut last_end = 0;
    let mut closed = false;
    let mut i = 0;
    while i < event.len() {
        let b = event[i];
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        if stack.is_empty() && (b != b'{' || i != 0) {
            return Err("is not one JSON object".into());
        }
        match b {
            b'"' => {
                let (end, escaped) =
                    string_end(event, i).ok_or("has a string that is not closed")?;
                if let Some(frame) = stack.last_mut().filter(|f| f.object && f.expect_key) {
                    frame.expect_key = false;
                    let key = decode_key(&event[i..end], escaped);
                    if stack.len() == 1 && is_reserved_bytes(&key) {
                        member = Some(i);
                    }
                    keys.push(key);
                }
                i = end;
            }
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("is nested deeper than {MAX_DEPTH} levels"));
                }
                stack.push(Frame {
                    object: b == b'{',
                    keys_from: keys.len(),
                    expect_key: b == b'{',
                });
                i += 1;
            }
            b'}' | b']' => {
                let frame = stack.pop().ok_or("has a bracket that is not opened")?;
                if frame.object != (b == b'}') {
                    return Err("has brackets that do not match".into());
                }
                if stack.is_empty() {
                    if let Some(start) = member.take() {
                        reserved.push(start..last_end);
                    }
                }
                if let Some(key) = duplicate(&mut keys[frame.keys_from..]) {
                    return Err(format!("has the key {key:?} twice in one object"));
                }
                keys.truncate(frame.keys_from);
                i += 1;
                if stack.is_empty() {
                    last_end = i;
                    closed = true;
                    break;
                }
            }
            b',' => {
                let frame = stack.last_mut().ok_or("has a comma outside its object")?;
                frame.expect_key = frame.object;
                if stack.len() == 1 {
                    if let Some(start) = member.take() {
                        reserved.push(start..last_end);
                    }
                }
                i += 1;
                continue;
            }
            b':' => {
                i += 1;
                continue;
            }
            _ => {
                // A number, true, false or null: up to the next delimiter.
                let start = i;
                while i < event.len() && !DELIMITER[usize::from(event[i])] {
                    i += 1;
                }
                let token = &event[start..i];
                if token
                    .first()
                    .is_some_and(|c| *c == b'-' || c.is_ascii_digit())
                {
                    // No reader holds it as a number (1e400): refused as serde_json does.
                    let finite = std::str::from_utf8(token)
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                        .is_some_and(f64::is_finite);
                    if !finite {
                        let shown = &token[..token.len().min(MAX_NUMBER_EXCERPT)];
                        return Err(format!(
                            "has a number out of range ({}{})",
                            String::from_utf8_lossy(shown),
                            if shown.len() < token.len() { "..." } else { "" }
                        ));
                    }
                }
            }
        }
        last_end = i;
    }
    if !closed || event[last_end..].iter().any(|b| !b.is_ascii_whitespace()) {
        return Err("is not one JSON object".into());
    }
    Ok(reserved)
}

/// Bytes that end a number, `true`, `false` or `null`.
static DELIMITER: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    let set = b",:]} \t\n\r\"{[";
    while i < set.len() {
        table[set[i] as usize] = true;
        i += 1;
    }
    table
};

/// Just past the closing quote of the string whose opening quote is at `start`, and whether
/// the string has an escape.
fn string_end(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some((i + 1, escaped));
        }
        escaped = true;
        i += 2;
    }
}

/// A key as compared: its text with escapes decoded (`"\u0069d"` is `id`), or as written when
/// it has none (nearly always).
fn decode_key(quoted: &[u8], escaped: bool) -> Cow<'_, [u8]> {
    let inner = &quoted[1..quoted.len() - 1];
    if !escaped {
        return Cow::Borrowed(inner);
    }
    match serde_json::from_slice::<String>(quoted) {
        Ok(text) => Cow::Owned(text.into_bytes()),
        Err(_) => Cow::Borrowed(inner),
    }
}

/// A key that appears twice among `keys` (sorted in place), as a short masked excerpt.
fn duplicate(keys: &mut [Cow<'_, [u8]>]) -> Option<String> {
    keys.sort_unstable();
    let pair = keys.windows(2).find(|w| w[0] == w[1])?;
    let key = String::from_utf8_lossy(&pair[0]);
    let mut end = key.len().min(MAX_KEY_EXCERPT);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let excerpt = &key[..end];
    Some(crate::redact::redact(excerpt).unwrap_or_else(|| excerpt.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(event: &str) -> Vec<&str> {
        scan(event.as_bytes())
            .unwrap()
            .into_iter()
            .map(|r| &event[r])
            .collect()
    }

    #[test]
    fn reserved_top_level_members_are_found_with_their_values() {
        let event = r#"{"eventName":"X","id":"forged", "source" : {"bucket":"b","id":1},"n":[1,{"account_id":2}],"\u0069d2":3,"log_type":null}"#;
        assert_eq!(
            spans(event),
            [
                r#""id":"forged""#,
                r#""source" : {"bucket":"b","id":1}"#,
                r#""log_type":null"#
            ]
        );
        assert_eq!(spans(r#"{"event_fields":7}"#), [r#""event_fields":7"#]);
        assert_eq!(spans(r#"{"\u0069d":7}"#), [r#""\u0069d":7"#]);
        assert!(spans(r#"{"eventID":"a","nested":{"id":1}}"#).is_empty());
    }

    #[test]
    fn a_key_repeated_in_any_object_is_named() {
        for (event, key) in [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"x":{"k":[{"b":1,"c":2,"b":3}]}}"#, "b"),
            (r#"{"id":1,"\u0069d":2}"#, "id"),
        ] {
            let reason = scan(event.as_bytes()).unwrap_err();
            assert!(reason.contains(&format!("{key:?}")), "{event}: {reason}");
        }
        // The same key in sibling objects is fine.
        assert!(scan(br#"{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}"#).is_ok());
    }

    #[test]
    fn a_repeated_secret_key_is_masked_and_cut_in_the_reason() {
        let key = format!("AKIAIOSFODNN7EXAMPLE {}", "x".repeat(500));
        let event = format!(r#"{{"{key}":1,"{key}":2}}"#);
        let reason = scan(event.as_bytes()).unwrap_err();
        assert!(!reason.contains("AKIAIOSFODNN7EXAMPLE"), "{reason}");
        assert!(reason.len() < 200, "{reason}");
    }

    #[test]
    fn depth_and_numbers_are_refused_exactly_where_serde_json_refuses_them() {
        for depth in 120..136 {
            let event = format!(r#"{{"a":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
            let serde = serde_json::from_slice::<serde_json::Value>(event.as_bytes()).is_ok();
            assert_eq!(scan(event.as_bytes()).is_ok(), serde, "depth {depth}");
        }
        for number in [
            "1e400",
            "-1e309",
            "1e308",
            "123456789012345678901234567890",
            "-0.5e-400",
        ] {
            let event = format!(r#"{{"n":[{number}]}}"#);
            let serde = serde_json::from_slice::<serde_json::Value>(event.as_bytes()).is_ok();
            assert_eq!(scan(event.as_bytes()).is_ok(), serde, "{number}");
        }
        let reason = scan(format!(r#"{{"n":1e{}}}"#, "9".repeat(1000)).as_bytes()).unwrap_err();
        assert!(
            reason.contains("out of range") && reason.len() < 100,
            "{reason}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_naming_the_first() {
        let reason = scan(b"{\"v\":\"\xff\"}").unwrap_err();
        assert!(reason.contains("not UTF-8 (byte 7)"), "{reason}");
    }

    #[test]
    fn anything_but_one_object_is_refused_without_panicking() {
        for bad in [
            "",
            "[",
            "[1]",
            "{",
            "{\"a\":1",
            "{\"a\":\"1}",
            "{]",
            "{}}",
            "{} x",
            "\"s\"",
            "}",
        ] {
            assert!(scan(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(scan(b" {} ").is_err(), "the event starts at its brace");
        assert_eq!(scan(b"{}\n").unwrap(), Vec::<Range<usize>>::new());
    }
}
