//! Per-thread series storage and the per-request recording path.
//!
//! One [`Block`] holds every cell of one `(service, route, workspace)` for all proxy threads:
//! `shards × STRIDE` relaxed atomics, each thread's stride padded to whole cache lines so threads
//! never write the same line. A thread only ever writes its own stride, so an update is a relaxed
//! load plus a relaxed store (no `lock`-prefixed instruction); the renderer reads with relaxed
//! loads and may see a request half-recorded, which Prometheus tolerates (next scrape catches up).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::codes;
use crate::node::NodeCells;
use crate::registry::ConsumerMetrics;
use crate::{KONG_LATENCY_BUCKETS as KB, UPSTREAM_LATENCY_BUCKETS as UB};

/// Who produced the response: Kong's `source` label (`service` when the upstream answered,
/// `kong` for gateway/plugin answers, as `kong.response.get_source()` distinguishes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Service = 0,
    Kong = 1,
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::Service => "service",
            Source::Kong => "kong",
        }
    }
}

/// The prometheus plugin's opt-in flags, as configured on the plugin instance covering a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricFlags {
    pub status_code_metrics: bool,
    pub latency_metrics: bool,
    pub bandwidth_metrics: bool,
    pub per_consumer: bool,
}

impl MetricFlags {
    /// Everything on (benches, tests).
    pub const ALL: MetricFlags = MetricFlags {
        status_code_metrics: true,
        latency_metrics: true,
        bandwidth_metrics: true,
        per_consumer: true,
    };
}

/// The facts of one finished request, as the proxy knows them in its log phase.
/// Latencies are whole milliseconds; `None` = not measured (e.g. no upstream for a local answer).
#[derive(Clone, Copy, Debug, Default)]
pub struct Observation {
    pub status: u16,
    pub source: Option<Source>,
    pub kong_ms: Option<u64>,
    pub upstream_ms: Option<u64>,
    pub request_ms: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

// Layout of one thread's stride inside a block.
pub(crate) const OFF_CODES: usize = 0; // [source][code index]
pub(crate) const OFF_KONG: usize = OFF_CODES + 2 * codes::N; // buckets.., +Inf, sum
pub(crate) const KONG_LEN: usize = KB.len() + 2;
pub(crate) const OFF_UP: usize = OFF_KONG + KONG_LEN;
pub(crate) const UP_LEN: usize = UB.len() + 2;
pub(crate) const OFF_REQ: usize = OFF_UP + UP_LEN;
pub(crate) const OFF_BW: usize = OFF_REQ + UP_LEN; // ingress, egress
const USED: usize = OFF_BW + 2;
/// Cells per thread, rounded up to whole 64-byte lines.
pub(crate) const STRIDE: usize = USED.div_ceil(8) * 8;

/// Rare data of one thread in one block: codes outside the fixed table and per-consumer series.
/// Locked by its owning thread per request (only with per_consumer or a rare code) and by the
/// renderer per scrape, so the lock is practically uncontended.
#[derive(Default)]
pub(crate) struct Extra {
    /// (code, source) → count, for codes without a fixed cell.
    pub(crate) codes: Vec<(u16, Source, u64)>,
    /// consumer id → its counters.
    pub(crate) consumers: HashMap<u32, ConsumerCells>,
}

pub(crate) struct ConsumerCells {
    /// Escaped `consumer="name"` label.
    pub(crate) label: Arc<str>,
    pub(crate) codes: Vec<(u16, Source, u64)>,
    pub(crate) ingress: u64,
    pub(crate) egress: u64,
}

/// All series of one `(service, route, workspace)`.
pub(crate) struct Block {
    /// Escaped `service="…",route="…"`.
    pub(crate) svc_route: String,
    /// Escaped `workspace="…"`.
    pub(crate) workspace: String,
    pub(crate) cells: Box<[AtomicU64]>,
    pub(crate) extras: Box<[Mutex<Extra>]>,
}

impl Block {
    pub(crate) fn new(labels: &crate::RouteLabels, shards: usize) -> Block {
        let svc_route = format!(
            "{},{}",
            crate::labels::pair("service", &labels.service),
            crate::labels::pair("route", &labels.route)
        );
        Block {
            svc_route,
            workspace: crate::labels::pair("workspace", &labels.workspace),
            cells: (0..shards * STRIDE).map(|_| AtomicU64::new(0)).collect(),
            extras: (0..shards).map(|_| Mutex::new(Extra::default())).collect(),
        }
    }

