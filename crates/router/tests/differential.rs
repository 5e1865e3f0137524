//! Differential property tests: the indexed matcher (`Router::find`) and the cached one
//! (`Router::find_cached`) must give exactly the linear scan's answer (`find_linear`, which is
//! Kong's evaluation order) on random route sets and requests drawn from one small vocabulary,
//! so that overlaps, ties, splits and regex/prefix mixes are frequent.

mod common;

use common::*;
use gatehouse_config::{Route, RouterFlavor};
use gatehouse_router::{Headers, Request, RequestExtra, Router};
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/",
    "/a",
    "/ab",
    "/a/b",
    "/b",
    "/b/c",
    "/abc",
    "~/a[0-9]+",
    "~/(a|b)/c",
    "~/ab?",
    "~(?i)/A",
    "~/b/\\d+$",
    "~/a.c",
    "~",
    "~/a/(?<x>[a-z]+)",
    "~/ab*c",
];
const HOSTS: &[&str] = &[
    "a.com",
    "b.com",
    "*.a.com",
    "api.*",
    "a.com:8080",
    "*.b.com:9000",
    "x.a.com",
];
const METHODS: &[&str] = &["GET", "POST", "PUT"];
const REQ_PATHS: &[&str] = &[
    "/", "/a", "/ab", "/abc", "/a1", "/a12/x", "/a/b", "/a/c", "/b/c", "/b/12", "/b/1x", "/A",
    "/a/zz", "/ac", "/abbc", "/x", "/axc",
];
const REQ_HOSTS: &[&str] = &[
    "a.com",
    "b.com",
    "x.a.com",
    "y.b.com:9000",
    "api.foo",
    "a.com:8080",
    "c.com",
    "",
];
const EXPRS: &[&str] = &[
    r#"http.path ^= "/a""#,
    r#"http.path == "/ab" && http.method == "GET""#,
    r#"http.host == "a.com" && http.path ~ "^/b/\\d+""#,
    r#"http.path.segments.0 == "a" || http.path.segments.0 == "b""#,
    r#"!(http.method == "GET") && http.path ^= "/""#,
    r#"any(lower(http.headers.x_t)) == "v1""#,
    r#"http.headers.x_t != "v1""#,
    r#"http.path.segments.len >= 2"#,
    r#"http.host =^ ".com" && http.path contains "b""#,
];

fn arb_route(i: u128) -> impl Strategy<Value = Route> {
    (
        prop::collection::vec(prop::sample::select(PATHS), 0..3),
        prop::collection::vec(prop::sample::select(HOSTS), 0..2),
        prop::collection::vec(prop::sample::select(METHODS), 0..2),
        prop::option::of(prop::sample::select(&["v1", "V2", "~*v[0-9]"][..])),
        -2i64..3,
        any::<bool>(),
        prop::option::of((prop::sample::select(EXPRS), 0u64..4)),
    )
        .prop_map(move |(paths, hosts, methods, header, rp, strip, expr)| {
            // Few distinct ids so that ties on priority happen and the id decides.
            let mut r = route(i * 7919 % 97 + i);
            if !paths.is_empty() {
                r = r.paths(&paths);
            }
            if !hosts.is_empty() {
                r = r.hosts(&hosts);
            }
            if !methods.is_empty() {
                r = r.methods(&methods);
            }
            if let Some(v) = header {
                r = r.header("x-t", &[v]);
            }
            if r.paths.is_none() && r.hosts.is_none() && r.methods.is_none() && r.headers.is_none()
            {
                r = r.paths(&["/"]);
            }
            if let Some((e, prio)) = expr {
                r.expression = Some(e.to_owned());
                r.priority = Some(prio);
                r.paths = None;
                r.hosts = None;
                r.methods = None;
                r.headers = None;
            }
            r.regex_priority(rp).strip(strip)
        })
}

