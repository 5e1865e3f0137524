//! http-log and file-log on a running node: a real collector (in-process HTTP server) receives
//! Kong-shaped JSON batches; file-log appends lines to a file and reopens it on SIGUSR1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// An HTTP/1.1 server that answers 200 to everything and keeps the JSON bodies it got.
struct Collector {
    addr: SocketAddr,
    entries: Arc<Mutex<Vec<Value>>>,
}

fn serve(stream: TcpStream, entries: Arc<Mutex<Vec<Value>>>) {
    let mut out = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
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
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let mut e = entries.lock().unwrap();
            match v {
                Value::Array(a) => e.extend(a),
                v => e.push(v),
            }
        }
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn collector() -> Collector {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let entries = Arc::new(Mutex::new(Vec::new()));
    let e = entries.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let e = e.clone();
            std::thread::spawn(move || serve(s, e));
        }
    });
    Collector { addr, entries }
}

fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> u16 {
    let key = key.map_or(String::new(), |k| format!("apikey: {k}\r\n"));
    let headers = format!("Host: example.test\r\nUser-Agent: logs-test\r\n{key}");
    http_get_with(addr, path, &headers).expect("response").0
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn http_log_and_file_log_ship_kong_records() {
    let c = collector();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    std::fs::create_dir_all(&prefix).unwrap();
    let file = dir.path().join("access.json");
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: status-svc
  url: http://127.0.0.1:STATUS_PORT
  routes:
  - name: r
    paths: [/r]
    plugins:
    - name: key-auth
consumers:
- username: alice
  keyauth_credentials:
  - key: k1
plugins:
- name: http-log
  config:
    http_endpoint: http://{}/logs
    queue: {{max_batch_size: 2, max_coalescing_delay: 0.1}}
- name: file-log
  config:
    path: {}
"#,
        c.addr,
        file.display()
    );
    let node = Node::start(&prefix, Some(&yaml));
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert_eq!(get(node.proxy, "/r/status?a=1", Some("k1")), 200);
    assert_eq!(get(node.proxy, "/r/status", Some("k1")), 200);
    assert_eq!(get(node.proxy, "/r/status", None), 401);

    let entries = wait_for(10, "3 http-log entries", || {
        let e = c.entries.lock().unwrap();
        (e.len() >= 3).then(|| e.clone())
    });
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let ok = entries
        .iter()
        .find(|e| e["request"]["uri"] == "/r/status?a=1")
        .expect("the first request was logged");
    let cases: &[(&str, Value)] = &[
        ("/request/method", "GET".into()),
        ("/request/querystring/a", "1".into()),
        ("/request/headers/user-agent", "logs-test".into()),
        ("/request/headers/apikey", "k1".into()),
        ("/response/status", 200.into()),
        ("/upstream_uri", "/status?a=1".into()),
        ("/upstream_status", "200".into()),
        ("/route/name", "r".into()),
        ("/service/name", "status-svc".into()),
        ("/consumer/username", "alice".into()),
        ("/client_ip", "127.0.0.1".into()),
        ("/source", "upstream".into()),
    ];
    for (ptr, want) in cases {
        assert_eq!(ok.pointer(ptr), Some(want), "{ptr} in {ok:#}");
    }
    assert!(ok["request"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/r/status?a=1"));
    for k in ["kong", "proxy", "request"] {
        assert!(ok["latencies"][k].is_u64(), "latencies.{k} in {ok:#}");
    }
    let started = ok["started_at"].as_u64().unwrap();
    assert!(
        started + 1000 >= before && started < before + 60_000,
        "{started}"
    );
    assert!(ok["response"]["headers"]["content-type"].is_string());
    // authenticated_entity: the key-auth credential and its consumer (Kong's shape).
    let auth = &ok["authenticated_entity"];
    assert_eq!(auth["consumer_id"], ok["consumer"]["id"], "{ok:#}");
    assert_eq!(auth["id"].as_str().map(str::len), Some(36), "{ok:#}");
    // tries: one balancer try, to the service's address.
    let tries = ok["tries"].as_array().expect("tries");
    assert_eq!(tries.len(), 1, "{ok:#}");
    assert_eq!(tries[0]["ip"], "127.0.0.1");
    assert_eq!(tries[0]["port"], u64::from(node.status.port()));
    assert!(tries[0]["balancer_latency"].is_u64());
    let t0 = tries[0]["balancer_start"].as_u64().unwrap();
    // Both are wall-clock milliseconds derived from monotonic durations at different moments:
    // each may be truncated by a millisecond.
    assert!(
        t0 + 2 >= started && t0 < started + 60_000,
        "{t0} vs {started}"
    );

    let denied = entries
        .iter()
        .find(|e| e["response"]["status"] == 401)
        .expect("the 401 was logged");
    assert_eq!(denied["source"], "kong");
    assert_eq!(denied["consumer"], Value::Null);
    assert_eq!(denied["latencies"]["proxy"], -1);
    assert_eq!(denied["authenticated_entity"], Value::Null);
    assert_eq!(denied["tries"], serde_json::json!([]));

    // The proxy access log (default `logs/access.log` under the prefix), Kong's line format.
    let access = prefix.join("logs/access.log");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let text = wait_for(10, "3 access log lines", || {
        let t = read(&access);
        (t.lines().count() >= 3).then_some(t)
    });
    let line = text
        .lines()
        .find(|l| l.contains("/r/status?a=1"))
        .expect("a line for the first request");
    let rid = ok["request"]["id"].as_str().unwrap();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.ends_with(&format!(
            "\"GET /r/status?a=1 HTTP/1.1\" 200 {} \"-\" \"logs-test\" kong_request_id: \"{rid}\"",
            ok["response"]["size"]
        )),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("\"GET /r/status HTTP/1.1\" 401 ")),
        "{text}"
    );

    // file-log: one JSON line per request; SIGUSR1 reopens (after a rotation by rename).
    let got = wait_for(10, "3 file-log lines", || {
        let l = lines(&file);
        (l.len() >= 3).then_some(l)
    });
    assert_eq!(got.len(), 3);
    assert!(got.iter().any(|l| l["request"]["uri"] == "/r/status?a=1"));
    let rotated = dir.path().join("access.json.1");
    std::fs::rename(&file, &rotated).unwrap();
    std::fs::rename(&access, prefix.join("logs/access.log.1")).unwrap();
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap()
        .success());
    // The signal is handled asynchronously: keep sending until a request lands in a new file.
    wait_for(10, "a reopened log file", || {
        get(node.proxy, "/r/status", Some("k1"));
        std::thread::sleep(Duration::from_millis(50));
        (!lines(&file).is_empty()).then_some(())
    });
    assert!(lines(&rotated).len() >= 3);
    wait_for(10, "a reopened access log", || {
        (!read(&access).is_empty()).then_some(())
    });
}

#[test]
fn proxy_access_log_off() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    std::fs::create_dir_all(&prefix).unwrap();
    let yaml = r#"_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:STATUS_PORT
  routes:
  - paths: [/r]
"#;
    let node = Node::start_with(&prefix, Some(yaml), "proxy_access_log = off\n");
    assert_eq!(get(node.proxy, "/r/status", None), 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!prefix.join("logs/access.log").exists());
}
