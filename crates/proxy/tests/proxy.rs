//! The proxy end to end: real sockets, a real echo upstream, a real HTTP client.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::*;

/// A routing table row: method, path, request headers, status, upstream that answered.
type Row = (
    &'static str,
    &'static str,
    Headers,
    u16,
    Option<&'static str>,
);
type Headers = &'static [(&'static str, &'static str)];

fn one_service(upstream: &Upstream, route: &str) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
- name: echo
  url: http://{addr}
  routes:
{route}
"#,
        addr = upstream.addr,
        route = route
    )
}

#[test]
fn proxies_to_the_service_with_kong_headers() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - name: r\n    paths: [/echo]"));
    let r = get(
        gw.addr,
        "/echo/x?q=1&b",
        &[("host", "example.test"), ("x-custom", "v")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["method"], "GET");
    assert_eq!(j["uri"], "/x?q=1&b", "strip_path is on by default");
    let host = format!("{}", up.addr);
    assert_eq!(
        j["headers"]["host"],
        host.as_str(),
        "Host is the service's unless preserve_host"
    );
    assert_eq!(j["headers"]["x-custom"], "v");
    assert_eq!(j["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(j["headers"]["x-real-ip"], "127.0.0.1");
    assert_eq!(j["headers"]["x-forwarded-proto"], "http");
    assert_eq!(j["headers"]["x-forwarded-host"], "example.test");
    assert_eq!(
        j["headers"]["x-forwarded-port"],
        gw.addr.port().to_string().as_str()
    );
    assert_eq!(j["headers"]["x-forwarded-path"], "/echo/x");
    assert_eq!(j["headers"]["x-forwarded-prefix"], "/echo");
    assert_eq!(
        j["headers"]["x-kong-request-id"].as_str().map(str::len),
        Some(32)
    );
    assert!(r
        .header("via")
        .is_some_and(|v| v.starts_with("1.1 gatehouse/")));
    assert!(r.header("x-kong-upstream-latency").is_some());
    assert!(r.header("x-kong-proxy-latency").is_some());
    assert_eq!(r.header("x-upstream"), Some("a"));
    assert_eq!(up.hits(), 1);
}

#[test]
fn hop_by_hop_headers_stop_at_the_gateway() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(
        &up,
        "  - paths: [/hop-by-hop]\n    strip_path: false",
    ));
    let r = get(
        gw.addr,
        "/hop-by-hop",
        &[
            ("connection", "keep-alive, X-Drop-Me, x-drop-too"),
            ("x-drop-me", "1"),
            ("x-drop-too", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-keep", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = &r.json()["headers"];
    // (header, forwarded upstream?)
    for (name, kept) in [
        ("x-keep", true),
        ("x-drop-me", false),
        ("x-drop-too", false),
        ("keep-alive", false),
        ("proxy-connection", false),
    ] {
        assert_eq!(
            seen.get(name).is_some(),
            kept,
            "request header {name}: {seen}"
        );
    }
    // (header, passed to the client?)
    for (name, kept) in [
        ("x-up-keep", true),
        ("x-up-drop", false),
        ("keep-alive", false),
        ("proxy-connection", false),
    ] {
        assert_eq!(r.header(name).is_some(), kept, "response header {name}");
    }
}

#[test]
fn no_route_is_kongs_404() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - paths: [/only]"));
    let r = get(gw.addr, "/elsewhere", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no Route matched with those values");
    assert!(r.json()["request_id"].is_string());
    assert!(r.header("x-kong-response-latency").is_some());
    assert!(r
        .header("server")
        .is_some_and(|v| v.starts_with("gatehouse/")));
    assert_eq!(up.hits(), 0);
}

#[test]
fn upstream_paths_follow_kongs_v0_rules() {
    // (service path, route path, strip_path, request, upstream sees)
    let cases = [
        ("/", "/route", true, "/routereq", "/req"),
        ("/", "/route", true, "/route/", "/"),
        ("/srv", "/rou", false, "/roureq", "/srv/roureq"),
        ("/srv", "/rou", true, "/roureq", "/srv/req"),
        ("/srv/", "/rou", true, "/rou", "/srv"),
        ("/service", "/route", true, "/route/", "/service/"),
        (
            "/service",
            "/route",
            true,
            "/route%2E%2E/req",
            "/service/req",
        ),
        (
            "/service",
            "/route",
            false,
            "/route%2E/req",
            "/service/route./req",
        ),
        ("/", "/a", true, "/a/b%20c?x=%20y", "/b%20c?x=%20y"),
        ("/", "/a", true, "/a/b?", "/b?"),
    ];
    let up = Upstream::start("a");
    for (svc_path, route_path, strip, request, expected) in cases {
        let yaml = format!(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}{}\n  routes:\n  - paths: [\"{}\"]\n    strip_path: {}\n",
            up.addr, svc_path, route_path, strip
        );
        let gw = Gateway::start(&yaml);
        let r = get(gw.addr, request, &[]);
        assert_eq!(
            r.status, 200,
            "{svc_path} {route_path} {strip} {request}: {}",
            r.body
        );
        assert_eq!(
            r.json()["uri"],
            expected,
            "{svc_path} {route_path} strip={strip} {request}"
        );
    }
}

#[test]
fn preserve_host_sends_the_clients_host() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - paths: [/]\n    preserve_host: true"));
    let r = get(gw.addr, "/", &[("host", "Client.Example:8080")]);
    assert_eq!(
        r.upstream_header("host").as_deref(),
        Some("Client.Example:8080")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("client.example")
    );
}

#[test]
fn routes_by_host_method_and_header() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let yaml = format!(
        r#"
_format_version: "3.0"
services:
- name: a
  url: http://{a}
  routes:
  - hosts: ["*.example.com"]
- name: b
  url: http://{b}
  routes:
  - hosts: ["api.example.com"]
    methods: [POST]
  - headers:
      x-version: ["2"]
    paths: [/]
"#,
        a = a.addr,
        b = b.addr
    );
    let gw = Gateway::start(&yaml);
    let cases: [Row; 5] = [
        ("GET", "/", &[("host", "api.example.com")], 200, Some("a")),
        ("POST", "/", &[("host", "api.example.com")], 200, Some("b")),
        (
            "GET",
            "/",
            &[("host", "other.test"), ("x-version", "2")],
            200,
            Some("b"),
        ),
        (
            "GET",
            "/",
            &[("host", "other.test"), ("x-version", "3")],
            404,
            None,
        ),
        ("GET", "/", &[("host", "API.example.com")], 200, Some("a")),
    ];
    for (method, path, headers, status, upstream) in cases {
        let r = send(gw.addr, method, path, headers, "");
        assert_eq!(r.status, status, "{method} {path} {headers:?}: {}", r.body);
        assert_eq!(
            r.header("x-upstream"),
            upstream,
            "{method} {path} {headers:?}"
        );
    }
}

#[test]
fn upstream_targets_share_load_by_weight() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let yaml = format!(
        r#"
_format_version: "3.0"
upstreams:
- name: pool.internal
  targets:
  - target: {a}
    weight: 300
  - target: {b}
    weight: 100
services:
- name: s
  host: pool.internal
  routes:
  - paths: [/]
"#,
        a = a.addr,
        b = b.addr
    );
    let gw = Gateway::start(&yaml);
    for _ in 0..40 {
        assert_eq!(get(gw.addr, "/", &[]).status, 200);
    }
    assert_eq!((a.hits(), b.hits()), (30, 10));
    assert_eq!(
        get(gw.addr, "/", &[]).upstream_header("host").as_deref(),
        Some("pool.internal")
    );
}

