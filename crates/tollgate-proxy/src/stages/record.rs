//! **record**, the outermost stage: loads the snapshot the request will finish on, times the
//! request, turns any stage's error into a response in the caller's dialect, and when the
//! response ends — completed, failed, or abandoned by a disconnecting client — records
//! metrics and an access log line. It sits outermost so that nothing escapes it.

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tollgate_llm::Dialect;
use tower::{Layer, Service};

use crate::audit::{self, CaptureSettings, Captured, CapturedBody, Policies, RequestRecord};
use crate::body::{BoxError, ProxyBody};
use crate::budget::{Consumed, Ledger};
use crate::error::ProxyError;
use crate::exchange::CaptureBodies;
use crate::exchange::{Exchange, SharedExchange};
use crate::labels::Label;
use crate::metrics::{
    CostLabels, GenAiTokenLabels, Metrics, ModelLabels, RequestLabels, TokenLabels,
};
use crate::series::{TOKEN_TYPES, kept};
use crate::stack::Served;
use crate::telemetry::AuditLogger;
use crate::telemetry::spans::RequestSpan;
use opentelemetry::KeyValue;
use tollgate_audit::{AuditLog, LazyRecord, RecordBody};

/// The header carrying a request's id, taken from the caller or made up.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds the record stage.
#[derive(Clone)]
pub(crate) struct RecordLayer(Arc<Shared>);

/// What the record stage of every request, and the report of each, share.
struct Shared {
    served: Arc<ArcSwap<Served>>,
    metrics: Arc<Metrics>,
    ledger: Arc<Ledger>,
    audit: Option<Audit>,
    capture: Option<Arc<CaptureSettings>>,
}

/// Where requests are audited.
#[derive(Clone)]
pub(crate) struct Audit {
    /// The hash-chained file.
    pub(crate) log: Option<Arc<AuditLog>>,
    /// OTLP log records.
    pub(crate) otlp: Option<Arc<AuditLogger>>,
}

impl Audit {
    /// Writes `record` to the file and to OTLP (as event `event`, such as
    /// `tollgate.request`), wherever audit goes.
    pub(crate) fn write<T: serde::Serialize>(
        &self,
        event: &'static str,
        request_id: &str,
        record: &T,
    ) {
        if let Some(log) = &self.log {
            log.record(record);
        }
        if let Some(otlp) = &self.otlp
            && let Ok(json) = serde_json::to_string(record)
        {
            otlp.emit(event, request_id, json);
        }
    }
}

/// The id of the request being served, for records written below the record stage.
#[derive(Clone, Debug)]
pub(crate) struct RequestIdValue(pub(crate) HeaderValue);

/// What capture gathers while a request runs.
struct Capturing {
    settings: Arc<CaptureSettings>,
    headers: std::collections::BTreeMap<String, String>,
    /// The first bytes of the response body.
    response: Vec<u8>,
    /// Whether the response went on past them.
    more: bool,
}

impl Capturing {
    /// Keeps the next response bytes, up to a little over the limit (redaction comes later
    /// and may shorten them).
    fn keep(&mut self, bytes: &[u8]) {
        let room = (self.settings.max_bytes + 4096).saturating_sub(self.response.len());
        self.response
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.more |= bytes.len() > room;
    }
}

impl RecordLayer {
    /// Records requests to a Gateway whose current configuration `served` holds, settling
    /// their budget reservations on `ledger`, writing each to `audit`, with their bodies
    /// when `capture` says so.
    pub(crate) fn new(
        served: Arc<ArcSwap<Served>>,
        metrics: Arc<Metrics>,
        ledger: Arc<Ledger>,
        audit: Option<Audit>,
        capture: Option<Arc<CaptureSettings>>,
    ) -> Self {
        Self(Arc::new(Shared {
            served,
            metrics,
            ledger,
            audit,
            capture,
        }))
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            layer: self.clone(),
        }
    }
}

/// The record stage's service.
#[derive(Clone)]
pub(crate) struct Record<S> {
    inner: S,
    layer: RecordLayer,
}

