//! `tollgate-otlp-receiver`: the OTLP receiver Tollgate's end-to-end tests export traces and
//! logs to. It serves OpenTelemetry's own collector services from the `opentelemetry-proto`
//! crate (`TraceService`, `LogsService`) over gRPC, and the same messages over HTTP/protobuf
//! (`POST /v1/traces`, `POST /v1/logs`), and keeps what it receives for the tests to read.
//!
//! | flag | effect |
//! |---|---|
//! | `--grpc 127.0.0.1:0` | where OTLP/gRPC is served (port 0: any free port) |
//! | `--http 127.0.0.1:0` | where OTLP/HTTP and the read endpoints are served |
//!
//! Once both are listening it prints one JSON line, `{"grpc": "ADDR", "http": "ADDR"}`.
//! `GET /spans` and `GET /logs` on the HTTP address answer everything received so far, oldest
//! first, flattened to JSON: a span's `name`, hex `trace_id`, `span_id` and `parent_span_id`,
//! `kind` and `status_code` (OTLP's numbers), `attributes` (values as JSON: strings, numbers,
//! booleans, arrays, objects; bytes as hex), the resource's `service` (`service.name`) and the
//! `transport` it came over (`grpc` or `http`); a log record's `event_name`, `body`,
//! `attributes`, `service` and `transport`.

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use parking_lot::Mutex;
use prost::Message;
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The most records of each kind kept; a test never comes near it.
const MAX_RECORDS: usize = 100_000;
/// The largest export accepted over HTTP or gRPC.
const MAX_EXPORT_BYTES: usize = 64 * 1024 * 1024;
/// The gRPC path prefix of the logs service; everything else goes to the trace service.
const LOGS_SERVICE: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/";

/// What was received, as the read endpoints show it.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Value>>,
    logs: Mutex<Vec<Value>>,
}

impl Received {
    fn keep_spans(&self, request: &ExportTraceServiceRequest, transport: &str) {
        let mut kept = Vec::new();
        for resource_spans in &request.resource_spans {
            let service = service_name(
                resource_spans
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.as_slice()),
            );
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                kept.push(json!({
                    "name": span.name,
                    "trace_id": hex(&span.trace_id),
                    "span_id": hex(&span.span_id),
                    "parent_span_id": hex(&span.parent_span_id),
                    "kind": span.kind,
                    "attributes": attributes(&span.attributes),
                    "status_code": span.status.as_ref().map_or(0, |s| s.code),
                    "service": service,
                    "transport": transport,
                }));
            }
        }
        keep(&self.spans, kept);
    }

    fn keep_logs(&self, request: &ExportLogsServiceRequest, transport: &str) {
        let mut kept = Vec::new();
        for resource_logs in &request.resource_logs {
            let service = service_name(
                resource_logs
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.as_slice()),
            );
            for record in resource_logs.scope_logs.iter().flat_map(|s| &s.log_records) {
                kept.push(json!({
                    "event_name": record.event_name,
                    "body": record.body.as_ref().map_or(Value::Null, value),
                    "attributes": attributes(&record.attributes),
                    "service": service,
                    "transport": transport,
                }));
            }
        }
        keep(&self.logs, kept);
    }
}

fn keep(records: &Mutex<Vec<Value>>, mut new: Vec<Value>) {
    let mut records = records.lock();
    let room = MAX_RECORDS.saturating_sub(records.len());
    new.truncate(room);
    records.append(&mut new);
}

fn service_name(resource: Option<&[KeyValue]>) -> Value {
    resource
        .unwrap_or_default()
        .iter()
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.as_ref())
        .map_or(Value::from(""), value)
}

fn attributes(attributes: &[KeyValue]) -> Value {
    attributes
        .iter()
        .map(|a| (a.key.clone(), a.value.as_ref().map_or(Value::Null, value)))
        .collect::<Map<_, _>>()
        .into()
}

fn value(any: &AnyValue) -> Value {
    match &any.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => s.as_str().into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::DoubleValue(d)) => (*d).into(),
        Some(any_value::Value::ArrayValue(a)) => a.values.iter().map(value).collect(),
        Some(any_value::Value::KvlistValue(kv)) => attributes(&kv.values),
        Some(any_value::Value::BytesValue(b)) => hex(b).into(),
        // A reference into a string table of profiles; traces and logs never send one.
        Some(any_value::Value::StringValueStrindex(index)) => (*index).into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gRPC services, answering from [`Received`].
