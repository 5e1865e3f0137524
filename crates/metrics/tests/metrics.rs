//! Registry behaviour end to end: recording from threads, rendering, snapshot swaps, promtool.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_metrics::*;

fn registry(shards: usize) -> Arc<Registry> {
    Registry::new(RegistryOptions {
        shards,
        node_id: "8e0c1b5e-0000-4000-8000-000000000001".into(),
        version: "3.9.0".into(),
        subsystem: "http".into(),
    })
}

fn labels(s: &str, r: &str) -> RouteLabels {
    RouteLabels {
        service: s.into(),
        route: r.into(),
        workspace: "default".into(),
    }
}

fn obs(status: u16) -> Observation {
    Observation {
        status,
        source: Some(Source::Service),
        kong_ms: Some(3),
        upstream_ms: Some(40),
        request_ms: Some(43),
        bytes_in: 100,
        bytes_out: 1000,
    }
}

fn text(reg: &Registry) -> String {
    let mut v = Vec::new();
    reg.render(&mut v).expect("render");
    String::from_utf8(v).expect("utf8")
}

fn promtool(text: &str) -> Option<String> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            eprintln!("SKIPPED promtool check: `promtool` not found (apt-get install prometheus)");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lint findings (exit 3) are about naming conventions Kong's names do not follow
    // (e.g. `_total` on a gauge); parse errors exit 1.
    assert!(
        out.status.code() != Some(1),
        "promtool rejected the exposition:\n{msg}"
    );
    Some(msg)
}

#[test]
fn renders_kong_series_and_passes_promtool() {
    let reg = registry(2);
    let mut b = reg.snapshot_builder();
    let r1 = b.route(labels("svc\"a", "r1"), MetricFlags::ALL);
    let alice = b.consumer("alice");
    b.commit();
    let s0 = reg.shard(0).expect("shard 0");
    assert!(reg.shard(0).is_none(), "a shard index is claimed once");
    let s1 = reg.shard(1).expect("shard 1");
    s0.record(&r1, None, &obs(200));
    s1.record(&r1, None, &obs(200));
    s1.record(&r1, None, &obs(418)); // overflow code
    s0.record(
        &r1,
        Some(&alice),
        &Observation {
            source: Some(Source::Kong),
            ..obs(401)
        },
    );
    s0.request();
    s0.connection_opened();
    s0.router_cache(true);
    reg.process().config_reload(true, Duration::from_millis(12));
    reg.set_upstream_health(Some(vec![TargetHealth {
        upstream: "up".into(),
        target: "a:80".into(),
        address: "10.0.0.1:80".into(),
        state: HealthState::Healthy,
    }]));
    let dropped = Arc::new(AtomicU64::new(7));
    reg.register_external(
        "gatehouse_log_dropped_total",
        "Log records dropped",
        true,
        &[("plugin", "http-log")],
        dropped,
    );

    let t = text(&reg);
    let want = [
        r#"kong_http_requests_total{service="svc\"a",route="r1",code="200",source="service",workspace="default",consumer=""} 2"#,
        r#"kong_http_requests_total{service="svc\"a",route="r1",code="418",source="service",workspace="default",consumer=""} 1"#,
        r#"kong_http_requests_total{service="svc\"a",route="r1",code="401",source="kong",workspace="default",consumer="alice"} 1"#,
        r#"kong_bandwidth_bytes{service="svc\"a",route="r1",direction="egress",workspace="default",consumer=""} 3000"#,
        r#"kong_bandwidth_bytes{service="svc\"a",route="r1",direction="ingress",workspace="default",consumer="alice"} 100"#,
        r#"kong_kong_latency_ms_bucket{service="svc\"a",route="r1",workspace="default",le="2"} 0"#,
        r#"kong_kong_latency_ms_bucket{service="svc\"a",route="r1",workspace="default",le="5"} 4"#,
        r#"kong_kong_latency_ms_bucket{service="svc\"a",route="r1",workspace="default",le="+Inf"} 4"#,
        r#"kong_kong_latency_ms_sum{service="svc\"a",route="r1",workspace="default"} 12"#,
        r#"kong_upstream_latency_ms_bucket{service="svc\"a",route="r1",workspace="default",le="25"} 0"#,
        r#"kong_upstream_latency_ms_bucket{service="svc\"a",route="r1",workspace="default",le="50"} 4"#,
        r#"kong_request_latency_ms_count{service="svc\"a",route="r1",workspace="default"} 4"#,
        r#"kong_nginx_requests_total{node_id="8e0c1b5e-0000-4000-8000-000000000001",subsystem="http"} 1"#,
        r#"kong_nginx_connections_total{node_id="8e0c1b5e-0000-4000-8000-000000000001",subsystem="http",state="active"} 1"#,
        r#"kong_node_info{node_id="8e0c1b5e-0000-4000-8000-000000000001",version="3.9.0"} 1"#,
        r#"kong_upstream_target_health{upstream="up",target="a:80",address="10.0.0.1:80",state="healthy",subsystem="http"} 1"#,
        r#"kong_datastore_reachable 1"#,
        r#"gatehouse_config_reloads_total{result="success"} 1"#,
        r#"gatehouse_config_reload_duration_seconds_bucket{le="0.025"} 1"#,
        r#"gatehouse_router_cache_hits_total 1"#,
        r#"gatehouse_log_dropped_total{plugin="http-log"} 7"#,
    ];
    for w in want {
        assert!(t.contains(w), "missing line {w}\n---\n{t}");
    }
    if let Some(msg) = promtool(&t) {
        eprintln!("promtool: {msg}");
    }
}

