//! Reads a JSON line as serde_json does, refusing a key that appears twice in any object
//! (serde_json's `Value` keeps the last copy silently; readers differ on which copy wins, so a
//! record must never hold one). Included with `#[path = "common/json_keys.rs"] mod json_keys;`.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Checks one JSON text: `Err` names the first key found twice, or why it is not JSON.
pub fn check(line: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    NoDuplicates
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())
}

/// Checks every non-empty line of NDJSON: the failures as `line N: reason`.
pub fn check_lines(ndjson: &[u8]) -> Vec<String> {
    ndjson
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .filter_map(|(i, l)| {
            check(l).err().map(|e| {
                let head = String::from_utf8_lossy(&l[..l.len().min(300)]);
                format!("line {}: {e}: {head}", i + 1)
            })
        })
        .collect()
}

struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

#[test]
fn the_checker_finds_keys_twice_at_any_depth_and_accepts_siblings() {
    assert!(check(br#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#).is_ok());
    assert!(check(br#"{"a":1,"a":2}"#).unwrap_err().contains("\"a\""));
    assert!(check(br#"{"x":[{"k":1,"k":2}]}"#).is_err());
    assert!(check(br#"{"id":1,"\u0069d":2}"#).is_err());
    assert!(check(b"{} x").is_err());
}
