//! request-transformer / response-transformer behaviours (Kong spec `03-plugins/
//! {36-request-transformer,15-response-transformer}`), and the observer plugins' schemas.
mod common;
use common::*;

use gatehouse_plugins::{Observer, RequestTransformerConfig, ResponseTransformerConfig};
use http::{HeaderMap, HeaderValue};
use serde_json::json;

fn with(name: &str, cfg: &str) -> gatehouse_plugins::Plugins {
    plugins(&format!(
        "{BASE}plugins:\n- name: {name}\n  route: r0\n  config: {cfg}\n"
    ))
}

#[test]
fn request_headers_in_kong_order() {
    let p = with(
        "request-transformer",
        "{remove: {headers: [x-gone, host]}, rename: {headers: [\"x-old:x-new\"]}, replace: {headers: [\"x-r:replaced\", \"x-absent:no\"]}, add: {headers: [\"x-r:not-added\", \"x-add:$(headers.x_src)\"]}, append: {headers: [\"x-r:two\"]}}",
    );
    let o = run(
        &p,
        Req::get("/r0")
            .header("host", "h.test")
            .header("x-gone", "1")
            .header("x-old", "a")
            .header("x-old", "b")
            .header("x-new", "lost")
            .header("x-r", "orig")
            .header("x-src", "templated"),
    );
    assert!(o.exit.is_none());
    let all = |n: &str| {
        o.upstream
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(o.up("x-gone"), None);
    assert_eq!(o.up("host"), Some("h.test"), "host is not removable");
    assert_eq!(o.up("x-old"), None);
    assert_eq!(all("x-new"), ["a", "b"]);
    assert_eq!(all("x-r"), ["replaced", "two"]);
    assert_eq!(o.up("x-absent"), None);
    assert_eq!(o.up("x-add"), Some("templated"));
}

#[test]
fn request_query_uri_method_host() {
    let p = with(
        "request-transformer",
        "{http_method: POST, remove: {querystring: [drop]}, rename: {querystring: [\"old:new\"]}, replace: {querystring: [\"r:1\"], uri: \"/v2/$(query_params.id)\", headers: [\"host:up.test\"]}, add: {querystring: [\"a:x y\", \"r:no\"]}, append: {querystring: [\"r:2\"]}}",
    );
    let o = run(&p, Req::get("/r0?id=7&drop=1&old=o&r=0&z"));
    let st = &o.state;
    assert_eq!(
        st.query_rewrite.as_deref(),
        Some("a=x%20y&id=7&new=o&r=1&r=2&z")
    );
    assert_eq!(st.path_rewrite.as_deref(), Some("/v2/7"));
    assert_eq!(st.method_rewrite, Some(http::Method::POST));
    assert_eq!(st.host_rewrite.as_ref().unwrap(), "up.test");
    // no query op configured: the query is untouched
    let o = run(
        &with("request-transformer", "{add: {headers: [\"x:1\"]}}"),
        Req::get("/r0?b=1&a=2"),
    );
    assert!(o.state.query_rewrite.is_none());
}

#[test]
fn request_json_body() {
    let cfg: RequestTransformerConfig = serde_json::from_value(json!({
        "http_method": null,
        "remove": {"body": ["gone"], "headers": [], "querystring": []},
        "rename": {"body": ["old:new"], "headers": [], "querystring": []},
        "replace": {"body": ["r:replaced", "f:no"], "headers": [], "querystring": [], "uri": null},
        "add": {"body": ["r:no", "added:yes", "f:yes"], "headers": [], "querystring": []},
        "append": {"body": ["s:two", "n:x"], "headers": [], "querystring": []},
    }))
    .unwrap();
    let out = gatehouse_plugins::transform_request_json_body(
        &cfg,
        br#"{"gone":1,"old":"o","r":"x","f":false,"s":"one","n":5}"#,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"r":"replaced","f":"yes","s":["one","two"],"n":["x"],"new":"o","added":"yes"})
    );
    // empty body: only add/append apply; invalid JSON: untouched
    let v: serde_json::Value =
        serde_json::from_slice(&gatehouse_plugins::transform_request_json_body(&cfg, b"").unwrap())
            .unwrap();
    assert_eq!(
        v,
        json!({"r":"no","added":"yes","f":"yes","s":["two"],"n":["x"]})
    );
    assert!(gatehouse_plugins::transform_request_json_body(&cfg, b"{nope").is_none());

    // the runtime flags JSON requests only
    let p = with("request-transformer", "{add: {body: [\"k:v\"]}}");
    let o = run(
        &p,
        Req::get("/r0").header("content-type", "application/json; charset=utf-8"),
    );
    assert!(p.needs_request_body(&o.state));
    assert_eq!(
        p.transform_request_body(&o.state, b"{}").unwrap(),
        br#"{"k":"v"}"#
    );
    let o = run(&p, Req::get("/r0").header("content-type", "text/plain"));
    assert!(!p.needs_request_body(&o.state));
}

#[test]
fn response_headers_and_body() {
    let p = with(
        "response-transformer",
        "{remove: {headers: [x-gone]}, rename: {headers: [\"x-old:x-new\"]}, replace: {headers: [\"x-r:replaced\", \"x-absent:no\"]}, add: {headers: [\"x-r:no\", \"x-add:yes\"], json: [\"added:1\"], json_types: [number]}, append: {headers: [\"x-r:two\"]}}",
    );
    let mut up = HeaderMap::new();
    for (k, v) in [
        ("x-gone", "1"),
        ("x-old", "a"),
        ("x-r", "orig"),
        ("content-type", "application/json"),
        ("content-length", "2"),
    ] {
        up.append(k, HeaderValue::from_static(v));
    }
    let o = run_resp(&p, Req::get("/r0"), up);
    let all = |n: &str| {
        o.response
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(o.resp("x-gone"), None);
    assert_eq!(all("x-new"), ["a"]);
    assert_eq!(all("x-r"), ["replaced", "two"]);
    assert_eq!(o.resp("x-absent"), None);
    assert_eq!(o.resp("x-add"), Some("yes"));
    assert_eq!(o.resp("content-length"), None, "body will change");
    assert!(p.needs_response_body(&o.state));
    assert_eq!(
        p.transform_response_body(&o.state, br#"{"a":true}"#)
            .unwrap(),
        br#"{"a":true,"added":1}"#
    );

    // not JSON: no body work, Content-Length kept
    let mut up = HeaderMap::new();
    up.insert("content-type", HeaderValue::from_static("text/html"));
    up.insert("content-length", HeaderValue::from_static("2"));
    let o = run_resp(&p, Req::get("/r0"), up);
    assert_eq!(o.resp("content-length"), Some("2"));
    assert!(!p.needs_response_body(&o.state));
}

#[test]
fn response_json_types() {
    let cfg: ResponseTransformerConfig = serde_json::from_value(json!({
        "remove": {"json": ["gone"], "headers": []},
        "rename": {"json": ["old:new"], "headers": []},
        "replace": {"json": ["b:true", "s:x", "f:1"], "json_types": ["boolean", "string", "number"], "headers": []},
        "add": {"json": ["n:1.5", "bad:x"], "json_types": ["number", "number"], "headers": []},
        "append": {"json": ["arr:c"], "json_types": [], "headers": []},
    }))
    .unwrap();
    let out = gatehouse_plugins::transform_response_json_body(
        &cfg,
        br#"{"gone":1,"old":null,"b":"x","s":"y","f":false,"arr":["a"]}"#,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"b":true,"s":"x","f":false,"arr":["a","c"],"new":null,"n":1.5})
    );
    assert!(gatehouse_plugins::transform_response_json_body(&cfg, b"[1]").is_none());
}

#[test]
fn transformer_schemas() {
    let cases = [
        (
            "request-transformer",
            "{add: {headers: [\"bad header:x\"]}}",
            "config.add.headers[0]",
            "'bad header' is not a valid header",
        ),
        (
            "request-transformer",
            "{add: {querystring: [\"k\"]}}",
            "config.add.querystring[0]",
            "key 'k' has no value",
        ),
        (
            "request-transformer",
            "{rename: {headers: [\"a:b c\"]}}",
            "config.rename.headers[0]",
            "'b c' is not a valid header",
        ),
        (
            "request-transformer",
            "{http_method: get}",
            "config.http_method",
            "invalid value: get",
        ),
        (
            "response-transformer",
            "{add: {json: [nocolon]}}",
            "config.add.json[0]",
            "invalid value: nocolon",
        ),
        (
            "response-transformer",
            "{add: {json_types: [object]}}",
            "config.add.json_types[0]",
            "expected one of: boolean, number, string",
        ),
    ];
    for (name, cfg, path, msg) in cases {
        let c = config(&format!(
            "{BASE}plugins:\n- name: {name}\n  config: {cfg}\n"
        ));
        let errs = gatehouse_plugins::compile(&c, &gatehouse_plugins::RateLimitStore::new())
            .err()
            .unwrap()
            .errors;
        assert_eq!(
            (errs[0].path_string().as_str(), errs[0].message.as_str()),
            (path, msg),
            "{name} {cfg}"
        );
    }
    let p = with("request-transformer", "{}");
    let c = p.config_of(
        config(&format!(
            "{BASE}plugins:\n- name: request-transformer\n  route: r0\n  config: {{}}\n"
        ))
        .plugins[0]
            .id,
    );
    assert_eq!(
        c.unwrap()["replace"],
        json!({"body": [], "headers": [], "querystring": [], "uri": null})
    );
}

#[test]
fn observers_defaults_validation_and_lookup() {
    let yaml = format!(
        "{BASE}plugins:
- name: prometheus
  config: {{status_code_metrics: true}}
- name: http-log
  route: r0
  config: {{http_endpoint: \"http://log.test/x\", queue_size: 5}}
- name: file-log
  service: svc2
  config: {{path: /tmp/gh.log}}
- name: opentelemetry
  route: r0
  config: {{endpoint: \"http://otel.test:4318/v1/traces\"}}
"
    );
    let cfg = config(&yaml);
    let p = gatehouse_plugins::compile(&cfg, &gatehouse_plugins::RateLimitStore::new()).unwrap();
    assert_eq!(
        p.config_of(cfg.plugins[0].id).unwrap(),
        json!({"per_consumer": false, "status_code_metrics": true, "ai_metrics": false, "latency_metrics": false,
               "bandwidth_metrics": false, "upstream_health_metrics": false, "wasm_metrics": false})
    );
    let hl = p.config_of(cfg.plugins[1].id).unwrap();
    assert_eq!(hl["method"], "POST");
    assert_eq!(hl["content_type"], "application/json");
    assert_eq!(hl["timeout"].as_f64(), Some(10000.0));
    assert_eq!(hl["keepalive"].as_f64(), Some(60000.0));
    assert_eq!(hl["queue"]["max_batch_size"], 1);
    assert_eq!(hl["queue"]["initial_retry_delay"], 0.01);
    assert_eq!(hl["queue"]["concurrency_limit"], 1);
    let otel = p.config_of(cfg.plugins[3].id).unwrap();
    assert_eq!(otel["traces_endpoint"], "http://otel.test:4318/v1/traces");
    assert_eq!(otel["queue"]["max_batch_size"], 200);
    assert_eq!(otel["propagation"]["default_format"], "w3c");
    assert_eq!(otel["header_type"], "preserve");

    // per request: r0 sees prometheus (global), http-log, otel; r2 (svc2) prometheus + file-log
    let kinds = |r: Req| {
        let o = run(&p, r);
        p.observers(&o.state)
            .map(|ob| match ob {
                Observer::Prometheus(_, c) => {
                    assert!(c.status_code_metrics);
                    "prometheus"
                }
                Observer::HttpLog(_, c) => {
                    assert_eq!(c.effective_queue().max_batch_size, 5);
                    "http-log"
                }
                Observer::FileLog(_, c) => {
                    assert_eq!(c.path, "/tmp/gh.log");
                    "file-log"
                }
                Observer::OpenTelemetry(..) => "opentelemetry",
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(Req::get("/r0")),
        ["opentelemetry", "prometheus", "http-log"]
    );
    assert_eq!(
        kinds(Req::get("/r2").route(Some(2), Some(1))),
        ["prometheus", "file-log"]
    );
    assert_eq!(p.all_observers().len(), 4);

    let bad = [
        ("http-log", "{}", "config.http_endpoint", "required field missing"),
        ("http-log", "{http_endpoint: \"nohost\"}", "config.http_endpoint", "missing host in url"),
        ("http-log", "{http_endpoint: \"http://a.test\", method: GET}", "config.method", "expected one of: POST, PUT, PATCH"),
        ("http-log", "{http_endpoint: \"http://a.test\", headers: {Host: x}}", "config.headers.Host", "cannot contain 'Host' header"),
        ("http-log", "{http_endpoint: \"http://a.test\", queue: {concurrency_limit: 2}}", "config.queue.concurrency_limit", "expected one of: -1, 1"),
        ("http-log", "{http_endpoint: \"http://u:p@a.test\", headers: {Authorization: x}}", "config", "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"),
        ("file-log", "{path: \"/tmp/a*b\"}", "config.path", "not a valid filename"),
        ("opentelemetry", "{}", "config.@entity", "at least one of these fields must be non-empty: 'traces_endpoint', 'logs_endpoint'"),
        ("opentelemetry", "{traces_endpoint: \"http://a.test\", sampling_rate: 2}", "config.sampling_rate", "value should be between 0 and 1"),
        ("prometheus", "{per_consumer: 1}", "config.per_consumer", "expected a boolean"),
    ];
    for (name, cfg, path, msg) in bad {
        let c = config(&format!(
            "{BASE}plugins:\n- name: {name}\n  config: {cfg}\n"
        ));
        let errs = gatehouse_plugins::compile(&c, &gatehouse_plugins::RateLimitStore::new())
            .err()
            .unwrap()
            .errors;
        assert_eq!(
            (errs[0].path_string().as_str(), errs[0].message.as_str()),
            (path, msg),
            "{name} {cfg}"
        );
    }
}
