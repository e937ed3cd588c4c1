//! What the mock received, for tests to check: the last requests and stream outcomes.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

use crate::{MockBody, json_response};

/// How many requests are kept.
const KEEP: usize = 200;

/// Recent model requests and counters.
#[derive(Default)]
pub(crate) struct Journal {
    requests: Mutex<VecDeque<Value>>,
    total: AtomicU64,
    chat_requests: AtomicU64,
    pub(crate) streams_started: AtomicU64,
    pub(crate) streams_completed: AtomicU64,
    pub(crate) streams_aborted: AtomicU64,
    pub(crate) streams_reset: AtomicU64,
}

impl Journal {
    /// Keeps a model request; `chat` counts it in `chat_requests` (a chat in any format).
    pub(crate) async fn record(&self, parts: &http::request::Parts, body: &Bytes, chat: bool) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if chat {
            self.chat_requests.fetch_add(1, Ordering::Relaxed);
        }
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or_default())))
            .collect();
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(body).into_owned()));
        let mut entry = json!({"method": parts.method.as_str(), "path": parts.uri.path(), "headers": headers, "body": body});
        if let Some(query) = parts.uri.query() {
            entry["query"] = Value::from(query);
        }
        let mut requests = self.requests.lock().await;
        if requests.len() == KEEP {
            requests.pop_front();
        }
        requests.push_back(entry);
    }

    /// `GET /_mock/requests` (recent requests, oldest first) and `GET /_mock/stats`.
    pub(crate) async fn report(&self, path: &str) -> Response<MockBody> {
        let body = match path {
            "/_mock/requests" => Value::from(
                self.requests
                    .lock()
                    .await
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            "/_mock/stats" => json!({
                "requests": self.total.load(Ordering::Relaxed),
                "chat_requests": self.chat_requests.load(Ordering::Relaxed),
                "streams_started": self.streams_started.load(Ordering::Relaxed),
                "streams_completed": self.streams_completed.load(Ordering::Relaxed),
                "streams_aborted": self.streams_aborted.load(Ordering::Relaxed),
                "streams_reset": self.streams_reset.load(Ordering::Relaxed),
            }),
            _ => return crate::openai::error(StatusCode::NOT_FOUND, "unknown mock path"),
        };
        json_response(StatusCode::OK, &body)
    }
}
