//! The one rule for text that leaves the function: secrets masked, then bounded (issues 8, 17).
//!
//! Everything from an input that goes out (records of every format, `parse_error` reasons, log
//! lines, error messages, metric dimensions, the doctor's text) passes through [`redact`] (the
//! records' own text, whole) or [`clean`] (anything else: masked, then cut to an excerpt that
//! says how long the whole was). docs/SECRETS.md lists the forms and what stays uncovered.
//!
//! The secret value is replaced by [`MARKER`]; the keyword and the quotes stay, so the statement
//! stays readable: `SECRET_ACCESS_KEY '[REDACTED]'`. Forms covered (keywords in any case, any
//! ASCII whitespace, newlines included, or a JSON escape `\n`, `\r`, `\t`, between keyword
//! and value):
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
//! - An AWS access key id anywhere: `AKIA` or `ASIA` and 16 upper-case letters or digits, with no
//!   upper-case letter or digit right before or after it (lower-case letters may touch it); the
//!   four-letter prefix stays (`AKIA[REDACTED]`).
//!
//! A quoted value opens with `'`, `E'` (an escape string), a full-width `＇` or a curly `‘`/`’`.
//! An ASCII one ends at the first `'` that is not doubled (`''`); when a backslash comes
//! before it, the value runs to the later of the two ends that reading the backslash as an
//! escape or as a plain character gives. A value opened by a full-width or curly quote ends at
//! the next quote of any of those kinds, `'` included. An unterminated value is redacted to the
//! end of the text. An empty value, or one that already reads `[REDACTED]`, is left as it is, so
//! redacting twice changes nothing.
//!
//! Cost: one Aho-Corasick pass over the text finds the keywords (a SIMD search for a rare piece
//! of each, in every case, then a check of the whole keyword); text without any of them is
//! neither copied nor scanned again.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::{memchr, memchr2, memchr3};

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

/// Whether the keyword `kind` found at `start..end` could have a value the rule replaces: a
/// check on the bytes alone (no UTF-8 validation, nothing copied). `false` means the rule
/// replaces nothing there; `true` means it may, and the rule itself decides. Only `PASSWORD`
/// is checked: a connection log's `authmethod` reads `password` on most lines, and the rule
/// wants a quote after it (`'`, `E'`, `＇`, `‘`, `’`), or after `=`, past whitespace.
fn value_may_follow(text: &[u8], start: usize, end: usize, kind: Keyword) -> bool {
    if kind != Keyword::Password {
        return true;
    }
    if !starts_word(text, start) {
        return false;
    }
    let at = skip_space(text, end);
    if open_quote(text, at).is_some() {
        return true;
    }
    text.get(at) == Some(&b'=') && open_quote(text, skip_space(text, at + 1)).is_some()
}

/// Whether masking would change the text: one prefilter scan, then (only on a keyword a value
/// may follow) the rule itself, which copies nothing unless a secret is there. A keyword alone
/// is common (a connection log's `authmethod` reads `password` on most lines) and is not
/// enough. Text that is not UTF-8 counts as changed once a value may follow a keyword, so its
/// way is the careful one.
pub fn would_mask(text: &[u8]) -> bool {
    let mut pos = 0;
    loop {
        let Some((start, end, kind)) = next_keyword(text, pos) else {
            return false;
        };
        if value_may_follow(text, start, end, kind) {
            break;
        }
        pos = start + 1;
    }
    match std::str::from_utf8(text) {
        Ok(text) => redact(text).is_some(),
        Err(_) => true,
    }
}

