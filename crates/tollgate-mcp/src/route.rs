//! Where a caller's message goes, with names and URIs unprefixed.
//!
//! | caller sends | goes to |
//! | --- | --- |
//! | `initialize`, `ping` | answered by the gateway |
//! | `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list` | every upstream ([`crate::aggregate::listing`]) |
//! | `tools/call`, `prompts/get` (by `name`) | the owning upstream, name unprefixed; tools after the policy |
//! | `resources/read`, `resources/subscribe`, `resources/unsubscribe` (by `uri`) | the owning upstream, URI unprefixed |
//! | `completion/complete` (by `ref.name` or `ref.uri`) | the owning upstream |
//! | `logging/setLevel` | every upstream |
//! | anything else | refused with [`METHOD_NOT_FOUND`] |
//! | `notifications/cancelled` | the upstream whose request it names ([`crate::ids`]), else every upstream (the caller's request ids are unique in its session, so only the upstream handling it acts) |
//! | `notifications/progress` | the upstream whose progress token it names, else dropped |
//! | `notifications/initialized`, `notifications/roots/list_changed` | every upstream |
//! | other notifications | dropped |
//! | responses (to upstream requests) | the upstream named by the id, with its original id |

use serde_json::{Value, json};

use crate::aggregate::listing::ListKind;
use crate::ids::{decode_id, decode_token};
use crate::message::{
    ErrorObject, ErrorResponse, INVALID_PARAMS, METHOD_NOT_FOUND, Message, NOT_PERMITTED,
    Notification, RESOURCE_NOT_FOUND, Request, Response, UPSTREAM_UNAVAILABLE,
};
use crate::names::{split_name, split_uri};
use crate::policy::{Identity, ToolPolicy};

/// What the proxy knows about a server prefix in the caller's session.
#[derive(Clone, Copy, Debug)]
pub enum Server<'a> {
    /// Part of the session and configured, with its tool policy.
    Available(&'a ToolPolicy),
    /// Configured, but not part of this session (it failed to initialize, or was added after
    /// the session began) or currently unreachable.
    Unavailable,
    /// Not a configured server.
    Unknown,
}

/// Where a caller's request goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// Answer `initialize` ([`crate::aggregate::initialize`]).
    Initialize,
    /// Answer `ping` with an empty result.
    Ping,
    /// Merge a listing from every upstream.
    List(ListKind),
    /// Forward to one upstream, with these params.
    Upstream {
        /// The server's prefix.
        server: String,
        /// The params, names and URIs unprefixed.
        params: Value,
    },
    /// Forward to every upstream of the session, and answer with an empty result.
    Broadcast,
}

/// Routes a caller's request. `lookup` tells what a server prefix is in this session.
pub fn route_request<'a>(
    request: &Request,
    identity: &Identity,
    lookup: impl Fn(&str) -> Server<'a>,
) -> Result<Route, ErrorObject> {
    let params = request.params.as_ref();
    match request.method.as_str() {
        "initialize" => Ok(Route::Initialize),
        "ping" => Ok(Route::Ping),
        "logging/setLevel" => Ok(Route::Broadcast),
        "tools/call" => route_tool_call(params, identity, lookup),
        "prompts/get" => {
            let name = string_param(params, "name", &request.method)?;
            let (server, upstream) = by_name(name, &lookup, "prompt")?;
            Ok(upstream_route(server, params, &["name"], upstream))
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = string_param(params, "uri", &request.method)?;
            let (server, upstream) = by_uri(uri, &lookup)?;
            Ok(upstream_route(server, params, &["uri"], upstream))
        }
        "completion/complete" => route_completion(params, lookup),
        method => match ListKind::from_method(method) {
            Some(kind) => Ok(Route::List(kind)),
            None => Err(ErrorObject::new(
                METHOD_NOT_FOUND,
                format!("method {method:?} is not supported by this gateway"),
            )),
        },
    }
}

