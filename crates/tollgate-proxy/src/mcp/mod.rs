//! The MCP gateway's HTTP side: an MCP endpoint of the configuration (one path, several
//! upstream MCP servers) served over Streamable HTTP. The protocol logic — messages, names,
//! policy, sessions, merging — is `tollgate-mcp`'s; this module reads the caller's request,
//! calls the upstreams and writes the answer.
//!
//! POST carries one JSON-RPC message; the answer is JSON, or an SSE stream that relays the
//! upstream's own notifications and requests as they arrive, then its answer. DELETE ends the session upstream. GET (a standalone stream of server messages)
//! answers 405, which the specification allows. An upstream that lost its session is
//! initialized again and sent the message once more (`Gateway::send_in_session`).

mod events;
mod legacy_sse;
pub(crate) mod metadata;
mod record;
mod upstream;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::{Identity, McpEndpoint, McpServer, Snapshot};
use tollgate_mcp::aggregate::UpstreamFailure;
use tollgate_mcp::aggregate::initialize::{self, Initialized};
use tollgate_mcp::aggregate::listing::{self, UpstreamPage};
use tollgate_mcp::message::{self, ErrorObject, Message, Request};
use tollgate_mcp::names::MAX_TOOL_NAME_LEN;
use tollgate_mcp::policy::{self, ToolPolicy};
use tollgate_mcp::route::{self, NotificationRoute, Route, Server};
use tollgate_mcp::session::{self, SessionKey, SessionState, UpstreamSession};

use crate::body::ProxyBody;
use crate::budget::{Consumed, Demand, Ledger, Verdict, WorstPrice};
use crate::error::ProxyError;
use crate::upstream::UpstreamClients;
use events::EventStream;
pub(crate) use record::Recorder;
use record::ToolCall;
use upstream::{Answer, Opened, Upstream};

/// The largest message a caller may send.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long a session lives.
const SESSION_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The header carrying the session.
const SESSION_HEADER: &str = "mcp-session-id";

/// What the MCP endpoints of one snapshot need beyond the configuration: compiled tool
/// policies and session keys.
#[derive(Default)]
pub(crate) struct McpRuntime {
    endpoints: Vec<EndpointRuntime>,
}

impl std::fmt::Debug for McpRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpRuntime")
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

struct EndpointRuntime {
    policies: BTreeMap<String, ToolPolicy>,
    key: Option<SessionKey>,
}

