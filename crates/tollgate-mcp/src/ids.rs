//! Request ids and progress tokens of upstream-originated requests, namespaced per upstream
//! without shared state.
//!
//! Upstreams send the caller requests of their own (`sampling/createMessage`,
//! `elicitation/create`, `roots/list`, `ping`) with ids each upstream numbers from its own
//! counter, so two upstreams' ids collide. The caller sees such an id as the string
//! `tg:<server prefix>:n<integer>` or `tg:<server prefix>:s<string>`; its response, and a
//! `notifications/cancelled` naming it, carry that id back, and any replica decodes the
//! server and the original id from it. Progress tokens that upstreams put in those requests
//! are encoded the same way, for the `notifications/progress` the caller sends back.
//!
//! The caller's own ids and progress tokens are never rewritten: the caller picks them unique
//! within its session, so they cannot collide on any upstream. (A caller using `tg:…` ids of
//! its own and cancelling one might have the cancellation routed as if it named an upstream
//! request; that only affects its own session.)

use serde_json::Value;

use crate::message::RequestId;
use crate::names::validate_prefix;

const MARK: &str = "tg:";

/// The id the caller sees for request `id` of upstream `server`.
pub fn encode_id(server: &str, id: &RequestId) -> RequestId {
    RequestId::String(match id {
        RequestId::Number(n) => format!("{MARK}{server}:n{n}"),
        RequestId::String(s) => format!("{MARK}{server}:s{s}"),
    })
}

/// The upstream and its original id, for an id made by [`encode_id`].
pub fn decode_id(id: &RequestId) -> Option<(String, RequestId)> {
    let RequestId::String(s) = id else {
        return None;
    };
    let (server, rest) = s.strip_prefix(MARK)?.split_once(':')?;
    validate_prefix(server).ok()?;
    let original = match rest.split_at_checked(1)? {
        ("n", n) => RequestId::Number(n.parse().ok()?),
        ("s", s) => RequestId::String(s.to_owned()),
        _ => return None,
    };
    Some((server.to_owned(), original))
}

/// The progress token the caller sees for `token` of upstream `server` (a string or an
/// integer; anything else is not a valid token and gives `None`).
pub fn encode_token(server: &str, token: &Value) -> Option<Value> {
    RequestId::from_value(token).map(|id| encode_id(server, &id).to_value())
}

/// The upstream and its original token, for a token made by [`encode_token`].
pub fn decode_token(token: &Value) -> Option<(String, Value)> {
    let id = RequestId::from_value(token)?;
    decode_id(&id).map(|(server, original)| (server, original.to_value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_round_trip() {
        for id in [
            RequestId::Number(0),
            RequestId::Number(-7),
            RequestId::Number(i64::MAX),
            RequestId::String(String::new()),
            RequestId::String("abc:def".into()),
            RequestId::String("tg:nested:n1".into()),
        ] {
            let encoded = encode_id("my_srv", &id);
            assert_eq!(decode_id(&encoded), Some(("my_srv".into(), id)));
        }
        assert_eq!(
            encode_id("gh", &RequestId::Number(3)),
            RequestId::String("tg:gh:n3".into())
        );
    }

    #[test]
    fn the_same_upstream_id_differs_per_server() {
        let id = RequestId::Number(1);
        assert_ne!(encode_id("a", &id), encode_id("b", &id));
        assert_ne!(
            encode_id("a", &RequestId::Number(1)),
            encode_id("a", &RequestId::String("1".into()))
        );
    }

    #[test]
    fn caller_ids_do_not_decode() {
        for id in [
            RequestId::Number(1),
            RequestId::String("1".into()),
            RequestId::String("tg:".into()),
            RequestId::String("tg:gh".into()),
            RequestId::String("tg:gh:".into()),
            RequestId::String("tg:gh:x1".into()),
            RequestId::String("tg:gh:nope".into()),
            RequestId::String("tg:Bad:n1".into()),
        ] {
            assert_eq!(decode_id(&id), None, "{id}");
        }
    }

    #[test]
    fn tokens_round_trip() {
        let encoded = encode_token("gh", &json!(5)).expect("integer token");
        assert_eq!(encoded, json!("tg:gh:n5"));
        assert_eq!(decode_token(&encoded), Some(("gh".into(), json!(5))));
        let encoded = encode_token("gh", &json!("t")).expect("string token");
        assert_eq!(decode_token(&encoded), Some(("gh".into(), json!("t"))));
        assert_eq!(encode_token("gh", &json!(1.5)), None);
        assert_eq!(decode_token(&json!("plain")), None);
    }
}
