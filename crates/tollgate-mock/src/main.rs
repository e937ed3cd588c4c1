//! `tollgate-mock`: a fast, scriptable stand-in for a model provider, used by Tollgate's tests,
//! demo and benchmarks. It speaks the wire formats of OpenAI (and Azure OpenAI), Anthropic (and
//! Anthropic on Vertex AI), Gemini (and Gemini on Vertex AI) and Bedrock (Converse), whole and
//! streamed; it can be told to misbehave, by default for every later request
//! (`POST /_mock/behaviour`, or `--status`/`--delay-ms` at start) or per request (`x-mock-*`
//! headers, which win over the defaults), in every format alike; `/_mock/*` endpoints show what
//! it received. Any request whose path does not start with `/_mock/` is a model request.
//!
//! | flag | effect |
//! |---|---|
//! | `--listen 127.0.0.1:9100` | address to listen on |
//! | `--chunks 5` | content chunks of an answer |
//! | `--chunk-interval-ms 0` | pause between stream events |
//! | `--status 503` | start failing every model request with this status (the `status` default) |
//! | `--delay-ms 200` | start waiting before response headers (the `delay_ms` default) |
//! | `--token-lifetime-s 3599` | lifetime of the access tokens `POST /oauth2/token` issues |
//!
//! | model endpoint | format |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI Chat Completions: whole, or `stream: true` (SSE, `data: [DONE]` last; usage chunk with `stream_options.include_usage`) |
//! | `POST /openai/deployments/{deployment}/chat/completions?api-version=…` | Azure OpenAI: the same, the answer's model the deployment; no `api-version` is a 400 |
//! | `POST /v1/embeddings`, `POST /openai/deployments/{deployment}/embeddings` | OpenAI embeddings: one 8-float vector per input |
//! | `GET /v1/models` | OpenAI model list |
//! | `POST /v1/messages` | Anthropic Messages: a `message`, or with `stream: true` named SSE events (`message_start` … `message_stop`); needs an `anthropic-version` header, `model`, `max_tokens` and `messages` (else a 400) |
//! | `POST /v1/messages/count_tokens` | Anthropic token counting: `{"input_tokens"}`, counted as for `/v1/messages` |
//! | `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict` streams) | Anthropic on Vertex AI: the same, the model from the path; the body needs `anthropic_version` and must not have `model` |
//! | `POST /v1beta/models/{model}:generateContent` (also `/v1/`) | Gemini: a `GenerateContentResponse` |
//! | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | Gemini: SSE of `GenerateContentResponse`s (lines end in `\r\n`); no `alt=sse` is a 400 |
//! | `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`) | Gemini on Vertex AI: the same |
//! | `POST /v1beta/models/{model}:batchEmbedContents` | Gemini embeddings: an 8-float vector per text, no token counts |
//! | `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predict` | Vertex AI embeddings: `predictions[].embeddings` with `values` and `statistics.token_count` (a token per four bytes) |
//! | `POST /model/{modelId}/converse` | Bedrock Converse: JSON with `output.message`, `stopReason`, `usage`, `metrics` |
//! | `POST /model/{modelId}/converse-stream` | Bedrock ConverseStream: `application/vnd.amazon.eventstream` frames (`messageStart`, `contentBlockStart` for a tool call, `contentBlockDelta`s, `contentBlockStop`, `messageStop`, `metadata`) |
//!
//! Every format answers the same conversation the same way (see `conversation.rs`): when the
//! last message carries tool results, text that quotes them (`The tool said: <text>`); otherwise,
//! when the request offers tools, a call of the first tool with arguments built from its schema
//! (finish reason `tool_calls`, `tool_use`, `STOP` with a `functionCall`, `tool_use`); otherwise
//! the reply words, one per chunk. Usage is the same in every format: prompt tokens are a token
//! per four bytes of the conversation's text (system prompt, message text, earlier tool-call
//! arguments' string values, tool results' text; not roles, names, tool definitions or JSON
//! syntax), output tokens the answer's content pieces (`chunks` for text, the two or three
//! argument pieces of a tool call). Errors come in each format's shape: OpenAI `{"error":
//! {"message", "type": "mock_error", "param", "code"}}`, Anthropic `{"type": "error", "error":
//! {"type", "message"}}`, Google `{"error": {"code", "message", "status"}}`, Bedrock
//! `{"message"}` with `x-amzn-errortype`. Bedrock's SigV4 signatures and Vertex AI's access
//! tokens are checked (see `credentials.rs`: the mock's IAM user is `AKIDTOLLGATEMOCK` /
//! `tollgate-mock-secret-access-key`, its token endpoints `POST /oauth2/token` (Google) and
//! `POST /{tenant}/oauth2/v2.0/token` (Entra ID, client secret `tollgate-mock-client-secret`),
//! tokens live `--token-lifetime-s`); other API keys are not. The journal keeps every header
//! (`authorization`, `x-amz-date`, `x-api-key`, `api-key`, …) and the token requests.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /_mock/requests` | the last 200 model requests (method, path, query (when there is one), headers, body), oldest first |
//! | `GET /_mock/stats` | counters: `requests` (model requests), `chat_requests` (chat requests of every format: the chat completions, messages, generateContent and converse endpoints above, streamed or not, failed ones included), `streams_started`, `streams_completed`, `streams_aborted` (the client left), `streams_reset` (the mock broke it) |
//! | `GET /_mock/behaviour` | the current defaults, as set (`{}` when normal) |
//! | `POST /_mock/behaviour` | replaces the defaults with the JSON body's fields (below; unknown fields are a 400); `{}` or an empty body is normal |
//! | `POST /_mock/behaviour/reset` | normal again (also clears `--status` and `--delay-ms`) |
//!
//! | `/_mock/behaviour` field | header of one request | effect |
//! |---|---|---|
//! | `status: 503` | `x-mock-status: 503` | answer with this status (a default is 200..=599) and an error body in the request's format; `x-mock-status: 0` does not fail, whatever the defaults say |
//! | `retry_after_s: 2` | `x-mock-retry-after-s: 2` | with status 429, send `retry-after: 2` |
//! | `delay_ms: 200` | `x-mock-delay-ms: 200` | wait before response headers (a large value hangs before the first byte) |
//! | `first_chunk_delay_ms: 500` | `x-mock-first-chunk-delay-ms: 500` | streams: send headers at once, then wait before the first event |
//! | `reset_after_chunks: 2` | `x-mock-reset-after-chunks: 2` | streams: after this many events (SSE events, or Bedrock frames; all of them if fewer), abort the connection instead of ending the body (HTTP/1: no last chunk; HTTP/2: `RST_STREAM`) |
//! | `chunk_interval_ms: 50` | `x-mock-chunk-interval-ms: 50` | pause between stream events (default `--chunk-interval-ms`) |
//! | `chunks: 20` | `x-mock-chunks: 20` | content chunks of a text answer (default `--chunks`) |
//! | `fail_ratio: 0.25` | | fail this share of model requests with `status` (default 500), the others normal: request n (every model request since the defaults were set counts, even one whose headers decide) fails when floor(n * ratio) != floor((n - 1) * ratio) |
//! | | `x-mock-end-delay-ms: 500` | pause after the last event (OpenAI: `data: [DONE]`) before ending the stream's body |

