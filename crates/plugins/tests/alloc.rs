//! Allocation budget of the hot path, measured with a counting global allocator.
//!
//! Budget for a chain key-auth (key in a header) + rate-limiting (local, minute+hour) once
//! the counters of the current window exist and the response `HeaderMap` has room:
//! **0 allocations** in `run_access`, `run_header_filter` and `run_log` while the remaining
//! counts are below 4096. Header values are prebuilt (consumer ids, limits) or come from a
//! shared table (numbers < 4096), so inserting them is a reference-count bump. What can
//! still allocate, by design (the output needs it): one allocation per `X-RateLimit-*`
//! number ≥ 4096 (one per configured window, +1 for sharing the tightest one with
//! `RateLimit-Remaining`, +1 for `RateLimit-Reset` ≥ 4096 s),
//! growing a `HeaderMap` that is full, the first request of a new (identifier, window) (one
//! map insert), an error body (one `String`) and a key-auth query rewrite.
mod common;
#[path = "../../../tests/shared/counting_alloc.rs"]
mod counting_alloc;
use common::*;
use gatehouse_plugins::{PluginState, RequestCtx};

#[test]
fn key_auth_plus_local_rate_limiting_allocates_nothing() {
    assert_eq!(measure(3000, 4000), 0, "allocations in 1000 requests");
    // Remaining counts >= 4096 need their digits: one allocation per window header, plus
    // one when the tightest window's value is shared with `RateLimit-Remaining`.
    assert_eq!(
        measure(100_000, 1_000_000),
        3000,
        "3 per request with two large windows"
    );
}

fn measure(minute: u64, hour: u64) -> usize {
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: key-auth\n  route: r0\n- name: rate-limiting\n  route: r0\n  config: {{minute: {minute}, hour: {hour}, limit_by: credential}}\n"
    ));
    let method = http::Method::GET;
    let now = gatehouse_plugins::now_ms();
    let mut req_headers = http::HeaderMap::with_capacity(32);
    let mut resp_headers = http::HeaderMap::with_capacity(32);
    let mut one = |count: bool| {
        req_headers.clear();
        req_headers.insert("apikey", http::HeaderValue::from_static("alice-key"));
        resp_headers.clear();
        counting_alloc::set_counting(count);
        let mut st = PluginState::new(Some(0), Some(0));
        let mut ctx = RequestCtx::new(
            &method,
            "/r0",
            "",
            &mut req_headers,
            "10.0.0.1".parse().unwrap(),
        );
        ctx.now_ms = now;
        let exit = p.run_access(&mut st, &mut ctx);
        assert!(exit.is_none());
        p.run_header_filter(&mut st, http::StatusCode::OK, &mut resp_headers);
        p.run_log(&st, http::StatusCode::OK);
        counting_alloc::set_counting(false);
    };
    one(false); // warm-up: creates the window counters and the shared number table
    one(false);
    let before = counting_alloc::allocations();
    for _ in 0..1000 {
        one(true);
    }
    let n = counting_alloc::allocations() - before;
    assert_eq!(
        resp_headers.get("x-ratelimit-limit-minute").unwrap(),
        minute.to_string().as_str()
    );
    assert_eq!(req_headers.get("x-consumer-username").unwrap(), "alice");
    n
}
