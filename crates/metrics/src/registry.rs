//! The registry: which series blocks exist (keyed by label values, so they outlive snapshots),
//! which consumers have ids, the node/process metrics and externally owned counters.
//!
//! Locks here are taken on the admin thread (snapshot builds, scrapes), never per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::labels::{self, RouteLabels};
use crate::node::{HealthSlot, NodeCells, ProcessMetrics, TargetHealth};
use crate::shard::{Block, MetricFlags, RouteMetrics, Shard};

/// Fixed at start-up.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Number of proxy threads (one [`Shard`] each).
    pub shards: usize,
    /// `node_id` label (Kong's node id, a UUID).
    pub node_id: String,
    /// `version` label of `kong_node_info`.
    pub version: String,
    /// `subsystem` label (`http`).
    pub subsystem: String,
}

/// A consumer's stable id plus its escaped `consumer="username"` label. Resolve once per
/// snapshot per consumer ([`SnapshotBuilder::consumer`]) and keep it on the consumer entity.
#[derive(Clone, Debug)]
pub struct ConsumerMetrics {
    pub(crate) id: u32,
    pub(crate) label: Arc<str>,
}

/// A counter owned elsewhere (e.g. `gatehouse-logging`'s drop counter), rendered at scrape time.
pub(crate) struct External {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) counter: bool,
    pub(crate) labels: String,
    pub(crate) value: Arc<AtomicU64>,
}

pub struct Registry {
    pub(crate) opts: RegistryOptions,
    claimed: Box<[AtomicBool]>,
    /// Label values → block, in creation order for a stable exposition order.
    pub(crate) routes: Mutex<Vec<(RouteLabels, Arc<Block>)>>,
    consumers: Mutex<HashMap<String, ConsumerMetrics>>,
    pub(crate) node: Arc<NodeCells>,
    pub(crate) process: ProcessMetrics,
    pub(crate) health: HealthSlot,
    pub(crate) datastore_reachable: AtomicU64,
    pub(crate) externals: Mutex<Vec<External>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(opts: RegistryOptions) -> Arc<Registry> {
        let n = opts.shards.max(1);
        Arc::new(Registry {
            claimed: (0..n).map(|_| AtomicBool::new(false)).collect(),
            node: Arc::new(NodeCells::new(n)),
            opts: RegistryOptions { shards: n, ..opts },
            routes: Mutex::new(Vec::new()),
            consumers: Mutex::new(HashMap::new()),
            process: ProcessMetrics::default(),
            health: HealthSlot::default(),
            datastore_reachable: AtomicU64::new(1),
            externals: Mutex::new(Vec::new()),
        })
    }

    /// The writer for proxy thread `idx` (0-based, `< shards`). Each index can be claimed once,
    /// so two threads never write the same cells; `None` if out of range or already claimed.
    pub fn shard(&self, idx: usize) -> Option<Shard> {
        let c = self.claimed.get(idx)?;
        if c.swap(true, Relaxed) {
            return None;
        }
        Some(Shard::new(idx, self.node.clone()))
    }

    pub fn shards(&self) -> usize {
        self.opts.shards
    }

