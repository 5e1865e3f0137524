//! correlation-id, cors and request-size-limiting behaviours documented by Kong (spec
//! `03-plugins/{11-correlation-id,13-cors,12-request-size-limiting}`).
mod common;
use common::*;

use http::{HeaderMap, HeaderValue};

fn with(name: &str, cfg: &str) -> gatehouse_plugins::Plugins {
    plugins(&format!(
        "{BASE}plugins:\n- name: {name}\n  route: r0\n  config: {cfg}\n"
    ))
}

#[test]
fn correlation_id() {
    // default: uuid#counter into Kong-Request-ID upstream, nothing downstream
    let p = with("correlation-id", "{}");
    let a = run(&p, Req::get("/r0"));
    let b = run(&p, Req::get("/r0"));
    let (ia, ib) = (
        a.up("kong-request-id").unwrap(),
        b.up("kong-request-id").unwrap(),
    );
    let (ua, na) = ia.split_once('#').unwrap();
    let (ub, nb) = ib.split_once('#').unwrap();
    assert_eq!(ua, ub);
    assert_eq!(ua.len(), 36);
    assert!(nb.parse::<u64>().unwrap() > na.parse::<u64>().unwrap());
    assert!(a.resp("kong-request-id").is_none());

    // an incoming value is kept, and echoed
    let p = with(
        "correlation-id",
        "{header_name: X-Trace, echo_downstream: true, generator: uuid}",
    );
    let o = run(&p, Req::get("/r0").header("x-trace", "abc"));
    assert_eq!(o.up("x-trace"), Some("abc"));
    assert_eq!(o.resp("x-trace"), Some("abc"));
    // an empty one is replaced by a fresh uuid, the same up and down
    let o = run(&p, Req::get("/r0").header("x-trace", ""));
    let id = o.up("x-trace").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(o.resp("x-trace"), Some(id));
    assert_eq!(o.state.correlation_id.as_ref().unwrap(), id);

    // tracker
    let p = with("correlation-id", "{generator: tracker}");
    let o = run(&p, Req::get("/r0"));
    let t = o.up("kong-request-id").unwrap();
    assert_eq!(t.split('-').count(), 6, "{t}");
    assert!(t.starts_with("0.0.0.0-"));

    // echoed even when a later plugin exits
    let p = plugins(&format!("{BASE}plugins:\n- name: correlation-id\n  config: {{echo_downstream: true}}\n- name: key-auth\n"));
    let o = run(&p, Req::get("/r0"));
    assert_eq!(o.status.as_u16(), 401);
    assert!(o.resp("kong-request-id").unwrap().contains('#'));
}

#[test]
fn correlation_id_schema() {
    let cfg = config(&format!(
        "{BASE}plugins:\n- name: correlation-id\n  config: {{generator: nope}}\n"
    ));
    let errs = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new())
        .err()
        .unwrap()
        .errors;
    assert_eq!(errs[0].path_string(), "config.generator");
    assert_eq!(
        errs[0].message,
        "expected one of: uuid, uuid#counter, tracker"
    );
}

fn preflight(origin: &str) -> Req {
    Req::get("/r0")
        .method("OPTIONS")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
}

