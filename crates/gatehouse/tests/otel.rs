//! opentelemetry on a running node: W3C `traceparent` reaches the upstream (continued or new
//! trace, our span id as parent) and request spans arrive at a real OTLP/HTTP collector
//! (in-process, OTLP/HTTP protobuf, decoded with opentelemetry-proto).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message as _;

/// What an in-process HTTP/1.1 server received: (lower-case header lines, body).
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

fn serve(stream: TcpStream, seen: Seen) {
    let mut out = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push((headers, body));
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

fn server() -> (SocketAddr, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || serve(c, s));
        }
    });
    (addr, seen)
}

fn get(addr: SocketAddr, path: &str, traceparent: Option<&str>) -> u16 {
    let tp = traceparent.map_or(String::new(), |t| format!("traceparent: {t}\r\n"));
    http_get_with(addr, path, &format!("Host: example.test\r\n{tp}"))
        .expect("response")
        .0
}

fn header(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// The spans of every export the collector received, decoded with opentelemetry-proto's
/// generated types, each with its resource's attributes.
fn spans(seen: &Seen) -> Vec<(Span, Vec<KeyValue>)> {
    let mut out = Vec::new();
    for (h, body) in seen.lock().unwrap().iter() {
        assert_eq!(
            header(h, "content-type").as_deref(),
            Some("application/x-protobuf")
        );
        let req = ExportTraceServiceRequest::decode(&body[..]).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let resource = rs.resource.expect("a resource").attributes;
            for ss in rs.scope_spans {
                let scope = ss.scope.expect("a scope");
                assert_eq!((&*scope.name, &*scope.version), ("kong-internal", "0.1.0"));
                out.extend(ss.spans.into_iter().map(|s| (s, resource.clone())));
            }
        }
    }
    out
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

fn string(s: &str) -> Option<Value> {
    Some(Value::StringValue(s.into()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn traceparent_propagates_and_spans_reach_the_collector() {
    let (upstream, upstream_seen) = server();
    let (collector, collector_seen) = server();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: up
  url: http://{upstream}
  routes:
  - name: traced
    paths: [/t, /other]
plugins:
- name: opentelemetry
  config:
    endpoint: http://{collector}/v1/traces
    resource_attributes: {{service.name: gw, deployment.environment: test}}
    headers: {{x-collector-token: s3cret}}
    queue: {{max_batch_size: 10, max_coalescing_delay: 0.05}}
"#
    );
    let node = Node::start(&prefix, Some(&yaml));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    assert_eq!(
        get(
            node.proxy,
            "/t/x?a=1",
            Some(&format!("00-{trace}-{parent}-01"))
        ),
        200
    );
    assert_eq!(get(node.proxy, "/t", None), 200);
    assert_eq!(get(node.proxy, "/nowhere", None), 404);

    let seen = upstream_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let continued = header(&seen[0].0, "traceparent").expect("traceparent sent upstream");
    let parts: Vec<&str> = continued.split('-').collect();
    assert_eq!(parts.len(), 4, "{continued}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace, "01"));
    assert_ne!(parts[2], parent, "our span is the upstream's parent");
    let our_span = parts[2].to_string();
    let fresh = header(&seen[1].0, "traceparent").expect("a new trace");
    assert_eq!(fresh.len(), 55, "{fresh}");
    assert!(!fresh.contains(trace));

    let got = wait_for(10, "3 spans", || {
        let s = spans(&collector_seen);
        (s.len() >= 3).then_some(s)
    });
    for (h, _) in collector_seen.lock().unwrap().iter() {
        assert_eq!(header(h, "x-collector-token").as_deref(), Some("s3cret"));
    }
    let (span, resource) = got
        .iter()
        .find(|(s, _)| hex(&s.trace_id) == trace)
        .expect("the continued trace's span");
    assert_eq!(attr(resource, "service.name"), string("gw"));
    assert_eq!(attr(resource, "deployment.environment"), string("test"));
    assert_eq!(hex(&span.span_id), our_span);
    assert_eq!(hex(&span.parent_span_id), parent);
    assert_eq!(span.name, "kong");
    assert_eq!(span.kind, SpanKind::Server as i32);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        span.start_time_unix_nano > now - 60_000_000_000
            && span.start_time_unix_nano <= span.end_time_unix_nano
            && span.end_time_unix_nano <= now,
        "{} {} {now}",
        span.start_time_unix_nano,
        span.end_time_unix_nano
    );
    let a = &span.attributes;
    let url = "http://example.test/t/x?a=1";
    let table: &[(&str, Option<Value>)] = &[
        ("http.method", string("GET")),
        ("http.url", string(url)),
        ("http.host", string("example.test")),
        ("http.scheme", string("http")),
        ("http.flavor", string("1.1")),
        ("http.client_ip", string("127.0.0.1")),
        ("net.peer.ip", string("127.0.0.1")),
        ("http.status_code", Some(Value::IntValue(200))),
        ("http.route", string("/t")),
    ];
    for (k, want) in table {
        assert_eq!(&attr(a, k), want, "{k}");
    }
    let Some(Value::StringValue(id)) = attr(a, "kong.request.id") else {
        panic!("kong.request.id: {a:?}");
    };
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(span.status.as_ref().map_or(0, |s| s.code), 0, "unset");

    let (fresh_span, _) = got
        .iter()
        .find(|(s, _)| {
            hex(&s.trace_id) != trace && attr(&s.attributes, "http.route") == string("/t")
        })
        .expect("the new trace's span");
    assert!(fresh_span.parent_span_id.is_empty());
    assert_eq!(fresh.split('-').nth(1), Some(&*hex(&fresh_span.trace_id)));
    assert_eq!(fresh.split('-').nth(2), Some(&*hex(&fresh_span.span_id)));

    // No route matched: Kong's root span still goes out, with an empty http.route.
    let (miss, _) = got
        .iter()
        .find(|(s, _)| attr(&s.attributes, "http.status_code") == Some(Value::IntValue(404)))
        .expect("the 404's span");
    assert_eq!(attr(&miss.attributes, "http.route"), string(""));
    assert_eq!(
        attr(&miss.attributes, "http.url"),
        string("http://example.test/nowhere")
    );
}

/// The default resource is `service.name = kong`; a 5xx span carries status ERROR.
#[test]
fn default_resource_and_error_status() {
    let (collector, collector_seen) = server();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    // Nothing listens on port 9 of 127.0.0.1: the upstream connect fails (502).
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: down
  url: http://127.0.0.1:9
  retries: 0
  routes:
  - paths: [/down]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://{collector}/v1/traces
    queue: {{max_batch_size: 1, max_coalescing_delay: 0.01}}
"#
    );
    let node = Node::start(&prefix, Some(&yaml));
    assert_eq!(get(node.proxy, "/down", None), 502);
    let got = wait_for(10, "1 span", || {
        let s = spans(&collector_seen);
        (!s.is_empty()).then_some(s)
    });
    let (span, resource) = &got[0];
    assert_eq!(attr(resource, "service.name"), string("kong"));
    assert_eq!(
        attr(&span.attributes, "http.status_code"),
        Some(Value::IntValue(502))
    );
    assert_eq!(
        span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
}