/// For each line of `text` (`ranges`: ascending, not overlapping), whether masking would change
/// it, as [`would_mask`] on that line says: one prefilter scan over the whole text (a batch of
/// lines), then the rule at each keyword found, within its own line. One scan of a batch costs
/// a fraction of one call a line on short lines. `out` gets one flag a range.
pub fn lines_to_mask(text: &[u8], ranges: &[std::ops::Range<usize>], out: &mut Vec<bool>) {
    out.clear();
    out.resize(ranges.len(), false);
    let mut scratch = String::new();
    let mut line = 0;
    let mut pos = 0;
    while let Some((start, end, kind)) = next_keyword(text, pos) {
        while ranges.get(line).is_some_and(|r| r.end <= start) {
            line += 1;
        }
        let Some(range) = ranges.get(line) else {
            break;
        };
        if start < range.start {
            // Between lines (no line holds the text there): go on from the next line.
            pos = range.start;
            continue;
        }
        // The cheap byte check first, within the line (a keyword at a line's end is not followed
        // by the next line's quote): most keywords end here, neither validated nor rescanned.
        let line_text = &text[range.clone()];
        if !value_may_follow(line_text, start - range.start, end - range.start, kind) {
            pos = start + 1;
            continue;
        }
        let masks = match std::str::from_utf8(line_text) {
            Ok(l) => secret_at(l, start - range.start, &mut scratch),
            Err(_) => true,
        };
        if masks {
            out[line] = true;
            pos = range.end;
        } else {
            pos = start + 1;
        }
    }
}

