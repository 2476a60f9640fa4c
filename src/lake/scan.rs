//! JSON scanning for the lake: the bounds of strings, values and members of the `ocsf` lines,
//! their strings unescaped, and [`peek`], which reads the class, the time, the region and the
//! account of a line (what places it in the lake) without decoding the rest. The shredder
//! (`shred.rs`) walks the lines with these.

/// Why a line is not one JSON object; the pipeline writes only such objects, so this is a bug
/// upstream rather than bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JSON object at byte {at}: {what}")]
pub struct Malformed {
    pub at: usize,
    pub what: &'static str,
}

pub(super) type Scan<T> = Result<T, Malformed>;

/// What [`members`] calls with each member's key and value.
type Member<'m> = dyn FnMut(&[u8], &[u8]) -> Scan<()> + 'm;

pub(super) fn bad<T>(at: usize, what: &'static str) -> Scan<T> {
    Err(Malformed { at, what })
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The first `"` or `\\` at or after `j`. Strings of the lines are short between escapes (a
/// statement's `\n` every few dozen bytes, keys of a few bytes), where a `memchr2` call costs
/// more than the search: the first 32 bytes are looked at 8 at a time, the rest with `memchr2`.
fn quote_or_escape(b: &[u8], j: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = j;
    while at + 8 <= b.len().min(j + 32) {
        let word = u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let (q, e) = (
            word ^ (ONES * u64::from(b'"')),
            word ^ (ONES * u64::from(b'\\')),
        );
        // A byte of `q` or `e` is zero where the word holds a quote or a backslash; the lowest
        // flagged byte is exact (a borrow can flag bytes above a zero only).
        let found = (q.wrapping_sub(ONES) & !q | e.wrapping_sub(ONES) & !e) & HIGH;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', b.get(at..)?).map(|n| at + n)
}

/// End (after the closing quote) of the string starting at `i` (its opening quote).
pub(super) fn string_end(b: &[u8], i: usize) -> Scan<usize> {
    let mut j = i + 1;
    loop {
        match quote_or_escape(b, j) {
            Some(n) if b[n] == b'"' => return Ok(n + 1),
            Some(n) => j = n + 2,
            None => return bad(i, "unterminated string"),
        }
    }
}

/// End of the value starting at `i`.
pub(super) fn value_end(b: &[u8], i: usize) -> Scan<usize> {
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
        Some(_) => token_end(b, i),
        None => bad(i, "value expected"),
    }
}

/// The end of the scalar (number, `true`, `false`, `null`) starting at `i`.
pub(super) fn token_end(b: &[u8], i: usize) -> Scan<usize> {
    let n = b[i.min(b.len())..]
        .iter()
        .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
        .unwrap_or(b.len().saturating_sub(i));
    if n == 0 {
        bad(i, "value expected")
    } else {
        Ok(i + n)
    }
}

/// Walks the members of the object starting at `i` (its `{`): calls `member(key, key_at, at)`
/// with the key's bytes between its quotes, where they start and where the value starts;
/// `member` reads the value and returns its end. Returns the object's end. [`members`] and the
/// shredder's objects and maps all walk objects with it.
pub(super) fn walk_members(
    b: &[u8],
    i: usize,
    mut member: impl FnMut(&[u8], usize, usize) -> Scan<usize>,
) -> Scan<usize> {
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
        let key_at = j + 1;
        j = skip_ws(b, key_end);
        if b.get(j) != Some(&b':') {
            return bad(j, "colon expected");
        }
        let end = member(key, key_at, skip_ws(b, j + 1))?;
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b'}') => return Ok(j + 1),
            _ => return bad(j, "comma or end of object expected"),
        }
    }
}

/// The members of the object starting at `i`: calls `member(key, value)` with the key's bytes
/// between its quotes and the value's bytes; returns the object's end.
pub(super) fn members(b: &[u8], i: usize, member: &mut Member<'_>) -> Scan<usize> {
    walk_members(b, i, |key, _, start| {
        let end = value_end(b, start)?;
        member(key, &b[start..end])?;
        Ok(end)
    })
}

