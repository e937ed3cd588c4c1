//! **route**, the innermost stage: picks a backend of the chosen rule, rewrites the request
//! for it (upstream model, the provider's credential in place of the caller's), calls it, and
//! on a failure before any byte reached the caller tries again as the rule's retry policy
//! allows — on another backend when there is one, else on the same after a backoff. The
//! answer streams back frame by frame while usage is read from it.

mod attempt;
mod headers;
mod upstreams;
mod wire;

pub(crate) use upstreams::Upstreams;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::{LazyLock, OnceLock};
use std::task::{Context, Poll};
use tokio::time::Instant;
use tollgate_config::{
    Backend, CloudAccount, GatewayConfig, Provider, ProviderKind, Rule, Snapshot,
};
use tollgate_llm::chat::{ChatRequest, TranslateError};
use tollgate_llm::embeddings::{self, EmbeddingRequest};
use tollgate_llm::openai::{InspectedRequest, OutputCap, Rewrite};
use tollgate_llm::{Dialect, Tokenizer, Usage, WireFormat};
use tower::Service;
use tower::retry::budget::Budget;

use super::StageFuture;
use super::authorize::RuleIndex;
use super::endpoints::Operation;
use super::reserve::ReservedOutput;
use crate::balance::{self, Choice};
use crate::body::{BackendLease, ProxyBody, Reading, UpstreamParts};
use crate::cloud_auth::{AccessTokens, HttpTokenMinter};
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, Target};
use crate::health::{Availability, RouteRuntime, RuleRuntime};
use crate::labels::Labels;
use crate::metrics::{AttemptLabels, Metrics, RuleLabels};
use crate::series::kept;
use crate::stream_translation::StreamTranslation;
use crate::telemetry::spans::RequestSpan;
use crate::upstream::{UpstreamClients, strip_hop_by_hop};
use attempt::{FailureKind, FinalAnswer, Outcome, attempt, read_answer};
use headers::forward_headers;
use wire::format_of;

/// The route stage's service; it ends the stack, so it is a service, not a layer. Every
/// request gets a copy of it, so what it holds is shared behind one reference count.
#[derive(Clone)]
pub(crate) struct Route(Arc<Shared>);

/// What every request the route stage serves shares.
pub(crate) struct Shared {
    clients: Arc<UpstreamClients>,
    metrics: Arc<Metrics>,
    /// Vertex AI and Entra ID access tokens, kept across configuration reloads.
    tokens: Arc<AccessTokens>,
}

impl std::ops::Deref for Route {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Route {
    /// Calls providers through `clients`, counting attempts in `metrics`.
    pub(crate) fn new(clients: Arc<UpstreamClients>, metrics: Arc<Metrics>) -> Self {
        let tokens = Arc::new(AccessTokens::new(HttpTokenMinter::new(clients.clone())));
        Self(Arc::new(Shared {
            clients,
            metrics,
            tokens,
        }))
    }
}

/// What every attempt of one request shares.
struct Call<'a> {
    config: &'a GatewayConfig,
    rule: &'a Rule,
    /// The rule's index in the route table.
    rule_index: usize,
    /// The configuration's metric labels.
    labels: &'a Labels,
    /// What requests to the configuration's providers carry alike.
    upstreams: &'a Upstreams,
    runtime: &'a RuleRuntime,
    inspected: &'a InspectedRequest,
    caller_headers: &'a http::HeaderMap,
    operation: Operation,
    dialect: Dialect,
    exchange: &'a SharedExchange,
    deadline: Option<Instant>,
    output_cap: Option<ReservedOutput>,
    /// The request in the common shape, read on the first attempt that needs translating.
    translated: OnceLock<Result<ChatRequest, TranslateError>>,
    /// The embeddings request, read on the first attempt that needs translating.
    embedding: OnceLock<Result<EmbeddingRequest, TranslateError>>,
    /// The request's trace span, parent of each attempt's.
    span: Option<&'a RequestSpan>,
}