impl McpRuntime {
    /// Compiles what `snapshot`'s MCP endpoints need (the controller validated it all).
    pub(crate) fn new(snapshot: &Snapshot) -> Self {
        let endpoints = snapshot
            .config
            .mcp
            .iter()
            .map(|endpoint| EndpointRuntime {
                policies: endpoint
                    .servers
                    .iter()
                    .filter_map(|server| {
                        let policy = ToolPolicy::new(
                            server.rules.clone(),
                            server.grants.clone(),
                            server.argument_rules.clone(),
                        )
                        .ok()?;
                        Some((server.prefix.clone(), policy))
                    })
                    .collect(),
                key: SessionKey::new(&sha256(endpoint.session_key.expose().as_bytes())).ok(),
            })
            .collect();
        Self { endpoints }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The index of the MCP endpoint serving `path`, if any.
pub(crate) fn endpoint_for(snapshot: &Snapshot, path: &str) -> Option<usize> {
    snapshot
        .config
        .mcp
        .iter()
        .position(|endpoint| endpoint.paths.iter().any(|p| p == path))
}

/// One caller request to an MCP endpoint.
pub(crate) struct Call<'a> {
    pub(crate) snapshot: &'a Arc<Snapshot>,
    pub(crate) ledger: &'a Arc<Ledger>,
    pub(crate) endpoint: &'a McpEndpoint,
    pub(crate) runtime: &'a McpRuntime,
    pub(crate) index: usize,
    pub(crate) identity: &'a Identity,
    pub(crate) clients: &'a Arc<UpstreamClients>,
    pub(crate) recorder: Recorder,
}

/// Serves one request: `method` and `headers` of the caller's request, `body` read whole.
pub(crate) async fn serve(
    call: Call<'_>,
    method: &Method,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Response<ProxyBody> {
    if !call.endpoint.access.iter().all(|a| a.allows(call.identity)) {
        return jsonrpc_error(
            StatusCode::FORBIDDEN,
            ErrorObject::new(
                message::NOT_PERMITTED,
                "this MCP endpoint is not open to the caller",
            ),
        );
    }
    let runtime = &call.runtime.endpoints[call.index];
    let Some(key) = &runtime.key else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorObject::new(
                message::INTERNAL_ERROR,
                "the endpoint has no usable session key",
            ),
        );
    };
    let identity = policy::Identity {
        key_id: call.identity.key_id.clone(),
        team: call.identity.team.clone(),
        user: call.identity.user.clone(),
    };
    let gateway = Gateway {
        snapshot: call.snapshot,
        ledger: call.ledger,
        caller: call.identity,
        endpoint: call.endpoint,
        policies: &runtime.policies,
        clients: call.clients,
        recorder: &call.recorder,
        key,
    };
    let session_header = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    if *method == Method::DELETE {
        return match open(session_header, key, &identity) {
            Ok(state) => {
                gateway.delete(&state).await;
                Response::new(ProxyBody::full(Bytes::new()))
            }
            Err((status, error)) => jsonrpc_error(status, error),
        };
    }
    if *method == Method::GET {
        return match open(session_header, key, &identity) {
            Ok(state) => gateway.listen(&state).await,
            Err((status, error)) => jsonrpc_error(status, error),
        };
    }
    if *method != Method::POST {
        return method_not_allowed();
    }
    let parsed = match message::parse(&body, MAX_MESSAGE) {
        Ok(parsed) => parsed,
        Err(error) => {
            return json(
                StatusCode::BAD_REQUEST,
                Message::Error(error).to_value(),
                None,
            );
        }
    };
    match parsed {
        Message::Request(request) if request.method == "initialize" => {
            gateway.initialize(request, &identity).await
        }
        parsed => {
            let state = match open(session_header, key, &identity) {
                Ok(state) => state,
                Err((status, error)) => return jsonrpc_error(status, error),
            };
            match parsed {
                Message::Request(request) => gateway.request(request, &state, &identity).await,
                Message::Notification(notification) => {
                    match route::route_notification(&notification) {
                        NotificationRoute::Broadcast(notification) => {
                            gateway
                                .broadcast(&state, &Message::Notification(notification))
                                .await;
                        }
                        NotificationRoute::Upstream {
                            server,
                            notification,
                        } => {
                            gateway
                                .send_to(&state, &server, &Message::Notification(notification))
                                .await;
                        }
                        NotificationRoute::Drop => {}
                    }
                    accepted()
                }
                response @ (Message::Response(_) | Message::Error(_)) => {
                    match route::route_response(&response) {
                        Some((server, message)) => {
                            gateway.send_to(&state, &server, &message).await;
                            accepted()
                        }
                        None => json(
                            StatusCode::BAD_REQUEST,
                            Message::Error(
                                ErrorObject::new(
                                    message::INVALID_REQUEST,
                                    "this response answers no request of an upstream",
                                )
                                .into_response(None),
                            )
                            .to_value(),
                            None,
                        ),
                    }
                }
            }
        }
    }
}

/// Opens the caller's session, or says why not, with the status the specification asks for.
fn open(
    header: Option<&str>,
    key: &SessionKey,
    identity: &policy::Identity,
) -> Result<SessionState, (StatusCode, ErrorObject)> {
    let Some(token) = header else {
        return Err((
            StatusCode::BAD_REQUEST,
            ErrorObject::new(
                message::INVALID_REQUEST,
                "Mcp-Session-Id is required after initialize",
            ),
        ));
    };
    session::open(
        token,
        std::slice::from_ref(key),
        &identity.key_id,
        unix_now(),
        SESSION_MAX_AGE.as_secs(),
    )
    .map_err(|error| (StatusCode::NOT_FOUND, error.to_error()))
}

