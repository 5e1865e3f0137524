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