#[test]
fn cors_table() {
    struct Case {
        cfg: &'static str,
        req: fn() -> Req,
        status: u16,
        want: &'static [(&'static str, Option<&'static str>)],
    }
    let cases = [
        // preflight with defaults: 200, *, all methods, no max-age, no credentials
        Case {
            cfg: "{}",
            req: || preflight("http://a.test"),
            status: 200,
            want: &[
                ("access-control-allow-origin", Some("*")),
                (
                    "access-control-allow-methods",
                    Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"),
                ),
                ("access-control-max-age", None),
                ("access-control-allow-credentials", None),
                ("vary", None),
            ],
        },
        Case {
            cfg: "{origins: [\"http://a.test\"], methods: [GET, POST], headers: [x-a, x-b], max_age: 23, credentials: true}",
            req: || preflight("http://a.test"),
            status: 200,
            want: &[
                ("access-control-allow-origin", Some("http://a.test")),
                ("access-control-allow-methods", Some("GET,POST")),
                ("access-control-allow-headers", Some("x-a,x-b")),
                ("access-control-max-age", Some("23")),
                ("access-control-allow-credentials", Some("true")),
                ("vary", Some("Origin")),
            ],
        },
        // request headers are echoed when none are configured
        Case {
            cfg: "{}",
            req: || preflight("http://a.test").header("access-control-request-headers", "x-c"),
            status: 200,
            want: &[("access-control-allow-headers", Some("x-c"))],
        },
        // credentials with `*`: the origin is echoed instead
        Case {
            cfg: "{credentials: true}",
            req: || preflight("http://a.test"),
            status: 200,
            want: &[
                ("access-control-allow-origin", Some("http://a.test")),
                ("access-control-allow-credentials", Some("true")),
                ("vary", Some("Origin")),
            ],
        },
        // regex origins: by host when the entry has no ':'
        Case {
            cfg: "{origins: [\"http://x.test\", \"(.*[.])?example[.]org\"]}",
            req: || preflight("https://api.example.org"),
            status: 200,
            want: &[("access-control-allow-origin", Some("https://api.example.org"))],
        },
        Case {
            cfg: "{origins: [\"http://x.test\", \"(.*[.])?example[.]org\"]}",
            req: || preflight("https://example.org.evil.test"),
            status: 200,
            want: &[("access-control-allow-origin", None), ("vary", Some("Origin"))],
        },
        // default ports are normalised away
        Case {
            cfg: "{origins: [\"http://x.test\", \"https://y.test\"]}",
            req: || preflight("https://y.test:443"),
            status: 200,
            want: &[("access-control-allow-origin", Some("https://y.test"))],
        },
        // private network
        Case {
            cfg: "{private_network: true}",
            req: || preflight("http://a.test").header("access-control-request-private-network", "true"),
            status: 200,
            want: &[("access-control-allow-private-network", Some("true"))],
        },
        // not a preflight (no Access-Control-Request-Method): proxied, ACAO added
        Case {
            cfg: "{origins: [\"http://a.test\"], exposed_headers: [x-e]}",
            req: || Req::get("/r0").method("OPTIONS").header("origin", "http://a.test"),
            status: 200,
            want: &[
                ("access-control-allow-origin", Some("http://a.test")),
                ("access-control-expose-headers", Some("x-e")),
                ("access-control-allow-methods", None),
            ],
        },
        // preflight_continue: proxied, no CORS headers at all
        Case {
            cfg: "{preflight_continue: true}",
            req: || preflight("http://a.test"),
            status: 200,
            want: &[("access-control-allow-origin", None)],
        },
        // normal request without Origin: allow_origin_absent (default true) still adds *
        Case {
            cfg: "{}",
            req: || Req::get("/r0"),
            status: 200,
            want: &[("access-control-allow-origin", Some("*"))],
        },
        Case {
            cfg: "{allow_origin_absent: false}",
            req: || Req::get("/r0"),
            status: 200,
            want: &[("access-control-allow-origin", None)],
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let p = with("cors", c.cfg);
        let o = run(&p, (c.req)());
        assert_eq!(o.status.as_u16(), c.status, "case {i}");
        for (h, v) in c.want {
            assert_eq!(o.resp(h), *v, "case {i}: {h}");
        }
    }
    // a preflight answered by cors is an exit with an empty body
    let o = run(&with("cors", "{}"), preflight("http://a.test"));
    assert!(o.exit.as_ref().unwrap().body.is_empty());
    assert!(run(
        &with("cors", "{preflight_continue: true}"),
        preflight("http://a.test")
    )
    .exit
    .is_none());
}

#[test]
fn cors_vary_is_appended_to_upstream_vary() {
    let p = with("cors", "{origins: [\"http://a.test\"]}");
    let mut up = HeaderMap::new();
    up.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    let o = run_resp(&p, Req::get("/r0").header("origin", "http://a.test"), up);
    let vary: Vec<_> = o.response.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
}

#[test]
fn cors_schema() {
    let cfg = config(&format!(
        "{BASE}plugins:\n- name: cors\n  config: {{origins: [\"(\"], methods: [GET, FETCH]}}\n"
    ));
    let errs = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new())
        .err()
        .unwrap()
        .errors;
    let got: Vec<_> = errs
        .iter()
        .map(|e| (e.path_string(), e.message.clone()))
        .collect();
    assert!(
        got.contains(&(
            "config.origins[0]".into(),
            "'(' is not a valid regex".into()
        )),
        "{got:?}"
    );
    assert!(got
        .iter()
        .any(|(p, m)| p == "config.methods[1]" && m.starts_with("expected one of: GET")));
}

