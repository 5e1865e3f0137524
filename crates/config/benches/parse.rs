//! `parse` of Kong's LMDB-benchmark config (10,000 services + routes + consumers).
//! `GATEHOUSE_BENCH_CONFIG=/path.json` benches a file instead; `GATEHOUSE_BENCH_N` sets N.

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "support/lmdb_config.rs"]
mod lmdb_config;

fn bench(c: &mut Criterion) {
    let n = lmdb_config::n();
    let text = lmdb_config::config_text(n);
    let opts = lmdb_config::options();
    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    g.bench_function(format!("lmdb_config_{n}"), |b| {
        b.iter(|| gatehouse_config::parse(&text, &opts).expect("valid config"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
