//! **reserve**: before a request is routed, reserves its worst case — input tokens from the
//! prompt, output at its cap, priced at the dearest backend the rule may reach — on every
//! limit of every budget policy that applies to it, atomically. A hard limit without room
//! refuses it with 429; a clamping policy lowers its output cap instead. The record stage
//! settles the reservation to what was used when the response ends, however it ends.

use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::{Rule, Snapshot, Unit};
use tollgate_llm::Tokenizer;
use tollgate_llm::openai::InspectedRequest;
use tower::{Layer, Service};

use super::StageFuture;
use super::authorize::RuleIndex;
use super::endpoints::Operation;
use crate::body::ProxyBody;
use crate::budget::{Demand, Ledger, Verdict, WorstPrice};
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, caller};

/// The output cap the reservation was made for, for the route stage to send upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReservedOutput(pub u64);

/// Adds the reserve stage.
#[derive(Clone, Debug)]
pub(crate) struct ReserveLayer {
    ledger: Arc<Ledger>,
}

impl ReserveLayer {
    /// Reserves on `ledger`.
    pub(crate) fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
}

impl<S> Layer<S> for ReserveLayer {
    type Service = Reserve<S>;

    fn layer(&self, inner: S) -> Reserve<S> {
        Reserve {
            inner,
            ledger: self.ledger.clone(),
        }
    }
}

/// The reserve stage's service.
#[derive(Clone, Debug)]
pub(crate) struct Reserve<S> {
    inner: S,
    ledger: Arc<Ledger>,
}

impl<S> Service<Request<InspectedRequest>> for Reserve<S>
where
    S: Service<Request<InspectedRequest>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<InspectedRequest>) -> Self::Future {
        let plan = match plan(&request) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Box::pin(self.inner.call(request)),
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        // The inner service is taken (and a fresh clone left behind) because the call happens
        // after an await, as tower requires of services driven from a future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let ledger = self.ledger.clone();
        Box::pin(async move {
            let Plan {
                snapshot,
                exchange,
                policies,
                mut demand,
                counting,
            } = plan;
            if !counting.is_empty() {
                demand.input_tokens = prompt_tokens(request.body(), counting).await;
            }
            let verdict = ledger.reserve(&snapshot, &policies, demand).await?;
            let Verdict::Reserved {
                reservation,
                output_cap,
                headers,
            } = verdict
            else {
                return inner.call(request).await;
            };
            if exchange.reservation.set(reservation).is_err() {
                return Err(ProxyError::Internal("a request was reserved twice".into()));
            }
            if let Some(cap) = output_cap {
                let _ = exchange.output_cap.set(ReservedOutput(cap));
            }
            let mut response = inner.call(request).await?;
            headers.apply(response.headers_mut());
            Ok(response)
        })
    }
}

/// What a request must reserve, and on which policies.
struct Plan {
    snapshot: Arc<Snapshot>,
    exchange: SharedExchange,
    /// Indices of the budget policies that apply.
    policies: Vec<usize>,
    /// Its `input_tokens` the estimate, until the prompt is counted with `counting`.
    demand: Demand,
    /// The tokenizers the prompt is counted with, when the policies count tokens and tiktoken
    /// knows the model of every backend of the rule; else empty.
    counting: Vec<Tokenizer>,
}

/// The request's plan; `None` when no budget policy applies to it.
fn plan(request: &Request<InspectedRequest>) -> Result<Option<Plan>, ProxyError> {
    let missing = |what: &str| ProxyError::Internal(format!("no {what} in request"));
    let extensions = request.extensions();
    let snapshot = extensions
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| missing("snapshot"))?;
    let budgets = &snapshot.config.budgets;
    let exchange = extensions.get::<SharedExchange>();
    let operation = exchange.and_then(|exchange| exchange.operation.get());
    // Counting tokens spends nothing, so no budget or rate limit applies to it.
    if budgets.is_empty() || operation == Some(&Operation::CountTokens) {
        return Ok(None);
    }
    let exchange = exchange.ok_or_else(|| missing("exchange"))?;
    let RuleIndex(index) = *exchange.rule.get().ok_or_else(|| missing("rule"))?;
    let identity = caller(request)?;
    let rule = snapshot.config.routes.rule(index);
    let policies: Vec<usize> = budgets.applicable(identity, &rule.route).collect();
    if policies.is_empty() {
        return Ok(None);
    }
    let inspected = request.body();
    let counting = if counts_tokens(snapshot, &policies) {
        tokenizers(inspected, rule).unwrap_or_default()
    } else {
        Vec::new()
    };
    let chat = operation == Some(&Operation::Chat);
    Ok(Some(Plan {
        snapshot: snapshot.clone(),
        exchange: exchange.clone(),
        policies,
        demand: demand_of(inspected, snapshot, rule, chat),
        counting,
    }))
}

