//! Reads usage from an OpenAI chat completion stream as it passes through.

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::sync::LazyLock;

use super::usage::OpenAIUsage;
use crate::sse::data_of;
use crate::usage::openai_finish_reason;
use crate::{SseEvents, Usage};

/// The largest event held while waiting for its end; longer events pass through unread.
const MAX_EVENT: usize = 1 << 20;

/// The field OpenAI adds to every chunk once usage is requested.
const NULL_USAGE: &[u8] = br#","usage":null"#;

/// The searcher of [`NULL_USAGE`], built once: building one costs more than searching an event.
static NULL_USAGE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(NULL_USAGE));

/// Watches an OpenAI chat stream for usage. When Tollgate asked for usage on the caller's
/// behalf (`hide_usage`), it also removes what that request added, so the caller sees the
/// stream it asked for: the final usage-only event is dropped and `"usage":null` is taken out
/// of the other chunks. Otherwise every chunk passes through as the very same bytes.
#[derive(Debug)]
pub struct ChatStream {
    events: SseEvents,
    hide_usage: bool,
    usage: Option<Usage>,
    done: bool,
    /// Events carrying output so far, when counted (`None` otherwise).
    output_events: Option<u64>,
    /// The first finish reason the stream stated.
    finish_reason: Option<String>,
    scratch: Vec<Bytes>,
}

#[derive(Deserialize)]
struct Chunk {
    usage: Option<OpenAIUsage>,
    choices: Option<Vec<IgnoredAny>>,
}

impl ChatStream {
    /// A watcher for one stream. `hide_usage` is true when the caller did not ask for usage.
    pub fn new(hide_usage: bool) -> Self {
        Self {
            events: SseEvents::new(MAX_EVENT),
            hide_usage,
            usage: None,
            done: false,
            output_events: None,
            finish_reason: None,
            scratch: Vec::new(),
        }
    }

    /// The usage the stream reported, once its usage event has passed.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The finish reason the stream stated, once it has.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// Counts the events that carry output (see [`ChatStream::output_events`]), which costs
    /// a search of each event: only for streams whose spend must be settled.
    pub fn counting_output(mut self) -> Self {
        self.output_events = Some(0);
        self
    }

    /// How many events carried output (content or tool-call arguments) so far, when counted:
    /// an estimate of the output tokens of a stream that ends without reporting usage, since
    /// providers send about one token per event.
    pub fn output_events(&self) -> Option<u64> {
        self.output_events
    }

    /// Whether the stream's closing `data: [DONE]` event has passed: after it, a caller that
    /// hangs up has received the whole answer.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes a chunk from upstream and returns what to send the caller now, if anything.
    pub fn on_chunk(&mut self, chunk: Bytes) -> Option<Bytes> {
        let mut events = std::mem::take(&mut self.scratch);
        self.events.push(chunk.clone(), &mut events);
        let out = if self.hide_usage {
            self.rewrite_events(&mut events)
        } else {
            for event in &events {
                self.read_usage(event);
            }
            Some(chunk)
        };
        events.clear();
        self.scratch = events;
        out
    }

    /// Called at the end of the stream: returns any unfinished last event still held.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.events.finish()?;
        self.read_usage(&rest);
        self.hide_usage.then_some(rest)
    }

    /// Reads usage from an event; returns whether it is a usage-only event (no choices).
    fn read_usage(&mut self, event: &[u8]) -> bool {
        let data = data_of(event);
        if &*data == b"[DONE]" {
            self.done = true;
            return false;
        }
        if let Some(count) = &mut self.output_events
            && carries_output(&data)
        {
            *count += 1;
        }
        if self.finish_reason.is_none()
            && let Some(reason) = openai_finish_reason(&data)
        {
            self.finish_reason = Some(reason.to_string());
        }
        if !carries_usage(&data) {
            return false;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk>(&data) else {
            return false;
        };
        let Some(usage) = chunk.usage else {
            return false;
        };
        self.usage = Some(usage.into());
        chunk.choices.is_some_and(|c| c.is_empty())
    }

    fn rewrite_events(&mut self, events: &mut [Bytes]) -> Option<Bytes> {
        let mut out = BytesMut::with_capacity(events.iter().map(Bytes::len).sum());
        for event in events.iter() {
            if self.read_usage(event) {
                continue;
            }
            match NULL_USAGE_FINDER.find(event) {
                Some(at) => {
                    out.extend_from_slice(&event[..at]);
                    out.extend_from_slice(&event[at + NULL_USAGE.len()..]);
                }
                None => out.extend_from_slice(event),
            }
        }
        (!out.is_empty()).then(|| out.freeze())
    }
}

