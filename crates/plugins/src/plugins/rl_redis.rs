//! Redis counters of the rate-limiting `redis` policy (Kong's `policies/init.lua`), shared by
//! every node that points at the same redis.
//!
//! Why it looks like this:
//!
//! * Connections live in a [`Registry`] inside the [`super::rl_store::RateLimitStore`], keyed by
//!   the redis settings, not in the per-snapshot chains: a config reload reuses them.
//! * The proxy runs one `current_thread` runtime per core and those may come and go (tests
//!   start and drop runtimes freely), so the connections' driver tasks and the `sync_rate`
//!   flushers run on one dedicated I/O thread with its own runtime. Request tasks on any
//!   runtime talk to it through the (multiplexed, auto-reconnecting) `ConnectionManager`.
//! * Synchronous mode (`sync_rate = -1`): one script call per request increments every window's
//!   key, sets its TTL when new and, when any window is over its limit, gives the increments
//!   back — increment-then-decide in one atomic round trip, so nodes never over-admit and a
//!   refused request consumes no budget (the same rule as the `local` policy).
//! * `sync_rate > 0`: counted in memory (usage = last value read from redis + in-flight delta +
//!   local delta) and flushed every `sync_rate` seconds by one script call that adds the deltas
//!   and returns the totals, so the other nodes' traffic shows up after one period.
//!
//! Not yet: TLS (`ssl: true` is accepted, warned about, and every call fails, so
//! `fault_tolerant` decides), cluster/sentinel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo, RedisError, Script};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OnceCell};

use super::rate_limiting::RedisConfig;

/// Increments KEYS[i] (TTL ARGV[i] seconds when new); when some count minus one reaches its
/// limit ARGV[n+i], every increment is given back. Returns the incremented counts.
const COUNT: &str = r"
local n = #KEYS
local counts = {}
local refused = false
for i = 1, n do
  local c = redis.call('INCR', KEYS[i])
  if c == 1 then redis.call('EXPIRE', KEYS[i], ARGV[i]) end
  counts[i] = c
  if c - 1 >= tonumber(ARGV[n + i]) then refused = true end
end
if refused then
  for i = 1, n do redis.call('DECR', KEYS[i]) end
end
return counts
";

/// Adds ARGV[i] to KEYS[i] (TTL ARGV[n+i] seconds when new) and returns the totals.
const FLUSH: &str = r"
local n = #KEYS
local totals = {}
for i = 1, n do
  local v = redis.call('INCRBY', KEYS[i], ARGV[i])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[n + i]) end
  totals[i] = v
end
return totals
";

/// Keys per flush call (bounds one script's run time on the redis server).
const FLUSH_CHUNK: usize = 512;

/// What identifies one redis connection (Kong's `db_key` plus the credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    host: String,
    port: u16,
    database: i64,
    username: Option<String>,
    password: Option<String>,
    timeout_ms: u64,
    ssl: bool,
}

impl Target {
    fn of(c: &RedisConfig) -> Target {
        Target {
            host: c.host.clone().unwrap_or_default(),
            port: u16::try_from(c.port).unwrap_or(6379),
            database: c.database,
            username: c.username.clone().filter(|s| !s.is_empty()),
            password: c.password.clone().filter(|s| !s.is_empty()),
            timeout_ms: u64::try_from(c.timeout).unwrap_or(2000),
            ssl: c.ssl,
        }
    }
}

/// The I/O thread: its runtime handle; dropping `_stop` ends the thread.
struct Io {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

fn start_io() -> Option<Io> {
    let (htx, hrx) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("gatehouse-redis".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("rate-limiting: cannot start the redis I/O runtime: {e}");
                    return;
                }
            };
            let _ = htx.send(rt.handle().clone());
            let _ = rt.block_on(stopped);
        });
    if let Err(e) = spawned {
        tracing::error!("rate-limiting: cannot start the redis I/O thread: {e}");
        return None;
    }
    let handle = hrx.recv().ok()?;
    Some(Io {
        handle,
        _stop: stop,
    })
}

