//! `POST /config` body forms and answers, `/status`, `/`, `/plugins/enabled`, `/endpoints`,
//! `/schemas/{entity}` and `POST /schemas/{entity}/validate`, against a real listener.

mod support;

use serde_json::{json, Value};
use support::*;

fn hash(a: &Admin) -> String {
    a.json("/status")["configuration_hash"]
        .as_str()
        .expect("configuration_hash")
        .to_string()
}

const SMALL: &str = "_format_version: \"3.0\"\nservices:\n- name: s1\n  url: http://s1.test\n";

#[test]
fn status_hash_follows_loads_and_check_hash_short_circuits() {
    let a = Admin::start();
    let empty = hash(&a);
    assert_eq!(empty, "0".repeat(32));
    a.load(SMALL);
    let first = hash(&a);
    assert_ne!(first, empty);
    assert_eq!(first, gatehouse_config::hash_text(SMALL));

    let r = a.call(
        "POST",
        "/config?check_hash=1",
        "text/yaml",
        SMALL.as_bytes(),
    );
    assert_eq!(r.status, 304, "{}", r.body);
    assert!(r.header("x-kong-admin-latency").is_some());

    a.load(&sample());
    assert_ne!(hash(&a), first);
}

#[test]
fn post_config_body_forms() {
    let a = Admin::start();
    // {"config": "<text>"}
    let body = json!({ "config": SMALL }).to_string();
    let r = a.call("POST", "/config", "application/json", body.as_bytes());
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["services"].as_object().map(|o| o.len()), Some(1));

    // multipart config=@file
    let yaml = sample();
    let boundary = "gatehouse-test-boundary";
    let mut mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"config\"; filename=\"kong.yml\"\r\nContent-Type: application/x-yaml\r\n\r\n"
    );
    mp.push_str(&yaml);
    mp.push_str(&format!("\r\n--{boundary}--\r\n"));
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = a.call("POST", "/config", &ct, mp.as_bytes());
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["services"].as_object().map(|o| o.len()), Some(3));
    // The flattened map keeps Kong's DB-less output: keys as loaded, passwords hashed.
    let ka = v["keyauth_credentials"].as_object().expect("key-auths");
    assert!(ka.values().any(|k| k["key"] == "alice-key"));
    let ba = v["basicauth_credentials"].as_object().expect("basic-auths");
    assert!(ba.values().all(|b| b["password"] != "s3cret"));
    assert_eq!(
        a.json("/services")["data"].as_array().map(Vec::len),
        Some(3)
    );

    // Empty bodies in every form.
    for (ct, body) in [
        ("text/yaml", ""),
        ("application/json", "  \n"),
        ("application/json", "{\"config\": \"\"}"),
    ] {
        let r = a.call("POST", "/config", ct, body.as_bytes());
        assert_eq!(r.status, 400, "{ct} {body:?}: {}", r.body);
        assert_eq!(
            r.json(),
            json!({"message": "expected a declarative configuration"})
        );
    }
}

#[test]
fn invalid_config_is_400_code_14_and_changes_nothing() {
    let a = Admin::start();
    a.load(SMALL);
    let before = hash(&a);
    let bad = "_format_version: \"3.0\"\nservices:\n- name: broken\n  port: 99999\n";
    let r = a.call("POST", "/config", "text/yaml", bad.as_bytes());
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["code"], 14);
    assert_eq!(v["name"], "invalid declarative configuration");
    assert!(v["fields"]["services"].is_array(), "{v}");
    assert!(v.get("flattened_errors").is_none());

    let r = a.call(
        "POST",
        "/config?flatten_errors=1",
        "text/yaml",
        bad.as_bytes(),
    );
    assert_eq!(r.status, 400);
    let v = r.json();
    let flat = v["flattened_errors"].as_array().expect("flattened_errors");
    assert_eq!(flat[0]["entity_type"], "service");
    assert_eq!(flat[0]["entity_name"], "broken");
    assert_eq!(hash(&a), before);
    assert_eq!(a.json("/services/s1")["name"], "s1");
}