    /// Starts resolving handles for a new config snapshot. Call [`SnapshotBuilder::commit`]
    /// after the snapshot is swapped in (or drop the builder to keep the registry unchanged).
    pub fn snapshot_builder(&self) -> SnapshotBuilder<'_> {
        let existing: HashMap<RouteLabels, Arc<Block>> =
            lock(&self.routes).iter().cloned().collect();
        SnapshotBuilder {
            reg: self,
            existing,
            order: Vec::new(),
            seen: HashMap::new(),
        }
    }

    /// `gatehouse_*` process metrics for the admin/main thread to feed.
    pub fn process(&self) -> &ProcessMetrics {
        &self.process
    }

    /// `kong_datastore_reachable` (1 by default: LMDB is local).
    pub fn set_datastore_reachable(&self, ok: bool) {
        self.datastore_reachable.store(ok as u64, Relaxed);
    }

    /// Replaces the `kong_upstream_target_health` rows (`None` = upstream_health_metrics off).
    pub fn set_upstream_health(&self, rows: Option<Vec<TargetHealth>>) {
        *lock(&self.health.rows) = rows;
    }

    /// Renders a counter (`counter = true`) or gauge owned by another crate. `labels` are
    /// `(name, value)` pairs; `name` must be a valid metric name. Registering the same name twice
    /// with different labels is fine (rendered as one family).
    pub fn register_external(
        &self,
        name: &str,
        help: &str,
        counter: bool,
        label_pairs: &[(&str, &str)],
        value: Arc<AtomicU64>,
    ) {
        let labels = label_pairs
            .iter()
            .map(|(k, v)| labels::pair(k, v))
            .collect::<Vec<_>>()
            .join(",");
        let mut ex = lock(&self.externals);
        ex.push(External {
            name: name.to_owned(),
            help: help.to_owned(),
            counter,
            labels,
            value,
        });
        // Keep each family contiguous in the output.
        ex.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Number of `(service, route, workspace)` blocks currently registered.
    pub fn route_series(&self) -> usize {
        lock(&self.routes).len()
    }

    pub(crate) fn blocks(&self) -> Vec<Arc<Block>> {
        lock(&self.routes).iter().map(|(_, b)| b.clone()).collect()
    }
}

/// Resolves per-snapshot handles. Blocks are found by label values, so counters of routes that
/// survive a reload continue; [`commit`](Self::commit) drops blocks no route resolved.
pub struct SnapshotBuilder<'r> {
    reg: &'r Registry,
    existing: HashMap<RouteLabels, Arc<Block>>,
    order: Vec<(RouteLabels, Arc<Block>)>,
    seen: HashMap<RouteLabels, Arc<Block>>,
}

impl SnapshotBuilder<'_> {
    /// The handle for a route that has a service. Two routes with the same labels (Kong's labels
    /// are names, which may collide across workspaces only) share one block, as in Kong.
    pub fn route(&mut self, labels: RouteLabels, flags: MetricFlags) -> RouteMetrics {
        if let Some(b) = self.seen.get(&labels) {
            return RouteMetrics {
                block: b.clone(),
                flags,
            };
        }
        let block = match self.existing.get(&labels) {
            Some(b) => b.clone(),
            None => Arc::new(Block::new(&labels, self.reg.opts.shards)),
        };
        self.seen.insert(labels.clone(), block.clone());
        self.order.push((labels, block.clone()));
        RouteMetrics { block, flags }
    }

    /// The handle for a consumer (label = username; Kong falls back to the id... we take what
    /// the caller passes). Ids are stable for the process lifetime.
    pub fn consumer(&mut self, username: &str) -> ConsumerMetrics {
        let mut m = lock(&self.reg.consumers);
        let next = m.len() as u32;
        m.entry(username.to_owned())
            .or_insert_with(|| ConsumerMetrics {
                id: next,
                label: Arc::from(labels::pair("consumer", username)),
            })
            .clone()
    }

    /// Installs the resolved set: surviving blocks keep their counts, new ones start at zero,
    /// blocks of removed routes stop being rendered (in-flight requests on the old snapshot may
    /// still write into them; those last increments are lost with the series).
    pub fn commit(self) {
        let mut order = self.order;
        // Stable output: surviving series first in their previous order, then new ones.
        let prev: HashMap<*const Block, usize> = lock(&self.reg.routes)
            .iter()
            .enumerate()
            .map(|(i, (_, b))| (Arc::as_ptr(b), i))
            .collect();
        order.sort_by_key(|(_, b)| prev.get(&Arc::as_ptr(b)).copied().unwrap_or(usize::MAX));
        *lock(&self.reg.routes) = order;
    }
}
