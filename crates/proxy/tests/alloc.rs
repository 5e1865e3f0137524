//! Allocation budget of the request path, end to end: plain GETs through a route without
//! plugins, keep-alive on both sides, counted with a counting global allocator.
//!
//! The client and the upstream here are blocking std sockets with fixed buffers: they
//! allocate nothing per request, so what is counted is the gateway's own work (its proxy
//! thread and hyper on both sides).
//!
//! Where the allocations go today (4 per request; 13 before the arena below, 8 before the
//! upstream side left hyper's client): the downstream hyper server's read buffer, which it
//! cannot reuse while a header value still shares it, and three small ones inside hyper's
//! server. The upstream exchange (`h1`) allocates nothing in the steady state: its buffers
//! live with the pooled connection and the request's header map is reused for the response.
//! The values we add (request id, `X-Forwarded-Path`, the upstream path) are cut from the
//! proxy thread's byte arena, one allocation per 16 KiB. The budget is a regression guard: a
//! change that adds one shows up here before it shows up in a benchmark.

#[path = "../../../tests/shared/counting_alloc.rs"]
mod counting_alloc;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use support::Gateway;

/// Most allocations one proxied request may make (measured: see the module doc).
const BUDGET_PER_REQUEST: usize = 4;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

/// Reads one message head (and `body` more bytes) into `buf`; no allocation.
fn read_message(s: &mut TcpStream, buf: &mut [u8; 8192], body: usize) -> bool {
    let mut have = 0;
    loop {
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            if have >= end + 4 + body {
                return true;
            }
        }
        match s.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => have += n,
        }
    }
}

/// An upstream that answers every GET with `ok`, one thread per connection.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while read_message(&mut conn, &mut buf, 0) {
                    if conn.write_all(RESPONSE).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_proxied_request_stays_within_its_allocation_budget() {
    let up = upstream();
    let gw = Gateway::start(&format!(
        "_format_version: '3.0'\nservices:\n- name: s\n  url: http://{up}\n  routes:\n  - name: r\n    paths: ['/a']\n"
    ));
    let mut client = TcpStream::connect(gw.addr).expect("connect");
    let request = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: alloc-test\r\n\r\n";
    let mut buf = [0u8; 8192];
    let mut exchange = |client: &mut TcpStream| {
        client.write_all(request).expect("write");
        assert!(read_message(client, &mut buf, 2), "response");
        assert!(buf.starts_with(b"HTTP/1.1 200"), "status");
    };
    // Warm-up: pooled upstream connection, match cache, recycled header maps and buffers.
    for _ in 0..300 {
        exchange(&mut client);
    }
    let n = 1000;
    let ((), allocs) = counting_alloc::count(|| {
        for _ in 0..n {
            exchange(&mut client);
        }
    });
    let per_request = allocs as f64 / n as f64;
    eprintln!("allocations per proxied request: {per_request:.2}");
    // The fraction: arena chunks (one per ~150 requests) and the thread's timer ticks.
    assert!(
        per_request < BUDGET_PER_REQUEST as f64 + 0.1,
        "{per_request:.2} allocations per request, budget {BUDGET_PER_REQUEST}"
    );
}
