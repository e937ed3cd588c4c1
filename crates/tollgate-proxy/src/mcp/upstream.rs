//! Calls to one upstream MCP server: over Streamable HTTP, a JSON-RPC message POSTed and the
//! answer read whole (JSON, or an SSE stream that ends after the answer); over the older
//! HTTP+SSE transport, a one-shot session (`legacy_sse`). Always within the server's timeouts
//! and a size limit.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use tollgate_config::{McpServer, McpTransport};
use tollgate_mcp::message::{self, Message};

use super::events::EventStream;
use crate::upstream::UpstreamClients;

/// The most an upstream answer may hold.
pub(super) const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// What an upstream sent back for one message.
#[derive(Default)]
pub(super) struct Answer {
    /// The session id it issued (on `initialize`).
    pub(super) session_id: Option<String>,
    /// Its own notifications and requests, sent before its answer.
    pub(super) relayed: Vec<Message>,
    /// Its answer, when the message was a request.
    pub(super) response: Option<Message>,
}

/// What an upstream answered a message with: whole, or a stream still arriving.
pub(super) enum Opened {
    /// A JSON answer (or none), read whole.
    Whole(Answer),
    /// An SSE stream: the upstream's messages, then its answer, as they come.
    Stream {
        /// The session id it issued (on `initialize`).
        session_id: Option<String>,
        /// The stream, unread.
        events: EventStream,
    },
}

impl Opened {
    /// The whole answer: a stream is read up to the answer.
    pub(super) async fn into_answer(self) -> Result<Answer, String> {
        let (session_id, mut events) = match self {
            Opened::Whole(answer) => return Ok(answer),
            Opened::Stream { session_id, events } => (session_id, events),
        };
        let mut relayed = Vec::new();
        while let Some(message) = events.next_message().await? {
            match message {
                Message::Response(_) | Message::Error(_) => {
                    return Ok(Answer {
                        session_id,
                        relayed,
                        response: Some(message),
                    });
                }
                other => relayed.push(other),
            }
        }
        Ok(Answer {
            session_id,
            relayed,
            response: None,
        })
    }
}

/// One upstream MCP server.
pub(super) struct Upstream<'a> {
    server: &'a McpServer,
    clients: &'a Arc<UpstreamClients>,
}

impl<'a> Upstream<'a> {
    pub(super) fn new(server: &'a McpServer, clients: &'a Arc<UpstreamClients>) -> Self {
        Self { server, clients }
    }

    /// The server's configuration.
    pub(super) fn server(&self) -> &McpServer {
        self.server
    }

    /// The HTTP client for this server's connect timeout.
    pub(super) fn client(&self) -> crate::upstream::UpstreamClient {
        self.clients.get(self.server.connect_timeout)
    }

