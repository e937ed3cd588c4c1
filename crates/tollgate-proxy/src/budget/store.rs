//! The one interface budgets are counted through, and its two implementations: in memory (one
//! proxy) and Redis (several proxies sharing counts). Both run the same algorithm — the Redis
//! one as a Lua script, so it is atomic across proxies — and the same tests.
//!
//! A counter is a set of slots, each holding an amount; the slots from a span's `first_live`
//! on count, older ones are forgotten. A rolling window has many slots, a calendar window one.

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::window::Span;

/// One limit's part in a reservation. What it needs is `fixed + per_output * output`, where
/// `output` is the request's output cap (possibly lowered by clamping).
#[derive(Clone, Debug)]
pub(crate) struct CounterRequest<'a> {
    /// The counter's key.
    pub(crate) key: &'a str,
    /// The limit of one window.
    pub(crate) limit: u64,
    /// The part of the amount that does not depend on output.
    pub(crate) fixed: u64,
    /// The amount per output token.
    pub(crate) per_output: u64,
    /// Whether reaching the limit refuses the request (otherwise it is only counted).
    pub(crate) hard: bool,
    /// Whether the output cap may be lowered to fit this limit.
    pub(crate) clamp: bool,
    /// The window now.
    pub(crate) span: Span,
}

impl CounterRequest<'_> {
    /// The amount needed for `output` output tokens.
    pub(crate) fn need(&self, output: u64) -> u64 {
        self.fixed
            .saturating_add(self.per_output.saturating_mul(output))
    }
}

/// What a counter holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    /// The sum of its live slots.
    pub(crate) used: u64,
    /// Its oldest live slot, if any: when it expires, the counter first goes down.
    pub(crate) oldest_slot: Option<i64>,
}

/// The answer to a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// Every counter took its amount.
    Granted {
        /// The output cap reserved for: the one asked for, or lower when clamped.
        output: u64,
        /// Each counter after the reservation.
        counters: Vec<Counted>,
    },
    /// A hard limit has no room; nothing was counted.
    Refused {
        /// The index of the first counter without room.
        counter: usize,
        /// The slot whose expiry frees enough room; `None` when the request can never fit.
        free_at_slot: Option<i64>,
        /// Each counter as it is.
        counters: Vec<Counted>,
    },
}

/// One counter's settlement: the amount reserved in `slot` changes by `delta`.
#[derive(Clone, Debug)]
pub(crate) struct CounterSettle<'a> {
    /// The counter's key.
    pub(crate) key: &'a str,
    /// The slot the reservation went to.
    pub(crate) slot: i64,
    /// Used minus reserved.
    pub(crate) delta: i64,
    /// The window now.
    pub(crate) span: Span,
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The store did not answer in time.
    #[error("the budget store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The store failed.
    #[error("the budget store failed: {0}")]
    Failed(String),
}

/// Where counts live.
#[derive(Debug)]
pub(crate) enum Store {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis, shared by every proxy using it.
    Redis(Box<RedisStore>),
}

impl Store {
    /// Reserves on every counter at once, or on none.
    pub(crate) async fn reserve(
        &self,
        counters: &[CounterRequest<'_>],
        max_output: u64,
    ) -> Result<Reserved, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.reserve(counters, max_output)),
            Store::Redis(store) => store.reserve(counters, max_output).await,
        }
    }

    /// Settles a reservation; returns each counter afterwards.
    pub(crate) async fn settle(
        &self,
        counters: &[CounterSettle<'_>],
    ) -> Result<Vec<Counted>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.settle(counters)),
            Store::Redis(store) => store.settle(counters).await,
        }
    }

    /// Reads counters without changing them.
    pub(crate) async fn read(&self, counters: &[(&str, Span)]) -> Result<Vec<Counted>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.read(counters)),
            Store::Redis(store) => store.read(counters).await,
        }
    }

    /// Claims the alert named `name` from `now_ms` for `ttl_ms`: true for exactly one caller
    /// per period, across every proxy sharing the store.
    pub(crate) async fn claim_alert(
        &self,
        name: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.claim_alert(name, now_ms, ttl_ms)),
            Store::Redis(store) => store.claim_alert(name, ttl_ms).await,
        }
    }
}

/// The reservation algorithm both stores run, over counters whose live slots (ascending) are
/// given. Returns the decision; the caller applies a grant.
pub(crate) fn decide(
    counters: &[CounterRequest<'_>],
    live: &[&[(i64, u64)]],
    max_output: u64,
) -> Reserved {
    let counted: Vec<Counted> = live
        .iter()
        .map(|slots| Counted {
            used: slots.iter().map(|(_, amount)| amount).sum(),
            oldest_slot: slots.first().map(|(slot, _)| *slot),
        })
        .collect();
    let mut output = max_output;
    let mut clamped_by = None;
    for (index, counter) in counters.iter().enumerate() {
        if counter.hard && counter.clamp && counter.per_output > 0 {
            let room = counter
                .limit
                .saturating_sub(counted[index].used)
                .saturating_sub(counter.fixed);
            let fits = room / counter.per_output;
            if fits < output {
                output = fits;
                clamped_by = Some(index);
            }
        }
    }
    let refuse = |index: usize, output: u64| {
        let counter = &counters[index];
        let need = counter.need(output);
        let free_at_slot = if need > counter.limit {
            None
        } else {
            let excess = counted[index].used + need - counter.limit;
            let mut freed = 0;
            live[index].iter().find_map(|(slot, amount)| {
                freed += amount;
                (freed >= excess).then_some(*slot)
            })
        };
        Reserved::Refused {
            counter: index,
            free_at_slot,
            counters: counted.clone(),
        }
    };
    if let Some(index) = clamped_by
        && output == 0
        && max_output > 0
    {
        return refuse(index, 1);
    }
    for (index, counter) in counters.iter().enumerate() {
        if counter.hard && counted[index].used.saturating_add(counter.need(output)) > counter.limit
        {
            return refuse(index, output);
        }
    }
    let counters = counted
        .iter()
        .zip(counters)
        .map(|(before, counter)| Counted {
            used: before.used + counter.need(output),
            oldest_slot: before
                .oldest_slot
                .or((counter.need(output) > 0).then_some(counter.span.slot)),
        })
        .collect();
    Reserved::Granted { output, counters }
}