/// The upstreams of one endpoint and how to reach them.
struct Gateway<'a> {
    snapshot: &'a Arc<Snapshot>,
    /// Where per-tool call limits are counted.
    ledger: &'a Arc<Ledger>,
    caller: &'a Identity,
    endpoint: &'a McpEndpoint,
    policies: &'a BTreeMap<String, ToolPolicy>,
    clients: &'a Arc<UpstreamClients>,
    recorder: &'a Recorder,
    /// Seals the caller's session id.
    key: &'a SessionKey,
}

impl Gateway<'_> {
    fn upstream(&self, prefix: &str) -> Option<Upstream<'_>> {
        let server = self.endpoint.servers.iter().find(|s| s.prefix == prefix)?;
        Some(Upstream::new(server, self.clients))
    }

    async fn initialize(
        &self,
        request: Request,
        identity: &policy::Identity,
    ) -> Response<ProxyBody> {
        let negotiated =
            initialize::negotiate_version(initialize::requested_version(request.params.as_ref()));
        let params = initialize::upstream_params(request.params.as_ref(), negotiated);
        let calls = self
            .endpoint
            .servers
            .iter()
            .map(|server| self.initialize_upstream(server, params.clone()));
        let answers = futures::future::join_all(calls).await;
        let merged = match initialize::merge(
            negotiated,
            env!("CARGO_PKG_VERSION"),
            &identity.key_id,
            unix_now(),
            answers,
        ) {
            Ok(merged) => merged,
            Err(error) => {
                return error_answer(error, request.id);
            }
        };
        for failure in &merged.failures {
            tracing::warn!(server = %failure.server, error = %failure.error, "MCP upstream left out of the session");
        }
        let token = match session::seal(&merged.session, self.key) {
            Ok(token) => token,
            Err(error) => {
                return jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, error.to_error());
            }
        };
        let answer = Message::Response(message::Response {
            id: request.id,
            result: merged.result,
        });
        json(StatusCode::OK, answer.to_value(), Some(&token))
    }

    /// Opens a session with one upstream: `initialize` with `params`, then `initialized`.
    async fn initialize_upstream(
        &self,
        server: &McpServer,
        params: Value,
    ) -> Result<Initialized, UpstreamFailure> {
        let upstream = Upstream::new(server, self.clients);
        let message = Message::Request(Request {
            id: message::RequestId::Number(0),
            method: "initialize".into(),
            params: Some(params),
        });
        match upstream.send(&message, None, None).await {
            Ok(Answer {
                session_id,
                response: Some(Message::Response(response)),
                ..
            }) => {
                let version = response
                    .result
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let initialized = Message::Notification(message::Notification {
                    method: "notifications/initialized".into(),
                    params: None,
                });
                if let Err(error) = upstream
                    .send(&initialized, session_id.as_deref(), version.as_deref())
                    .await
                {
                    return Err(UpstreamFailure::new(&server.prefix, error));
                }
                Ok(Initialized {
                    server: server.prefix.clone(),
                    session_id,
                    result: response.result,
                })
            }
            Ok(Answer {
                response: Some(Message::Error(error)),
                ..
            }) => Err(UpstreamFailure::new(&server.prefix, error.error.message)),
            Ok(_) => Err(UpstreamFailure::new(
                &server.prefix,
                "no answer to initialize",
            )),
            Err(error) => Err(UpstreamFailure::new(&server.prefix, error)),
        }
    }

    /// Sends `message` to the upstream `prefix` in the caller's session and returns once its
    /// answer begins. An upstream that no longer knows its session (restarted, or expired it)
    /// is initialized again and sent the message once more — it refused the first one, so
    /// nothing ran twice; the new upstream session comes back for the caller's refreshed
    /// session id. An `Err` starting with `session` means even that failed.
    async fn open_in_session(
        &self,
        prefix: &str,
        message: &Message,
        session: &UpstreamSession,
    ) -> Result<(Opened, Option<UpstreamSession>), String> {
        let (Some(server), Some(upstream)) = (
            self.endpoint.servers.iter().find(|s| s.prefix == prefix),
            self.upstream(prefix),
        ) else {
            return Err("not configured".into());
        };
        let sent = upstream
            .open(
                message,
                session.session_id.as_deref(),
                Some(&session.protocol_version),
            )
            .await;
        match sent {
            Err(error) if error.starts_with("session") => {
                let params = initialize::upstream_params(None, &session.protocol_version);
                let renewed = self
                    .initialize_upstream(server, params)
                    .await
                    .map_err(|f| {
                        format!("session lost, and initializing again failed: {}", f.error)
                    })?;
                let renewed = UpstreamSession {
                    session_id: renewed.session_id,
                    protocol_version: renewed
                        .result
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .unwrap_or(&session.protocol_version)
                        .to_string(),
                };
                tracing::info!(
                    server = prefix,
                    "MCP upstream lost its session; initialized it again"
                );
                let opened = upstream
                    .open(
                        message,
                        renewed.session_id.as_deref(),
                        Some(&renewed.protocol_version),
                    )
                    .await?;
                Ok((opened, Some(renewed)))
            }
            other => other.map(|opened| (opened, None)),
        }
    }

    /// [`Gateway::open_in_session`], with the answer read whole within the server's timeout.
    async fn send_in_session(
        &self,
        prefix: &str,
        message: &Message,
        session: &UpstreamSession,
    ) -> Result<(Answer, Option<UpstreamSession>), String> {
        let (opened, renewed) = self.open_in_session(prefix, message, session).await?;
        let timeout = self
            .upstream(prefix)
            .map_or(Duration::ZERO, |u| u.server().request_timeout);
        let answer = tokio::time::timeout(timeout, opened.into_answer())
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))??;
        Ok((answer, renewed))
    }

    /// The caller's session id again, with the upstream sessions that were renewed.
    fn refreshed_token(
        &self,
        state: &SessionState,
        renewed: Vec<(String, UpstreamSession)>,
    ) -> Option<HeaderValue> {
        if renewed.is_empty() {
            return None;
        }
        let mut state = state.clone();
        state.upstreams.extend(renewed);
        let token = session::seal(&state, self.key).ok()?;
        HeaderValue::from_str(&token).ok()
    }

    async fn request(
        &self,
        request: Request,
        state: &SessionState,
        identity: &policy::Identity,
    ) -> Response<ProxyBody> {
        let lookup = |prefix: &str| match (
            self.policies.get(prefix),
            state.upstreams.contains_key(prefix),
        ) {
            (Some(policy), true) => Server::Available(policy),
            (Some(_), false) => Server::Unavailable,
            (None, _) => Server::Unknown,
        };
        let tool_call = (request.method == "tools/call").then(|| {
            let params = request.params.as_ref();
            let name = params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let server = tollgate_mcp::names::split_name(name)
                .map(|(prefix, _)| prefix)
                .filter(|prefix| self.policies.contains_key(*prefix));
            self.recorder
                .start(name, server, params.and_then(|p| p.get("arguments")))
        });
        let route = match route::route_request(&request, identity, lookup) {
            Ok(route) => route,
            Err(error) => {
                if let Some(call) = tool_call {
                    let outcome = if error.code == message::NOT_PERMITTED {
                        "refused"
                    } else {
                        "invalid"
                    };
                    self.recorder.finish(call, outcome, Some(&error.message));
                }
                return error_answer(error, request.id);
            }
        };
        if let Route::Upstream { server, params } = route {
            if let Some(call) = tool_call {
                if let Some(limited) = self.count_tool_call(&call.tool).await {
                    self.recorder
                        .finish(call, "limited", Some(&limited.message));
                    return error_answer(limited, request.id);
                }
                return self
                    .forward(request, server, params, state, Some(call))
                    .await;
            }
            return self.forward(request, server, params, state, None).await;
        }
        match route {
            Route::Initialize => json(
                StatusCode::BAD_REQUEST,
                Message::Error(
                    ErrorObject::new(
                        message::INVALID_REQUEST,
                        "the session is already initialized",
                    )
                    .into_response(Some(request.id)),
                )
                .to_value(),
                None,
            ),
            Route::Ping => result_answer(Value::Object(Default::default()), request.id),
            Route::Broadcast => {
                let forwarded = Message::Request(request.clone());
                self.broadcast(state, &forwarded).await;
                result_answer(Value::Object(Default::default()), request.id)
            }
            Route::List(kind) => self.list(request, kind, state, identity).await,
            Route::Upstream { .. } => unreachable!("forwarded above"),
        }
    }

    /// Counts a call of `tool` against the BudgetPolicies that limit it (`tools`); the error
    /// to answer with when one refuses it. A call is one request, known in full before it is
    /// sent, so it is settled at once.
    async fn count_tool_call(&self, tool: &str) -> Option<ErrorObject> {
        let budgets = &self.snapshot.config.budgets;
        let policies: Vec<usize> = budgets
            .applicable_to_tool(self.caller, &self.endpoint.route, tool)
            .collect();
        if policies.is_empty() {
            return None;
        }
        let demand = Demand {
            input_tokens: 0,
            max_output: Some(0),
            price: WorstPrice::default(),
        };
        match self.ledger.reserve(self.snapshot, &policies, demand).await {
            Ok(Verdict::Reserved { reservation, .. }) => {
                self.ledger.settle(&reservation, Consumed::default()).await;
                None
            }
            Ok(Verdict::Unmetered) => None,
            Err(ProxyError::LimitReached {
                message,
                retry_after,
                ..
            }) => Some(
                ErrorObject::new(
                    message::TOOL_CALL_LIMITED,
                    format!("tool call limit reached for {tool}: {message}"),
                )
                .with_data(serde_json::json!({"retryAfterSeconds": retry_after})),
            ),
            Err(error) => Some(ErrorObject::new(
                message::UPSTREAM_UNAVAILABLE,
                error.to_string(),
            )),
        }
    }

    /// Sends a request to the upstream that owns it and answers the caller: with JSON, or
    /// with an SSE stream that relays the upstream's messages as they arrive (progress,
    /// logging, its own requests such as sampling, which the caller must see before the
    /// upstream can answer), then the answer. `tool_call` is recorded when the answer is in.
    async fn forward(
        &self,
        request: Request,
        server: String,
        params: Value,
        state: &SessionState,
        tool_call: Option<ToolCall>,
    ) -> Response<ProxyBody> {
        let session = &state.upstreams[&server];
        let method = request.method.clone();
        let forwarded = Message::Request(Request {
            params: Some(params),
            ..request.clone()
        });
        let finish = |outcome: &'static str, error: Option<&str>, call: Option<ToolCall>| {
            if let Some(call) = call {
                self.recorder.finish(call, outcome, error);
            }
        };
        let (opened, renewed) = match self.open_in_session(&server, &forwarded, session).await {
            Ok(opened) => opened,
            Err(error) => {
                finish("upstream_unavailable", Some(&error), tool_call);
                return if error.starts_with("session") {
                    jsonrpc_error(
                        StatusCode::NOT_FOUND,
                        ErrorObject::new(
                            message::SESSION_INVALID,
                            format!("the upstream {server} lost the session; initialize again"),
                        ),
                    )
                } else {
                    error_answer(
                        ErrorObject::new(
                            message::UPSTREAM_UNAVAILABLE,
                            format!("upstream {server} failed: {error}"),
                        )
                        .with_data(serde_json::json!({"server": server})),
                        request.id,
                    )
                };
            }
        };
        let renewed = renewed.map(|r| (server.clone(), r)).into_iter().collect();
        let token = self.refreshed_token(state, renewed);
        let mut response = match opened {
            Opened::Whole(answer) => {
                let (outcome, error) = outcome_of(answer.response.as_ref());
                finish(outcome, error.as_deref(), tool_call);
                let mut events: Vec<Value> = answer
                    .relayed
                    .into_iter()
                    .map(|m| tollgate_mcp::rewrite::from_upstream(&server, m, None).to_value())
                    .collect();
                let last = match answer.response {
                    Some(m) => {
                        tollgate_mcp::rewrite::from_upstream(&server, m, Some(&method)).to_value()
                    }
                    None => no_answer(&server, request.id).to_value(),
                };
                if events.is_empty() {
                    json(StatusCode::OK, last, None)
                } else {
                    events.push(last);
                    sse(events)
                }
            }
            Opened::Stream { events, .. } => {
                let (chunks, body) = tokio::sync::mpsc::channel(RELAYED_EVENTS);
                let idle = self
                    .upstream(&server)
                    .map_or(Duration::ZERO, |u| u.server().request_timeout);
                let relay = Relay {
                    events,
                    chunks,
                    server,
                    method,
                    id: request.id,
                    idle,
                };
                let call = tool_call.map(|call| (self.recorder.clone(), call));
                tokio::spawn(relay.run(call));
                sse_response(ProxyBody::channel(body))
            }
        };
        if let Some(token) = token {
            response.headers_mut().insert(SESSION_HEADER, token);
        }
        response
    }

    async fn list(
        &self,
        request: Request,
        kind: listing::ListKind,
        state: &SessionState,
        identity: &policy::Identity,
    ) -> Response<ProxyBody> {
        let error = |error: ErrorObject, id| error_answer(error, id);
        let cursor = match listing::cursor_param(request.params.as_ref()) {
            Ok(cursor) => cursor,
            Err(e) => return error(e, request.id),
        };
        let servers: Vec<&str> = self
            .endpoint
            .servers
            .iter()
            .map(|s| s.prefix.as_str())
            .filter(|p| state.upstreams.contains_key(*p))
            .collect();
        let pages = match listing::plan(kind, cursor, &servers) {
            Ok(pages) => pages,
            Err(e) => return error(e, request.id),
        };
        let calls = pages.into_iter().map(|page| async move {
            let message = Message::Request(Request {
                id: message::RequestId::Number(1),
                method: kind.method().into(),
                params: Some(page.params()),
            });
            let sent = self
                .send_in_session(&page.server, &message, &state.upstreams[&page.server])
                .await;
            let (result, renewed) = match sent {
                Ok((answer, renewed)) => (
                    match answer.response {
                        Some(Message::Response(r)) => Ok(r.result),
                        Some(Message::Error(e)) => Err(e.error.message),
                        _ => Err("no answer".to_string()),
                    },
                    renewed.map(|r| (page.server.clone(), r)),
                ),
                Err(e) => (Err(e), None),
            };
            (
                UpstreamPage {
                    server: page.server,
                    result,
                },
                renewed,
            )
        });
        let (pages, renewed): (Vec<UpstreamPage>, Vec<_>) =
            futures::future::join_all(calls).await.into_iter().unzip();
        let permits = |server: &str, tool: &str| {
            self.policies
                .get(server)
                .is_some_and(|p| p.permits_tool(identity, tool))
        };
        let merged = listing::merge(kind, pages, permits, MAX_TOOL_NAME_LEN);
        for failure in &merged.failures {
            tracing::warn!(server = %failure.server, error = %failure.error, method = kind.method(), "MCP upstream left out of a listing");
        }
        let mut response = result_answer(merged.result, request.id);
        if let Some(token) = self.refreshed_token(state, renewed.into_iter().flatten().collect()) {
            response.headers_mut().insert(SESSION_HEADER, token);
        }
        response
    }

    async fn broadcast(&self, state: &SessionState, message: &Message) {
        let sends = state
            .upstreams
            .keys()
            .map(|prefix| self.send_to(state, prefix, message));
        futures::future::join_all(sends).await;
    }

    async fn send_to(&self, state: &SessionState, prefix: &str, message: &Message) {
        let (Some(upstream), Some(session)) = (self.upstream(prefix), state.upstreams.get(prefix))
        else {
            return;
        };
        if let Err(error) = upstream
            .send(
                message,
                session.session_id.as_deref(),
                Some(&session.protocol_version),
            )
            .await
        {
            tracing::debug!(server = prefix, %error, "MCP message not delivered upstream");
        }
    }

    /// GET: one SSE stream of what the upstreams send outside any request (list_changed and
    /// resource update notifications, logging, their own requests), merged as it arrives;
    /// 405 when no upstream offers such a stream. It lasts while any upstream stream does
    /// and the caller stays; a comment every [`KEEPALIVE`] finds a caller that left.
    async fn listen(&self, state: &SessionState) -> Response<ProxyBody> {
        let opens = state.upstreams.iter().filter_map(|(prefix, session)| {
            let upstream = self.upstream(prefix)?;
            Some(async move { (prefix.clone(), upstream.listen(session).await) })
        });
        let mut streams = Vec::new();
        for (server, opened) in futures::future::join_all(opens).await {
            match opened {
                Ok(Some(events)) => streams.push((server, events)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(server, %error, "MCP upstream stream not opened");
                }
            }
        }
        if streams.is_empty() {
            return method_not_allowed();
        }
        let (chunks, body) = tokio::sync::mpsc::channel(RELAYED_EVENTS);
        for (server, events) in streams {
            tokio::spawn(relay_stream(events, chunks.clone(), server));
        }
        tokio::spawn(keep_alive(chunks.downgrade()));
        sse_response(ProxyBody::channel(body))
    }

    async fn delete(&self, state: &SessionState) {
        let deletes = state.upstreams.iter().filter_map(|(prefix, session)| {
            let upstream = self.upstream(prefix)?;
            let id = session.session_id.clone()?;
            Some(async move { upstream.delete(&id).await })
        });
        futures::future::join_all(deletes).await;
    }
}

