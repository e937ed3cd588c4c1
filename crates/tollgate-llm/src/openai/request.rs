//! Reads what an OpenAI request (Chat Completions, Responses or embeddings) asks for and
//! rewrites it for the upstream, touching only the bytes that must change: every other field
//! passes through exactly as the caller sent it.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::{RequestError, Tokenizer};

/// The fields of a request body that Tollgate acts on, with where they sit in the body.
#[derive(Debug)]
pub struct InspectedRequest {
    body: Bytes,
    /// The model the caller asked for.
    pub model: String,
    /// Whether the caller asked for a stream.
    pub stream: bool,
    /// Whether the caller asked for usage in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The cap on output tokens the caller set (`max_completion_tokens`, else `max_tokens`,
    /// else the Responses API's `max_output_tokens`).
    pub max_tokens: Option<u64>,
    /// The prompt's size in tokens, estimated as four bytes a token of `messages` (or
    /// `input`) and of the system prompt beside them (the Responses API's `instructions`,
    /// Anthropic's `system`).
    pub prompt_tokens_estimate: u64,
    /// Whether the request defines tools.
    pub has_tools: bool,
    /// Whether the prompt carries images (`image_url` content parts, Responses `input_image`
    /// parts).
    pub has_images: bool,
    model_span: (usize, usize),
    /// Where `messages` sits, and whether it is `input` (embeddings, Responses) instead.
    prompt_span: Option<((usize, usize), PromptField)>,
    /// Where the system prompt beside the messages sits: the Responses API's `instructions`
    /// or Anthropic's `system`.
    system_span: Option<(usize, usize)>,
    tools_span: Option<(usize, usize)>,
    stream_options_span: Option<(usize, usize)>,
    /// Where the values of `max_tokens`, `max_completion_tokens` and `max_output_tokens` sit,
    /// when present.
    max_tokens_spans: [Option<(usize, usize)>; 3],
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow)]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    instructions: Option<&'a RawValue>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
}

/// A system prompt beside the messages: a string, or (Anthropic) text blocks.
#[derive(Deserialize)]
#[serde(untagged)]
enum SystemText<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    #[serde(borrow)]
    Blocks(Vec<SystemBlock<'a>>),
}

/// One block of an Anthropic system prompt; only text counts.
#[derive(Deserialize)]
struct SystemBlock<'a> {
    #[serde(borrow, default)]
    text: Cow<'a, str>,
}

/// Which field holds the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PromptField {
    Messages,
    Input,
}