fn arb_routes(expressions: bool) -> impl Strategy<Value = Vec<Route>> {
    (1usize..40).prop_flat_map(move |n| {
        (0..n as u128)
            .map(|i| arb_route(i + 1))
            .collect::<Vec<_>>()
            .prop_map(move |mut v| {
                if !expressions {
                    for r in &mut v {
                        if r.expression.take().is_some() {
                            *r = route(r.id.as_u128()).paths(&["/a"]);
                        }
                    }
                }
                v
            })
    })
}

#[derive(Debug, Clone)]
struct R {
    method: &'static str,
    host: &'static str,
    port: u16,
    path: &'static str,
    header: Option<&'static str>,
    https: bool,
}

fn arb_req() -> impl Strategy<Value = R> {
    (
        prop::sample::select(METHODS),
        prop::sample::select(REQ_HOSTS),
        prop::sample::select(&[8000u16, 8080, 9000][..]),
        prop::sample::select(REQ_PATHS),
        prop::option::of(prop::sample::select(&["v1", "V1", "v2", "x"][..])),
        any::<bool>(),
    )
        .prop_map(|(method, host, port, path, header, https)| R {
            method,
            host,
            port,
            path,
            header,
            https,
        })
}

fn check(routes: Vec<Route>, reqs: Vec<R>, flavor: RouterFlavor) -> Result<(), TestCaseError> {
    let Ok(router) = Router::build(&config(routes), flavor) else {
        return Ok(());
    };
    let mut cache = router.new_cache();
    // Every request twice, so the second pass answers from the cache.
    for r in reqs.iter().chain(reqs.iter()) {
        let pairs: Vec<(&str, &str)> = r.header.map(|v| ("x-t", v)).into_iter().collect();
        let slice: &[(&str, &str)] = &pairs;
        let headers: &dyn Headers = &slice;
        let req = Request {
            method: r.method,
            host: r.host,
            dst_port: r.port,
            path: r.path,
            sni: None,
            https: r.https,
            headers,
        };
        let want = router.find_linear(&req, &RequestExtra::NONE);
        prop_assert_eq!(router.find(&req), want, "indexed, {:?}", r);
        prop_assert_eq!(
            router.find_cached(&mut cache, &req),
            want,
            "cached, {:?}",
            r
        );
        prop_assert_eq!(router.explain(&req).matched, want, "explain, {:?}", r);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn indexed_and_cached_agree_with_linear_scan(
        routes in arb_routes(false),
        reqs in prop::collection::vec(arb_req(), 1..30),
    ) {
        check(routes, reqs, RouterFlavor::TraditionalCompatible)?;
    }

    #[test]
    fn expressions_flavor_agrees_with_linear_scan(
        routes in arb_routes(true),
        reqs in prop::collection::vec(arb_req(), 1..30),
    ) {
        check(routes, reqs, RouterFlavor::Expressions)?;
    }
}

/// A cache filled from one router is flushed when used with another.
#[test]
fn cache_is_flushed_on_router_change() {
    let a = Router::build(
        &config(vec![route(1).paths(&["/a"])]),
        RouterFlavor::TraditionalCompatible,
    )
    .unwrap();
    let b = Router::build(
        &config(vec![route(2).paths(&["/b"]), route(1).paths(&["/a"])]),
        RouterFlavor::TraditionalCompatible,
    )
    .unwrap();
    let mut cache = a.new_cache();
    let headers: &dyn Headers = &gatehouse_router::NoHeaders;
    let req = Request {
        method: "GET",
        host: "x",
        dst_port: 80,
        path: "/a",
        sni: None,
        https: false,
        headers,
    };
    assert_eq!(a.find_cached(&mut cache, &req).map(|m| m.route), Some(0));
    assert_eq!(a.find_cached(&mut cache, &req).map(|m| m.route), Some(0));
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(b.find_cached(&mut cache, &req).map(|m| m.route), Some(1));
    // Scheme is part of the key: https is a separate entry.
    let tls = Request { https: true, ..req };
    assert_eq!(b.find_cached(&mut cache, &tls).map(|m| m.route), Some(1));
    assert_eq!(cache.len(), (2, 0));
}
