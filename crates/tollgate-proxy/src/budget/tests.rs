//! The ledger against both stores: every scenario runs on the memory store and on the shared
//! Redis at 127.0.0.1:6379 (each test in its own key namespace), with an injected clock.

use super::*;
use jiff::tz::TimeZone;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, Ordering};
use tollgate_config::{GatewayConfig, ObjectRef, Subject};

/// The shared Redis every machine of the project runs.
const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// 2026-11-23T10:00:00Z.
const START: i64 = 1_795_428_000_000;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
}

struct Fixture {
    ledger: Arc<Ledger>,
    snapshot: Arc<Snapshot>,
    now: Arc<AtomicI64>,
    metrics: Metrics,
}

impl Fixture {
    fn new(kind: Kind, policies: Vec<BudgetPolicy>) -> Self {
        let metrics = Metrics::register(&mut Registry::default());
        let now = Arc::new(AtomicI64::new(START));
        let clock_now = now.clone();
        let store = match kind {
            Kind::Memory => Store::Memory(memory::MemoryStore::default()),
            Kind::Redis => Store::Redis(Box::new(
                redis::RedisStore::new(
                    REDIS_URL,
                    Duration::from_secs(2),
                    &format!("test:{:x}:", rand::random::<u64>()),
                )
                .unwrap(),
            )),
        };
        let ledger = Ledger::with_clock(
            store,
            metrics.clone(),
            Arc::new(move || clock_now.load(Ordering::SeqCst)),
        );
        let config = GatewayConfig {
            budgets: Budgets::new(policies),
            ..GatewayConfig::default()
        };
        Self {
            ledger: Arc::new(ledger),
            snapshot: Arc::new(Snapshot { version: 1, config }),
            now,
            metrics,
        }
    }

    fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    async fn reserve(&self, demand: Demand) -> Result<Verdict, ProxyError> {
        let all: Vec<usize> = (0..self.snapshot.config.budgets.policies().len()).collect();
        self.ledger.reserve(&self.snapshot, &all, demand).await
    }

    async fn report(&self) -> Vec<PolicyReport> {
        self.ledger
            .report(&self.snapshot.config.budgets)
            .await
            .unwrap()
    }

    fn outcome(&self, policy: &str, outcome: &'static str) -> u64 {
        self.metrics
            .budget_outcomes
            .get_or_create(&BudgetLabels {
                policy: format!("default/{policy}"),
                outcome,
            })
            .get()
    }

    fn alerts(&self, policy: &str, threshold: u16) -> u64 {
        self.metrics
            .budget_alerts
            .get_or_create(&AlertLabels {
                policy: format!("default/{policy}"),
                threshold,
            })
            .get()
    }
}

fn policy(name: &str, limits: &[(Window, Unit, u64)]) -> BudgetPolicy {
    BudgetPolicy {
        id: ObjectRef::new("default", name),
        subject: Subject::Global,
        limits: limits
            .iter()
            .map(|&(window, unit, amount)| Limit {
                window,
                unit,
                amount,
            })
            .collect(),
        enforcement: Enforcement::Hard,
        failure_mode: FailureMode::Closed,
        alert_thresholds: Vec::new(),
        clamp: false,
        default_max_output_tokens: 100,
        time_zone: TimeZone::UTC,
        tools: Vec::new(),
    }
}

/// 10 input and up to 10 output tokens at 1 nano-dollar each way.
fn demand() -> Demand {
    Demand {
        input_tokens: 10,
        max_output: Some(10),
        price: WorstPrice {
            input: 1,
            output: 1,
        },
    }
}