/// What a request asks of its budgets: its prompt (estimated), its output cap, and the
/// dearest prices among the backends its rule may send it to (a failover may land on any of
/// them). `chat`: the request asks for a chat answer.
fn demand_of(inspected: &InspectedRequest, snapshot: &Snapshot, rule: &Rule, chat: bool) -> Demand {
    let price = rule
        .backends
        .iter()
        .filter_map(|backend| {
            let provider = snapshot.config.provider(backend.provider);
            let model = backend.model.as_deref().unwrap_or(&inspected.model);
            provider.models.get(model)
        })
        .map(|pricing| WorstPrice::of(pricing.input_per_million, pricing.output_per_million))
        .fold(WorstPrice::default(), WorstPrice::max);
    // Only chat produces output; an embedding's cost is its input.
    Demand {
        input_tokens: inspected.prompt_tokens_estimate,
        max_output: if chat { inspected.max_tokens } else { Some(0) },
        price,
    }
}

/// Whether any of `policies` limits tokens or spend (so the prompt's tokens are counted).
fn counts_tokens(snapshot: &Snapshot, policies: &[usize]) -> bool {
    let budgets = &snapshot.config.budgets;
    policies.iter().any(|&p| {
        budgets
            .policy(p)
            .limits
            .iter()
            .any(|limit| limit.unit != Unit::Requests)
    })
}

/// The tokenizers of the rule's backends' models (each once); `None` when tiktoken does not
/// know one of them, and the prompt is estimated instead.
fn tokenizers(inspected: &InspectedRequest, rule: &Rule) -> Option<Vec<Tokenizer>> {
    let mut tokenizers: Vec<Tokenizer> = Vec::with_capacity(1);
    for backend in &rule.backends {
        let model = backend.model.as_deref().unwrap_or(&inspected.model);
        let tokenizer = Tokenizer::of_model(model)?;
        if !tokenizers.contains(&tokenizer) {
            tokenizers.push(tokenizer);
        }
    }
    Some(tokenizers)
}

/// Runs `load` on a blocking thread unless `loaded` says it is not needed, one load at a
/// time: the requests that arrive while tables load wait for that load on a lock, rather than
/// each taking a blocking thread to wait on it (a burst of a thousand first requests would
/// otherwise start hundreds of threads).
async fn load_tables(loaded: impl Fn() -> bool, load: impl FnOnce() + Send + 'static) {
    static LOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _loading = LOADING.lock().await;
    if !loaded() {
        let _ = tokio::task::spawn_blocking(load).await;
    }
}

/// The prompt's tokens as `tokenizers` count them (the largest count when they differ). The
/// first request counting with a tokenizer waits for its tables on a blocking thread, instead
/// of stalling every request of its worker thread while they load.
async fn prompt_tokens(inspected: &InspectedRequest, tokenizers: Vec<Tokenizer>) -> u64 {
    let all_loaded = || tokenizers.iter().all(|tokenizer| tokenizer.is_loaded());
    if !all_loaded() {
        let wanted = tokenizers.clone();
        load_tables(all_loaded, move || {
            wanted
                .into_iter()
                .for_each(|tokenizer| _ = tokenizer.load())
        })
        .await;
    }
    tokenizers
        .into_iter()
        .map(|tokenizer| inspected.prompt_tokens(Some(tokenizer)))
        .max()
        .unwrap_or(inspected.prompt_tokens_estimate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_arriving_while_tables_load_wait_for_that_one_load() {
        static LOADS: AtomicUsize = AtomicUsize::new(0);
        static LOADED: AtomicBool = AtomicBool::new(false);
        let waiting: Vec<_> = (0..20)
            .map(|_| {
                tokio::spawn(load_tables(
                    || LOADED.load(Ordering::Acquire),
                    || {
                        LOADS.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                        LOADED.store(true, Ordering::Release);
                    },
                ))
            })
            .collect();
        for task in waiting {
            task.await.unwrap();
        }
        assert!(LOADED.load(Ordering::Acquire));
        assert_eq!(LOADS.load(Ordering::Relaxed), 1);
    }
}
