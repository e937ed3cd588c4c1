//! Counts in this process: the default, for one proxy. One short critical section per
//! operation makes a reservation on several counters atomic.

use foldhash::fast::RandomState;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

use super::store::{Counted, CounterRequest, CounterSettle, Reserved, decide};
use super::window::Span;

/// Counters held in memory; they outlive snapshots, so a reload keeps what was spent. Their
/// keys come from configuration, never from callers, so they are hashed for speed.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    counters: Mutex<HashMap<String, Slots, RandomState>>,
    /// Alerts claimed, with when their claim expires.
    alerts: Mutex<HashMap<String, i64, RandomState>>,
}

/// A counter's slots, ascending.
#[derive(Debug, Default)]
struct Slots(VecDeque<(i64, u64)>);

impl Slots {
    /// Forgets the slots that no longer count.
    fn prune(&mut self, span: &Span) {
        while self
            .0
            .front()
            .is_some_and(|(slot, _)| *slot < span.first_live)
        {
            self.0.pop_front();
        }
    }

    fn add(&mut self, slot: i64, amount: u64) {
        if amount == 0 {
            return;
        }
        match self.0.back_mut() {
            Some((last, held)) if *last == slot => *held += amount,
            _ => self.0.push_back((slot, amount)),
        }
    }

    fn counted(&self) -> Counted {
        Counted {
            used: self.0.iter().map(|(_, amount)| amount).sum(),
            oldest_slot: self.0.front().map(|(slot, _)| *slot),
        }
    }
}

impl MemoryStore {
    pub(crate) fn reserve(&self, counters: &[CounterRequest<'_>], max_output: u64) -> Reserved {
        let mut held = self.counters.lock();
        for counter in counters {
            if !held.contains_key(counter.key) {
                held.insert(counter.key.to_string(), Slots::default());
            }
            let slots = held.get_mut(counter.key).expect("just inserted");
            slots.prune(&counter.span);
            slots.0.make_contiguous();
        }
        let live: Vec<&[(i64, u64)]> = counters
            .iter()
            .map(|c| held[c.key].0.as_slices().0)
            .collect();
        let decision = decide(counters, &live, max_output);
        if let Reserved::Granted { output, .. } = &decision {
            for counter in counters {
                let slots = held.get_mut(counter.key).expect("present");
                slots.add(counter.span.slot, counter.need(*output));
            }
        }
        decision
    }

    pub(crate) fn settle(&self, counters: &[CounterSettle<'_>]) -> Vec<Counted> {
        let mut held = self.counters.lock();
        counters
            .iter()
            .map(|counter| {
                let Some(slots) = held.get_mut(counter.key) else {
                    return Counted::default();
                };
                slots.prune(&counter.span);
                if let Some((_, amount)) = slots.0.iter_mut().find(|(s, _)| *s == counter.slot) {
                    *amount = amount.saturating_add_signed(counter.delta);
                }
                slots.counted()
            })
            .collect()
    }

    pub(crate) fn read(&self, counters: &[(&str, Span)]) -> Vec<Counted> {
        let mut held = self.counters.lock();
        counters
            .iter()
            .map(|(key, span)| {
                held.get_mut(*key).map_or(Counted::default(), |slots| {
                    slots.prune(span);
                    slots.counted()
                })
            })
            .collect()
    }

    /// Claims an alert until `now_ms + ttl_ms`, as Redis's `SET NX PX` does; expired claims
    /// are dropped as new ones arrive, so the map holds only the current periods' alerts.
    pub(crate) fn claim_alert(&self, name: &str, now_ms: i64, ttl_ms: i64) -> bool {
        let mut alerts = self.alerts.lock();
        if alerts.get(name).is_some_and(|expires| *expires > now_ms) {
            return false;
        }
        alerts.retain(|_, expires| *expires > now_ms);
        alerts.insert(name.to_string(), now_ms + ttl_ms);
        true
    }
}
