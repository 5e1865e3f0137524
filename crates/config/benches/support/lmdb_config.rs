//! Kong's LMDB-benchmark config, built in Rust (same shape and order as
//! `bench/gen_lmdb_config.py`): N services with one route each, key-auth and
//! request-termination on every route, N consumers with one key-auth credential.
//! Shared by the config and store benches (`#[path]`-included).

use serde_json::{json, Map, Value};

/// N: `GATEHOUSE_BENCH_N`, else 10,000 (Kong's benchmark size).
pub fn n() -> usize {
    std::env::var("GATEHOUSE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// The config as JSON text, or the file named by `GATEHOUSE_BENCH_CONFIG` when set.
pub fn config_text(n: usize) -> String {
    if let Ok(path) = std::env::var("GATEHOUSE_BENCH_CONFIG") {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text;
        }
    }
    config_value(n).to_string()
}

pub fn config_value(n: usize) -> Value {
    let mut services = Vec::with_capacity(n);
    let mut consumers = Vec::with_capacity(n);
    for i in 0..n {
        let mut route = Map::new();
        route.insert("name".into(), json!(format!("route-{i:05}")));
        let path = if i % 10 == 1 {
            format!("~/svc-{i:05}/item/[0-9]+$")
        } else {
            format!("/svc-{i:05}")
        };
        route.insert("paths".into(), json!([path]));
        route.insert(
            "plugins".into(),
            json!([
                {"name": "key-auth", "config": {"key_names": ["apikey"]}},
                {"name": "request-termination", "config": {"status_code": 200, "message": "ok"}}
            ]),
        );
        if i % 10 == 2 {
            route.insert("hosts".into(), json!([format!("svc-{i:05}.example.test")]));
        }
        if i % 20 == 3 {
            route.insert("headers".into(), json!({"x-tenant": [format!("t{i}")]}));
        }
        services.push(json!({
            "name": format!("svc-{i:05}"),
            "url": format!("http://127.0.0.1:9/{i}"),
            "routes": [Value::Object(route)],
        }));
        consumers.push(json!({
            "username": format!("user-{i:05}"),
            "keyauth_credentials": [{"key": format!("key-{i:05}")}],
        }));
    }
    json!({"_format_version": "3.0", "services": services, "consumers": consumers})
}

pub fn options() -> gatehouse_config::ParseOptions {
    gatehouse_config::ParseOptions {
        plugins: gatehouse_config::settings::BUNDLED_PLUGINS
            .iter()
            .map(|p| p.to_string())
            .collect(),
        router_flavor: gatehouse_config::RouterFlavor::TraditionalCompatible,
    }
}
