//! A stream read through its wire format's decoder as it passes: re-encoded event by event in
//! the caller's dialect when the two differ, or passed on byte for byte when they agree and
//! only its usage is wanted. Nothing is held back beyond the event being decoded.

use bytes::Bytes;
use tollgate_llm::Usage;
use tollgate_llm::chat::{FinishReason, StreamDecoder, StreamEncoder, StreamError, StreamEvent};

/// One upstream stream on its way to the caller.
#[derive(Debug)]
pub(crate) struct StreamTranslation {
    decoder: Box<dyn StreamDecoder>,
    /// `None`: the caller speaks the upstream's format; its bytes pass unchanged.
    encoder: Option<Box<dyn StreamEncoder>>,
    /// The model and id a format without them in its stream (Bedrock) answers with.
    model: String,
    id: String,
    events: Vec<StreamEvent>,
    usage: Option<Usage>,
    output_events: u64,
    finished: bool,
    finish_reason: Option<FinishReason>,
    /// A passed-through stream the decoder could not follow: its bytes still pass.
    lost: bool,
}

impl StreamTranslation {
    /// Translates into the caller's dialect with `encoder`; `model` and `id` fill in what the
    /// upstream's stream does not say.
    pub(crate) fn translating(
        decoder: Box<dyn StreamDecoder>,
        encoder: Box<dyn StreamEncoder>,
        model: &str,
        id: String,
    ) -> Self {
        Self::new(decoder, Some(encoder), model.to_string(), id)
    }

    /// Passes the stream on unchanged, reading its usage.
    pub(crate) fn watching(decoder: Box<dyn StreamDecoder>) -> Self {
        Self::new(decoder, None, String::new(), String::new())
    }

    fn new(
        decoder: Box<dyn StreamDecoder>,
        encoder: Option<Box<dyn StreamEncoder>>,
        model: String,
        id: String,
    ) -> Self {
        Self {
            decoder,
            encoder,
            model,
            id,
            events: Vec::new(),
            usage: None,
            output_events: 0,
            finished: false,
            finish_reason: None,
            lost: false,
        }
    }

    /// Takes a chunk from upstream: what to send the caller now, and the error that ends the
    /// stream, if the chunk holds one (what came before it is still sent).
    pub(crate) fn on_chunk(&mut self, chunk: Bytes) -> (Option<Bytes>, Option<StreamError>) {
        let result = if self.lost {
            Ok(())
        } else {
            self.decoder.push(&chunk, &mut self.events)
        };
        self.emit(chunk, result)
    }

    /// The upstream ended: the closing bytes, and an error if the stream ended unfinished.
    pub(crate) fn finish(&mut self) -> (Option<Bytes>, Option<StreamError>) {
        let result = if self.lost {
            Ok(())
        } else {
            self.decoder.finish(&mut self.events)
        };
        let (out, error) = self.emit(Bytes::new(), result);
        match (&mut self.encoder, error) {
            (Some(encoder), None) => {
                let mut tail = out.map(Vec::from).unwrap_or_default();
                encoder.finish(&mut tail);
                ((!tail.is_empty()).then(|| Bytes::from(tail)), None)
            }
            (_, error) => (out, error),
        }
    }

    /// Handles the decoded events: counted, then encoded (or the chunk itself passed on).
    fn emit(
        &mut self,
        chunk: Bytes,
        result: Result<(), StreamError>,
    ) -> (Option<Bytes>, Option<StreamError>) {
        let mut out = Vec::new();
        for mut event in self.events.drain(..) {
            match &mut event {
                StreamEvent::Start { id, model } => {
                    if model.is_empty() {
                        model.clone_from(&self.model);
                    }
                    if id.is_empty() {
                        id.clone_from(&self.id);
                    }
                }
                StreamEvent::Text(_) | StreamEvent::ToolArguments { .. } => self.output_events += 1,
                StreamEvent::Usage(usage) => self.usage = Some(*usage),
                StreamEvent::Finish(reason) => {
                    self.finished = true;
                    self.finish_reason.get_or_insert(*reason);
                }
                StreamEvent::ToolCallStart { .. } => {}
            }
            if let Some(encoder) = &mut self.encoder {
                encoder.encode(&event, &mut out);
            }
        }
        match &self.encoder {
            None => {
                if result.is_err() {
                    self.lost = true;
                }
                ((!chunk.is_empty()).then_some(chunk), None)
            }
            Some(_) => ((!out.is_empty()).then(|| Bytes::from(out)), result.err()),
        }
    }

    /// The latest usage the stream reported.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Why the model stopped, once the stream said.
    pub(crate) fn finish_reason(&self) -> Option<FinishReason> {
        self.finish_reason
    }

    /// Events that carried output so far (an estimate of output tokens when usage is missing).
    pub(crate) fn output_events(&self) -> u64 {
        self.output_events
    }

    /// Whether the model finished: after this, a caller that hangs up has the whole answer.
    pub(crate) fn is_done(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_llm::{Dialect, WireFormat};

    const ANTHROPIC_STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn translates_event_by_event_and_keeps_usage() {
        let mut t = StreamTranslation::translating(
            WireFormat::Anthropic.decoder(),
            Dialect::OpenAI.encoder(true, 1),
            "claude",
            "id".into(),
        );
        let mut caller = String::new();
        for piece in ANTHROPIC_STREAM.as_bytes().chunks(7) {
            let (out, error) = t.on_chunk(Bytes::copy_from_slice(piece));
            assert!(error.is_none());
            caller.push_str(std::str::from_utf8(&out.unwrap_or_default()).unwrap());
        }
        let (tail, error) = t.finish();
        assert!(error.is_none());
        caller.push_str(std::str::from_utf8(&tail.unwrap()).unwrap());
        assert!(caller.contains("\"content\":\"Hi\""), "{caller}");
        assert!(caller.ends_with("data: [DONE]\n\n"), "{caller}");
        assert!(t.is_done());
        assert_eq!(t.output_events(), 1);
        let usage = t.usage().unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (7, 3));
    }

    #[test]
    fn a_watched_stream_passes_unchanged_even_when_undecodable() {
        let mut t = StreamTranslation::watching(WireFormat::Anthropic.decoder());
        let chunk = Bytes::from_static(ANTHROPIC_STREAM.as_bytes());
        let (out, error) = t.on_chunk(chunk.clone());
        assert_eq!(out.unwrap(), chunk);
        assert!(error.is_none());
        assert_eq!(t.usage().unwrap().output_tokens, 3);
        let junk = Bytes::from_static(b"data: {not json\n\n");
        let mut t = StreamTranslation::watching(WireFormat::Anthropic.decoder());
        assert_eq!(t.on_chunk(junk.clone()).0.unwrap(), junk);
        assert_eq!(t.on_chunk(chunk.clone()).0.unwrap(), chunk);
    }

    #[test]
    fn an_upstream_error_event_ends_a_translated_stream() {
        let mut t = StreamTranslation::translating(
            WireFormat::Anthropic.decoder(),
            Dialect::OpenAI.encoder(false, 1),
            "claude",
            "id".into(),
        );
        let stream = format!(
            "{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n",
            &ANTHROPIC_STREAM[..ANTHROPIC_STREAM.find("event: content_block_stop").unwrap()]
        );
        let (out, error) = t.on_chunk(Bytes::from(stream));
        assert!(std::str::from_utf8(&out.unwrap()).unwrap().contains("Hi"));
        assert!(matches!(error, Some(StreamError::Upstream(_))));
    }
}