impl<S, B> Service<Request<B>> for Record<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError> + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<RecordedBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Response<RecordedBody>, std::convert::Infallible>,
                > + Send,
        >,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let start = Instant::now();
        let dialect = Dialect::of_path(request.uri().path());
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .filter(|v| v.len() <= 128)
            .cloned()
            .unwrap_or_else(new_request_id);
        let exchange: SharedExchange = Arc::new(Exchange::default());
        let span = RequestSpan::start(request.headers());
        let shared = &self.layer.0;
        let wanted = |settings: &&Arc<CaptureSettings>| {
            (settings.in_audit && shared.audit.is_some()) || (settings.in_spans && span.is_some())
        };
        let capturing = shared
            .capture
            .as_ref()
            .filter(wanted)
            .cloned()
            .map(|settings| {
                request.extensions_mut().insert(CaptureBodies);
                Capturing {
                    headers: settings.headers(request.headers()),
                    settings,
                    response: Vec::new(),
                    more: false,
                }
            });
        if let Some(span) = &span {
            request.extensions_mut().insert(span.clone());
        }
        let served = shared.served.load();
        let _ = exchange.served.set(Arc::clone(&served));
        request.extensions_mut().insert(served.snapshot.clone());
        request.extensions_mut().insert(served.runtime.clone());
        // What only MCP endpoints read below: left out where there are none.
        if !served.snapshot.config.mcp.is_empty() {
            request.extensions_mut().insert(served.mcp.clone());
            request
                .extensions_mut()
                .insert(RequestIdValue(request_id.clone()));
            if let Some(audit) = &shared.audit {
                request.extensions_mut().insert(audit.clone());
            }
        }
        if let Some(jwt) = &served.jwt {
            request.extensions_mut().insert(jwt.clone());
        }
        request.extensions_mut().insert(exchange.clone());
        let method = request.method().clone();
        let uri = request.uri().clone();
        // A 401 of an MCP endpoint says where its OAuth metadata is (RFC 9728).
        let challenge = (!served.snapshot.config.mcp.is_empty())
            .then(|| {
                crate::mcp::metadata::challenge(
                    &served.snapshot,
                    uri.path(),
                    request.uri(),
                    request.headers(),
                )
            })
            .flatten();
        let future = self.inner.call(request);
        let shared = self.layer.0.clone();
        Box::pin(async move {
            let (mut response, outcome) = match future.await {
                Ok(response) => (response, None),
                Err(error) => {
                    let code = error.code();
                    tracing::debug!(%error, code, "request refused");
                    let mut response = error.into_response(dialect);
                    if let Some(challenge) = challenge.filter(|_| response.status() == 401) {
                        response
                            .headers_mut()
                            .insert(http::header::WWW_AUTHENTICATE, challenge);
                    }
                    (response, Some(code))
                }
            };
            response
                .headers_mut()
                .insert(REQUEST_ID, request_id.clone());
            let report = Report {
                exchange,
                shared,
                start,
                status: response.status().as_u16(),
                request_id,
                method,
                uri,
                error_code: outcome,
                span,
                first_byte: None,
                capturing,
            };
            Ok(response.map(|body| RecordedBody {
                inner: body,
                report: Some(report),
            }))
        })
    }
}

/// A random request id: 32 lowercase hex digits.
fn new_request_id() -> HeaderValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut random = rand::random::<u128>();
    let mut id = [0; 32];
    for digit in id.iter_mut().rev() {
        *digit = DIGITS[(random & 0xf) as usize];
        random >>= 4;
    }
    HeaderValue::from_bytes(&id).expect("hex is a valid header value")
}

/// What is needed to record a request once its response ends.
struct Report {
    exchange: SharedExchange,
    /// Metrics, ledger and audit.
    shared: Arc<Shared>,
    start: Instant,
    status: u16,
    request_id: HeaderValue,
    method: http::Method,
    uri: http::Uri,
    error_code: Option<&'static str>,
    /// The request's trace span, when traces are on.
    span: Option<RequestSpan>,
    /// When the first byte of the body went out, after the request arrived.
    first_byte: Option<std::time::Duration>,
    /// The bodies being captured for the record, when capture is on.
    capturing: Option<Capturing>,
}