impl Call<'_> {
    /// The model a backend is asked for: its own, or the caller's.
    fn upstream_model<'b>(&'b self, backend: &'b Backend) -> &'b str {
        backend.model.as_deref().unwrap_or(&self.inspected.model)
    }

    /// The wire format `backend` (of `provider`) is spoken to in.
    fn format(&self, backend: &Backend, provider: &Provider) -> WireFormat {
        format_of(provider, self.upstream_model(backend))
    }

    /// Whether a backend of `provider` speaking `format` needs the request and answer
    /// translated.
    fn translates(&self, provider: &Provider, format: WireFormat) -> bool {
        match self.operation {
            Operation::Chat => !format.speaks(self.dialect),
            Operation::Embeddings => wire::embedding_format(provider).is_some(),
            Operation::CountTokens => false,
        }
    }

    /// The request body for a backend that needs it translated.
    fn translated_body(
        &self,
        provider: &Provider,
        format: WireFormat,
        upstream_model: &str,
    ) -> Result<Bytes, ProxyError> {
        let untranslatable = |error: TranslateError| ProxyError::Untranslatable {
            provider: provider.name.to_string(),
            format: format.name(),
            error,
        };
        if let Some(embeddings) = wire::embedding_format(provider)
            && self.operation == Operation::Embeddings
        {
            let request = self
                .embedding
                .get_or_init(|| embeddings::parse_openai_request(self.inspected.body()))
                .as_ref()
                .map_err(|error| untranslatable(error.clone()))?;
            return Ok(Bytes::from(
                embeddings.write_request(request, upstream_model),
            ));
        }
        let parsed = self
            .translated
            .get_or_init(|| self.dialect.parse_request(self.inspected.body()));
        let mut request = parsed
            .as_ref()
            .map_err(|error| untranslatable(error.clone()))?
            .clone();
        request.model = upstream_model.to_string();
        if let Some(ReservedOutput(cap)) = self.output_cap {
            request.max_tokens = Some(request.max_tokens.map_or(cap, |asked| asked.min(cap)));
        }
        Ok(Bytes::from(
            format.write_request(&request).map_err(untranslatable)?,
        ))
    }
}

impl Service<Request<InspectedRequest>> for Route {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<InspectedRequest>) -> Self::Future {
        let route = self.clone();
        Box::pin(async move {
            let (parts, inspected) = request.into_parts();
            let missing = |what: &str| ProxyError::Internal(format!("no {what} in request"));
            let snapshot = parts
                .extensions
                .get::<Arc<Snapshot>>()
                .ok_or_else(|| missing("snapshot"))?;
            let runtime = parts
                .extensions
                .get::<Arc<RouteRuntime>>()
                .ok_or_else(|| missing("runtime"))?;
            let exchange = parts
                .extensions
                .get::<SharedExchange>()
                .ok_or_else(|| missing("exchange"))?;
            let RuleIndex(index) = *exchange.rule.get().ok_or_else(|| missing("rule"))?;
            let operation = *exchange
                .operation
                .get()
                .ok_or_else(|| missing("operation"))?;
            let rule = snapshot.config.routes.rule(index);
            // Prepared with the snapshot by record; made as needed when a request comes without.
            static UNPREPARED: LazyLock<(Labels, Upstreams)> = LazyLock::new(Default::default);
            let (labels, upstreams) = match exchange.served.get() {
                Some(served) => (&served.labels, &served.upstreams),
                None => (&UNPREPARED.0, &UNPREPARED.1),
            };
            let call = Call {
                config: &snapshot.config,
                rule,
                rule_index: index,
                labels,
                upstreams,
                runtime: runtime
                    .rules
                    .get(index)
                    .ok_or_else(|| missing("rule runtime"))?,
                inspected: &inspected,
                caller_headers: &parts.headers,
                operation,
                dialect: Dialect::of_path(parts.uri.path()),
                exchange,
                output_cap: exchange.output_cap.get().copied(),
                translated: OnceLock::new(),
                embedding: OnceLock::new(),
                span: parts.extensions.get::<RequestSpan>(),
                deadline: rule
                    .policy
                    .timeouts
                    .request
                    .map(|limit| Instant::now() + limit),
            };
            if operation == Operation::CountTokens {
                return route.count_tokens(&call).await;
            }
            route.serve(&call).await
        })
    }
}

