//! OpenAI embeddings requests (`POST /v1/embeddings`) translated for Google's embedding APIs,
//! and their answers back: Gemini's `batchEmbedContents` and Vertex AI's `predict`.
//!
//! Carried: `model`, `input` (one text or several), `dimensions` (Google's
//! `outputDimensionality`), `encoding_format` (`float`, or `base64`: little-endian `f32`s, as
//! OpenAI's SDKs ask by default). Dropped: `user` (Google's embedding APIs take no end-user
//! id). Refused: token-array inputs (Google takes text only). Usage: Vertex reports each
//! input's tokens; Gemini reports none, so the caller's count is the gateway's estimate.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::TranslateError;

/// An embeddings request, whatever API it came in or goes out in.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingRequest {
    /// The texts to embed, in order.
    pub inputs: Vec<String>,
    /// The vectors' length, when the caller chose one.
    pub dimensions: Option<u32>,
    /// Whether the caller wants the vectors base64-encoded.
    pub base64: bool,
}

/// The vectors an upstream returned, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// One vector per input.
    pub vectors: Vec<Vec<f32>>,
    /// The input tokens the upstream counted, if it says.
    pub input_tokens: Option<u64>,
}

/// The Google embedding API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingFormat {
    /// Gemini's `models/{model}:batchEmbedContents`.
    GeminiBatch,
    /// Vertex AI's `publishers/google/models/{model}:predict`.
    VertexPredict,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenAIRequest {
    /// The gateway routes on it; here it need only be allowed.
    #[serde(rename = "model")]
    _model: serde::de::IgnoredAny,
    input: Input,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    encoding_format: Option<String>,
    /// Dropped: Google's embedding APIs take no end-user id.
    #[serde(default, rename = "user")]
    _user: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(serde::de::IgnoredAny),
}

const GOOGLE: &str = "Google embeddings";

/// Reads an OpenAI embeddings request.
pub fn parse_openai_request(body: &[u8]) -> Result<EmbeddingRequest, TranslateError> {
    let request: OpenAIRequest = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Invalid(format!("invalid embeddings request: {e}")))?;
    let inputs = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) if !texts.is_empty() => texts,
        Input::Many(_) => {
            return Err(TranslateError::Invalid(
                "`input` must not be an empty array".into(),
            ));
        }
        Input::Tokens(_) => {
            return Err(TranslateError::Unsupported {
                field: "input (token arrays)".into(),
                upstream: GOOGLE,
            });
        }
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(TranslateError::Invalid(format!(
                "`encoding_format` must be float or base64, not {other:?}"
            )));
        }
    };
    Ok(EmbeddingRequest {
        inputs,
        dimensions: request.dimensions,
        base64,
    })
}

impl EmbeddingFormat {
    /// The request body for `model`.
    pub fn write_request(self, request: &EmbeddingRequest, model: &str) -> Vec<u8> {
        let body = match self {
            EmbeddingFormat::GeminiBatch => {
                let requests: Vec<Value> = request
                    .inputs
                    .iter()
                    .map(|text| {
                        let mut one = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
                        if let Some(dimensions) = request.dimensions {
                            one["outputDimensionality"] = json!(dimensions);
                        }
                        one
                    })
                    .collect();
                json!({"requests": requests})
            }
            EmbeddingFormat::VertexPredict => {
                let instances: Vec<Value> = request
                    .inputs
                    .iter()
                    .map(|text| json!({"content": text}))
                    .collect();
                let mut body = json!({"instances": instances});
                if let Some(dimensions) = request.dimensions {
                    body["parameters"] = json!({"outputDimensionality": dimensions});
                }
                body
            }
        };
        body.to_string().into_bytes()
    }

