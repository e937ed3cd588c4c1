//! Messages from an upstream, rewritten for the caller.
//!
//! - Requests (`sampling/createMessage`, `elicitation/create`, `roots/list`, `ping`): the id
//!   and any `_meta.progressToken` are namespaced ([`crate::ids`]).
//! - `notifications/cancelled`: its `requestId` names one of the upstream's own requests, so
//!   it is namespaced the same way.
//! - `notifications/resources/updated`: the `uri` gets the server prefix.
//! - `notifications/message` (logging): `logger` becomes `<prefix>` or `<prefix>/<logger>`,
//!   so the caller can tell the servers' logs apart.
//! - `notifications/progress`: unchanged; its token is the caller's own.
//! - Other notifications (`…/list_changed` and the rest): unchanged.
//! - Responses to a forwarded request: ids are the caller's own, unchanged; results that carry
//!   resource URIs get them prefixed ([`rewrite_result`]) so the caller can read them through
//!   the gateway.

use serde_json::Value;

use crate::aggregate::listing::prefix_ui_links;
use crate::ids::{encode_id, encode_token};
use crate::message::{Message, RequestId};
use crate::names::prefix_uri;

/// Rewrites a message from upstream `server` for the caller. `answering` is the method of the
/// caller's request a response answers (the proxy knows which request it forwarded).
pub fn from_upstream(server: &str, message: Message, answering: Option<&str>) -> Message {
    match message {
        Message::Request(mut request) => {
            request.id = encode_id(server, &request.id);
            if let Some(token) = request
                .params
                .as_mut()
                .and_then(|p| p.get_mut("_meta"))
                .and_then(|m| m.get_mut("progressToken"))
                && let Some(encoded) = encode_token(server, token)
            {
                *token = encoded;
            }
            Message::Request(request)
        }
        Message::Notification(mut notification) => {
            if let Some(params) = notification.params.as_mut() {
                rewrite_notification(server, &notification.method, params);
            }
            Message::Notification(notification)
        }
        Message::Response(mut response) => {
            if let Some(method) = answering {
                rewrite_result(server, method, &mut response.result);
            }
            Message::Response(response)
        }
        error @ Message::Error(_) => error,
    }
}

fn rewrite_notification(server: &str, method: &str, params: &mut Value) {
    match method {
        "notifications/resources/updated" => {
            if let Some(Value::String(uri)) = params.get_mut("uri") {
                *uri = prefix_uri(server, uri);
            }
        }
        "notifications/cancelled" => {
            if let Some(id) = params.get_mut("requestId")
                && let Some(original) = RequestId::from_value(id)
            {
                *id = encode_id(server, &original).to_value();
            }
        }
        "notifications/message" => {
            if let Value::Object(params) = params {
                let logger = match params.get("logger").and_then(Value::as_str) {
                    Some(logger) => format!("{server}/{logger}"),
                    None => server.to_owned(),
                };
                params.insert("logger".into(), Value::String(logger));
            }
        }
        _ => {}
    }
}

/// Prefixes the resource URIs in the result of `method` from upstream `server`:
/// `resources/read` contents, the `resource_link` and embedded `resource` blocks of
/// `tools/call` content and of `prompts/get` messages, and the UI links of a tool.
pub fn rewrite_result(server: &str, method: &str, result: &mut Value) {
    match method {
        "resources/read" => {
            if let Some(Value::Array(contents)) = result.get_mut("contents") {
                for content in contents {
                    prefix_uri_member(server, content);
                }
            }
        }
        "tools/call" => {
            if let Some(Value::Array(blocks)) = result.get_mut("content") {
                for block in blocks {
                    rewrite_content_block(server, block);
                }
            }
        }
        "prompts/get" => {
            if let Some(Value::Array(messages)) = result.get_mut("messages") {
                for message in messages {
                    if let Some(block) = message.get_mut("content") {
                        rewrite_content_block(server, block);
                    }
                }
            }
        }
        _ => {}
    }
    if method == "tools/call"
        && let Some(Value::Object(_)) = result.get("_meta")
    {
        prefix_ui_links(server, result);
    }
}

fn prefix_uri_member(server: &str, object: &mut Value) {
    if let Some(Value::String(uri)) = object.get_mut("uri") {
        *uri = prefix_uri(server, uri);
    }
}

