//! A record's JSON text, written straight from the record in one pass (no intermediate
//! `serde_json::Value`), checked as it is written: it must be an object, and must not have the
//! fields the writer adds.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

/// The fields the writer adds; a record must not have them itself.
const RESERVED: [&str; 3] = ["seq", "prev", "hash"];

/// Why a record cannot go into the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("the record cannot be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the record is not a JSON object")]
    NotAnObject,
    #[error("the record has its own `{0}` field, which the log adds itself")]
    Reserved(&'static str),
}

/// A record's JSON body, or why it cannot go into the log: what a [`LazyRecord`] hands the
/// writer thread.
pub struct RecordBody(pub(crate) Result<Vec<u8>, RecordError>);

impl RecordBody {
    /// Serialises `record`, which must be a JSON object without `seq`, `prev` or `hash`
    /// fields (as for [`AuditLog::record`](crate::AuditLog::record)).
    pub fn of<T: Serialize + ?Sized>(record: &T) -> Self {
        Self(body(record))
    }
}

/// A record that the writer thread makes and serialises, so that the thread that queues it
/// (a request's) does not spend its time on it: it holds what the record is made of.
pub trait LazyRecord: Send + 'static {
    /// The record's body, made with [`RecordBody::of`].
    fn body(self: Box<Self>) -> RecordBody;
}

/// Serialises a record into the start of its line: its JSON object without the closing `}`.
pub(crate) fn body<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>, RecordError> {
    let mut json = Vec::with_capacity(1024);
    let mut checks = Checks::default();
    record.serialize(&mut serde_json::Serializer::with_formatter(
        &mut json,
        Checking(&mut checks),
    ))?;
    if checks.raw {
        // A record that is raw JSON text: its fields are only known once it is parsed.
        return parsed_body(record);
    }
    if !checks.object {
        return Err(RecordError::NotAnObject);
    }
    if let Some(index) = checks.reserved.iter().position(|&found| found) {
        return Err(RecordError::Reserved(RESERVED[index]));
    }
    json.pop();
    Ok(json)
}

/// [`body`] through a parsed `serde_json::Value`, for records written as raw JSON text.
fn parsed_body<T: Serialize + ?Sized>(record: &T) -> Result<Vec<u8>, RecordError> {
    let value = serde_json::to_value(record)?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(RecordError::NotAnObject);
    };
    if let Some(key) = RESERVED.into_iter().find(|key| fields.contains_key(*key)) {
        return Err(RecordError::Reserved(key));
    }
    let mut json = serde_json::to_vec(&value)?;
    json.pop();
    Ok(json)
}

/// Writes compact JSON, noting whether the top-level value is an object and which of the
/// [`RESERVED`] names its keys use.
#[derive(Default)]
struct Checks {
    /// How deep the writer is in objects and arrays; the record's own keys are at depth 1.
    depth: usize,
    /// The top-level value is an object.
    object: bool,
    /// Raw JSON text was written at the top level.
    raw: bool,
    /// A top-level key is being written: its first bytes, while they can still be reserved.
    key: Option<KeyPrefix>,
    /// Which of the [`RESERVED`] names were found among the top-level keys.
    reserved: [bool; 3],
}

/// The formatter that fills in [`Checks`].
struct Checking<'a>(&'a mut Checks);

/// The first bytes of a key, enough to compare it with the [`RESERVED`] names.
#[derive(Default)]
struct KeyPrefix {
    bytes: [u8; 4],
    len: usize,
    /// The key is longer than any reserved name, or has characters that JSON escapes.
    other: bool,
}

impl KeyPrefix {
    fn push(&mut self, fragment: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + fragment.len()) {
            Some(room) if !self.other => {
                room.copy_from_slice(fragment);
                self.len += fragment.len();
            }
            _ => self.other = true,
        }
    }

    fn reserved(&self) -> Option<usize> {
        let key = &self.bytes[..self.len];
        (!self.other)
            .then(|| RESERVED.iter().position(|name| name.as_bytes() == key))
            .flatten()
    }
}

impl Formatter for Checking<'_> {
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.object |= self.0.depth == 0;
        self.0.depth += 1;
        CompactFormatter.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.depth -= 1;
        CompactFormatter.end_object(writer)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.depth += 1;
        CompactFormatter.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.depth -= 1;
        CompactFormatter.end_array(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.0.depth == 1 {
            self.0.key = Some(KeyPrefix::default());
        }
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(index) = self.0.key.take().and_then(|key| key.reserved()) {
            self.0.reserved[index] = true;
        }
        CompactFormatter.end_object_key(writer)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if let Some(key) = &mut self.0.key {
            key.push(fragment.as_bytes());
        }
        CompactFormatter.write_string_fragment(writer, fragment)
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        if let Some(key) = &mut self.0.key {
            key.other = true;
        }
        CompactFormatter.write_char_escape(writer, char_escape)
    }

    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        self.0.raw |= self.0.depth == 0;
        CompactFormatter.write_raw_fragment(writer, fragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[derive(Serialize)]
    struct Record<'a> {
        event: &'a str,
        nested: BTreeMap<&'a str, u8>,
        list: Vec<BTreeMap<&'a str, u8>>,
    }

    #[test]
    fn a_record_is_its_fields_in_order_without_the_closing_brace() {
        let record = Record {
            event: "request",
            nested: BTreeMap::from([("seq", 1)]),
            list: vec![BTreeMap::from([("hash", 2)])],
        };
        assert_eq!(
            text(body(&record).unwrap()),
            r#"{"event":"request","nested":{"seq":1},"list":[{"hash":2}]"#,
            "reserved names are the record's own below its top level"
        );
        assert_eq!(text(body(&json!({})).unwrap()), "{");
        assert_eq!(
            text(body(&json!({"se\"q": 1, "sequence": 2, "se": 3})).unwrap()),
            r#"{"se":3,"se\"q":1,"sequence":2"#
        );
    }

    #[test]
    fn records_that_are_not_objects_or_carry_chain_fields_are_refused() {
        assert!(matches!(body(&json!([1])), Err(RecordError::NotAnObject)));
        assert!(matches!(body(&"text"), Err(RecordError::NotAnObject)));
        assert!(matches!(body(&7), Err(RecordError::NotAnObject)));
        assert!(matches!(
            body(&json!({"prev": "x"})),
            Err(RecordError::Reserved("prev"))
        ));
        assert!(matches!(
            body(&json!({"hash": 1, "seq": 2})),
            Err(RecordError::Reserved("seq"))
        ));
        assert!(matches!(
            body(&BTreeMap::from([(1, 2)])),
            Ok(json) if json == br#"{"1":2"#
        ));
    }

    #[test]
    fn raw_json_records_are_checked_as_parsed() {
        let raw = RawValue::from_string(r#"{"b":1,"a":2}"#.into()).unwrap();
        assert_eq!(text(body(&raw).unwrap()), r#"{"a":2,"b":1"#);
        let raw = RawValue::from_string(r#"{"hash":1}"#.into()).unwrap();
        assert!(matches!(body(&raw), Err(RecordError::Reserved("hash"))));
        let raw = RawValue::from_string("[1]".into()).unwrap();
        assert!(matches!(body(&raw), Err(RecordError::NotAnObject)));
    }
}
