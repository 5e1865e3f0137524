//! rate-limiting (policy local): Kong's headers, windows, identifiers, 429 — and the
//! guarantee Kong lacks (#2629): concurrent requests never over-admit.
mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gatehouse_plugins::{compile, PluginState, RateLimitStore, RequestCtx};

fn rl(cfg: &str) -> String {
    format!("{BASE}plugins:\n- name: rate-limiting\n  route: r0\n  config: {cfg}\n")
}

// 2024-02-29T13:45:30.250Z
const NOW: i64 = 1_709_214_330_250;

#[test]
fn headers_and_429() {
    let p = plugins(&rl("{minute: 3, hour: 10, limit_by: ip}"));
    for i in 0..3 {
        let o = run(&p, Req::get("/r0").at(NOW));
        assert!(o.exit.is_none(), "request {i}");
        assert_eq!(o.resp("x-ratelimit-limit-minute"), Some("3"));
        assert_eq!(
            o.resp("x-ratelimit-remaining-minute"),
            Some((2 - i).to_string().as_str())
        );
        assert_eq!(o.resp("x-ratelimit-limit-hour"), Some("10"));
        assert_eq!(
            o.resp("x-ratelimit-remaining-hour"),
            Some((9 - i).to_string().as_str())
        );
        // tightest window = minute (lowest remaining)
        assert_eq!(o.resp("ratelimit-limit"), Some("3"));
        assert_eq!(
            o.resp("ratelimit-remaining"),
            Some((2 - i).to_string().as_str())
        );
        assert_eq!(o.resp("ratelimit-reset"), Some("30"));
        assert_eq!(o.resp("retry-after"), None);
    }
    let o = run(&p, Req::get("/r0").at(NOW));
    assert_eq!(o.status.as_u16(), 429);
    assert_eq!(o.body()["message"], "API rate limit exceeded");
    assert_eq!(o.body()["request_id"], "rid-1");
    assert_eq!(o.resp("retry-after"), Some("30"));
    assert_eq!(o.resp("x-ratelimit-remaining-minute"), Some("0"));
    // refused requests are not counted: the hour window still shows 7 left (no -1 either)
    assert_eq!(o.resp("x-ratelimit-remaining-hour"), Some("7"));
    // another client IP has its own counter; next minute starts afresh
    assert!(run(&p, Req::get("/r0").at(NOW).ip("10.9.9.9"))
        .exit
        .is_none());
    let o = run(&p, Req::get("/r0").at(NOW + 30_000));
    assert!(o.exit.is_none());
    assert_eq!(o.resp("x-ratelimit-remaining-minute"), Some("2"));
    assert_eq!(o.resp("ratelimit-reset"), Some("60"));
}

#[test]
fn tie_prefers_longer_window_and_custom_error() {
    let p = plugins(&rl(
        "{second: 5, minute: 5, error_code: 403, error_message: slow down}",
    ));
    let o = run(&p, Req::get("/r0").at(NOW));
    assert_eq!(o.resp("ratelimit-reset"), Some("30")); // minute wins the tie
    for _ in 0..4 {
        run(&p, Req::get("/r0").at(NOW));
    }
    let o = run(&p, Req::get("/r0").at(NOW));
    assert_eq!(o.status.as_u16(), 403);
    assert_eq!(o.body()["message"], "slow down");
}

#[test]
fn hide_client_headers() {
    let p = plugins(&rl("{second: 1, hide_client_headers: true}"));
    let o = run(&p, Req::get("/r0").at(NOW));
    assert!(o.response.is_empty());
    let o = run(&p, Req::get("/r0").at(NOW));
    assert_eq!(o.status.as_u16(), 429);
    assert_eq!(o.resp("retry-after"), None);
}