fn route_tool_call<'a>(
    params: Option<&Value>,
    identity: &Identity,
    lookup: impl Fn(&str) -> Server<'a>,
) -> Result<Route, ErrorObject> {
    let name = string_param(params, "name", "tools/call")?;
    let unknown = || {
        ErrorObject::new(INVALID_PARAMS, format!("unknown tool {name:?}"))
            .with_data(json!({ "tool": name }))
    };
    let (server, tool) = split_name(name).ok_or_else(unknown)?;
    let policy = match lookup(server) {
        Server::Available(policy) => policy,
        Server::Unavailable => return Err(unavailable(server)),
        Server::Unknown => return Err(unknown()),
    };
    if !policy.permits_tool(identity, tool) {
        return Err(
            ErrorObject::new(NOT_PERMITTED, format!("tool {name:?} is not permitted"))
                .with_data(json!({ "tool": name })),
        );
    }
    let arguments = params
        .and_then(|p| p.get("arguments"))
        .unwrap_or(&Value::Null);
    if let Some(refusal) = policy.refusing_rule(tool, arguments) {
        return Err(ErrorObject::new(
            NOT_PERMITTED,
            format!(
                "tool {name:?} is not permitted with these arguments: {}",
                refusal.message
            ),
        )
        .with_data(json!({ "tool": name, "rule": refusal.rule })));
    }
    Ok(upstream_route(server, params, &["name"], tool))
}

fn route_completion<'a>(
    params: Option<&Value>,
    lookup: impl Fn(&str) -> Server<'a>,
) -> Result<Route, ErrorObject> {
    let reference = params.and_then(|p| p.get("ref"));
    let kind = reference
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str);
    let (server, key, upstream) = match kind {
        Some("ref/prompt") => {
            let name = string_param(reference, "name", "completion/complete ref")?;
            let (server, upstream) = by_name(name, &lookup, "prompt")?;
            (server.to_owned(), "name", upstream)
        }
        Some("ref/resource") => {
            let uri = string_param(reference, "uri", "completion/complete ref")?;
            let (server, upstream) = by_uri(uri, &lookup)?;
            (server, "uri", upstream)
        }
        _ => {
            return Err(ErrorObject::new(
                INVALID_PARAMS,
                "completion/complete needs a ref of type \"ref/prompt\" or \"ref/resource\"",
            ));
        }
    };
    Ok(upstream_route(server, params, &["ref", key], upstream))
}

fn string_param<'v>(
    params: Option<&'v Value>,
    key: &str,
    what: &str,
) -> Result<&'v str, ErrorObject> {
    params
        .and_then(|p| p.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorObject::new(INVALID_PARAMS, format!("{what} needs a string {key:?}")))
}

fn unavailable(server: &str) -> ErrorObject {
    ErrorObject::new(
        UPSTREAM_UNAVAILABLE,
        format!("MCP server {server:?} is not available in this session"),
    )
    .with_data(json!({ "server": server }))
}

/// The server owning a prefixed prompt name, and the upstream name.
fn by_name<'n, 'a>(
    name: &'n str,
    lookup: &impl Fn(&str) -> Server<'a>,
    what: &str,
) -> Result<(&'n str, &'n str), ErrorObject> {
    let unknown = || {
        ErrorObject::new(INVALID_PARAMS, format!("unknown {what} {name:?}"))
            .with_data(json!({ what: name }))
    };
    let (server, upstream) = split_name(name).ok_or_else(unknown)?;
    match lookup(server) {
        Server::Available(_) => Ok((server, upstream)),
        Server::Unavailable => Err(unavailable(server)),
        Server::Unknown => Err(unknown()),
    }
}

/// The server owning a prefixed URI, and the upstream URI.
fn by_uri<'u, 'a>(
    uri: &'u str,
    lookup: &impl Fn(&str) -> Server<'a>,
) -> Result<(String, &'u str), ErrorObject> {
    let not_found = || {
        ErrorObject::new(RESOURCE_NOT_FOUND, format!("resource not found: {uri:?}"))
            .with_data(json!({ "uri": uri }))
    };
    let (server, upstream) = split_uri(uri).ok_or_else(not_found)?;
    match lookup(&server) {
        Server::Available(_) => Ok((server, upstream)),
        Server::Unavailable => Err(unavailable(&server)),
        Server::Unknown => Err(not_found()),
    }
}

/// The params with the member at `path` replaced by `value`.
fn upstream_route(
    server: impl Into<String>,
    params: Option<&Value>,
    path: &[&str],
    value: &str,
) -> Route {
    let mut params = params.cloned().unwrap_or_else(|| json!({}));
    let mut slot = &mut params;
    for key in path {
        slot = &mut slot[*key];
    }
    *slot = Value::from(value);
    Route::Upstream {
        server: server.into(),
        params,
    }
}

