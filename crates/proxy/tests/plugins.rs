//! Bundled plugins through the real proxy: Kong-documented behaviours a client sees.

mod support;

use support::*;

/// One row: request headers, target, expected status, error message, consumer upstream.
struct Case {
    headers: &'static [(&'static str, &'static str)],
    target: &'static str,
    status: u16,
    message: Option<&'static str>,
    consumer: Option<&'static str>,
}

fn config(upstream: &Upstream, route_plugins: &str, extra: &str) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
- name: svc
  url: http://{addr}
  routes:
  - name: r
    paths: [/]
    plugins:
{route_plugins}
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - key: alice-key
  acls:
  - group: gold
- username: bob
  keyauth_credentials:
  - key: bob-key
{extra}
"#,
        addr = upstream.addr
    )
}

#[test]
fn key_auth() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(
        &up,
        "    - name: key-auth\n      config:\n        hide_credentials: true",
        "",
    ));
    // (headers, query, status, message, consumer seen upstream)
    let case = |headers, target, status, message, consumer| Case {
        headers,
        target,
        status,
        message,
        consumer,
    };
    let cases = [
        case(&[], "/", 401, Some("No API key found in request"), None),
        case(&[("apikey", "nope")], "/", 401, Some("Unauthorized"), None),
        case(&[("apikey", "alice-key")], "/", 200, None, Some("alice")),
        case(&[], "/?apikey=bob-key&x=1", 200, None, Some("bob")),
        case(
            &[("apikey", "")],
            "/",
            401,
            Some("No API key found in request"),
            None,
        ),
    ];
    for Case {
        headers,
        target,
        status,
        message,
        consumer,
    } in cases
    {
        let r = get(gw.addr, target, headers);
        assert_eq!(r.status, status, "{target} {headers:?}: {}", r.body);
        if let Some(m) = message {
            assert_eq!(r.json()["message"], m);
            assert_eq!(r.header("www-authenticate"), Some("Key"));
            assert!(
                r.json()["request_id"].is_string(),
                "kong.response.error carries request_id"
            );
        }
        if let Some(c) = consumer {
            assert_eq!(r.upstream_header("x-consumer-username").as_deref(), Some(c));
            assert!(
                r.upstream_header("apikey").is_none(),
                "hide_credentials strips the header"
            );
            assert!(
                !r.json()["uri"].as_str().unwrap_or("").contains("apikey"),
                "and the query arg"
            );
        }
    }
    assert_eq!(up.hits(), 2);
}

#[test]
fn rate_limiting_local_counts_and_answers_429() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(
        &up,
        "    - name: rate-limiting\n      config:\n        minute: 3\n        policy: local\n        limit_by: ip",
        "",
    ));
    for remaining in (0..3).rev() {
        let r = get(gw.addr, "/", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-ratelimit-limit-minute"), Some("3"));
        assert_eq!(
            r.header("x-ratelimit-remaining-minute"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
    }
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "API rate limit exceeded");
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("x-ratelimit-remaining-minute"), Some("0"));
    assert_eq!(up.hits(), 3);
}

#[test]
fn rate_limits_survive_a_reload() {
    let up = Upstream::start("a");
    let yaml = config(
        &up,
        "    - name: rate-limiting\n      config:\n        hour: 2\n        limit_by: ip",
        "",
    );
    let gw = Gateway::start(&yaml);
    assert_eq!(get(gw.addr, "/", &[]).status, 200);
    gw.swap_from_previous(&format!("{yaml}\n_comment: changed\n"));
    assert_eq!(get(gw.addr, "/", &[]).status, 200);
    assert_eq!(
        get(gw.addr, "/", &[]).status,
        429,
        "the counter carried over"
    );
}

#[test]
fn key_auth_then_acl() {
    let up = Upstream::start("a");
    let gw = Gateway::start(&config(
        &up,
        "    - name: key-auth\n    - name: acl\n      config:\n        allow: [gold]",
        "",
    ));
    let cases: [(&str, u16); 3] = [("alice-key", 200), ("bob-key", 403), ("", 401)];
    for (key, status) in cases {
        let r = get(gw.addr, "/", &[("apikey", key)]);
        assert_eq!(r.status, status, "{key}: {}", r.body);
    }
    let r = get(gw.addr, "/", &[("apikey", "bob-key")]);
    assert_eq!(r.json()["message"], "You cannot consume this service");
}

#[test]
fn request_termination_on_a_serviceless_route_and_ip_restriction() {
    let up = Upstream::start("a");
    let extra = r#"routes:
- name: maintenance
  paths: [/down]
  plugins:
  - name: request-termination
    config:
      status_code: 503
      message: back soon
- name: blocked
  paths: [/blocked]
  service: svc
  plugins:
  - name: ip-restriction
    config:
      deny: [127.0.0.0/8]
"#;
    let gw = Gateway::start(
        &config(&up, "    []", extra).replace("    plugins:\n    []", "    plugins: []"),
    );
    let r = get(gw.addr, "/down", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "back soon"}),
        "exit: no request_id"
    );
    let r = get(gw.addr, "/blocked", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "Your IP address is not allowed");
    assert_eq!(up.hits(), 0);
}

#[test]
fn invalid_plugin_config_is_a_config_error() {
    let up = Upstream::start("a");
    let yaml = config(
        &up,
        "    - name: rate-limiting\n      config:\n        minute: -1",
        "",
    );
    let plugins = gatehouse_config::settings::BUNDLED_PLUGINS
        .iter()
        .map(|p| p.to_string())
        .collect();
    let opts = gatehouse_config::ParseOptions {
        plugins,
        router_flavor: gatehouse_config::RouterFlavor::TraditionalCompatible,
    };
    let cfg = gatehouse_config::parse(&yaml, &opts).expect("declaratively valid");
    let err = gatehouse_proxy::Snapshot::build(
        cfg,
        "h".into(),
        gatehouse_config::RouterFlavor::TraditionalCompatible,
    );
    assert!(err.is_err_and(|e| e.to_string().contains("minute")));
}

/// A throwaway `redis-server` on an ephemeral port, killed on drop (CI installs it).
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        use std::time::{Duration, Instant};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("ephemeral port")
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-server` ({e}): install it (apt-get install redis-server)")
            });
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        RedisServer { child, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rate_limiting_redis_counts_and_answers_429() {
    let redis = RedisServer::start();
    let up = Upstream::start("a");
    let plugin = format!(
        "    - name: rate-limiting\n      config:\n        hour: 2\n        limit_by: ip\n        \
         policy: redis\n        redis:\n          host: 127.0.0.1\n          port: {}",
        redis.port
    );
    let gw = Gateway::start(&config(&up, &plugin, ""));
    for remaining in ["1", "0"] {
        let r = get(gw.addr, "/", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-ratelimit-remaining-hour"), Some(remaining));
    }
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "API rate limit exceeded");
    assert!(r.header("retry-after").is_some());
    assert_eq!(up.hits(), 2);
}
