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
    let route: Arc<str> = Arc::from(r#"{"id":"r"}"#);
    let ws: Arc<str> = Arc::from("default");
    c.bench_function("push/typical_record", |bn| {
        bn.iter(|| {
            let mut r = LogRecord::empty();
            r.started_at_ms = 1;
            r.request_id = "5f3c0c1e8a7b4d2e9f10aabbccddeeff".into();
            r.uri = "/api/v1/items?page=2".into();
            r.host = "api.example.com".into();
            r.upstream_uri = "/v1/items?page=2".into();
            r.request_headers = gatehouse_logging::header_map(&[("user-agent", "curl/8.5.0")]);
            r.status = 200;
            r.route = Some(route.clone());
            r.workspace = ws.clone();
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
    r.uri = "/api/v1/items?page=2".into();
    r.route = Some(route.clone());
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
