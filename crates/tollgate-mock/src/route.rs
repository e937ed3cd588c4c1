//! Which model endpoint a request is for, read from its method and path alone, and so which
//! wire format its answer and errors are in.

use http::{Method, Response, StatusCode};

use crate::{MockBody, anthropic, bedrock, gemini, openai};

/// A wire format: its answers and its error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Format {
    /// An error with this status in this format's shape.
    pub(crate) fn error(self, status: StatusCode, message: &str) -> Response<MockBody> {
        match self {
            Format::OpenAi => openai::error(status, message),
            Format::Anthropic => anthropic::error(status, message),
            Format::Gemini => gemini::error(status, message),
            Format::Bedrock => bedrock::error(status, message),
        }
    }
}

/// A model endpoint, borrowing the names in its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `POST /v1/chat/completions`, or Azure's
    /// `POST /openai/deployments/{deployment}/chat/completions`.
    Chat { deployment: Option<&'a str> },
    /// `POST /v1/embeddings`, or Azure's `POST /openai/deployments/{deployment}/embeddings`.
    Embeddings { deployment: Option<&'a str> },
    /// `GET /v1/models`.
    Models,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// Vertex AI's `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict`
    /// (or `:streamRawPredict`, `stream`).
    VertexMessages { model: &'a str, stream: bool },
    /// `POST /v1beta/models/{model}:generateContent` (or `:streamGenerateContent`, `stream`),
    /// also under `/v1/`, and Vertex AI's `…/publishers/google/models/{model}:…`.
    Gemini { model: &'a str, stream: bool },
    /// Gemini's `POST /v1beta/models/{model}:batchEmbedContents`.
    GeminiEmbed,
    /// Vertex AI's `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predict`
    /// (embeddings).
    VertexPredict,
    /// `POST /model/{modelId}/converse` (or `/converse-stream`, `stream`).
    Converse { model: &'a str, stream: bool },
    /// Anything else.
    Unknown,
}

impl<'a> Route<'a> {
    /// The endpoint of a request with this method and path.
    pub(crate) fn new(method: &Method, path: &'a str) -> Self {
        if *method == Method::GET {
            return if path == "/v1/models" {
                Route::Models
            } else {
                Route::Unknown
            };
        }
        if *method != Method::POST {
            return Route::Unknown;
        }
        match path {
            "/v1/chat/completions" => return Route::Chat { deployment: None },
            "/v1/messages" => return Route::Messages,
            "/v1/messages/count_tokens" => return Route::CountTokens,
            "/v1/embeddings" => return Route::Embeddings { deployment: None },
            _ => {}
        }
        Self::azure(path)
            .or_else(|| Self::google(path))
            .or_else(|| Self::bedrock(path))
            .unwrap_or(Route::Unknown)
    }

    /// `/openai/deployments/{deployment}/chat/completions` or `…/embeddings`.
    fn azure(path: &'a str) -> Option<Self> {
        let (deployment, operation) = path.strip_prefix("/openai/deployments/")?.split_once('/')?;
        let deployment = Some(deployment).filter(|d| !d.is_empty())?;
        match operation {
            "chat/completions" => Some(Route::Chat {
                deployment: Some(deployment),
            }),
            "embeddings" => Some(Route::Embeddings {
                deployment: Some(deployment),
            }),
            _ => None,
        }
    }

    /// The Gemini API's `/v1beta/models/{model}:{method}` (or `/v1/`), and Vertex AI's
    /// `/v1/projects/{p}/locations/{l}/publishers/{google|anthropic}/models/{model}:{method}`
    /// (or `/v1beta1/`).
    fn google(path: &'a str) -> Option<Self> {
        let (publisher, call) = if let Some(call) = path
            .strip_prefix("/v1beta/models/")
            .or_else(|| path.strip_prefix("/v1/models/"))
        {
            ("google", call)
        } else {
            let rest = path
                .strip_prefix("/v1/projects/")
                .or_else(|| path.strip_prefix("/v1beta1/projects/"))?;
            let mut segments = rest.splitn(7, '/');
            let (_project, locations, _location, publishers, publisher, models, call) = (
                segments.next()?,
                segments.next()?,
                segments.next()?,
                segments.next()?,
                segments.next()?,
                segments.next()?,
                segments.next()?,
            );
            if (locations, publishers, models) != ("locations", "publishers", "models") {
                return None;
            }
            (publisher, call)
        };
        let (model, method) = call.rsplit_once(':')?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        match (publisher, method) {
            ("google", "generateContent") => Some(Route::Gemini {
                model,
                stream: false,
            }),
            ("google", "streamGenerateContent") => Some(Route::Gemini {
                model,
                stream: true,
            }),
            ("google", "batchEmbedContents") => Some(Route::GeminiEmbed),
            ("google", "predict") => Some(Route::VertexPredict),
            ("anthropic", "rawPredict") => Some(Route::VertexMessages {
                model,
                stream: false,
            }),
            ("anthropic", "streamRawPredict") => Some(Route::VertexMessages {
                model,
                stream: true,
            }),
            _ => None,
        }
    }

    /// `/model/{modelId}/converse` or `/model/{modelId}/converse-stream` (the id percent-encoded
    /// when it is an ARN).
    fn bedrock(path: &'a str) -> Option<Self> {
        let (model, operation) = path.strip_prefix("/model/")?.rsplit_once('/')?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        let stream = match operation {
            "converse" => false,
            "converse-stream" => true,
            _ => return None,
        };
        Some(Route::Converse { model, stream })
    }

    /// The wire format of the answer and errors (OpenAI's for an unknown path).
    pub(crate) fn format(self) -> Format {
        match self {
            Route::Chat { .. } | Route::Embeddings { .. } | Route::Models | Route::Unknown => {
                Format::OpenAi
            }
            Route::Messages | Route::CountTokens | Route::VertexMessages { .. } => {
                Format::Anthropic
            }
            Route::Gemini { .. } | Route::GeminiEmbed | Route::VertexPredict => Format::Gemini,
            Route::Converse { .. } => Format::Bedrock,
        }
    }

    /// Whether this is a chat request (any format): the `chat_requests` counter counts these.
    pub(crate) fn is_chat(self) -> bool {
        !matches!(
            self,
            Route::Embeddings { .. }
                | Route::GeminiEmbed
                | Route::VertexPredict
                | Route::Models
                | Route::CountTokens
                | Route::Unknown
        )
    }
}

/// Whether a query string has `name=value`.
pub(crate) fn query_has(query: Option<&str>, name: &str, value: &str) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split_once('=').unwrap_or((pair, "")) == (name, value))
    })
}

