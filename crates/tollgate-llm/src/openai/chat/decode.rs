//! Reads an upstream's Chat Completions stream into common events as its bytes arrive.

use bytes::Bytes;
use serde::Deserialize;

use super::{ErrorBody, finish_reason_of};
use crate::SseEvents;
use crate::chat::{StreamDecoder, StreamError, StreamEvent};
use crate::openai::usage::OpenAIUsage;
use crate::sse::data_of;

/// The largest event held while waiting for its end; a longer one cannot be read.
const MAX_EVENT: usize = 1 << 20;

/// Turns `data: {chat.completion.chunk}` events into [`StreamEvent`]s, one chunk at a time.
/// Memory holds one unfinished event and a few counters, however long the stream.
#[derive(Debug)]
pub struct Decoder {
    events: SseEvents,
    scratch: Vec<Bytes>,
    started: bool,
    /// Tool calls begun so far: a delta for an index past them begins a new call.
    tool_calls: u32,
    /// Whether `data: [DONE]` has passed: nothing after it is read.
    done: bool,
}

impl Decoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Decoder {
            events: SseEvents::new(MAX_EVENT),
            scratch: Vec::new(),
            started: false,
            tool_calls: 0,
            done: false,
        }
    }

    fn on_event(&mut self, event: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let data = data_of(event);
        let data = data.trim_ascii();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: ChunkIn = serde_json::from_slice(data)
            .map_err(|e| StreamError::Malformed(format!("a chunk is not valid: {e}")))?;
        self.on_chunk(chunk, out)
    }

    fn on_chunk(&mut self, chunk: ChunkIn, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let error = ErrorBody {
            error: chunk.error,
            object: chunk.object,
            message: chunk.message,
        };
        // Azure's content-filter annotations carry an empty `object` and no output.
        if error.object.as_deref() == Some("") {
            return Ok(());
        }
        if let Some(message) = error.message() {
            return Err(StreamError::Upstream(message));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id,
                model: chunk.model,
            });
        }
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index == 0 {
                self.on_choice(choice, out)?;
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.into()));
        }
        Ok(())
    }

    fn on_choice(
        &mut self,
        choice: ChoiceIn,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let delta = choice.delta.unwrap_or_default();
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push(StreamEvent::Text(text));
            }
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            let index = call
                .index
                .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
            self.on_tool_call(index, call, out)?;
        }
        if let Some(reason) = choice.finish_reason.as_deref().and_then(finish_reason_of) {
            out.push(StreamEvent::Finish(reason));
        }
        Ok(())
    }

    fn on_tool_call(
        &mut self,
        index: u32,
        call: ToolCallIn,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let function = call.function.unwrap_or_default();
        if index >= self.tool_calls {
            let name = function.name.ok_or_else(|| {
                StreamError::Malformed(format!("tool call {index} began without a name"))
            })?;
            out.push(StreamEvent::ToolCallStart {
                index,
                id: call.id.unwrap_or_else(|| format!("call_{index}")),
                name,
            });
            self.tool_calls = index.saturating_add(1);
        }
        if let Some(delta) = function.arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolArguments { index, delta });
        }
        Ok(())
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder for Decoder {
    fn push(&mut self, chunk: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let mut raw = std::mem::take(&mut self.scratch);
        self.events.push(Bytes::copy_from_slice(chunk), &mut raw);
        let result = raw
            .iter()
            .try_for_each(|event| self.on_event(event, events));
        raw.clear();
        self.scratch = raw;
        result
    }

    fn finish(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match self.events.finish() {
            Some(rest) => self.on_event(&rest, events),
            None => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct ChunkIn {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    usage: Option<OpenAIUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceIn {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<DeltaIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct DeltaIn {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
}

#[derive(Deserialize)]
struct ToolCallIn {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

#[derive(Default, Deserialize)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}
