//! Records split into parts for Firehose joined back into one row for the lake. With both
//! destinations (`DESTINATIONS=firehose,security-lake`) the lines are rendered once, to
//! Firehose's limit, so a record over 1 MiB arrives as consecutive parts: the same event, each
//! with a consecutive piece of its largest text and `unmapped.part`/`unmapped.parts`
//! (`output::Format::write_parts`). The lake takes records whole (a Parquet cell holds a
//! statement of any size), so the parts are joined: their differing text concatenated, the part
//! numbers dropped, and the record written as the lake alone would have it.
//!
//! Only lines of at least [`CHECKED_BYTES`] are looked at when no part is held: every part but
//! the last fills a Firehose record, so a record's first part is never short.

use serde_json::Value;

/// Lines shorter than this cannot be a record's first part.
pub const CHECKED_BYTES: usize = 128 * 1024;

/// The parts of a record seen so far, joined.
struct Held {
    event: Value,
    /// Where the split text is: the longest string of the first part (its piece fills the
    /// part; everything else is the rest of the record, repeated in every part).
    path: Vec<String>,
    next: u64,
    parts: u64,
}

/// Joins consecutive parts of a record; see the module documentation.
#[derive(Default)]
pub struct Joiner {
    held: Option<Held>,
}

fn part_of(event: &Value) -> Option<(u64, u64)> {
    let unmapped = event.get("unmapped")?;
    Some((
        unmapped.get("part")?.as_u64()?,
        unmapped.get("parts")?.as_u64()?,
    ))
}

fn uid(event: &Value) -> Option<&Value> {
    event.get("metadata")?.get("uid")
}

/// The path of the longest string in `value`, and its length.
fn longest(value: &Value, path: &mut Vec<String>, best: &mut (usize, Vec<String>)) {
    match value {
        Value::String(text) if text.len() > best.0 => *best = (text.len(), path.clone()),
        Value::Object(members) => {
            for (key, member) in members {
                path.push(key.clone());
                longest(member, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn at_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(key))
}

/// The record as one line: the part numbers dropped, or kept when not every part came.
fn render(mut held: Held, whole: bool) -> Vec<u8> {
    if whole {
        if let Some(Value::Object(unmapped)) = held.event.get_mut("unmapped") {
            unmapped.remove("part");
            unmapped.remove("parts");
        }
    }
    serde_json::to_vec(&held.event).unwrap_or_default()
}

impl Joiner {
    /// Takes the next line. Returns a record to write first (parts joined, or held parts that
    /// the line did not continue, as far as they go) and the line itself when it is to be
    /// written as it is (not a part).
    pub fn feed<'a>(&mut self, line: &'a [u8]) -> (Option<Vec<u8>>, Option<&'a [u8]>) {
        if self.held.is_none() && line.len() < CHECKED_BYTES {
            return (None, Some(line));
        }
        let event: Option<Value> = serde_json::from_slice(line).ok();
        let part = event.as_ref().and_then(part_of);
        match (self.held.take(), event, part) {
            (None, Some(event), Some((1, parts))) if parts > 1 => {
                let mut best = (0, Vec::new());
                longest(&event, &mut Vec::new(), &mut best);
                self.held = Some(Held {
                    event,
                    path: best.1,
                    next: 2,
                    parts,
                });
                (None, None)
            }
            (None, _, _) => (None, Some(line)),
            (Some(mut held), Some(event), Some((part, parts)))
                if part == held.next && parts == held.parts && uid(&event) == uid(&held.event) =>
            {
                if let (Some(Value::String(text)), Some(Value::String(piece))) =
                    (at_mut(&mut held.event, &held.path), at(&event, &held.path))
                {
                    text.push_str(piece);
                }
                if part == parts {
                    return (Some(render(held, true)), None);
                }
                held.next += 1;
                self.held = Some(held);
                (None, None)
            }
            (Some(held), _, _) => {
                // Not the next part: what was held goes as far as it came, then the line.
                let (_, rest) = self.feed(line);
                (Some(render(held, false)), rest)
            }
        }
    }

    /// Parts held at the end of the input (its last record's parts did not all come): the
    /// record as far as it came.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.held.take().map(|held| render(held, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(uid: &str, text: &str, part: u64, parts: u64) -> Vec<u8> {
        let pad = "x".repeat(CHECKED_BYTES);
        let text = if part < parts {
            format!("{text}{pad}")
        } else {
            text.to_string()
        };
        serde_json::to_vec(&json!({
            "metadata": {"uid": uid, "version": "1.1.0"},
            "class_uid": 6005,
            "query_info": {"query_string": text},
            "unmapped": {"source": {"line": 7}, "part": part, "parts": parts},
        }))
        .unwrap()
    }

    #[test]
    fn the_parts_of_a_record_become_one_line_with_its_whole_text() {
        let mut j = Joiner::default();
        let (a, b, c) = (
            part("u", "select ", 1, 3),
            part("u", "1 ", 2, 3),
            part("u", "+ 1", 3, 3),
        );
        assert_eq!(j.feed(&a), (None, None));
        assert_eq!(j.feed(&b), (None, None));
        let (joined, rest) = j.feed(&c);
        assert_eq!(rest, None);
        let event: Value = serde_json::from_slice(&joined.unwrap()).unwrap();
        let pad = "x".repeat(CHECKED_BYTES);
        assert_eq!(
            event["query_info"]["query_string"],
            format!("select {pad}1 {pad}+ 1")
        );
        assert_eq!(event["unmapped"], json!({"source": {"line": 7}}));
        assert_eq!(event["metadata"]["uid"], "u");
        assert_eq!(j.finish(), None);
    }

    #[test]
    fn pieces_that_repeat_each_other_are_all_kept() {
        let mut j = Joiner::default();
        let same = part("u", "y", 1, 2);
        let mut last: Value = serde_json::from_slice(&same).unwrap();
        last["unmapped"]["part"] = json!(2);
        let last = serde_json::to_vec(&last).unwrap();
        assert_eq!(j.feed(&same), (None, None));
        let (joined, _) = j.feed(&last);
        let event: Value = serde_json::from_slice(&joined.unwrap()).unwrap();
        let text = event["query_info"]["query_string"].as_str().unwrap();
        assert_eq!(text.len(), 2 * (1 + CHECKED_BYTES));
    }

    #[test]
    fn lines_that_are_not_parts_pass_as_they_are() {
        let mut j = Joiner::default();
        let short = br#"{"metadata":{"uid":"a"},"unmapped":{"part":1,"parts":2}}"#;
        assert_eq!(j.feed(short), (None, Some(&short[..])));
        let long = serde_json::to_vec(&json!({"raw_data": "y".repeat(CHECKED_BYTES)})).unwrap();
        assert_eq!(j.feed(&long), (None, Some(&long[..])));
        assert_eq!(j.feed(b"not json"), (None, Some(&b"not json"[..])));
    }

    #[test]
    fn a_sequence_cut_short_keeps_what_came_and_the_next_line() {
        let mut j = Joiner::default();
        let first = part("u", "select ", 1, 3);
        assert_eq!(j.feed(&first), (None, None));
        let other = br#"{"metadata":{"uid":"v"}}"#;
        let (held, rest) = j.feed(other);
        let held: Value = serde_json::from_slice(&held.unwrap()).unwrap();
        assert_eq!(
            held["unmapped"]["part"], 1,
            "not whole: its part numbers stay"
        );
        assert_eq!(rest, Some(&other[..]));
        // A record's parts left at the end of the input come out as far as they came.
        assert_eq!(j.feed(&first), (None, None));
        assert!(j.finish().is_some());
    }
}