impl Route {
    /// Tries backends until one answers or the retry policy says stop.
    async fn serve(&self, call: &Call<'_>) -> Result<Response<ProxyBody>, ProxyError> {
        let rule = call.rule;
        let policy = &rule.policy;
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        call.runtime.budget.deposit();
        let mut tried: Vec<usize> = Vec::with_capacity(2);
        let mut last: Option<(usize, attempt::Failure)> = None;
        let mut same_backend_retries = 0;
        // Attempts that sent something; a backend that could not be sent the request (it
        // cannot be translated to its format, or it lacks the operation) does not count, and
        // another backend is tried at once: nothing reached the first one.
        let mut sent = 0;
        while sent < policy.retry.attempts {
            let choice = match &last {
                None => balance::choose(
                    rule,
                    call.runtime,
                    &tried,
                    |i| self.price(call, i),
                    &mut rng,
                ),
                Some((_, failure)) if failure.kind == FailureKind::Refused => {
                    let Some(choice) = balance::choose(
                        rule,
                        call.runtime,
                        &tried,
                        |i| self.price(call, i),
                        &mut rng,
                    ) else {
                        break;
                    };
                    self.metrics
                        .failovers
                        .get_or_create(&rule_labels(call))
                        .inc();
                    Some(choice)
                }
                Some((previous, failure)) => {
                    if !failure.kind.retried_by(policy.retry.on)
                        || call.deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    if !call.runtime.budget.withdraw() {
                        self.metrics
                            .retry_budget_exhausted
                            .get_or_create(&rule_labels(call))
                            .inc();
                        break;
                    }
                    match balance::choose(
                        rule,
                        call.runtime,
                        &tried,
                        |i| self.price(call, i),
                        &mut rng,
                    ) {
                        Some(choice) => {
                            self.metrics
                                .failovers
                                .get_or_create(&rule_labels(call))
                                .inc();
                            Some(choice)
                        }
                        None => {
                            // Every backend was tried: the same one again, after a pause,
                            // unless its failures just took it out of rotation (a 429's
                            // retry-after holds it off too, but is waited for below).
                            if failure.kind.counts_against_health()
                                && call.runtime.backends[*previous].availability()
                                    == Availability::Ejected
                            {
                                break;
                            }
                            let wait = failure.retry_after.unwrap_or_else(|| {
                                policy.retry.backoff(same_backend_retries, rand::random())
                            });
                            let remaining = call
                                .deadline
                                .map(|d| d.saturating_duration_since(Instant::now()));
                            if wait > policy.retry.backoff_max
                                || remaining.is_some_and(|r| wait >= r)
                            {
                                break;
                            }
                            same_backend_retries += 1;
                            self.metrics.retries.get_or_create(&rule_labels(call)).inc();
                            tokio::time::sleep(wait).await;
                            Some(Choice {
                                index: *previous,
                                probe: false,
                            })
                        }
                    }
                }
            };
            let Some(choice) = choice else { break };
            tried.push(choice.index);
            call.exchange.attempts.store(sent + 1, Ordering::Relaxed);
            match self.try_backend(call, choice).await {
                Ok(response) => return Ok(response),
                Err(failure) => {
                    if failure.kind != FailureKind::Refused {
                        sent += 1;
                    }
                    last = Some((choice.index, failure));
                }
            }
        }
        match last {
            None => Err(ProxyError::NoBackend {
                route: rule.route.to_string(),
            }),
            Some((index, failure)) => {
                self.set_target(call, index);
                let backend = &call.rule.backends[index];
                let provider = call.config.provider(backend.provider);
                let format = call.format(backend, provider);
                match failure.answer {
                    FinalAnswer::Error(error) => Err(error),
                    FinalAnswer::Upstream(response) if call.translates(provider, format) => {
                        let _ = call.exchange.failure.set(failure.kind.as_str());
                        let (head, body) = read_answer(response).await;
                        Err(rejected(
                            provider,
                            format,
                            head.status.as_u16(),
                            &body,
                            failure.retry_after,
                        ))
                    }
                    FinalAnswer::Upstream(response) => {
                        let _ = call.exchange.failure.set(failure.kind.as_str());
                        let (mut head, body) = read_answer(response).await;
                        strip_hop_by_hop(&mut head.headers);
                        head.headers.remove(header::CONTENT_LENGTH);
                        head.headers.remove(header::SET_COOKIE);
                        Ok(Response::from_parts(head, ProxyBody::full(body)))
                    }
                }
            }
        }
    }