#[derive(Default)]
struct RegistryInner {
    io: Option<Io>,
    backends: HashMap<Target, Arc<Backend>>,
    synced: HashMap<(Target, u64), Arc<SyncCounters>>,
}

/// Redis connections and `sync_rate` counters, one per distinct redis config (and sync rate),
/// kept across snapshots.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

/// How one rate-limiting instance reaches redis.
pub(crate) enum Redis {
    /// `sync_rate = -1`: one round trip per request.
    Direct(Arc<Backend>),
    /// `sync_rate > 0`: local deltas, flushed in the background.
    Synced(Arc<SyncCounters>),
}

impl Registry {
    /// The connection (and for `sync_rate > 0` the flushed counters) for a plugin config.
    /// `None` when the I/O thread cannot start (then the plugin counts locally).
    pub(crate) fn get(&self, c: &RedisConfig, sync_rate: f64) -> Option<Redis> {
        let target = Target::of(c);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.io.is_none() {
            g.io = start_io();
        }
        let handle = g.io.as_ref()?.handle.clone();
        let backend = g
            .backends
            .entry(target.clone())
            .or_insert_with(|| {
                if target.ssl {
                    tracing::warn!(
                        host = %target.host,
                        "rate-limiting: TLS to redis is not supported yet; redis calls fail and \
                         `fault_tolerant` decides"
                    );
                }
                Arc::new(Backend::new(target.clone(), handle.clone()))
            })
            .clone();
        if sync_rate <= 0.0 {
            return Some(Redis::Direct(backend));
        }
        let every_ms = (sync_rate * 1000.0).max(20.0) as u64;
        let counters = g
            .synced
            .entry((target, every_ms))
            .or_insert_with(|| {
                let s = Arc::new(SyncCounters {
                    backend,
                    map: Mutex::new(HashMap::new()),
                });
                handle.spawn(flush_loop(
                    Arc::downgrade(&s),
                    Duration::from_millis(every_ms),
                ));
                s
            })
            .clone();
        Some(Redis::Synced(counters))
    }
}

/// One redis server/database: a lazily opened, shared `ConnectionManager`.
pub(crate) struct Backend {
    target: Target,
    io: Handle,
    conn: OnceCell<ConnectionManager>,
    count: Script,
    flush: Script,
}

fn err(msg: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::IoError, msg))
}

impl Backend {
    fn new(target: Target, io: Handle) -> Backend {
        Backend {
            target,
            io,
            conn: OnceCell::new(),
            count: Script::new(COUNT),
            flush: Script::new(FLUSH),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.target.timeout_ms.max(1))
    }

    async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        if self.target.ssl {
            return Err(err("TLS to redis is not supported yet"));
        }
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let c = self
            .conn
            .get_or_try_init(|| async {
                let t = &self.target;
                let info = ConnectionInfo {
                    addr: ConnectionAddr::Tcp(t.host.clone(), t.port),
                    redis: RedisConnectionInfo {
                        db: t.database,
                        username: t.username.clone(),
                        password: t.password.clone(),
                        ..RedisConnectionInfo::default()
                    },
                };
                let client = redis::Client::open(info)?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout())
                    .set_response_timeout(self.timeout())
                    .set_number_of_retries(1);
                // Opened on the I/O thread so its driver task outlives any proxy runtime.
                let opening = self
                    .io
                    .spawn(ConnectionManager::new_with_config(client, cfg));
                match tokio::time::timeout(self.timeout(), opening).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err(err("redis connection task failed")),
                    Err(_) => Err(err("timeout connecting to redis")),
                }
            })
            .await?;
        Ok(c.clone())
    }

    /// Runs a script with this backend's timeout.
    async fn run(
        &self,
        script: &Script,
        keys: &[Vec<u8>],
        args: &[String],
    ) -> Result<Vec<i64>, RedisError> {
        let mut conn = self.conn().await?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k.as_slice());
        }
        for a in args {
            inv.arg(a.as_str());
        }
        match tokio::time::timeout(self.timeout(), inv.invoke_async(&mut conn)).await {
            Ok(r) => r,
            Err(_) => Err(err("timeout waiting for redis")),
        }
    }
}