    /// Sum of cell `off` over all threads.
    #[inline]
    pub(crate) fn sum(&self, off: usize) -> u64 {
        let mut v = [0u64];
        self.sums(off, &mut v);
        v[0]
    }

    /// Sums of cells `off..off + out.len()` over all threads, into `out`. The renderer reads a
    /// family's cells of a block in one go: one pass over each thread's stride instead of a
    /// strided walk per cell.
    #[inline]
    pub(crate) fn sums(&self, off: usize, out: &mut [u64]) {
        out.fill(0);
        for stride in self.cells.chunks_exact(STRIDE) {
            if let Some(cells) = stride.get(off..off + out.len()) {
                for (o, c) in out.iter_mut().zip(cells) {
                    *o = o.wrapping_add(c.load(Relaxed));
                }
            }
        }
    }
}

/// A pre-resolved handle to the series of one `(service, route, workspace)` plus the flags of the
/// prometheus plugin instance covering it. Built per snapshot by [`crate::SnapshotBuilder::route`];
/// cheap to clone; keep one per route in the snapshot.
#[derive(Clone)]
pub struct RouteMetrics {
    pub(crate) block: Arc<Block>,
    pub(crate) flags: MetricFlags,
}

impl RouteMetrics {
    pub fn flags(&self) -> MetricFlags {
        self.flags
    }
}

#[inline(always)]
fn bump(c: Option<&AtomicU64>, n: u64) {
    if let Some(c) = c {
        // Single writer per cell: no read-modify-write instruction needed.
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

#[inline(always)]
fn observe(cells: &[AtomicU64], off: usize, bounds: &[u64], v: u64) {
    // Non-cumulative bucket: first bound >= v; past the last bound → the +Inf cell.
    let b = bounds.partition_point(|&le| le < v);
    bump(cells.get(off + b), 1);
    bump(cells.get(off + bounds.len() + 1), v);
}

fn add_code(list: &mut Vec<(u16, Source, u64)>, code: u16, src: Source) {
    match list.iter_mut().find(|(c, s, _)| *c == code && *s == src) {
        Some(e) => e.2 += 1,
        None => list.push((code, src, 1)),
    }
}

/// One proxy thread's writer. Obtain with [`crate::Registry::shard`] once per thread; it is
/// `Send` but not `Sync` or `Clone`, so exactly one thread writes its cells.
pub struct Shard {
    pub(crate) idx: usize,
    pub(crate) node: Arc<NodeCells>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl Shard {
    pub(crate) fn new(idx: usize, node: Arc<NodeCells>) -> Shard {
        Shard {
            idx,
            node,
            _not_sync: PhantomData,
        }
    }

    /// This shard's thread index.
    pub fn index(&self) -> usize {
        self.idx
    }

    /// Records one finished request on a route that has a service (Kong records nothing
    /// without a service). `consumer` is the authenticated consumer's handle, if any; it is only
    /// used when the route's flags have `per_consumer`.
    #[inline]
    pub fn record(&self, rm: &RouteMetrics, consumer: Option<&ConsumerMetrics>, o: &Observation) {
        self.record_with(rm, rm.flags, consumer, o)
    }

    /// [`Shard::record`] with the flags of the prometheus instance that applied to this
    /// request (a route's handle is resolved once; which instance applies can depend on the
    /// consumer, so the proxy passes the flags it found in the log phase).
    #[inline]
    pub fn record_with(
        &self,
        rm: &RouteMetrics,
        f: MetricFlags,
        consumer: Option<&ConsumerMetrics>,
        o: &Observation,
    ) {
        let base = self.idx * STRIDE;
        let Some(cells) = rm.block.cells.get(base..base + STRIDE) else {
            return;
        };
        let src = o.source.unwrap_or(Source::Kong);
        match consumer {
            Some(c) if f.per_consumer && (f.status_code_metrics || f.bandwidth_metrics) => {
                self.record_consumer(rm, c, f, src, o)
            }
            _ => {
                if f.status_code_metrics {
                    match codes::index(o.status) {
                        Some(i) => bump(cells.get(OFF_CODES + src as usize * codes::N + i), 1),
                        None => self.rare_code(rm, o.status, src),
                    }
                }
                if f.bandwidth_metrics {
                    bump(cells.get(OFF_BW), o.bytes_in);
                    bump(cells.get(OFF_BW + 1), o.bytes_out);
                }
            }
        }
        if f.latency_metrics {
            if let Some(v) = o.kong_ms {
                observe(cells, OFF_KONG, &KB, v);
            }
            if let Some(v) = o.upstream_ms {
                observe(cells, OFF_UP, &UB, v);
            }
            if let Some(v) = o.request_ms {
                observe(cells, OFF_REQ, &UB, v);
            }
        }
    }

    #[cold]
    fn rare_code(&self, rm: &RouteMetrics, code: u16, src: Source) {
        if let Some(m) = rm.block.extras.get(self.idx) {
            let mut x = m.lock().unwrap_or_else(|p| p.into_inner());
            add_code(&mut x.codes, code, src);
        }
    }

    fn record_consumer(
        &self,
        rm: &RouteMetrics,
        c: &ConsumerMetrics,
        f: MetricFlags,
        src: Source,
        o: &Observation,
    ) {
        let Some(m) = rm.block.extras.get(self.idx) else {
            return;
        };
        let mut x = m.lock().unwrap_or_else(|p| p.into_inner());
        let cc = x.consumers.entry(c.id).or_insert_with(|| ConsumerCells {
            label: c.label.clone(),
            codes: Vec::new(),
            ingress: 0,
            egress: 0,
        });
        if f.status_code_metrics {
            add_code(&mut cc.codes, o.status, src);
        }
        if f.bandwidth_metrics {
            cc.ingress += o.bytes_in;
            cc.egress += o.bytes_out;
        }
    }

    /// `kong_nginx_requests_total`: every request, routed or not.
    #[inline]
    pub fn request(&self) {
        self.node.add(self.idx, crate::node::REQUESTS, 1);
    }

    /// A downstream connection was accepted (`accepted`, `handled`, `active`).
    #[inline]
    pub fn connection_opened(&self) {
        self.node.add(self.idx, crate::node::CONN_OPENED, 1);
    }

    /// A downstream connection closed.
    #[inline]
    pub fn connection_closed(&self) {
        self.node.add(self.idx, crate::node::CONN_CLOSED, 1);
    }

    /// A request started/finished being processed (`writing` = in flight; `waiting` = idle
    /// keep-alive connections = active − writing).
    #[inline]
    pub fn request_started(&self) {
        self.node.add(self.idx, crate::node::REQ_STARTED, 1);
    }

    #[inline]
    pub fn request_finished(&self) {
        self.node.add(self.idx, crate::node::REQ_FINISHED, 1);
    }

    /// This thread's router match cache totals so far (absolute values: the cache keeps its
    /// own counters, so the proxy copies them instead of counting twice).
    #[inline]
    pub fn set_router_cache(&self, hits: u64, misses: u64) {
        self.node.set(self.idx, crate::node::CACHE_HITS, hits);
        self.node.set(self.idx, crate::node::CACHE_MISSES, misses);
    }

    /// Router match cache outcome (`gatehouse_router_cache_{hits,misses}_total`).
    #[inline]
    pub fn router_cache(&self, hit: bool) {
        let c = if hit {
            crate::node::CACHE_HITS
        } else {
            crate::node::CACHE_MISSES
        };
        self.node.add(self.idx, c, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sums` over a range equals `sum` per cell, and both add every thread's stride.
    #[test]
    fn sums_add_every_thread() {
        let labels = crate::RouteLabels::kong(Some("s"), "h", Some("r"), "id", "default");
        for shards in [1, 2, 3] {
            let b = Block::new(&labels, shards);
            for (i, c) in b.cells.iter().enumerate() {
                c.store(i as u64, Relaxed);
            }
            for (off, len) in [(0, 1), (OFF_KONG, KONG_LEN), (OFF_BW, 2), (STRIDE - 3, 3)] {
                let mut got = vec![0; len];
                b.sums(off, &mut got);
                let want: Vec<u64> = (off..off + len)
                    .map(|cell| (0..shards).map(|t| (t * STRIDE + cell) as u64).sum())
                    .collect();
                assert_eq!(got, want, "shards {shards} cells {off}..+{len}");
                assert_eq!(b.sum(off), want[0]);
            }
            // A range past the stride reads nothing rather than another thread's cells.
            let mut past = [9u64; 2];
            b.sums(STRIDE - 1, &mut past);
            assert_eq!(past, [0, 0]);
        }
    }
}