#[derive(Clone)]
struct Collector(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.keep_spans(request.get_ref(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.keep_logs(request.get_ref(), "grpc");
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

type GrpcFuture =
    Pin<Box<dyn Future<Output = Result<Response<tonic::body::Body>, Infallible>> + Send>>;

/// One gRPC request, to the service its path names.
fn grpc(collector: &Collector, request: Request<Incoming>) -> GrpcFuture {
    use tonic::codegen::Service;
    if request.uri().path().starts_with(LOGS_SERVICE) {
        let mut logs =
            LogsServiceServer::new(collector.clone()).max_decoding_message_size(MAX_EXPORT_BYTES);
        Box::pin(logs.call(request))
    } else {
        let mut traces =
            TraceServiceServer::new(collector.clone()).max_decoding_message_size(MAX_EXPORT_BYTES);
        Box::pin(traces.call(request))
    }
}

/// One request to the HTTP address: an OTLP/HTTP export, or a read of what was received.
async fn http_request(
    received: Arc<Received>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode, kind: &str, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", kind)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let read = |records: &Mutex<Vec<Value>>| {
        let body = serde_json::to_vec(&*records.lock()).expect("JSON values serialize");
        answer(StatusCode::OK, "application/json", body)
    };
    let path = request.uri().path().to_string();
    match (request.method().as_str(), path.as_str()) {
        ("GET", "/spans") => return Ok(read(&received.spans)),
        ("GET", "/logs") => return Ok(read(&received.logs)),
        ("POST", "/v1/traces" | "/v1/logs") => {}
        _ => {
            return Ok(answer(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"try POST /v1/traces, POST /v1/logs, GET /spans or GET /logs\n".to_vec(),
            ));
        }
    }
    if request
        .headers()
        .get("content-type")
        .is_none_or(|t| t != "application/x-protobuf")
    {
        return Ok(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
            b"only application/x-protobuf is accepted\n".to_vec(),
        ));
    }
    let body = match Limited::new(request.into_body(), MAX_EXPORT_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return Ok(answer(
                StatusCode::BAD_REQUEST,
                "text/plain",
                error.to_string().into_bytes(),
            ));
        }
    };
    let decoded = if path == "/v1/traces" {
        ExportTraceServiceRequest::decode(body).map(|r| {
            received.keep_spans(&r, "http");
            ExportTraceServiceResponse::default().encode_to_vec()
        })
    } else {
        ExportLogsServiceRequest::decode(body).map(|r| {
            received.keep_logs(&r, "http");
            ExportLogsServiceResponse::default().encode_to_vec()
        })
    };
    Ok(match decoded {
        Ok(body) => answer(StatusCode::OK, "application/x-protobuf", body),
        Err(error) => answer(
            StatusCode::BAD_REQUEST,
            "text/plain",
            error.to_string().into_bytes(),
        ),
    })
}

fn address_after(args: &[String], flag: &str) -> anyhow::Result<SocketAddr> {
    match args.iter().position(|a| a == flag) {
        None => Ok(SocketAddr::from(([127, 0, 0, 1], 0))),
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{flag} needs an address"))?
            .parse()
            .with_context(|| format!("{flag} needs an address such as 127.0.0.1:4317")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = args
        .iter()
        .step_by(2)
        .find(|a| *a != "--grpc" && *a != "--http")
    {
        anyhow::bail!("unknown argument {unknown:?}; the flags are --grpc ADDR and --http ADDR");
    }
    let grpc_listener = TcpListener::bind(address_after(&args, "--grpc")?).await?;
    let http_listener = TcpListener::bind(address_after(&args, "--http")?).await?;
    println!(
        "{}",
        json!({"grpc": grpc_listener.local_addr()?.to_string(), "http": http_listener.local_addr()?.to_string()})
    );
    let received = Arc::new(Received::default());
    let collector = Collector(received.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = grpc_listener.accept().await else {
                continue;
            };
            let collector = collector.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |r| grpc(&collector, r));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    loop {
        let (stream, _) = http_listener.accept().await?;
        let received = received.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |r| http_request(received.clone(), r));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