    /// The request of `body` to `uri` with the server's credentials and the session's headers.
    pub(super) fn request(
        &self,
        method: http::Method,
        uri: &str,
        body: Bytes,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Full::new(body))
            .map_err(|e| format!("invalid upstream request: {e}"))?;
        let headers = request.headers_mut();
        let mut set = |name: HeaderName, value: &str, sensitive: bool| {
            if let Ok(mut value) = HeaderValue::from_str(value) {
                value.set_sensitive(sensitive);
                headers.insert(name, value);
            }
        };
        if let Some(id) = session_id {
            set(HeaderName::from_static("mcp-session-id"), id, false);
        }
        if let Some(version) = protocol_version {
            set(
                HeaderName::from_static("mcp-protocol-version"),
                version,
                false,
            );
        }
        if let Some(token) = &self.server.bearer {
            set(
                header::AUTHORIZATION,
                &format!("Bearer {}", token.expose()),
                true,
            );
        }
        for (name, value) in &self.server.headers {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                set(name, value.expose(), true);
            }
        }
        Ok(request)
    }

    /// Sends `message`; a request's answer is awaited (read whole), a notification's or
    /// response's acceptance. An `Err` says what failed; one starting with `session` means the
    /// upstream no longer knows the session.
    pub(super) async fn send(
        &self,
        message: &Message,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
    ) -> Result<Answer, String> {
        let exchange = async {
            self.open_untimed(message, session_id, protocol_version)
                .await?
                .into_answer()
                .await
        };
        tokio::time::timeout(self.server.request_timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.server.request_timeout))?
    }

    /// Sends `message` and returns as soon as the answer begins: a stream is handed over
    /// unread, to be relayed as it arrives (the reader bounds each wait). Errors as for
    /// [`Upstream::send`].
    pub(super) async fn open(
        &self,
        message: &Message,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
    ) -> Result<Opened, String> {
        tokio::time::timeout(
            self.server.request_timeout,
            self.open_untimed(message, session_id, protocol_version),
        )
        .await
        .map_err(|_| format!("no answer within {:?}", self.server.request_timeout))?
    }

    async fn open_untimed(
        &self,
        message: &Message,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
    ) -> Result<Opened, String> {
        match self.server.transport {
            McpTransport::StreamableHttp => self.post(message, session_id, protocol_version).await,
            McpTransport::Sse => super::legacy_sse::exchange(self, message, protocol_version)
                .await
                .map(Opened::Whole),
        }
    }

    /// One message over Streamable HTTP.
    async fn post(
        &self,
        message: &Message,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
    ) -> Result<Opened, String> {
        let request = self.request(
            http::Method::POST,
            &self.server.url,
            Bytes::from(message.to_bytes()),
            session_id,
            protocol_version,
        )?;
        let client = self.client();
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status();
        let issued = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if status == http::StatusCode::NOT_FOUND && session_id.is_some() {
            return Err("session unknown to the upstream".to_string());
        }
        if streamed && status.is_success() {
            return Ok(Opened::Stream {
                session_id: issued,
                events: EventStream::new(response.into_body(), MAX_ANSWER),
            });
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("answer unreadable: {e}"))?
            .to_bytes();
        let messages = if streamed {
            sse_messages(body)
        } else if body.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            message::parse(&body, MAX_ANSWER).into_iter().collect()
        };
        if messages.is_empty() && !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        if status == http::StatusCode::BAD_REQUEST
            && session_id.is_some()
            && messages.iter().any(names_a_session)
        {
            // What servers built on the TypeScript SDK's examples answer for a session
            // they do not hold, instead of the specification's 404.
            return Err("session unknown to the upstream (HTTP 400)".to_string());
        }
        let (mut response, mut relayed) = (None, Vec::new());
        for message in messages {
            match message {
                Message::Response(_) | Message::Error(_) if response.is_none() => {
                    response = Some(message);
                }
                other => relayed.push(other),
            }
        }
        Ok(Opened::Whole(Answer {
            session_id: issued,
            relayed,
            response,
        }))
    }

    /// Opens the upstream's standalone SSE stream (a GET) in `session`: `None` when it offers
    /// none (405, or the older transport, whose one stream belongs to one request here).
    pub(super) async fn listen(
        &self,
        session: &tollgate_mcp::session::UpstreamSession,
    ) -> Result<Option<EventStream>, String> {
        if self.server.transport != McpTransport::StreamableHttp {
            return Ok(None);
        }
        let mut request = self.request(
            http::Method::GET,
            &self.server.url,
            Bytes::new(),
            session.session_id.as_deref(),
            Some(&session.protocol_version),
        )?;
        request.headers_mut().remove(header::CONTENT_TYPE);
        request.headers_mut().insert(
            header::ACCEPT,
            http::HeaderValue::from_static("text/event-stream"),
        );
        let response =
            tokio::time::timeout(self.server.request_timeout, self.client().request(request))
                .await
                .map_err(|_| format!("no answer within {:?}", self.server.request_timeout))?
                .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status();
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        match status {
            http::StatusCode::METHOD_NOT_ALLOWED => Ok(None),
            status if status.is_success() && streamed => {
                Ok(Some(EventStream::endless(response.into_body(), MAX_ANSWER)))
            }
            status => Err(format!("HTTP {status} to the stream's GET")),
        }
    }

    /// Ends the upstream session `id`.
    pub(super) async fn delete(&self, id: &str) {
        let Ok(request) = self.request(
            http::Method::DELETE,
            &self.server.url,
            Bytes::new(),
            Some(id),
            None,
        ) else {
            return;
        };
        let client = self.client();
        let _ = tokio::time::timeout(self.server.request_timeout, client.request(request)).await;
    }
}

/// Whether `message` is an error about the session.
fn names_a_session(message: &Message) -> bool {
    matches!(message, Message::Error(e) if e.error.message.to_ascii_lowercase().contains("session"))
}

/// The JSON-RPC messages of an SSE body, one per event's `data:`.
fn sse_messages(body: Bytes) -> Vec<Message> {
    let mut splitter = tollgate_llm::SseEvents::new(MAX_ANSWER);
    let mut events = Vec::new();
    splitter.push(body, &mut events);
    events.extend(splitter.finish());
    events
        .iter()
        .map(|event| tollgate_llm::sse_data(event))
        .filter(|data| !data.is_empty())
        .filter_map(|data| message::parse(&data, MAX_ANSWER).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_bodies_yield_their_messages_in_order() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\nid: 2\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\r\ndata: \"result\":{}}\r\n\r\n: comment\n\n";
        let messages = sse_messages(Bytes::from_static(body));
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].method(), Some("notifications/progress"));
        assert!(matches!(messages[1], Message::Response(_)));
    }
}
