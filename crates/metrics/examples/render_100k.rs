//! CPU time and output size of one `/metrics` render over the `metrics-scrape` bench shape:
//! 10,000 routes with the prometheus plugin, 2,000 of them observed (one status code and the
//! three latency histograms each, ~100k series).
//!
//! `cargo run --release -p gatehouse-metrics --example render_100k [renders] [out-file] [mixed]`
//! Prints the render thread's CPU time per render (from `/proc/thread-self/schedstat`, Linux),
//! so a busy machine inflates wall time but not the numbers reported here. `out-file` receives
//! one exposition (to compare renderers byte for byte); `mixed` also records bandwidth, a
//! code outside the fixed table and per-consumer series on some routes, for that comparison.

use std::io::{self, Write};

use gatehouse_metrics::*;

const ROUTES: usize = 10_000;
const WARM: usize = 2_000;

/// CPU time this thread has used, ns (`None` off Linux).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Counts bytes and drops them, like a socket that keeps up: 64 KiB chunks arrive here.
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let renders: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let out_file = std::env::args().nth(2);
    let mixed = std::env::args().nth(3).as_deref() == Some("mixed");
    let reg = Registry::new(RegistryOptions {
        shards: 1,
        node_id: "8c8bc6e0-5ecf-4b5a-a7d4-3f3f1b8ad0a1".into(),
        version: "3.9.1".into(),
        subsystem: "http".into(),
    });
    let mut b = reg.snapshot_builder();
    let routes: Vec<_> = (0..ROUTES)
        .map(|i| {
            let labels = RouteLabels::kong(
                Some(&format!("svc-{i:05}")),
                "127.0.0.1",
                Some(&format!("r-{i:05}")),
                "",
                "default",
            );
            b.route(labels, MetricFlags::default())
        })
        .collect();
    let alice = b.consumer("alice \"a\"");
    b.commit();
    let shard = reg.shard(0).expect("shard 0");
    let flags = MetricFlags {
        status_code_metrics: true,
        latency_metrics: true,
        bandwidth_metrics: false,
        per_consumer: false,
    };
    for (i, rm) in routes.iter().take(WARM).enumerate() {
        let o = Observation {
            status: 200,
            source: Some(Source::Service),
            kong_ms: Some(i as u64 % 3),
            upstream_ms: Some(i as u64 % 40),
            request_ms: Some(i as u64 % 40 + 1),
            bytes_in: 0,
            bytes_out: 100,
        };
        shard.record_with(rm, flags, None, &o);
        if mixed && i % 7 == 0 {
            let rare = Observation { status: 418, ..o };
            shard.record_with(rm, MetricFlags::ALL, None, &rare);
            shard.record_with(rm, MetricFlags::ALL, Some(&alice), &o);
        }
    }
    let mut best = u64::MAX;
    let mut total = 0u64;
    let mut size = 0;
    for _ in 0..renders {
        let t0 = thread_cpu_ns().unwrap_or(0);
        let mut sink = Sink(0);
        reg.render(&mut sink).expect("render");
        let took = thread_cpu_ns().unwrap_or(0).saturating_sub(t0);
        best = best.min(took);
        total += took;
        size = sink.0;
    }
    if let Some(path) = out_file.filter(|p| !p.is_empty()) {
        let mut v = Vec::new();
        reg.render(&mut v).expect("render");
        std::fs::write(&path, v).expect("write out-file");
    }
    println!(
        "renders={renders} bytes={size} cpu_ms_min={:.2} cpu_ms_mean={:.2}",
        best as f64 / 1e6,
        total as f64 / 1e6 / renders as f64
    );
}
