//! opentelemetry on a running node: W3C `traceparent` reaches the upstream (continued or new
//! trace, our span id as parent) and request spans arrive at a real OTLP/HTTP collector
//! (in-process, OTLP/JSON).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

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

fn spans(seen: &Seen) -> Vec<Value> {
    let mut out = Vec::new();
    for (h, body) in seen.lock().unwrap().iter() {
        assert_eq!(
            header(h, "content-type").as_deref(),
            Some("application/json")
        );
        let v: Value = serde_json::from_slice(body).expect("OTLP/JSON");
        for rs in v["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                out.extend(ss["spans"].as_array().unwrap().iter().cloned());
            }
        }
    }
    out
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
    paths: [/t]
plugins:
- name: opentelemetry
  config:
    traces_endpoint: http://{collector}/v1/traces
    resource_attributes: {{service.name: gw}}
    queue: {{max_batch_size: 10, max_coalescing_delay: 0.05}}
"#
    );
    let node = Node::start(&prefix, Some(&yaml));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    assert_eq!(
        get(node.proxy, "/t", Some(&format!("00-{trace}-{parent}-01"))),
        200
    );
    assert_eq!(get(node.proxy, "/t", None), 200);

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

    let got = wait_for(10, "2 spans", || {
        let s = spans(&collector_seen);
        (s.len() >= 2).then_some(s)
    });
    let span = got
        .iter()
        .find(|s| s["traceId"] == trace)
        .expect("the continued trace's span");
    assert_eq!(span["spanId"], our_span.as_str());
    assert_eq!(span["parentSpanId"], parent);
    assert_eq!(span["kind"], 2);
    let attrs: Vec<(String, Value)> = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_string(), a["value"].clone()))
        .collect();
    let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        attr("http.method"),
        Some(serde_json::json!({"stringValue": "GET"}))
    );
    assert_eq!(
        attr("http.status_code"),
        Some(serde_json::json!({"intValue": "200"}))
    );
    assert_eq!(
        attr("kong.route"),
        Some(serde_json::json!({"stringValue": "traced"}))
    );
    let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && start <= end);
    let fresh_span = got.iter().find(|s| s["traceId"] != trace).unwrap();
    assert_eq!(fresh_span["parentSpanId"], "");
    assert_eq!(fresh.split('-').nth(1), fresh_span["traceId"].as_str());
}
