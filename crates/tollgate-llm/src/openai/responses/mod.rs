//! OpenAI Responses (`POST /v1/responses`) as a caller's dialect, to and from the common chat
//! shape: an OpenAI SDK, the Agents SDK or Codex talking to any upstream. There is no Responses
//! upstream format; the gateway sends the request on in the upstream's own format.
//!
//! # What a caller's request may carry ([`parse_request`])
//!
//! - Carried: `model`; `input`, a string (one user message) or an array of items:
//!   - `message` items, with or without `type`: `user` messages hold `input_text` and
//!     `input_image` parts (`image_url` an `http(s)` or `data:` URL), `assistant` messages
//!     hold `output_text` and `refusal` parts (a refusal as text, as Chat Completions reads
//!     it) or `input_text`, `system` and `developer` messages hold `input_text` and become the
//!     system prompt; content may also be one string;
//!   - `function_call` items (`call_id`, `name`, `arguments`), which join the assistant turn
//!     before them: the API gives each call its own item, the common shape one message a turn;
//!   - `function_call_output` items (`output` a string or `input_text` and `input_image`
//!     parts), which become tool results in a user message, consecutive ones in the same
//!     message, named after the call they answer;
//! - `instructions` (the system prompt's first part, before the `system` and `developer`
//!   messages, joined by blank lines), `max_output_tokens`, `temperature`, `top_p`, `tools` of
//!   type `function` (the flat shape: `name`, `description`, `parameters`), `tool_choice`
//!   (`auto`, `none`, `required`, `{"type":"function","name":..}`), `parallel_tool_calls`,
//!   `text.format` (`text`, `json_object`, `json_schema` with `name`, `schema`, `strict`),
//!   `stream`, `user` (or else `safety_identifier`).
//! - Dropped, because nothing the caller relies on changes: `metadata`, `store` (the gateway
//!   keeps nothing: a later `previous_response_id` is refused), `service_tier`,
//!   `prompt_cache_key`, `prompt_cache_retention`, `prompt_cache_options` (unless it asks to
//!   `prewarm` the cache instead of answering), `stream_options` (stream obfuscation),
//!   `max_tool_calls` (it counts built-in tools only, which are refused), `include` entries
//!   that ask for what only built-in tools, stored inputs or reasoning items produce
//!   (`reasoning.encrypted_content`, `message.input_image.image_url`,
//!   `file_search_call.results`, `web_search_call.results`, `web_search_call.action.sources`,
//!   `code_interpreter_call.outputs`, `computer_call_output.output.image_url`), `reasoning`
//!   items in `input` (their encrypted content means something to OpenAI only; the model's
//!   visible turns carry the conversation), the neutral values `truncation: "disabled"`,
//!   `background: false`, `top_logprobs: 0`, `text.verbosity: "medium"`, an empty
//!   `context_management` and a `reasoning` whose members are all null; and, inside items,
//!   ids, `status`, `phase`, an image's `detail`, annotations, logprobs,
//!   `prompt_cache_breakpoint`, a tool's `strict` (the arguments still follow the schema as
//!   well as the upstream can, as for Chat Completions), a JSON schema's `description`, and
//!   empty texts (some upstreams refuse them).
//! - Refused with [`TranslateError::Unsupported`], because they need state the gateway does
//!   not keep: `previous_response_id`, `conversation`, `prompt` (a stored template),
//!   `background: true`, `context_management` (server-side compaction) and `item_reference`
//!   items; or because the answer would differ: built-in tools (any `tools` entry whose type
//!   is not `function`, such as `web_search`, `file_search`, `computer_use_preview`,
//!   `code_interpreter`, `mcp`, `image_generation`, `custom`) and the tool choices that name
//!   them or `allowed_tools`, `input_file` and `input_audio` parts, images by `file_id`,
//!   images in `system` and `developer` messages (the common system prompt is text), parts
//!   and items of any other type (built-in tool calls and their outputs), `truncation: "auto"`,
//!   `top_logprobs` above 0, the `include` entry `message.output_text.logprobs` and entries
//!   this module does not know, `text.verbosity` other than `medium`, and any field this
//!   module does not know.
//! - `reasoning` is refused unless it is null or all its members are: `effort` sets how long
//!   the model thinks, which changes the answer, its cost and its latency, and every upstream
//!   spells it differently (Anthropic's thinking budget, Gemini's thinking config) or not at
//!   all, so a translation would be a guess; `summary` asks for reasoning summaries the common
//!   shape cannot carry. Chat Completions' `reasoning_effort` is refused for the same reason.
//!
//! Invalid shapes are [`TranslateError::Invalid`], with a message naming the field.
//!
//! # Answers ([`write_response`])
//!
//! A `response` object: consecutive texts become one `message` item with one `output_text`
//! part, each tool call a `function_call` item. Ids are derived from the upstream's answer id:
//! `resp_<id>` for the response (an id already starting with `resp_` is kept),
//! `msg_<id>_<output index>` for messages and `fc_<call id>` for function calls. A finish at
//! the output cap or by a content filter makes the response `incomplete`, with
//! `incomplete_details.reason` `max_output_tokens` or `content_filter`, and its last item
//! `incomplete`; any other finish is `completed`. `output_text` is not written: the SDKs
//! compute it. `usage.input_tokens_details.cache_write_tokens` is 0: the common usage counts
//! cache writes as plain input. The fields that echo the request are not known to the common answer and carry
//! the API's neutral values: `instructions`, `max_output_tokens`, `temperature`, `top_p`,
//! `previous_response_id`, `reasoning` and `user` are null, `tools` is empty, `tool_choice`
//! is `auto`, `parallel_tool_calls` is true, `text.format` is `text`, `truncation` is
//! `disabled`, `metadata` is empty; `store` and `background` are false, which is true of the
//! gateway. `created_at` is passed in (the gateway's clock).
//!
//! # Streams ([`Encoder`])
//!
//! The events the API sends and the SDKs accumulate, each with its `event:` line and a
//! `sequence_number` counting from 0: see [`Encoder`].
//!
//! [`TranslateError::Unsupported`]: crate::chat::TranslateError::Unsupported
//! [`TranslateError::Invalid`]: crate::chat::TranslateError::Invalid

mod encode;
mod input;
mod object;
mod parse;

pub use encode::Encoder;
pub use object::write_response;
pub use parse::parse_request;
