//! Counts a prompt's tokens with the model's own tokenizer, where tiktoken knows it, so that a
//! budget reserves what the provider will bill rather than a guess. A tokenizer's tables are
//! loaded on first use only (tens of MiB), so a gateway without token or USD budgets, or
//! without OpenAI models, never pays for them.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};
use std::sync::{PoisonError, RwLock};
use tiktoken_rs::CoreBPE;

/// Tokens OpenAI adds around every message (its role and separators), per its cookbook.
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the reply, once per request.
const REPLY_PRIMING: u64 = 3;
/// An image's tokens: a 1024×1024 image at high detail. Its real size is unknown until the
/// upstream fetches or decodes it, so this is an estimate.
const PER_IMAGE: u64 = 765;

/// The tokenizers whose tables are loaded (see [`Tokenizer::is_loaded`]).
static LOADED: RwLock<Vec<Tokenizer>> = RwLock::new(Vec::new());

/// How many counted texts each thread remembers ([`CountMemory`]).
const REMEMBERED_TEXTS: usize = 4096;

/// Texts this thread has counted lately, and their tokens: the same system prompt, tool
/// definitions and conversation history come back request after request (an agent resends
/// its whole history every turn), and looking a text up costs a keyed hash of it where
/// counting it again costs the tokenizer's regular expression and merges, ten times more
/// for a short sentence and more the longer the text. A slot holds the last text whose hash
/// fell on it; the hash is keyed per thread (SipHash with a random key), so a caller cannot
/// craft a text that takes another's count.
struct CountMemory {
    keys: RandomState,
    slots: Vec<Remembered>,
}

/// One remembered count; `hash` 0 is an empty slot.
#[derive(Clone, Copy, Default)]
struct Remembered {
    hash: u64,
    len: usize,
    tokens: u64,
}

thread_local! {
    static COUNT_MEMORY: RefCell<Option<CountMemory>> = const { RefCell::new(None) };
}

/// A tokenizer that tiktoken knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokenizer(tiktoken_rs::tokenizer::Tokenizer);

impl Tokenizer {
    /// The tokenizer of `model` (an upstream model name such as `gpt-4o-mini`), if known.
    pub fn of_model(model: &str) -> Option<Self> {
        tiktoken_rs::tokenizer::get_tokenizer(model).map(Self)
    }

