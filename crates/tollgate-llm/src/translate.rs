//! Which translator serves which side: a caller [`Dialect`] reads requests and writes answers
//! and streams; an upstream [`WireFormat`] writes requests and reads answers, streams and
//! errors. The gateway picks both per request and never names a format module itself.

use crate::chat::{ChatRequest, ChatResponse, StreamDecoder, StreamEncoder, TranslateError};
use crate::openai::chat::MaxTokensField;
use crate::{Dialect, Usage, anthropic, bedrock, gemini, openai};

/// The wire format an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    /// OpenAI Chat Completions (OpenAI, Azure OpenAI, OpenAI-compatible servers). The field
    /// that carries the output cap differs: OpenAI's reasoning models refuse `max_tokens`,
    /// many compatible servers know only it.
    OpenAIChat(MaxTokensField),
    /// Anthropic Messages.
    Anthropic,
    /// Anthropic Messages as Vertex AI's `rawPredict` takes them: the model in the URL and
    /// `anthropic_version` in the body. Answers and streams are Anthropic's.
    VertexAnthropic,
    /// Gemini generateContent (Gemini, and Gemini models on Vertex AI).
    Gemini,
    /// Bedrock Converse.
    Bedrock,
}

impl WireFormat {
    /// The format's name in errors and traces.
    pub fn name(self) -> &'static str {
        match self {
            WireFormat::OpenAIChat(_) => "OpenAI Chat Completions",
            WireFormat::Anthropic => "Anthropic Messages",
            WireFormat::VertexAnthropic => "Anthropic Messages on Vertex AI",
            WireFormat::Gemini => "Gemini generateContent",
            WireFormat::Bedrock => "Bedrock Converse",
        }
    }

    /// Whether a caller in `dialect` can be passed through to this format untranslated.
    pub fn speaks(self, dialect: Dialect) -> bool {
        matches!(
            (self, dialect),
            (WireFormat::OpenAIChat(_), Dialect::OpenAI)
                | (WireFormat::Anthropic, Dialect::Anthropic)
        )
    }

    /// A request body in this format.
    pub fn write_request(self, request: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
        match self {
            WireFormat::OpenAIChat(field) => openai::chat::write_request(request, field),
            WireFormat::Anthropic => anthropic::write_request(request),
            WireFormat::VertexAnthropic => anthropic::write_vertex_request(request),
            WireFormat::Gemini => gemini::write_request(request),
            WireFormat::Bedrock => bedrock::write_request(request),
        }
    }

    /// Reads a complete answer in this format.
    pub fn parse_response(self, body: &[u8]) -> Result<ChatResponse, TranslateError> {
        match self {
            WireFormat::OpenAIChat(_) => openai::chat::parse_response(body),
            WireFormat::Anthropic | WireFormat::VertexAnthropic => anthropic::parse_response(body),
            WireFormat::Gemini => gemini::parse_response(body),
            WireFormat::Bedrock => bedrock::parse_response(body),
        }
    }

    /// The usage a complete answer in this format reports, if it can be read.
    pub fn usage_of_response(self, body: &[u8]) -> Option<Usage> {
        match self {
            WireFormat::OpenAIChat(_) => openai::usage_of_response(body),
            _ => self
                .parse_response(body)
                .ok()
                .map(|response| response.usage),
        }
    }

    /// A decoder of this format's streams.
    pub fn decoder(self) -> Box<dyn StreamDecoder> {
        match self {
            WireFormat::OpenAIChat(_) => Box::new(openai::chat::Decoder::new()),
            WireFormat::Anthropic | WireFormat::VertexAnthropic => {
                Box::new(anthropic::Decoder::new())
            }
            WireFormat::Gemini => Box::new(gemini::Decoder::new()),
            WireFormat::Bedrock => Box::new(bedrock::Decoder::new()),
        }
    }

    /// The message of an error body in this format.
    pub fn error_message(self, body: &[u8]) -> Option<String> {
        match self {
            WireFormat::OpenAIChat(_) => openai::chat::error_message(body),
            WireFormat::Anthropic | WireFormat::VertexAnthropic => anthropic::error_message(body),
            WireFormat::Gemini => gemini::error_message(body),
            WireFormat::Bedrock => bedrock::error_message(body),
        }
    }
}

impl Dialect {
    /// Reads a chat request in this dialect into the common shape, for an upstream that
    /// speaks another.
    pub fn parse_request(self, body: &[u8]) -> Result<ChatRequest, TranslateError> {
        match self {
            Dialect::OpenAI => openai::chat::parse_request(body),
            Dialect::OpenAIResponses => openai::responses::parse_request(body),
            Dialect::Anthropic => anthropic::parse_request(body),
        }
    }