/// The text of a JSON string value (its bytes between quotes, unescaped only when simple).
fn plain_string(v: &[u8]) -> Option<&str> {
    let inner = v.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

pub(super) fn integer(v: &[u8]) -> Option<i64> {
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
/// unmapped columns) are not scanned twice; the shredder reads the whole line anyway.
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

/// Appends the text of the JSON string whose bytes between quotes are `raw` to `out`,
/// escapes decoded (a lone surrogate becomes U+FFFD); `at` places an error in the line.
pub(super) fn unescape(raw: &[u8], at: usize, out: &mut Vec<u8>) -> Scan<()> {
    let mut j = 0;
    while let Some(n) = memchr::memchr(b'\\', &raw[j..]) {
        out.extend_from_slice(&raw[j..j + n]);
        j = escape(raw, j + n, at, out)?;
    }
    out.extend_from_slice(&raw[j..]);
    Ok(())
}

/// Appends the text of the JSON string starting at `i` (its opening quote) to `out`, escapes
/// decoded, in one pass over it; returns its end (after the closing quote).
pub(super) fn copy_string(b: &[u8], i: usize, out: &mut Vec<u8>) -> Scan<usize> {
    let mut j = i + 1;
    loop {
        match quote_or_escape(b, j) {
            Some(n) if b[n] == b'"' => {
                out.extend_from_slice(&b[j..n]);
                return Ok(n + 1);
            }
            Some(n) => {
                out.extend_from_slice(&b[j..n]);
                j = escape(b, n, i, out)?;
            }
            None => return bad(i, "unterminated string"),
        }
    }
}

/// Decodes the escape whose backslash is at `b[j]` into `out`; returns what follows it.
fn escape(b: &[u8], j: usize, at: usize, out: &mut Vec<u8>) -> Scan<usize> {
    let Some(&c) = b.get(j + 1) else {
        return bad(at, "unterminated escape");
    };
    let byte = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 8,
        b'f' => 12,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            let mut code = hex4(&b[j + 2..], at)?;
            let mut end = j + 6;
            if (0xD800..0xDC00).contains(&code) {
                // A high surrogate: a low one should follow as its own escape.
                let low = match b.get(end..end + 2) {
                    Some(b"\\u") => hex4(&b[end + 2..], at).ok(),
                    _ => None,
                };
                match low {
                    Some(low) if (0xDC00..0xE000).contains(&low) => {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        end += 6;
                    }
                    _ => code = 0xFFFD,
                }
            }
            let c = char::from_u32(code).unwrap_or('\u{FFFD}');
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            return Ok(end);
        }
        _ => return bad(at, "unknown escape"),
    };
    out.push(byte);
    Ok(j + 2)
}

fn hex4(b: &[u8], at: usize) -> Scan<u32> {
    let digits = b.get(..4).ok_or(Malformed {
        at,
        what: "short \\u escape",
    })?;
    let text = std::str::from_utf8(digits).unwrap_or("");
    u32::from_str_radix(text, 16).map_err(|_| Malformed {
        at,
        what: "bad \\u escape",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn peek_refuses_what_is_not_an_object() {
        for line in ["", "{", r#"{"a":"#, r#"{"a":"x"#, "[1]", r#"{"a":1,}"#] {
            assert!(peek(line.as_bytes()).is_err(), "{line}");
        }
    }

    #[test]
    fn escapes_are_decoded_and_bad_ones_refused() {
        let text = |raw: &str| {
            let mut out = Vec::new();
            unescape(raw.as_bytes(), 0, &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(text(r#"a\"b\\c\/\n\t"#).unwrap(), "a\"b\\c/\n\t");
        assert_eq!(text(r"\u00e9\ud83d\ude00x").unwrap(), "é😀x");
        assert_eq!(text(r"\ud83dx").unwrap(), "\u{FFFD}x");
        assert_eq!(text(r"\udc00").unwrap(), "\u{FFFD}");
        assert_eq!(text("plain").unwrap(), "plain");
        for bad in [r"\", r"\q", r"\u12", r"\uzzzz"] {
            assert!(text(bad).is_err(), "{bad}");
        }
        // The one-pass copy of a whole string agrees, and says where the string ends.
        let line = br#"{"a":"x\"y\u00e9\ud83d\ude00z","b":1}"#;
        let mut out = Vec::new();
        assert_eq!(copy_string(line, 5, &mut out).unwrap(), 30);
        assert_eq!(line[30], b',');
        assert_eq!(String::from_utf8(out).unwrap(), "x\"yé😀z");
        for bad in [&br#""abc"#[..], br#""a\"#, br#""\u12"#] {
            assert!(copy_string(bad, 0, &mut Vec::new()).is_err());
        }
    }

    proptest! {
        /// The word-at-a-time search finds the first quote or backslash wherever it is (within
        /// the first words, past them, at the end, nowhere), as a byte-by-byte search does.
        #[test]
        fn quote_or_escape_finds_the_first_quote_or_backslash(
            text in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(0), Just(0x80), Just(0xff), any::<u8>()],
                0..80,
            ),
            from in 0usize..80,
        ) {
            let from = from.min(text.len());
            let naive = text[from..].iter().position(|&c| c == b'"' || c == b'\\').map(|n| from + n);
            prop_assert_eq!(quote_or_escape(&text, from), naive);
        }
    }
}
