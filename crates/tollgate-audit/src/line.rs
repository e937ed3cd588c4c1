//! The line format: a record's JSON object, then `,"seq":N,"prev":"<hex>","hash":"<hex>"}`,
//! where `hash` is the SHA-256 of everything before `,"hash":`.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write as _;

/// A SHA-256 digest.
pub(crate) type Hash = [u8; 32];

/// The `prev` of the first record of a new log.
pub(crate) const GENESIS: Hash = [0; 32];

/// What comes between the hashed part of a line and the hash itself.
const HASH_KEY: &[u8] = b",\"hash\":\"";

/// `,"hash":"`, 64 hex digits and `"}`: how a line ends.
const HASH_SUFFIX_LEN: usize = HASH_KEY.len() + 64 + 2;

/// Appends the line of `body` as record `seq` after `prev`, newline included, to `out`, and
/// returns its hash.
pub(crate) fn seal(out: &mut Vec<u8>, body: &[u8], seq: u64, prev: &Hash) -> Hash {
    let start = out.len();
    out.extend_from_slice(body);
    if body != b"{" {
        out.push(b',');
    }
    out.extend_from_slice(b"\"seq\":");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{seq}");
    out.extend_from_slice(b",\"prev\":\"");
    push_hex(out, prev);
    out.push(b'"');
    let hash: Hash = Sha256::digest(&out[start..]).into();
    out.extend_from_slice(HASH_KEY);
    push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    hash
}

/// The writer's fields of a line whose hash matches its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) seq: u64,
    pub(crate) prev: Hash,
    pub(crate) hash: Hash,
}

/// Why a line is not a sound record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not a JSON document at all.
    NotJson,
    /// JSON, but not an object ending in `seq`, `prev` and `hash`.
    NotARecord,
    /// Its hash does not match its content.
    Edited,
}

/// Checks one line (without its newline) and returns its `seq`, `prev` and `hash`.
pub(crate) fn open(line: &[u8]) -> Result<Sealed, LineError> {
    let value: Value = serde_json::from_slice(line).map_err(|_| LineError::NotJson)?;
    let Value::Object(fields) = value else {
        return Err(LineError::NotARecord);
    };
    let seq = fields.get("seq").and_then(Value::as_u64);
    let prev = fields.get("prev").and_then(Value::as_str);
    let prev = prev.and_then(|hex| parse_hex(hex.as_bytes()));
    let (Some(seq), Some(prev), Some((hashed, hash))) = (seq, prev, split_hash(line)) else {
        return Err(LineError::NotARecord);
    };
    if Sha256::digest(hashed)[..] != hash {
        return Err(LineError::Edited);
    }
    Ok(Sealed { seq, prev, hash })
}

/// Splits a line into its hashed part and the hash it ends with.
fn split_hash(line: &[u8]) -> Option<(&[u8], Hash)> {
    let (hashed, suffix) = line.split_at(line.len().checked_sub(HASH_SUFFIX_LEN)?);
    let hex = suffix.strip_prefix(HASH_KEY)?.strip_suffix(b"\"}")?;
    Some((hashed, parse_hex(hex)?))
}

/// Appends `bytes` as lowercase hex.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
}

/// Reads 64 lowercase hex digits.
fn parse_hex(hex: &[u8]) -> Option<Hash> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(record: &Value, seq: u64, prev: &Hash) -> (Vec<u8>, Hash) {
        let mut out = Vec::new();
        let hash = seal(&mut out, &crate::record::body(record).unwrap(), seq, prev);
        (out, hash)
    }

    #[test]
    fn a_line_is_the_record_then_seq_prev_and_hash() {
        let (out, hash) = line(&json!({"a": 1, "b": "x"}), 7, &[0xab; 32]);
        let text = String::from_utf8(out).unwrap();
        let prefix = format!(r#"{{"a":1,"b":"x","seq":7,"prev":"{}""#, "ab".repeat(32));
        let expected: Hash = Sha256::digest(prefix.as_bytes()).into();
        assert_eq!(hash, expected);
        let mut hex = Vec::new();
        push_hex(&mut hex, &hash);
        let hex = String::from_utf8(hex).unwrap();
        assert_eq!(text, format!("{prefix},\"hash\":\"{hex}\"}}\n"));
        let sealed = open(text.trim_end().as_bytes()).unwrap();
        assert_eq!(
            sealed,
            Sealed {
                seq: 7,
                prev: [0xab; 32],
                hash
            }
        );
    }

    #[test]
    fn an_empty_record_still_makes_a_json_line() {
        let (out, hash) = line(&json!({}), 0, &GENESIS);
        assert!(out.starts_with(b"{\"seq\":0,\"prev\":\"0000"));
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["seq"], 0);
        assert_eq!(open(&out[..out.len() - 1]).unwrap().hash, hash);
    }

    #[test]
    fn broken_lines_are_told_apart() {
        let (out, _) = line(&json!({"a": 1}), 0, &GENESIS);
        let text = std::str::from_utf8(&out).unwrap().trim_end();
        assert_eq!(open(b"{\"a\":"), Err(LineError::NotJson));
        assert_eq!(open(b"{\"a\":1}"), Err(LineError::NotARecord));
        assert_eq!(
            open(text.replace("\"a\":1", "\"a\":2").as_bytes()),
            Err(LineError::Edited)
        );
        let upper = text.replace("\"hash\":\"", "\"hash\":\"X");
        assert_eq!(open(upper.as_bytes()), Err(LineError::NotARecord));
    }
}