fn reservation(verdict: Verdict) -> Reservation {
    match verdict {
        Verdict::Reserved { reservation, .. } => reservation,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

fn refused(result: Result<Verdict, ProxyError>) -> (String, Option<u64>, String) {
    match result {
        Err(ProxyError::LimitReached {
            code,
            retry_after,
            message,
        }) => (code.to_string(), retry_after, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn used(report: &[PolicyReport], policy: usize, limit: usize) -> String {
    report[policy].limits[limit].used.clone()
}

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $name() { super::$name(super::Kind::Memory).await })*
        }
        mod redis_store {
            $(#[tokio::test] async fn $name() { super::$name(super::Kind::Redis).await })*
        }
    };
}

both_stores!(
    reserves_the_worst_case_and_settles_to_use,
    refuses_when_full_and_says_when_to_retry,
    concurrent_reservations_never_overspend,
    clamping_lowers_the_output_cap_to_fit,
    rolling_windows_forget_after_a_minute,
    calendar_windows_reset_at_their_end,
    alerts_fire_once_per_window,
    soft_limits_count_but_never_refuse,
    a_request_that_can_never_fit_gets_no_retry_after,
);

async fn reserves_the_worst_case_and_settles_to_use(kind: Kind) {
    let fixture = Fixture::new(
        kind,
        vec![policy(
            "p",
            &[
                (Window::Month, Unit::NanoUsd, 1000),
                (Window::Minute, Unit::Tokens, 1000),
                (Window::Minute, Unit::Requests, 10),
            ],
        )],
    );
    let verdict = fixture.reserve(demand()).await.unwrap();
    let Verdict::Reserved {
        reservation,
        output_cap,
        headers,
    } = verdict
    else {
        panic!("reserved expected");
    };
    assert_eq!(output_cap, None, "the caller's cap stands");
    assert_eq!(
        headers.requests.map(|t| (t.limit, t.remaining)),
        Some((10, 9))
    );
    assert_eq!(
        headers.tokens.map(|t| (t.limit, t.remaining)),
        Some((1000, 980))
    );
    let report = fixture.report().await;
    assert_eq!(
        [
            used(&report, 0, 0),
            used(&report, 0, 1),
            used(&report, 0, 2)
        ],
        ["0.00000002", "20", "1"]
    );
    fixture
        .ledger
        .settle(
            &reservation,
            Consumed {
                tokens: 13,
                nano_usd: 13,
            },
        )
        .await;
    let report = fixture.report().await;
    assert_eq!(
        [
            used(&report, 0, 0),
            used(&report, 0, 1),
            used(&report, 0, 2)
        ],
        ["0.000000013", "13", "1"]
    );
}

async fn refuses_when_full_and_says_when_to_retry(kind: Kind) {
    let fixture = Fixture::new(
        kind,
        vec![policy("p", &[(Window::Minute, Unit::Requests, 2)])],
    );
    reservation(fixture.reserve(demand()).await.unwrap());
    fixture.advance(20_000);
    reservation(fixture.reserve(demand()).await.unwrap());
    let (code, retry_after, message) = refused(fixture.reserve(demand()).await);
    assert_eq!(code, "rate_limit_exceeded");
    // The first request rolls out of the minute 40 s from now.
    assert_eq!(retry_after, Some(40));
    assert!(message.contains("2 requests per minute"), "{message}");
    assert!(message.contains("default/p"), "{message}");
    assert_eq!(fixture.outcome("p", "refused"), 1);
    fixture.advance(40_000);
    reservation(fixture.reserve(demand()).await.unwrap());
}

async fn concurrent_reservations_never_overspend(kind: Kind) {
    let fixture = Arc::new(Fixture::new(
        kind,
        vec![policy("p", &[(Window::Month, Unit::NanoUsd, 1000)])],
    ));
    // Each request reserves 20 nano-dollars: exactly 50 fit.
    let tasks: Vec<_> = (0..120)
        .map(|_| {
            let fixture = fixture.clone();
            tokio::spawn(async move { fixture.reserve(demand()).await })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        if let Ok(verdict) = task.await.unwrap() {
            granted.push(reservation(verdict));
        }
    }
    assert_eq!(granted.len(), 50);
    assert_eq!(used(&fixture.report().await, 0, 0), "0.000001");
    // Settling at half the worst case frees room for exactly 25 more.
    for reservation in granted {
        fixture
            .ledger
            .settle(
                &reservation,
                Consumed {
                    tokens: 10,
                    nano_usd: 10,
                },
            )
            .await;
    }
    let mut more = 0;
    while fixture.reserve(demand()).await.is_ok() {
        more += 1;
    }
    assert_eq!(more, 25);
}

async fn clamping_lowers_the_output_cap_to_fit(kind: Kind) {
    let mut clamped = policy("p", &[(Window::Day, Unit::Tokens, 100)]);
    clamped.clamp = true;
    let fixture = Fixture::new(kind, vec![clamped]);
    let big = Demand {
        max_output: Some(1000),
        ..demand()
    };
    // 10 input tokens leave room for 90 output tokens.
    let Verdict::Reserved { output_cap, .. } = fixture.reserve(big).await.unwrap() else {
        panic!("reserved expected");
    };
    assert_eq!(output_cap, Some(90));
    assert_eq!(fixture.outcome("p", "clamped"), 1);
    // Nothing is left: even one output token does not fit.
    let (code, _, _) = refused(fixture.reserve(big).await);
    assert_eq!(code, "budget_exceeded");
    // Without a cap from the caller, the policy's default (100) is reserved and sent.
    let fresh = {
        let mut p = policy("q", &[(Window::Day, Unit::Tokens, 1000)]);
        p.clamp = true;
        Fixture::new(kind, vec![p])
    };
    let Verdict::Reserved { output_cap, .. } = fresh
        .reserve(Demand {
            max_output: None,
            ..demand()
        })
        .await
        .unwrap()
    else {
        panic!("reserved expected");
    };
    assert_eq!(output_cap, Some(100));
}

async fn rolling_windows_forget_after_a_minute(kind: Kind) {
    let fixture = Fixture::new(
        kind,
        vec![policy("p", &[(Window::Minute, Unit::Tokens, 40)])],
    );
    reservation(fixture.reserve(demand()).await.unwrap());
    reservation(fixture.reserve(demand()).await.unwrap());
    let (_, retry_after, _) = refused(fixture.reserve(demand()).await);
    assert_eq!(retry_after, Some(60));
    fixture.advance(59_999);
    assert!(
        fixture.reserve(demand()).await.is_err(),
        "still within the minute"
    );
    fixture.advance(1);
    reservation(fixture.reserve(demand()).await.unwrap());
    assert_eq!(used(&fixture.report().await, 0, 0), "20");
}

async fn calendar_windows_reset_at_their_end(kind: Kind) {
    let fixture = Fixture::new(
        kind,
        vec![policy("p", &[(Window::Month, Unit::Requests, 1)])],
    );
    // One millisecond before December.
    fixture.now.store(1_796_083_199_999, Ordering::SeqCst);
    reservation(fixture.reserve(demand()).await.unwrap());
    let (code, retry_after, _) = refused(fixture.reserve(demand()).await);
    assert_eq!((code.as_str(), retry_after), ("budget_exceeded", Some(1)));
    fixture.advance(1);
    reservation(fixture.reserve(demand()).await.unwrap());
    let report = fixture.report().await;
    assert_eq!(report[0].limits[0].resets_at, "2027-01-01T00:00:00Z");
}

async fn alerts_fire_once_per_window(kind: Kind) {
    let mut alerting = policy("p", &[(Window::Minute, Unit::Requests, 10)]);
    alerting.alert_thresholds = vec![50, 80, 100];
    let fixture = Fixture::new(kind, vec![alerting]);
    for _ in 0..4 {
        reservation(fixture.reserve(demand()).await.unwrap());
    }
    assert_eq!(fixture.alerts("p", 50), 0);
    reservation(fixture.reserve(demand()).await.unwrap());
    assert_eq!(fixture.alerts("p", 50), 1);
    for _ in 0..5 {
        reservation(fixture.reserve(demand()).await.unwrap());
    }
    assert!(fixture.reserve(demand()).await.is_err());
    assert!(fixture.reserve(demand()).await.is_err());
    assert_eq!(
        (
            fixture.alerts("p", 50),
            fixture.alerts("p", 80),
            fixture.alerts("p", 100)
        ),
        (1, 1, 1),
        "each threshold fires once"
    );
    fixture.advance(61_000);
    for _ in 0..5 {
        reservation(fixture.reserve(demand()).await.unwrap());
    }
    assert_eq!(fixture.alerts("p", 50), 2, "and again in the next window");
}

async fn soft_limits_count_but_never_refuse(kind: Kind) {
    let mut soft = policy("p", &[(Window::Minute, Unit::Requests, 1)]);
    soft.enforcement = Enforcement::Soft;
    let fixture = Fixture::new(kind, vec![soft]);
    for _ in 0..3 {
        reservation(fixture.reserve(demand()).await.unwrap());
    }
    assert_eq!(used(&fixture.report().await, 0, 0), "3");
    assert_eq!(fixture.outcome("p", "over_limit"), 2);
}

async fn a_request_that_can_never_fit_gets_no_retry_after(kind: Kind) {
    let fixture = Fixture::new(
        kind,
        vec![policy("p", &[(Window::Minute, Unit::Tokens, 15)])],
    );
    let (code, retry_after, message) = refused(fixture.reserve(demand()).await);
    assert_eq!((code.as_str(), retry_after), ("rate_limit_exceeded", None));
    assert!(message.contains("more than the whole limit"), "{message}");
}

#[tokio::test]
async fn an_unreachable_store_fails_open_or_closed_as_each_policy_says_and_quickly() {
    // Nothing listens on port 1.
    let store = |_| {
        Store::Redis(Box::new(
            redis::RedisStore::new("redis://127.0.0.1:1", Duration::from_millis(200), "x").unwrap(),
        ))
    };
    let metrics = Metrics::register(&mut Registry::default());
    let ledger = Ledger::with_clock(store(()), metrics.clone(), Arc::new(|| START));
    let mut open = policy("open", &[(Window::Minute, Unit::Requests, 10)]);
    open.failure_mode = FailureMode::Open;
    let closed = policy("closed", &[(Window::Minute, Unit::Requests, 10)]);
    let snapshot = |policies| {
        Arc::new(Snapshot {
            version: 1,
            config: GatewayConfig {
                budgets: Budgets::new(policies),
                ..GatewayConfig::default()
            },
        })
    };
    let started = tokio::time::Instant::now();
    let verdict = ledger
        .reserve(&snapshot(vec![open.clone()]), &[0], demand())
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Unmetered), "{verdict:?}");
    let error = ledger
        .reserve(&snapshot(vec![open, closed]), &[0, 1], demand())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "budget_store_unavailable");
    assert!(error.to_string().contains("default/closed"));
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");
    assert_eq!(
        metrics
            .budget_store_errors
            .get_or_create(&StoreLabels {
                operation: "reserve"
            })
            .get(),
        2
    );
}