/// The JSON-RPC error answering request `id`.
fn error_answer(error: ErrorObject, id: message::RequestId) -> Response<ProxyBody> {
    json(
        StatusCode::OK,
        Message::Error(error.into_response(Some(id))).to_value(),
        None,
    )
}

/// The JSON-RPC result answering request `id`.
fn result_answer(result: Value, id: message::RequestId) -> Response<ProxyBody> {
    json(
        StatusCode::OK,
        Message::Response(message::Response { id, result }).to_value(),
        None,
    )
}

/// The caller's message was taken (a notification or a response).
fn accepted() -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// A JSON-RPC error without an id, at `status`.
fn jsonrpc_error(status: StatusCode, error: ErrorObject) -> Response<ProxyBody> {
    json(
        status,
        Message::Error(error.into_response(None)).to_value(),
        None,
    )
}

/// One JSON answer, with the session header when one was issued.
fn json(status: StatusCode, value: Value, session: Option<&str>) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(value.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(session) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(SESSION_HEADER, session);
    }
    response
}

/// Messages as one SSE stream, the answer last.
fn sse(events: Vec<Value>) -> Response<ProxyBody> {
    let body: Vec<u8> = events.iter().flat_map(|e| sse_event(e).to_vec()).collect();
    sse_response(ProxyBody::full(body))
}

