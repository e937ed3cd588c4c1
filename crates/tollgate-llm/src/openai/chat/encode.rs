//! Writes common stream events as a Chat Completions stream for the caller.

use serde::Serialize;

use super::{UsageOut, finish_reason_name};
use crate::Usage;
use crate::chat::{StreamEncoder, StreamEvent};

/// Writes `data: {chat.completion.chunk}` events as the official SDKs parse them: the role
/// in the first chunk, then text and tool-call deltas, the finish reason in a chunk of its
/// own, the usage chunk (`choices: []`) when asked for, and `data: [DONE]`.
#[derive(Debug)]
pub struct Encoder {
    include_usage: bool,
    created: u64,
    id: String,
    model: String,
    /// The latest usage reported, for the usage chunk at the end.
    usage: Option<Usage>,
}

impl Encoder {
    /// An encoder for one stream. `include_usage` is the caller's
    /// `stream_options.include_usage`; `created` is the Unix time every chunk carries.
    pub fn new(include_usage: bool, created: u64) -> Self {
        Encoder {
            include_usage,
            created,
            id: String::new(),
            model: String::new(),
            usage: None,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish_reason: Option<&'static str>) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        self.write(out, &choices, None);
    }

    fn write(&self, out: &mut Vec<u8>, choices: &[ChoiceOut<'_>], usage: Option<UsageOut>) {
        let chunk = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        out.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut *out, &chunk).expect("a chunk serialises");
        out.extend_from_slice(b"\n\n");
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                let delta = DeltaOut {
                    role: Some("assistant"),
                    content: Some(""),
                    ..DeltaOut::default()
                };
                self.chunk(out, delta, None);
            }
            StreamEvent::Text(text) if text.is_empty() => {}
            StreamEvent::Text(text) => {
                let delta = DeltaOut {
                    content: Some(text),
                    ..DeltaOut::default()
                };
                self.chunk(out, delta, None);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let call = ToolCallDeltaOut {
                    index: *index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionDeltaOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                self.chunk(out, DeltaOut::tool_call(call), None);
            }
            StreamEvent::ToolArguments { index, delta } => {
                let call = ToolCallDeltaOut {
                    index: *index,
                    id: None,
                    kind: None,
                    function: FunctionDeltaOut {
                        name: None,
                        arguments: delta,
                    },
                };
                self.chunk(out, DeltaOut::tool_call(call), None);
            }
            StreamEvent::Finish(reason) => {
                self.chunk(out, DeltaOut::default(), Some(finish_reason_name(*reason)));
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.include_usage
            && let Some(usage) = self.usage
        {
            self.write(out, &[], Some(usage.into()));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

impl<'a> DeltaOut<'a> {
    fn tool_call(call: ToolCallDeltaOut<'a>) -> Self {
        DeltaOut {
            tool_calls: Some([call]),
            ..DeltaOut::default()
        }
    }
}

#[derive(Serialize)]
struct ToolCallDeltaOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDeltaOut<'a>,
}

#[derive(Serialize)]
struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}
