//! `Store::write_config` of Kong's LMDB-benchmark config (10,000 services + routes +
//! consumers, 40,000 plugins) into a temporary LMDB, each iteration replacing the previous
//! config as a reload does. `GATEHOUSE_BENCH_N` sets N.

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_store::Store;

#[path = "../../config/benches/support/lmdb_config.rs"]
mod lmdb_config;

fn bench(c: &mut Criterion) {
    let n = lmdb_config::n();
    let text = lmdb_config::config_text(n);
    let config = gatehouse_config::parse(&text, &lmdb_config::options()).expect("valid config");
    let hash = gatehouse_config::hash_text(&text);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), 1 << 30).expect("open LMDB");
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.bench_function(format!("write_config_{n}"), |b| {
        b.iter(|| store.write_config(&config, &hash).expect("write"))
    });
    g.bench_function(format!("read_config_{n}"), |b| {
        b.iter(|| store.read_config().expect("read"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
