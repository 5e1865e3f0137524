//! Counters of the rate-limiting `local` policy (and the `redis` policy's connections), per
//! node, shared by all proxy threads and kept *outside* the per-snapshot chains (an `Arc<RateLimitStore>` handed to every
//! [`crate::compile`]) so a config reload does not reset them: the key starts with the plugin
//! id, which is stable across reloads.
//!
//! Kong reads the usage, decides, then increments from a timer, so a burst overshoots
//! (Kong#2629). Here the decision is made on the value returned by one `fetch_add`:
//! increment-then-check is atomic, so at most `limit` requests are admitted per window no
//! matter how many threads race. A request refused by one window gives its increment back on
//! the others (`fetch_sub`); during that instant a concurrent request may see one extra unit
//! and be refused — it can under-admit by a hair under contention, never over-admit.
//!
//! Layout: 64 shards, each a `RwLock<HashMap>` from a fixed-size key (no strings: the
//! identifier is a 128-bit value — an id, an IP, or a 128-bit hash of a header value) to an
//! `AtomicU64`. The hot path takes a shared read lock and does one atomic add; the write lock
//! is taken only to create the counter of a new (identifier, window), and sweeps of finished
//! windows are amortised into those inserts (plus [`RateLimitStore::sweep`] for a timer).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::rate_limiting::{period_start, PERIODS};
use super::rl_redis::Registry;

const SHARDS: usize = 64;

/// One counter: (plugin id, period index, window start in ms, identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub plugin: u128,
    pub period: u8,
    pub start: i64,
    pub ident: u128,
}

/// The key fields are ids and hashes already, so a multiply-fold hash is enough.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
}

type Map = HashMap<Key, AtomicU64, BuildHasherDefault<FoldHasher>>;

struct Shard {
    map: Map,
    /// Sweep finished windows when the map reaches this size.
    next_sweep: usize,
}

/// Per-node counters of the `local` policy. Create one per process and pass it to every
/// [`crate::compile`].
pub struct RateLimitStore {
    shards: Box<[RwLock<Shard>]>,
    /// Connections of the `redis` policy, per redis config (see [`super::rl_redis`]).
    pub(crate) redis: Registry,
}

impl Default for RateLimitStore {
    fn default() -> Self {
        RateLimitStore {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        map: Map::default(),
                        next_sweep: 1024,
                    })
                })
                .collect(),
            redis: Registry::default(),
        }
    }
}

impl RateLimitStore {
    pub fn new() -> Arc<RateLimitStore> {
        Arc::new(RateLimitStore::default())
    }

    fn shard(&self, k: &Key) -> &RwLock<Shard> {
        let h = (k.ident as u64) ^ ((k.ident >> 64) as u64) ^ (k.plugin as u64);
        let i = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS;
        &self.shards[i]
    }

    /// Adds one and returns the new value (`usage + 1`).
    pub(crate) fn incr(&self, k: Key, now_ms: i64) -> u64 {
        let shard = self.shard(&k);
        {
            let r = shard.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = r.map.get(&k) {
                return c.fetch_add(1, Ordering::AcqRel) + 1;
            }
        }
        let mut w = shard.write().unwrap_or_else(|e| e.into_inner());
        if w.map.len() >= w.next_sweep {
            sweep_map(&mut w.map, now_ms);
            w.next_sweep = (w.map.len() * 2).max(1024);
        }
        let c = w.map.entry(k).or_insert_with(|| AtomicU64::new(0));
        c.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Gives back one unit taken by [`RateLimitStore::incr`].
    pub(crate) fn decr(&self, k: Key) {
        let r = self.shard(&k).read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = r.map.get(&k) {
            // Never below zero, even if a sweep raced a refund.
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
        }
    }

    /// Current usage of a counter (0 when absent).
    pub fn usage(&self, plugin: u128, period: u8, start: i64, ident: u128) -> u64 {
        let k = Key {
            plugin,
            period,
            start,
            ident,
        };
        let r = self.shard(&k).read().unwrap_or_else(|e| e.into_inner());
        r.map.get(&k).map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Drops the counters of windows that have ended (call from a timer now and then; inserts
    /// also sweep their shard as it grows).
    pub fn sweep(&self, now_ms: i64) {
        for s in self.shards.iter() {
            let mut w = s.write().unwrap_or_else(|e| e.into_inner());
            sweep_map(&mut w.map, now_ms);
        }
    }

    /// Number of live counters.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn sweep_map(map: &mut Map, now_ms: i64) {
    let mut current = [0i64; 6];
    for (i, p) in PERIODS.iter().enumerate() {
        current[i] = period_start(*p, now_ms);
    }
    map.retain(|k, _| {
        current
            .get(k.period as usize)
            .is_some_and(|&start| k.start >= start)
    });
}