impl Report {
    /// Records the request and settles its reservation. `stream_output_events` is what the
    /// response stream carried, for a stream that ended without reporting usage.
    fn finish(self, outcome: &'static str, stream_output_events: Option<u64>) {
        let metrics = &self.shared.metrics;
        let target = self.exchange.target.get();
        let usage = self.exchange.usage.get().copied().unwrap_or_default();
        let cost = target.map(|t| {
            t.pricing
                .cost(usage.input_tokens, usage.cached_tokens, usage.output_tokens)
        });
        if let Some(consumed) = self.consumed(stream_output_events, cost) {
            self.shared
                .ledger
                .settle_exchange(self.exchange.clone(), consumed);
        }
        let elapsed = self.start.elapsed();
        let label = |f: fn(&crate::exchange::Target) -> &Label| {
            target.map_or_else(Label::empty, |t| f(t).clone())
        };
        let labels = RequestLabels {
            route: label(|t| &t.route),
            model: label(|t| &t.model_label),
            provider: label(|t| &t.provider),
            status: self.status,
            outcome: self
                .error_code
                .or_else(|| self.exchange.failure.get().copied())
                .unwrap_or(outcome),
        };
        // The usual answer's series are kept with its target; any other is looked up.
        match target.filter(|_| labels.status == 200 && labels.outcome == "ok") {
            Some(target) => {
                let series = &target.series;
                kept(&series.ok_requests, &metrics.requests, || labels.clone()).inc();
                kept(&series.ok_durations, &metrics.request_duration, || {
                    labels.clone()
                })
                .observe(elapsed.as_secs_f64());
            }
            None => {
                metrics.requests.get_or_create(&labels).inc();
                metrics
                    .request_duration
                    .get_or_create(&labels)
                    .observe(elapsed.as_secs_f64());
            }
        }
        if let Some(target) = target {
            let counts = [
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens,
            ];
            for ((kind, count), series) in TOKEN_TYPES
                .into_iter()
                .zip(counts)
                .zip(&target.series.tokens)
            {
                if count > 0 {
                    let token_labels = || TokenLabels {
                        route: labels.route.clone(),
                        model: labels.model.clone(),
                        provider: labels.provider.clone(),
                        r#type: kind,
                    };
                    kept(series, &metrics.tokens, token_labels).inc_by(count);
                }
            }
        }
        // One line per request; the route fields are absent for requests refused before routing.
        if let Some(target) = target {
            self.observe_model_metrics(target, &labels, &usage, cost, elapsed);
        }
        if let Some(span) = &self.span {
            let requested = self.exchange.requested.get();
            let name = match requested {
                Some(r) => format!("{} {}", r.operation, r.model),
                None => format!("{} {}", self.method, self.uri.path()),
            };
            let error = (labels.outcome != "ok").then_some(labels.outcome);
            span.clone()
                .finish(name, self.span_attributes(&usage, cost), error);
        }
        tracing::info!(
            target: "tollgate::access",
            request_id = ?self.request_id,
            method = %self.method,
            path = %self.uri.path(),
            status = self.status,
            outcome = %labels.outcome,
            key_id = self.exchange.identity.get().map(|i| i.key_id.as_str()),
            route = target.map(|t| t.route.as_str()),
            rule = target.map(|t| t.rule.as_str()),
            attempts = target.map(|_| self.exchange.attempts.load(std::sync::atomic::Ordering::Relaxed)),
            provider = target.map(|t| t.provider.as_str()),
            model = target.map(|t| t.upstream_model.as_str()),
            input_tokens = target.map(|_| usage.input_tokens),
            output_tokens = target.map(|_| usage.output_tokens),
            cost_usd = cost.map(tracing::field::display),
            duration_ms = elapsed.as_millis() as u64,
            "request"
        );
        self.write_audit(labels.outcome, usage, cost, elapsed);
    }
}

