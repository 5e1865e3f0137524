//! Hot-path allocation guard (our equivalent of Kong's trace-abort detection): a counting
//! global allocator checks what routing costs in heap allocations.
//!
//! Budgets: a cache hit allocates nothing; `Router::find` (the indexed matcher, used on a cache
//! miss) allocates nothing at 10,000 routes, for a hit, a worst case and a 404; a cache miss
//! through `find_cached` allocates at most one block (the stored key; eviction may add a
//! rebuild of the table, which the budget amortises over many misses).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use gatehouse_config::RouterFlavor;
use gatehouse_router::{Headers, Request, Router};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCS.with(Cell::get);
    let t = f();
    (t, ALLOCS.with(Cell::get) - before)
}

/// The bench's route shape: `/svc-NNNNN`, 10 % regex, 10 % with a host, 5 % with a header.
fn routes(n: usize) -> Vec<gatehouse_config::Route> {
    (0..n)
        .map(|i| {
            let mut r = route(i as u128 + 1);
            r = if i % 10 == 5 {
                r.paths(&[&format!(r"~/svc-{i:05}/\d+$")])
            } else {
                r.paths(&[&format!("/svc-{i:05}")])
            };
            if i % 10 == 3 {
                r = r.hosts(&[&format!("host-{i}.example.com")]);
            }
            if i % 20 == 7 {
                r = r.header("x-tenant", &[&format!("t{i}")]);
            }
            r
        })
        .collect()
}

#[test]
fn routing_allocation_budget() {
    let router =
        Router::build(&config(routes(10_000)), RouterFlavor::TraditionalCompatible).expect("build");
    let pairs: &[(&str, &str)] = &[("user-agent", "t/1"), ("x-tenant", "t9007")];
    let headers: &dyn Headers = &pairs;
    let mk = |host: &'static str, path: &'static str| Request {
        method: "GET",
        host,
        dst_port: 8000,
        path,
        sni: None,
        https: false,
        headers,
    };
    let cases = [
        (mk("example.com", "/svc-00000"), Some(0)),
        (mk("example.com", "/svc-09995/12"), Some(9995)),
        (mk("host-9993.example.com", "/svc-09993"), Some(9993)),
        (mk("example.com", "/svc-09007"), Some(9007)),
        (mk("example.com", "/nope"), None),
    ];
    let mut cache = router.new_cache();
    for (req, want) in &cases {
        // Warm-up (first use of lazily built regex caches may allocate).
        assert_eq!(router.find(req).map(|m| m.route), *want);
        let (got, n) = allocs(|| router.find(req));
        assert_eq!(got.map(|m| m.route), *want);
        assert_eq!(n, 0, "indexed find allocated for {}", req.path);

        let (got, n) = allocs(|| router.find_cached(&mut cache, req));
        assert_eq!(got.map(|m| m.route), *want);
        assert!(n <= 1, "cache miss allocated {n} times for {}", req.path);

        let (got, n) = allocs(|| router.find_cached(&mut cache, req));
        assert_eq!(got.map(|m| m.route), *want);
        assert_eq!(n, 0, "cache hit allocated for {}", req.path);
    }
}