/// Whether the rule replaces anything for a keyword that starts at `start` in `text`.
fn secret_at(text: &str, start: usize, scratch: &mut String) -> bool {
    let bytes = text.as_bytes();
    for (k, (_, kind)) in PATTERNS.iter().enumerate() {
        let Some(end) = keyword_at(bytes, start, k) else {
            continue;
        };
        let mut edit = Edit {
            text,
            out: scratch,
            copied: 0,
            changed: false,
        };
        match kind {
            Keyword::Credentials => credentials(bytes, start, end, &mut edit),
            Keyword::Key => key(bytes, start, end, true, &mut edit),
            Keyword::Password => key(bytes, start, end, false, &mut edit),
            Keyword::KeyId => key_id(bytes, start, &mut edit),
        };
        if edit.changed {
            return true;
        }
    }
    false
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
    /// Both ends sit next to an ASCII byte (a quote, `=`, `;`, whitespace, a key id's prefix),
    /// next to a whole wide quote, or at the end of the text, so they are char boundaries.
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

    /// Whether a keyword at `at` starts a word in the output: in the text, or right after a
    /// replaced secret, which the output ends with the marker's `]` (a key id glued to a keyword,
    /// `AKIA…secret_access_key=…`, is one pass, not two).
    fn starts_word(&self, text: &[u8], at: usize) -> bool {
        starts_word(text, at) || (self.changed && self.copied == at)
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

/// Past whitespace, and past the JSON escapes of a line end or a tab (`\n`, `\r`, `\t`: a
/// statement quoted inside a JSON document, such as a CloudTrail event).
fn skip_space(text: &[u8], mut at: usize) -> usize {
    loop {
        match text.get(at) {
            Some(b) if b.is_ascii_whitespace() => at += 1,
            Some(b'\\') if matches!(text.get(at + 1), Some(b'n' | b'r' | b't')) => at += 2,
            _ => return at,
        }
    }
}

/// How a quoted value opened: with an ASCII `'` (or `E'`), or with a full-width or curly quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Ascii,
    Wide,
}

/// The full-width `＇` and the curly `‘` and `’`: what a statement pasted from a word processor
/// or typed on a CJK keyboard quotes with. Redshift refuses them, but the text is logged first.
const WIDE_QUOTES: [&[u8]; 3] = [
    "\u{ff07}".as_bytes(),
    "\u{2018}".as_bytes(),
    "\u{2019}".as_bytes(),
];

/// The quote opening a value at `at`, if one does: its kind and where the content starts.
fn open_quote(text: &[u8], at: usize) -> Option<(Quote, usize)> {
    match text.get(at)? {
        b'\'' => Some((Quote::Ascii, at + 1)),
        b'E' | b'e' if text.get(at + 1) == Some(&b'\'') => Some((Quote::Ascii, at + 2)),
        _ => WIDE_QUOTES
            .iter()
            .find(|q| text[at..].starts_with(q))
            .map(|q| (Quote::Wide, at + q.len())),
    }
}

/// Where the value whose content starts at `from` ends (see [`closing_quote`]); a value opened
/// by a wide quote ends at the next quote of any kind.
fn closing(text: &[u8], from: usize, quote: Quote) -> usize {
    if quote == Quote::Ascii {
        return closing_quote(text, from);
    }
    let mut at = from;
    while let Some(i) = text
        .get(at..)
        .and_then(|rest| memchr3(b'\'', 0xEF, 0xE2, rest))
    {
        let i = at + i;
        if text[i] == b'\'' || WIDE_QUOTES.iter().any(|q| text[i..].starts_with(q)) {
            return i;
        }
        at = i + 1;
    }
    text.len()
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

/// Redacts the content of the quoted string opened as `open` says; returns where scanning goes
/// on.
fn quoted(text: &[u8], open: (Quote, usize), edit: &mut Edit<'_, '_>) -> usize {
    let (quote, content) = open;
    let end = closing(text, content, quote);
    edit.replace(content, end);
    end
}

/// `CREDENTIALS [AS] '...'`: every `key=value` of the string but `aws_iam_role`.
fn credentials(text: &[u8], start: usize, end: usize, edit: &mut Edit<'_, '_>) -> Option<usize> {
    if !edit.starts_word(text, start) {
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
    let (quote, content) = open_quote(text, at)?;
    let content_end = closing(text, content, quote);
    let mut pair = content;
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
        && edit.starts_word(text, start - 4);
    if !prefixed && !edit.starts_word(text, start) {
        return None;
    }
    let at = skip_space(text, end);
    if let Some(open) = open_quote(text, at) {
        return Some(quoted(text, open, edit));
    }
    if text.get(at) != Some(&b'=') {
        return None;
    }
    let value = skip_space(text, at + 1);
    if let Some(open) = open_quote(text, value) {
        return Some(quoted(text, open, edit));
    }
    if !pair || value >= text.len() {
        return None;
    }
    // A backslash before `"` is a JSON escape (the text is quoted inside a JSON document): the
    // value stops before it, so the document stays well-formed once the value is replaced.
    let len = text[value..]
        .iter()
        .enumerate()
        .position(|(i, b)| {
            matches!(b, b';' | b'\'' | b'"')
                || b.is_ascii_whitespace()
                || (*b == b'\\' && text.get(value + i + 1) == Some(&b'"'))
        })
        .unwrap_or(text.len() - value);
    edit.replace(value, value + len);
    Some(value + len)
}

/// `AKIA`/`ASIA` and 16 upper-case letters or digits, with no upper-case letter or digit
/// right before or after it: a key glued to lower-case text (`AKIA...EXAMPLEkey`) is still
/// one, while 21 upper-case characters in a row are some other identifier.
fn key_id(text: &[u8], start: usize, edit: &mut Edit<'_, '_>) -> Option<usize> {
    let end = start + KEY_ID_LEN;
    let id = text.get(start..end)?;
    let upper = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let is_id = (id.starts_with(b"AKIA") || id.starts_with(b"ASIA"))
        && id.iter().all(upper)
        && (start == 0 || !upper(&text[start - 1]))
        && text.get(end).is_none_or(|b| !upper(b));
    if !is_id {
        return None;
    }
    edit.replace(start + KEY_ID_PREFIX, end);
    Some(end)
}

/// A JSON document's text with the secrets of its strings masked, each string on its own: a
/// value left unterminated in one string never runs into the next, and what replaces a value
/// holds no quote or backslash, so the document stays well-formed. `None` when nothing changed
/// (one prefilter scan over the whole text when it holds no keyword). Strings are masked in
/// their escaped form: `\n` counts as whitespace, but a keyword or quote spelled as a `\u`
/// escape is not seen.
pub fn redact_json(doc: &[u8]) -> Option<Vec<u8>> {
    next_keyword(doc, 0)?;
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut scratch = String::new();
    let mut at = 0;
    while let Some(i) = doc.get(at..).and_then(|rest| memchr(b'"', rest)) {
        let start = at + i + 1;
        let mut j = start;
        let end = loop {
            match doc.get(j..).and_then(|rest| memchr2(b'"', b'\\', rest)) {
                None => break doc.len(),
                Some(k) if doc[j + k] == b'\\' => j += k + 2,
                Some(k) => break j + k,
            }
        };
        if let Ok(text) = std::str::from_utf8(&doc[start..end]) {
            if redact_into(text, &mut scratch) {
                let o = out.get_or_insert_with(|| Vec::with_capacity(doc.len() + MARKER.len()));
                o.extend_from_slice(&doc[copied..start]);
                o.extend_from_slice(scratch.as_bytes());
                copied = end;
            }
        }
        at = end + 1;
    }
    let mut out = out?;
    out.extend_from_slice(&doc[copied..]);
    Some(out)
}

/// Most bytes of input text a reason or an error message quotes (a column that does not type,
/// a setting's bad value): enough to recognise it, never its megabytes.
pub const EXCERPT_BYTES: usize = 256;

/// Most bytes of one string field of a log line or a metric document (an object key is at most
/// 1,024; a receipt's first reason is an excerpt already).
pub const FIELD_BYTES: usize = 2048;

/// Most bytes of one log line (stderr, which Lambda sends to CloudWatch Logs): a backstop, as
/// every field in it is bounded already.
pub const LOG_LINE_BYTES: usize = 64 * 1024;

/// Input text made fit to leave: see [`clean`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clean<'a> {
    /// The masked text, or its first bytes.
    pub text: Cow<'a, str>,
    /// The input's whole length in bytes when `text` is only its start.
    pub whole_bytes: Option<usize>,
}

impl fmt::Display for Clean<'_> {
    /// The text, and `… (N bytes)` after a cut one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        match self.whole_bytes {
            Some(n) => write!(f, "… ({n} bytes)"),
            None => Ok(()),
        }
    }
}

