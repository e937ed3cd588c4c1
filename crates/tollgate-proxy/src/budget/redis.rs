//! Counts in Redis, shared by every proxy configured with the same Redis: reserve, settle and
//! read are each one Lua script (one round trip, atomic across proxies); counters expire with
//! their windows. Every call is bounded by a timeout, so an unreachable Redis costs a request
//! at most that long, and the caller decides (per policy) whether to fail open or closed.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::OnceCell;

use super::store::{Counted, CounterRequest, CounterSettle, Reserved, StoreError};
use super::window::Span;

/// The prefix of every key Tollgate writes.
const PREFIX: &str = "tollgate:budget:";

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/reserve.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/settle.lua")));

/// A Redis holding the counters.
pub(crate) struct RedisStore {
    client: Client,
    connection: OnceCell<ConnectionManager>,
    timeout: Duration,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the address is shown.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("address", &info.addr().to_string())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://[:password@]host:port[/db]`, or `rediss://` for TLS); the
    /// connection is made on first use, so a proxy starts even while Redis is down. Keys are
    /// prefixed with `tollgate:budget:` and then `namespace`, which tests use to stay apart.
    pub(crate) fn new(url: &str, timeout: Duration, namespace: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
            timeout,
            prefix: format!("{PREFIX}{namespace}"),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
            .map_err(|e| StoreError::Failed(e.to_string()))
    }

    /// Runs `command` on the connection with a deadline on the whole call, connecting
    /// included.
    async fn call<T: redis::FromRedisValue>(
        &self,
        command: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let call = async {
            let mut connection = self.connection().await?;
            command(&mut connection)
                .await
                .map_err(|e| StoreError::Failed(e.to_string()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// Runs a script whose reply is a list of integers.
    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<Vec<i64>, StoreError> {
        self.call(async |connection| invocation.invoke_async(connection).await)
            .await
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) async fn reserve(
        &self,
        counters: &[CounterRequest<'_>],
        max_output: u64,
    ) -> Result<Reserved, StoreError> {
        let mut invocation = RESERVE.prepare_invoke();
        invocation.arg(max_output);
        for counter in counters {
            let flags = u8::from(counter.hard) | (u8::from(counter.clamp) << 1);
            invocation
                .key(self.key(counter.key))
                .arg(counter.limit)
                .arg(counter.fixed)
                .arg(counter.per_output)
                .arg(flags)
                .arg(counter.span.slot)
                .arg(counter.span.first_live)
                .arg(counter.span.ttl_ms);
        }
        let reply = self.run(invocation).await?;
        let malformed = || StoreError::Failed("the reserve script's reply is malformed".into());
        let [granted, output, refused, free_at, rest @ ..] = &reply[..] else {
            return Err(malformed());
        };
        let counted = counted_of(rest)
            .filter(|c| c.len() == counters.len())
            .ok_or_else(malformed)?;
        Ok(if *granted == 1 {
            Reserved::Granted {
                output: u64::try_from(*output).map_err(|_| malformed())?,
                counters: counted,
            }
        } else {
            Reserved::Refused {
                counter: usize::try_from(*refused - 1).map_err(|_| malformed())?,
                free_at_slot: (*free_at >= 0).then_some(*free_at),
                counters: counted,
            }
        })
    }

    pub(crate) async fn settle(
        &self,
        counters: &[CounterSettle<'_>],
    ) -> Result<Vec<Counted>, StoreError> {
        let mut invocation = SETTLE.prepare_invoke();
        for counter in counters {
            invocation
                .key(self.key(counter.key))
                .arg(counter.slot)
                .arg(counter.delta)
                .arg(counter.span.first_live);
        }
        let reply = self.run(invocation).await?;
        counted_of(&reply)
            .ok_or_else(|| StoreError::Failed("the settle script's reply is malformed".into()))
    }

    /// Reads counters: a settlement that changes nothing.
    pub(crate) async fn read(&self, counters: &[(&str, Span)]) -> Result<Vec<Counted>, StoreError> {
        let mut invocation = SETTLE.prepare_invoke();
        for (key, span) in counters {
            invocation
                .key(self.key(key))
                .arg(span.slot)
                .arg(0)
                .arg(span.first_live);
        }
        let reply = self.run(invocation).await?;
        counted_of(&reply)
            .ok_or_else(|| StoreError::Failed("the read script's reply is malformed".into()))
    }

    pub(crate) async fn claim_alert(&self, name: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(format!("{}alert:{name}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let set: Option<String> = self
            .call(async |connection| command.query_async(connection).await)
            .await?;
        Ok(set.is_some())
    }
}

/// Pairs of (used, oldest slot or -1) as [`Counted`]s.
fn counted_of(values: &[i64]) -> Option<Vec<Counted>> {
    if !values.len().is_multiple_of(2) {
        return None;
    }
    values
        .chunks_exact(2)
        .map(|pair| {
            Some(Counted {
                used: u64::try_from(pair[0]).ok()?,
                oldest_slot: (pair[1] >= 0).then_some(pair[1]),
            })
        })
        .collect()
}