mod anthropic;
mod bedrock;
mod behaviour;
mod conversation;
mod credentials;
mod eventstream;
mod gemini;
mod journal;
mod openai;
mod route;
mod stream;

use arc_swap::ArcSwap;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use behaviour::{Behaviour, Defaults};
use journal::Journal;
use route::Route;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate-mock",
    about = "A mock model provider (OpenAI, Azure OpenAI, Anthropic, Gemini, Vertex AI, Bedrock)"
)]
struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Content chunks per streamed response.
    #[arg(long, default_value_t = 5)]
    chunks: usize,
    /// Milliseconds between streamed chunks.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Fail every model request with this status until told otherwise.
    #[arg(long, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: Option<u16>,
    /// Wait this long before response headers until told otherwise.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Lifetime of the access tokens the mock's token endpoint issues.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_s: u64,
}

/// What the connections share.
struct Mock {
    options: Options,
    journal: Arc<Journal>,
    defaults: ArcSwap<Defaults>,
    tokens: credentials::Tokens,
}

/// A response body; an error aborts the connection (`reset_after_chunks`).
type MockBody = BoxBody<Bytes, std::io::Error>;

/// A whole response body.
fn full(bytes: impl Into<Bytes>) -> MockBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<MockBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let socket = tokio::net::TcpListener::bind(options.listen).await?;
    eprintln!("tollgate-mock listening on {}", socket.local_addr()?);
    let mock = Arc::new(Mock {
        defaults: ArcSwap::from_pointee(Defaults::from_options(&options)),
        journal: Arc::new(Journal::default()),
        tokens: credentials::Tokens::new(std::time::Duration::from_secs(options.token_lifetime_s)),
        options,
    });
    loop {
        let (stream, _) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let mock = mock.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(request, mock.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    mock: Arc<Mock>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path();
    if path.starts_with("/_mock/") {
        let control = behaviour::control(&parts.method, path, &body, &mock.defaults);
        return Ok(match control {
            Some(response) => response,
            None if parts.method == Method::GET => mock.journal.report(path).await,
            None => openai::error(StatusCode::NOT_FOUND, "unknown mock path"),
        });
    }
    let route = Route::new(&parts.method, path);
    mock.journal.record(&parts, &body, route.is_chat()).await;
    if parts.method == Method::POST && path == credentials::TOKEN_PATH {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        return Ok(mock.tokens.mint(host, &body));
    }
    if parts.method == Method::POST && credentials::is_entra_token_path(path) {
        return Ok(mock.tokens.mint_entra(&body));
    }
    let refusal = match route {
        Route::Converse { .. } => credentials::bedrock_refusal(&parts, &body),
        Route::VertexMessages { .. } | Route::VertexPredict => {
            mock.tokens.vertex_refusal(&parts.headers)
        }
        Route::Gemini { .. } if path.contains("/projects/") => {
            mock.tokens.vertex_refusal(&parts.headers)
        }
        Route::Chat {
            deployment: Some(_),
        }
        | Route::Embeddings {
            deployment: Some(_),
        } => mock.tokens.azure_refusal(&parts.headers),
        _ => None,
    };
    if let Some(refusal) = refusal {
        return Ok(refusal);
    }
    let behaviour = Behaviour::new(&parts.headers, &mock.defaults.load(), &mock.options);
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    if let Some(status) = behaviour.status {
        let mut response = route.format().error(status, "the mock was told to fail");
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = behaviour.retry_after_s
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        return Ok(response);
    }
    let journal = || mock.journal.clone();
    let response = match route {
        Route::Chat { deployment } => {
            if deployment.is_some() && !route::query_has_name(parts.uri.query(), "api-version") {
                openai::error(
                    StatusCode::BAD_REQUEST,
                    "the api-version query parameter is required",
                )
            } else {
                openai::chat(&body, deployment, behaviour, journal())
            }
        }
        Route::Embeddings { deployment } => openai::embeddings(&body, deployment),
        Route::Models => openai::models(),
        Route::Messages => anthropic::messages(
            &body,
            &parts.headers,
            anthropic::Endpoint::Messages,
            behaviour,
            journal(),
        ),
        Route::CountTokens => anthropic::count_tokens(&body, &parts.headers),
        Route::VertexMessages { model, stream } => anthropic::messages(
            &body,
            &parts.headers,
            anthropic::Endpoint::Vertex { model, stream },
            behaviour,
            journal(),
        ),
        Route::Gemini { model, stream } => gemini::generate(
            &body,
            model,
            stream,
            parts.uri.query(),
            behaviour,
            journal(),
        ),
        Route::GeminiEmbed => gemini::embed(&body, false),
        Route::VertexPredict => gemini::embed(&body, true),
        Route::Converse { stream, .. } => bedrock::converse(&body, stream, behaviour, journal()),
        Route::Unknown => openai::error(StatusCode::NOT_FOUND, "unknown path"),
    };
    Ok(response)
}
