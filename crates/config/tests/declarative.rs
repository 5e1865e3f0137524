//! Declarative parser behaviour against Kong's: defaults, ids, references, errors, real configs.

use gatehouse_config::declarative::{entity_id, hash_password, migrate_path};
use gatehouse_config::{parse, ConfigError, ParseOptions, Protocol, RouterFlavor};
use serde_json::{json, Value};
use uuid::Uuid;

const BUNDLED: &[&str] = &[
    "acl",
    "acme",
    "ai-proxy",
    "ai-prompt-decorator",
    "ai-prompt-guard",
    "ai-prompt-template",
    "ai-request-transformer",
    "ai-response-transformer",
    "aws-lambda",
    "azure-functions",
    "basic-auth",
    "bot-detection",
    "correlation-id",
    "cors",
    "datadog",
    "file-log",
    "grpc-gateway",
    "grpc-web",
    "hmac-auth",
    "http-log",
    "ip-restriction",
    "jwt",
    "key-auth",
    "ldap-auth",
    "loggly",
    "oauth2",
    "opentelemetry",
    "post-function",
    "pre-function",
    "prometheus",
    "proxy-cache",
    "rate-limiting",
    "redirect",
    "request-size-limiting",
    "request-termination",
    "request-transformer",
    "response-ratelimiting",
    "response-transformer",
    "session",
    "statsd",
    "syslog",
    "tcp-log",
    "udp-log",
    "zipkin",
    "standard-webhooks",
];

fn opts() -> ParseOptions {
    ParseOptions {
        plugins: BUNDLED.iter().map(|s| s.to_string()).collect(),
        router_flavor: RouterFlavor::TraditionalCompatible,
    }
}

fn fields(text: &str) -> Value {
    match parse(text, &opts()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.kong_body(true)["fields"].clone(),
    }
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('/').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) if v.is_array() => &v[i],
        _ => &v[k],
    })
}

#[test]
fn defaults_and_ids() {
    let cfg = parse(
        r#"
_format_version: "3.0"
services:
- name: svc
  url: http://example.com/api
  routes:
  - name: r1
    paths: [/a]
    plugins:
    - name: cors
  plugins:
  - name: key-auth
consumers:
- username: alice
  acls:
  - group: admins
  basicauth_credentials:
  - username: alice
    password: secret
upstreams:
- name: up
  targets:
  - target: 10.0.0.1
plugins:
- name: prometheus
"#,
        &opts(),
    )
    .unwrap();
    let s = &cfg.services[0];
    assert_eq!(s.id, entity_id("services", "svc"));
    assert_eq!(
        (s.protocol, s.host.as_str(), s.port, s.path.as_deref()),
        (Protocol::Http, "example.com", 80, Some("/api"))
    );
    assert_eq!(
        (
            s.retries,
            s.connect_timeout,
            s.read_timeout,
            s.write_timeout,
            s.enabled
        ),
        (5, 60000, 60000, 60000, true)
    );
    let r = &cfg.routes[0];
    assert_eq!(r.id, entity_id("routes", "r1"));
    assert_eq!(r.service, Some(s.id));
    assert_eq!(r.protocols, vec![Protocol::Http, Protocol::Https]);
    assert!(r.strip_path && !r.preserve_host && r.request_buffering && r.response_buffering);
    assert_eq!((r.https_redirect_status_code, r.regex_priority), (426, 0));
    let cors = cfg.plugins.iter().find(|p| p.name == "cors").unwrap();
    assert_eq!(cors.route, Some(r.id));
    assert_eq!(
        cors.id,
        entity_id("plugins", &format!("plugins:*:cors:{}::", r.id))
    );
    let ka = cfg.plugins.iter().find(|p| p.name == "key-auth").unwrap();
    assert_eq!(
        ka.id,
        entity_id("plugins", &format!("plugins:*:key-auth::{}:", s.id))
    );
    let prom = cfg.plugins.iter().find(|p| p.name == "prometheus").unwrap();
    assert_eq!(prom.id, entity_id("plugins", "plugins:*:prometheus:::"));
    assert_eq!(
        prom.protocols,
        vec![
            Protocol::Grpc,
            Protocol::Grpcs,
            Protocol::Http,
            Protocol::Https
        ]
    );
    let c = &cfg.consumers[0];
    assert_eq!(c.id, entity_id("consumers", "alice"));
    assert_eq!(
        cfg.acls[0].id,
        entity_id("acls", &format!("acls:*:{}:admins", c.id))
    );
    assert_eq!(
        cfg.basicauth_credentials[0].id,
        entity_id("basicauth_credentials", "basicauth_credentials:*:alice")
    );
    assert_eq!(
        cfg.basicauth_credentials[0].password,
        hash_password("secret", &c.id)
    );
    let u = &cfg.upstreams[0];
    assert_eq!((u.algorithm.as_str(), u.slots), ("round-robin", 10000));
    let t = &cfg.targets[0];
    assert_eq!(
        (t.target.as_str(), t.weight, t.upstream),
        ("10.0.0.1:8000", 100, u.id)
    );
    assert_eq!(
        t.id,
        entity_id("targets", &format!("targets:*:{}:10.0.0.1", u.id))
    );
}

