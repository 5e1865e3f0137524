//! `/metrics` on the Status and Admin APIs of a running node, after real proxied requests:
//! Kong's series for the routes the prometheus plugin covers, node and process metrics, and an
//! exposition `promtool check metrics` accepts.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::*;

fn config(status_port: &str, flags: bool) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: status-svc
  url: http://127.0.0.1:{status_port}
  routes:
  - name: r
    paths: [/r]
  - name: t
    paths: [/t]
    plugins:
    - name: request-termination
      config: {{status_code: 503, message: closed}}
plugins:
- name: prometheus
  config:
    status_code_metrics: {flags}
    latency_metrics: {flags}
    bandwidth_metrics: {flags}
    upstream_health_metrics: {flags}
    per_consumer: false
"#
    )
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let (code, raw) = http_get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{raw}");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a body");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // The exposition is streamed while it renders.
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    dechunk(body)
}

/// Decodes a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").expect("chunk end");
    }
}

/// The value of the sample line starting with `series ` (exact series text).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `promtool check metrics` when installed (`.ci/run` installs Debian's `prometheus`).
fn promtool(text: &str) {
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
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    // Exit 3 = lint findings about names Kong chose (e.g. `_total` on a gauge); 1 = invalid.
    assert!(
        out.status.code() != Some(1),
        "promtool rejected the exposition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const R: &str = r#"service="status-svc",route="r""#;
const T: &str = r#"service="status-svc",route="t""#;

#[test]
fn metrics_after_proxied_requests_on_status_and_admin_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    std::fs::create_dir_all(&prefix).unwrap();
    let node = Node::start(&prefix, Some(&config("STATUS_PORT", true)));
    for _ in 0..3 {
        assert_eq!(http_get(node.proxy, "/r/status").unwrap().0, 200);
    }
    for _ in 0..2 {
        assert_eq!(http_get(node.proxy, "/t").unwrap().0, 503);
    }
    assert_eq!(http_get(node.proxy, "/nowhere").unwrap().0, 404);

    let text = scrape(node.status);
    let cases: &[(String, f64)] = &[
        (
            format!(
                r#"kong_http_requests_total{{{R},code="200",source="service",workspace="default",consumer=""}}"#
            ),
            3.0,
        ),
        (
            format!(
                r#"kong_http_requests_total{{{T},code="503",source="kong",workspace="default",consumer=""}}"#
            ),
            2.0,
        ),
        (
            format!(r#"kong_upstream_latency_ms_count{{{R},workspace="default"}}"#),
            3.0,
        ),
        (
            format!(r#"kong_request_latency_ms_count{{{R},workspace="default"}}"#),
            3.0,
        ),
        (
            format!(r#"kong_kong_latency_ms_count{{{T},workspace="default"}}"#),
            2.0,
        ),
        ("kong_datastore_reachable".to_string(), 1.0),
    ];
    for (series, want) in cases {
        assert_eq!(sample(&text, series), Some(*want), "{series}\n---\n{text}");
    }
    // Every proxied request (the 404 too) counts; scrapes go to other listeners.
    let nginx = text
        .lines()
        .find(|l| l.starts_with("kong_nginx_requests_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(nginx, Some(6.0), "{text}");
    assert!(
        text.contains(r#"state="accepted"} 6"#),
        "six connections accepted:\n{text}"
    );
    assert!(text.contains("gatehouse_router_cache_"), "{text}");
    assert!(
        sample(&text, "gatehouse_lmdb_size_bytes").is_some_and(|v| v > 0.0),
        "{text}"
    );
    // Kong's memory gauges (dashboards read them): the entity cache is LMDB here, the worker
    // VM bytes are the process's resident memory under its pid.
    let gauge = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let used = gauge(r#"kong_memory_lua_shared_dict_bytes{node_id=""#);
    let total = gauge(r#"kong_memory_lua_shared_dict_total_bytes{node_id=""#);
    assert!(used.is_some_and(|v| v > 0.0), "{text}");
    assert_eq!(
        total,
        Some((2048u64 << 20) as f64),
        "default lmdb_map_size\n{text}"
    );
    assert!(
        text.contains(r#"shared_dict="kong_db_cache",kong_subsystem="http"}"#),
        "{text}"
    );
    let rss = gauge(r#"kong_memory_workers_lua_vms_bytes{node_id=""#);
    assert!(
        rss.is_some_and(|v| v > 1e6 && v < 4e9),
        "resident bytes of the gateway\n{text}"
    );
    promtool(&text);

    // The Admin API serves the same exposition.
    let admin = scrape(node.admin);
    assert!(admin.contains(&cases[0].0), "{admin}");
    promtool(&admin);

    // A reload keeps the counters of surviving routes and is itself counted; with the flags
    // off, requests stop being recorded per route.
    let yaml = config(&node.status.port().to_string(), false);
    let (code, body) = http(
        node.admin,
        "POST",
        "/config",
        "application/x-yaml",
        yaml.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");
    assert_eq!(http_get(node.proxy, "/r/status").unwrap().0, 200);
    let after = scrape(node.status);
    assert_eq!(sample(&after, &cases[0].0), Some(3.0), "{after}");
    assert_eq!(
        sample(
            &after,
            r#"gatehouse_config_reloads_total{result="success"}"#
        ),
        Some(1.0),
        "{after}"
    );
    promtool(&after);
}
