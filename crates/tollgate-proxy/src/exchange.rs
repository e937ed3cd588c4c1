//! What the stages learn about a request, shared with the record stage that reports it.
//!
//! The record stage creates one [`Exchange`] per request and puts it in the request's
//! extensions; inner stages fill in what they decide, and the response body fills in usage
//! when the stream ends. Each field is written once, so no lock is needed.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};
use tollgate_config::{Identity, Pricing};
use tollgate_llm::Usage;

use crate::budget::Reservation;
use crate::labels::Label;
use crate::series::TargetSeries;
use crate::stack::Served;
use crate::stages::authorize::RuleIndex;
use crate::stages::endpoints::Operation;
use crate::stages::reserve::ReservedOutput;

/// The facts of one request, written once each by the stage that learns them.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// The configuration the request runs on, and what was prepared with it (record).
    pub served: OnceLock<Arc<Served>>,
    /// Who called (authenticate).
    pub identity: OnceLock<Identity>,
    /// The AI operation asked for (endpoints).
    pub operation: OnceLock<Operation>,
    /// The rule that serves the request (authorize).
    pub rule: OnceLock<RuleIndex>,
    /// The output cap the reservation was made for, to send upstream (reserve).
    pub output_cap: OnceLock<ReservedOutput>,
    /// What the caller asked for (inspect).
    pub requested: OnceLock<Requested>,
    /// The request body, kept only when bodies are captured for the audit log (inspect).
    pub request_body: OnceLock<bytes::Bytes>,
    /// Where the request went (route).
    pub target: OnceLock<Target>,
    /// What it consumed (the response body, at its end).
    pub usage: OnceLock<Usage>,
    /// Why the model stopped, as the upstream said (the response body).
    pub finish_reason: OnceLock<String>,
    /// Why the upstream failed the request, when the caller gets the upstream's own error
    /// answer (route) or a response that broke after it began (the response body).
    pub failure: OnceLock<&'static str>,
    /// Attempts made upstream, retries and failovers included (route).
    pub attempts: AtomicU32,
    /// What was reserved on the caller's budgets, settled when the response ends (reserve).
    pub reservation: OnceLock<Reservation>,
}

/// What a request asked for, as the caller wrote it.
#[derive(Debug, Clone)]
pub(crate) struct Requested {
    /// The operation's name (`chat`, `embeddings`, `count_tokens`).
    pub operation: &'static str,
    /// The model the caller named.
    pub model: String,
    /// The output cap the caller set.
    pub max_tokens: Option<u64>,
    /// Whether the caller asked for a stream.
    pub stream: bool,
}

/// The route and backend chosen for a request.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `namespace/name` of the AIRoute.
    pub route: Label,
    /// The rule's name.
    pub rule: Label,
    /// The model label for metrics: the rule's model when matched exactly, `*` for a catch-all.
    pub model_label: Label,
    /// `namespace/name` of the provider.
    pub provider: Label,
    /// The metric series of requests to this target.
    pub series: Arc<TargetSeries>,
    /// The provider's kind as OpenTelemetry names it (`gen_ai.provider.name`).
    pub provider_kind: &'static str,
    /// The model asked of the upstream.
    pub upstream_model: String,
    /// What that model costs.
    pub pricing: Pricing,
}

/// Marks a request whose bodies are captured for the audit log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CaptureBodies;

/// The shared handle stages find in request extensions.
pub(crate) type SharedExchange = Arc<Exchange>;

/// The caller of a request that passed authenticate, for the stages after it.
pub(crate) fn caller<B>(request: &http::Request<B>) -> Result<&Identity, crate::ProxyError> {
    request
        .extensions()
        .get::<SharedExchange>()
        .and_then(|exchange| exchange.identity.get())
        .ok_or_else(|| crate::ProxyError::Internal("no identity".into()))
}