#[test]
fn id_derivation_by_hand() {
    // v5(v5(fd02801f-..., "services"), "svc") computed independently of the parser.
    let ns = Uuid::new_v5(
        &Uuid::parse_str("fd02801f-0957-4a15-a55a-c8d9606f30b5").unwrap(),
        b"services",
    );
    assert_eq!(entity_id("services", "svc"), Uuid::new_v5(&ns, b"svc"));
}

#[test]
fn top_level_references() {
    let cfg = parse(
        r#"
_format_version: "3.0"
services: [{name: a, host: h}]
routes:
- {name: r, hosts: [x.com], service: a}
consumers: [{username: bob}]
keyauth_credentials: [{key: k1, consumer: bob}]
acls: [{group: g, consumer: bob}]
plugins:
- {name: rate-limiting, consumer: bob, config: {minute: 1}}
"#,
        &opts(),
    )
    .unwrap();
    assert_eq!(cfg.routes[0].service, Some(cfg.services[0].id));
    assert_eq!(cfg.keyauth_credentials[0].consumer, cfg.consumers[0].id);
    // top-level references hash the string as written
    assert_eq!(cfg.acls[0].id, entity_id("acls", "acls:*:bob:g"));
    assert_eq!(
        cfg.plugins[0].id,
        entity_id("plugins", "plugins:*:rate-limiting:::bob")
    );
    let f = fields("_format_version: '3.0'\nroutes: [{name: r, hosts: [x], service: nope}]\n");
    assert_eq!(
        f["routes"]["r"][0],
        "invalid reference 'service: nope' (no such entry in 'services')"
    );
}

#[test]
fn url_shorthand_quirks() {
    let cases = [
        ("grpcs://h", Protocol::Grpcs, 80, None),
        ("https://h", Protocol::Https, 443, None),
        ("http://h:443/p?q=1", Protocol::Http, 443, Some("/p")),
        ("tcp://h:99", Protocol::Tcp, 99, None),
    ];
    for (url, proto, port, path) in cases {
        let cfg = parse(
            &format!(
                "_format_version: '3.0'\nservices: [{{url: '{url}', protocol: udp, port: 1}}]"
            ),
            &opts(),
        )
        .unwrap();
        let s = &cfg.services[0];
        assert_eq!(
            (s.protocol, s.port, s.path.as_deref()),
            (proto, port, path),
            "{url}"
        );
    }
    let f = fields("_format_version: '3.0'\nservices: [{url: 'example.com'}]");
    assert_eq!(f["services"][0]["host"], "required field missing");
}

#[test]
fn error_table() {
    let cases: &[(&str, &str, &str)] = &[
        ("services: [{port: -12}]", "services/0/host", "required field missing"),
        ("services: [{port: -12, host: h}]", "services/0/port", "value should be between 0 and 65535"),
        ("services: [{host: h, foo: 1}]", "services/0/foo", "unknown field"),
        ("services: [{host: h, name: 1}]", "services/0/name", "expected a string"),
        ("services: [{host: h, retries: 1.5}]", "services/0/retries", "expected an integer"),
        ("services: [{host: h, protocol: tcp, path: /x}]", "services/0/path", "value must be null"),
        ("services: [{host: h, protocol: ws}]", "services/0/protocol", "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"),
        ("services: [{host: h, path: x}]", "services/0/path", "should start with: /"),
        ("foo: 1", "foo", "unknown field"),
        ("routes: [{protocols: [https]}]", "routes/0/@entity/0", "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"),
        ("routes: [{protocols: [tcp]}]", "routes/0/@entity/0", "must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'"),
        ("routes: [{paths: [a]}]", "routes/0/paths/0", "should start with: / (fixed path) or ~/ (regex path)"),
        ("routes: [{paths: [/a//b]}]", "routes/0/paths/0", "must not have empty segments"),
        ("routes: [{paths: [/a/../b]}]", "routes/0/paths/0", "non-normalized path, consider use '/b' instead"),
        ("routes: [{headers: {Host: [x]}}]", "routes/0/headers", "cannot contain 'host' header, which must be specified in the 'hosts' attribute"),
        ("routes: [{hosts: ['*.a.*']}]", "routes/0/hosts/0", "invalid wildcard: must have at most one wildcard"),
        ("routes: [{hosts: ['a.*.b']}]", "routes/0/hosts/0", "invalid wildcard: must be placed at leftmost or rightmost label"),
        ("routes: [{hosts: [a], expression: 'x'}]", "routes/0/expression", "unknown field"),
        ("consumers: [{tags: [a]}]", "consumers/0/@entity/0", "at least one of these fields must be non-empty: 'custom_id', 'username'"),
        ("certificates: [{cert: a, key: b, cert_alt: c}]", "certificates/0/@entity/0", "all or none of these fields must be set: 'cert_alt', 'key_alt'"),
        ("plugins: [{name: nope}]", "plugins/0/name", "plugin 'nope' not enabled; add it to the 'plugins' configuration property"),
        ("services: [{name: a, host: h}, {name: a, host: h}]", "services/1", "uniqueness violation: 'services' entity with name set to 'a' already declared"),
        ("services: [{host: h, routes: [{paths: [/]}, {paths: [x]}]}]", "services/0/routes/1/paths/0", "should start with: / (fixed path) or ~/ (regex path)"),
        ("consumers: [{username: a, custom_id: c}, {username: b, custom_id: c}]", "consumers/b", "uniqueness violation: 'consumers' entity with custom_id set to 'c' already declared"),
        ("services: [{host: h, tags: ['a,b']}]", "services/0/tags/0", "invalid tag 'a,b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"),
    ];
    for (snippet, path, msg) in cases {
        let f = fields(&format!("_format_version: '3.0'\n{snippet}\n"));
        assert_eq!(at(&f, path), &json!(msg), "{snippet}: {f}");
    }
}

