//! The protocol's messages and paths: newline-delimited JSON on the subscription stream,
//! the acknowledgement body, and the two endpoints. Pure: no I/O.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The request header naming the subscribing proxy.
pub(crate) const PROXY_HEADER: &str = "tollgate-proxy";

/// Sent after a stretch of silence so that both sides know the stream is alive.
pub(crate) const PING_LINE: &[u8] = b"{\"type\":\"ping\"}\n";

/// Sent when the Gateway the stream follows no longer exists.
pub(crate) const REMOVED_LINE: &[u8] = b"{\"type\":\"removed\"}\n";

/// The longest namespace or name accepted (a Kubernetes DNS subdomain).
const MAX_NAME_CHARS: usize = 253;

/// The snapshot message for `payload`, which must be JSON: it is embedded as it is, except
/// that raw newlines (whitespace in JSON, never inside a string) become spaces so that the
/// message stays on one line.
pub(crate) fn snapshot_line(version: u64, payload: &[u8]) -> Bytes {
    let head = format!("{{\"type\":\"snapshot\",\"version\":{version},\"payload\":");
    let mut line = BytesMut::with_capacity(head.len() + payload.len() + 2);
    line.put_slice(head.as_bytes());
    let start = line.len();
    line.put_slice(payload);
    for byte in &mut line[start..] {
        if *byte == b'\n' {
            *byte = b' ';
        }
    }
    line.put_slice(b"}\n");
    line.freeze()
}

/// One message of the stream, as the client reads it.
#[derive(Debug, PartialEq)]
pub(crate) enum Message {
    /// A Gateway's configuration; `payload` is the caller's JSON, byte for byte.
    Snapshot {
        /// Its version.
        version: u64,
        /// The payload, a slice of the line it came in.
        payload: Bytes,
    },
    /// The stream is alive.
    Ping,
    /// The Gateway was removed.
    Removed,
    /// A message type this client does not know (from a newer server); ignored.
    Unknown(String),
}

/// The fields of any message, borrowed from its line.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    version: Option<u64>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// Reads one line (without its newline).
pub(crate) fn parse_line(line: &Bytes) -> Result<Message, String> {
    let fields: Fields<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    match fields.kind.as_ref() {
        "snapshot" => match (fields.version, fields.payload) {
            (Some(version), Some(payload)) => Ok(Message::Snapshot {
                version,
                payload: line.slice_ref(payload.get().as_bytes()),
            }),
            _ => Err("a snapshot message needs a version and a payload".into()),
        },
        "ping" => Ok(Message::Ping),
        "removed" => Ok(Message::Removed),
        other => Ok(Message::Unknown(other.to_string())),
    }
}

/// What a proxy tells the server after applying (or failing to apply) a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ack {
    /// The proxy's name.
    pub(crate) proxy: String,
    /// The version it applied or rejected.
    pub(crate) version: u64,
    /// Whether it is serving it now.
    pub(crate) accepted: bool,
    /// Why it rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// A proxy's report: what it wants the controller to know besides acknowledgements (its
/// budget counts), as JSON the server keeps as it came.
#[derive(Debug, Deserialize)]
pub(crate) struct Report<'a> {
    /// The proxy's name.
    pub(crate) proxy: String,
    /// The report itself.
    #[serde(borrow)]
    pub(crate) report: &'a RawValue,
}

/// The three endpoints, for one Gateway.
#[derive(Debug, PartialEq)]
pub(crate) enum Endpoint {
    /// `GET /v1/gateways/{namespace}/{name}/snapshots`.
    Snapshots,
    /// `POST /v1/gateways/{namespace}/{name}/acks`.
    Acks,
    /// `POST /v1/gateways/{namespace}/{name}/reports`.
    Reports,
}

/// Which endpoint of which Gateway (`namespace/name`) a path names.
pub(crate) fn parse_path(path: &str) -> Option<(String, Endpoint)> {
    let rest = path.strip_prefix("/v1/gateways/")?;
    let mut parts = rest.split('/');
    let (namespace, name, endpoint) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !valid_name(namespace) || !valid_name(name) {
        return None;
    }
    let endpoint = match endpoint {
        "snapshots" => Endpoint::Snapshots,
        "acks" => Endpoint::Acks,
        "reports" => Endpoint::Reports,
        _ => return None,
    };
    Some((format!("{namespace}/{name}"), endpoint))
}

