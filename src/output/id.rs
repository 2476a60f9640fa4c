//! Record ids: the XXH3-128 of where a record came from and its ordinal there, as 32 lowercase
//! hex digits. Files hash `bucket 0x00 key 0x00 ordinal`, CloudWatch Logs events
//! `group 0x00 stream 0x00 event id 0x00 ordinal` (ordinal: 8 little-endian bytes); the same
//! origin always yields the same ids, so any consumer can drop duplicates or recompute them.

use std::cell::RefCell;

use xxhash_rust::xxh3::xxh3_128;

/// The ids of one origin's records: the hashed prefix is built once, the ordinal rewritten.
#[derive(Debug, Clone)]
pub struct RecordIds {
    /// The prefix, then 8 bytes the ordinal is written into.
    input: RefCell<Vec<u8>>,
}

impl RecordIds {
    /// Ids of an object's records: `bucket \0 key \0` (bucket empty for local files).
    pub fn for_object(bucket: Option<&str>, key: &str) -> RecordIds {
        RecordIds::from_parts(&[
            bucket.unwrap_or("").as_bytes(),
            b"\0",
            key.as_bytes(),
            b"\0",
        ])
    }

    /// Ids of records whose origin is the concatenation of `parts`.
    pub fn from_parts(parts: &[&[u8]]) -> RecordIds {
        let mut ids = RecordIds {
            input: RefCell::new(Vec::new()),
        };
        ids.reset(parts);
        ids
    }

    /// Starts over with another origin, keeping the buffer.
    pub fn reset(&mut self, parts: &[&[u8]]) {
        let input = self.input.get_mut();
        input.clear();
        for part in parts {
            input.extend_from_slice(part);
        }
        input.extend_from_slice(&[0; 8]);
    }

    /// The id of the record at `ordinal`.
    pub fn id(&self, ordinal: u64) -> [u8; 32] {
        let hash = {
            let mut input = self.input.borrow_mut();
            let n = input.len();
            input[n - 8..].copy_from_slice(&ordinal.to_le_bytes());
            xxh3_128(&input)
        };
        hex32(hash)
    }
}

/// A 128-bit hash as 32 lowercase hex digits.
pub fn hex32(hash: u128) -> [u8; 32] {
    let mut hex = [0u8; 32];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(hash.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    hex
}

/// The two hex digits of every byte value: one lookup a byte instead of two.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    pairs
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hash_the_origin_and_the_ordinal_as_documented() {
        let ids = RecordIds::for_object(Some("b"), "k");
        let mut input = b"b\0k\0".to_vec();
        input.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(ids.id(7), hex32(xxh3_128(&input)));
        // Local files hash an empty bucket; the separator keeps pairs apart.
        assert_ne!(
            RecordIds::for_object(Some("ab"), "c").id(0),
            RecordIds::for_object(Some("a"), "bc").id(0)
        );
        let mut reused = RecordIds::for_object(None, "x");
        reused.reset(&[b"b\0k\0"]);
        assert_eq!(reused.id(7), ids.id(7));
        assert_eq!(
            hex32(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            *b"0123456789abcdef0011223344556677"
        );
    }
}