    /// Whether the tables are loaded, so that counting with this tokenizer does not wait
    /// for them.
    pub fn is_loaded(self) -> bool {
        LOADED
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&self)
    }

    /// Loads the tables (tens of MiB, a fraction of a second of CPU): for a blocking thread,
    /// so that an async thread never stalls on the first count. False when they cannot be
    /// loaded (counting then falls back to an estimate).
    pub fn load(self) -> bool {
        self.bpe().is_some()
    }

    /// The tokenizer's tables, loaded on first use and shared afterwards.
    fn bpe(self) -> Option<&'static CoreBPE> {
        let bpe = tiktoken_rs::bpe_for_tokenizer(self.0).ok()?;
        if !self.is_loaded() {
            let mut loaded = LOADED.write().unwrap_or_else(PoisonError::into_inner);
            if !loaded.contains(&self) {
                loaded.push(self);
            }
        }
        Some(bpe)
    }

    /// Counts the tokens of an OpenAI chat `messages` array (raw JSON), with the framing
    /// tokens OpenAI adds. `None` when the tables cannot be loaded or the JSON is not a
    /// messages array: the caller falls back to an estimate.
    pub fn count_openai_messages(self, messages: &str) -> Option<u64> {
        let bpe = self.bpe()?;
        let messages: Vec<OpenAIMessage<'_>> = serde_json::from_str(messages).ok()?;
        let count = |text: &str| self.count_remembered(bpe, text);
        let mut total = REPLY_PRIMING;
        for message in &messages {
            total += PER_MESSAGE + count(&message.role);
            if let Some(name) = &message.name {
                total += 1 + count(name);
            }
            if let Some(content) = message.content {
                total += count_content(content.get(), count);
            }
            for call in message.tool_calls.iter().flatten() {
                total += 1 + count(&call.function.name) + count(&call.function.arguments);
            }
        }
        Some(total)
    }

    /// Counts the tokens of a Responses API `input` array (raw JSON): the texts and images of
    /// its messages, with the framing of each as for chat messages, the names and arguments of
    /// function calls and the outputs of function calls. Reasoning items count nothing (they
    /// are not sent to another upstream); items of other types are estimated by their size.
    /// `None` when the tables cannot be loaded or the JSON is not an array of objects.
    pub fn count_responses_items(self, items: &str) -> Option<u64> {
        let bpe = self.bpe()?;
        let items: Vec<&RawValue> = serde_json::from_str(items).ok()?;
        let count = |text: &str| self.count_remembered(bpe, text);
        let mut total = REPLY_PRIMING;
        for raw in items {
            if !raw.get().starts_with('{') {
                return None;
            }
            let item: ResponsesItem<'_> = serde_json::from_str(raw.get()).ok()?;
            total += match item.kind.as_deref() {
                None | Some("message") => {
                    let content = item.content.map_or(0, |c| count_content(c.get(), count));
                    let role = item.role.as_deref().unwrap_or_default();
                    PER_MESSAGE + count(role) + content
                }
                Some("function_call") => {
                    let name = item.name.as_deref().unwrap_or_default();
                    let arguments = item.arguments.as_deref().unwrap_or_default();
                    PER_MESSAGE + count(name) + count(arguments)
                }
                Some("function_call_output") => {
                    PER_MESSAGE + item.output.map_or(0, |o| count_content(o.get(), count))
                }
                Some("reasoning") => 0,
                Some(_) => raw.get().len().div_ceil(4) as u64,
            };
        }
        Some(total)
    }

    /// Counts the tokens of a text: an embedding input, or tool definitions as JSON text
    /// (close to how providers render them into the prompt).
    pub fn count_text(self, text: &str) -> Option<u64> {
        let bpe = self.bpe()?;
        Some(self.count_remembered(bpe, text))
    }

    /// The tokens of `text`, from this thread's [`CountMemory`] when it was counted lately.
    fn count_remembered(self, bpe: &CoreBPE, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        COUNT_MEMORY.with_borrow_mut(|memory| {
            let memory = memory.get_or_insert_with(|| CountMemory {
                keys: RandomState::new(),
                slots: vec![Remembered::default(); REMEMBERED_TEXTS],
            });
            let hash = memory.keys.hash_one((self.0, text)).max(1);
            let slot = &mut memory.slots[(hash % REMEMBERED_TEXTS as u64) as usize];
            if slot.hash != hash || slot.len != text.len() {
                *slot = Remembered {
                    hash,
                    len: text.len(),
                    tokens: bpe.count_ordinary(text) as u64,
                };
            }
            slot.tokens
        })
    }
}

/// The tokens of a message's `content` (or a Responses function call's `output`): a string,
/// or an array of parts.
fn count_content(content: &str, count: impl Fn(&str) -> u64) -> u64 {
    if let Ok(text) = serde_json::from_str::<Cow<'_, str>>(content) {
        return count(&text);
    }
    let parts: Vec<&RawValue> = serde_json::from_str(content).unwrap_or_default();
    parts
        .iter()
        .map(|raw| {
            let part: ContentPart<'_> = serde_json::from_str(raw.get()).unwrap_or_default();
            match part {
                ContentPart {
                    text: Some(text), ..
                } => count(&text),
                ContentPart {
                    image_url: Some(_), ..
                } => PER_IMAGE,
                ContentPart {
                    kind: Some(kind), ..
                } if kind == "input_image" => PER_IMAGE,
                _ => raw.get().len().div_ceil(4) as u64,
            }
        })
        .sum()
}

#[derive(Deserialize)]
struct OpenAIMessage<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

/// A content part: text, an image, or anything else (audio, files), estimated by its size.
#[derive(Default, Deserialize)]
struct ContentPart<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<&'a RawValue>,
}

