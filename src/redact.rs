//! Secrets out of SQL text before anything leaves the function: AWS keys, session tokens,
//! symmetric keys and passwords that `COPY`, `UNLOAD`, `CREATE LIBRARY`, `CREATE MODEL`,
//! `CREATE USER` and `ALTER USER` statements carry in clear text (issue 8).
//!
//! The secret value is replaced by [`MARKER`]; the keyword and the quotes stay, so the statement
//! stays readable: `SECRET_ACCESS_KEY '[REDACTED]'`. Forms covered (keywords in any case, any
//! ASCII whitespace, newlines included, between keyword and value):
//!
//! - `CREDENTIALS [AS] '...'`: inside the string, the value of every `key=value` pair except
//!   `aws_iam_role` (so `aws_access_key_id`, `aws_secret_access_key`, `token`,
//!   `master_symmetric_key` and any other key).
//! - `ACCESS_KEY_ID`, `SECRET_ACCESS_KEY`, `SESSION_TOKEN`, `MASTER_SYMMETRIC_KEY`, each followed
//!   by `'...'` or by `= '...'`; the pair forms `aws_access_key_id=...`,
//!   `aws_secret_access_key=...`, `session_token=...`, `master_symmetric_key=...` anywhere in
//!   the text (value up to `;`, a quote or whitespace).
//! - `PASSWORD '...'` and `PASSWORD = '...'` (clear text, `md5...`, `sha256|...`);
//!   `PASSWORD DISABLE` stays.
//! - An AWS access key id anywhere: `AKIA` or `ASIA` and 16 upper-case letters or digits, not
//!   inside a longer word; the four-letter prefix stays (`AKIA[REDACTED]`).
//!
//! A quoted value ends at the first `'` that is not doubled (`''`); when a backslash comes
//! before it, the value runs to the later of the two ends that reading the backslash as an
//! escape or as a plain character gives. An unterminated value is redacted to the end of the
//! text. An empty value, or one that already
//! reads `[REDACTED]`, is left as it is, so redacting twice changes nothing.
//!
//! Cost: one Aho-Corasick pass over the text finds the keywords (a SIMD search for a rare piece
//! of each, in every case, then a check of the whole keyword); text without any of them is
//! neither copied nor scanned again.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::{memchr, memchr2};

use crate::logs::{Body, LogType, Record, Value};

/// What replaces a secret value.
pub const MARKER: &str = "[REDACTED]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Credentials,
    /// `ACCESS_KEY_ID`, `SECRET_ACCESS_KEY`, `SESSION_TOKEN`, `MASTER_SYMMETRIC_KEY`: a quoted
    /// value, or a `key=value` pair.
    Key,
    Password,
    /// `AKIA` / `ASIA`, the start of an access key id.
    KeyId,
}

/// The keywords, matched ASCII case-insensitively (`AKIA`/`ASIA` upper-case only).
/// `access_key_id` and `secret_access_key` also find their `aws_`-prefixed pair forms.
const PATTERNS: [(&str, Keyword); 8] = [
    ("credentials", Keyword::Credentials),
    ("access_key_id", Keyword::Key),
    ("secret_access_key", Keyword::Key),
    ("session_token", Keyword::Key),
    ("master_symmetric_key", Keyword::Key),
    ("password", Keyword::Password),
    ("AKIA", Keyword::KeyId),
    ("ASIA", Keyword::KeyId),
];

/// What the prefilter looks for: a short, rare piece of each keyword, in every mix of upper and
/// lower case, with the keywords it may belong to and its offset in them. A case-insensitive
/// automaton over the whole keywords runs at about a third of the parser's speed; these 34
/// case-sensitive patterns let Aho-Corasick use its SIMD (Teddy) search, many times faster, and a
/// hit is confirmed against the whole keyword.
const FINGERPRINTS: [(&str, &[usize]); 7] = [
    ("ssw", &[5]),    // paSSWord
    ("ede", &[0]),    // crEDEntials
    ("s_k", &[1, 2]), // acceSS_Key_id, secret_acceSS_Key
    ("_tok", &[3]),   // session_TOKen
    ("c_k", &[4]),    // master_symmetriC_Key
    ("AKIA", &[6]),
    ("ASIA", &[7]),
];