/// Where a caller's notification goes.
#[derive(Clone, Debug, PartialEq)]
pub enum NotificationRoute {
    /// To every upstream of the session, as it is.
    Broadcast(Notification),
    /// To one upstream, rewritten.
    Upstream {
        /// The server's prefix.
        server: String,
        /// The notification to send it.
        notification: Notification,
    },
    /// Nowhere.
    Drop,
}

/// Routes a caller's notification.
pub fn route_notification(notification: &Notification) -> NotificationRoute {
    let params = notification.params.as_ref();
    let rewritten = |key: &str, value: Value| {
        let mut notification = notification.clone();
        if let Some(params) = notification.params.as_mut() {
            params[key] = value;
        }
        notification
    };
    match notification.method.as_str() {
        "notifications/initialized" | "notifications/roots/list_changed" => {
            NotificationRoute::Broadcast(notification.clone())
        }
        "notifications/cancelled" => {
            let target = params
                .and_then(|p| p.get("requestId"))
                .and_then(crate::message::RequestId::from_value)
                .and_then(|id| decode_id(&id));
            match target {
                Some((server, id)) => NotificationRoute::Upstream {
                    server,
                    notification: rewritten("requestId", id.to_value()),
                },
                None => NotificationRoute::Broadcast(notification.clone()),
            }
        }
        "notifications/progress" => {
            match params
                .and_then(|p| p.get("progressToken"))
                .and_then(decode_token)
            {
                Some((server, token)) => NotificationRoute::Upstream {
                    server,
                    notification: rewritten("progressToken", token),
                },
                None => NotificationRoute::Drop,
            }
        }
        _ => NotificationRoute::Drop,
    }
}

