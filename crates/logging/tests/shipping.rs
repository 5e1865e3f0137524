//! Real parts: an HTTP collector on 127.0.0.1, a temp file, a blocked sink for back-pressure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_logging::*;
use serde_json::Value;

/// Answers the first `fail_first` requests with 500, then 200; records every body.
struct Collector {
    addr: String,
    bodies: Arc<Mutex<Vec<(String, Value)>>>, // (request head, body)
    hits: Arc<AtomicUsize>,
}

fn collector(fail_first: usize) -> Collector {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b2, h2) = (bodies.clone(), hits.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let (b3, h3) = (b2.clone(), h2.clone());
            std::thread::spawn(move || {
                let mut w = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                loop {
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let n = h3.fetch_add(1, SeqCst);
                    let v: Value =
                        serde_json::from_slice(&body).expect("collector got invalid JSON");
                    b3.lock().expect("lock").push((head, v));
                    let status = if n < fail_first {
                        "500 Internal Server Error"
                    } else {
                        "200 OK"
                    };
                    let _ = w.write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes(),
                    );
                }
            });
        }
    });
    Collector { addr, bodies, hits }
}

fn record(i: usize) -> LogRecord {
    let mut r = LogRecord::empty();
    r.started_at_ms = 1_700_000_000_000 + i as u64;
    r.set_request(
        format!("req-{i}").as_bytes(),
        "GET",
        &format!("/echo?i={i}"),
        "example.com",
        &header_map(&[("host", "example.com"), ("authorization", "Bearer x")]),
    );
    r.port = 8000;
    r.status = 200;
    r.upstream_status = 200;
    r.proxy_ms = Some(5);
    let e = Entities {
        routes: vec![
            r#"{"id":"b9b0f6c2-0000-5000-8000-000000000001","name":"r1","paths":["/echo"]}"#.into(),
        ],
        services: vec![
            r#"{"id":"5f8e0000-0000-5000-8000-000000000002","name":"s1","host":"upstream","port":80}"#
                .into(),
        ],
        workspace: "0dc6f45b-8f8d-40d2-a504-473544ee190b".into(),
        workspace_name: "default".into(),
        ..Entities::default()
    };
    r.set_entities(Arc::new(e), Some(0), Some(0), None);
    r
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn http_log_batches_with_kong_fields() {
    let c = collector(0);
    let sink = HttpLogSink::new(&HttpLogConfig {
        http_endpoint: format!("http://user:pw@{}/logs?x=1", c.addr),
        headers: vec![("X-Custom".into(), "yes".into())],
        ..Default::default()
    })
    .expect("sink");
    let cfg = QueueConfig {
        max_batch_size: 10,
        max_coalescing_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let q = Queue::start("http-log-test", cfg, sink).expect("queue");
    let tx = q.sender();
    for i in 0..25 {
        assert!(tx.push(record(i)));
    }
    wait_for("25 entries", || q.stats().sent.load(SeqCst) == 25);
    let bodies = c.bodies.lock().expect("lock");
    let sizes: Vec<usize> = bodies
        .iter()
        .map(|(_, b)| b.as_array().expect("array batch").len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    assert!(sizes.len() >= 3);
    let (head, first) = &bodies[0];
    assert!(head.starts_with("POST /logs?x=1 HTTP/1.1"), "{head}");
    assert!(head.contains("Authorization: Basic dXNlcjpwdw=="), "{head}");
    assert!(head.contains("X-Custom: yes"));
    assert!(head.contains("Content-Type: application/json"));
    let e = &first[0];
    assert_eq!(e["request"]["method"], "GET");
    assert_eq!(e["request"]["uri"], "/echo?i=0");
    assert_eq!(e["request"]["url"], "http://example.com:8000/echo?i=0");
    assert_eq!(e["request"]["querystring"]["i"], "0");
    assert_eq!(e["request"]["headers"]["authorization"], "REDACTED");
    assert_eq!(e["response"]["status"], 200);
    assert_eq!(e["upstream_status"], "200");
    assert_eq!(e["latencies"]["proxy"], 5);
    assert_eq!(e["route"]["name"], "r1");
    assert_eq!(e["service"]["host"], "upstream");
    assert_eq!(e["consumer"], Value::Null);
    assert_eq!(e["client_ip"], "127.0.0.1");
    assert_eq!(e["started_at"], 1_700_000_000_000u64);
    assert_eq!(e["source"], "upstream");
    assert_eq!(e["workspace_name"], "default");
    drop(bodies);
    q.shutdown();
}

#[test]
fn http_log_retries_after_500() {
    let c = collector(2);
    let sink = HttpLogSink::new(&HttpLogConfig {
        http_endpoint: format!("http://{}/", c.addr),
        ..Default::default()
    })
    .expect("sink");
    let cfg = QueueConfig {
        max_batch_size: 1,
        initial_retry_delay: Duration::from_millis(10),
        ..Default::default()
    };
    let q = Queue::start("retry", cfg, sink).expect("queue");
    let t0 = Instant::now();
    assert!(q.sender().push(record(7)));
    wait_for("delivery after retries", || {
        q.stats().sent.load(SeqCst) == 1
    });
    // 10 ms then 20 ms of backoff before the third attempt.
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert_eq!(c.hits.load(SeqCst), 3);
    assert_eq!(q.stats().send_errors.load(SeqCst), 2);
    let bodies = c.bodies.lock().expect("lock");
    // max_batch_size 1 → a single object, the same one each time.
    for (_, b) in bodies.iter() {
        assert_eq!(b["request"]["id"], "req-7");
    }
    drop(bodies);
    q.shutdown();
}

#[test]
fn http_log_gives_up_after_max_retry_time() {
    let c = collector(usize::MAX);
    let sink = HttpLogSink::new(&HttpLogConfig {
        http_endpoint: format!("http://{}/", c.addr),
        ..Default::default()
    })
    .expect("sink");
    let cfg = QueueConfig {
        max_retry_time: Duration::from_millis(100),
        initial_retry_delay: Duration::from_millis(10),
        ..Default::default()
    };
    let q = Queue::start("give-up", cfg, sink).expect("queue");
    assert!(q.sender().push(record(1)));
    wait_for("give up", || q.stats().failed.load(SeqCst) == 1);
    assert!(c.hits.load(SeqCst) >= 3);
    assert_eq!(q.stats().sent.load(SeqCst), 0);
    q.shutdown();
}

#[test]
fn https_endpoint_is_refused_clearly() {
    let e = HttpLogSink::new(&HttpLogConfig {
        http_endpoint: "https://x/".into(),
        ..Default::default()
    });
    assert!(e.is_err());
}

/// A sink that blocks until released, to fill the queue; counts batches entered.
struct Gate(Arc<Mutex<()>>, Arc<AtomicUsize>, Arc<AtomicUsize>);
impl Sink for Gate {
    fn send(&mut self, batch: &[LogRecord], _: bool) -> Result<(), String> {
        self.2.fetch_add(1, SeqCst);
        let _g = self.0.lock().expect("gate");
        self.1.fetch_add(batch.len(), SeqCst);
        Ok(())
    }
}

#[test]
fn full_queue_drops_and_counts() {
    let gate = Arc::new(Mutex::new(()));
    let got = Arc::new(AtomicUsize::new(0));
    let held = gate.lock().expect("gate");
    let cfg = QueueConfig {
        max_entries: 5,
        max_batch_size: 1,
        ..Default::default()
    };
    let entered = Arc::new(AtomicUsize::new(0));
    let q = Queue::start(
        "full",
        cfg,
        Gate(gate.clone(), got.clone(), entered.clone()),
    )
    .expect("queue");
    let tx = q.sender();
    assert!(tx.push(record(0)));
    // The shipper takes the first record and blocks in the sink; 5 more fit, the rest drop.
    wait_for("shipper to take the first", || entered.load(SeqCst) == 1);
    let ok = (1..=20).filter(|i| tx.push(record(*i))).count();
    assert_eq!(ok, 5);
    assert_eq!(q.stats().dropped.load(SeqCst), 15);
    drop(held);
    wait_for("drain", || got.load(SeqCst) == 6);
    q.shutdown();
    // After shutdown the receiver is gone: pushes drop and count.
    assert!(!tx.push(record(99)));
}

#[test]
fn max_bytes_bounds_memory() {
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().expect("gate");
    let one = record(0).approx_size();
    let cfg = QueueConfig {
        max_entries: 1000,
        max_bytes: Some(one * 3),
        max_batch_size: 1000,
        max_coalescing_delay: Duration::from_secs(5),
        ..Default::default()
    };
    let q = Queue::start(
        "bytes",
        cfg,
        Gate(
            gate.clone(),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        ),
    )
    .expect("queue");
    let tx = q.sender();
    let ok = (0..10).filter(|i| tx.push(record(*i))).count();
    assert!(ok <= 3, "{ok}");
    assert_eq!(q.stats().dropped.load(SeqCst), 10 - ok as u64);
    drop(held);
    q.shutdown();
}

#[test]
fn file_log_appends_json_lines_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("file-log.json");
    let sink = FileSink::json(&path, false);
    let reopen = sink.reopen_handle();
    let cfg = QueueConfig {
        max_batch_size: 100,
        max_coalescing_delay: Duration::from_millis(20),
        ..Default::default()
    };
    let q = Queue::start("file", cfg, sink).expect("queue");
    let tx = q.sender();
    for i in 0..3 {
        tx.push(record(i));
    }
    wait_for("3 written", || q.stats().sent.load(SeqCst) == 3);
    // Rotate: rename, ask for reopen, write more → lands in a new file at the old path.
    let rotated = dir.path().join("file-log.json.1");
    std::fs::rename(&path, &rotated).expect("rename");
    reopen.reopen();
    tx.push(record(3));
    wait_for("4 written", || q.stats().sent.load(SeqCst) == 4);
    q.shutdown();
    let old = std::fs::read_to_string(&rotated).expect("read");
    let new = std::fs::read_to_string(&path).expect("read");
    assert_eq!(old.lines().count(), 3);
    assert_eq!(new.lines().count(), 1);
    for line in old.lines().chain(new.lines()) {
        let v: Value = serde_json::from_str(line).expect("json line");
        assert!(v["request"]["id"]
            .as_str()
            .is_some_and(|s| s.starts_with("req-")));
    }
}

#[test]
fn access_log_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let q = Queue::start(
        "access",
        QueueConfig {
            max_batch_size: 10,
            max_coalescing_delay: Duration::from_millis(10),
            ..Default::default()
        },
        FileSink::access_log(&path),
    )
    .expect("queue");
    q.sender().push(record(1));
    q.shutdown();
    let s = std::fs::read_to_string(&path).expect("read");
    assert!(s.starts_with("127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /echo?i=1 HTTP/1.1\" 200 0 \"-\" \"-\" kong_request_id: \"req-1\""), "{s}");
}
