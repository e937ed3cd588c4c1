//! **route**, the innermost stage: picks a backend of the chosen rule, rewrites the request
//! for it (upstream model, the provider's credential in place of the caller's), calls it, and
//! on a failure before any byte reached the caller tries again as the rule's retry policy
//! allows — on another backend when there is one, else on the same after a backoff. The
//! answer streams back frame by frame while usage is read from it.

mod attempt;
mod headers;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tollgate_config::{Backend, GatewayConfig, Provider, Rule, Snapshot};
use tollgate_llm::Dialect;
use tollgate_llm::openai::{InspectedRequest, OutputCap, Rewrite};
use tower::Service;
use tower::retry::budget::Budget;

use super::StageFuture;
use super::authorize::RuleIndex;
use super::endpoints::Operation;
use super::reserve::{ReservedOutput, output_cap_field};
use crate::balance::{self, Choice};
use crate::body::{BackendLease, ProxyBody, UpstreamParts};
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, Target};
use crate::health::{Availability, RouteRuntime, RuleRuntime};
use crate::metrics::{AttemptLabels, Metrics, RuleLabels};
use crate::upstream::{UpstreamClients, strip_hop_by_hop};
use attempt::{FailureKind, FinalAnswer, Outcome, attempt, read_answer};
use headers::forward_headers;

/// The route stage's service; it ends the stack, so it is a service, not a layer.
#[derive(Clone)]
pub(crate) struct Route {
    clients: Arc<UpstreamClients>,
    metrics: Metrics,
}

impl Route {
    /// Calls providers through `clients`, counting attempts in `metrics`.
    pub(crate) fn new(clients: Arc<UpstreamClients>, metrics: Metrics) -> Self {
        Self { clients, metrics }
    }
}

