//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) Bedrock's
//! ConverseStream answers with, written by hand so that the gateway's decoder is tested against
//! a writer that shares no code with it.
//!
//! A message is a prelude (total length and headers length, each a big-endian u32, then the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it.
//! A header is its name's length (u8), the name, the value type (7: a string), the value's
//! length (big-endian u16) and the value. CRC32 is the IEEE (gzip) one.

use bytes::{BufMut, Bytes, BytesMut};

/// The header value type of a UTF-8 string.
const STRING: u8 = 7;
/// The prelude (two lengths and a CRC) and the message CRC.
const OVERHEAD: usize = 16;

/// One message with these string headers and this payload.
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = OVERHEAD + headers_len + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(u32::try_from(total).expect("an event fits in 4 GiB"));
    out.put_u32(u32::try_from(headers_len).expect("headers fit in 4 GiB"));
    out.put_u32(crc32fast::hash(&out[..8]));
    for (name, value) in headers {
        out.put_u8(u8::try_from(name.len()).expect("a header name is under 256 bytes"));
        out.put_slice(name.as_bytes());
        out.put_u8(STRING);
        out.put_u16(u16::try_from(value.len()).expect("a header value is under 64 KiB"));
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// An event of a Bedrock stream: `:event-type` this, a JSON payload.
pub(crate) fn event(event_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS event-stream test vector `valid_no_headers` (as published with the AWS SDKs'
    /// event-stream implementations): no headers, the payload `another test payload`.
    #[test]
    fn aws_vector_without_headers() {
        let expected: [u8; 36] = [
            0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x51, 0x63, 0x56, 0xad, b'a', b'n',
            b'o', b't', b'h', b'e', b'r', b' ', b't', b'e', b's', b't', b' ', b'p', b'a', b'y',
            b'l', b'o', b'a', b'd', 0x8d, 0xf8, 0x0e, 0x65,
        ];
        assert_eq!(&message(&[], b"another test payload")[..], &expected);
    }

    /// An empty message: 16 bytes, the CRC of the prelude `00000010 00000000` and of the whole.
    #[test]
    fn empty_message() {
        let bytes = message(&[], b"");
        assert_eq!(&bytes[..8], &[0, 0, 0, 0x10, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..12], &crc32fast::hash(&bytes[..8]).to_be_bytes());
        assert_eq!(&bytes[12..], &crc32fast::hash(&bytes[..12]).to_be_bytes());
    }

    /// A string header, as another event-stream encoder writes it: `content-type:
    /// application/json` and the payload `{"foo": "bar"}`.
    #[test]
    fn string_header() {
        let expected: [u8; 62] = [
            0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70, 12, b'c', b'o', b'n', b't', b'e', b'n',
            b't', b'-', b't', b'y', b'p', b'e', 7, 0, 16, b'a', b'p', b'p', b'l', b'i', b'c', b'a',
            b't', b'i', b'o', b'n', b'/', b'j', b's', b'o', b'n', b'{', b'"', b'f', b'o', b'o',
            b'"', b':', b' ', b'"', b'b', b'a', b'r', b'"', b'}', 111, 162, 191, 59,
        ];
        assert_eq!(
            &message(
                &[("content-type", "application/json")],
                br#"{"foo": "bar"}"#
            )[..],
            &expected
        );
    }

    /// The decoder the gateway uses reads a Bedrock event back, CRCs checked.
    #[test]
    fn smithy_reads_an_event() {
        use aws_smithy_eventstream::frame::read_message_from;
        let bytes = event("contentBlockDelta", br#"{"contentBlockIndex":0}"#);
        let mut buffer = &bytes[..];
        let decoded = read_message_from(&mut buffer).expect("a valid message");
        assert!(buffer.is_empty());
        assert_eq!(&decoded.payload()[..], br#"{"contentBlockIndex":0}"#);
        let header = |name: &str| {
            decoded
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|v| v.as_str().to_owned())
        };
        assert_eq!(header(":event-type").as_deref(), Some("contentBlockDelta"));
        assert_eq!(header(":content-type").as_deref(), Some("application/json"));
        assert_eq!(header(":message-type").as_deref(), Some("event"));
    }
}
