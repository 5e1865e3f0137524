//! Kong-compatible Prometheus metrics, kept off the proxy hot path.
//!
//! Why this shape: Kong pays for metrics on every request (it serialises the whole log table and
//! looks series up by label strings) and again on every scrape (it walks and sorts a shared dict).
//! APISIX saw second-long tail latencies while rendering 100k series on serving workers. Here:
//!
//! * **Recording** ([`Shard::record`]) is a handful of relaxed load+store pairs into cells that only
//!   the calling proxy thread writes. Label strings are resolved once per config snapshot into a
//!   [`RouteMetrics`] handle (an `Arc` to the series block of one `(service, route, workspace)`),
//!   so a request never hashes, allocates or takes a lock (except for per-consumer series and
//!   rare status codes, which go through a per-thread, practically uncontended mutex).
//! * **Rendering** ([`Registry::render`]) runs on the admin/status thread, sums the per-thread
//!   cells of every series and streams Prometheus text exposition into any `io::Write`.
//! * **Snapshot swaps** ([`Registry::snapshot_builder`]) look series blocks up by label values, so
//!   counters of `(service, route)` pairs that survive a reload continue; blocks of removed pairs
//!   are dropped from the registry on commit (Kong keeps them until restart; we prefer bounded
//!   memory under config churn, and Prometheus treats a vanished series as stale, not reset).
//!
//! Metric names, labels and buckets follow Kong 3.x `kong/plugins/prometheus/exporter.lua`.

#![forbid(unsafe_code)]

mod codes;
mod labels;
mod node;
mod registry;
mod render;
mod shard;

pub use labels::RouteLabels;
pub use node::{HealthState, ProcessMetrics, TargetHealth};
pub use registry::{ConsumerMetrics, Registry, RegistryOptions, SnapshotBuilder};
pub use shard::{MetricFlags, Observation, RouteMetrics, Shard, Source};

/// `kong_kong_latency_ms` bucket upper bounds (ms).
pub const KONG_LATENCY_BUCKETS: [u64; 17] = [
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
];
/// `kong_upstream_latency_ms` and `kong_request_latency_ms` bucket upper bounds (ms).
pub const UPSTREAM_LATENCY_BUCKETS: [u64; 13] = [
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];
