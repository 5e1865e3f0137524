//! Live heap bytes at each step of a `POST /config`-sized load of Kong's LMDB-benchmark config
//! (decode, validate, build, LMDB write with the 201 body), counted by a wrapping global allocator, so
//! memory work can see which structure holds what without a heap profiler. Process RSS (what
//! `bench/config-load.py` reports) adds allocator slack and LMDB's map on top.
//! Run: `cargo bench -p gatehouse-admin --bench load_heap` (`GATEHOUSE_BENCH_N` sets N).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use gatehouse_config::{doc, parse_doc, RouterFlavor};
use gatehouse_proxy::Built;

#[path = "../../config/benches/support/lmdb_config.rs"]
mod lmdb_config;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let now = LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed)
            + new as isize
            - l.size() as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn mib(b: isize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn main() {
    let n = lmdb_config::n();
    let text = lmdb_config::config_text(n);
    let opts = lmdb_config::options();
    let base = LIVE.load(Ordering::Relaxed);
    let step = |what: &str| {
        let live = LIVE.load(Ordering::Relaxed) - base;
        let peak = PEAK.swap(0, Ordering::Relaxed) - base;
        PEAK.fetch_max(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        println!(
            "{what:<28} live {:>7.1} MiB   peak during step {:>7.1} MiB",
            mib(live),
            mib(peak)
        );
    };
    println!("input {} bytes (N={n})", text.len());
    step("start");
    let mut tree = doc::from_json_str(&text).expect("JSON");
    step("decoded document");
    let config = parse_doc(&mut tree, &opts).expect("valid config");
    step("+ config");
    drop(tree);
    step("- document");
    // The two largest parts of a build, alone, then the whole build.
    let router = gatehouse_router::Router::build(&config, RouterFlavor::default()).expect("router");
    step("  router alone");
    drop(router);
    let rl = gatehouse_plugins::RateLimitStore::new();
    let plugins = gatehouse_plugins::compile(&config, &rl).expect("plugins");
    step("  plugins alone");
    drop((plugins, rl));
    let built = Built::new(&config, RouterFlavor::default(), None).expect("builds");
    step("+ built (router, plugins)");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = gatehouse_store::Store::open(dir.path(), 1 << 30).expect("open LMDB");
    let mut body = gatehouse_admin::render::Flattened::default();
    let mut record = |e, id, json: &[u8]| body.record(e, id, json);
    store
        .write_config_with(&config, "h", &mut record, || true)
        .expect("write");
    let body = body.finish();
    step("+ LMDB write, 201 body");
    drop(body);
    let snapshot = built.into_snapshot(config, "h".into());
    step("snapshot (- body)");
    drop(snapshot);
    step("- snapshot");
}