/// The path of a Gateway's endpoint; `gateway` is `namespace/name`.
pub(crate) fn path(gateway: &str, endpoint: Endpoint) -> String {
    let last = match endpoint {
        Endpoint::Snapshots => "snapshots",
        Endpoint::Acks => "acks",
        Endpoint::Reports => "reports",
    };
    format!("/v1/gateways/{gateway}/{last}")
}

/// Whether `gateway` is `namespace/name` with names Kubernetes would accept.
pub(crate) fn valid_gateway(gateway: &str) -> bool {
    gateway
        .split_once('/')
        .is_some_and(|(namespace, name)| valid_name(namespace) && valid_name(name))
}

/// Whether a proxy name or a namespace or name is usable: 1 to 253 of `[A-Za-z0-9._-]`.
pub(crate) fn valid_name(text: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `text` cut to at most `max_chars` characters.
pub(crate) fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_line_embeds_the_payload_on_one_line() {
        let payload = b"{\"a\": [1,\n 2], \"s\": \"x\\ny\"}";
        let line = snapshot_line(7, payload);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(line.ends_with(b"}\n"));
        let message = parse_line(&line.slice(..line.len() - 1)).unwrap();
        let Message::Snapshot { version, payload } = message else {
            panic!("{message:?}")
        };
        assert_eq!(version, 7);
        assert_eq!(&payload[..], b"{\"a\": [1,  2], \"s\": \"x\\ny\"}");
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["s"], "x\ny");
    }

    #[test]
    fn pings_removals_and_unknown_types_parse() {
        let line = |text: &[u8]| Bytes::copy_from_slice(text.strip_suffix(b"\n").unwrap());
        assert_eq!(parse_line(&line(PING_LINE)), Ok(Message::Ping));
        assert_eq!(parse_line(&line(REMOVED_LINE)), Ok(Message::Removed));
        assert_eq!(
            parse_line(&Bytes::from_static(b"{\"type\":\"later\",\"x\":1}")),
            Ok(Message::Unknown("later".into()))
        );
        assert!(parse_line(&Bytes::from_static(b"{\"type\":\"snapshot\"}")).is_err());
        assert!(parse_line(&Bytes::from_static(b"not json")).is_err());
    }

    #[test]
    fn paths_name_a_gateway_and_an_endpoint() {
        assert_eq!(
            parse_path("/v1/gateways/default/ai-gateway/snapshots"),
            Some(("default/ai-gateway".into(), Endpoint::Snapshots))
        );
        assert_eq!(
            parse_path(&path("team-a/gw.1", Endpoint::Acks)),
            Some(("team-a/gw.1".into(), Endpoint::Acks))
        );
        for bad in [
            "/v1/gateways/default/snapshots",
            "/v1/gateways/default/gw/snapshots/x",
            "/v1/gateways//gw/acks",
            "/v1/gateways/a b/gw/acks",
            "/v2/gateways/default/gw/acks",
            "/v1/gateways/default/gw/other",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
        assert!(valid_gateway("default/gw"));
        assert!(!valid_gateway("gw"));
        assert!(!valid_gateway(&format!("default/{}", "x".repeat(254))));
    }

    #[test]
    fn acks_round_trip_and_errors_are_cut_on_a_character() {
        let ack: Ack =
            serde_json::from_str(r#"{"proxy":"p","version":3,"accepted":false,"error":"no"}"#)
                .unwrap();
        assert_eq!(ack.error.as_deref(), Some("no"));
        let ok = serde_json::to_string(&Ack {
            error: None,
            accepted: true,
            ..ack
        })
        .unwrap();
        assert_eq!(ok, r#"{"proxy":"p","version":3,"accepted":true}"#);
        assert_eq!(truncate("héllo".into(), 2), "hé");
        assert_eq!(truncate("hi".into(), 5), "hi");
    }
}