fn rewrite_content_block(server: &str, block: &mut Value) {
    match block.get("type").and_then(Value::as_str) {
        Some("resource_link") => prefix_uri_member(server, block),
        Some("resource") => {
            if let Some(resource) = block.get_mut("resource") {
                prefix_uri_member(server, resource);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::decode_id;
    use crate::message::{ErrorObject, ErrorResponse, Notification, Request, Response};
    use serde_json::json;

    fn notification(method: &str, params: Value) -> Message {
        Message::Notification(Notification {
            method: method.into(),
            params: Some(params),
        })
    }

    fn params(message: &Message) -> Value {
        message.to_value()["params"].clone()
    }

    #[test]
    fn upstream_requests_get_namespaced_ids_and_tokens() {
        let request = Message::Request(Request {
            id: RequestId::Number(0),
            method: "elicitation/create".into(),
            params: Some(json!({"message": "Which repo?", "_meta": {"progressToken": 7}})),
        });
        let Message::Request(out) = from_upstream("github", request, None) else {
            panic!("still a request");
        };
        assert_eq!(
            decode_id(&out.id),
            Some(("github".into(), RequestId::Number(0)))
        );
        assert_eq!(
            out.params,
            Some(json!({"message": "Which repo?", "_meta": {"progressToken": "tg:github:n7"}}))
        );
        // The same id from another upstream does not collide.
        let other = Message::Request(Request {
            id: RequestId::Number(0),
            method: "roots/list".into(),
            params: None,
        });
        let Message::Request(other) = from_upstream("fs", other, None) else {
            panic!("still a request");
        };
        assert_ne!(other.id, out.id);
    }

    #[test]
    fn notifications_are_rewritten() {
        let updated = from_upstream(
            "fs",
            notification(
                "notifications/resources/updated",
                json!({"uri": "file:///a"}),
            ),
            None,
        );
        assert_eq!(params(&updated), json!({"uri": "fs+file:///a"}));
        let cancelled = from_upstream(
            "fs",
            notification(
                "notifications/cancelled",
                json!({"requestId": 3, "reason": "timeout"}),
            ),
            None,
        );
        assert_eq!(
            params(&cancelled),
            json!({"requestId": "tg:fs:n3", "reason": "timeout"})
        );
        let log = from_upstream(
            "fs",
            notification(
                "notifications/message",
                json!({"level": "info", "data": "x"}),
            ),
            None,
        );
        assert_eq!(params(&log)["logger"], "fs");
        let log = from_upstream(
            "fs",
            notification(
                "notifications/message",
                json!({"level": "info", "logger": "db", "data": "x"}),
            ),
            None,
        );
        assert_eq!(params(&log)["logger"], "fs/db");
        for untouched in [
            notification(
                "notifications/progress",
                json!({"progressToken": "caller-1", "progress": 5}),
            ),
            notification("notifications/tools/list_changed", json!({})),
        ] {
            assert_eq!(from_upstream("fs", untouched.clone(), None), untouched);
        }
    }

    #[test]
    fn results_carrying_uris_are_prefixed() {
        let response = Message::Response(Response {
            id: RequestId::Number(5),
            result: json!({"contents": [{"uri": "file:///a", "text": "hi"}, {"uri": "file:///b", "blob": "AA=="}]}),
        });
        let out = from_upstream("fs", response, Some("resources/read"));
        assert_eq!(
            out.to_value()["result"],
            json!({"contents": [{"uri": "fs+file:///a", "text": "hi"}, {"uri": "fs+file:///b", "blob": "AA=="}]})
        );
        assert_eq!(out.to_value()["id"], 5, "the caller's id is kept");

        let mut call = json!({"content": [
            {"type": "text", "text": "see"},
            {"type": "resource_link", "uri": "file:///c", "name": "c"},
            {"type": "resource", "resource": {"uri": "file:///d", "text": "d"}}
        ], "structuredContent": {"uri": "file:///untouched"}});
        rewrite_result("fs", "tools/call", &mut call);
        assert_eq!(call["content"][0], json!({"type": "text", "text": "see"}));
        assert_eq!(call["content"][1]["uri"], "fs+file:///c");
        assert_eq!(call["content"][2]["resource"]["uri"], "fs+file:///d");
        assert_eq!(call["structuredContent"]["uri"], "file:///untouched");

        let mut prompt = json!({"messages": [
            {"role": "user", "content": {"type": "resource", "resource": {"uri": "x://y", "text": ""}}},
            {"role": "user", "content": {"type": "text", "text": "hi"}}
        ]});
        rewrite_result("gh", "prompts/get", &mut prompt);
        assert_eq!(
            prompt["messages"][0]["content"]["resource"]["uri"],
            "gh+x://y"
        );

        let mut other = json!({"completion": {"values": ["file:///z"]}});
        let before = other.clone();
        rewrite_result("gh", "completion/complete", &mut other);
        assert_eq!(other, before);
    }

    #[test]
    fn errors_and_unanswered_responses_pass_through() {
        let error = Message::Error(ErrorResponse {
            id: Some(RequestId::Number(1)),
            error: ErrorObject::new(-32602, "Unknown tool: x"),
        });
        assert_eq!(
            from_upstream("gh", error.clone(), Some("tools/call")),
            error
        );
        let response = Message::Response(Response {
            id: RequestId::Number(1),
            result: json!({"contents": [{"uri": "a://b"}]}),
        });
        assert_eq!(from_upstream("gh", response.clone(), None), response);
    }
}