/// `input` of an embeddings request: one text, several, or token arrays (counted by size).
/// A Responses request's `input` is one text too, or an array of items.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input<'a> {
    #[serde(borrow)]
    One(Cow<'a, str>),
    #[serde(borrow)]
    Many(Vec<Cow<'a, str>>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// The content parts that carry images (Chat Completions', the Responses API's), with their
/// searchers built once.
static IMAGE_PARTS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| {
    [
        Finder::new(br#""image_url""#),
        Finder::new(br#""input_image""#),
    ]
});

/// What to change in a request before sending it upstream.
#[derive(Debug, Default)]
pub struct Rewrite<'a> {
    /// Replace the model with this one.
    pub model: Option<&'a str>,
    /// Ask a streaming upstream to report usage in its last event.
    pub include_usage: bool,
    /// Cap the output at this many tokens: the caller's `max_tokens`,
    /// `max_completion_tokens` and `max_output_tokens` are lowered to it, or, when the caller
    /// set none, the field named by [`OutputCap::field`] is added.
    pub max_output_tokens: Option<OutputCap>,
}

/// An output cap to impose on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputCap {
    /// The most output tokens the upstream may produce.
    pub tokens: u64,
    /// The field to add when the caller set none: `max_completion_tokens` for OpenAI itself
    /// (its reasoning models refuse `max_tokens`), `max_tokens` for servers that only know it.
    pub field: &'static str,
}

impl InspectedRequest {
    /// Reads a request body. Fails on anything that is not a JSON object with a string `model`.
    pub fn parse(body: Bytes) -> Result<Self, RequestError> {
        let fields: Fields<'_> =
            serde_json::from_slice(&body).map_err(RequestError::InvalidJson)?;
        let raw_model = fields.model.ok_or(RequestError::MissingField("model"))?;
        let model: String =
            serde_json::from_str(raw_model.get()).map_err(|_| RequestError::InvalidField {
                field: "model",
                reason: "must be a string",
            })?;
        if model.is_empty() {
            return Err(RequestError::InvalidField {
                field: "model",
                reason: "must not be empty",
            });
        }
        let include_usage = match fields.stream_options {
            None => false,
            Some(raw) if raw.get() == "null" => false,
            Some(raw) => {
                let options: StreamOptions =
                    serde_json::from_str(raw.get()).map_err(|_| RequestError::InvalidField {
                        field: "stream_options",
                        reason: "must be an object",
                    })?;
                options.include_usage.unwrap_or(false)
            }
        };
        let cap =
            |raw: Option<&RawValue>, field: &'static str| -> Result<Option<u64>, RequestError> {
                match raw {
                    None => Ok(None),
                    Some(raw) if raw.get() == "null" => Ok(None),
                    Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|_| {
                        RequestError::InvalidField {
                            field,
                            reason: "must be a non-negative integer",
                        }
                    }),
                }
            };
        let max_tokens = cap(fields.max_tokens, "max_tokens")?;
        let max_completion_tokens = cap(fields.max_completion_tokens, "max_completion_tokens")?;
        let max_output_tokens = cap(fields.max_output_tokens, "max_output_tokens")?;
        let prompt = fields.messages.or(fields.input).map_or("", |raw| raw.get());
        let system = fields.instructions.or(fields.system);
        let instructions = system.map_or("", |raw| raw.get());
        let has_tools = fields.tools.is_some_and(|raw| {
            let tools = raw.get().trim();
            tools != "null" && tools.trim_start_matches('[').trim_start() != "]"
        });
        Ok(Self {
            prompt_tokens_estimate: (prompt.len() + instructions.len()).div_ceil(4) as u64,
            has_tools,
            has_images: IMAGE_PARTS
                .iter()
                .any(|part| part.find(prompt.as_bytes()).is_some()),
            model_span: span_in(&body, raw_model),
            prompt_span: match (fields.messages, fields.input) {
                (Some(raw), _) => Some((span_in(&body, raw), PromptField::Messages)),
                (None, Some(raw)) => Some((span_in(&body, raw), PromptField::Input)),
                (None, None) => None,
            },
            system_span: system.map(|raw| span_in(&body, raw)),
            tools_span: fields.tools.map(|raw| span_in(&body, raw)),
            stream_options_span: fields.stream_options.map(|raw| span_in(&body, raw)),
            max_tokens_spans: [
                fields.max_tokens.map(|raw| span_in(&body, raw)),
                fields.max_completion_tokens.map(|raw| span_in(&body, raw)),
                fields.max_output_tokens.map(|raw| span_in(&body, raw)),
            ],
            model,
            stream: fields.stream.unwrap_or(false),
            include_usage,
            max_tokens: max_completion_tokens.or(max_tokens).or(max_output_tokens),
            body,
        })
    }

    /// The prompt's tokens, counted with `tokenizer` (tools and the system prompt beside the
    /// messages included) when one is given and the prompt has the expected shape; else
    /// [`InspectedRequest::prompt_tokens_estimate`].
    pub fn prompt_tokens(&self, tokenizer: Option<Tokenizer>) -> u64 {
        let Some(tokenizer) = tokenizer else {
            return self.prompt_tokens_estimate;
        };
        let text = |(start, end): (usize, usize)| {
            std::str::from_utf8(&self.body[start..end]).unwrap_or_default()
        };
        let prompt = match self.prompt_span {
            None => Some(0),
            Some((span, PromptField::Messages)) => tokenizer.count_openai_messages(text(span)),
            Some((span, PromptField::Input)) => match serde_json::from_str(text(span)) {
                Ok(Input::One(one)) => tokenizer.count_text(&one),
                Ok(Input::Many(many)) => many.iter().map(|t| tokenizer.count_text(t)).sum(),
                // Token arrays are not items: the count gives up on them.
                Err(_) => tokenizer.count_responses_items(text(span)),
            },
        };
        let tools = match self.tools_span {
            None => Some(0),
            Some(span) => tokenizer.count_text(text(span)),
        };
        let instructions = match self.system_span {
            None => Some(0),
            Some(span) => match serde_json::from_str::<Option<SystemText<'_>>>(text(span)) {
                Ok(None) => Some(0),
                Ok(Some(SystemText::Text(text))) => tokenizer.count_text(&text),
                Ok(Some(SystemText::Blocks(blocks))) => blocks
                    .iter()
                    .map(|block| tokenizer.count_text(&block.text))
                    .sum(),
                Err(_) => None,
            },
        };
        match (prompt, tools, instructions) {
            (Some(prompt), Some(tools), Some(instructions)) => prompt + tools + instructions,
            _ => self.prompt_tokens_estimate,
        }
    }

    /// The body as the caller sent it.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body to send upstream. Without changes this is the caller's body itself, not a copy.
    pub fn rewrite(&self, rewrite: &Rewrite<'_>) -> Bytes {
        let new_model = rewrite.model.filter(|m| *m != self.model);
        let add_usage = rewrite.include_usage && self.stream && !self.include_usage;
        let new_cap = rewrite
            .max_output_tokens
            .filter(|cap| self.max_tokens.is_none_or(|asked| cap.tokens < asked));
        if new_model.is_none() && !add_usage && new_cap.is_none() {
            return self.body.clone();
        }
        let close = self
            .body
            .iter()
            .rposition(|b| *b == b'}')
            .expect("a JSON object ends with }");
        // Splices, in body order: (start, end, replacement).
        let mut splices: Vec<(usize, usize, Splice<'_>)> = Vec::with_capacity(3);
        if let Some(cap) = new_cap {
            let present = self.max_tokens_spans.iter().flatten();
            if present.clone().next().is_none() {
                splices.push((close, close, Splice::AddCap(cap)));
            } else {
                for &(start, end) in present {
                    splices.push((start, end, Splice::Tokens(cap.tokens)));
                }
            }
        }
        if let Some(model) = new_model {
            splices.push((self.model_span.0, self.model_span.1, Splice::Model(model)));
        }
        if add_usage {
            match self.stream_options_span {
                Some((start, end)) => splices.push((
                    start,
                    end,
                    Splice::Text(merged_stream_options(&self.body[start..end])),
                )),
                None => splices.push((close, close, Splice::AddStreamOptions)),
            }
        }
        splices.sort_by_key(|s| s.0);
        let mut out = BytesMut::with_capacity(self.body.len() + 64);
        let mut at = 0;
        for (start, end, splice) in splices {
            out.extend_from_slice(&self.body[at..start]);
            splice.write(&mut out);
            at = end;
        }
        out.extend_from_slice(&self.body[at..]);
        out.freeze()
    }
}