/// The offset of a fingerprint in the keyword (a `PATTERNS` index) it belongs to.
fn offset_in(fingerprint: &str, keyword: usize) -> Option<usize> {
    PATTERNS[keyword]
        .0
        .to_ascii_lowercase()
        .find(&fingerprint.to_ascii_lowercase())
}

/// The prefilter: every case variant of the fingerprints (key ids as they are), and for each
/// pattern the fingerprint it spells.
struct Prefilter {
    ac: AhoCorasick,
    /// Per pattern: the candidate keywords as (`PATTERNS` index, offset of the fingerprint).
    candidates: Vec<Vec<(usize, usize)>>,
}

fn prefilter() -> Option<&'static Prefilter> {
    static PREFILTER: OnceLock<Option<Prefilter>> = OnceLock::new();
    PREFILTER
        .get_or_init(|| {
            let mut patterns = Vec::new();
            let mut candidates = Vec::new();
            for (fingerprint, keywords) in FINGERPRINTS {
                let of: Vec<(usize, usize)> = keywords
                    .iter()
                    .filter_map(|&k| offset_in(fingerprint, k).map(|o| (k, o)))
                    .collect();
                let exact = PATTERNS[keywords[0]].1 == Keyword::KeyId;
                for variant in case_variants(fingerprint, exact) {
                    patterns.push(variant);
                    candidates.push(of.clone());
                }
            }
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&patterns)
                .ok()?;
            Some(Prefilter { ac, candidates })
        })
        .as_ref()
}

/// Every mix of upper and lower case of the letters of `s` (just `s` when `exact`).
fn case_variants(s: &str, exact: bool) -> Vec<String> {
    if exact {
        return vec![s.to_string()];
    }
    let letters: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect();
    (0..1u32 << letters.len())
        .map(|mask| {
            let mut v = s.to_ascii_lowercase().into_bytes();
            for (bit, &i) in letters.iter().enumerate() {
                if mask >> bit & 1 == 1 {
                    v[i] = v[i].to_ascii_uppercase();
                }
            }
            String::from_utf8(v).unwrap_or_default()
        })
        .collect()
}

/// Length of an access key id, and of its `AKIA`/`ASIA` prefix.
const KEY_ID_LEN: usize = 20;
const KEY_ID_PREFIX: usize = 4;

/// The keyword `PATTERNS[k]` at `start`, if it is there: its end.
fn keyword_at(text: &[u8], start: usize, k: usize) -> Option<usize> {
    let (word, kind) = PATTERNS[k];
    let end = start + word.len();
    let there = text.get(start..end)?;
    let matches = if kind == Keyword::KeyId {
        there == word.as_bytes()
    } else {
        there.eq_ignore_ascii_case(word.as_bytes())
    };
    matches.then_some(end)
}

/// The first keyword at or after `from`: (start, end, kind).
fn next_keyword(text: &[u8], from: usize) -> Option<(usize, usize, Keyword)> {
    let Some(prefilter) = prefilter() else {
        // Fixed patterns always build; should that ever fail, a plain scan keeps secrets out
        // all the same, only slower.
        return (from..text.len()).find_map(|i| {
            (0..PATTERNS.len())
                .find_map(|k| keyword_at(text, i, k).map(|end| (i, end, PATTERNS[k].1)))
        });
    };
    let mut at = from;
    while at < text.len() {
        let hit = prefilter.ac.find(Input::new(text).range(at..))?;
        for &(k, offset) in &prefilter.candidates[hit.pattern().as_usize()] {
            let Some(start) = hit.start().checked_sub(offset).filter(|&s| s >= from) else {
                continue;
            };
            if let Some(end) = keyword_at(text, start, k) {
                return Some((start, end, PATTERNS[k].1));
            }
        }
        at = hit.start() + 1;
    }
    None
}

/// Returns the text with its secrets replaced, or `None` when there is nothing to replace (the
/// caller keeps the original, nothing is copied).
pub fn redact(text: &str) -> Option<String> {
    let mut out = String::new();
    redact_into(text, &mut out).then_some(out)
}