#[test]
fn node_info_plugins_and_endpoints() {
    let a = Admin::start();
    let root = a.get("/");
    assert_eq!(root.status, 200);
    assert!(root.header("x-kong-admin-latency").is_some());
    let v = root.json();
    assert_eq!(v["configuration"]["database"], "off");
    assert_eq!(v["node_id"], "9e3b8f0c-0000-4000-8000-000000000001");

    let enabled = a.json("/plugins/enabled");
    let list = enabled["enabled_plugins"].as_array().expect("list");
    assert!(list.iter().any(|p| p == "key-auth"));

    let eps = a.json("/endpoints");
    let eps: Vec<&str> = eps["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "/",
        "/config",
        "/services",
        "/services/{services}/routes",
        "/key-auths",
        "/tags/{tags}",
    ] {
        assert!(eps.contains(&want), "{want} in {eps:?}");
    }
}

#[test]
fn schemas_describe_entities() {
    let a = Admin::start();
    for entity in [
        "services",
        "routes",
        "consumers",
        "upstreams",
        "targets",
        "plugins",
        "certificates",
        "snis",
        "ca_certificates",
    ] {
        let v = a.json(&format!("/schemas/{entity}"));
        let fields = v["fields"].as_array().expect("fields");
        assert_eq!(fields[0]["id"]["type"], "string", "{entity}");
        assert_eq!(fields[0]["id"]["uuid"], true, "{entity}");
    }
    let r = a.get("/schemas/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No entity named 'nope'");
}

#[test]
fn schema_validate() {
    let a = Admin::start();
    let ok: &[(&str, Value)] = &[
        ("services", json!({"name": "x", "host": "x.test"})),
        (
            "routes",
            json!({"paths": ["/x"], "service": {"id": ID_SVC_A}}),
        ),
        ("consumers", json!({"username": "carol"})),
        ("upstreams", json!({"name": "up.internal"})),
        (
            "targets",
            json!({"target": "10.0.0.1:80", "upstream": {"id": ID_UPSTREAM}}),
        ),
        ("plugins", json!({"name": "key-auth"})),
        (
            "snis",
            json!({"name": "x.test", "certificate": {"id": ID_CERT}}),
        ),
        (
            "keyauth_credentials",
            json!({"key": "k", "consumer": {"id": ID_CONSUMER}}),
        ),
    ];
    for (entity, body) in ok {
        let path = format!("/schemas/{entity}/validate");
        let r = a.call(
            "POST",
            &path,
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{entity}: {}", r.body);
        assert_eq!(r.json(), json!({"message": "schema validation successful"}));
    }
    let bad: &[(&str, Value, &str)] = &[
        ("services", json!({"name": "x"}), "host"),
        ("services", json!({"host": "x.test", "port": 70000}), "port"),
        (
            "upstreams",
            json!({"name": "up.internal", "slots": 5}),
            "slots",
        ),
        (
            "consumers",
            json!({"username": "x", "nonsense": 1}),
            "nonsense",
        ),
    ];
    for (entity, body, field) in bad {
        let path = format!("/schemas/{entity}/validate");
        let r = a.call(
            "POST",
            &path,
            "application/json",
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 400, "{entity} {body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["code"], 2, "{v}");
        assert_eq!(v["name"], "schema violation");
        assert!(v["fields"][*field].is_string(), "{entity}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("schema violation") && msg.contains(field),
            "{msg}"
        );
    }
    let r = a.call("POST", "/schemas/nope/validate", "application/json", b"{}");
    assert_eq!(r.status, 404);
}

#[test]
fn every_error_is_json_with_latency() {
    let a = Admin::start();
    // A query string axum's extractor rejects still gets a JSON body.
    let r = a.call(
        "POST",
        "/config?check_hash=%ZZ",
        "text/yaml",
        SMALL.as_bytes(),
    );
    assert!(r.status == 201 || r.status >= 400, "{}", r.status);
    if r.status >= 400 {
        assert!(r.json().get("message").is_some(), "{}", r.body);
    }
    for (m, p) in [
        ("GET", "/nope"),
        ("PATCH", "/config"),
        ("GET", "/schemas/x/y/z"),
    ] {
        let r = a.call(m, p, "", b"");
        assert!(r.status >= 400);
        assert!(r.json().get("message").is_some(), "{m} {p}: {}", r.body);
        assert!(r.header("x-kong-admin-latency").is_some(), "{m} {p}");
    }
}