/// Routes a caller's response (or error response) to an upstream's request: the server and
/// the message with the upstream's original id. `None` when the id is not one the gateway
/// made (the proxy answers HTTP 400).
pub fn route_response(message: &Message) -> Option<(String, Message)> {
    match message {
        Message::Response(response) => {
            let (server, id) = decode_id(&response.id)?;
            Some((
                server,
                Message::Response(Response {
                    id,
                    result: response.result.clone(),
                }),
            ))
        }
        Message::Error(error) => {
            let (server, id) = decode_id(error.id.as_ref()?)?;
            Some((
                server,
                Message::Error(ErrorResponse {
                    id: Some(id),
                    error: error.error.clone(),
                }),
            ))
        }
        Message::Request(_) | Message::Notification(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{encode_id, encode_token};
    use crate::message::RequestId;
    use crate::policy::{ArgumentRule, ToolRules};

    struct Fixture {
        github: ToolPolicy,
        fs: ToolPolicy,
    }

    impl Fixture {
        fn new() -> Self {
            let github = ToolPolicy::new(
                ToolRules {
                    allow: vec![],
                    deny: vec!["delete_*".into()],
                },
                vec![],
                vec![ArgumentRule {
                    tool: "run_*".into(),
                    argument: "command".into(),
                    deny: r"rm\s+-rf".into(),
                }],
            )
            .expect("valid");
            Self {
                github,
                fs: ToolPolicy::allow_all(),
            }
        }

        fn lookup<'a>(&'a self) -> impl Fn(&str) -> Server<'a> + 'a {
            move |server| match server {
                "github" => Server::Available(&self.github),
                "my_fs" => Server::Available(&self.fs),
                "down" => Server::Unavailable,
                _ => Server::Unknown,
            }
        }
    }

    fn request(method: &str, params: Value) -> Request {
        Request {
            id: RequestId::Number(1),
            method: method.into(),
            params: Some(params),
        }
    }

    fn route(method: &str, params: Value) -> Result<Route, ErrorObject> {
        let f = Fixture::new();
        route_request(&request(method, params), &Identity::default(), f.lookup())
    }

    fn upstream(server: &str, params: Value) -> Result<Route, ErrorObject> {
        Ok(Route::Upstream {
            server: server.into(),
            params,
        })
    }

    #[test]
    fn local_listing_and_broadcast_methods() {
        assert_eq!(route("initialize", json!({})), Ok(Route::Initialize));
        assert_eq!(route("ping", json!({})), Ok(Route::Ping));
        assert_eq!(
            route("tools/list", json!({})),
            Ok(Route::List(ListKind::Tools))
        );
        assert_eq!(
            route("resources/templates/list", json!({})),
            Ok(Route::List(ListKind::ResourceTemplates))
        );
        assert_eq!(
            route("logging/setLevel", json!({"level": "info"})),
            Ok(Route::Broadcast)
        );
        let e = route("tasks/get", json!({})).expect_err("unknown method");
        assert_eq!(e.code, METHOD_NOT_FOUND);
        assert!(e.message.contains("tasks/get"));
    }

    #[test]
    fn tool_calls_go_to_the_owner_unprefixed() {
        assert_eq!(
            route(
                "tools/call",
                json!({"name": "github__create_issue", "arguments": {"title": "x"}, "_meta": {"progressToken": 9}})
            ),
            upstream(
                "github",
                json!({"name": "create_issue", "arguments": {"title": "x"}, "_meta": {"progressToken": 9}})
            )
        );
        assert_eq!(
            route("tools/call", json!({"name": "my_fs__read__file"})),
            upstream("my_fs", json!({"name": "read__file"}))
        );
    }

    #[test]
    fn tool_call_refusals() {
        let e = route("tools/call", json!({"name": "nope__x"})).expect_err("unknown server");
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("\"nope__x\""), "{}", e.message);
        let e = route("tools/call", json!({"name": "unprefixed"})).expect_err("no prefix");
        assert_eq!(
            (e.code, e.data),
            (INVALID_PARAMS, Some(json!({"tool": "unprefixed"})))
        );
        let e = route("tools/call", json!({"arguments": {}})).expect_err("no name");
        assert_eq!(e.code, INVALID_PARAMS);
        let e = route("tools/call", json!({"name": "down__x"})).expect_err("unavailable");
        assert_eq!(
            (e.code, e.data),
            (UPSTREAM_UNAVAILABLE, Some(json!({"server": "down"})))
        );
        let e = route("tools/call", json!({"name": "github__delete_repo"})).expect_err("denied");
        assert_eq!(e.code, NOT_PERMITTED);
        assert!(e.message.contains("not permitted"), "{}", e.message);
        let e = route(
            "tools/call",
            json!({"name": "github__run_script", "arguments": {"command": "rm -rf /"}}),
        )
        .expect_err("argument rule");
        assert_eq!(e.code, NOT_PERMITTED);
        assert_eq!(
            e.data,
            Some(json!({"tool": "github__run_script", "rule": 0}))
        );
        assert!(e.message.contains("argument rule 0"), "{}", e.message);
        assert!(
            route(
                "tools/call",
                json!({"name": "github__run_script", "arguments": {"command": "ls"}})
            )
            .is_ok()
        );
    }

    #[test]
    fn the_policy_sees_the_callers_identity() {
        let policy = ToolPolicy::new(
            ToolRules {
                allow: vec!["get_*".into()],
                deny: vec![],
            },
            vec![crate::policy::Grant {
                teams: vec!["admins".into()],
                ..Default::default()
            }],
            vec![],
        )
        .expect("valid");
        let lookup = |_: &str| Server::Available(&policy);
        let call = request("tools/call", json!({"name": "gh__set_secret"}));
        let admin = Identity {
            key_id: "k".into(),
            team: Some("admins".into()),
            user: None,
        };
        assert!(route_request(&call, &admin, lookup).is_ok());
        assert_eq!(
            route_request(&call, &Identity::default(), lookup).map_err(|e| e.code),
            Err(NOT_PERMITTED)
        );
    }

    #[test]
    fn prompts_and_resources_go_to_the_owner() {
        assert_eq!(
            route(
                "prompts/get",
                json!({"name": "github__triage", "arguments": {"n": "1"}})
            ),
            upstream("github", json!({"name": "triage", "arguments": {"n": "1"}}))
        );
        let e = route("prompts/get", json!({"name": "x__y"})).expect_err("unknown");
        assert_eq!(e.code, INVALID_PARAMS);
        for method in [
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
        ] {
            assert_eq!(
                route(method, json!({"uri": "my.fs+file:///etc/hosts"})),
                upstream("my_fs", json!({"uri": "file:///etc/hosts"}))
            );
        }
        assert_eq!(
            route("resources/read", json!({"uri": "github:notes/a"})),
            upstream("github", json!({"uri": "notes/a"}))
        );
        for uri in ["file:///etc/hosts", "other+file:///x"] {
            let e = route("resources/read", json!({"uri": uri})).expect_err(uri);
            assert_eq!(e.code, RESOURCE_NOT_FOUND);
        }
        let e = route("resources/read", json!({"uri": "down+x://y"})).expect_err("down");
        assert_eq!(e.code, UPSTREAM_UNAVAILABLE);
        let e = route("resources/read", json!({})).expect_err("no uri");
        assert_eq!(e.code, INVALID_PARAMS);
    }

    #[test]
    fn completions_follow_their_reference() {
        assert_eq!(
            route(
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "github__triage"}, "argument": {"name": "a", "value": "b"}})
            ),
            upstream(
                "github",
                json!({"ref": {"type": "ref/prompt", "name": "triage"}, "argument": {"name": "a", "value": "b"}})
            )
        );
        assert_eq!(
            route(
                "completion/complete",
                json!({"ref": {"type": "ref/resource", "uri": "github+repo://{owner}"}, "argument": {}})
            ),
            upstream(
                "github",
                json!({"ref": {"type": "ref/resource", "uri": "repo://{owner}"}, "argument": {}})
            )
        );
        let e = route("completion/complete", json!({"ref": {"type": "ref/other"}})).expect_err("");
        assert_eq!(e.code, INVALID_PARAMS);
    }

    fn notification(method: &str, params: Value) -> Notification {
        Notification {
            method: method.into(),
            params: Some(params),
        }
    }

    #[test]
    fn cancellations_of_upstream_requests_go_to_that_upstream() {
        let id = encode_id("github", &RequestId::Number(4));
        let n = notification(
            "notifications/cancelled",
            json!({"requestId": id.to_value(), "reason": "user"}),
        );
        assert_eq!(
            route_notification(&n),
            NotificationRoute::Upstream {
                server: "github".into(),
                notification: notification(
                    "notifications/cancelled",
                    json!({"requestId": 4, "reason": "user"})
                ),
            }
        );
        // The caller cancelling its own request: every upstream, unchanged.
        let own = notification("notifications/cancelled", json!({"requestId": 12}));
        assert_eq!(
            route_notification(&own),
            NotificationRoute::Broadcast(own.clone())
        );
    }

    #[test]
    fn progress_and_other_notifications() {
        let token = encode_token("my_fs", &json!("p1")).expect("token");
        let n = notification(
            "notifications/progress",
            json!({"progressToken": token, "progress": 1}),
        );
        assert_eq!(
            route_notification(&n),
            NotificationRoute::Upstream {
                server: "my_fs".into(),
                notification: notification(
                    "notifications/progress",
                    json!({"progressToken": "p1", "progress": 1})
                ),
            }
        );
        let stray = notification("notifications/progress", json!({"progressToken": 3}));
        assert_eq!(route_notification(&stray), NotificationRoute::Drop);
        for method in [
            "notifications/initialized",
            "notifications/roots/list_changed",
        ] {
            let n = notification(method, json!({}));
            assert_eq!(
                route_notification(&n),
                NotificationRoute::Broadcast(n.clone())
            );
        }
        let n = notification("notifications/unknown", json!({}));
        assert_eq!(route_notification(&n), NotificationRoute::Drop);
    }

    #[test]
    fn responses_go_back_to_the_requesting_upstream() {
        let id = encode_id("github", &RequestId::String("elicit-1".into()));
        let response = Message::Response(Response {
            id,
            result: json!({"action": "accept", "content": {"ok": true}}),
        });
        assert_eq!(
            route_response(&response),
            Some((
                "github".into(),
                Message::Response(Response {
                    id: RequestId::String("elicit-1".into()),
                    result: json!({"action": "accept", "content": {"ok": true}}),
                })
            ))
        );
        let error = Message::Error(ErrorResponse {
            id: Some(encode_id("my_fs", &RequestId::Number(2))),
            error: ErrorObject::new(-1, "user rejected"),
        });
        assert_eq!(
            route_response(&error).map(|(s, m)| (s, m.to_value()["id"].clone())),
            Some(("my_fs".into(), json!(2)))
        );
        let stray = Message::Response(Response {
            id: RequestId::Number(2),
            result: json!({}),
        });
        assert_eq!(route_response(&stray), None);
    }
}