#[test]
fn unreachable_upstream_is_502_after_retries_and_dead_targets_are_skipped() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let live = Upstream::start("live");
    let gw = Gateway::start(&format!(
        r#"
_format_version: "3.0"
upstreams:
- name: mixed
  targets:
  - target: {dead}
  - target: {live}
services:
- name: down
  url: http://{dead}
  retries: 2
  routes:
  - paths: [/down]
- name: mixed
  host: mixed
  routes:
  - paths: [/mixed]
"#,
        dead = dead,
        live = live.addr
    ));
    let r = get(gw.addr, "/down", &[]);
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["message"],
        "An invalid response was received from the upstream server"
    );
    for _ in 0..6 {
        assert_eq!(
            get(gw.addr, "/mixed", &[]).status,
            200,
            "the retry moves to the next target"
        );
    }
}

#[test]
fn slow_upstream_is_504_after_read_timeout() {
    // (read_timeout ms, upstream delay ms, status). Timeouts of a second or more run on the
    // proxy thread's coarse timer, shorter ones on tokio's: both must fire, neither early.
    let cases = [(200, 2000, 504), (1200, 3500, 504), (1200, 300, 200)];
    let up = Upstream::start("slow");
    for (timeout, delay, status) in cases {
        let gw = Gateway::start(&format!(
            "_format_version: \"3.0\"\nservices:\n- url: http://{}\n  read_timeout: {timeout}\n  routes:\n  - paths: [/]\n",
            up.addr
        ));
        let r = get(gw.addr, &format!("/delay/{delay}"), &[]);
        assert_eq!(r.status, status, "read_timeout {timeout}, delay {delay}");
        if status == 504 {
            assert_eq!(r.json()["message"], "The upstream server is timed out");
        }
    }
}