impl Report {
    /// The request span's attributes: GenAI semantic conventions, then Tollgate's own.
    fn span_attributes(
        &self,
        usage: &tollgate_llm::Usage,
        cost: Option<rust_decimal::Decimal>,
    ) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new("http.request.method", self.method.to_string()),
            KeyValue::new("url.path", self.uri.path().to_string()),
            KeyValue::new("http.response.status_code", i64::from(self.status)),
        ];
        if let Some(requested) = self.exchange.requested.get() {
            attributes.push(KeyValue::new("gen_ai.operation.name", requested.operation));
            attributes.push(KeyValue::new(
                "gen_ai.request.model",
                requested.model.clone(),
            ));
            if let Some(max) = requested.max_tokens {
                attributes.push(KeyValue::new(
                    "gen_ai.request.max_tokens",
                    i64::try_from(max).unwrap_or(i64::MAX),
                ));
            }
        }
        if let Some(target) = self.exchange.target.get() {
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            attributes.extend([
                KeyValue::new("gen_ai.provider.name", target.provider_kind),
                KeyValue::new("gen_ai.response.model", target.upstream_model.clone()),
                KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    opentelemetry::Value::Array(
                        self.exchange
                            .finish_reason
                            .get()
                            .map(|reason| vec![opentelemetry::StringValue::from(reason.clone())])
                            .unwrap_or_default()
                            .into(),
                    ),
                ),
                KeyValue::new("gen_ai.usage.input_tokens", count(usage.input_tokens)),
                KeyValue::new("gen_ai.usage.output_tokens", count(usage.output_tokens)),
                KeyValue::new("tollgate.route", target.route.to_string()),
                KeyValue::new("tollgate.rule", target.rule.to_string()),
                KeyValue::new("tollgate.provider", target.provider.to_string()),
                KeyValue::new(
                    "tollgate.attempts",
                    i64::from(
                        self.exchange
                            .attempts
                            .load(std::sync::atomic::Ordering::Relaxed),
                    ),
                ),
            ]);
        }
        if let Some(cost) = cost.and_then(|c| f64::try_from(c).ok()) {
            attributes.push(KeyValue::new("tollgate.cost_usd", cost));
        }
        if let Some(identity) = self.exchange.identity.get() {
            attributes.push(KeyValue::new("tollgate.key_id", identity.key_id.clone()));
            if let Some(team) = &identity.team {
                attributes.push(KeyValue::new("tollgate.team", team.clone()));
            }
            if let Some(user) = &identity.user {
                attributes.push(KeyValue::new("tollgate.user", user.clone()));
            }
        }
        attributes.push(KeyValue::new(
            "tollgate.budget.outcome",
            self.budget_outcome(),
        ));
        if let Some(capturing) = self.capturing.as_ref().filter(|c| c.settings.in_spans) {
            let (input, output) = self.captured_bodies(capturing);
            attributes.push(KeyValue::new("gen_ai.input.messages", input.text));
            attributes.push(KeyValue::new("gen_ai.output.messages", output.text));
        }
        if let Some(first_byte) = self.first_byte {
            attributes.push(KeyValue::new(
                "tollgate.time_to_first_byte_ms",
                first_byte.as_secs_f64() * 1000.0,
            ));
        }
        attributes
    }

    /// The per-model histograms and spend of a request that reached a backend.
    fn observe_model_metrics(
        &self,
        target: &crate::exchange::Target,
        labels: &RequestLabels,
        usage: &tollgate_llm::Usage,
        cost: Option<rust_decimal::Decimal>,
        elapsed: std::time::Duration,
    ) {
        let requested = self.exchange.requested.get();
        let operation = requested.map_or("", |r| r.operation);
        let family = &self.shared.metrics.token_usage;
        let counts = [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
        ];
        for ((kind, count), series) in counts.into_iter().zip(&target.series.chat_token_usage) {
            if count > 0 {
                let token_labels = || GenAiTokenLabels {
                    gen_ai_operation_name: operation,
                    gen_ai_provider_name: target.provider_kind,
                    gen_ai_request_model: labels.model.clone(),
                    gen_ai_token_type: kind,
                };
                // Chat's series are kept with the target; other operations' looked up.
                match operation {
                    "chat" => kept(series, family, token_labels).observe(count as f64),
                    _ => family.get_or_create(&token_labels()).observe(count as f64),
                }
            }
        }
        if let Some(usd) = cost
            .and_then(|c| f64::try_from(c).ok())
            .filter(|c| *c > 0.0)
        {
            let team = self.exchange.identity.get().and_then(|i| i.team.clone());
            self.shared
                .metrics
                .cost
                .get_or_create(&CostLabels {
                    team: team.unwrap_or_default(),
                    model: labels.model.clone(),
                })
                .inc_by(usd);
        }
        let streamed = requested.is_some_and(|r| r.stream) && (200..300).contains(&self.status);
        if let (true, Some(first_byte)) = (streamed, self.first_byte) {
            let model = ModelLabels {
                route: labels.route.clone(),
                model: labels.model.clone(),
                provider: labels.provider.clone(),
            };
            self.shared
                .metrics
                .time_to_first_token
                .get_or_create(&model)
                .observe(first_byte.as_secs_f64());
            if usage.output_tokens > 1 {
                let rest = elapsed.saturating_sub(first_byte).as_secs_f64();
                self.shared
                    .metrics
                    .time_per_output_token
                    .get_or_create(&model)
                    .observe(rest / (usage.output_tokens - 1) as f64);
            }
        }
    }

    /// The request and response bodies as captured.
    fn captured_bodies(&self, capturing: &Capturing) -> (CapturedBody, CapturedBody) {
        let request = self.exchange.request_body.get();
        (
            capturing
                .settings
                .body(request.map_or(&[][..], |b| &b[..]), false),
            capturing.settings.body(&capturing.response, capturing.more),
        )
    }

    /// Queues the request's audit record, wherever audit goes: made here for OTLP, and for the
    /// file on the audit log's writer thread, off the request's.
    fn write_audit(
        self,
        outcome: &'static str,
        usage: tollgate_llm::Usage,
        cost: Option<rust_decimal::Decimal>,
        elapsed: std::time::Duration,
    ) {
        let shared = Arc::clone(&self.shared);
        let Some(audit) = &shared.audit else {
            return;
        };
        let time = jiff::Timestamp::now();
        if let Some(otlp) = &audit.otlp {
            let record = self.request_record(time, outcome, &usage, cost, elapsed);
            if let Ok(json) = serde_json::to_string(&record) {
                otlp.emit("tollgate.request", record.request_id, json);
            }
        }
        if let Some(log) = &audit.log {
            log.record_lazily(Box::new(LateRequestRecord {
                report: self,
                time,
                outcome,
                usage,
                cost,
                elapsed,
            }));
        }
    }

    /// The request's audit record, as of `time`.
    fn request_record(
        &self,
        time: jiff::Timestamp,
        outcome: &'static str,
        usage: &tollgate_llm::Usage,
        cost: Option<rust_decimal::Decimal>,
        elapsed: std::time::Duration,
    ) -> RequestRecord<'_> {
        let target = self.exchange.target.get();
        let identity = self.exchange.identity.get();
        let error = self
            .error_code
            .or_else(|| self.exchange.failure.get().copied());
        RequestRecord {
            event: "request",
            time: time.to_string(),
            request_id: self.request_id.to_str().unwrap_or_default(),
            method: self.method.as_str(),
            path: self.uri.path(),
            status: self.status,
            outcome,
            key_id: identity.map(|i| i.key_id.as_str()),
            user: identity.and_then(|i| i.user.as_deref()),
            team: identity.and_then(|i| i.team.as_deref()),
            route: target.map(|t| t.route.as_str()),
            rule: target.map(|t| t.rule.as_str()),
            requested_model: self.exchange.requested.get().map(|r| r.model.as_str()),
            served_model: target.map(|t| t.upstream_model.as_str()),
            finish_reason: self.exchange.finish_reason.get().map(String::as_str),
            provider: target.map(|t| t.provider.as_str()),
            policies: Policies {
                authorization: audit::authorization(&self.exchange, error),
                guardrails: "none",
                budget: self.budget_outcome(),
            },
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_tokens: usage.cached_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_usd: cost.map(|c| c.normalize().to_string()),
            attempts: self
                .exchange
                .attempts
                .load(std::sync::atomic::Ordering::Relaxed),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            time_to_first_byte_ms: self.first_byte.map(|d| d.as_secs_f64() * 1000.0),
            capture: self
                .capturing
                .as_ref()
                .filter(|capturing| capturing.settings.in_audit)
                .map(|capturing| {
                    let (request_body, response_body) = self.captured_bodies(capturing);
                    Captured {
                        request_headers: capturing.headers.clone(),
                        request_body,
                        response_body,
                    }
                }),
        }
    }

    /// What the budgets said: `reserved`, `refused`, or `none` when no policy applied.
    fn budget_outcome(&self) -> &'static str {
        match self.error_code {
            Some("budget_exceeded" | "rate_limit_exceeded" | "budget_store_unavailable") => {
                "refused"
            }
            _ if self.exchange.reservation.get().is_some() => "reserved",
            _ => "none",
        }
    }

    /// What the request used, for settling its reservation; `None` keeps the reservation
    /// (the worst case) as spent, when an answer went out whose usage could not be read.
    /// `usage_cost` is what the usage the response reported costs, when it reported any.
    fn consumed(
        &self,
        stream_output_events: Option<u64>,
        usage_cost: Option<rust_decimal::Decimal>,
    ) -> Option<Consumed> {
        let reservation = self.exchange.reservation.get()?;
        let target = self.exchange.target.get();
        let cost = |input: u64, cached: u64, output: u64| {
            target.map_or(0, |t| {
                Consumed::nano_usd_of(t.pricing.cost(input, cached, output))
            })
        };
        if let Some(usage) = self.exchange.usage.get() {
            return Some(Consumed {
                tokens: usage.input_tokens + usage.output_tokens,
                nano_usd: usage_cost.map_or(0, Consumed::nano_usd_of),
            });
        }
        match stream_output_events {
            // A stream cut short, or from a provider that reports no usage: the prompt, and
            // about a token per event that reached the caller.
            Some(events) => {
                let input = reservation.input_tokens;
                Some(Consumed {
                    tokens: input + events,
                    nano_usd: cost(input, 0, events),
                })
            }
            None if (200..300).contains(&self.status) => None,
            // Refused or failed upstream before any answer: nothing was generated.
            None => Some(Consumed::default()),
        }
    }
}