#[test]
fn kong_body_shapes() {
    let e = parse("_format_version: '1.1'\nservices:\n- port: -12\n", &opts()).unwrap_err();
    let body = e.kong_body(false);
    assert_eq!(body["code"], 14);
    assert_eq!(body["name"], "invalid declarative configuration");
    assert_eq!(
        body["message"],
        r#"declarative config is invalid: {services={{host="required field missing",port="value should be between 0 and 65535"}}}"#
    );
    assert!(body.get("flattened_errors").is_none());
    let flat = &e.kong_body(true)["flattened_errors"];
    assert_eq!(flat[0]["entity_type"], "service");
    assert_eq!(
        flat[0]["errors"][0],
        json!({"type": "field", "field": "host", "message": "required field missing"})
    );
    let p = parse("bobby tables", &opts()).unwrap_err();
    assert!(matches!(p, ConfigError::Parse(_)));
    assert_eq!(
        p.kong_body(false)["message"],
        r#"declarative config is invalid: {error="failed parsing declarative configuration: expected an object"}"#
    );
    let dup = parse(
        "_format_version: '3.0'\nservices: [{name: a, host: h}, {name: a, host: h}]",
        &opts(),
    )
    .unwrap_err();
    assert_eq!(
        dup.kong_body(false)["message"],
        r#"declarative config is invalid: {services={[2]="uniqueness violation: 'services' entity with name set to 'a' already declared"}}"#
    );
    assert_eq!(dup.kong_body(false)["fields"]["services"][0], Value::Null);
    assert!(!e.cli_report().is_empty());
}

#[test]
fn migration() {
    assert_eq!(migrate_path("/foo/%7Ebar"), "/foo/~bar");
    assert_eq!(migrate_path("/users/\\d+"), "~/users/\\d+");
    assert_eq!(migrate_path("/a/%2Fb(x)"), "~/a/%2Fb(x)");
    assert_eq!(migrate_path("/a%2Eb(x)"), "~/a\\.b(x)");
    let cfg = parse(
        "_format_version: '2.1'\nroutes: [{paths: ['/x/\\d+', /y/./z]}]",
        &opts(),
    )
    .unwrap();
    assert_eq!(
        cfg.routes[0].paths.as_deref(),
        Some(&["~/x/\\d+".to_string(), "/y/z".to_string()][..])
    );
    assert!(parse(
        "_format_version: '3.0'\nroutes: [{paths: [/y/./z]}]",
        &opts()
    )
    .is_err());
}

#[test]
fn nested_snis_and_expressions() {
    let cfg = parse(
        "_format_version: '3.0'\ncertificates: [{cert: c, key: k, snis: [a.com, {name: b.com}]}]\n",
        &opts(),
    )
    .unwrap();
    assert_eq!(cfg.snis.len(), 2);
    assert!(cfg
        .snis
        .iter()
        .all(|s| s.certificate == cfg.certificates[0].id));
    let mut o = opts();
    o.router_flavor = RouterFlavor::Expressions;
    let cfg = parse(
        "_format_version: '3.0'\nroutes: [{expression: 'http.path == \"/\"', priority: 5}]",
        &o,
    )
    .unwrap();
    assert_eq!(cfg.routes[0].priority, Some(5));
}

#[test]
fn real_configs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/real-configs");
    let Ok(manifest) = std::fs::read_to_string(dir.join("manifest.json")) else {
        eprintln!("SKIP real_configs: {} not found", dir.display());
        return;
    };
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    for c in manifest["configs"].as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let res = parse(&text, &opts());
        match c["expect"].as_str().unwrap() {
            "accept" => assert!(res.is_ok(), "{file}: {}", res.unwrap_err().cli_report()),
            _ => {
                let err = res.expect_err(file);
                let want = c["reject_reason"]
                    .as_str()
                    .unwrap()
                    .split(" (")
                    .next()
                    .unwrap();
                assert!(err.to_string().contains(want), "{file}: {err}");
            }
        }
    }
}
