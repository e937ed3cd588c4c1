//! Budgets and rate limits: reserve a request's worst case on every limit that applies before
//! it is routed, settle to what it used when its response ends.
//!
//! The [`Ledger`] outlives snapshots (a reload keeps what was spent) and is shared by every
//! Gateway of the process: a team's budget is one budget wherever its requests arrive.

mod headers;
mod memory;
mod redis;
mod store;
mod window;

use futures::FutureExt;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::{
    BudgetPolicy, Budgets, Enforcement, FailureMode, Limit, NANOS_PER_USD, Snapshot, Unit, Window,
};

use crate::error::ProxyError;
use crate::exchange::SharedExchange;
use crate::metrics::{AlertLabels, BudgetLabels, Metrics, StoreLabels};
pub use headers::RateLimitHeaders;
use store::{Counted, CounterRequest, CounterSettle, Reserved, Store, StoreError};
use window::Span;

/// Where budget counts are kept.
#[derive(Clone, Debug, Default)]
pub enum StoreConfig {
    /// In this process: one proxy.
    #[default]
    Memory,
    /// In Redis, shared by every proxy pointed at it.
    Redis {
        /// `redis://[:password@]host:port[/db]`, or `rediss://` for TLS.
        url: String,
        /// The longest any one store call may take.
        timeout: Duration,
        /// A prefix that keeps this deployment's keys apart from others in the same Redis.
        namespace: String,
    },
}

/// Unix time in milliseconds; injectable so that window rollover is testable.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The budget state of the process.
pub struct Ledger {
    store: Store,
    metrics: Metrics,
    clock: Clock,
    /// Alerts known to be claimed (by this proxy or another), by hash, so that a threshold
    /// passed long ago costs no store call per request.
    alerts_seen: Mutex<HashSet<u64>>,
    hasher: RandomState,
    /// Settlements still running in the background, which shutdown waits for.
    pending: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("store", &self.store)
            .finish()
    }
}

/// What a request asks of its budgets.
#[derive(Clone, Copy, Debug)]
pub struct Demand {
    /// Input tokens, counted or estimated from the prompt.
    pub input_tokens: u64,
    /// The output cap the caller set, if any.
    pub max_output: Option<u64>,
    /// The highest prices among the backends that may serve it.
    pub price: WorstPrice,
}

/// Nano-dollars per token, rounded up, of the dearest backend a request may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorstPrice {
    /// Per input token.
    pub input: u64,
    /// Per output token.
    pub output: u64,
}

impl WorstPrice {
    /// The dearer of two prices, per kind of token.
    pub fn max(self, other: WorstPrice) -> WorstPrice {
        WorstPrice {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
        }
    }

    /// Prices per million tokens in USD as nano-dollars per token, rounded up.
    pub fn of(input_per_million: Decimal, output_per_million: Decimal) -> WorstPrice {
        let per_token = |usd: Decimal| {
            (usd * Decimal::from(NANOS_PER_USD / 1_000_000))
                .ceil()
                .to_u64()
                .unwrap_or(u64::MAX)
        };
        WorstPrice {
            input: per_token(input_per_million),
            output: per_token(output_per_million),
        }
    }
}

/// What a request used, for settling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consumed {
    /// Input plus output tokens.
    pub tokens: u64,
    /// Spend in nano-dollars, rounded up.
    pub nano_usd: u64,
}

impl Consumed {
    /// Spend in USD as whole nano-dollars, rounded up.
    pub(crate) fn nano_usd_of(usd: Decimal) -> u64 {
        (usd * Decimal::from(NANOS_PER_USD))
            .ceil()
            .to_u64()
            .unwrap_or(u64::MAX)
    }
}

/// What the ledger decided for a request.
#[derive(Debug)]
pub enum Verdict {
    /// Reserved; settle it when the response ends.
    Reserved {
        /// The reservation.
        reservation: Reservation,
        /// A lower output cap to send upstream, when the reservation was for less than the
        /// caller asked (clamped), or the caller set none and a default cap was reserved.
        output_cap: Option<u64>,
        /// Headers telling the caller where it stands.
        headers: RateLimitHeaders,
    },
    /// Served uncounted: the store failed and every applicable policy fails open.
    Unmetered,
}

