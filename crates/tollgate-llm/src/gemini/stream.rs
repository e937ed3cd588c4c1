//! A `streamGenerateContent?alt=sse` stream read into common stream events as it arrives.

use bytes::Bytes;

use super::response::{GenerateContentResponse, with_tool_use};
use crate::chat::{StreamDecoder, StreamError, StreamEvent};
use crate::sse::data_of;
use crate::{SseEvents, Usage};

/// The largest event held while waiting for its end. Gemini sends a function call whole, in
/// one event, so this bounds the arguments of one call.
const MAX_EVENT: usize = 8 << 20;

/// Decodes a Gemini stream: each `data:` event is a whole `GenerateContentResponse` chunk.
/// The first one starts the answer; text parts become text, a function call becomes its start
/// and all its arguments at once; the finish reason and usage follow as they come.
#[derive(Debug)]
pub struct Decoder {
    events: SseEvents,
    scratch: Vec<Bytes>,
    /// The answer's id, once started.
    id: Option<String>,
    tool_calls: u32,
    finished: bool,
    usage: Option<Usage>,
}

impl Decoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self {
            events: SseEvents::new(MAX_EVENT),
            scratch: Vec::new(),
            id: None,
            tool_calls: 0,
            finished: false,
            usage: None,
        }
    }

    fn on_event(&mut self, event: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let data = data_of(event);
        if data.trim_ascii().is_empty() {
            return Ok(());
        }
        let chunk: GenerateContentResponse = serde_json::from_slice(&data).map_err(|error| {
            StreamError::Malformed(format!(
                "a Gemini stream event is not a GenerateContentResponse: {error}"
            ))
        })?;
        if let Some(error) = &chunk.error {
            let message = error.text();
            return Err(StreamError::Upstream(message.unwrap_or_else(|| {
                "Gemini reported an error without a message".to_owned()
            })));
        }
        let id = self.start(&chunk, out);
        self.parts(&chunk, &id, out);
        self.finish_reason(&chunk, out);
        self.usage(&chunk, out);
        self.id = Some(id);
        Ok(())
    }

    /// The answer's id, starting the answer on its first chunk.
    fn start(&mut self, chunk: &GenerateContentResponse, out: &mut Vec<StreamEvent>) -> String {
        if let Some(id) = self.id.take() {
            return id;
        }
        let id = chunk.id();
        out.push(StreamEvent::Start {
            id: id.clone(),
            model: chunk.model_version.clone().unwrap_or_default(),
        });
        id
    }

    fn parts(&mut self, chunk: &GenerateContentResponse, id: &str, out: &mut Vec<StreamEvent>) {
        for part in chunk.parts() {
            if let Some(call) = &part.function_call {
                let index = self.tool_calls;
                let call = call.to_common(id, index);
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: call.id,
                    name: call.name,
                });
                out.push(StreamEvent::ToolArguments {
                    index,
                    delta: call.arguments,
                });
                self.tool_calls += 1;
            } else if let Some(text) = part.answer_text() {
                out.push(StreamEvent::Text(text.to_owned()));
            }
        }
    }

    fn finish_reason(&mut self, chunk: &GenerateContentResponse, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        if let Some(reason) = chunk.finish_reason() {
            self.finished = true;
            out.push(StreamEvent::Finish(with_tool_use(
                reason,
                self.tool_calls > 0,
            )));
        }
    }

    /// The usage, when a chunk reports one that differs from the last (Gemini repeats it on
    /// every chunk).
    fn usage(&mut self, chunk: &GenerateContentResponse, out: &mut Vec<StreamEvent>) {
        let Some(usage) = chunk.usage_metadata.as_ref().map(Usage::from) else {
            return;
        };
        if self.usage != Some(usage) {
            self.usage = Some(usage);
            out.push(StreamEvent::Usage(usage));
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder for Decoder {
    fn push(&mut self, chunk: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let mut complete = std::mem::take(&mut self.scratch);
        self.events
            .push(Bytes::copy_from_slice(chunk), &mut complete);
        let result = complete
            .iter()
            .try_for_each(|event| self.on_event(event, events));
        complete.clear();
        self.scratch = complete;
        result
    }

    fn finish(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match self.events.finish() {
            Some(rest) => self.on_event(&rest, events),
            None => Ok(()),
        }
    }
}
