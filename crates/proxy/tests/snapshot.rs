//! Snapshot builds reuse unchanged parts (Kong's per-group hashes).

use gatehouse_config::{parse, ParseOptions, RouterFlavor};
use gatehouse_proxy::Snapshot;

fn build(yaml: &str, previous: Option<&Snapshot>) -> Snapshot {
    let opts = ParseOptions {
        plugins: vec![],
        router_flavor: RouterFlavor::TraditionalCompatible,
    };
    let config = parse(yaml, &opts).expect("valid");
    Snapshot::build_from(
        config,
        "h".into(),
        RouterFlavor::TraditionalCompatible,
        previous,
    )
    .expect("builds")
}

const BASE: &str = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:1\n  routes:\n  - name: r\n    paths: [/a]\n";

#[test]
fn router_is_reused_only_when_routes_and_services_are_unchanged() {
    let a = build(BASE, None);
    // Same routing entities (timestamps differ: they default to the load time).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let same = build(&format!("{BASE}consumers:\n- username: c\n"), Some(&a));
    assert!(same.shares_router_with(&a));
    let changed = build(&BASE.replace("/a]", "/b]"), Some(&a));
    assert!(!changed.shares_router_with(&a));
    let svc_changed = build(&BASE.replace("127.0.0.1:1", "127.0.0.1:2"), Some(&a));
    assert!(!svc_changed.shares_router_with(&a));
    assert!(same.generation > a.generation);
}

fn build_with(yaml: &str, previous: Option<&Snapshot>) -> Snapshot {
    let opts = ParseOptions {
        plugins: vec!["key-auth".into(), "request-termination".into()],
        router_flavor: RouterFlavor::TraditionalCompatible,
    };
    let config = parse(yaml, &opts).expect("valid");
    Snapshot::build_from(
        config,
        "h".into(),
        RouterFlavor::TraditionalCompatible,
        previous,
    )
    .expect("builds")
}

const PLUGINS: &str = "plugins:\n- name: key-auth\n  route: r\n- name: request-termination\n  config: {status_code: 200, message: hi}\nconsumers:\n- username: c\n  keyauth_credentials:\n  - key: k1\n";

#[test]
fn plugins_are_reused_only_when_everything_they_compile_from_is_unchanged() {
    let base = format!("{BASE}{PLUGINS}");
    let a = build_with(&base, None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let same = build_with(&base, Some(&a));
    assert!(!a.reused_plugins() && same.reused_plugins());
    // Routes move, plugins stay: the router is rebuilt, the chains are kept.
    let moved = build_with(&base.replace("/a]", "/b]"), Some(&a));
    assert!(!moved.shares_router_with(&a) && moved.reused_plugins());
    // Credentials only feed the credential index, rebuilt at every load (tests/reuse.rs in
    // the gatehouse crate checks through the proxy that a changed key is never served stale).
    assert!(build_with(&base.replace("key: k1", "key: k2"), Some(&a)).reused_plugins());
    let changes = [
        base.replace("message: hi", "message: ho"), // a plugin's config
        base.replace("username: c", "username: d"), // a consumer
        base.replace(": r\n", ": r2\n"),            // a route's id (derived from its name)
        format!("{base}- username: e\n"),           // one more consumer
        base.replace("- name: key-auth\n  route: r\n", ""), // one plugin less
    ];
    for changed in &changes {
        let b = build_with(changed, Some(&a));
        assert!(!b.reused_plugins(), "reused for:\n{changed}");
    }
}

#[test]
fn plugins_echoing_entities_are_never_reused() {
    let base = format!("{BASE}{PLUGINS}").replace("message: hi}", "message: hi, echo: true}");
    let a = build_with(&base, None);
    let b = build_with(&base, Some(&a));
    assert!(!b.reused_plugins());
}
