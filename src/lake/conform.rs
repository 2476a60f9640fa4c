//! One OCSF line made to fit its class's fixed schema, and the facts that place it in the lake.
//!
//! [`peek`] reads the class, the time, the region and the account of a line without decoding
//! it. [`conform`] copies the line member by member against the class's schema: a member the
//! schema has, of the type it has, is copied as it is; anything else (a member the schema does
//! not know, a value of another type, at any depth) goes under `unmapped` with its dotted path
//! as key and its JSON text as value, and every value already under `unmapped` that is not a
//! string is JSON-encoded there. The result always decodes against the schema, so the schema
//! never changes with the records and nothing of a record is dropped.

use arrow_schema::{DataType, Fields};

use crate::output::json::write_str;

/// Why a line is not one JSON object; the pipeline writes only such objects, so this is a bug
/// upstream rather than bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JSON object at byte {at}: {what}")]
pub struct Malformed {
    pub at: usize,
    pub what: &'static str,
}

type Scan<T> = Result<T, Malformed>;

/// What [`members`] calls with each member's key and value.
type Member<'m> = dyn FnMut(&[u8], &[u8]) -> Scan<()> + 'm;

fn bad<T>(at: usize, what: &'static str) -> Scan<T> {
    Err(Malformed { at, what })
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// End (after the closing quote) of the string starting at `i` (its opening quote).
fn string_end(b: &[u8], i: usize) -> Scan<usize> {
    let mut j = i + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
            Some(n) if b[j + n] == b'"' => return Ok(j + n + 1),
            Some(n) => j += n + 2,
            None => return bad(i, "unterminated string"),
        }
    }
}

/// End of the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Scan<usize> {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            bad(i, "unterminated object or array")
        }
        Some(_) => {
            let n = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(b.len() - i);
            if n == 0 {
                bad(i, "value expected")
            } else {
                Ok(i + n)
            }
        }
        None => bad(i, "value expected"),
    }
}

/// The members of the object starting at `i`: calls `member(key, value)` with the key's bytes
/// between its quotes and the value's bytes; returns the object's end.
fn members(b: &[u8], i: usize, member: &mut Member<'_>) -> Scan<usize> {
    if b.get(i) != Some(&b'{') {
        return bad(i, "object expected");
    }
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b'}') {
        return Ok(j + 1);
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return bad(j, "key expected");
        }
        let key_end = string_end(b, j)?;
        let key = &b[j + 1..key_end - 1];
        j = skip_ws(b, key_end);
        if b.get(j) != Some(&b':') {
            return bad(j, "colon expected");
        }
        let start = skip_ws(b, j + 1);
        let end = value_end(b, start)?;
        member(key, &b[start..end])?;
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b'}') => return Ok(j + 1),
            _ => return bad(j, "comma or end of object expected"),
        }
    }
}