/// An SSE answer with `body`.
fn sse_response(body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// One message as an SSE event.
fn sse_event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// How a tool call ended, by the upstream's answer (and the error's message, if any).
fn outcome_of(answer: Option<&Message>) -> (&'static str, Option<String>) {
    match answer {
        Some(Message::Error(e)) => ("error", Some(e.error.message.clone())),
        Some(Message::Response(r)) if r.result.get("isError") == Some(&Value::Bool(true)) => {
            ("tool_error", None)
        }
        Some(_) => ("ok", None),
        None => (
            "upstream_unavailable",
            Some("the upstream sent no answer".into()),
        ),
    }
}

/// The error answering request `id` when upstream `server` gave no answer.
fn no_answer(server: &str, id: message::RequestId) -> Message {
    Message::Error(
        ErrorObject::new(message::UPSTREAM_UNAVAILABLE, "the upstream sent no answer")
            .with_data(serde_json::json!({"server": server}))
            .into_response(Some(id)),
    )
}

/// How often an idle GET stream carries a comment, so that a caller that left is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The answer to a method the endpoint does not serve, or a GET no upstream has a stream for.
fn method_not_allowed() -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

/// Relays one upstream's standalone stream to the caller until either ends.
async fn relay_stream(
    mut events: EventStream,
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    server: String,
) {
    loop {
        let next = tokio::select! {
            next = events.next_message() => next,
            () = chunks.closed() => return,
        };
        match next {
            Ok(Some(message)) => {
                let relayed = tollgate_mcp::rewrite::from_upstream(&server, message, None);
                if chunks.send(sse_event(&relayed.to_value())).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(server, %error, "MCP upstream stream ended");
                return;
            }
        }
    }
}

/// Writes a comment every [`KEEPALIVE`] while any upstream stream still feeds the caller's.
async fn keep_alive(chunks: tokio::sync::mpsc::WeakSender<Bytes>) {
    loop {
        tokio::time::sleep(KEEPALIVE).await;
        let Some(chunks) = chunks.upgrade() else {
            return;
        };
        if chunks
            .send(Bytes::from_static(b": keepalive\n\n"))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// How many relayed events may wait for a slow caller before the upstream is read no further.
const RELAYED_EVENTS: usize = 16;

/// An upstream's streamed answer on its way to the caller.
struct Relay {
    events: EventStream,
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    server: String,
    method: String,
    id: message::RequestId,
    /// The longest wait for the upstream's next message.
    idle: Duration,
}

impl Relay {
    /// Relays every message up to the answer, then records `call` with how it ended: the
    /// answer's outcome, `upstream_unavailable` when the stream broke, ended or stalled (the
    /// caller then gets an error answer), or `cancelled` when the caller left.
    async fn run(mut self, call: Option<(Recorder, ToolCall)>) {
        let (outcome, error) = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(self.idle, self.events.next_message()) => next,
                () = self.chunks.closed() => {
                    break ("cancelled", Some("the caller left before the answer".to_string()));
                }
            };
            let message = match next {
                Ok(Ok(Some(message))) => message,
                ended => {
                    let error = match ended {
                        Err(_) => format!("no message within {:?}", self.idle),
                        Ok(Err(error)) => error,
                        Ok(Ok(_)) => "the stream ended before the answer".to_string(),
                    };
                    let answer = Message::Error(
                        ErrorObject::new(
                            message::UPSTREAM_UNAVAILABLE,
                            format!("upstream {} failed: {error}", self.server),
                        )
                        .with_data(serde_json::json!({"server": self.server}))
                        .into_response(Some(self.id.clone())),
                    );
                    let _ = self.chunks.send(sse_event(&answer.to_value())).await;
                    break ("upstream_unavailable", Some(error));
                }
            };
            let is_answer = matches!(message, Message::Response(_) | Message::Error(_));
            if is_answer {
                let outcome = outcome_of(Some(&message));
                let answer =
                    tollgate_mcp::rewrite::from_upstream(&self.server, message, Some(&self.method));
                let _ = self.chunks.send(sse_event(&answer.to_value())).await;
                break outcome;
            }
            let relayed = tollgate_mcp::rewrite::from_upstream(&self.server, message, None);
            if self
                .chunks
                .send(sse_event(&relayed.to_value()))
                .await
                .is_err()
            {
                break (
                    "cancelled",
                    Some("the caller left before the answer".to_string()),
                );
            }
        };
        if let Some((recorder, call)) = call {
            recorder.finish(call, outcome, error.as_deref());
        }
    }
}

fn unix_now() -> u64 {
    u64::try_from(crate::clock::unix_millis() / 1000).unwrap_or_default()
}