    /// `count_tokens`: asked of the backend the rule picks when it is an Anthropic provider;
    /// otherwise, or when that backend fails, counted here — with the backend model's
    /// tokenizer when tiktoken knows it, else estimated from the prompt's size.
    async fn count_tokens(&self, call: &Call<'_>) -> Result<Response<ProxyBody>, ProxyError> {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let choice = balance::choose(
            call.rule,
            call.runtime,
            &[],
            |i| self.price(call, i),
            &mut rng,
        )
        .ok_or_else(|| ProxyError::NoBackend {
            route: call.rule.route.to_string(),
        })?;
        let backend = &call.rule.backends[choice.index];
        let provider = call.config.provider(backend.provider);
        if provider.kind == ProviderKind::Anthropic {
            match self.try_backend(call, choice).await {
                Ok(response) => return Ok(response),
                Err(failure) => tracing::debug!(
                    provider = %provider.name,
                    failure = failure.kind.as_str(),
                    "count_tokens failed upstream; counting here"
                ),
            }
        }
        self.set_target(call, choice.index);
        let tokenizer = Tokenizer::of_model(call.upstream_model(backend));
        let body = serde_json::json!({"input_tokens": call.inspected.prompt_tokens(tokenizer)});
        let mut response = Response::new(ProxyBody::full(body.to_string()));
        set_content_type(response.headers_mut(), "application/json");
        Ok(response)
    }

    /// One attempt at one backend; a success becomes the response, a failure is recorded.
    async fn try_backend(
        &self,
        call: &Call<'_>,
        choice: Choice,
    ) -> Result<Response<ProxyBody>, attempt::Failure> {
        let backend = &call.rule.backends[choice.index];
        let provider = call.config.provider(backend.provider);
        let state = &call.runtime.backends[choice.index];
        let probe = choice.probe.then(|| ProbeClaim(state.clone()));
        let in_flight = state.start();
        let access_token = match &provider.account {
            Some(account @ (CloudAccount::Gcp(_) | CloudAccount::Azure(_))) => {
                Some(self.tokens.token(account).await.map_err(|reason| {
                    tracing::warn!(provider = %provider.name, %reason, "no access token");
                    attempt::Failure {
                        kind: FailureKind::Server,
                        retry_after: None,
                        answer: FinalAnswer::Error(ProxyError::UpstreamCredential {
                            provider: provider.name.to_string(),
                            reason,
                        }),
                    }
                })?)
            }
            _ => None,
        };
        let mut request = self
            .upstream_request(call, backend, provider, access_token.as_deref())
            .map_err(|error| attempt::Failure {
                kind: FailureKind::Refused,
                retry_after: None,
                answer: FinalAnswer::Error(error),
            })?;
        let span = call.span.map(|span| {
            let span = span.attempt(
                &provider.name.to_string(),
                provider.kind.as_str(),
                request.uri().host(),
                call.exchange.attempts.load(Ordering::Relaxed),
            );
            span.inject(request.headers_mut());
            span
        });
        let first_byte = call
            .rule
            .policy
            .timeouts
            .first_byte
            .unwrap_or(provider.timeouts.response_headers);
        let attempt_deadline = match call.deadline {
            Some(deadline) => deadline.min(Instant::now() + first_byte),
            None => Instant::now() + first_byte,
        };
        let client = self.clients.get(provider.timeouts.connect);
        let outcome = attempt(&client, request, provider, attempt_deadline).await;
        if let Some(span) = span {
            match &outcome {
                Outcome::Failed(failure) => span.finish(None, Some(failure.kind.as_str())),
                Outcome::Answered { head, .. } => span.finish(Some(head.status.as_u16()), None),
            }
        }
        let attempt_labels = |outcome| AttemptLabels {
            provider: call
                .labels
                .provider(backend.provider, provider)
                .as_str()
                .to_owned(),
            outcome,
        };
        match outcome {
            Outcome::Failed(failure) => {
                self.metrics
                    .upstream_attempts
                    .get_or_create(&attempt_labels(failure.kind.as_str()))
                    .inc();
                if failure.kind.counts_against_health() {
                    state.on_failure(
                        &call.rule.policy.outlier,
                        probe.is_some(),
                        failure.kind.as_str(),
                    );
                } else if let Some(wait) = failure.retry_after {
                    state.hold_off(wait);
                }
                drop(probe);
                Err(failure)
            }
            Outcome::Answered {
                mut head,
                incoming,
                first,
                first_byte,
            } => {
                let family = &self.metrics.upstream_attempts;
                match call.labels.ok_attempts(backend.provider) {
                    Some(ok_attempts) => kept(ok_attempts, family, || attempt_labels("ok")).inc(),
                    None => family.get_or_create(&attempt_labels("ok")).inc(),
                };
                state.on_first_byte(first_byte);
                self.set_target(call, choice.index);
                strip_hop_by_hop(&mut head.headers);
                head.headers.remove(header::SET_COOKIE);
                let stream = attempt::is_stream(&head.headers);
                let lease = BackendLease {
                    state: state.clone(),
                    outlier: call.rule.policy.outlier,
                    _in_flight: in_flight,
                };
                let upstream_model = call.upstream_model(backend);
                let format = call.format(backend, provider);
                let reading = if !call.translates(provider, format) {
                    if call.operation == Operation::Chat
                        && stream
                        && matches!(format, WireFormat::OpenAIChat(_))
                    {
                        let hide_usage = call.inspected.stream && !call.inspected.include_usage;
                        Reading::OpenAIStream { hide_usage }
                    } else if stream {
                        Reading::Decoded(Box::new(StreamTranslation::watching(format.decoder())))
                    } else {
                        Reading::Whole(format)
                    }
                } else if !head.status.is_success() {
                    let status = head.status.as_u16();
                    let (_, body) = read_answer(Response::from_parts(head, incoming)).await;
                    let error = rejected(provider, format, status, &body, None);
                    return Ok(error.into_response(call.dialect));
                } else if stream {
                    set_content_type(&mut head.headers, "text/event-stream");
                    let encoder = call
                        .dialect
                        .encoder(call.inspected.include_usage, unix_seconds());
                    Reading::Decoded(Box::new(StreamTranslation::translating(
                        format.decoder(),
                        encoder,
                        upstream_model,
                        answer_id(),
                    )))
                } else {
                    return translate_whole(call, backend, provider, head, incoming, first, lease)
                        .await
                        .map_err(|error| attempt::Failure {
                            kind: FailureKind::Refused,
                            retry_after: None,
                            answer: FinalAnswer::Error(error),
                        });
                };
                let hides_usage = matches!(reading, Reading::OpenAIStream { hide_usage: true });
                if hides_usage || first.is_some() || matches!(reading, Reading::Decoded(_)) {
                    head.headers.remove(header::CONTENT_LENGTH);
                }
                let body = ProxyBody::upstream(UpstreamParts {
                    incoming,
                    first,
                    exchange: call.exchange.clone(),
                    reading,
                    deadline: call.deadline,
                    dialect: call.dialect,
                    backend: lease,
                });
                Ok(Response::from_parts(head, body))
            }
        }
    }

    /// The request for one backend: its model, its credential (`access_token` for a provider
    /// that needs one minted, or a SigV4 signature), the caller's other headers.
    fn upstream_request(
        &self,
        call: &Call<'_>,
        backend: &Backend,
        provider: &Provider,
        access_token: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
        let upstream_model = call.upstream_model(backend);
        let format = call.format(backend, provider);
        let body = if call.translates(provider, format) {
            call.translated_body(provider, format, upstream_model)?
        } else {
            let openai = matches!(format, WireFormat::OpenAIChat(_));
            call.inspected.rewrite(&Rewrite {
                model: Some(upstream_model),
                include_usage: openai && call.operation == Operation::Chat && call.inspected.stream,
                max_output_tokens: call.output_cap.map(|ReservedOutput(tokens)| OutputCap {
                    tokens,
                    field: match format {
                        WireFormat::OpenAIChat(field) => field.name(),
                        _ => "max_tokens",
                    },
                }),
            })
        };
        let stream = call.inspected.stream;
        let request = match call.upstreams.url(backend.provider, call.operation, stream) {
            Some(url) => Request::post(url.clone()),
            None => Request::post(wire::url(provider, call.operation, upstream_model, stream)?),
        };
        let mut request = request
            .body(())
            .map_err(|e| ProxyError::Internal(format!("cannot build the upstream request: {e}")))?;
        let credential = match (access_token, call.upstreams.credential(backend.provider)) {
            (None, Some(prepared)) => prepared.clone(),
            _ => headers::credential(provider, access_token)?,
        };
        forward_headers(
            call.caller_headers,
            request.headers_mut(),
            provider,
            credential,
        );
        if let Some(host) = call.upstreams.host(backend.provider, request.uri()) {
            request.headers_mut().insert(header::HOST, host.clone());
        }
        if let Some(CloudAccount::Aws(account)) = &provider.account
            && let Some(credentials) = &account.credentials
        {
            crate::cloud_auth::sign(
                &mut request,
                &body,
                credentials,
                &account.region,
                std::time::SystemTime::now(),
            )
            .map_err(|reason| ProxyError::UpstreamCredential {
                provider: provider.name.to_string(),
                reason,
            })?;
        }
        Ok(request.map(|()| Full::new(body)))
    }

    /// Records where the request went, for metrics and the access log.
    fn set_target(&self, call: &Call<'_>, index: usize) {
        let backend = &call.rule.backends[index];
        let provider = call.config.provider(backend.provider);
        let upstream_model = call.upstream_model(backend);
        let (route, rule) = call.labels.rule(call.rule_index, call.rule);
        let (model_label, series) =
            call.labels
                .target(call.rule_index, call.rule, index, &call.inspected.model);
        let _ = call.exchange.target.set(Target {
            route,
            rule,
            model_label,
            provider: call.labels.provider(backend.provider, provider),
            series,
            provider_kind: provider.kind.as_str(),
            upstream_model: upstream_model.to_string(),
            pricing: provider
                .models
                .get(upstream_model)
                .copied()
                .unwrap_or_default(),
        });
    }

    /// A backend's price for the cost-aware balancer: input plus output USD per million tokens.
    fn price(&self, call: &Call<'_>, index: usize) -> f64 {
        let backend = &call.rule.backends[index];
        let provider = call.config.provider(backend.provider);
        let model = backend.model.as_deref().unwrap_or(&call.inspected.model);
        provider
            .models
            .get(model)
            .map(|p| {
                (p.input_per_million + p.output_per_million)
                    .try_into()
                    .unwrap_or(f64::MAX)
            })
            .unwrap_or(f64::MAX)
    }
}

