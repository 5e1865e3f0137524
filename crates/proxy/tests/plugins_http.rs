//! cors, correlation-id and request-size-limiting through the real proxy: what the client
//! and the upstream see.

mod support;

use support::*;

fn config(up: &Upstream) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
- name: svc
  url: http://{addr}
  routes:
  - name: cors
    paths: [/cors]
    plugins:
    - name: cors
      config:
        origins: ["http://allowed.com", "(.*)\\.example\\.org"]
        credentials: true
        max_age: 3600
        exposed_headers: [X-My-Header, X-Other]
        headers: [X-Custom]
        methods: [GET, POST]
  - name: cors-star
    paths: [/cors-star]
    plugins:
    - name: cors
  - name: cors-star-credentials
    paths: [/cors-cred]
    plugins:
    - name: cors
      config: {{origins: ["*"], credentials: true}}
  - name: cors-continue
    paths: [/cors-continue]
    plugins:
    - name: cors
      config: {{preflight_continue: true}}
  - name: cid-uuid
    paths: [/cid-uuid]
    plugins:
    - name: correlation-id
      config: {{generator: uuid, header_name: X-Request-ID, echo_downstream: true}}
  - name: cid-counter
    paths: [/cid-counter]
    plugins:
    - name: correlation-id
  - name: cid-tracker
    paths: [/cid-tracker]
    plugins:
    - name: correlation-id
      config: {{generator: tracker, echo_downstream: true}}
  - name: cid-auth
    paths: [/cid-auth]
    plugins:
    - name: correlation-id
      config: {{echo_downstream: true}}
    - name: key-auth
  - name: size-bytes
    paths: [/size-b]
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 10, size_unit: bytes}}
  - name: size-kilobytes
    paths: [/size-k]
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 1, size_unit: kilobytes}}
  - name: size-required
    paths: [/size-req]
    plugins:
    - name: request-size-limiting
      config: {{require_content_length: true}}
"#,
        addr = up.addr
    )
}

fn preflight<'a>(origin: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("origin", origin), ("access-control-request-method", "GET")];
    h.extend_from_slice(extra);
    h
}

#[test]
fn cors_preflight_table() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let all_methods = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";
    // (path, origin, request headers, expected response headers; None = absent)
    type Expect = [(&'static str, Option<&'static str>); 6];
    let cases: [(&str, &str, &str, Expect); 6] = [
        (
            "/cors",
            "http://allowed.com",
            "X-Anything",
            [
                ("access-control-allow-origin", Some("http://allowed.com")),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-allow-methods", Some("GET,POST")),
                ("access-control-allow-headers", Some("X-Custom")),
                ("access-control-max-age", Some("3600")),
                ("vary", Some("Origin")),
            ],
        ),
        (
            "/cors",
            "https://api.example.org",
            "",
            [
                (
                    "access-control-allow-origin",
                    Some("https://api.example.org"),
                ),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-allow-methods", Some("GET,POST")),
                ("access-control-allow-headers", Some("X-Custom")),
                ("access-control-max-age", Some("3600")),
                ("vary", Some("Origin")),
            ],
        ),
        (
            "/cors",
            "http://evil.com",
            "",
            [
                ("access-control-allow-origin", None),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-allow-methods", Some("GET,POST")),
                ("access-control-allow-headers", Some("X-Custom")),
                ("access-control-max-age", Some("3600")),
                ("vary", Some("Origin")),
            ],
        ),
        (
            "/cors",
            "http://example.org.evil.com",
            "",
            [
                ("access-control-allow-origin", None),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-allow-methods", Some("GET,POST")),
                ("access-control-allow-headers", Some("X-Custom")),
                ("access-control-max-age", Some("3600")),
                ("vary", Some("Origin")),
            ],
        ),
        (
            "/cors-star",
            "http://any.com",
            "X-A, X-B",
            [
                ("access-control-allow-origin", Some("*")),
                ("access-control-allow-credentials", None),
                ("access-control-allow-methods", Some(all_methods)),
                ("access-control-allow-headers", Some("X-A, X-B")),
                ("access-control-max-age", None),
                ("vary", None),
            ],
        ),
        (
            "/cors-cred",
            "http://any.com",
            "",
            [
                ("access-control-allow-origin", Some("http://any.com")),
                ("access-control-allow-credentials", Some("true")),
                ("access-control-allow-methods", Some(all_methods)),
                ("access-control-allow-headers", None),
                ("access-control-max-age", None),
                ("vary", Some("Origin")),
            ],
        ),
    ];
    for (path, origin, req_headers, expect) in cases {
        let extra: Vec<(&str, &str)> = if req_headers.is_empty() {
            vec![]
        } else {
            vec![("access-control-request-headers", req_headers)]
        };
        let r = send(gw.addr, "OPTIONS", path, &preflight(origin, &extra), "");
        assert_eq!(r.status, 200, "{path} {origin}");
        assert_eq!(r.body, "", "{path}: preflight answered without a body");
        for (name, value) in expect {
            assert_eq!(r.header(name), value, "{path} {origin}: {name}");
        }
    }
    assert_eq!(up.hits(), 0, "preflights never reach the upstream");

    // preflight_continue: proxied as a plain OPTIONS, no CORS headers added.
    let r = send(
        gw.addr,
        "OPTIONS",
        "/cors-continue",
        &preflight("http://a.com", &[]),
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(up.hits(), 1);
}

