//! The older HTTP+SSE transport (MCP 2024-11-05) toward upstreams that speak only it. Its
//! session lives as long as one SSE connection, which a gateway that keeps no state between
//! requests cannot hold open. So every request is a session of its own: open the stream,
//! read the `endpoint` event, `initialize`, send the request, read the stream until its
//! answer, close. Caller notifications and responses have no session to go to and are
//! dropped; the upstream's own messages sent before its answer are relayed as for Streamable
//! HTTP.

use bytes::Bytes;
use http::{Method, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tollgate_mcp::aggregate::initialize;
use tollgate_mcp::message::{self, Message, Request, RequestId};

use super::events::{EventStream, event_name};
use super::upstream::{Answer, MAX_ANSWER, Upstream};

/// The id of the `initialize` each one-shot session opens with.
const INITIALIZE_ID: &str = "tollgate-initialize";
/// The protocol version asked for when the caller's session names none.
const LEGACY_VERSION: &str = "2024-11-05";

/// Sends `message` in a one-shot session of `upstream`.
pub(super) async fn exchange(
    upstream: &Upstream<'_>,
    message: &Message,
    protocol_version: Option<&str>,
) -> Result<Answer, String> {
    let Message::Request(request) = message else {
        return Ok(Answer::default());
    };
    let mut stream = SessionStream::open(upstream).await?;
    let endpoint = stream.endpoint(&upstream.server().url).await?;
    let opening = request.method == "initialize";
    let params = match opening {
        true => request.params.clone(),
        false => Some(initialize::upstream_params(
            None,
            protocol_version.unwrap_or(LEGACY_VERSION),
        )),
    };
    let initialize = Message::Request(Request {
        id: RequestId::String(INITIALIZE_ID.into()),
        method: "initialize".into(),
        params,
    });
    let mut relayed = Vec::new();
    upstream.post_to(&endpoint, &initialize).await?;
    let initialized = stream.answer_to(&initialize_id(), &mut relayed).await?;
    if opening {
        let response = match initialized {
            Message::Response(mut r) => {
                r.id = request.id.clone();
                Message::Response(r)
            }
            Message::Error(mut e) => {
                e.id = Some(request.id.clone());
                Message::Error(e)
            }
            other => other,
        };
        return Ok(Answer {
            session_id: None,
            relayed,
            response: Some(response),
        });
    }
    if let Message::Error(error) = initialized {
        return Err(format!(
            "initialize refused: {}",
            error.error.message.chars().take(200).collect::<String>()
        ));
    }
    let notification = Message::Notification(message::Notification {
        method: "notifications/initialized".into(),
        params: None,
    });
    upstream.post_to(&endpoint, &notification).await?;
    upstream.post_to(&endpoint, message).await?;
    let response = stream.answer_to(&request.id, &mut relayed).await?;
    Ok(Answer {
        session_id: None,
        relayed,
        response: Some(response),
    })
}

fn initialize_id() -> RequestId {
    RequestId::String(INITIALIZE_ID.into())
}

/// The upstream's SSE stream, with what the transport needs on top of [`EventStream`].
struct SessionStream(EventStream);

impl SessionStream {
    async fn open(upstream: &Upstream<'_>) -> Result<Self, String> {
        let response = upstream.get_stream().await?;
        let status = response.status();
        let is_sse = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !status.is_success() || !is_sse {
            return Err(format!(
                "the SSE endpoint answered HTTP {status}{}",
                if is_sse { "" } else { ", not an event stream" }
            ));
        }
        Ok(Self(EventStream::new(response.into_body(), MAX_ANSWER)))
    }

    /// Where to POST messages: the first `endpoint` event, resolved against `base`. Only the
    /// upstream's own origin is accepted, so its credentials go nowhere else.
    async fn endpoint(&mut self, base: &str) -> Result<Uri, String> {
        while let Some(event) = self.0.next_event().await? {
            if event_name(&event) == Some(&b"endpoint"[..]) {
                let data = tollgate_llm::sse_data(&event);
                let target = std::str::from_utf8(&data)
                    .map_err(|_| "the endpoint event is not UTF-8".to_string())?;
                return resolve(base, target.trim());
            }
        }
        Err("the SSE stream ended before its endpoint event".into())
    }

    /// Reads messages until the answer to `id`; the others go to `relayed`.
    async fn answer_to(
        &mut self,
        id: &RequestId,
        relayed: &mut Vec<Message>,
    ) -> Result<Message, String> {
        while let Some(message) = self.0.next_message().await? {
            match &message {
                Message::Response(r) if r.id == *id => return Ok(message),
                Message::Error(e) if e.id.as_ref() == Some(id) => return Ok(message),
                _ => relayed.push(message),
            }
        }
        Err("the SSE stream ended before the answer".into())
    }
}

/// `target` (an absolute URL or a path) against the SSE URL `base`, on `base`'s origin only.
fn resolve(base: &str, target: &str) -> Result<Uri, String> {
    let base: Uri = base.parse().map_err(|e| format!("bad upstream URL: {e}"))?;
    let (Some(scheme), Some(authority)) = (base.scheme_str(), base.authority()) else {
        return Err("the upstream URL is not absolute".into());
    };
    let origin = format!("{scheme}://{authority}");
    let url = if target.starts_with('/') {
        format!("{origin}{target}")
    } else if target.contains("://") {
        if !target.starts_with(&format!("{origin}/")) {
            return Err(format!(
                "the endpoint {target:?} is not on the upstream's origin {origin}"
            ));
        }
        target.to_string()
    } else {
        let path = base.path();
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{origin}{directory}{target}")
    };
    url.parse()
        .map_err(|e| format!("the endpoint {target:?} is not a URL: {e}"))
}

impl Upstream<'_> {
    /// Opens the server's SSE stream.
    async fn get_stream(&self) -> Result<http::Response<Incoming>, String> {
        let mut request =
            self.request(Method::GET, &self.server().url, Bytes::new(), None, None)?;
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("text/event-stream"),
        );
        request.headers_mut().remove(http::header::CONTENT_TYPE);
        self.client()
            .request(request)
            .await
            .map_err(|e| format!("unreachable: {e}"))
    }

    /// POSTs one message to the session's endpoint; the answer comes on the stream.
    async fn post_to(&self, endpoint: &Uri, message: &Message) -> Result<(), String> {
        let request = self.request(
            Method::POST,
            &endpoint.to_string(),
            Bytes::from(message.to_bytes()),
            None,
            None,
        )?;
        let response = self
            .client()
            .request(request)
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status();
        // The body says little (`Accepted`); read it so the connection can be reused.
        let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        if !status.is_success() {
            return Err(format!("the message endpoint answered HTTP {status}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_on_the_upstream_origin_only() {
        let base = "http://127.0.0.1:9000/sse";
        assert_eq!(
            resolve(base, "/messages/?session_id=ab").unwrap(),
            "http://127.0.0.1:9000/messages/?session_id=ab"
        );
        assert_eq!(
            resolve(base, "messages?s=1").unwrap(),
            "http://127.0.0.1:9000/messages?s=1"
        );
        assert_eq!(
            resolve("http://h:1/mcp/sse", "messages").unwrap(),
            "http://h:1/mcp/messages"
        );
        assert_eq!(
            resolve(base, "http://127.0.0.1:9000/m?x").unwrap(),
            "http://127.0.0.1:9000/m?x"
        );
        for foreign in ["http://evil.example/m", "http://127.0.0.1:9001/m"] {
            assert!(resolve(base, foreign).is_err(), "{foreign}");
        }
    }
}
