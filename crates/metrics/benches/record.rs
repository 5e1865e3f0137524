//! Per-request recording cost and scrape cost.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse_metrics::*;

fn reg(shards: usize) -> std::sync::Arc<Registry> {
    Registry::new(RegistryOptions {
        shards,
        node_id: "n".into(),
        version: "3.9.0".into(),
        subsystem: "http".into(),
    })
}

fn obs(i: u64) -> Observation {
    Observation {
        status: if i % 16 == 0 { 404 } else { 200 },
        source: Some(Source::Service),
        kong_ms: Some(i % 7),
        upstream_ms: Some(i % 300),
        request_ms: Some(i % 300 + 3),
        bytes_in: 300,
        bytes_out: 2000,
    }
}

fn bench(c: &mut Criterion) {
    let r = reg(2);
    let mut b = r.snapshot_builder();
    let routes: Vec<_> = (0..1000)
        .map(|i| {
            b.route(
                RouteLabels {
                    service: format!("s{i}"),
                    route: format!("r{i}"),
                    workspace: "default".into(),
                },
                MetricFlags::ALL,
            )
        })
        .collect();
    let alice = b.consumer("alice");
    b.commit();
    let shard = r.shard(0).expect("shard");
    let mut i = 0u64;
    c.bench_function("record/all_flags", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            let rm = &routes[(i % 1000) as usize];
            shard.request();
            shard.record(black_box(rm), None, &obs(i));
        })
    });
    c.bench_function("record/all_flags_per_consumer", |bn| {
        bn.iter(|| {
            i = i.wrapping_add(1);
            let rm = &routes[(i % 1000) as usize];
            shard.record(black_box(rm), Some(&alice), &obs(i));
        })
    });

    let big = reg(2);
    let mut b = big.snapshot_builder();
    let routes: Vec<_> = (0..10_000)
        .map(|i| {
            b.route(
                RouteLabels {
                    service: format!("service-{}", i / 10),
                    route: format!("route-{i}"),
                    workspace: "default".into(),
                },
                MetricFlags::ALL,
            )
        })
        .collect();
    b.commit();
    let s0 = big.shard(0).expect("shard");
    for (k, rm) in routes.iter().enumerate() {
        for code in [200u16, 404, 500, 503] {
            s0.record(
                rm,
                None,
                &Observation {
                    status: code,
                    ..obs(k as u64)
                },
            );
        }
    }
    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.bench_function("10k_routes_580k_samples", |bn| {
        let mut buf = Vec::with_capacity(64 << 20);
        bn.iter(|| {
            buf.clear();
            big.render(&mut buf).expect("render");
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