#[test]
fn https_only_route_answers_426_or_redirects_on_plain_http() {
    let up = Upstream::start("a");
    let yaml = format!(
        r#"
_format_version: "3.0"
services:
- url: http://{}
  routes:
  - paths: [/secure]
    protocols: [https]
  - paths: [/moved]
    protocols: [https]
    https_redirect_status_code: 301
"#,
        up.addr
    );
    let gw = Gateway::start(&yaml);
    let r = get(gw.addr, "/secure", &[]);
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    let r = get(gw.addr, "/moved/x?y=1", &[("host", "shop.test:8000")]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://shop.test/moved/x?y=1"));
    assert_eq!(up.hits(), 0);
}

#[test]
fn serviceless_route_is_503() {
    let gw = Gateway::start("_format_version: \"3.0\"\nroutes:\n- name: lonely\n  paths: [/x]\n");
    let r = get(gw.addr, "/x", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "no Service found with those values");
}

#[test]
fn debug_header_names_route_and_service_only_when_allowed() {
    let up = Upstream::start("a");
    let yaml = one_service(&up, "  - name: dbg\n    paths: [/]");
    let mut opts = options();
    opts.allow_debug_header = true;
    let gw = Gateway::start_with(&yaml, opts);
    let r = get(gw.addr, "/", &[("kong-debug", "1")]);
    assert_eq!(r.header("kong-route-name"), Some("dbg"));
    assert_eq!(r.header("kong-service-name"), Some("echo"));
    assert!(r.header("kong-route-id").is_some() && r.header("kong-service-id").is_some());
    let off = Gateway::start(&yaml);
    assert!(get(off.addr, "/", &[("kong-debug", "1")])
        .header("kong-route-id")
        .is_none());
}

#[test]
fn forwarded_headers_from_trusted_clients_are_kept() {
    let up = Upstream::start("a");
    let yaml = one_service(&up, "  - paths: [/]");
    let spoof = [
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "edge.test"),
    ];
    let untrusted = Gateway::start(&yaml);
    let r = get(untrusted.addr, "/", &spoof);
    assert_eq!(
        r.upstream_header("x-forwarded-for").as_deref(),
        Some("1.2.3.4, 127.0.0.1")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("localhost")
    );
    let mut opts = options();
    opts.trusted_ips = vec![gatehouse_config::settings::Cidr {
        addr: "127.0.0.1".parse().unwrap(),
        prefix_len: 32,
    }];
    let trusted = Gateway::start_with(&yaml, opts);
    let r = get(trusted.addr, "/", &spoof);
    assert_eq!(
        r.upstream_header("x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert_eq!(
        r.upstream_header("x-forwarded-host").as_deref(),
        Some("edge.test")
    );
}

#[test]
fn request_bodies_are_streamed_through() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - paths: [/]"));
    let big = "x".repeat(3 * 1024 * 1024);
    let r = send(
        gw.addr,
        "POST",
        "/upload",
        &[("content-type", "text/plain")],
        &big,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"].as_str().map(str::len), Some(big.len()));
}

#[test]
fn a_swapped_snapshot_serves_the_next_request() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let gw = Gateway::start(&one_service(&a, "  - paths: [/]"));
    assert_eq!(get(gw.addr, "/", &[]).header("x-upstream"), Some("a"));
    gw.swap(&one_service(&b, "  - paths: [/]"));
    assert_eq!(get(gw.addr, "/", &[]).header("x-upstream"), Some("b"));
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - paths: [/]"));
    let addr = gw.addr;
    let inflight = std::thread::spawn(move || get(addr, "/delay/700", &[]));
    std::thread::sleep(Duration::from_millis(200));
    gw.shutdown(Duration::from_secs(5));
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "in-flight request completed during drain");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed after shutdown"
    );
}

#[test]
fn malformed_http_gets_400_not_a_hang() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&one_service(&up, "  - paths: [/]"));
    let cases: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"GET /\x01bad HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for raw in cases {
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "{:?} -> {text:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(up.hits(), 0);
}

#[test]
fn connect_timeout_is_504() {
    // A listener that never accepts, with its tiny backlog already full: further SYNs are
    // dropped, so connecting hangs — on loopback, without touching any other address.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let gw = Gateway::start(&format!(
        "_format_version: \"3.0\"\nservices:\n- url: http://{addr}\n  connect_timeout: 150\n  retries: 1\n  routes:\n  - paths: [/]\n"
    ));
    let started = std::time::Instant::now();
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.json()["message"], "The upstream server is timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(fillers);
}
