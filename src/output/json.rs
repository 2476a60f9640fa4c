//! JSON text for records: a hand-written writer, because this is the hot path (every byte of
//! every audit log goes through `write_str`) and the record shapes are fixed.

/// Appends `s` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most values are a few bytes with nothing to escape: checked a word at a time, the last
    // few bytes padded with spaces to a word, and copied at once.
    if bytes.len() <= 32 && !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none of them needs escaping.
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if !needs_escape_word(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if needs_escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            write_escape(out, b);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte of `bytes` needs escaping, checked eight at a time.
#[inline]
fn any_needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut found = false;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        found |= needs_escape_word(u64::from_le_bytes(w));
    }
    let tail = words.remainder();
    let mut w = [b' '; 8];
    w[..tail.len()].copy_from_slice(tail);
    found | needs_escape_word(u64::from_le_bytes(w))
}

/// The length `write_str` would append for `s`.
pub fn escaped_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| if needs_escape(b) { escape_len(b) } else { 1 })
        .sum::<usize>()
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// True if any byte of the word is < 0x20, `"` or `\`.
#[inline]
fn needs_escape_word(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    (below_space | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\'))))
        != 0
}

fn escape_len(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        _ => 6,
    }
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]),
    }
}

/// Appends a whole number.
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// Appends `s` as a JSON string, or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "",
            "plain ascii text that is longer than eight bytes",
            "quote \" and backslash \\ inside",
            "new\nline\r\ttab \u{1} \u{1f} \u{7f} é 日本 🎉",
            "\"\"\"\"\"\"\"\"\"\"",
            "abcdefg\n",
            "abcdefgh\u{0}",
            "x",
            "\"",
            "thirty-one bytes, a quote last\"",
            "thirty-two bytes and a backslash\\",
            "thirty-three bytes and a new line\n",
            "\u{7f} delete is no control in JSON",
        ] {
            assert_eq!(json(s), serde_json::to_string(s).unwrap(), "{s:?}");
            assert_eq!(escaped_len(s), json(s).len());
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        let s: String = (0u8..128).map(char::from).collect::<String>() + "€";
        let back: String = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(back, s);
    }
}
