//! The expressions flavor: hand-derived tables for Kong's semantics, plus atc-router 1.7.1
//! (Kong's own engine, a dev-dependency) as a differential oracle for parsing, validation and
//! matching.

mod common;

use std::net::{IpAddr, SocketAddr};

use atc_router::ast::{Type, Value};
use atc_router::context::Context;
use atc_router::schema::Schema;
use common::*;
use gatehouse_config::{Protocol, Route, RouterFlavor};
use gatehouse_router::expr::Expr;
use gatehouse_router::{Headers, Match, Request, RequestExtra, Router, RouterError};
use uuid::Uuid;

/// Kong's HTTP schema (`kong/router/fields.lua`).
fn schema() -> Schema {
    let mut s = Schema::default();
    for f in [
        "net.protocol",
        "tls.sni",
        "http.method",
        "http.host",
        "http.path",
        "http.path.segments.*",
        "http.headers.*",
        "http.queries.*",
    ] {
        s.add_field(f, Type::String);
    }
    for f in ["net.src.port", "net.dst.port", "http.path.segments.len"] {
        s.add_field(f, Type::Int);
    }
    for f in ["net.src.ip", "net.dst.ip"] {
        s.add_field(f, Type::IpAddr);
    }
    s
}

fn oracle_valid(src: &str) -> bool {
    let s = schema();
    let mut r = atc_router::router::Router::new(&s);
    r.add_matcher(0, Uuid::nil(), src).is_ok()
}

#[test]
fn validity_agrees_with_atc_router() {
    let cases = [
        r#"http.path == "/a""#,
        r#"http.path=="/a""#,
        r##"http.path ^= r#"/a\d"#"##,
        r#"http.path ~ "^/a\\d+$""#,
        r#"http.path ~ "^/a\d+$""#,
        r#"http.path ~ "(unclosed""#,
        r#"http.path ~ 3"#,
        r#"http.path > 3"#,
        r#"http.path.segments.len > 0x10"#,
        r#"net.dst.port == 0777"#,
        r#"net.dst.port == 0789"#,
        r#"net.dst.port == 089"#,
        r#"net.dst.port == -12"#,
        r#"net.dst.port == 99999999999999999999"#,
        r#"net.src.ip in 10.0.0.0/8"#,
        r#"net.src.ip in 10.0.0.1/8"#,
        r#"net.src.ip in 10.0.0.0/33"#,
        r#"net.src.ip not in fe80::/10"#,
        r#"net.src.ip == ::1"#,
        r#"net.src.ip == 10.0.0.0/8"#,
        r#"net.src.ip in 10.0.0.1"#,
        r#"net.src.ip == 256.0.0.1"#,
        r#"lower(net.src.port) == 1"#,
        r#"lower(http.headers.x_a) == "b""#,
        r#"any(lower(http.headers.x_a)) == "b""#,
        r#"upper(http.path) == "b""#,
        r#"http.foo == "b""#,
        r#"http.path == "a" && !(http.host == "b")"#,
        r#"!http.path == "a""#,
        r#"(http.path == "a" || http.path == "b") && http.method == "GET""#,
        r#"http.path == "a" &&"#,
        r#"http.path == "a" ||| http.path == "b""#,
        r#"http.path == "a\q""#,
        r#"http.path == "a\"b\\c\n\r\t""#,
        r#"http.path contains "x""#,
        r#"http.host =^ ".com""#,
        r#"  http.path  ==  "a"  "#,
        r#"http.path == "unterminated"#,
        r#"http.queries.foo == "1""#,
        r#"tls.sni == "a" && net.protocol == "https""#,
        r#"((((http.path == "a"))))"#,
        r#"http.path == "a" && ()"#,
        "",
        "!()",
    ];
    for src in cases {
        let ours = Expr::parse(src);
        assert_eq!(
            ours.is_ok(),
            oracle_valid(src),
            "{src:?}: ours = {:?}",
            ours.err()
        );
    }
}

/// atc-router panics on `not` and `in` not separated by exactly one space; we reject them.
#[test]
fn not_in_spellings() {
    assert!(Expr::parse("net.src.ip notin fe80::/10").is_err());
    assert!(Expr::parse("net.src.ip not  in fe80::/10").is_err());
    assert!(Expr::parse("net.src.ip not in fe80::/10").is_ok());
}