/// One window of one request: its redis key, TTL (s) and limit.
pub(crate) struct Window {
    pub key: Vec<u8>,
    pub ttl: i64,
    pub limit: f64,
    /// End of the window (ms), to forget local counters of finished windows.
    pub ends_ms: i64,
}

fn refused(counts: &[i64], windows: &[Window]) -> bool {
    counts
        .iter()
        .zip(windows)
        .any(|(&c, w)| (c - 1) as f64 >= w.limit)
}

impl Redis {
    /// Counts one request in every window and returns the counts after the increment (same
    /// order as `windows`); when refused, the increments have been given back already.
    pub(crate) async fn count(&self, windows: &[Window]) -> Result<Vec<i64>, RedisError> {
        match self {
            Redis::Direct(b) => {
                let keys: Vec<Vec<u8>> = windows.iter().map(|w| w.key.clone()).collect();
                let args: Vec<String> = windows
                    .iter()
                    .map(|w| w.ttl.to_string())
                    .chain(windows.iter().map(|w| w.limit.to_string()))
                    .collect();
                let counts = b.run(&b.count, &keys, &args).await?;
                if counts.len() != windows.len() {
                    return Err(err("unexpected reply from the rate-limiting script"));
                }
                Ok(counts)
            }
            Redis::Synced(s) => Ok(s.count(windows)),
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    /// Total read back from redis by the last flush.
    synced: i64,
    /// Sent by the flush under way.
    inflight: i64,
    /// Counted here since.
    delta: i64,
    ttl: i64,
    ends_ms: i64,
}

/// The `sync_rate > 0` counters of one (redis, sync rate).
pub(crate) struct SyncCounters {
    backend: Arc<Backend>,
    map: Mutex<HashMap<Vec<u8>, Counter>>,
}

impl SyncCounters {
    fn count(&self, windows: &[Window]) -> Vec<i64> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = Vec::with_capacity(windows.len());
        for w in windows {
            let c = m.entry(w.key.clone()).or_insert_with(|| Counter {
                ttl: w.ttl,
                ends_ms: w.ends_ms,
                ..Counter::default()
            });
            c.delta += 1;
            counts.push(c.synced + c.inflight + c.delta);
        }
        if refused(&counts, windows) {
            for w in windows {
                if let Some(c) = m.get_mut(&w.key) {
                    c.delta -= 1;
                }
            }
        }
        counts
    }

    /// Sends the local deltas and reads back the totals (also of keys without new local
    /// traffic, so the other nodes' usage shows up here).
    async fn flush(&self) {
        let now = crate::ctx::now_ms();
        let batch: Vec<(Vec<u8>, i64, i64)> = {
            let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|_, c| c.ends_ms > now || c.delta != 0);
            m.iter_mut()
                .map(|(k, c)| {
                    c.inflight = c.delta;
                    c.delta = 0;
                    (k.clone(), c.inflight, c.ttl)
                })
                .collect()
        };
        for chunk in batch.chunks(FLUSH_CHUNK) {
            let keys: Vec<Vec<u8>> = chunk.iter().map(|(k, _, _)| k.clone()).collect();
            let args: Vec<String> = chunk
                .iter()
                .map(|(_, d, _)| d.to_string())
                .chain(chunk.iter().map(|(_, _, t)| t.to_string()))
                .collect();
            let result = self.backend.run(&self.backend.flush, &keys, &args).await;
            let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(totals) if totals.len() == chunk.len() => {
                    for ((k, _, _), total) in chunk.iter().zip(totals) {
                        if let Some(c) = m.get_mut(k) {
                            c.synced = total;
                            c.inflight = 0;
                        }
                    }
                }
                other => {
                    if let Err(e) = other {
                        tracing::warn!("rate-limiting: syncing counters to redis failed: {e}");
                    }
                    // Keep the deltas for the next attempt.
                    for (k, _, _) in chunk {
                        if let Some(c) = m.get_mut(k) {
                            c.delta += c.inflight;
                            c.inflight = 0;
                        }
                    }
                }
            }
        }
    }
}

async fn flush_loop(counters: Weak<SyncCounters>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(c) = counters.upgrade() else {
            return;
        };
        c.flush().await;
    }
}