/// Like [`redact`], writing into a buffer the caller reuses: returns `true` and leaves the
/// redacted text in `out` (cleared first) when anything was replaced; returns `false` and leaves
/// `out` untouched otherwise.
pub fn redact_into(text: &str, out: &mut String) -> bool {
    let mut edit = Edit {
        text,
        out,
        copied: 0,
        changed: false,
    };
    let bytes = text.as_bytes();
    let mut pos = 0;
    while let Some((start, end, kind)) = next_keyword(bytes, pos) {
        pos = match kind {
            Keyword::Credentials => credentials(bytes, start, end, &mut edit),
            Keyword::Key => key(bytes, start, end, true, &mut edit),
            Keyword::Password => key(bytes, start, end, false, &mut edit),
            Keyword::KeyId => key_id(bytes, start, &mut edit),
        }
        // Not a secret after all: look again from the next byte, so an overlapping keyword is
        // not skipped.
        .unwrap_or(start + 1);
    }
    edit.finish()
}

/// The output being built: only touched once the first secret is found.
struct Edit<'t, 'o> {
    text: &'t str,
    out: &'o mut String,
    /// Bytes of `text` already copied to `out` (or replaced).
    copied: usize,
    changed: bool,
}

impl Edit<'_, '_> {
    /// Replaces `text[start..end]` with the marker, unless it is empty or is the marker already.
    /// Both ends sit next to an ASCII byte (a quote, `=`, `;`, whitespace, a key id's prefix) or
    /// at the end of the text, so they are char boundaries.
    fn replace(&mut self, start: usize, end: usize) {
        let value = &self.text[start..end];
        if value.is_empty() || value == MARKER || start < self.copied {
            return;
        }
        if !self.changed {
            self.changed = true;
            self.out.clear();
            self.out.reserve(self.text.len() + MARKER.len());
        }
        self.out.push_str(&self.text[self.copied..start]);
        self.out.push_str(MARKER);
        self.copied = end;
    }