#[test]
fn errors_name_route_field_and_position() {
    let mut r = route(1);
    r.name = Some("bad".into());
    r.expression = Some("http.path == \"/a\" &&\n  http.path > 3".into());
    let err = Router::build(&config(vec![r]), RouterFlavor::Expressions).unwrap_err();
    match err {
        RouterError::Expression {
            route,
            field,
            error,
        } => {
            assert_eq!(route, "bad");
            assert_eq!(field, "expression");
            assert_eq!((error.line, error.column), (2, 15));
            assert!(error.message.contains("Type mismatch"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
}

struct Q {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    https: bool,
    sni: Option<&'static str>,
    src: Option<&'static str>,
    query: Option<&'static str>,
}

const Q0: Q = Q {
    method: "GET",
    host: "example.com",
    path: "/",
    headers: &[],
    https: false,
    sni: None,
    src: None,
    query: None,
};

fn expr_route(id: u128, e: &str, prio: u64) -> Route {
    let mut r = route(id);
    r.expression = Some(e.into());
    r.priority = Some(prio);
    r
}

fn run_q(router: &Router, q: &Q) -> Option<Match> {
    let headers: &dyn Headers = &q.headers;
    let req = Request {
        method: q.method,
        host: q.host,
        dst_port: 8000,
        path: q.path,
        sni: q.sni,
        https: q.https,
        headers,
    };
    let mut extra = RequestExtra::default();
    if let Some(s) = q.src {
        let src: SocketAddr = s.parse().unwrap();
        extra = extra.with_net(src, IpAddr::from([127, 0, 0, 1]));
    }
    if let Some(qs) = q.query {
        extra = extra.with_query(qs);
    }
    let got = router.find_with(&req, &extra);
    assert_eq!(got, router.find_linear(&req, &extra));
    got
}

/// (expression, request, matches?)
#[test]
fn semantics_table() {
    let h: &[(&str, &str)] = &[("x-a", "One"), ("x-a", "two")];
    let h: &'static [(&'static str, &'static str)] = Box::leak(h.to_vec().into_boxed_slice());
    let cases: Vec<(&str, Q, bool)> = vec![
        // || binds tighter than &&: a && (b || c)
        (
            r#"http.method == "POST" && http.path == "/" || http.host == "example.com""#,
            Q0,
            false,
        ),
        (
            r#"http.host == "example.com" || http.path == "/x" && http.method == "GET""#,
            Q0,
            true,
        ),
        (r#"!(http.method == "POST")"#, Q0, true),
        // all values must match without any()
        (
            r#"lower(http.headers.x_a) == "one""#,
            Q { headers: h, ..Q0 },
            false,
        ),
        (
            r#"any(lower(http.headers.x_a)) == "one""#,
            Q { headers: h, ..Q0 },
            true,
        ),
        (r#"http.headers.x_a != "zzz""#, Q { headers: h, ..Q0 }, true),
        // missing field: false even for != / not in
        (r#"http.headers.x_b != "zzz""#, Q0, false),
        (r#"net.src.ip not in 10.0.0.0/8"#, Q0, false),
        (
            r#"net.src.ip not in 10.0.0.0/8"#,
            Q {
                src: Some("192.168.1.1:5000"),
                ..Q0
            },
            true,
        ),
        (
            r#"net.src.ip in 10.0.0.0/8 && net.src.port == 0x1388"#,
            Q {
                src: Some("10.1.2.3:5000"),
                ..Q0
            },
            true,
        ),
        (
            r#"net.src.ip == ::1"#,
            Q {
                src: Some("[::1]:1"),
                ..Q0
            },
            true,
        ),
        (
            r#"http.path.segments.0 == "a""#,
            Q {
                path: "/a/b/c/",
                ..Q0
            },
            true,
        ),
        (
            r#"http.path.segments.1_2 == "b/c""#,
            Q {
                path: "/a/b/c/",
                ..Q0
            },
            true,
        ),
        (
            r#"http.path.segments.len == 3"#,
            Q {
                path: "/a/b/c/",
                ..Q0
            },
            true,
        ),
        (
            r#"http.path.segments.3 == """#,
            Q {
                path: "/a/b/c/",
                ..Q0
            },
            false,
        ),
        (
            r#"http.queries.q == "a b""#,
            Q {
                query: Some("x=1&q=a+b"),
                ..Q0
            },
            true,
        ),
        (
            r#"http.queries.flag == """#,
            Q {
                query: Some("flag&x=1"),
                ..Q0
            },
            true,
        ),
        (
            r#"http.queries.q == "1""#,
            Q {
                query: Some("q=1&q=2"),
                ..Q0
            },
            false,
        ),
        (
            r#"any(http.queries.q) == "2""#,
            Q {
                query: Some("q=1&q=2"),
                ..Q0
            },
            true,
        ),
        (
            r#"tls.sni == "a.com""#,
            Q {
                https: true,
                sni: Some("a.com"),
                ..Q0
            },
            true,
        ),
        (r#"net.protocol == "https""#, Q0, false),
        (
            r#"http.host == "example.com""#,
            Q {
                host: "example.com:8443",
                ..Q0
            },
            true,
        ),
        (
            r#"net.dst.port == 8443"#,
            Q {
                host: "example.com:8443",
                ..Q0
            },
            true,
        ),
        (r#"net.port == 8000"#, Q0, true),
        (
            r#"lower(http.path) == "/straße""#,
            Q {
                path: "/STRASSE",
                ..Q0
            },
            false,
        ),
        (
            r#"lower(http.path) == "/ärger""#,
            Q {
                path: "/ÄRGER",
                ..Q0
            },
            true,
        ),
    ];
    for (e, q, want) in cases {
        let mut r = expr_route(1, e, 0);
        r.protocols = vec![Protocol::Https]; // no added protocol predicate
        let router = Router::build(&config(vec![r]), RouterFlavor::Expressions)
            .unwrap_or_else(|err| panic!("{e}: {err}"));
        assert_eq!(run_q(&router, &q).is_some(), want, "{e}");
    }
}

#[test]
fn priority_protocols_and_strip_path() {
    let routes = vec![
        route(1).paths(&["/api/v1/long/prefix"]),
        expr_route(2, r#"http.path ^= "/api""#, 0),
        expr_route(3, r#"http.path ~ "^/api/v\\d+""#, 5),
        {
            let mut r = expr_route(4, r#"http.path == "/api/x""#, 5);
            r.protocols = vec![Protocol::Http];
            r
        },
    ];
    let router = Router::build(&config(routes), RouterFlavor::Expressions).unwrap();
    // Expression routes outrank classic ones; priority 5 beats 0; regex strips its match.
    let m = run_q(
        &router,
        &Q {
            path: "/api/v12/long/prefix",
            ..Q0
        },
    )
    .unwrap();
    assert_eq!((m.route, m.strip_len), (2, "/api/v12".len()));
    let m = run_q(
        &router,
        &Q {
            path: "/api/zz",
            ..Q0
        },
    )
    .unwrap();
    assert_eq!((m.route, m.strip_len), (1, "/api".len()));
    // Same priority 5: the larger UUID (route 4) is evaluated first, but only over http.
    assert_eq!(
        run_q(
            &router,
            &Q {
                path: "/api/x",
                ..Q0
            }
        )
        .unwrap()
        .route,
        3
    );
    let m = run_q(
        &router,
        &Q {
            path: "/api/x",
            https: true,
            ..Q0
        },
    )
    .unwrap();
    assert_eq!(m.route, 1);
    let e = router.explain(&Request {
        method: "GET",
        host: "h",
        dst_port: 80,
        path: "/api/v1/long/prefix",
        sni: None,
        https: false,
        headers: &gatehouse_router::NoHeaders,
    });
    assert_eq!(e.winner.unwrap().route, 2);
    assert!(e.shadowed.iter().any(|c| c.route == 0));
}

/// Every (expression, request) pair: same verdict and same matched `http.path` as atc-router.
#[test]
fn matching_agrees_with_atc_router() {
    let exprs = [
        r#"http.path ^= "/a" && http.method == "GET""#,
        r#"http.path == "/a/b" || http.path ~ "b$" && http.host =^ ".com""#,
        r#"any(lower(http.headers.x_t)) ~ "^v[0-9]" && !(http.path contains "x")"#,
        r#"lower(http.headers.x_t) != "v1""#,
        r#"http.headers.x_t == "v1" || http.host ^= "api.""#,
        r#"http.path ~ "/(?P<n>[a-z]+)$""#,
        r#"net.protocol == "http" && http.path ^= "/""#,
        r#"tls.sni =^ ".com" && !(http.method == "POST" || http.method == "PUT")"#,
    ];
    let paths = ["/", "/a", "/a/b", "/ax", "/zz/b", "/Ab"];
    let hosts = ["a.com", "api.x", "b.org"];
    let hdrs: [&[(&str, &str)]; 4] = [
        &[],
        &[("x-t", "v1")],
        &[("x-t", "V2"), ("x-t", "v1")],
        &[("x-t", "q")],
    ];
    let s = schema();
    for e in exprs {
        let mut r = expr_route(1, e, 0);
        r.protocols = vec![Protocol::Https];
        r.strip_path = true;
        let ours = Router::build(&config(vec![r]), RouterFlavor::Expressions).unwrap();
        let mut atc = atc_router::router::Router::new(&s);
        atc.add_matcher(0, Uuid::nil(), e).unwrap();
        for path in paths {
            for host in hosts {
                for h in hdrs {
                    for (https, method) in [(false, "GET"), (true, "POST")] {
                        let mut cx = Context::new(&s);
                        cx.add_value("http.path", Value::String(path.into()));
                        cx.add_value("http.host", Value::String(host.into()));
                        cx.add_value("http.method", Value::String(method.into()));
                        let proto = if https { "https" } else { "http" };
                        cx.add_value("net.protocol", Value::String(proto.into()));
                        if https {
                            cx.add_value("tls.sni", Value::String(host.into()));
                        }
                        for (_, v) in h {
                            cx.add_value("http.headers.x_t", Value::String((*v).into()));
                        }
                        let want = atc.execute(&mut cx);
                        let want_strip =
                            cx.result
                                .as_ref()
                                .and_then(|m| match m.matches.get("http.path") {
                                    Some(Value::String(s)) => Some(s.len()),
                                    _ => None,
                                });
                        let headers: &dyn Headers = &h;
                        let req = Request {
                            method,
                            host,
                            dst_port: 8000,
                            path,
                            sni: https.then_some(host),
                            https,
                            headers,
                        };
                        let got = ours.find(&req);
                        assert_eq!(
                            got.is_some(),
                            want,
                            "{e} {method} {host} {path} {h:?} https={https}"
                        );
                        if let Some(m) = got {
                            assert_eq!(m.strip_len, want_strip.unwrap_or(0), "{e} {path}");
                        }
                    }
                }
            }
        }
    }
}
