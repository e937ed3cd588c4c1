//! An upstream's SSE body read event by event as it arrives: the messages of a Streamable
//! HTTP answer, and the stream of the older HTTP+SSE transport. Memory is bounded: an event
//! longer than the limit is cut (and then fails to parse, so it is skipped), and a body read
//! for a whole answer stops at the limit.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::VecDeque;
use tollgate_mcp::message::{self, Message};

/// The SSE events of one upstream body.
pub(super) struct EventStream {
    body: Incoming,
    splitter: tollgate_llm::SseEvents,
    pending: VecDeque<Bytes>,
    read: usize,
    limit: usize,
    total_limit: Option<usize>,
}

impl EventStream {
    /// Reads `body`, at most `limit` bytes of it in all and of any one event.
    pub(super) fn new(body: Incoming, limit: usize) -> Self {
        Self {
            body,
            splitter: tollgate_llm::SseEvents::new(limit),
            pending: VecDeque::new(),
            read: 0,
            limit,
            total_limit: Some(limit),
        }
    }

    /// Reads `body`, a stream with no end in sight: at most `limit` bytes of any one event.
    pub(super) fn endless(body: Incoming, limit: usize) -> Self {
        Self {
            total_limit: None,
            ..Self::new(body, limit)
        }
    }

    /// The next whole event; `None` when the body ended.
    pub(super) async fn next_event(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(self.splitter.finish());
            };
            let frame = frame.map_err(|e| format!("the upstream's stream broke: {e}"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.read = self.read.saturating_add(data.len());
            if let Some(total) = self.total_limit.filter(|total| self.read > *total) {
                return Err(format!(
                    "the upstream's stream sent more than {total} bytes"
                ));
            }
            let mut events = Vec::new();
            self.splitter.push(data, &mut events);
            self.pending.extend(events);
        }
    }

    /// The next JSON-RPC message (events of other names, empty or unparsable data are
    /// skipped); `None` when the body ended.
    pub(super) async fn next_message(&mut self) -> Result<Option<Message>, String> {
        while let Some(event) = self.next_event().await? {
            if event_name(&event).is_some_and(|name| name != b"message") {
                continue;
            }
            let data = tollgate_llm::sse_data(&event);
            if data.is_empty() {
                continue;
            }
            if let Ok(message) = message::parse(&data, self.limit) {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }
}

/// The `event:` field of an SSE event.
pub(super) fn event_name(event: &[u8]) -> Option<&[u8]> {
    event
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find_map(|l| l.strip_prefix(b"event:"))
        .map(|name| name.strip_prefix(b" ").unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_read_with_or_without_a_space() {
        assert_eq!(
            event_name(b"event: endpoint\r\ndata: /m\r\n\r\n"),
            Some(&b"endpoint"[..])
        );
        assert_eq!(
            event_name(b"event:message\ndata: {}\n\n"),
            Some(&b"message"[..])
        );
        assert_eq!(event_name(b"data: {}\n\n"), None);
    }
}
