//! Picks the backend for an attempt: the lowest priority with a usable backend not yet tried,
//! then the rule's load balancer among that priority's healthy backends. An ejected backend
//! whose time is up gets one probe request first (half-open). When every backend is ejected,
//! the first attempt still goes somewhere (panic mode) rather than failing at once.

use rand::Rng;
use tollgate_config::{LoadBalancer, Rule};

use crate::health::{Availability, RuleRuntime};

/// The backend chosen for an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    /// Its index in the rule's backends.
    pub(crate) index: usize,
    /// Whether this attempt probes an ejected backend.
    pub(crate) probe: bool,
}

/// What the load balancers compare about one backend.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub(crate) index: usize,
    pub(crate) weight: u32,
    pub(crate) outstanding: u32,
    pub(crate) latency_cost: f64,
    pub(crate) price: f64,
}

/// Chooses the backend for the next attempt, skipping those in `tried`. `price` gives a
/// backend's price (USD per million input plus output tokens), used by `CostAware`.
pub(crate) fn choose(
    rule: &Rule,
    runtime: &RuleRuntime,
    tried: &[usize],
    price: impl Fn(usize) -> f64,
    rng: &mut impl Rng,
) -> Option<Choice> {
    let usable = |i: &usize| rule.backends[*i].weight > 0 && !tried.contains(i);
    let mut priorities: Vec<u32> = rule.backends.iter().map(|b| b.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    // Only what the rule's balancer compares is worked out (the rest stays zero).
    let balancer = rule.policy.load_balancer;
    let candidate = |index: usize| {
        let state = &runtime.backends[index];
        Candidate {
            index,
            weight: rule.backends[index].weight,
            outstanding: state.outstanding(),
            latency_cost: match balancer {
                LoadBalancer::LatencyAware => state.latency_cost(),
                _ => 0.0,
            },
            price: match balancer {
                LoadBalancer::CostAware => price(index),
                _ => 0.0,
            },
        }
    };
    for priority in &priorities {
        let group: Vec<usize> = (0..rule.backends.len())
            .filter(|i| rule.backends[*i].priority == *priority)
            .filter(usable)
            .collect();
        if let Some(&index) = group.iter().find(|i| {
            runtime.backends[**i].availability() == Availability::Probe
                && runtime.backends[**i].claim_probe()
        }) {
            return Some(Choice { index, probe: true });
        }
        let healthy: Vec<Candidate> = group
            .iter()
            .filter(|i| runtime.backends[**i].availability() == Availability::Healthy)
            .map(|i| candidate(*i))
            .collect();
        if !healthy.is_empty() {
            return Some(Choice {
                index: pick(balancer, &healthy, rng),
                probe: false,
            });
        }
    }
    if !tried.is_empty() {
        return None;
    }
    // Panic mode: everything is ejected; try the lowest priority anyway.
    let lowest: Vec<Candidate> = (0..rule.backends.len())
        .filter(|i| Some(&rule.backends[*i].priority) == priorities.first())
        .filter(usable)
        .map(candidate)
        .collect();
    (!lowest.is_empty()).then(|| Choice {
        index: pick(balancer, &lowest, rng),
        probe: false,
    })
}

/// Picks one of `candidates` (never empty) with a load balancer; returns its backend index.
pub(crate) fn pick(balancer: LoadBalancer, candidates: &[Candidate], rng: &mut impl Rng) -> usize {
    match balancer {
        LoadBalancer::WeightedRandom => weighted(candidates, rng).index,
        LoadBalancer::LeastRequest => {
            let least = candidates
                .iter()
                .map(|c| c.outstanding)
                .min()
                .unwrap_or_default();
            let ties: Vec<Candidate> = candidates
                .iter()
                .copied()
                .filter(|c| c.outstanding == least)
                .collect();
            weighted(&ties, rng).index
        }
        LoadBalancer::LatencyAware => {
            let first = weighted(candidates, rng);
            let others: Vec<Candidate> = candidates
                .iter()
                .copied()
                .filter(|c| c.index != first.index)
                .collect();
            if others.is_empty() {
                return first.index;
            }
            let second = weighted(&others, rng);
            if second.latency_cost < first.latency_cost {
                second.index
            } else {
                first.index
            }
        }
        LoadBalancer::CostAware => {
            let cheapest = candidates
                .iter()
                .map(|c| c.price)
                .fold(f64::INFINITY, f64::min);
            let ties: Vec<Candidate> = candidates
                .iter()
                .copied()
                .filter(|c| c.price <= cheapest)
                .collect();
            weighted(&ties, rng).index
        }
    }
}

/// A candidate drawn in proportion to weight.
fn weighted(candidates: &[Candidate], rng: &mut impl Rng) -> Candidate {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    let mut point = rng.random_range(0..total.max(1));
    for candidate in candidates {
        if point < u64::from(candidate.weight) {
            return *candidate;
        }
        point -= u64::from(candidate.weight);
    }
    candidates[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthRegistry;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use std::sync::Arc;
    use std::time::Duration;
    use tollgate_config::{
        Backend, GatewayConfig, ObjectRef, OutlierDetection, Provider, ProviderId, ProviderKind,
        RouteTable, RulePolicy, Snapshot, Timeouts,
    };

    /// A rule over one provider per `(weight, priority)`, and its fresh runtime state.
    fn rule(backends: &[(u32, u32)], balancer: LoadBalancer) -> (Rule, RuleRuntime) {
        let providers = (0..backends.len())
            .map(|i| Provider {
                name: ObjectRef::new("default", format!("p{i}")),
                kind: ProviderKind::OpenAI,
                endpoint: "http://127.0.0.1:1/v1".into(),
                api_key: None,
                models: Default::default(),
                timeouts: Timeouts::default(),
                api_version: None,
                account: None,
            })
            .collect();
        let rule = Rule {
            access: Vec::new(),
            route: ObjectRef::new("default", "chat"),
            name: "0".into(),
            hostnames: Vec::new(),
            matches: vec![tollgate_config::Match::model(
                tollgate_config::ModelMatch::Exact("m".into()),
            )],
            backends: backends
                .iter()
                .enumerate()
                .map(|(i, (weight, priority))| Backend {
                    provider: ProviderId(i),
                    model: None,
                    weight: *weight,
                    priority: *priority,
                })
                .collect(),
            policy: RulePolicy {
                load_balancer: balancer,
                ..RulePolicy::default()
            },
        };
        let config = GatewayConfig {
            providers,
            routes: RouteTable::new(vec![rule.clone()]),
            ..GatewayConfig::default()
        };
        let snapshot = Arc::new(Snapshot { version: 1, config });
        let mut runtimes = HealthRegistry::new(Default::default()).runtime_for(&[&snapshot]);
        let runtime = Arc::into_inner(runtimes.remove(0)).unwrap().rules.remove(0);
        (rule, runtime)
    }

    fn counts(rule: &Rule, runtime: &RuleRuntime, draws: usize) -> Vec<usize> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = vec![0; rule.backends.len()];
        for _ in 0..draws {
            counts[choose(rule, runtime, &[], |_| 0.0, &mut rng).unwrap().index] += 1;
        }
        counts
    }

    fn eject(runtime: &RuleRuntime, index: usize) {
        let policy = OutlierDetection {
            consecutive_failures: 1,
            ejection_time: Duration::from_secs(60),
        };
        assert!(runtime.backends[index].on_failure(&policy, false, "test"));
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_random_follows_weights_and_skips_zero() {
        let (rule, runtime) = rule(&[(80, 0), (20, 0), (0, 0)], LoadBalancer::WeightedRandom);
        let counts = counts(&rule, &runtime, 10_000);
        assert_eq!(counts[2], 0);
        assert!((7_800..=8_200).contains(&counts[0]), "{counts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn lower_priorities_serve_only_when_higher_ones_cannot() {
        let (rule, runtime) = rule(&[(1, 0), (1, 0), (1, 1)], LoadBalancer::WeightedRandom);
        assert_eq!(counts(&rule, &runtime, 1_000)[2], 0);
        let mut rng = SmallRng::seed_from_u64(1);
        // A failed attempt moves to the other backend of the same priority, then down.
        let next = choose(&rule, &runtime, &[0], |_| 0.0, &mut rng).unwrap();
        assert_eq!(next.index, 1);
        assert_eq!(
            choose(&rule, &runtime, &[0, 1], |_| 0.0, &mut rng)
                .unwrap()
                .index,
            2
        );
        assert_eq!(choose(&rule, &runtime, &[0, 1, 2], |_| 0.0, &mut rng), None);
        // Ejected backends are skipped.
        eject(&runtime, 0);
        eject(&runtime, 1);
        assert_eq!(counts(&rule, &runtime, 100)[2], 100);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ejected_backend_gets_one_probe_when_its_time_is_up() {
        let (rule, runtime) = rule(&[(1, 0), (1, 0)], LoadBalancer::WeightedRandom);
        eject(&runtime, 0);
        assert_eq!(counts(&rule, &runtime, 100), [0, 100]);
        tokio::time::advance(Duration::from_secs(60)).await;
        let mut rng = SmallRng::seed_from_u64(3);
        assert_eq!(
            choose(&rule, &runtime, &[], |_| 0.0, &mut rng),
            Some(Choice {
                index: 0,
                probe: true
            })
        );
        assert_eq!(
            counts(&rule, &runtime, 100),
            [0, 100],
            "one probe at a time"
        );
        runtime.backends[0].on_first_byte(Duration::from_millis(5));
        assert!(counts(&rule, &runtime, 100)[0] > 20);
    }

    #[tokio::test(start_paused = true)]
    async fn when_everything_is_ejected_the_first_attempt_still_goes_out() {
        let (rule, runtime) = rule(&[(1, 0), (1, 1)], LoadBalancer::WeightedRandom);
        eject(&runtime, 0);
        eject(&runtime, 1);
        let mut rng = SmallRng::seed_from_u64(5);
        assert_eq!(
            choose(&rule, &runtime, &[], |_| 0.0, &mut rng),
            Some(Choice {
                index: 0,
                probe: false
            })
        );
        assert_eq!(
            choose(&rule, &runtime, &[0], |_| 0.0, &mut rng),
            None,
            "no retry into ejected backends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn least_request_prefers_the_idle_backend() {
        let (rule, runtime) = rule(&[(1, 0), (1, 0)], LoadBalancer::LeastRequest);
        let _busy = runtime.backends[0].start();
        assert_eq!(counts(&rule, &runtime, 100), [0, 100]);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_aware_prefers_the_faster_backend_and_retries_the_slower_later() {
        let (three, runtime) = rule(&[(1, 0), (1, 0), (1, 0)], LoadBalancer::LatencyAware);
        runtime.backends[0].on_first_byte(Duration::from_millis(500));
        runtime.backends[1].on_first_byte(Duration::from_millis(100));
        runtime.backends[2].on_first_byte(Duration::from_millis(100));
        let counts3 = counts(&three, &runtime, 3_000);
        // Of two distinct draws out of three, the slow one always loses.
        assert_eq!(counts3[0], 0, "{counts3:?}");

        let (rule, runtime) = rule(&[(1, 0), (1, 0)], LoadBalancer::LatencyAware);
        runtime.backends[0].on_first_byte(Duration::from_millis(500));
        runtime.backends[1].on_first_byte(Duration::from_millis(100));
        tokio::time::advance(Duration::from_secs(1)).await;
        runtime.backends[1].on_first_byte(Duration::from_millis(100));
        assert_eq!(counts(&rule, &runtime, 100), [0, 100]);
        // The fast one keeps getting fresh samples; the slow one's old estimate fades until
        // it is tried again, which is how a recovered backend wins its traffic back.
        tokio::time::advance(Duration::from_secs(5)).await;
        runtime.backends[1].on_first_byte(Duration::from_millis(100));
        assert_eq!(counts(&rule, &runtime, 100), [100, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn cost_aware_picks_the_cheapest() {
        let (rule, runtime) = rule(&[(1, 0), (1, 0), (1, 0)], LoadBalancer::CostAware);
        let mut rng = SmallRng::seed_from_u64(9);
        let prices = [3.0, 0.5, 1.0];
        for _ in 0..50 {
            assert_eq!(
                choose(&rule, &runtime, &[], |i| prices[i], &mut rng)
                    .unwrap()
                    .index,
                1
            );
        }
        assert_eq!(
            choose(&rule, &runtime, &[1], |i| prices[i], &mut rng)
                .unwrap()
                .index,
            2
        );
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn picks_a_usable_backend_of_the_best_priority_or_none(
                backends in proptest::collection::vec((0..3u32, 0..3u32, any::<bool>()), 1..6),
                tried_mask in any::<u8>(),
                seed in any::<u64>(),
            ) {
                let runtime_flavour = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
                runtime_flavour.block_on(async {
                    let spec: Vec<(u32, u32)> = backends.iter().map(|(w, p, _)| (*w, *p)).collect();
                    let (rule, runtime) = rule(&spec, LoadBalancer::WeightedRandom);
                    for (i, (_, _, ejected)) in backends.iter().enumerate() {
                        if *ejected {
                            eject(&runtime, i);
                        }
                    }
                    let tried: Vec<usize> = (0..backends.len()).filter(|i| tried_mask & (1 << i) != 0).collect();
                    let usable = |i: usize| backends[i].0 > 0 && !tried.contains(&i);
                    let healthy = |i: usize| usable(i) && !backends[i].2;
                    let best = (0..backends.len()).filter(|i| healthy(*i)).map(|i| backends[i].1).min();
                    let mut rng = SmallRng::seed_from_u64(seed);
                    match choose(&rule, &runtime, &tried, |_| 0.0, &mut rng) {
                        Some(choice) => {
                            prop_assert!(usable(choice.index), "{choice:?}");
                            prop_assert!(!choice.probe);
                            match best {
                                Some(priority) => prop_assert!(healthy(choice.index) && backends[choice.index].1 == priority),
                                // Panic mode: nothing healthy, first attempt, lowest priority.
                                None => prop_assert!(tried.is_empty() && backends[choice.index].1 == backends.iter().map(|b| b.1).min().unwrap()),
                            }
                        }
                        None => prop_assert!(best.is_none() && (!tried.is_empty() || !(0..backends.len()).any(|i| usable(i) && backends[i].1 == backends.iter().map(|b| b.1).min().unwrap()))),
                    }
                    Ok(())
                })?;
            }
        }
    }
}