/// THE rule for input text on its way out, anywhere but a record's own text (which
/// `crate::redact` masks whole): secrets masked as [`redact`] does, then cut to at most `max`
/// bytes at a char boundary. Masking comes first, so a secret is never cut where the rule
/// would no longer see it. Every reason, error message, log line, metric value and doctor line
/// that quotes an input goes through here (tests/leaks.rs lists the places).
pub fn clean(text: &str, max: usize) -> Clean<'_> {
    let whole = text.len();
    let mut text = match redact(text) {
        Some(masked) => Cow::Owned(masked),
        None => Cow::Borrowed(text),
    };
    if text.len() <= max {
        return Clean {
            text,
            whole_bytes: None,
        };
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match &mut text {
        Cow::Borrowed(t) => {
            let whole: &str = t;
            *t = &whole[..end];
        }
        Cow::Owned(t) => t.truncate(end),
    }
    Clean {
        text,
        whole_bytes: Some(whole),
    }
}

/// An input value quoted in a reason or an error message: `"..."` (escaped as Rust's `{:?}`
/// does) of its [`clean`] excerpt of at most [`EXCERPT_BYTES`], and its length when cut:
/// `"abc…" (10485760 bytes)`.
pub fn quote(text: &str) -> String {
    quote_within(text, EXCERPT_BYTES)
}

/// [`quote`] with an excerpt of at most `max` bytes (settings and names quote 40).
pub fn quote_within(text: &str, max: usize) -> String {
    let clean = clean(text, max);
    match clean.whole_bytes {
        Some(n) => format!("{:?} ({n} bytes)", format!("{}…", clean.text)),
        None => format!("{:?}", clean.text),
    }
}

/// Every string of a JSON value (keys of objects aside) through [`clean`] with `max`: for log
/// lines and documents built from values that may hold an input's text.
pub fn clean_json(value: &mut serde_json::Value, max: usize) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let clean = clean(s, max);
            if clean.whole_bytes.is_some() || matches!(clean.text, Cow::Owned(_)) {
                *s = clean.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| clean_json(v, max)),
        Value::Object(map) => map.values_mut().for_each(|v| clean_json(v, max)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