#[test]
fn identifiers_fall_back_to_ip() {
    // limit_by consumer without auth → IP
    let p = plugins(&rl("{minute: 1}"));
    assert!(run(&p, Req::get("/r0").at(NOW).ip("1.1.1.1"))
        .exit
        .is_none());
    assert!(run(&p, Req::get("/r0").at(NOW).ip("1.1.1.1"))
        .exit
        .is_some());
    assert!(run(&p, Req::get("/r0").at(NOW).ip("1.1.1.2"))
        .exit
        .is_none());
    // header: per header value, IP when absent
    let p = plugins(&rl("{minute: 1, limit_by: header, header_name: x-tenant}"));
    assert!(run(&p, Req::get("/r0").at(NOW).header("x-tenant", "a"))
        .exit
        .is_none());
    assert!(run(
        &p,
        Req::get("/r0")
            .at(NOW)
            .header("x-tenant", "a")
            .ip("2.2.2.2")
    )
    .exit
    .is_some());
    assert!(run(&p, Req::get("/r0").at(NOW).header("x-tenant", "b"))
        .exit
        .is_none());
    assert!(run(&p, Req::get("/r0").at(NOW)).exit.is_none());
    // path: only the configured path shares a counter
    let p = plugins(&rl("{minute: 1, limit_by: path, path: /r0/x}"));
    let mut a = Req::get("/r0/x").at(NOW);
    a.ip = "3.3.3.3".parse().unwrap();
    assert!(run(&p, a).exit.is_none());
    assert!(run(&p, Req::get("/r0/x").at(NOW).ip("3.3.3.4"))
        .exit
        .is_some());
    // service: all clients share
    let p = plugins(&rl("{minute: 1, limit_by: service}"));
    assert!(run(&p, Req::get("/r0").at(NOW).ip("4.4.4.4"))
        .exit
        .is_none());
    assert!(run(&p, Req::get("/r0").at(NOW).ip("4.4.4.5"))
        .exit
        .is_some());
}

#[test]
fn limit_by_consumer_after_key_auth() {
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: key-auth\n  route: r0\n- name: rate-limiting\n  route: r0\n  config: {{minute: 1}}\n"
    ));
    assert!(
        run(&p, Req::get("/r0?apikey=alice-key").at(NOW).ip("5.5.5.1"))
            .exit
            .is_none()
    );
    // same consumer, other IP: limited
    assert_eq!(
        run(&p, Req::get("/r0?apikey=alice-key").at(NOW).ip("5.5.5.2"))
            .status
            .as_u16(),
        429
    );
    assert!(
        run(&p, Req::get("/r0?apikey=bob-key").at(NOW).ip("5.5.5.2"))
            .exit
            .is_none()
    );
}

#[test]
fn counters_survive_recompile_with_same_plugin_id() {
    let store = RateLimitStore::new();
    let cfg = config(&rl("{minute: 2}"));
    let p1 = compile(&cfg, &store).unwrap();
    assert!(run(&p1, Req::get("/r0").at(NOW)).exit.is_none());
    let p2 = compile(&cfg, &store).unwrap();
    assert!(run(&p2, Req::get("/r0").at(NOW)).exit.is_none());
    assert!(run(&p2, Req::get("/r0").at(NOW)).exit.is_some());
    store.sweep(NOW + 3_600_000 * 24 * 400);
    assert!(store.is_empty());
}

#[test]
fn concurrent_requests_never_over_admit() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 2_000;
    const LIMIT: usize = 1_000;
    let store = RateLimitStore::new();
    let p = Arc::new(
        compile(
            &config(&rl(&format!(
                "{{minute: {LIMIT}, hour: {}, limit_by: ip}}",
                LIMIT * 100
            ))),
            &store,
        )
        .unwrap(),
    );
    for window in 0..3i64 {
        let admitted = Arc::new(AtomicUsize::new(0));
        let now = NOW - NOW % 60_000 + window * 60_000;
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let p = p.clone();
                let admitted = admitted.clone();
                std::thread::spawn(move || {
                    let method = http::Method::GET;
                    for _ in 0..PER_THREAD {
                        let mut h = http::HeaderMap::new();
                        let mut st = PluginState::new(Some(0), Some(0));
                        let mut ctx =
                            RequestCtx::new(&method, "/r0", "", &mut h, "9.9.9.9".parse().unwrap());
                        ctx.now_ms = now;
                        if p.run_access(&mut st, &mut ctx).is_none() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            admitted.load(Ordering::Relaxed),
            LIMIT,
            "window {window}: exactly the limit is admitted"
        );
    }
}
