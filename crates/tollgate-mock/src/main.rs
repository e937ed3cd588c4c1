//! `tollgate-mock`: a fast, scriptable stand-in for a model provider, used by Tollgate's tests,
//! demo and benchmarks. It speaks OpenAI's API (`POST /v1/chat/completions`, whole or streamed,
//! `POST /v1/embeddings`, `GET /v1/models`); it can be told to misbehave, by default for every
//! later request (`POST /_mock/behaviour`, or `--status`/`--delay-ms` at start) or per request
//! (`x-mock-*` headers, which win over the defaults); `/_mock/*` endpoints show what it received.
//! Any request whose path does not start with `/_mock/` is a model request.
//!
//! | flag | effect |
//! |---|---|
//! | `--listen 127.0.0.1:9100` | address to listen on |
//! | `--chunks 5` | content chunks of an answer |
//! | `--chunk-interval-ms 0` | pause between stream events |
//! | `--status 503` | start failing every model request with this status (the `status` default) |
//! | `--delay-ms 200` | start waiting before response headers (the `delay_ms` default) |
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /_mock/requests` | the last 200 model requests (method, path, headers, body), oldest first |
//! | `GET /_mock/stats` | counters: `requests` (model requests), `chat_requests` (`POST /v1/chat/completions`, failed ones included), `streams_started`, `streams_completed`, `streams_aborted` (the client left), `streams_reset` (the mock broke it) |
//! | `GET /_mock/behaviour` | the current defaults, as set (`{}` when normal) |
//! | `POST /_mock/behaviour` | replaces the defaults with the JSON body's fields (below; unknown fields are a 400); `{}` or an empty body is normal |
//! | `POST /_mock/behaviour/reset` | normal again (also clears `--status` and `--delay-ms`) |
//!
//! | `/_mock/behaviour` field | header of one request | effect |
//! |---|---|---|
//! | `status: 503` | `x-mock-status: 503` | answer with this status (a default is 200..=599) and an OpenAI error body; `x-mock-status: 0` does not fail, whatever the defaults say |
//! | `retry_after_s: 2` | `x-mock-retry-after-s: 2` | with status 429, send `retry-after: 2` |
//! | `delay_ms: 200` | `x-mock-delay-ms: 200` | wait before response headers (a large value hangs before the first byte) |
//! | `first_chunk_delay_ms: 500` | `x-mock-first-chunk-delay-ms: 500` | streams: send headers at once, then wait before the first event |
//! | `reset_after_chunks: 2` | `x-mock-reset-after-chunks: 2` | streams: after this many events (all of them if fewer), abort the connection instead of ending the body (HTTP/1: no last chunk; HTTP/2: `RST_STREAM`) |
//! | `chunk_interval_ms: 50` | `x-mock-chunk-interval-ms: 50` | pause between stream events (default `--chunk-interval-ms`) |
//! | `chunks: 20` | `x-mock-chunks: 20` | content chunks of an answer (default `--chunks`) |
//! | `fail_ratio: 0.25` | | fail this share of model requests with `status` (default 500), the others normal: request n (every model request since the defaults were set counts, even one whose headers decide) fails when floor(n * ratio) != floor((n - 1) * ratio) |
//! | | `x-mock-end-delay-ms: 500` | pause after `data: [DONE]` before ending the stream's body |

mod behaviour;
mod journal;
mod openai;

use arc_swap::ArcSwap;
use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode};
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

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate-mock",
    about = "A mock OpenAI-compatible model provider"
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
}

/// What the connections share.
struct Mock {
    options: Options,
    journal: Arc<Journal>,
    defaults: ArcSwap<Defaults>,
}

/// A response body; an error aborts the connection (`reset_after_chunks`).
type MockBody = BoxBody<Bytes, std::io::Error>;

/// A whole response body.
fn full(bytes: impl Into<Bytes>) -> MockBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let socket = tokio::net::TcpListener::bind(options.listen).await?;
    eprintln!("tollgate-mock listening on {}", socket.local_addr()?);
    let mock = Arc::new(Mock {
        defaults: ArcSwap::from_pointee(Defaults::from_options(&options)),
        journal: Arc::new(Journal::default()),
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
    let path = parts.uri.path().to_string();
    if path.starts_with("/_mock/") {
        let control = behaviour::control(&parts.method, &path, &body, &mock.defaults);
        return Ok(match control {
            Some(response) => response,
            None if parts.method == Method::GET => mock.journal.report(&path).await,
            None => openai::error(StatusCode::NOT_FOUND, "unknown mock path"),
        });
    }
    mock.journal.record(&parts, &body).await;
    let behaviour = Behaviour::new(&parts.headers, &mock.defaults.load(), &mock.options);
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    if let Some(status) = behaviour.status {
        let mut response = openai::error(status, "the mock was told to fail");
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = behaviour.retry_after_s
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        return Ok(response);
    }
    let response = match (&parts.method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => {
            openai::chat(&body, behaviour, mock.journal.clone())
        }
        (&Method::POST, "/v1/embeddings") => openai::embeddings(&body),
        (&Method::GET, "/v1/models") => openai::models(),
        _ => openai::error(StatusCode::NOT_FOUND, "unknown path"),
    };
    Ok(response)
}