/// A request's reservation, settled exactly once (by [`Ledger::settle`]).
#[derive(Debug)]
pub struct Reservation {
    snapshot: Arc<Snapshot>,
    held: Vec<Held>,
    /// The input tokens reserved for, used when the response reports no usage.
    pub(crate) input_tokens: u64,
}

/// One limit's share of a reservation.
#[derive(Debug, Clone, Copy)]
struct Held {
    policy: usize,
    limit: usize,
    slot: i64,
    reserved: u64,
}

impl Ledger {
    /// A ledger over the configured store.
    pub fn new(config: &StoreConfig, metrics: Metrics) -> Result<Self, String> {
        let store = match config {
            StoreConfig::Memory => Store::Memory(memory::MemoryStore::default()),
            StoreConfig::Redis {
                url,
                timeout,
                namespace,
            } => Store::Redis(Box::new(
                redis::RedisStore::new(url, *timeout, namespace).map_err(|e| e.to_string())?,
            )),
        };
        Ok(Self::with_clock(
            store,
            metrics,
            Arc::new(crate::clock::unix_millis),
        ))
    }

    fn with_clock(store: Store, metrics: Metrics, clock: Clock) -> Self {
        Self {
            store,
            metrics,
            clock,
            alerts_seen: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
            pending: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Reserves `demand` on every limit of the policies at `policies` (indices into the
    /// snapshot's budgets).
    pub async fn reserve(
        &self,
        snapshot: &Arc<Snapshot>,
        policies: &[usize],
        demand: Demand,
    ) -> Result<Verdict, ProxyError> {
        let budgets = &snapshot.config.budgets;
        let now = (self.clock)();
        let max_output = demand.max_output.unwrap_or_else(|| {
            policies
                .iter()
                .map(|p| budgets.policy(*p).default_max_output_tokens)
                .max()
                .unwrap_or(0)
        });
        let mut owners = Vec::with_capacity(policies.len() * 2);
        let mut counters = Vec::with_capacity(policies.len() * 2);
        for &index in policies {
            let policy = budgets.policy(index);
            for (limit_index, limit) in policy.limits.iter().enumerate() {
                let (fixed, per_output) = match limit.unit {
                    Unit::Requests => (1, 0),
                    Unit::Tokens => (demand.input_tokens, 1),
                    Unit::NanoUsd => (
                        demand.input_tokens.saturating_mul(demand.price.input),
                        demand.price.output,
                    ),
                };
                owners.push((index, limit_index));
                counters.push(CounterRequest {
                    key: budgets.counter_key(index, limit_index),
                    limit: limit.amount,
                    fixed,
                    per_output,
                    hard: policy.enforcement == Enforcement::Hard,
                    clamp: policy.clamp,
                    span: Span::at(limit.window, &policy.time_zone, now),
                });
            }
        }
        let decision = match self.store.reserve(&counters, max_output).await {
            Ok(decision) => decision,
            Err(error) => return self.store_failed(budgets, policies, &error),
        };
        match decision {
            Reserved::Refused {
                counter,
                free_at_slot,
                counters: counted,
            } => {
                let (policy_index, limit_index) = owners[counter];
                let policy = budgets.policy(policy_index);
                self.count(policy, "refused");
                let mut at_limit = counted.clone();
                at_limit[counter].used = at_limit[counter].used.max(counters[counter].limit);
                self.check_alerts(budgets, alerting(&owners, &counters, &at_limit), now)
                    .await;
                let request = &counters[counter];
                let retry_after = free_at_slot.map(|slot| {
                    let wait_ms = (request.span.expiry_of(slot) - now).max(0) as u64;
                    wait_ms.div_ceil(1000).max(1)
                });
                Err(refusal(
                    policy,
                    &policy.limits[limit_index],
                    counted[counter].used,
                    request.need(if request.clamp { 1 } else { max_output }),
                    retry_after,
                ))
            }
            Reserved::Granted {
                output,
                counters: counted,
            } => {
                let held = owners
                    .iter()
                    .zip(&counters)
                    .map(|(&(policy, limit), request)| Held {
                        policy,
                        limit,
                        slot: request.span.slot,
                        reserved: request.need(output),
                    })
                    .collect();
                let clamped = output < max_output;
                for (counter, (owner, request)) in counted.iter().zip(owners.iter().zip(&counters))
                {
                    let policy = budgets.policy(owner.0);
                    if !request.hard && counter.used > request.limit {
                        self.count(policy, "over_limit");
                    }
                    if clamped && request.clamp && request.hard {
                        self.count(policy, "clamped");
                    }
                }
                self.check_alerts(budgets, alerting(&owners, &counters, &counted), now)
                    .await;
                let headers = RateLimitHeaders::of(
                    owners.iter().zip(&counters).zip(&counted).map(
                        |((&(p, l), request), counted)| {
                            (&budgets.policy(p).limits[l], &request.span, *counted)
                        },
                    ),
                    now,
                );
                Ok(Verdict::Reserved {
                    reservation: Reservation {
                        snapshot: snapshot.clone(),
                        held,
                        input_tokens: demand.input_tokens,
                    },
                    output_cap: (clamped || demand.max_output.is_none()).then_some(output),
                    headers,
                })
            }
        }
    }

    /// The store failed: refuse if any policy fails closed, else serve uncounted.
    fn store_failed(
        &self,
        budgets: &Budgets,
        policies: &[usize],
        error: &StoreError,
    ) -> Result<Verdict, ProxyError> {
        self.store_error("reserve", error);
        let closed = policies
            .iter()
            .map(|p| budgets.policy(*p))
            .find(|p| p.failure_mode == FailureMode::Closed);
        match closed {
            Some(policy) => Err(ProxyError::BudgetStoreUnavailable {
                policy: policy.id.to_string(),
            }),
            None => {
                for &p in policies {
                    self.count(budgets.policy(p), "unmetered");
                }
                Ok(Verdict::Unmetered)
            }
        }
    }

    fn store_error(&self, operation: &'static str, error: &StoreError) {
        tracing::warn!(operation, %error, "budget store call failed");
        self.metrics
            .budget_store_errors
            .get_or_create(&StoreLabels { operation })
            .inc();
    }

    fn count(&self, policy: &BudgetPolicy, outcome: &'static str) {
        self.metrics
            .budget_outcomes
            .get_or_create(&BudgetLabels {
                policy: policy.id.to_string(),
                outcome,
            })
            .inc();
    }

    /// Settles the reservation `exchange` holds, if any, to what the request `consumed`: at
    /// once with the memory store, in the background with Redis (shutdown waits for it).
    pub(crate) fn settle_exchange(self: &Arc<Self>, exchange: SharedExchange, consumed: Consumed) {
        if exchange.reservation.get().is_none() {
            return;
        }
        let ledger = self.clone();
        let settle = async move {
            if let Some(reservation) = exchange.reservation.get() {
                ledger.settle(reservation, consumed).await;
            }
        };
        match self.store {
            Store::Memory(_) => {
                if settle.now_or_never().is_none() {
                    tracing::error!("an in-memory settlement did not complete at once");
                }
            }
            Store::Redis(_) => {
                self.pending.spawn(settle);
            }
        }
    }

    /// Waits up to `deadline` for background settlements; returns whether they all finished.
    pub(crate) async fn flush(&self, deadline: Duration) -> bool {
        self.pending.close();
        tokio::time::timeout(deadline, self.pending.wait())
            .await
            .is_ok()
    }

    /// Settles `reservation` to what the request `consumed`. A store that fails now loses
    /// only the difference: the reservation (the worst case) stays counted until its window
    /// rolls over, so a failure never lets spend exceed a limit.
    pub async fn settle(&self, reservation: &Reservation, consumed: Consumed) {
        let budgets = &reservation.snapshot.config.budgets;
        let now = (self.clock)();
        let settles: Vec<CounterSettle<'_>> = reservation
            .held
            .iter()
            .map(|held| {
                let policy = budgets.policy(held.policy);
                let limit = &policy.limits[held.limit];
                let used = match limit.unit {
                    Unit::Requests => held.reserved,
                    Unit::Tokens => consumed.tokens,
                    Unit::NanoUsd => consumed.nano_usd,
                };
                CounterSettle {
                    key: budgets.counter_key(held.policy, held.limit),
                    slot: held.slot,
                    delta: used as i64 - held.reserved as i64,
                    span: Span::at(limit.window, &policy.time_zone, now),
                }
            })
            .collect();
        match self.store.settle(&settles).await {
            Ok(counted) => {
                let entries = reservation.held.iter().zip(&settles).zip(counted).map(
                    |((held, settle), counted)| ((held.policy, held.limit), settle.span, counted),
                );
                self.check_alerts(budgets, entries, now).await;
            }
            Err(error) => self.store_error("settle", &error),
        }
    }

    /// Fires each alert threshold a counter has reached, once per window across proxies.
    /// `entries` are each counter's (policy, limit) indices, its window now, and what it holds.
    async fn check_alerts(
        &self,
        budgets: &Budgets,
        entries: impl Iterator<Item = ((usize, usize), Span, Counted)>,
        now: i64,
    ) {
        for ((p, l), span, counted) in entries {
            let policy = budgets.policy(p);
            let key = budgets.counter_key(p, l);
            for &threshold in &policy.alert_thresholds {
                if u128::from(counted.used) * 100
                    < u128::from(threshold) * u128::from(policy.limits[l].amount)
                {
                    break;
                }
                let period = span.period_of(now);
                let seen = self.hasher.hash_one((key, threshold, period));
                if self.alerts_seen.lock().contains(&seen) {
                    continue;
                }
                let name = format!("{key}:{threshold}:{period}");
                match self.store.claim_alert(&name, now, span.period_ms()).await {
                    Ok(claimed) => {
                        let mut seen_alerts = self.alerts_seen.lock();
                        if seen_alerts.len() > 10_000 {
                            seen_alerts.clear();
                        }
                        seen_alerts.insert(seen);
                        drop(seen_alerts);
                        if claimed {
                            self.alert(policy, &policy.limits[l], threshold, counted.used);
                        }
                    }
                    Err(error) => self.store_error("alert", &error),
                }
            }
        }
    }

    fn alert(&self, policy: &BudgetPolicy, limit: &Limit, threshold: u16, used: u64) {
        tracing::warn!(
            target: "tollgate::budget",
            policy = %policy.id,
            threshold,
            window = limit.window.as_str(),
            unit = limit.unit.as_str(),
            used = %Amount(limit.unit, used),
            limit = %Amount(limit.unit, limit.amount),
            "budget alert: {threshold}% of a limit reached"
        );
        self.metrics
            .budget_alerts
            .get_or_create(&AlertLabels {
                policy: policy.id.to_string(),
                threshold,
            })
            .inc();
    }

    /// What the store holds for every limit of every policy, for the admin server.
    pub(crate) async fn report(&self, budgets: &Budgets) -> Result<Vec<PolicyReport>, String> {
        let now = (self.clock)();
        let mut queries = Vec::new();
        for (p, policy) in budgets.policies().iter().enumerate() {
            for (l, limit) in policy.limits.iter().enumerate() {
                queries.push((
                    budgets.counter_key(p, l),
                    Span::at(limit.window, &policy.time_zone, now),
                ));
            }
        }
        let counted = self.store.read(&queries).await.map_err(|e| e.to_string())?;
        let mut counted = counted.into_iter().zip(queries);
        Ok(budgets
            .policies()
            .iter()
            .map(|policy| PolicyReport {
                policy: policy.id.to_string(),
                enforcement: policy.enforcement,
                limits: policy
                    .limits
                    .iter()
                    .map(|limit| {
                        let (counted, (_, span)) = counted.next().expect("one per limit");
                        LimitReport::new(limit, &span, counted, now)
                    })
                    .collect(),
            })
            .collect())
    }
}

/// The entries [`Ledger::check_alerts`] reads, from a reservation's counters.
fn alerting<'a>(
    owners: &'a [(usize, usize)],
    counters: &'a [CounterRequest<'_>],
    counted: &'a [Counted],
) -> impl Iterator<Item = ((usize, usize), Span, Counted)> + 'a {
    owners
        .iter()
        .zip(counters)
        .zip(counted)
        .map(|((owner, counter), counted)| (*owner, counter.span, *counted))
}

