//! Node-wide metrics: per-thread request/connection counters (same single-writer cells as the
//! route series), process metrics the lead feeds from the admin thread (reloads, LMDB size), and
//! the upstream target health slot refreshed before a scrape.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

pub(crate) const REQUESTS: usize = 0;
pub(crate) const CONN_OPENED: usize = 1;
pub(crate) const CONN_CLOSED: usize = 2;
pub(crate) const REQ_STARTED: usize = 3;
pub(crate) const REQ_FINISHED: usize = 4;
pub(crate) const CACHE_HITS: usize = 5;
pub(crate) const CACHE_MISSES: usize = 6;
/// One cache line per thread.
const STRIDE: usize = 8;

/// Per-thread node counters.
pub(crate) struct NodeCells {
    cells: Box<[AtomicU64]>,
}

impl NodeCells {
    pub(crate) fn new(shards: usize) -> NodeCells {
        NodeCells {
            cells: (0..shards * STRIDE).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, shard: usize, cell: usize, n: u64) {
        if let Some(c) = self.cells.get(shard * STRIDE + cell) {
            c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
        }
    }

    #[inline]
    pub(crate) fn set(&self, shard: usize, cell: usize, v: u64) {
        if let Some(c) = self.cells.get(shard * STRIDE + cell) {
            c.store(v, Relaxed);
        }
    }

    pub(crate) fn sum(&self, cell: usize) -> u64 {
        self.cells
            .iter()
            .skip(cell)
            .step_by(STRIDE)
            .fold(0u64, |a, c| a.wrapping_add(c.load(Relaxed)))
    }
}

/// Reload-duration histogram bounds, seconds.
pub(crate) const RELOAD_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// `gatehouse_*` process metrics, written from the admin/main thread (any thread: real atomic
/// read-modify-writes, they are rare).
#[derive(Default)]
pub struct ProcessMetrics {
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
    /// Non-cumulative buckets + the +Inf bucket.
    pub(crate) reload_buckets: [AtomicU64; RELOAD_BUCKETS.len() + 1],
    pub(crate) reload_sum_us: AtomicU64,
    pub(crate) lmdb_size: AtomicU64,
    pub(crate) lmdb_map_size: AtomicU64,
    pub(crate) resident: AtomicU64,
}

impl ProcessMetrics {
    /// One config load attempt finished (parse → LMDB → snapshot swap) after `took`.
    pub fn config_reload(&self, ok: bool, took: Duration) {
        if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        }
        .fetch_add(1, Relaxed);
        let s = took.as_secs_f64();
        let b = RELOAD_BUCKETS.partition_point(|&le| le < s);
        if let Some(c) = self.reload_buckets.get(b) {
            c.fetch_add(1, Relaxed);
        }
        self.reload_sum_us
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Current LMDB data file size (`gatehouse_lmdb_size_bytes`).
    pub fn set_lmdb_size(&self, bytes: u64) {
        self.lmdb_size.store(bytes, Relaxed);
    }

    /// `lmdb_map_size` (`kong_memory_lua_shared_dict_total_bytes` of `kong_db_cache`).
    pub fn set_lmdb_map_size(&self, bytes: u64) {
        self.lmdb_map_size.store(bytes, Relaxed);
    }

    /// Resident memory of the process (`kong_memory_workers_lua_vms_bytes`), set before a scrape.
    pub fn set_resident_bytes(&self, bytes: u64) {
        self.resident.store(bytes, Relaxed);
    }
}

/// Kong's `upstream_target_health` states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    HealthchecksOff,
    Healthy,
    Unhealthy,
    DnsError,
}

impl HealthState {
    pub(crate) const ALL: [HealthState; 4] = [
        HealthState::HealthchecksOff,
        HealthState::Healthy,
        HealthState::Unhealthy,
        HealthState::DnsError,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            HealthState::HealthchecksOff => "healthchecks_off",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::DnsError => "dns_error",
        }
    }
}

/// One `(upstream, target, address)` row; rendered as four series, 1 for the current state.
#[derive(Clone, Debug)]
pub struct TargetHealth {
    pub upstream: String,
    /// `host:port` of the target entity.
    pub target: String,
    /// `ip:port` resolved, or empty for `dns_error`.
    pub address: String,
    pub state: HealthState,
}

/// Slot for upstream health rows (replaced wholesale, like Kong's `reset()` per scrape).
#[derive(Default)]
pub(crate) struct HealthSlot {
    pub(crate) rows: Mutex<Option<Vec<TargetHealth>>>,
}