/// What replaces a span of a request body in [`InspectedRequest::rewrite`], written straight
/// into the new body.
enum Splice<'a> {
    /// An output cap's value.
    Tokens(u64),
    /// An output cap field the caller did not send, added at the end.
    AddCap(OutputCap),
    /// The model, as a JSON string.
    Model(&'a str),
    /// `stream_options` asking for usage, added at the end.
    AddStreamOptions,
    /// Any other JSON text.
    Text(String),
}

impl Splice<'_> {
    fn write(&self, out: &mut BytesMut) {
        // Writing to a BytesMut cannot fail.
        let _ = match self {
            Splice::Tokens(tokens) => write!(out, "{tokens}"),
            Splice::AddCap(cap) => write!(out, r#","{}":{}"#, cap.field, cap.tokens),
            Splice::Model(model) => {
                serde_json::to_writer(out.writer(), model).expect("a string serialises");
                Ok(())
            }
            Splice::AddStreamOptions => {
                out.write_str(r#","stream_options":{"include_usage":true}"#)
            }
            Splice::Text(text) => out.write_str(text),
        };
    }
}

/// The byte range a borrowed raw value occupies inside the body it was parsed from.
fn span_in(body: &[u8], raw: &RawValue) -> (usize, usize) {
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    (start, start + raw.get().len())
}

/// `stream_options` (an object, or null) with `include_usage` set to true, other keys kept.
fn merged_stream_options(raw: &[u8]) -> String {
    let mut options: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).unwrap_or_default();
    options.insert("include_usage".into(), true.into());
    serde_json::Value::Object(options).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(body: &str) -> InspectedRequest {
        InspectedRequest::parse(Bytes::copy_from_slice(body.as_bytes())).unwrap()
    }

    #[test]
    fn reads_model_stream_and_limits() {
        let r = inspect(r#"{"messages":[],"model":"gpt-4o-mini","stream":true,"max_tokens":50}"#);
        assert_eq!(
            (r.model.as_str(), r.stream, r.include_usage, r.max_tokens),
            ("gpt-4o-mini", true, false, Some(50))
        );
        let r = inspect(
            r#"{"model":"m","stream_options":{"include_usage":true},"max_completion_tokens":9,"max_tokens":5}"#,
        );
        assert!(r.include_usage);
        assert_eq!(r.max_tokens, Some(9));
    }

    #[test]
    fn an_output_cap_lowers_the_callers_or_adds_one() {
        let cap = |tokens| Rewrite {
            max_output_tokens: Some(OutputCap {
                tokens,
                field: "max_completion_tokens",
            }),
            ..Rewrite::default()
        };
        let text = |r: &InspectedRequest, tokens| {
            String::from_utf8(r.rewrite(&cap(tokens)).to_vec()).unwrap()
        };
        let r = inspect(r#"{"model":"m","max_tokens": 500 ,"x":1}"#);
        assert_eq!(text(&r, 90), r#"{"model":"m","max_tokens": 90 ,"x":1}"#);
        assert_eq!(
            text(&r, 900),
            r#"{"model":"m","max_tokens": 500 ,"x":1}"#,
            "never raised"
        );
        let r = inspect(r#"{"max_completion_tokens":500,"model":"m","max_tokens":400}"#);
        assert_eq!(
            text(&r, 90),
            r#"{"max_completion_tokens":90,"model":"m","max_tokens":90}"#
        );
        let r = inspect(r#"{"model":"m","stream":true}"#);
        let both = Rewrite {
            include_usage: true,
            ..cap(7)
        };
        assert_eq!(
            String::from_utf8(r.rewrite(&both).to_vec()).unwrap(),
            r#"{"model":"m","stream":true,"max_completion_tokens":7,"stream_options":{"include_usage":true}}"#
        );
        assert!(InspectedRequest::parse(Bytes::from(r#"{"model":"m","max_tokens":-1}"#)).is_err());
        assert_eq!(
            inspect(r#"{"model":"m","max_tokens":null}"#).max_tokens,
            None
        );
    }

    #[test]
    fn reads_the_traits_rules_match_on() {
        let r = inspect(r#"{"model":"m","messages":[{"role":"user","content":"abcdefgh"}]}"#);
        assert_eq!((r.has_tools, r.has_images), (false, false));
        assert_eq!(
            r.prompt_tokens_estimate,
            r#"[{"role":"user","content":"abcdefgh"}]"#.len().div_ceil(4) as u64
        );
        let r = inspect(
            r#"{"model":"m","tools":[{"type":"function"}],"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
        );
        assert_eq!((r.has_tools, r.has_images), (true, true));
        let r = inspect(r#"{"model":"m","tools":[ ],"input":"some text"}"#);
        assert!(!r.has_tools);
        assert_eq!(r.prompt_tokens_estimate, 3);
        assert!(!inspect(r#"{"model":"m","tools":null}"#).has_tools);
    }

    #[test]
    fn counts_prompt_tokens_with_a_known_tokenizer() {
        let gpt = Tokenizer::of_model("gpt-4o-mini");
        let r = inspect(r#"{"model":"m","messages":[{"role":"user","content":"Hello world"}]}"#);
        assert_eq!(r.prompt_tokens(gpt), 9);
        assert_eq!(r.prompt_tokens(None), r.prompt_tokens_estimate);
        let r = inspect(r#"{"model":"m","input":["Hello world","Hello world"]}"#);
        assert_eq!(r.prompt_tokens(gpt), 4);
        let r = inspect(r#"{"model":"m","input":[[1,2,3]]}"#);
        assert_eq!(r.prompt_tokens(gpt), r.prompt_tokens_estimate);
        let r = inspect(
            r#"{"model":"m","messages":[{"role":"user","content":"Hello world"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
        );
        assert!(r.prompt_tokens(gpt) > 9);
    }

    #[test]
    fn reads_a_responses_request() {
        let body = r#"{"model":"gpt-4.1","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Hello world"},{"type":"input_image","file_id":"file-1"}]}],"max_output_tokens":64,"stream":true}"#;
        let r = inspect(body);
        assert_eq!(
            (r.max_tokens, r.stream, r.has_images),
            (Some(64), true, true)
        );
        let input =
            &body[body.find(r#"[{"role""#).unwrap()..body.find(r#","max_output_tokens""#).unwrap()];
        assert_eq!(
            r.prompt_tokens_estimate,
            (input.len() + r#""Be brief.""#.len()).div_ceil(4) as u64
        );
        let r = inspect(r#"{"model":"m","max_tokens":9,"max_output_tokens":5}"#);
        assert_eq!(r.max_tokens, Some(9));
        let r = inspect(r#"{"model":"m","input":"hi","max_output_tokens":500}"#);
        let cap = Rewrite {
            max_output_tokens: Some(OutputCap {
                tokens: 90,
                field: "max_output_tokens",
            }),
            ..Rewrite::default()
        };
        assert_eq!(
            std::str::from_utf8(&r.rewrite(&cap)).unwrap(),
            r#"{"model":"m","input":"hi","max_output_tokens":90}"#
        );
    }

    #[test]
    fn counts_a_responses_input_with_a_known_tokenizer() {
        let gpt = Tokenizer::of_model("gpt-4o-mini");
        // "Hello world" is two tokens, "user" one: 3 + 1 + 2, plus 3 priming; "Be brief." 3.
        let r = inspect(
            r#"{"model":"m","input":[{"role":"user","content":"Hello world"}],"instructions":"Be brief."}"#,
        );
        assert_eq!(r.prompt_tokens(gpt), 9 + 3);
        let anthropic = inspect(
            r#"{"model":"m","max_tokens":5,"system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":"Hello world"}]}"#,
        );
        let without = inspect(
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hello world"}]}"#,
        );
        assert!(anthropic.prompt_tokens_estimate > without.prompt_tokens_estimate);
        let o200k = Tokenizer::of_model("gpt-4o").unwrap();
        assert_eq!(
            anthropic.prompt_tokens(Some(o200k)),
            without.prompt_tokens(Some(o200k)) + 3,
            "an Anthropic system prompt counts: \"Be brief.\" is 3 tokens"
        );
        let r = inspect(r#"{"model":"m","input":"Hello world","instructions":null}"#);
        assert_eq!(r.prompt_tokens(gpt), 2);
        let r = inspect(
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"Hello world"}]},{"type":"reasoning","encrypted_content":"gAAAAB"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"Hello world"}]}"#,
        );
        let counted = r.prompt_tokens(gpt);
        assert!(counted > 9 + 3 + 2, "{counted}");
        assert_ne!(counted, r.prompt_tokens_estimate);
        let r = inspect(r#"{"model":"m","input":[1,2,3]}"#);
        assert_eq!(r.prompt_tokens(gpt), r.prompt_tokens_estimate);
    }

    #[test]
    fn refuses_what_cannot_be_routed() {
        for (body, expected) in [
            ("{not json", "not valid JSON"),
            ("[1,2]", "not valid JSON"),
            (r#"{"messages":[]}"#, "missing required field `model`"),
            (r#"{"model":42}"#, "`model` is invalid"),
            (r#"{"model":""}"#, "`model` is invalid"),
            (r#"{"model":"a","model":"b"}"#, "not valid JSON"),
            (r#"{"model":"a"} trailing"#, "not valid JSON"),
            (r#"{"model":"a","stream":"yes"}"#, "not valid JSON"),
            (
                r#"{"model":"a","stream_options":7}"#,
                "`stream_options` is invalid",
            ),
        ] {
            let error = InspectedRequest::parse(Bytes::from(body))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn rewrite_changes_only_the_model_bytes() {
        let body = r#"{ "model" : "fast", "messages":[{"role":"user","content":"hi \"model\""}],"x-unknown":{"a":1.50} }"#;
        let r = inspect(body);
        let out = r.rewrite(&Rewrite {
            model: Some("gpt-4o-mini"),
            include_usage: true,
            max_output_tokens: None,
        });
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{ "model" : "gpt-4o-mini", "messages":[{"role":"user","content":"hi \"model\""}],"x-unknown":{"a":1.50} }"#
        );
    }

    #[test]
    fn no_change_returns_the_same_buffer() {
        let r = inspect(
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":100}"#,
        );
        let out = r.rewrite(&Rewrite {
            model: Some("m"),
            include_usage: true,
            max_output_tokens: Some(OutputCap {
                tokens: 100,
                field: "max_tokens",
            }),
        });
        assert_eq!(out.as_ptr(), r.body().as_ptr());
    }

    #[test]
    fn asks_for_stream_usage_when_the_caller_did_not() {
        let r = inspect(r#"{"model":"a","stream":true}"#);
        let out = r.rewrite(&Rewrite {
            model: Some("b"),
            include_usage: true,
            ..Rewrite::default()
        });
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["model"], "b");
        assert_eq!(value["stream_options"]["include_usage"], true);

        let r = inspect(
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":false,"other":1}}"#,
        );
        let value: serde_json::Value = serde_json::from_slice(&r.rewrite(&Rewrite {
            model: None,
            include_usage: true,
            ..Rewrite::default()
        }))
        .unwrap();
        assert_eq!(
            value["stream_options"],
            serde_json::json!({"include_usage": true, "other": 1})
        );

        let r = inspect(r#"{"model":"a","stream":true,"stream_options":null}"#);
        let value: serde_json::Value = serde_json::from_slice(&r.rewrite(&Rewrite {
            model: None,
            include_usage: true,
            ..Rewrite::default()
        }))
        .unwrap();
        assert_eq!(value["stream_options"]["include_usage"], true);
    }
}
