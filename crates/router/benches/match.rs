//! Router lookup cost for 1, 100 and 10,000 routes: the first route in evaluation order, the
//! last one, and a 404. Routes are prefix paths `/svc-NNNNN`, with ~10% regex paths, ~10% with
//! a host and ~5% with a header, roughly the mix of a large Kong deployment.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_config::{Config, PathHandling, Protocol, Route, RouterFlavor};
use gatehouse_router::{Headers, Request, Router};
use uuid::Uuid;

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

fn bench(c: &mut Criterion) {
    for n in [1usize, 100, 10_000] {
        let cfg = Config {
            routes: (0..n).map(route).collect(),
            ..Config::default()
        };
        let router = Router::build(&cfg, RouterFlavor::TraditionalCompatible).expect("build");
        let order: Vec<usize> = router.evaluation_order().map(|(r, _)| r).collect();
        let first = request_for(order[0]);
        let last = request_for(order[order.len() - 1]);
        let miss = Req {
            host: "example.com".into(),
            path: "/nope/x".into(),
            headers: first.headers.clone(),
        };
        let mut group = c.benchmark_group(format!("find/{n}"));
        for (name, req, want) in [
            ("first", &first, Some(order[0])),
            ("last", &last, order.last().copied()),
            ("404", &miss, None),
        ] {
            let headers = Hdrs(&req.headers);
            let request = Request {
                method: "GET",
                host: &req.host,
                dst_port: 8000,
                path: &req.path,
                sni: None,
                https: false,
                headers: &headers,
            };
            assert_eq!(router.find(&request).map(|m| m.route), want, "{n} {name}");
            group.bench_function(name, |b| b.iter(|| router.find(black_box(&request))));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
