//! `tollgate-mock`: a fast, scriptable stand-in for a model provider, used by Tollgate's tests,
//! demo and benchmarks. It speaks OpenAI's API; each request can ask it to misbehave with
//! `x-mock-*` headers, and `/_mock/*` endpoints show what it received.
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-status: 503` | answer with this status and an OpenAI error body |
//! | `x-mock-delay-ms: 200` | wait before sending response headers |
//! | `x-mock-chunks: 20` | number of content chunks in a stream (default `--chunks`) |
//! | `x-mock-chunk-interval-ms: 50` | pause between stream chunks (default `--chunk-interval-ms`) |
//! | `x-mock-end-delay-ms: 500` | pause after `data: [DONE]` before ending the stream's body |

mod journal;
mod openai;

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
}

/// Per-request behaviour, from the options and the request's `x-mock-*` headers.
#[derive(Clone, Copy, Debug)]
struct Behaviour {
    status: Option<StatusCode>,
    delay: Duration,
    chunks: usize,
    chunk_interval: Duration,
    end_delay: Duration,
}

type MockBody = BoxBody<Bytes, Infallible>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Arc::new(Options::parse());
    let socket = tokio::net::TcpListener::bind(options.listen).await?;
    eprintln!("tollgate-mock listening on {}", socket.local_addr()?);
    let journal = Arc::new(Journal::default());
    loop {
        let (stream, _) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let options = options.clone();
        let journal = journal.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(request, options.clone(), journal.clone())
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn behaviour(request: &Request<Incoming>, options: &Options) -> Behaviour {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Behaviour {
        status: header("x-mock-status").and_then(|s| StatusCode::from_u16(s as u16).ok()),
        delay: Duration::from_millis(header("x-mock-delay-ms").unwrap_or(0)),
        chunks: header("x-mock-chunks")
            .map_or(options.chunks, |c| c as usize)
            .clamp(1, 10_000),
        chunk_interval: Duration::from_millis(
            header("x-mock-chunk-interval-ms").unwrap_or(options.chunk_interval_ms),
        ),
        end_delay: Duration::from_millis(header("x-mock-end-delay-ms").unwrap_or(0)),
    }
}

async fn handle(
    request: Request<Incoming>,
    options: Arc<Options>,
    journal: Arc<Journal>,
) -> Result<Response<MockBody>, Infallible> {
    let behaviour = behaviour(&request, &options);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if parts.method == Method::GET && path.starts_with("/_mock/") {
        return Ok(journal.report(&path).await);
    }
    journal.record(&parts, &body).await;
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    if let Some(status) = behaviour.status {
        return Ok(openai::error(status, "the mock was told to fail"));
    }
    let response = match (&parts.method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => openai::chat(&body, behaviour, journal),
        (&Method::POST, "/v1/embeddings") => openai::embeddings(&body),
        (&Method::GET, "/v1/models") => openai::models(),
        _ => openai::error(StatusCode::NOT_FOUND, "unknown path"),
    };
    Ok(response)
}