/// Whether an event's data carries generated text: a non-empty `content` or tool-call
/// `arguments` string.
fn carries_output(data: &[u8]) -> bool {
    static FIELDS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| {
        [
            Finder::new(br#""content":""#),
            Finder::new(br#""arguments":""#),
        ]
    });
    FIELDS.iter().any(|field| {
        field.find(data).is_some_and(|at| {
            data.get(at + field.needle().len())
                .is_some_and(|b| *b != b'"')
        })
    })
}

/// Whether an event's data has a `"usage"` field that is not `null`: only such events are
/// parsed, since every chunk of a stream with usage requested carries `"usage":null`.
fn carries_usage(data: &[u8]) -> bool {
    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""usage""#));
    let Some(at) = USAGE.find(data) else {
        return false;
    };
    let value = data[at + 7..]
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != b':')
        .map(|offset| &data[at + 7 + offset..]);
    value.is_some_and(|v| !v.starts_with(b"null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_USAGE: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(stream: &mut ChatStream, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            if let Some(bytes) = stream.on_chunk(Bytes::copy_from_slice(chunk)) {
                out.extend_from_slice(&bytes);
            }
        }
        out.extend(stream.finish().unwrap_or_default());
        out
    }

    #[test]
    fn only_events_with_a_usage_value_are_parsed() {
        assert!(carries_usage(
            br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(carries_usage(br#"{"usage" : {"prompt_tokens":1}}"#));
        assert!(!carries_usage(
            br#"{"choices":[{"delta":{}}],"usage":null}"#
        ));
        assert!(!carries_usage(br#"{"usage": null}"#));
        assert!(!carries_usage(br#"{"choices":[]}"#));
        assert!(!carries_usage(br#"{"usage""#));
    }

    #[test]
    fn the_first_finish_reason_stated_is_kept() {
        let mut stream = ChatStream::new(true);
        run(&mut stream, &[WITH_USAGE.as_bytes()]);
        assert_eq!(stream.finish_reason(), Some("stop"));
        assert_eq!(
            openai_finish_reason(br#"{"choices":[{"finish_reason":null}]}"#),
            None
        );
        assert_eq!(openai_finish_reason(br#"{"stop_reason":"end_turn"}"#), None);
    }

    #[test]
    fn events_carrying_output_are_counted() {
        let mut stream = ChatStream::new(false).counting_output();
        let events = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{\\\"a\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        run(&mut stream, &[events.as_bytes()]);
        assert_eq!(stream.output_events(), Some(2));
        let mut uncounted = ChatStream::new(false);
        run(&mut uncounted, &[events.as_bytes()]);
        assert_eq!(uncounted.output_events(), None);
    }

    #[test]
    fn caller_who_asked_for_usage_gets_the_stream_untouched() {
        let mut stream = ChatStream::new(false);
        assert!(!stream.is_done());
        let out = run(&mut stream, &[WITH_USAGE.as_bytes()]);
        assert_eq!(out, WITH_USAGE.as_bytes());
        assert!(stream.is_done());
        assert_eq!(stream.usage().unwrap().input_tokens, 5);
    }

    #[test]
    fn caller_who_did_not_ask_sees_no_trace_of_usage_at_any_split() {
        let expected = concat!(
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let bytes = WITH_USAGE.as_bytes();
        for cut in 0..bytes.len() {
            let mut stream = ChatStream::new(true);
            let out = run(&mut stream, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(std::str::from_utf8(&out).unwrap(), expected, "cut at {cut}");
            assert_eq!(stream.usage().unwrap().output_tokens, 2, "cut at {cut}");
        }
    }
}