/// What every attempt of one request shares.
struct Call<'a> {
    config: &'a GatewayConfig,
    rule: &'a Rule,
    runtime: &'a RuleRuntime,
    inspected: &'a InspectedRequest,
    caller_headers: &'a http::HeaderMap,
    operation: Operation,
    dialect: Dialect,
    exchange: &'a SharedExchange,
    deadline: Option<Instant>,
    output_cap: Option<ReservedOutput>,
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
            let RuleIndex(index) = *parts
                .extensions
                .get::<RuleIndex>()
                .ok_or_else(|| missing("rule"))?;
            let operation = *parts
                .extensions
                .get::<Operation>()
                .ok_or_else(|| missing("operation"))?;
            let rule = snapshot.config.routes.rule(index);
            let call = Call {
                config: &snapshot.config,
                rule,
                runtime: runtime
                    .rules
                    .get(index)
                    .ok_or_else(|| missing("rule runtime"))?,
                inspected: &inspected,
                caller_headers: &parts.headers,
                operation,
                dialect: Dialect::of_path(parts.uri.path()),
                exchange,
                output_cap: parts.extensions.get::<ReservedOutput>().copied(),
                deadline: rule
                    .policy
                    .timeouts
                    .request
                    .map(|limit| Instant::now() + limit),
            };
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
        for attempt_number in 0..policy.retry.attempts {
            let choice = match &last {
                None => balance::choose(
                    rule,
                    call.runtime,
                    &tried,
                    |i| self.price(call, i),
                    &mut rng,
                ),
                Some((previous, failure)) => {
                    if !failure.kind.retried_by(policy.retry.on)
                        || call.deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    if !call.runtime.budget.withdraw() {
                        self.metrics
                            .retry_budget_exhausted
                            .get_or_create(&self.rule_labels(rule))
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
                                .get_or_create(&self.rule_labels(rule))
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
                            self.metrics
                                .retries
                                .get_or_create(&self.rule_labels(rule))
                                .inc();
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
            call.exchange
                .attempts
                .store(attempt_number + 1, Ordering::Relaxed);
            match self.try_backend(call, choice).await {
                Ok(response) => return Ok(response),
                Err(failure) => last = Some((choice.index, failure)),
            }
        }
        match last {
            None => Err(ProxyError::NoBackend {
                route: rule.route.to_string(),
            }),
            Some((index, failure)) => {
                self.set_target(call, index);
                match failure.answer {
                    FinalAnswer::Error(error) => Err(error),
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
        let request = self
            .upstream_request(call, backend, provider)
            .map_err(|error| attempt::Failure {
                kind: FailureKind::Server,
                retry_after: None,
                answer: FinalAnswer::Error(error),
            })?;
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
        let provider_label = provider.name.to_string();
        match outcome {
            Outcome::Failed(failure) => {
                self.metrics
                    .upstream_attempts
                    .get_or_create(&AttemptLabels {
                        provider: provider_label.clone(),
                        outcome: failure.kind.as_str(),
                    })
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
                self.metrics
                    .upstream_attempts
                    .get_or_create(&AttemptLabels {
                        provider: provider_label,
                        outcome: "ok",
                    })
                    .inc();
                state.on_first_byte(first_byte);
                self.set_target(call, choice.index);
                strip_hop_by_hop(&mut head.headers);
                head.headers.remove(header::SET_COOKIE);
                let stream = head
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/event-stream"));
                let hide_usage = stream
                    && call.operation == Operation::Chat
                    && call.inspected.stream
                    && !call.inspected.include_usage;
                if hide_usage || first.is_some() {
                    head.headers.remove(header::CONTENT_LENGTH);
                }
                let body = ProxyBody::upstream(UpstreamParts {
                    incoming,
                    first,
                    exchange: call.exchange.clone(),
                    stream,
                    hide_usage,
                    deadline: call.deadline,
                    dialect: call.dialect,
                    backend: BackendLease {
                        state: state.clone(),
                        outlier: call.rule.policy.outlier,
                        _in_flight: in_flight,
                    },
                });
                Ok(Response::from_parts(head, body))
            }
        }
    }

    /// The request for one backend: its model, its credential, the caller's other headers.
    fn upstream_request(
        &self,
        call: &Call<'_>,
        backend: &Backend,
        provider: &Provider,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
        let upstream_model = backend.model.as_deref().unwrap_or(&call.inspected.model);
        let body = call.inspected.rewrite(&Rewrite {
            model: Some(upstream_model),
            include_usage: call.operation == Operation::Chat && call.inspected.stream,
            max_output_tokens: call.output_cap.map(|ReservedOutput(tokens)| OutputCap {
                tokens,
                field: output_cap_field(provider.kind),
            }),
        });
        let mut request = Request::post(format!(
            "{}{}",
            provider.endpoint,
            call.operation.upstream_path()
        ))
        .body(Full::new(body))
        .map_err(|e| ProxyError::Internal(format!("cannot build the upstream request: {e}")))?;
        forward_headers(call.caller_headers, request.headers_mut(), provider)?;
        Ok(request)
    }

    /// Records where the request went, for metrics and the access log.
    fn set_target(&self, call: &Call<'_>, index: usize) {
        let backend = &call.rule.backends[index];
        let provider = call.config.provider(backend.provider);
        let upstream_model = backend.model.as_deref().unwrap_or(&call.inspected.model);
        let model_label = if call.rule.names_model(&call.inspected.model) {
            call.inspected.model.clone()
        } else {
            "*".to_string()
        };
        let _ = call.exchange.target.set(Target {
            route: call.rule.route.to_string(),
            rule: call.rule.name.clone(),
            model_label,
            provider: provider.name.to_string(),
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

    fn rule_labels(&self, rule: &Rule) -> RuleLabels {
        RuleLabels {
            route: rule.route.to_string(),
            rule: rule.name.clone(),
        }
    }
}

/// A claimed probe of an ejected backend, released if the attempt ends without a verdict.
struct ProbeClaim(Arc<crate::health::BackendState>);

impl Drop for ProbeClaim {
    fn drop(&mut self) {
        self.0.release_probe();
    }
}