/// Whether a query string has `name` with a non-empty value.
pub(crate) fn query_has_name(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(key, value)| key == name && !value.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str) -> Route<'_> {
        Route::new(&Method::POST, path)
    }

    #[test]
    fn paths() {
        assert_eq!(
            post("/v1/chat/completions"),
            Route::Chat { deployment: None }
        );
        assert_eq!(
            post("/openai/deployments/gpt4o/chat/completions"),
            Route::Chat {
                deployment: Some("gpt4o")
            }
        );
        assert_eq!(
            post("/openai/deployments/emb/embeddings"),
            Route::Embeddings {
                deployment: Some("emb")
            }
        );
        assert_eq!(
            post("/openai/deployments//chat/completions"),
            Route::Unknown
        );
        assert_eq!(post("/v1/messages"), Route::Messages);
        assert_eq!(
            post(
                "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
            ),
            Route::VertexMessages {
                model: "claude-sonnet-4@20250514",
                stream: true
            }
        );
        assert_eq!(
            post("/v1/projects/p/locations/l/publishers/anthropic/models/c:rawPredict"),
            Route::VertexMessages {
                model: "c",
                stream: false
            }
        );
        assert_eq!(
            post("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            Route::Gemini {
                model: "gemini-2.5-flash",
                stream: true
            }
        );
        assert_eq!(
            post(
                "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:generateContent"
            ),
            Route::Gemini {
                model: "gemini-2.5-pro",
                stream: false
            }
        );
        assert_eq!(
            post("/v1/projects/p/locations/l/publishers/google/models/g:rawPredict"),
            Route::Unknown
        );
        assert_eq!(
            post("/model/anthropic.claude-3-haiku-20240307-v1:0/converse"),
            Route::Converse {
                model: "anthropic.claude-3-haiku-20240307-v1:0",
                stream: false
            }
        );
        assert_eq!(
            post(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
            ),
            Route::Converse {
                model: "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx",
                stream: true
            }
        );
        assert_eq!(post("/model/a/b/converse"), Route::Unknown);
        assert_eq!(Route::new(&Method::GET, "/v1/models"), Route::Models);
        assert_eq!(Route::new(&Method::GET, "/v1/messages"), Route::Unknown);
        assert!(post("/v1/messages").is_chat());
        assert!(!post("/v1/embeddings").is_chat());
    }

    #[test]
    fn queries() {
        assert!(query_has(Some("key=k&alt=sse"), "alt", "sse"));
        assert!(!query_has(Some("alt=json"), "alt", "sse"));
        assert!(!query_has(None, "alt", "sse"));
        assert!(query_has_name(
            Some("api-version=2024-10-21"),
            "api-version"
        ));
        assert!(!query_has_name(Some("api-version="), "api-version"));
    }
}
