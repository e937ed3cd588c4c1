//! W3C trace context read from a caller's headers and written into an upstream's.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};

/// Headers to read a context from.
struct Read<'a>(&'a http::HeaderMap);

impl Extractor for Read<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Headers to write a context into.
struct Write<'a>(&'a mut http::HeaderMap);

impl Injector for Write<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context (`traceparent`, `tracestate`), or an empty one.
pub(super) fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Read(headers)))
}

/// Writes `context` into `headers`, replacing the caller's trace headers.
pub(super) fn inject(context: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut Write(headers))
    });
}