/// The error for a request a hard limit refuses.
fn refusal(
    policy: &BudgetPolicy,
    limit: &Limit,
    used: u64,
    need: u64,
    retry_after: Option<u64>,
) -> ProxyError {
    let rate = limit.window == Window::Minute && limit.unit != Unit::NanoUsd;
    let per = match limit.window {
        Window::Minute => "per minute",
        Window::Hour => "per hour",
        Window::Day => "per day",
        Window::Month => "per month",
    };
    let what = format!("{} {per}", Amount(limit.unit, limit.amount));
    let message = match retry_after {
        Some(seconds) => format!(
            "{} {} of policy {} reached: {} used, this request needs up to {}; retry in {seconds}s",
            if rate { "rate limit" } else { "budget" },
            what,
            policy.id,
            Amount(limit.unit, used),
            Amount(limit.unit, need),
        ),
        None => format!(
            "this request needs up to {}, more than the whole limit of {what} of policy {}; lower max_tokens or shorten the prompt",
            Amount(limit.unit, need),
            policy.id,
        ),
    };
    ProxyError::LimitReached {
        code: if rate {
            "rate_limit_exceeded"
        } else {
            "budget_exceeded"
        },
        message,
        retry_after,
    }
}

/// Nano-dollars as dollars, without trailing zeros.
fn dollars(nanos: u64) -> Decimal {
    (Decimal::from(nanos) / Decimal::from(NANOS_PER_USD)).normalize()
}