/// The text of a JSON string value (its bytes between quotes, unescaped only when simple).
fn plain_string(v: &[u8]) -> Option<&str> {
    let inner = v.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

fn integer(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// What places a line in the lake.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Placed {
    pub class_uid: Option<i64>,
    pub time: Option<i64>,
    pub region: Option<String>,
    pub account: Option<String>,
}

/// Ends [`peek`]'s walk once it has what it reads: the members after those (the statement, the
/// unmapped columns) are not scanned twice; [`conform`] reads the whole line anyway.
const FOUND: Malformed = Malformed {
    at: usize::MAX,
    what: "found",
};

/// Reads `class_uid`, `time`, `cloud.region` and `cloud.account.uid` of a line.
pub fn peek(line: &[u8]) -> Scan<Placed> {
    let mut placed = Placed::default();
    let mut cloud = false;
    let start = skip_ws(line, 0);
    let walked = members(line, start, &mut |key, value| {
        match key {
            b"class_uid" => placed.class_uid = integer(value),
            b"time" => placed.time = integer(value),
            b"cloud" if value.first() == Some(&b'{') => {
                cloud = true;
                members(value, 0, &mut |key, value| {
                    match key {
                        b"region" => placed.region = plain_string(value).map(str::to_string),
                        b"account" if value.first() == Some(&b'{') => {
                            members(value, 0, &mut |key, value| {
                                if key == b"uid" {
                                    placed.account = plain_string(value).map(str::to_string);
                                }
                                Ok(())
                            })?;
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
        if cloud && placed.class_uid.is_some() && placed.time.is_some() {
            return Err(FOUND);
        }
        Ok(())
    });
    match walked {
        Ok(_) => Ok(placed),
        Err(e) if e == FOUND => Ok(placed),
        Err(e) => Err(e),
    }
}

/// Appends `line` conformed to `fields` (a class's schema) to `out`.
pub fn conform(line: &[u8], fields: &Fields, out: &mut Vec<u8>) -> Scan<()> {
    let mut unmapped = Vec::new();
    let mut path = String::new();
    let start = skip_ws(line, 0);
    object(line, start, fields, out, &mut unmapped, &mut path)?;
    if !unmapped.is_empty() {
        // `object` left the closing brace off: `unmapped` is the last member.
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        out.extend_from_slice(b"\"unmapped\":{");
        out.extend_from_slice(&unmapped[1..]);
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

/// Copies the object at `b[i..]`; the top level (`path` empty) leaves its closing brace off
/// and collects `unmapped` instead of writing it.
fn object(
    b: &[u8],
    i: usize,
    fields: &Fields,
    out: &mut Vec<u8>,
    unmapped: &mut Vec<u8>,
    path: &mut String,
) -> Scan<()> {
    let top = path.is_empty();
    out.push(b'{');
    let mut first = true;
    members(b, i, &mut |key, value| {
        let name = std::str::from_utf8(key).unwrap_or("");
        let Some(field) = fields.iter().find(|f| f.name() == name) else {
            return aside(unmapped, path, key, value);
        };
        if top && name == "unmapped" {
            return copy_unmapped(value, unmapped);
        }
        let fits = match field.data_type() {
            _ if value == b"null" => true,
            DataType::Struct(_) => value.first() == Some(&b'{'),
            DataType::Utf8 => !matches!(value.first(), Some(b'{') | Some(b'[')),
            DataType::Int32 => integer(value).is_some_and(|n| i32::try_from(n).is_ok()),
            DataType::Int64 => integer(value).is_some(),
            DataType::Boolean => value == b"true" || value == b"false",
            DataType::List(_) => is_string_array(value),
            _ => false,
        };
        if !fits {
            return aside(unmapped, path, key, value);
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        match field.data_type() {
            DataType::Struct(children) if value != b"null" => {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                let result = object(value, 0, children, out, unmapped, path);
                path.truncate(len);
                result?;
                out.push(b'}');
            }
            _ => out.extend_from_slice(value),
        }
        Ok(())
    })?;
    Ok(())
}

fn is_string_array(v: &[u8]) -> bool {
    if v.first() != Some(&b'[') {
        return false;
    }
    let mut i = skip_ws(v, 1);
    if v.get(i) == Some(&b']') {
        return true;
    }
    loop {
        if v.get(i) != Some(&b'"') {
            return false;
        }
        let Ok(end) = string_end(v, i) else {
            return false;
        };
        i = skip_ws(v, end);
        match v.get(i) {
            Some(b',') => i = skip_ws(v, i + 1),
            Some(b']') => return true,
            _ => return false,
        }
    }
}

/// A member that does not fit: under `unmapped` by its dotted path, its JSON text as value.
fn aside(unmapped: &mut Vec<u8>, path: &str, key: &[u8], value: &[u8]) -> Scan<()> {
    unmapped.push(b',');
    let mut name = String::with_capacity(path.len() + key.len() + 1);
    name.push_str(path);
    if !path.is_empty() {
        name.push('.');
    }
    name.push_str(&String::from_utf8_lossy(key));
    write_str(unmapped, &name);
    unmapped.push(b':');
    write_str(unmapped, &String::from_utf8_lossy(value));
    Ok(())
}

/// The members of the line's own `unmapped`: strings as they are, other values JSON-encoded.
fn copy_unmapped(value: &[u8], unmapped: &mut Vec<u8>) -> Scan<()> {
    if value == b"null" {
        return Ok(());
    }
    if value.first() != Some(&b'{') {
        return aside(unmapped, "", b"unmapped", value);
    }
    members(value, 0, &mut |key, value| {
        unmapped.push(b',');
        unmapped.push(b'"');
        unmapped.extend_from_slice(key);
        unmapped.extend_from_slice(b"\":");
        if value.first() == Some(&b'"') {
            unmapped.extend_from_slice(value);
        } else {
            write_str(unmapped, &String::from_utf8_lossy(value));
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{schema::schema, Class};

    fn conformed(class: Class, line: &str) -> serde_json::Value {
        let mut out = Vec::new();
        conform(line.as_bytes(), schema(class).fields(), &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn peek_reads_class_time_region_and_account() {
        let line = br#"{"metadata":{"uid":"x"},"cloud":{"provider":"AWS","account":{"uid":"123456789012"},"region":"eu-west-1"},"class_uid":3002,"time":1607371315177}"#;
        let placed = peek(line).unwrap();
        assert_eq!(placed.class_uid, Some(3002));
        assert_eq!(placed.time, Some(1607371315177));
        assert_eq!(placed.region.as_deref(), Some("eu-west-1"));
        assert_eq!(placed.account.as_deref(), Some("123456789012"));
    }

    #[test]
    fn unknown_members_and_wrong_types_go_under_unmapped_by_path() {
        let v = conformed(
            Class::Authentication,
            r#"{"class_uid":3002,"time":5,"user":{"name":"a","new":[1,2]},"novel":{"x":"y"},"status_id":"two","unmapped":{"source":{"line":3},"cluster":"c","n":7}}"#,
        );
        assert_eq!(v["user"], serde_json::json!({"name": "a"}));
        assert!(v.get("novel").is_none() && v.get("status_id").is_none());
        let u = &v["unmapped"];
        assert_eq!(u["user.new"], "[1,2]");
        assert_eq!(u["novel"], r#"{"x":"y"}"#);
        assert_eq!(u["status_id"], r#""two""#);
        assert_eq!(u["source"], r#"{"line":3}"#);
        assert_eq!(u["cluster"], "c");
        assert_eq!(u["n"], "7");
    }

    #[test]
    fn a_line_that_fits_is_copied_unchanged_but_for_unmapped() {
        let line = r#"{"class_uid":6005,"time":1,"metadata":{"profiles":["cloud"],"uid":"u"},"src_endpoint":{},"query_info":{"query_string":"select \"x\""}}"#;
        assert_eq!(
            conformed(Class::DatastoreActivity, line),
            serde_json::from_str::<serde_json::Value>(line).unwrap()
        );
    }

    #[test]
    fn malformed_lines_are_refused_not_panicked_on() {
        for line in [
            "",
            "{",
            r#"{"a":"#,
            r#"{"a":"x"#,
            "[1]",
            r#"{"a":1,}"#,
            r#"{"a":{"b":[}"#,
        ] {
            let mut out = Vec::new();
            assert!(
                conform(line.as_bytes(), schema(Class::BaseEvent).fields(), &mut out).is_err()
                    || peek(line.as_bytes()).is_err(),
                "{line}"
            );
        }
    }
}