    /// Reads the upstream's answer.
    pub fn parse_response(self, body: &[u8]) -> Result<Embeddings, TranslateError> {
        let invalid = |e: serde_json::Error| {
            TranslateError::Invalid(format!("invalid embeddings answer: {e}"))
        };
        match self {
            EmbeddingFormat::GeminiBatch => {
                #[derive(Deserialize)]
                struct Batch {
                    embeddings: Vec<Values>,
                }
                #[derive(Deserialize)]
                struct Values {
                    values: Vec<f32>,
                }
                let batch: Batch = serde_json::from_slice(body).map_err(invalid)?;
                Ok(Embeddings {
                    vectors: batch.embeddings.into_iter().map(|e| e.values).collect(),
                    input_tokens: None,
                })
            }
            EmbeddingFormat::VertexPredict => {
                #[derive(Deserialize)]
                struct Predict {
                    predictions: Vec<Prediction>,
                }
                #[derive(Deserialize)]
                struct Prediction {
                    embeddings: Embedding,
                }
                #[derive(Deserialize)]
                struct Embedding {
                    values: Vec<f32>,
                    #[serde(default)]
                    statistics: Option<Statistics>,
                }
                #[derive(Deserialize)]
                struct Statistics {
                    token_count: f64,
                }
                let predict: Predict = serde_json::from_slice(body).map_err(invalid)?;
                let mut tokens = Some(0u64);
                let vectors = predict
                    .predictions
                    .into_iter()
                    .map(|p| {
                        let counted = p.embeddings.statistics.map(|s| s.token_count as u64);
                        tokens = tokens.zip(counted).map(|(sum, n)| sum + n);
                        p.embeddings.values
                    })
                    .collect();
                Ok(Embeddings {
                    vectors,
                    input_tokens: tokens,
                })
            }
        }
    }
}

/// An OpenAI embeddings answer: `input_tokens` is the upstream's count or the gateway's
/// estimate.
pub fn write_openai_response(
    embeddings: &Embeddings,
    model: &str,
    base64: bool,
    input_tokens: u64,
) -> Vec<u8> {
    let data: Vec<Value> = embeddings
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_request_becomes_a_gemini_batch_and_the_answer_comes_back() {
        let request = parse_openai_request(
            br#"{"model":"text-embedding-004","input":["a","b"],"dimensions":3,"user":"u1"}"#,
        )
        .unwrap();
        assert_eq!(request.inputs, ["a", "b"]);
        let body: Value = serde_json::from_slice(
            &EmbeddingFormat::GeminiBatch.write_request(&request, "text-embedding-004"),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3},
            ]})
        );
        let answer = EmbeddingFormat::GeminiBatch
            .parse_response(br#"{"embeddings":[{"values":[0.5,1.0,-2.0]},{"values":[0,0,1]}]}"#)
            .unwrap();
        assert_eq!(answer.input_tokens, None);
        let out: Value =
            serde_json::from_slice(&write_openai_response(&answer, "m", false, 2)).unwrap();
        assert_eq!(out["data"][0]["embedding"], json!([0.5, 1.0, -2.0]));
        assert_eq!(out["data"][1]["index"], 1);
        assert_eq!(out["usage"]["prompt_tokens"], 2);
    }

    #[test]
    fn vertex_counts_tokens_and_base64_is_little_endian_floats() {
        let request =
            parse_openai_request(br#"{"model":"m","input":"hi","encoding_format":"base64"}"#)
                .unwrap();
        assert!(request.base64);
        let body: Value =
            serde_json::from_slice(&EmbeddingFormat::VertexPredict.write_request(&request, "m"))
                .unwrap();
        assert_eq!(body, json!({"instances": [{"content": "hi"}]}));
        let answer = EmbeddingFormat::VertexPredict
            .parse_response(br#"{"predictions":[{"embeddings":{"values":[1.0,0.5],"statistics":{"token_count":3,"truncated":false}}}]}"#)
            .unwrap();
        assert_eq!(answer.input_tokens, Some(3));
        let out: Value =
            serde_json::from_slice(&write_openai_response(&answer, "m", true, 3)).unwrap();
        let encoded = out["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(bytes, [1.0f32.to_le_bytes(), 0.5f32.to_le_bytes()].concat());
    }

    #[test]
    fn token_inputs_and_unknown_fields_are_refused() {
        assert!(matches!(
            parse_openai_request(br#"{"model":"m","input":[[1,2,3]]}"#),
            Err(TranslateError::Unsupported { .. })
        ));
        assert!(parse_openai_request(br#"{"model":"m","input":"x","extra":1}"#).is_err());
        assert!(parse_openai_request(br#"{"model":"m","input":[]}"#).is_err());
        assert!(
            parse_openai_request(br#"{"model":"m","input":"x","encoding_format":"int8"}"#).is_err()
        );
    }
}