    /// A complete answer in this dialect; `created` is the Unix time OpenAI's answers carry.
    pub fn write_response(self, response: &ChatResponse, created: u64) -> Vec<u8> {
        match self {
            Dialect::OpenAI => openai::chat::write_response(response, created),
            Dialect::OpenAIResponses => openai::responses::write_response(response, created),
            Dialect::Anthropic => anthropic::write_response(response),
        }
    }

    /// An encoder of streams in this dialect. `include_usage`: the OpenAI Chat Completions
    /// caller asked for a usage chunk (Responses and Anthropic streams always carry usage, so
    /// it is ignored for them).
    pub fn encoder(self, include_usage: bool, created: u64) -> Box<dyn StreamEncoder> {
        match self {
            Dialect::OpenAI => Box::new(openai::chat::Encoder::new(include_usage, created)),
            Dialect::OpenAIResponses => Box::new(openai::responses::Encoder::new(created)),
            Dialect::Anthropic => Box::new(anthropic::Encoder::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::StreamEvent;

    #[test]
    fn only_same_format_passes_through() {
        let openai = WireFormat::OpenAIChat(MaxTokensField::MaxTokens);
        assert!(openai.speaks(Dialect::OpenAI));
        assert!(!openai.speaks(Dialect::Anthropic));
        assert!(WireFormat::Anthropic.speaks(Dialect::Anthropic));
        assert!(!WireFormat::Gemini.speaks(Dialect::OpenAI));
        assert!(!WireFormat::VertexAnthropic.speaks(Dialect::Anthropic));
        let formats = [
            openai,
            WireFormat::Anthropic,
            WireFormat::Gemini,
            WireFormat::Bedrock,
            WireFormat::VertexAnthropic,
        ];
        assert!(!formats.iter().any(|f| f.speaks(Dialect::OpenAIResponses)));
    }

    #[test]
    fn claude_on_vertex_has_no_model_and_a_version_in_the_body() {
        let request = Dialect::OpenAI
            .parse_request(
                br#"{"model":"claude-sonnet-4","messages":[{"role":"user","content":"hi"}]}"#,
            )
            .unwrap();
        let body = WireFormat::VertexAnthropic.write_request(&request).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["anthropic_version"], "vertex-2023-10-16");
        assert!(value.get("model").is_none());
        assert_eq!(value["messages"][0]["content"][0]["text"], "hi");
    }

    #[test]
    fn a_responses_request_reaches_gemini_and_its_answer_comes_back() {
        let request = Dialect::OpenAIResponses
            .parse_request(
                br#"{"model":"m","instructions":"be brief","input":"hi","max_output_tokens":20}"#,
            )
            .unwrap();
        let body = WireFormat::Gemini.write_request(&request).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(value["generationConfig"]["maxOutputTokens"], 20);
        let answer = WireFormat::Gemini
            .parse_response(br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#)
            .unwrap();
        let out: serde_json::Value =
            serde_json::from_slice(&Dialect::OpenAIResponses.write_response(&answer, 7)).unwrap();
        assert_eq!(out["object"], "response");
        assert_eq!(out["id"], "resp_r1");
        assert_eq!(out["output"][0]["content"][0]["text"], "hello");
        assert_eq!(out["usage"]["total_tokens"], 7);
        let mut encoder = Dialect::OpenAIResponses.encoder(false, 7);
        let mut out = Vec::new();
        encoder.encode(&StreamEvent::Text("hi".to_owned()), &mut out);
        encoder.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: response.created\n"), "{text}");
        assert!(text.contains("event: response.completed\n"), "{text}");
    }

    #[test]
    fn an_openai_request_reaches_anthropic_and_its_answer_comes_back() {
        let request = Dialect::OpenAI
            .parse_request(br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":20}"#)
            .unwrap();
        let body = WireFormat::Anthropic.write_request(&request).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["system"], "be brief");
        assert_eq!(value["max_tokens"], 20);
        let answer = WireFormat::Anthropic
            .parse_response(br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":2}}"#)
            .unwrap();
        let out: serde_json::Value =
            serde_json::from_slice(&Dialect::OpenAI.write_response(&answer, 7)).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "hello");
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(out["usage"]["prompt_tokens"], 5);
    }

    #[test]
    fn a_gemini_stream_becomes_an_anthropic_stream() {
        let mut decoder = WireFormat::Gemini.decoder();
        let mut encoder = Dialect::Anthropic.encoder(false, 0);
        let mut events = Vec::new();
        decoder
            .push(b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\n\n", &mut events)
            .unwrap();
        decoder.finish(&mut events).unwrap();
        assert!(matches!(events[0], StreamEvent::Start { .. }));
        let mut out = Vec::new();
        for event in &events {
            encoder.encode(event, &mut out);
        }
        encoder.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message_start"), "{text}");
        assert!(text.contains("\"text\":\"hi\""), "{text}");
        assert!(
            text.trim_end()
                .ends_with("data: {\"type\":\"message_stop\"}"),
            "{text}"
        );
    }
}
