//! The `gatehouse` binary as a user runs it: a child process, real ports, real LMDB under a
//! temp prefix, signals.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SELF_PROXY: &str = r#"
_format_version: "3.0"
services:
- name: self
  url: http://127.0.0.1:STATUS_PORT
  routes:
  - name: s
    paths: [/s]
"#;

#[test]
fn serves_the_declarative_config_then_the_persisted_one_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    let node = Node::start(&prefix, Some(SELF_PROXY));
    let (code, text) = http_get(node.proxy, "/s/status").unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("configuration_hash"),
        "proxied to the status API: {text}"
    );
    let (code, admin) = http_get(node.admin, "/status").unwrap();
    assert_eq!(code, 200);
    assert!(admin.to_ascii_lowercase().contains("x-kong-admin-latency"));
    assert!(
        !admin.contains("00000000000000000000000000000000"),
        "a real hash: {admin}"
    );
    assert_eq!(http_get(node.status, "/status/ready").unwrap().0, 200);
    let status_port = node.status.port();
    assert!(node.terminate().success());

    // Same prefix, no declarative_config: the LMDB copy is served. The status port must be the
    // same one the persisted config points at.
    let conf = format!(
        "prefix = {}\nproxy_listen = 127.0.0.1:{}\nadmin_listen = 127.0.0.1:{}\nstatus_listen = 127.0.0.1:{status_port}\n",
        prefix.display(),
        free_port(),
        free_port()
    );
    let conf_file = dir.path().join("restart.conf");
    std::fs::write(&conf_file, &conf).unwrap();
    let proxy_port: u16 = conf
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut child = bin()
        .args(["start", "-c"])
        .arg(&conf_file)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy: SocketAddr = ([127, 0, 0, 1], proxy_port).into();
    // The persisted route proxies to the status listener: wait for it before asking.
    let status: SocketAddr = ([127, 0, 0, 1], status_port).into();
    common::wait_for(20, "the status listener", || http_get(status, "/status"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        if let Some(r) = http_get(proxy, "/s/status") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "restarted gatehouse did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.0, 200, "{}", seen.1);
}

#[test]
fn empty_node_is_not_ready_and_answers_404() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), None);
    assert_eq!(http_get(node.status, "/status/ready").unwrap().0, 503);
    let (code, body) = http_get(node.proxy, "/anything").unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("no Route matched with those values"));
}

/// An upstream that answers every request after `delay`.
fn slow_upstream(delay: Duration) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
                );
            });
        }
    });
    port
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_upstream(Duration::from_millis(800));
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- url: http://127.0.0.1:{slow}\n  routes:\n  - paths: [/slow]\n"
    );
    let node = Node::start(&dir.path().join("p"), Some(&yaml));
    let proxy = node.proxy;
    let inflight = std::thread::spawn(move || http_get(proxy, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert!(node.terminate().success());
    let (code, body) = inflight
        .join()
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(code, 200, "{body}");
    assert!(body.ends_with("slow"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited once drained"
    );
    assert!(http_get(proxy, "/slow").is_none(), "no longer listening");
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn config_parse_reports_like_kong_config_parse() {
    let dir = tempfile::tempdir().unwrap();
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kong.yml");
    let out = run(&["config", "parse", good], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("parse successful"));

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: h\n  port: 99999\n",
    )
    .unwrap();
    let out = run(&["config", "parse", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port"), "names the field: {err}");
}

#[test]
fn bad_settings_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("k.conf");
    std::fs::write(&conf, "proxy_lisen = 0.0.0.0:8000\n").unwrap();
    let out = run(&["start", "-c", conf.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("proxy_lisen"));

    let out = run(
        &["start", "-p", dir.path().join("p").to_str().unwrap()],
        &[("KONG_DATABASE", "postgres")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database"));
}

#[test]
fn version_and_help() {
    let out = run(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = run(&["--help"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("start"));
}

#[test]
fn explain_names_the_route_the_upstream_and_the_losers() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kong.yml");
    let out = run(
        &[
            "explain",
            example,
            "GET",
            "http://status.example.test/status-api/x?q=1",
            "-H",
            "x-canary: yes",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("matched route: status-by-host"), "{text}");
    assert!(
        text.contains("upstream: http://127.0.0.1:8100/status-api/x?q=1"),
        "{text}"
    );
    assert!(
        text.contains("status-prefix") && text.contains("lost on priority"),
        "{text}"
    );

    let out = run(
        &[
            "explain",
            example,
            "GET",
            "http://localhost/nowhere",
            "--json",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["matched"].is_null());
}

#[test]
fn debug_explain_on_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), Some(SELF_PROXY));
    let (code, body) = common::http(
        node.admin,
        "GET",
        "/debug/explain?method=GET&url=http%3A%2F%2Flocalhost%2Fs%2Fstatus",
        "text/plain",
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["matched"]["route"]["name"], "s");
    assert_eq!(
        v["matched"]["upstream"]["url"],
        format!("http://127.0.0.1:{}/status", node.status.port())
    );
}

#[test]
fn a_bad_expression_is_a_config_error_naming_route_field_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expr.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:1\n  routes:\n  - name: broken\n    expression: 'http.path == \"/a\" && http.nope == \"x\"'\n",
    )
    .unwrap();
    let out = run(
        &["config", "parse", file.to_str().unwrap()],
        &[("KONG_ROUTER_FLAVOR", "expressions")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken") && err.contains("expression"),
        "{err}"
    );
    assert!(err.contains("column"), "position given: {err}");
}
