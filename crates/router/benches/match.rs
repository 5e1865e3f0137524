//! Router lookup cost for 1, 100 and 10,000 routes (Kong's LMDB-benchmark shape: prefix paths
//! `/svc-NNNNN`, ~10% regex paths, ~10% with a host, ~5% with a header):
//!
//! - `hit`: a cache hit (`find_cached` on a warm cache);
//! - `first` / `middle` / `last`: a cache miss (`find`, the indexed matcher) for the route
//!   evaluated first, in the middle, and last (Kong's worst case);
//! - `404`: a cache miss that matches nothing;
//! - `linear_last` / `linear_404`: the linear scan (what Kong's ATC router does), for comparison.
//!
//! Plus `build/10000` (router build time) and, printed once, heap bytes per route measured
//! with a counting allocator. Reference (issue 5): atc-router 1.7.1 at 10k routes costs
//! 0.68 ms (last), 0.71 ms (404), 0.40 ms (middle) per match, 42 ms and ~1 KB/route to build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_config::{Config, PathHandling, Protocol, Route, RouterFlavor};
use gatehouse_router::{Headers, Request, RequestExtra, Router};
use uuid::Uuid;

/// Live heap bytes, for bytes per route.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn route(i: usize) -> Route {
    let regex = i % 10 == 5;
    let path = if regex {
        format!(r"~/svc-{i:05}/\d+$")
    } else {
        format!("/svc-{i:05}")
    };
    let hosts = (i % 10 == 3).then(|| vec![format!("host-{i}.example.com")]);
    let headers =
        (i % 20 == 7).then(|| BTreeMap::from([("x-tenant".to_owned(), vec![format!("t{i}")])]));
    Route {
        id: Uuid::from_u128(i as u128 + 1),
        name: None,
        protocols: vec![Protocol::Http, Protocol::Https],
        methods: None,
        hosts,
        paths: Some(vec![path]),
        headers,
        snis: None,
        sources: None,
        destinations: None,
        https_redirect_status_code: 426,
        strip_path: true,
        preserve_host: false,
        request_buffering: true,
        response_buffering: true,
        regex_priority: 0,
        path_handling: PathHandling::V0,
        service: None,
        expression: None,
        priority: None,
        tags: vec![],
        created_at: 0,
        updated_at: 0,
    }
}

/// The request that matches route `i` (and, by construction, no route evaluated before it).
struct Req {
    host: String,
    path: String,
    headers: Vec<(&'static str, String)>,
}

struct Hdrs<'a>(&'a [(&'static str, String)]);

impl Headers for Hdrs<'_> {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0.iter().any(|(n, v)| *n == lower_name && f(v))
    }
}

fn request_for(i: usize) -> Req {
    let mut path = format!("/svc-{i:05}");
    if i % 10 == 5 {
        path.push_str("/123");
    }
    let host = if i % 10 == 3 {
        format!("host-{i}.example.com")
    } else {
        "example.com".into()
    };
    let mut headers = vec![
        ("user-agent", "bench/1.0".to_owned()),
        ("accept", "*/*".to_owned()),
    ];
    if i % 20 == 7 {
        headers.push(("x-tenant", format!("t{i}")));
    }
    Req {
        host,
        path,
        headers,
    }
}

fn request<'a>(req: &'a Req, headers: &'a Hdrs<'a>) -> Request<'a> {
    Request {
        method: "GET",
        host: &req.host,
        dst_port: 8000,
        path: &req.path,
        sni: None,
        https: false,
        headers,
    }
}

fn bench(c: &mut Criterion) {
    for n in [1usize, 100, 10_000] {
        let cfg = Config {
            routes: (0..n).map(route).collect(),
            ..Config::default()
        };
        let before = LIVE.load(Ordering::Relaxed);
        let router = Router::build(&cfg, RouterFlavor::TraditionalCompatible).expect("build");
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        println!("router/{n}: {} bytes per route", bytes / n as isize);
        let order: Vec<usize> = router.evaluation_order().map(|(r, _)| r).collect();
        let first = request_for(order[0]);
        let middle = request_for(order[order.len() / 2]);
        let last = request_for(order[order.len() - 1]);
        let miss = Req {
            host: "example.com".into(),
            path: "/nope/x".into(),
            headers: first.headers.clone(),
        };
        let mut group = c.benchmark_group(format!("find/{n}"));
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20);
        for (name, req, want) in [
            ("first", &first, Some(order[0])),
            ("middle", &middle, Some(order[order.len() / 2])),
            ("last", &last, order.last().copied()),
            ("404", &miss, None),
        ] {
            let headers = Hdrs(&req.headers);
            let request = request(req, &headers);
            assert_eq!(router.find(&request).map(|m| m.route), want, "{n} {name}");
            group.bench_function(name, |b| b.iter(|| router.find(black_box(&request))));
            if name == "last" || name == "404" {
                group.bench_function(format!("linear_{name}"), |b| {
                    b.iter(|| router.find_linear(black_box(&request), &RequestExtra::NONE))
                });
            }
        }
        let headers = Hdrs(&last.headers);
        let request = request(&last, &headers);
        let mut cache = router.new_cache();
        router.find_cached(&mut cache, &request);
        group.bench_function("hit", |b| {
            b.iter(|| router.find_cached(&mut cache, black_box(&request)))
        });
        group.finish();
    }
    let cfg = Config {
        routes: (0..10_000).map(route).collect(),
        ..Config::default()
    };
    let mut group = c.benchmark_group("build");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    group.bench_function("10000", |b| {
        b.iter(|| Router::build(black_box(&cfg), RouterFlavor::TraditionalCompatible))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
