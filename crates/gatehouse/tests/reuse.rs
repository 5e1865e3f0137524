//! Reloads that reuse parts of the previous snapshot (Kong's per-group hashes: the router when
//! routes and services are unchanged, the compiled plugin chains when plugins, consumers and
//! route/service ids are) still serve exactly the new config: a changed route routes with the
//! reused chains, and a changed credential or plugin config is never served stale.

mod common;

use common::*;

/// One service with two routes: `/a` behind key-auth, both answered by request-termination.
fn config(path_a: &str, key: &str, message: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9
  routes:
  - name: a
    paths: [{path_a}]
    plugins:
    - name: key-auth
    - name: request-termination
      config: {{status_code: 200, message: {message}}}
  - name: b
    paths: [/b]
    plugins:
    - name: request-termination
      config: {{status_code: 200, message: b-ok}}
consumers:
- username: c
  keyauth_credentials:
  - key: {key}
"#
    )
}

fn load(node: &Node, yaml: &str) {
    let (code, body) =
        http(node.admin, "POST", "/config", "text/yaml", yaml.as_bytes()).expect("admin answers");
    assert_eq!(code, 201, "{body}");
}

/// (status, body) of `GET path` with an optional `apikey` header.
fn get(node: &Node, path: &str, key: Option<&str>) -> (u16, String) {
    let headers = match key {
        Some(k) => format!("Host: localhost\r\napikey: {k}\r\n"),
        None => "Host: localhost\r\n".to_string(),
    };
    let (code, text) = http_get_with(node.proxy, path, &headers).expect("proxy answers");
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

#[test]
fn reused_parts_never_serve_a_stale_config() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("p"), None);

    load(&node, &config("/a", "k1", "one"));
    assert_eq!(get(&node, "/a", None).0, 401);
    let (code, body) = get(&node, "/a", Some("k1"));
    assert_eq!((code, body.contains("one")), (200, true), "{body}");

    // The same config again (a real reload: every part reused).
    load(&node, &config("/a", "k1", "one"));
    assert_eq!(get(&node, "/a", Some("k1")).0, 200);
    assert_eq!(get(&node, "/a", Some("k2")).0, 401);

    // A route moves (router rebuilt) while plugins and consumers stay (chains reused): the moved
    // route keeps its key-auth and its termination, the old path is gone.
    load(&node, &config("/a2", "k1", "one"));
    let (code, body) = get(&node, "/a2", Some("k1"));
    assert_eq!((code, body.contains("one")), (200, true), "{body}");
    assert_eq!(get(&node, "/a2", None).0, 401);
    assert_eq!(get(&node, "/a", Some("k1")).0, 404);
    let (code, body) = get(&node, "/b", None);
    assert_eq!((code, body.contains("b-ok")), (200, true), "{body}");

    // A credential changes (chains reused, credential index rebuilt): the old key is refused,
    // the new one accepted.
    load(&node, &config("/a2", "k2", "one"));
    assert_eq!(get(&node, "/a2", Some("k1")).0, 401);
    assert_eq!(get(&node, "/a2", Some("k2")).0, 200);

    // A plugin config changes while routes stay (router reused, chains compiled): the new
    // message is served.
    load(&node, &config("/a2", "k2", "two"));
    let (code, body) = get(&node, "/a2", Some("k2"));
    assert_eq!((code, body.contains("two")), (200, true), "{body}");
    let (code, body) = get(&node, "/b", None);
    assert_eq!((code, body.contains("b-ok")), (200, true), "{body}");
}