/// What a request's audit record is made of, for the audit log's writer thread to make and
/// serialise it.
struct LateRequestRecord {
    report: Report,
    /// When the request ended.
    time: jiff::Timestamp,
    outcome: &'static str,
    usage: tollgate_llm::Usage,
    cost: Option<rust_decimal::Decimal>,
    elapsed: std::time::Duration,
}

impl LazyRecord for LateRequestRecord {
    fn body(self: Box<Self>) -> RecordBody {
        let record = self.report.request_record(
            self.time,
            self.outcome,
            &self.usage,
            self.cost,
            self.elapsed,
        );
        RecordBody::of(&record)
    }
}

/// The response body as sent to the caller: the stages' body, plus the report that is
/// written when it ends or is dropped.
pub(crate) struct RecordedBody {
    inner: ProxyBody,
    report: Option<Report>,
}

impl Body for RecordedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(report)) = (&polled, this.report.as_mut()) {
            if report.first_byte.is_none() {
                report.first_byte = Some(report.start.elapsed());
            }
            if let (Some(capturing), Some(data)) = (report.capturing.as_mut(), frame.data_ref()) {
                capturing.keep(data);
            }
        }
        match &polled {
            Poll::Ready(None) => {
                if let Some(report) = this.report.take() {
                    report.finish("ok", this.inner.stream_output_events());
                }
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!(%error, "upstream body failed mid-response");
                if let Some(report) = this.report.take() {
                    report.finish("upstream_body_error", this.inner.stream_output_events());
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordedBody {
    fn drop(&mut self) {
        if let Some(report) = self.report.take() {
            // Dropped before its end: the caller went away, unless it already had it all.
            let complete = self.inner.is_complete() || self.inner.is_end_stream();
            let outcome = if complete { "ok" } else { "client_disconnect" };
            report.finish(outcome, self.inner.stream_output_events());
        }
    }
}