/// The labels of a request's rule, for its retry and failover counts.
fn rule_labels(call: &Call<'_>) -> RuleLabels {
    let (route, rule) = call.labels.rule(call.rule_index, call.rule);
    RuleLabels { route, rule }
}

/// A claimed probe of an ejected backend, released if the attempt ends without a verdict.
struct ProbeClaim(Arc<crate::health::BackendState>);

impl Drop for ProbeClaim {
    fn drop(&mut self) {
        self.0.release_probe();
    }
}

/// The upstream's refusal, read in its own format, as an error in the caller's dialect.
fn rejected(
    provider: &Provider,
    format: WireFormat,
    status: u16,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
) -> ProxyError {
    let message = format
        .error_message(body)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    ProxyError::UpstreamRejected {
        provider: provider.name.to_string(),
        status,
        message,
        retry_after: retry_after.map(|wait| wait.as_secs_f64().ceil() as u64),
    }
}

/// Reads a complete answer (a chat answer, or embeddings) in the upstream's format and writes
/// it in the caller's.
async fn translate_whole(
    call: &Call<'_>,
    backend: &Backend,
    provider: &Provider,
    mut head: http::response::Parts,
    incoming: hyper::body::Incoming,
    first: Option<Bytes>,
    lease: BackendLease,
) -> Result<Response<ProxyBody>, ProxyError> {
    let malformed = |reason: String| ProxyError::UpstreamMalformed {
        provider: provider.name.to_string(),
        reason,
    };
    let body = attempt::read_whole(incoming, first, call.deadline)
        .await
        .map_err(malformed)?;
    let upstream_model = call.upstream_model(backend);
    let (out, usage) = match (wire::embedding_format(provider), call.embedding.get()) {
        (Some(format), Some(Ok(request))) if call.operation == Operation::Embeddings => {
            let answer = format
                .parse_response(&body)
                .map_err(|error| malformed(error.to_string()))?;
            let input_tokens = answer
                .input_tokens
                .unwrap_or(call.inspected.prompt_tokens_estimate);
            let out = embeddings::write_openai_response(
                &answer,
                upstream_model,
                request.base64,
                input_tokens,
            );
            let usage = Usage {
                input_tokens,
                ..Usage::default()
            };
            (out, usage)
        }
        _ => {
            let mut answer = call
                .format(backend, provider)
                .parse_response(&body)
                .map_err(|error| malformed(error.to_string()))?;
            if answer.model.is_empty() {
                answer.model = upstream_model.to_string();
            }
            if answer.id.is_empty() {
                answer.id = answer_id();
            }
            if let Some(reason) = answer.finish_reason {
                let _ = call.exchange.finish_reason.set(reason.as_str().to_string());
            }
            let out = call.dialect.write_response(&answer, unix_seconds());
            (out, answer.usage)
        }
    };
    let _ = call.exchange.usage.set(usage);
    lease.state.on_completed();
    head.headers.remove(header::CONTENT_LENGTH);
    set_content_type(&mut head.headers, "application/json");
    Ok(Response::from_parts(head, ProxyBody::full(out)))
}

/// An id for a translated answer whose upstream gave none (Bedrock).
fn answer_id() -> String {
    format!("tollgate-{:016x}", rand::random::<u64>())
}

/// Replaces the content type of a translated answer.
fn set_content_type(headers: &mut http::HeaderMap, value: &'static str) {
    headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(value));
}

/// The current Unix time in seconds, which OpenAI's answers carry as `created`.
fn unix_seconds() -> u64 {
    u64::try_from(crate::clock::unix_millis() / 1000).unwrap_or_default()
}