#[test]
fn cors_on_proxied_responses() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let r = get(gw.addr, "/cors", &[("origin", "http://allowed.com")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://allowed.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-My-Header,X-Other")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        None,
        "preflight only"
    );
    assert_eq!(r.header("access-control-max-age"), None, "preflight only");

    let r = get(gw.addr, "/cors", &[("origin", "http://evil.com")]);
    assert_eq!(r.status, 200, "CORS does not block; the browser does");
    assert_eq!(r.header("access-control-allow-origin"), None);

    let r = get(gw.addr, "/cors-star", &[("origin", "http://x.com")]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);

    let r = get(gw.addr, "/cors-cred", &[("origin", "http://x.com")]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://x.com"),
        "credentials with `*`: the origin is echoed"
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(up.hits(), 4);
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[test]
fn correlation_id_generators_and_echo() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));

    let a = get(gw.addr, "/cid-uuid", &[]);
    let b = get(gw.addr, "/cid-uuid", &[]);
    let ida = a.upstream_header("x-request-id").expect("sent upstream");
    let idb = b.upstream_header("x-request-id").expect("sent upstream");
    assert!(is_uuid(&ida), "{ida}");
    assert_ne!(ida, idb, "a new id per request");
    assert_eq!(
        a.header("x-request-id"),
        Some(ida.as_str()),
        "echo_downstream"
    );

    let r = get(gw.addr, "/cid-uuid", &[("x-request-id", "from-client")]);
    assert_eq!(
        r.upstream_header("x-request-id").as_deref(),
        Some("from-client")
    );
    assert_eq!(
        r.header("x-request-id"),
        Some("from-client"),
        "kept and echoed"
    );

    let r = get(gw.addr, "/cid-counter", &[]);
    let id = r
        .upstream_header("kong-request-id")
        .expect("default header name");
    let (uuid, n) = id.split_once('#').expect("uuid#counter");
    assert!(is_uuid(uuid), "{id}");
    assert!(n.parse::<u64>().is_ok(), "{id}");
    assert_eq!(
        r.header("kong-request-id"),
        None,
        "echo_downstream is off by default"
    );

    let r = get(gw.addr, "/cid-tracker", &[]);
    let id = r.upstream_header("kong-request-id").expect("tracker id");
    let fields: Vec<&str> = id.split('-').collect();
    assert_eq!(
        fields.len(),
        6,
        "addr-port-pid-connection-requests-time: {id}"
    );
    assert_eq!(fields[0], "127.0.0.1", "{id}");
    assert_eq!(fields[1], gw.addr.port().to_string(), "{id}");
    assert_eq!(r.header("kong-request-id"), Some(id.as_str()));

    // An early exit by a later plugin still carries the echoed id.
    let r = get(gw.addr, "/cid-auth", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("kong-request-id").is_some_and(|v| v.contains('#')));
}

fn post_raw(gw: &Gateway, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{headers}\r\n{body}"
    );
    raw(gw.addr, req.as_bytes())
}

#[test]
fn request_size_limiting_table() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(&up));
    let msg = "Request size limit exceeded";
    // (path, body length, status)
    let cases: [(&str, usize, u16); 5] = [
        ("/size-b", 10, 200),
        ("/size-b", 11, 413),
        ("/size-k", 1024, 200),
        ("/size-k", 1025, 413),
        ("/size-req", 3, 200),
    ];
    for (path, len, status) in cases {
        let body = "x".repeat(len);
        let r = send(gw.addr, "POST", path, &[], &body);
        assert_eq!(r.status, status, "{path} {len}: {}", r.body);
        if status == 413 {
            assert_eq!(r.json()["message"], msg);
            assert!(r.json()["request_id"].is_string());
        } else {
            assert_eq!(r.json()["body"].as_str().map(str::len), Some(len));
        }
    }
    let hits = up.hits();

    // Chunked bodies are counted while they stream.
    let te = "transfer-encoding: chunked\r\n";
    let (status, _, body) = post_raw(&gw, "/size-b", te, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(msg), "{body}");
    let (status, _, body) = post_raw(&gw, "/size-b", te, "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"body\":\"helloworld\""), "{body}");

    // Expect: 100-continue with a body too large: 417.
    let (status, _, body) = post_raw(
        &gw,
        "/size-b",
        "content-length: 20\r\nexpect: 100-continue\r\n",
        "01234567890123456789",
    );
    assert_eq!(status, 417, "{body}");

    // require_content_length: neither Content-Length nor chunked → 411.
    let req = "GET /size-req HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let (status, _, body) = raw(gw.addr, req.as_bytes());
    assert_eq!(status, 411, "{body}");
    assert!(
        body.contains("A valid Content-Length header is required"),
        "{body}"
    );
    assert_eq!(
        up.hits(),
        hits + 1,
        "only the small chunked body was proxied"
    );
}
