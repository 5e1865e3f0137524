//! Hot reload through `POST /config` on a running node: atomic, never hurting traffic, and
//! crash-safe (kill -9 mid-load leaves LMDB with the old or the new config).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gatehouse_config::hash_text;

/// Route `/r` to one of the node's own listeners (both answer `/status`).
fn to_port(port: u16, extra_routes: usize) -> String {
    let mut y = format!(
        "_format_version: \"3.0\"\nservices:\n- name: target\n  url: http://127.0.0.1:{port}\n  routes:\n  - name: r\n    paths: [/r]\n"
    );
    for i in 0..extra_routes {
        y.push_str(&format!(
            "- name: svc-{i}\n  url: http://127.0.0.1:{port}/svc\n  routes:\n  - name: route-{i}\n    paths: [/svc-{i:05}]\n"
        ));
    }
    y
}

fn current_hash(node: &Node) -> String {
    let (_, body) = http(node.admin, "GET", "/status", "text/plain", b"").expect("admin answers");
    let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    v["configuration_hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn config_pushes_under_load_never_fail_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), None);
    let (to_status, to_admin) = (
        to_port(node.status.port(), 200),
        to_port(node.admin.port(), 200),
    );
    let (code, body) = http(
        node.admin,
        "POST",
        "/config",
        "application/x-yaml",
        to_status.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 201, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, bad, proxy) = (stop.clone(), ok.clone(), bad.clone(), node.proxy);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http_get(proxy, "/r/status") {
                        Some((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("unexpected: {other:?}");
                            bad.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for i in 0..12 {
        let body = if i % 2 == 0 { &to_admin } else { &to_status };
        let (code, text) =
            http(node.admin, "POST", "/config", "text/yaml", body.as_bytes()).unwrap();
        assert_eq!(code, 201, "{text}");
        assert_eq!(current_hash(&node), hash_text(body));
        std::thread::sleep(Duration::from_millis(60));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) > 50, "load ran");
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "no request failed during reloads"
    );
}

#[test]
fn a_refused_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), None);
    let good = to_port(node.status.port(), 0);
    assert_eq!(
        http(node.admin, "POST", "/config", "text/yaml", good.as_bytes())
            .unwrap()
            .0,
        201
    );
    let before = current_hash(&node);
    let cases: [(&str, &[u8], u16, &str); 4] = [
        (
            "text/yaml",
            b"_format_version: \"3.0\"\nservices:\n- name: x\n  host: h\n  port: 70000\n",
            400,
            "declarative config is invalid",
        ),
        (
            "text/yaml",
            b"",
            400,
            "expected a declarative configuration",
        ),
        (
            "text/yaml",
            b"_format_version: \"3.0\"\nbogus: []\n",
            400,
            "unknown field",
        ),
        (
            "application/json",
            b"{\"config\": \"\"}",
            400,
            "expected a declarative configuration",
        ),
    ];
    for (ct, body, status, needle) in cases {
        let (code, text) = http(node.admin, "POST", "/config?flatten_errors=1", ct, body).unwrap();
        assert_eq!(code, status, "{text}");
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert_eq!(current_hash(&node), before, "hash unchanged");
    assert_eq!(
        http_get(node.proxy, "/r/status").unwrap().0,
        200,
        "old config still serving"
    );
    let (code, _) = http(
        node.admin,
        "POST",
        "/config?check_hash=1",
        "text/yaml",
        good.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 304, "same config with check_hash");
    let (code, text) = http(
        node.admin,
        "POST",
        "/config?flatten_errors=1",
        "text/yaml",
        b"_format_version: \"3.0\"\nservices:\n- name: x\n  host: h\n  port: 70000\n",
    )
    .unwrap();
    assert_eq!(code, 400);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], 14);
    assert!(v["flattened_errors"].is_array(), "{text}");
}

#[test]
fn config_forms_kong_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), None);
    let yaml = to_port(node.status.port(), 1);
    let wrapped = serde_json::json!({ "config": yaml }).to_string();
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"config\"; filename=\"kong.yml\"\r\nContent-Type: application/x-yaml\r\n\r\n{yaml}\r\n--XyZ--\r\n"
    );
    let cases: [(&str, String); 3] = [
        ("application/json", wrapped),
        ("multipart/form-data; boundary=XyZ", multipart),
        ("text/yaml", yaml.clone()),
    ];
    for (ct, body) in cases {
        let (code, text) = http(node.admin, "POST", "/config", ct, body.as_bytes()).unwrap();
        assert_eq!(code, 201, "{ct}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["services"].as_object().map(|o| o.len()),
            Some(2),
            "{ct}: {text}"
        );
    }
    let (code, text) = http(node.admin, "GET", "/config", "text/plain", b"").unwrap();
    assert_eq!(code, 200);
    assert!(text.contains("_format_version"), "{text}");
}

#[test]
fn kill_9_during_a_load_leaves_the_old_or_the_new_config() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    let small = to_port(1, 0);
    let big = to_port(2, 3000);
    let (old_hash, new_hash) = (hash_text(&small), hash_text(&big));
    for (round, delay_ms) in [0u64, 20, 60, 120, 250].into_iter().enumerate() {
        let mut node = Node::start(&prefix, None);
        let (code, text) =
            http(node.admin, "POST", "/config", "text/yaml", small.as_bytes()).unwrap();
        assert_eq!(code, 201, "{text}");
        let admin = node.admin;
        let big2 = big.clone();
        let push = std::thread::spawn(move || {
            http(admin, "POST", "/config", "text/yaml", big2.as_bytes())
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        node.child.kill().unwrap(); // SIGKILL
        node.child.wait().unwrap();
        let _ = push.join();
        drop(node);

        let node = Node::start(&prefix, None);
        let hash = current_hash(&node);
        assert!(
            hash == old_hash || hash == new_hash,
            "round {round}: unexpected hash {hash}"
        );
    }
}