#[test]
fn request_size_limiting_table() {
    struct Case {
        cfg: &'static str,
        headers: &'static [(&'static str, &'static str)],
        status: u16,
        message: Option<&'static str>,
        limit: Option<u64>,
    }
    let cases = [
        Case {
            cfg: "{allowed_payload_size: 10, size_unit: bytes}",
            headers: &[("content-length", "10")],
            status: 200,
            message: None,
            limit: None,
        },
        Case {
            cfg: "{allowed_payload_size: 10, size_unit: bytes}",
            headers: &[("content-length", "11")],
            status: 413,
            message: Some("Request size limit exceeded"),
            limit: None,
        },
        Case {
            cfg: "{allowed_payload_size: 10, size_unit: bytes}",
            headers: &[("content-length", "11"), ("expect", "100-Continue")],
            status: 417,
            message: Some("Request size limit exceeded"),
            limit: None,
        },
        Case {
            cfg: "{allowed_payload_size: 1, size_unit: kilobytes}",
            headers: &[("content-length", "1025")],
            status: 413,
            message: Some("Request size limit exceeded"),
            limit: None,
        },
        Case {
            cfg: "{}",
            headers: &[("content-length", "134217728")],
            status: 200,
            message: None,
            limit: None,
        },
        Case {
            cfg: "{}",
            headers: &[("content-length", "134217729")],
            status: 413,
            message: Some("Request size limit exceeded"),
            limit: None,
        },
        // no Content-Length: the proxy enforces the limit while streaming
        Case {
            cfg: "{allowed_payload_size: 2, size_unit: kilobytes}",
            headers: &[("transfer-encoding", "chunked")],
            status: 200,
            message: None,
            limit: Some(2048),
        },
        Case {
            cfg: "{require_content_length: true}",
            headers: &[],
            status: 411,
            message: Some("A valid Content-Length header is required"),
            limit: None,
        },
        Case {
            cfg: "{require_content_length: true}",
            headers: &[("content-length", "x")],
            status: 411,
            message: Some("A valid Content-Length header is required"),
            limit: None,
        },
        Case {
            cfg: "{require_content_length: true, allowed_payload_size: 1}",
            headers: &[("transfer-encoding", "chunked")],
            status: 200,
            message: None,
            limit: Some(1_048_576),
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let p = with("request-size-limiting", c.cfg);
        let mut r = Req::get("/r0").method("POST");
        for (k, v) in c.headers {
            r = r.header(k, v);
        }
        let o = run(&p, r);
        assert_eq!(o.status.as_u16(), c.status, "case {i}");
        if let Some(m) = c.message {
            assert_eq!(o.body()["message"], m, "case {i}");
            assert_eq!(o.body()["request_id"], "rid-1", "case {i}");
        }
        assert_eq!(p.request_body_limit(&o.state), c.limit, "case {i}");
        if c.limit.is_some() {
            let x =
                p.request_body_too_large(&o.state, gatehouse_plugins::ErrorCtx::new("rid-2", None));
            assert_eq!(x.status.as_u16(), 413);
        }
    }
}
