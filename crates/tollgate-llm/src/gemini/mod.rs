//! Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`), as an upstream:
//! requests written from the common chat shape, answers and streams read into it. Gemini on
//! Vertex AI takes and gives the same bodies.
//!
//! The model and streaming are in the URL, which the gateway builds: [`write_request`] reads
//! neither `model` nor `stream`.
//!
//! # Requests
//!
//! - The system prompt is `systemInstruction`; turns are `contents` with roles `user` and
//!   `model`. Consecutive messages of one role are merged into one content (Gemini wants the
//!   results of parallel calls together); empty text parts and messages left empty are
//!   dropped, since Gemini refuses them.
//! - Images: base64 data is `inlineData`; a URL is `fileData` with a MIME type read from the
//!   file extension (JPEG when there is none, as Vertex requires one). Gemini fetches public
//!   and signed `https` URLs (Gemini 2.5 and later), Cloud Storage and Files API URIs; it
//!   answers 400 for a URL it cannot fetch.
//! - A tool call is a `functionCall` whose `args` is the arguments parsed as a JSON object
//!   (text that is not one is [`TranslateError::Invalid`]). Call ids are not sent: Gemini pairs
//!   calls and results by name and order. The first call of each model turn carries the
//!   `thoughtSignature` Google documents for calls it did not sign, since the real signature
//!   cannot survive the common shape and Gemini 3 refuses an unsigned call.
//! - A tool result is a `functionResponse` named after its function (the result's name, else
//!   the earlier call with its id; neither is [`TranslateError::Invalid`]) with the response
//!   `{"output": text}`, or `{"error": text}` when the tool failed. Its images follow it.
//! - Tools are one `functionDeclarations` list. Parameters and a structured-output schema are
//!   rewritten into Gemini's OpenAPI subset: local `$ref`s inlined, type names upper-cased,
//!   `type` arrays and `null` alternatives made `nullable`, `oneOf` made `anyOf`, `const` a
//!   one-value `enum`, enum values strings; keywords outside the subset (`$schema`, `$id`,
//!   `$defs`, `additionalProperties`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`,
//!   `uniqueItems`, `not`, `if`, `patternProperties`, `examples`, ...) are dropped: they
//!   refine what the model is told, and the caller's tool still checks its input. A
//!   recursive `$ref`, tuple `items` and an `allOf` of several schemas cannot be expressed:
//!   [`TranslateError::Unsupported`]. A function without parameters declares none (Gemini
//!   refuses an object with no properties).
//! - `tool_choice` is `toolConfig.functionCallingConfig.mode`: `AUTO`, `NONE`, `ANY`, and `ANY`
//!   with `allowedFunctionNames` for a named tool.
//! - `max_tokens`, `temperature`, `top_p` and `stop` are `generationConfig`'s
//!   `maxOutputTokens`, `temperature`, `topP` and `stopSequences`. JSON mode is
//!   `responseMimeType: application/json`; a JSON Schema adds `responseSchema`, which Gemini
//!   always enforces (`strict` is thus moot).
//! - Dropped as harmless: `user` (no equivalent) and `parallel_tool_calls: true` (Gemini's
//!   default). `parallel_tool_calls: false` cannot be expressed (Gemini may call several
//!   functions at once whatever it is told) and a caller relying on it could miss calls:
//!   [`TranslateError::Unsupported`].
//!
//! # Answers and streams
//!
//! - The first candidate is read (Tollgate never asks for more). Text parts are the answer
//!   (adjacent ones joined in a whole answer); thought summaries and parts other than text
//!   and function calls (code execution, generated images) are skipped.
//! - Gemini's function calls have no ids before the API's optional `id`: when it is absent,
//!   the id is `call_<answer id>_<index>`, unique across the turns of a conversation. The
//!   answer id is `responseId`, else `gemini-<n>` from a process-wide counter.
//! - `STOP` ends the turn, or is a tool use when the answer called functions; `MAX_TOKENS`
//!   is the token limit; `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, the
//!   image variants and `MODEL_ARMOR` are a content filter, as is a prompt blocked before any
//!   candidate (`promptFeedback.blockReason`); any other reason ends the turn.
//! - Usage: input is `promptTokenCount` plus `toolUsePromptTokenCount` (cached tokens included),
//!   cached is `cachedContentTokenCount`, output is `candidatesTokenCount` plus
//!   `thoughtsTokenCount`, reasoning is `thoughtsTokenCount`.
//! - In a stream every event is a whole `GenerateContentResponse` chunk: the first starts the
//!   answer, a function call arrives whole and becomes its start and all its arguments in one
//!   piece, usage is passed on whenever it changes (Gemini repeats it on every chunk), and a
//!   `data:` event holding an `error` is [`crate::chat::StreamError::Upstream`].

mod request;
mod response;
mod schema;
mod stream;

pub use request::write_request;
pub use response::{error_message, parse_response};
pub use stream::Decoder;

#[cfg(doc)]
use crate::chat::TranslateError;

/// How errors name this upstream.
const UPSTREAM: &str = "Gemini";