#[test]
fn flags_off_record_nothing_per_route() {
    let reg = registry(1);
    let mut b = reg.snapshot_builder();
    let r = b.route(labels("s", "r"), MetricFlags::default());
    b.commit();
    let s = reg.shard(0).expect("shard");
    s.record(&r, None, &obs(200));
    let t = text(&reg);
    assert!(!t.contains("kong_http_requests_total{"));
    assert!(!t.contains("kong_kong_latency_ms_bucket{"));
}

#[test]
fn snapshot_swap_keeps_surviving_series_and_drops_removed() {
    let reg = registry(1);
    let s = reg.shard(0).expect("shard");
    let mut b = reg.snapshot_builder();
    let keep = b.route(labels("s", "keep"), MetricFlags::ALL);
    let gone = b.route(labels("s", "gone"), MetricFlags::ALL);
    b.commit();
    s.record(&keep, None, &obs(200));
    s.record(&gone, None, &obs(200));

    let mut b = reg.snapshot_builder();
    let keep2 = b.route(labels("s", "keep"), MetricFlags::ALL);
    let new = b.route(labels("s", "new"), MetricFlags::ALL);
    b.commit();
    s.record(&keep2, None, &obs(200));
    s.record(&new, None, &obs(200));
    let t = text(&reg);
    assert!(
        t.contains(
            r#"route="keep",code="200",source="service",workspace="default",consumer=""} 2"#
        ),
        "{t}"
    );
    assert!(
        t.contains(r#"route="new",code="200",source="service",workspace="default",consumer=""} 1"#)
    );
    assert!(!t.contains(r#"route="gone""#));
    assert_eq!(reg.route_series(), 2);
}

#[test]
fn concurrent_shards_sum_exactly() {
    const THREADS: usize = 4;
    const N: u64 = 200_000;
    let reg = registry(THREADS);
    let mut b = reg.snapshot_builder();
    let r = b.route(labels("s", "r"), MetricFlags::ALL);
    b.commit();
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let shard = reg.shard(i).expect("shard");
            let r = r.clone();
            std::thread::spawn(move || {
                for k in 0..N {
                    shard.record(&r, None, &obs(if k % 2 == 0 { 200 } else { 503 }));
                    shard.request();
                }
            })
        })
        .collect();
    // Scrape while they write: must not block or panic.
    while !handles.iter().all(|h| h.is_finished()) {
        let _ = text(&reg);
    }
    for h in handles {
        h.join().expect("join");
    }
    let t = text(&reg);
    let half = THREADS as u64 * N / 2;
    assert!(
        t.contains(&format!(
            r#"code="200",source="service",workspace="default",consumer=""}} {half}"#
        )),
        "{t}"
    );
    assert!(t.contains(&format!(
        r#"code="503",source="service",workspace="default",consumer=""}} {half}"#
    )));
    assert!(t.contains(&format!(r#"subsystem="http"}} {}"#, THREADS as u64 * N)));
}

/// 10k routes × (4 status codes + 3 histograms) ≈ 40k counter series + 30k histogram series
/// (≈ 500k exposition lines). Prints render time and output size; `--release` for real numbers.
#[test]
fn render_10k_routes() {
    let reg = registry(2);
    let mut b = reg.snapshot_builder();
    let routes: Vec<_> = (0..10_000)
        .map(|i| {
            b.route(
                labels(&format!("service-{}", i / 10), &format!("route-{i}")),
                MetricFlags::ALL,
            )
        })
        .collect();
    b.commit();
    let s0 = reg.shard(0).expect("shard");
    let s1 = reg.shard(1).expect("shard");
    for (i, r) in routes.iter().enumerate() {
        for (k, code) in [200u16, 404, 500, 503].into_iter().enumerate() {
            let s = if (i + k) % 2 == 0 { &s0 } else { &s1 };
            s.record(
                r,
                None,
                &Observation {
                    kong_ms: Some(k as u64 * 7),
                    upstream_ms: Some(i as u64 % 3000),
                    ..obs(code)
                },
            );
        }
    }
    let mut sink = std::io::sink();
    let t0 = Instant::now();
    let mut counted = CountingWriter(&mut sink, 0);
    reg.render(&mut counted).expect("render");
    let took = t0.elapsed();
    let bytes = counted.1;
    let full = text(&reg);
    let series = full.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!(
        "render_10k_routes: {series} samples, {:.1} MB text, render {:.1} ms (streamed to a sink)",
        bytes as f64 / 1e6,
        took.as_secs_f64() * 1e3
    );
    assert!(series > 100_000);
    if std::env::var_os("GATEHOUSE_PROMTOOL_BIG").is_some() {
        promtool(&full);
    }
}

struct CountingWriter<'a, W>(&'a mut W, usize);
impl<W: std::io::Write> std::io::Write for CountingWriter<'_, W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.1 += b.len();
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
