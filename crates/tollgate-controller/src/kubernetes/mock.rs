//! A scripted API server for tests: each request is checked (method, path and query, JSON
//! body) and answered in turn.

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use std::time::Duration;
use tower_test::mock::{self, Handle};

/// The API server's end of a mock client.
pub(super) struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

/// A client whose every request goes to the returned [`ApiServer`].
pub(super) fn client() -> (Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

/// One request as received.
#[derive(Debug)]
pub(super) struct Received {
    /// `GET`, `PATCH`, ...
    pub(super) method: String,
    /// Path and query.
    pub(super) uri: String,
    /// The `content-type` header, if any.
    pub(super) content_type: Option<String>,
    /// The JSON body; `Null` when empty.
    pub(super) body: Value,
}

impl ApiServer {
    /// Waits for the next request and answers it with `status` and `body`.
    pub(super) async fn answer(&mut self, status: u16, body: Value) -> Received {
        let (request, respond) = self
            .handle
            .next_request()
            .await
            .expect("the client sent no request");
        let (parts, body_in) = request.into_parts();
        let bytes = body_in.collect_bytes().await.expect("a request body");
        let received = Received {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string()),
            body: match bytes.is_empty() {
                true => Value::Null,
                false => serde_json::from_slice(&bytes).expect("a JSON body"),
            },
        };
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        respond.send_response(response);
        received
    }

    /// Asserts that no request arrives within a second (of paused test time).
    pub(super) async fn expect_silence(&mut self) {
        let next = tokio::time::timeout(Duration::from_secs(1), self.handle.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!("unexpected request: {} {}", request.method(), request.uri());
        }
    }
}

/// The body of a `404 Not Found` answer.
pub(super) fn not_found() -> Value {
    failure(404, "NotFound")
}

/// The body of a `409 Conflict` answer.
pub(super) fn conflict() -> Value {
    failure(409, "Conflict")
}

/// The body of a failed answer.
pub(super) fn failure(code: u16, reason: &str) -> Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": reason,
        "reason": reason,
        "code": code,
    })
}

/// The body of a list answer holding `items`.
pub(super) fn list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    })
}