/// An amount in a unit, written for people: USD with cents (or finer when needed).
struct Amount(Unit, u64);

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Unit::NanoUsd => write!(f, "${}", dollars(self.1).round_dp(6)),
            Unit::Tokens => write!(f, "{} tokens", self.1),
            Unit::Requests => write!(f, "{} requests", self.1),
        }
    }
}

/// One policy as the admin server shows it.
#[derive(Debug, serde::Serialize)]
pub(crate) struct PolicyReport {
    policy: String,
    enforcement: Enforcement,
    limits: Vec<LimitReport>,
}

/// One limit as the admin server shows it.
#[derive(Debug, serde::Serialize)]
struct LimitReport {
    window: &'static str,
    unit: &'static str,
    limit: String,
    used: String,
    remaining: String,
    /// RFC 3339: when the oldest amount counted stops counting (rolling windows) or the
    /// window ends (calendar windows).
    resets_at: String,
    /// What is used and left, as numbers in the unit's display scale (dollars for USD), for
    /// the gauges.
    #[serde(skip)]
    amounts: (f64, f64),
}

impl PolicyReport {
    /// `(policy, window, unit, used, remaining)` of each limit, for the budget gauges.
    pub(crate) fn gauges(
        &self,
    ) -> impl Iterator<Item = (&str, &'static str, &'static str, f64, f64)> {
        self.limits.iter().map(|limit| {
            let (used, remaining) = limit.amounts;
            (
                self.policy.as_str(),
                limit.window,
                limit.unit,
                used,
                remaining,
            )
        })
    }
}

impl LimitReport {
    fn new(limit: &Limit, span: &Span, counted: Counted, now: i64) -> Self {
        let show = |amount: u64| match limit.unit {
            Unit::NanoUsd => dollars(amount).to_string(),
            _ => amount.to_string(),
        };
        let resets = span
            .expiry_of(counted.oldest_slot.unwrap_or(span.slot))
            .max(now);
        let number = |amount: u64| match limit.unit {
            Unit::NanoUsd => amount as f64 / 1e9,
            _ => amount as f64,
        };
        let remaining = limit.amount.saturating_sub(counted.used);
        Self {
            amounts: (number(counted.used), number(remaining)),
            window: limit.window.as_str(),
            unit: limit.unit.as_str(),
            limit: show(limit.amount),
            used: show(counted.used),
            remaining: show(remaining),
            resets_at: jiff::Timestamp::from_millisecond(resets)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