/// An item of a Responses API `input`: a message, a function call, its output, or another.
#[derive(Deserialize)]
struct ResponsesItem<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    output: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_the_tables_marks_them_loaded() {
        let tokenizer = Tokenizer::of_model("text-davinci-003").unwrap();
        assert!(tokenizer.load());
        assert!(tokenizer.is_loaded());
        assert_eq!(tokenizer.count_text("hello world"), Some(2));
    }

    #[test]
    fn a_remembered_count_is_the_count_and_belongs_to_its_tokenizer() {
        let o200k = Tokenizer::of_model("gpt-4o").unwrap();
        let r50k = Tokenizer::of_model("text-davinci-001").unwrap();
        // Tokenizers split this text differently, so a count shared between them shows.
        let text = "    indented\n\n\n    more    spaces 12345678";
        assert_ne!(counts_of(o200k, text), counts_of(r50k, text));
        for _ in 0..2 {
            assert_eq!(o200k.count_text(text), Some(counts_of(o200k, text)));
            assert_eq!(r50k.count_text(text), Some(counts_of(r50k, text)));
        }
        // Every slot taken by other texts: the first text is counted again, as before.
        for i in 0..2 * REMEMBERED_TEXTS {
            let other = format!("text number {i}");
            assert_eq!(o200k.count_text(&other), Some(counts_of(o200k, &other)));
        }
        assert_eq!(o200k.count_text(text), Some(counts_of(o200k, text)));
        assert_eq!(o200k.count_text(""), Some(0));
    }

    fn counts_of(tokenizer: Tokenizer, text: &str) -> u64 {
        tokenizer.bpe().unwrap().count_ordinary(text) as u64
    }

    #[test]
    fn knows_openai_models_and_not_others() {
        assert!(Tokenizer::of_model("gpt-4o-mini").is_some());
        assert!(Tokenizer::of_model("gpt-4").is_some());
        assert!(Tokenizer::of_model("claude-sonnet-4-5").is_none());
        assert!(Tokenizer::of_model("fast").is_none());
    }

    #[test]
    fn counts_as_openai_does() {
        let tokenizer = Tokenizer::of_model("gpt-4o").unwrap();
        // "Hello world" is two tokens in o200k_base; "user" one: 3 + 1 + 2, plus 3 priming.
        let one = r#"[{"role":"user","content":"Hello world"}]"#;
        assert_eq!(tokenizer.count_openai_messages(one), Some(9));
        let parts = r#"[{"role":"user","content":[{"type":"text","text":"Hello world"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]"#;
        assert_eq!(tokenizer.count_openai_messages(parts), Some(9 + PER_IMAGE));
        let call = r#"[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]"#;
        let counted = tokenizer.count_openai_messages(call).unwrap();
        assert!(counted > REPLY_PRIMING + PER_MESSAGE, "{counted}");
        assert_eq!(tokenizer.count_openai_messages("{}"), None);
    }

    #[test]
    fn usual_roles_count_as_any_text_does() {
        let roles = [
            "system",
            "user",
            "assistant",
            "tool",
            "developer",
            "function",
            "critic",
        ];
        for model in ["gpt-4o", "gpt-4", "text-davinci-003"] {
            let tokenizer = Tokenizer::of_model(model).unwrap();
            for role in roles {
                let message = format!(r#"[{{"role":"{role}"}}]"#);
                assert_eq!(
                    tokenizer.count_openai_messages(&message),
                    Some(REPLY_PRIMING + PER_MESSAGE + counts_of(tokenizer, role)),
                    "{model} {role}"
                );
            }
        }
    }

    #[test]
    fn counts_responses_items_as_their_messages() {
        let tokenizer = Tokenizer::of_model("gpt-4o").unwrap();
        // The short form of a message is a chat message.
        let short = r#"[{"role":"user","content":"Hello world"}]"#;
        let typed = r#"[{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello world"}]}]"#;
        let expected = tokenizer.count_openai_messages(short);
        assert_eq!(tokenizer.count_responses_items(short), expected);
        assert_eq!(tokenizer.count_responses_items(typed), expected);
        let image = r#"[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]"#;
        assert_eq!(
            tokenizer.count_responses_items(image),
            Some(REPLY_PRIMING + PER_MESSAGE + 1 + PER_IMAGE)
        );
        let calls = r#"[{"type":"reasoning","summary":[]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"Hello world"}]}]"#;
        let counted = tokenizer.count_responses_items(calls).unwrap();
        assert!(counted > REPLY_PRIMING + 2 * PER_MESSAGE + 2, "{counted}");
        assert_eq!(tokenizer.count_responses_items("[[1,2]]"), None);
        assert_eq!(tokenizer.count_responses_items(r#""text""#), None);
    }
}
