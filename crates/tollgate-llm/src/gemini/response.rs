//! Gemini's `GenerateContentResponse`, whole or as one chunk of a stream, read into the common
//! shape; and its error body.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Usage;
use crate::chat::{ChatResponse, FinishReason, Part, ToolCall, TranslateError};

/// A `GenerateContentResponse`, or one chunk of a stream of them. Unknown fields (safety
/// ratings, citations, grounding) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentResponse {
    #[serde(default)]
    pub(super) candidates: Vec<Candidate>,
    pub(super) prompt_feedback: Option<PromptFeedback>,
    pub(super) usage_metadata: Option<UsageMetadata>,
    pub(super) model_version: Option<String>,
    pub(super) response_id: Option<String>,
    /// Set instead of everything else when a stream fails midway.
    pub(super) error: Option<ErrorStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    pub(super) content: Option<CandidateContent>,
    pub(super) finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CandidateContent {
    #[serde(default)]
    pub(super) parts: Vec<WirePart>,
}

/// A part of the model's answer. Parts other than text and function calls (code execution,
/// generated images) have neither field and are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePart {
    pub(super) text: Option<String>,
    /// A summary of the model's reasoning, not part of its answer.
    #[serde(default)]
    pub(super) thought: bool,
    pub(super) function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
pub(super) struct FunctionCall {
    /// Set by newer API versions; otherwise an id is made up.
    pub(super) id: Option<String>,
    pub(super) name: String,
    pub(super) args: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    pub(super) block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

/// Google's error status, the `error` of an error body.
#[derive(Deserialize)]
pub(super) struct ErrorStatus {
    message: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorStatus,
}

/// Counts the answers whose id is made up here, so that each one differs.
static GENERATED_IDS: AtomicU64 = AtomicU64::new(0);

impl GenerateContentResponse {
    /// The answer's id: Gemini's `responseId`, else a fresh one of Tollgate's.
    pub(super) fn id(&self) -> String {
        match &self.response_id {
            Some(id) => id.clone(),
            None => format!(
                "gemini-{}",
                GENERATED_IDS.fetch_add(1, Ordering::Relaxed) + 1
            ),
        }
    }

    /// The parts of the first (only requested) candidate.
    pub(super) fn parts(&self) -> &[WirePart] {
        self.candidates
            .first()
            .and_then(|candidate| candidate.content.as_ref())
            .map_or(&[][..], |content| content.parts.as_slice())
    }

    /// Why the answer ended, if this says: the candidate's finish reason, or a prompt
    /// blocked before any candidate. `STOP` is [`FinishReason::EndTurn`] here; the caller
    /// makes it [`FinishReason::ToolUse`] when the answer called tools.
    pub(super) fn finish_reason(&self) -> Option<FinishReason> {
        if let Some(reason) = self
            .candidates
            .first()
            .and_then(|c| c.finish_reason.as_deref())
        {
            return Some(finish_reason(reason));
        }
        let blocked = self.candidates.is_empty()
            && self
                .prompt_feedback
                .as_ref()
                .is_some_and(|feedback| feedback.block_reason.is_some());
        blocked.then_some(FinishReason::ContentFilter)
    }
}

impl WirePart {
    /// The answer's text in this part, unless it is empty or a thought.
    pub(super) fn answer_text(&self) -> Option<&str> {
        self.text
            .as_deref()
            .filter(|text| !self.thought && !text.is_empty())
    }
}

impl FunctionCall {
    /// The call in the common shape; `index` is its position among the answer's calls, which
    /// makes its id (`call_<answer id>_<index>`) when Gemini gave none.
    pub(super) fn to_common(&self, answer_id: &str, index: u32) -> ToolCall {
        ToolCall {
            id: self
                .id
                .clone()
                .unwrap_or_else(|| format!("call_{answer_id}_{index}")),
            name: self.name.clone(),
            arguments: self
                .args
                .as_ref()
                .map_or_else(|| "{}".to_owned(), |args| args.get().to_owned()),
        }
    }
}

impl From<&UsageMetadata> for Usage {
    /// Input counts the prompt and any tool-use prompt (cached tokens included, as Gemini
    /// counts them); output counts the candidates and the thinking, which Gemini reports apart.
    fn from(usage: &UsageMetadata) -> Self {
        Usage {
            input_tokens: usage.prompt_token_count + usage.tool_use_prompt_token_count,
            output_tokens: usage.candidates_token_count + usage.thoughts_token_count,
            cached_tokens: usage.cached_content_token_count,
            reasoning_tokens: usage.thoughts_token_count,
        }
    }
}

impl ErrorStatus {
    /// What went wrong, in Google's words: the message, else the status code's name.
    pub(super) fn text(&self) -> Option<String> {
        self.message.clone().or_else(|| self.status.clone())
    }
}

/// A Gemini finish reason in the common shape: the safety family and recitation are a
/// filter's doing; everything but `MAX_TOKENS` otherwise ended the turn.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "MODEL_ARMOR" => FinishReason::ContentFilter,
        _ => FinishReason::EndTurn,
    }
}

/// A stop that called tools waits for their results.
pub(super) fn with_tool_use(reason: FinishReason, called_tools: bool) -> FinishReason {
    match reason {
        FinishReason::EndTurn if called_tools => FinishReason::ToolUse,
        other => other,
    }
}

/// Reads a `generateContent` answer: the first candidate's text (adjacent parts joined) and
/// function calls, its finish reason and the usage.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let response: GenerateContentResponse = serde_json::from_slice(body).map_err(|error| {
        TranslateError::Invalid(format!(
            "the Gemini answer is not a GenerateContentResponse: {error}"
        ))
    })?;
    if let Some(error) = &response.error {
        return Err(TranslateError::Invalid(format!(
            "Gemini answered with an error: {}",
            error.text().unwrap_or_default()
        )));
    }
    let id = response.id();
    let mut content: Vec<Part> = Vec::new();
    let mut calls = 0;
    for part in response.parts() {
        if let Some(call) = &part.function_call {
            content.push(Part::ToolCall(call.to_common(&id, calls)));
            calls += 1;
        } else if let Some(text) = part.answer_text() {
            match content.last_mut() {
                Some(Part::Text(last)) => last.push_str(text),
                _ => content.push(Part::Text(text.to_owned())),
            }
        }
    }
    Ok(ChatResponse {
        finish_reason: response
            .finish_reason()
            .map(|reason| with_tool_use(reason, calls > 0)),
        usage: response
            .usage_metadata
            .as_ref()
            .map(Usage::from)
            .unwrap_or_default(),
        model: response.model_version.unwrap_or_default(),
        id,
        content,
    })
}

/// The message of a Gemini error body, `{"error": {"code", "message", "status"}}` (also
/// found wrapped in an array, as `streamGenerateContent` without SSE answers).
pub fn error_message(body: &[u8]) -> Option<String> {
    /// Wrapped is tried first: serde would read the array as a struct by position.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Wrapped([ErrorBody; 1]),
        Bare(ErrorBody),
    }
    let body = match serde_json::from_slice::<Shape>(body).ok()? {
        Shape::Wrapped([body]) | Shape::Bare(body) => body,
    };
    body.error.text()
}