    fn finish(self) -> bool {
        if self.changed {
            self.out.push_str(&self.text[self.copied..]);
        }
        self.changed
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True when no word character comes right before `at`.
fn starts_word(text: &[u8], at: usize) -> bool {
    at == 0 || !is_word_byte(text[at - 1])
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && text[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// The index of the quote closing a string whose content starts at `from`, or the text's length
/// when it is never closed. `''` never closes it; whether a backslash escapes the next byte
/// depends on the server's settings, so both readings are tried and the later end wins: the
/// secret is covered either way.
fn closing_quote(text: &[u8], from: usize) -> usize {
    let standard = closing_quote_with(text, from, false);
    if memchr(b'\\', &text[from.min(text.len())..standard]).is_none() {
        return standard;
    }
    standard.max(closing_quote_with(text, from, true))
}

fn closing_quote_with(text: &[u8], from: usize, backslash_escapes: bool) -> usize {
    let mut at = from;
    while let Some(i) = text.get(at..).and_then(|rest| {
        if backslash_escapes {
            memchr2(b'\'', b'\\', rest)
        } else {
            memchr(b'\'', rest)
        }
    }) {
        let i = at + i;
        if text[i] == b'\\' || text.get(i + 1) == Some(&b'\'') {
            at = i + 2;
        } else {
            return i;
        }
    }
    text.len()
}

/// Redacts the content of the quoted string that opens at `quote`; returns where scanning goes on.
fn quoted(text: &[u8], quote: usize, edit: &mut Edit<'_, '_>) -> usize {
    let end = closing_quote(text, quote + 1);
    edit.replace(quote + 1, end);
    end
}

/// `CREDENTIALS [AS] '...'`: every `key=value` of the string but `aws_iam_role`.
fn credentials(text: &[u8], start: usize, end: usize, edit: &mut Edit<'_, '_>) -> Option<usize> {
    if !starts_word(text, start) {
        return None;
    }
    let mut at = skip_space(text, end);
    if text
        .get(at..at + 2)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"as"))
        && text.get(at + 2).is_none_or(|b| !is_word_byte(*b))
    {
        at = skip_space(text, at + 2);
    }
    if text.get(at) != Some(&b'\'') {
        return None;
    }
    let content_end = closing_quote(text, at + 1);
    let mut pair = at + 1;
    while pair < content_end {
        let pair_end = memchr(b';', &text[pair..content_end]).map_or(content_end, |i| pair + i);
        if let Some(eq) = memchr(b'=', &text[pair..pair_end]).map(|i| pair + i) {
            if !text[pair..eq]
                .trim_ascii()
                .eq_ignore_ascii_case(b"aws_iam_role")
            {
                let value_start = skip_space(text, eq + 1).min(pair_end);
                let value_len = text[value_start..pair_end].trim_ascii_end().len();
                edit.replace(value_start, value_start + value_len);
            }
        }
        pair = pair_end + 1;
    }
    Some(content_end)
}

/// A key keyword (`pair` true) or `PASSWORD` (`pair` false), with a quoted value after it or
/// after `=`; key keywords also take an unquoted `=value`.
fn key(
    text: &[u8],
    start: usize,
    end: usize,
    pair: bool,
    edit: &mut Edit<'_, '_>,
) -> Option<usize> {
    let prefixed = pair
        && start >= 4
        && text[start - 4..start].eq_ignore_ascii_case(b"aws_")
        && starts_word(text, start - 4);
    if !prefixed && !starts_word(text, start) {
        return None;
    }
    let at = skip_space(text, end);
    match text.get(at) {
        Some(b'\'') => Some(quoted(text, at, edit)),
        Some(b'=') => {
            let value = skip_space(text, at + 1);
            match text.get(value) {
                Some(b'\'') => Some(quoted(text, value, edit)),
                Some(_) if pair => {
                    let len = text[value..]
                        .iter()
                        .position(|b| matches!(b, b';' | b'\'' | b'"') || b.is_ascii_whitespace())
                        .unwrap_or(text.len() - value);
                    edit.replace(value, value + len);
                    Some(value + len)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `AKIA`/`ASIA` and 16 upper-case letters or digits, not part of a longer word.
fn key_id(text: &[u8], start: usize, edit: &mut Edit<'_, '_>) -> Option<usize> {
    let end = start + KEY_ID_LEN;
    let id = text.get(start..end)?;
    let upper = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let is_id = (id.starts_with(b"AKIA") || id.starts_with(b"ASIA"))
        && id.iter().all(upper)
        && (start == 0 || !text[start - 1].is_ascii_alphanumeric())
        && text.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
    if !is_id {
        return None;
    }
    edit.replace(start + KEY_ID_PREFIX, end);
    Some(end)
}

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

    fn red(s: &str) -> String {
        redact(s).unwrap_or_else(|| panic!("nothing redacted in {s:?}"))
    }

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn credentials_string_keeps_the_role_and_hides_keys_and_token() {
        let sql = format!(
            "copy t from 's3://b/p' credentials 'aws_access_key_id={KEY_ID};aws_secret_access_key={SECRET};token=FQoGZXIvYXdzE+/=;master_symmetric_key=c2VjcmV0a2V5' csv"
        );
        assert_eq!(
            red(&sql),
            "copy t from 's3://b/p' credentials 'aws_access_key_id=[REDACTED];aws_secret_access_key=[REDACTED];token=[REDACTED];master_symmetric_key=[REDACTED]' csv"
        );
        let role = "COPY t FROM 's3://b/p' WITH CREDENTIALS AS 'aws_iam_role=arn:aws:iam::123456789012:role/r;master_symmetric_key=abc'";
        assert_eq!(
            red(role),
            "COPY t FROM 's3://b/p' WITH CREDENTIALS AS 'aws_iam_role=arn:aws:iam::123456789012:role/r;master_symmetric_key=[REDACTED]'"
        );
        let only_role =
            "COPY t FROM 's3://b/p' CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/r'";
        assert_eq!(redact(only_role), None);
    }

    #[test]
    fn credentials_across_lines_and_in_mixed_case() {
        let sql = format!("UNLOAD ('select 1') TO 's3://b/p'\nWith Credentials\n\tAs\n  'Aws_Access_Key_Id = {KEY_ID} ; AWS_SECRET_ACCESS_KEY={SECRET}'\nparallel off");
        assert_eq!(
            red(&sql),
            "UNLOAD ('select 1') TO 's3://b/p'\nWith Credentials\n\tAs\n  'Aws_Access_Key_Id = [REDACTED] ; AWS_SECRET_ACCESS_KEY=[REDACTED]'\nparallel off"
        );
    }

    #[test]
    fn each_key_keyword_hides_its_quoted_value() {
        for keyword in [
            "ACCESS_KEY_ID",
            "SECRET_ACCESS_KEY",
            "SESSION_TOKEN",
            "MASTER_SYMMETRIC_KEY",
            "secret_access_key",
            "Session_Token",
        ] {
            for gap in [" ", "\n", "\r\n   \t", " = ", "="] {
                let sql =
                    format!("COPY t FROM 's3://b/p' {keyword}{gap}'s3cr3t+/=' REGION 'us-east-1'");
                assert_eq!(
                    red(&sql),
                    format!("COPY t FROM 's3://b/p' {keyword}{gap}'[REDACTED]' REGION 'us-east-1'"),
                    "{keyword:?} {gap:?}"
                );
            }
        }
    }

    #[test]
    fn create_library_with_every_key() {
        let sql = format!("create library f language plpythonu from 's3://b/f.zip'\naccess_key_id '{KEY_ID}'\nsecret_access_key '{SECRET}'\nsession_token 'tok';");
        assert_eq!(
            red(&sql),
            "create library f language plpythonu from 's3://b/f.zip'\naccess_key_id '[REDACTED]'\nsecret_access_key '[REDACTED]'\nsession_token '[REDACTED]';"
        );
    }

    #[test]
    fn passwords_in_every_form_are_hidden() {
        for (sql, want) in [
            ("CREATE USER bob PASSWORD 'Abcd1234'", "CREATE USER bob PASSWORD '[REDACTED]'"),
            (
                "alter user bob password 'md5153c434b4b77c89e6b94f12c5393af5b' valid until '2030-01-01'",
                "alter user bob password '[REDACTED]' valid until '2030-01-01'",
            ),
            ("ALTER USER bob PASSWORD 'sha256|Mypassword1'", "ALTER USER bob PASSWORD '[REDACTED]'"),
            ("create user bob with\n  PassWord\n'x''y''z' createdb", "create user bob with\n  PassWord\n'[REDACTED]' createdb"),
            ("ALTER USER bob PASSWORD 'a\\'b' NOCREATEDB", "ALTER USER bob PASSWORD '[REDACTED]' NOCREATEDB"),
            // With backslashes as plain characters the value is `a\'b`; as escapes, `a\'`.
            ("ALTER USER bob PASSWORD 'a\\''b' NOCREATEDB", "ALTER USER bob PASSWORD '[REDACTED]' NOCREATEDB"),
            ("ALTER USER bob PASSWORD 'a\\' NOCREATEDB 'x'", "ALTER USER bob PASSWORD '[REDACTED]'x'"),
            ("select 1 where password = 'hunter2'", "select 1 where password = '[REDACTED]'"),
        ] {
            assert_eq!(red(sql), want, "{sql:?}");
        }
    }

    #[test]
    fn doubled_quotes_stay_inside_the_value() {
        let sql = "CREATE USER u PASSWORD 'it''s''a secret' VALID UNTIL 'infinity'";
        assert_eq!(
            red(sql),
            "CREATE USER u PASSWORD '[REDACTED]' VALID UNTIL 'infinity'"
        );
        let sql =
            "COPY t FROM 'x' CREDENTIALS 'aws_access_key_id=A''B;aws_secret_access_key=C''D' CSV";
        assert_eq!(
            red(sql),
            "COPY t FROM 'x' CREDENTIALS 'aws_access_key_id=[REDACTED];aws_secret_access_key=[REDACTED]' CSV"
        );
    }

    #[test]
    fn password_disable_and_statements_without_secrets_are_untouched() {
        for sql in [
            "ALTER USER bob PASSWORD DISABLE",
            "select password_last_changed from svl_user_info",
            "SELECT * FROM stl_query WHERE querytxt LIKE '%credentials%'",
            "COPY t FROM 's3://b/p' IAM_ROLE 'arn:aws:iam::123456789012:role/r' REGION 'ap-southeast-1'",
            "select 'ASIA' as continent, 'AKIA' as prefix, 'AKIAshort'",
            "select 'XAKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLEX'",
            "PASSWORD '' ",
            "SECRET_ACCESS_KEY '[REDACTED]'",
            "",
            "SET statement_timeout TO 120000",
            "access_key_id", // keyword at the very end
            "password=",
            "unterminated credentials 'aws_iam_role=x",
        ] {
            assert_eq!(redact(sql), None, "{sql:?}");
        }
    }

    #[test]
    fn access_key_ids_are_hidden_anywhere() {
        assert_eq!(
            red("-- key AKIAIOSFODNN7EXAMPLE\nselect 'ASIAY34FZKBOKMUTVV7A'"),
            "-- key AKIA[REDACTED]\nselect 'ASIA[REDACTED]'"
        );
        assert_eq!(red(KEY_ID), "AKIA[REDACTED]");
    }

    #[test]
    fn unquoted_pairs_are_hidden_anywhere() {
        let sql =
            format!("select 1; -- aws_access_key_id={KEY_ID} aws_secret_access_key={SECRET}\n");
        assert_eq!(
            red(&sql),
            "select 1; -- aws_access_key_id=[REDACTED] aws_secret_access_key=[REDACTED]\n"
        );
    }

    #[test]
    fn unterminated_value_is_hidden_to_the_end() {
        assert_eq!(
            red("CREATE USER u PASSWORD 'abc\ndef"),
            "CREATE USER u PASSWORD '[REDACTED]"
        );
        assert_eq!(
            red("COPY t CREDENTIALS 'token=abc"),
            "COPY t CREDENTIALS 'token=[REDACTED]"
        );
    }

    #[test]
    fn prefilter_finds_every_keyword_in_any_case() {
        assert!(prefilter().is_some());
        for (k, (word, kind)) in PATTERNS.iter().enumerate() {
            let cases = if *kind == Keyword::KeyId {
                vec![word.to_string()]
            } else {
                vec![
                    word.to_ascii_lowercase(),
                    word.to_ascii_uppercase(),
                    cased_alternately(word),
                ]
            };
            for case in cases {
                assert!(offset_in(
                    FINGERPRINTS
                        .iter()
                        .find(|(_, ks)| ks.contains(&k))
                        .unwrap()
                        .0,
                    k
                )
                .is_some());
                let text = format!("x {case} y");
                assert_eq!(
                    next_keyword(text.as_bytes(), 0),
                    Some((2, 2 + word.len(), *kind)),
                    "{case}"
                );
                assert_eq!(
                    next_keyword(text.as_bytes(), 3),
                    None,
                    "{case}: starts before `from`"
                );
            }
        }
        assert_eq!(
            next_keyword(b"akia asia", 0),
            None,
            "key ids are upper-case"
        );
    }

    fn cased_alternately(word: &str) -> String {
        word.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let once = red("ALTER USER u PASSWORD 'x' ; copy t credentials 'aws_secret_access_key=y'");
        assert_eq!(redact(&once), None);
    }

    #[test]
    fn multi_byte_text_around_secrets_is_kept() {
        assert_eq!(
            red("-- café 日本\nALTER USER é PASSWORD 'pässwörd' -- 🎉"),
            "-- café 日本\nALTER USER é PASSWORD '[REDACTED]' -- 🎉"
        );
    }

    #[test]
    fn redact_into_leaves_the_buffer_alone_when_nothing_changes() {
        let mut out = String::from("previous");
        assert!(!redact_into("select 1", &mut out));
        assert_eq!(out, "previous");
        assert!(redact_into("password 'x'", &mut out));
        assert_eq!(out, "password '[REDACTED]'");
    }

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
