//! Recording a request allocates nothing: the proxy's log phase calls [`Shard::record_with`]
//! per request, so this is measured with a counting global allocator.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gatehouse_metrics::*;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn recording_allocates_nothing() {
    let reg = Registry::new(RegistryOptions {
        shards: 2,
        node_id: "n".into(),
        version: "v".into(),
        subsystem: "http".into(),
    });
    let mut b = reg.snapshot_builder();
    let rm = b.route(
        RouteLabels {
            service: "s".into(),
            route: "r".into(),
            workspace: "default".into(),
        },
        MetricFlags::default(),
    );
    b.commit();
    let shard = reg.shard(1).expect("shard");
    let o = Observation {
        status: 200,
        source: Some(Source::Service),
        kong_ms: Some(1),
        upstream_ms: Some(30),
        request_ms: Some(31),
        bytes_in: 10,
        bytes_out: 100,
    };
    ON.store(true, Ordering::Relaxed);
    for i in 0..1000u64 {
        shard.request();
        shard.request_started();
        shard.record_with(
            &rm,
            MetricFlags::ALL,
            None,
            &Observation {
                upstream_ms: Some(i),
                ..o
            },
        );
        shard.request_finished();
        shard.set_router_cache(i, 1);
    }
    ON.store(false, Ordering::Relaxed);
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations in 1000 requests"
    );
}
