//! Cost on the proxy thread: fill a log record and push it into the bounded queue.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse_logging::*;

struct Discard;
impl Sink for Discard {
    fn send(&mut self, b: &[LogRecord], _: bool) -> Result<(), String> {
        black_box(b.len());
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let q = Queue::start(
        "bench",
        QueueConfig {
            max_batch_size: 1000,
            max_coalescing_delay: Duration::from_millis(5),
            max_entries: 100_000,
            ..Default::default()
        },
        Discard,
    )
    .expect("queue");
    let tx = q.sender();
    let entities = Arc::new(gatehouse_logging::Entities {
        routes: vec![r#"{"id":"r"}"#.into()],
        services: vec![r#"{"id":"s"}"#.into()],
        workspace: "w".into(),
        workspace_name: "default".into(),
        ..Default::default()
    });
    let req_headers = gatehouse_logging::header_map(&[
        ("host", "api.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
    ]);
    let resp_headers = gatehouse_logging::header_map(&[
        ("content-type", "application/json"),
        ("content-length", "100"),
        ("x-kong-upstream-latency", "1"),
        ("x-kong-proxy-latency", "0"),
        ("via", "1.1 gatehouse"),
    ]);
    c.bench_function("push/typical_record", |bn| {
        bn.iter(|| {
            let mut r = LogRecord::empty();
            r.started_at_ms = 1;
            r.set_request(
                b"5f3c0c1e8a7b4d2e9f10aabbccddeeff",
                "GET",
                "/api/v1/items?page=2",
                "api.example.com",
                &req_headers,
            );
            r.set_upstream_uri("/v1/items?page=2");
            r.set_response_headers(&resp_headers);
            r.status = 200;
            r.set_entities(entities.clone(), Some(0), Some(0), None);
            black_box(tx.push(r))
        })
    });
    let s = q.stats();
    eprintln!(
        "push bench: sent {} dropped {}",
        s.sent.load(std::sync::atomic::Ordering::Relaxed),
        s.dropped.load(std::sync::atomic::Ordering::Relaxed)
    );
    let mut out = Vec::new();
    let mut r = LogRecord::empty();
    r.set_request(
        b"rid",
        "GET",
        "/api/v1/items",
        "api.example.com",
        &req_headers,
    );
    r.set_response_headers(&resp_headers);
    r.set_entities(entities.clone(), Some(0), Some(0), None);
    c.bench_function("serialize/one_record_shipper_side", |bn| {
        bn.iter(|| {
            out.clear();
            gatehouse_logging::json::serialize(black_box(&r), &mut out);
            out.len()
        })
    });
    q.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
