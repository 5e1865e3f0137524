//! Chain order, Kong's 8-level precedence, protocols/enabled, early exit semantics, and
//! schema validation errors.
mod common;
use common::*;

use gatehouse_plugins::{compile, RateLimitStore, Seg};

#[test]
fn order_is_priority_desc_then_name_desc() {
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: request-termination\n- name: rate-limiting\n  config: {{second: 9}}\n- name: acl\n  config: {{allow: [x]}}\n- name: key-auth\n- name: ip-restriction\n  config: {{allow: [0.0.0.0/0]}}\n- name: prometheus\n- name: correlation-id\n"
    ));
    let names = p.chain_names(p.chain_for(Some(0), Some(0)));
    assert_eq!(
        names,
        [
            "correlation-id",
            "key-auth",
            "ip-restriction",
            "acl",
            "rate-limiting",
            "prometheus",
            "request-termination"
        ]
    );
    assert!(p.not_implemented().is_empty());
}

#[test]
fn precedence_first_hit_wins() {
    // R+S beats C; C beats R; R beats S; S beats G; R+C beats everything but R+S+C.
    let yaml = format!(
        "{BASE}plugins:
- name: request-termination
  config: {{status_code: 410, message: global}}
- name: request-termination
  service: svc
  config: {{status_code: 410, message: service}}
- name: request-termination
  route: r1
  config: {{status_code: 410, message: route}}
- name: request-termination
  consumer: alice
  config: {{status_code: 410, message: consumer}}
- name: request-termination
  route: r1
  consumer: bob
  config: {{status_code: 410, message: route+consumer}}
- name: key-auth
"
    );
    let p = plugins(&yaml);
    let msg = |o: Outcome| o.body()["message"].as_str().unwrap().to_string();
    // r0 (svc): service-level, consumer-level for alice (C beats S), bob → service
    assert_eq!(msg(run(&p, Req::get("/r0?apikey=bob-key"))), "service");
    assert_eq!(msg(run(&p, Req::get("/r0?apikey=alice-key"))), "consumer");
    // r1: route beats service; alice's C beats R; bob's R+C beats R
    assert_eq!(
        msg(run(
            &p,
            Req::get("/r1?apikey=alice-key").route(Some(1), Some(0))
        )),
        "consumer"
    );
    assert_eq!(
        msg(run(
            &p,
            Req::get("/r1?apikey=bob-key").route(Some(1), Some(0))
        )),
        "route+consumer"
    );
    // r2 (svc2): global, or alice's consumer config
    assert_eq!(
        msg(run(
            &p,
            Req::get("/r2?apikey=bob-key").route(Some(2), Some(1))
        )),
        "global"
    );
    assert_eq!(
        msg(run(
            &p,
            Req::get("/r2?apikey=alice-key").route(Some(2), Some(1))
        )),
        "consumer"
    );
    // termination bodies are `exit` style: no request_id
    assert!(run(&p, Req::get("/r0?apikey=bob-key"))
        .body()
        .get("request_id")
        .is_none());
}

#[test]
fn rs_beats_consumer() {
    let yaml = format!(
        "{BASE}plugins:
- name: request-termination
  route: r0
  service: svc
  config: {{status_code: 410, message: route+service}}
- name: request-termination
  consumer: alice
  config: {{status_code: 410, message: consumer}}
- name: key-auth
"
    );
    let p = plugins(&yaml);
    assert_eq!(
        run(&p, Req::get("/r0?apikey=alice-key")).body()["message"],
        "route+service"
    );
}

#[test]
fn disabled_and_protocols() {
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: key-auth\n  enabled: false\n- name: request-termination\n  protocols: [https]\n"
    ));
    let o = run(&p, Req::get("/r0"));
    assert!(
        o.exit.is_none(),
        "key-auth disabled, termination only on https"
    );
}

#[test]
fn early_exit_still_collects_later_plugins_for_header_filter() {
    // key-auth (1250) refuses; rate-limiting (910) is collected but not run, so it emits no
    // headers and counts nothing.
    let p = plugins(&format!(
        "{BASE}plugins:\n- name: key-auth\n  route: r0\n- name: rate-limiting\n  route: r0\n  config: {{minute: 1, limit_by: ip}}\n"
    ));
    for _ in 0..3 {
        let o = run(&p, Req::get("/r0"));
        assert_eq!(o.status.as_u16(), 401);
        assert!(o.state.exited);
        assert!(o.resp("x-ratelimit-limit-minute").is_none());
    }
    assert!(run(&p, Req::get("/r0?apikey=bob-key")).exit.is_none());
}

#[test]
fn validation_errors_in_kong_shape() {
    let store = RateLimitStore::new();
    let mut cfg = config(&format!(
        "{BASE}plugins:
- name: rate-limiting
  config: {{minute: 5}}
- name: key-auth
- name: acl
  config: {{allow: [a]}}
- name: request-termination
- name: ip-restriction
  config: {{allow: [1.2.3.4]}}
"
    ));
    let set = |cfg: &mut gatehouse_config::Config, i: usize, v: serde_json::Value| {
        cfg.plugins[i].config = v
    };
    set(
        &mut cfg,
        0,
        serde_json::json!({"minute": 5, "hour": 2, "bogus": 1, "policy": "cluster"}),
    );
    set(
        &mut cfg,
        1,
        serde_json::json!({"key_names": ["ok", "bad name"], "hide_credentials": "yes"}),
    );
    set(&mut cfg, 2, serde_json::json!({}));
    set(
        &mut cfg,
        3,
        serde_json::json!({"status_code": 700, "message": "m", "body": "b"}),
    );
    set(&mut cfg, 4, serde_json::json!({"allow": ["1.2.3.4/33"]}));
    let errs = compile(&cfg, &store).err().expect("errors").errors;
    let got: Vec<(usize, String, String)> = errs
        .iter()
        .map(|e| (e.plugin_index, e.path_string(), e.message.clone()))
        .collect();
    let want = [
        (0, "config.bogus", "unknown field"),
        (0, "config.policy", "expected one of: local, redis"),
        (
            1,
            "config.key_names[1]",
            "bad header name 'bad name', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
        ),
        (1, "config.hide_credentials", "expected a boolean"),
        (
            2,
            "@entity",
            "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ),
        (
            3,
            "config.status_code",
            "value should be between 100 and 599",
        ),
        (
            4,
            "config.allow[0]",
            "invalid ip or cidr range: '1.2.3.4/33'",
        ),
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g.0 == w.0 && g.1 == w.1 && g.2 == w.2),
            "missing {w:?} in {got:#?}"
        );
    }
    assert!(matches!(errs[0].path[0], Seg::Key(ref k) if k == "config"));

    set(&mut cfg, 0, serde_json::json!({"minute": 5, "hour": 2}));
    set(&mut cfg, 1, serde_json::json!({}));
    set(
        &mut cfg,
        2,
        serde_json::json!({"allow": ["a"], "deny": ["b"]}),
    );
    set(
        &mut cfg,
        3,
        serde_json::json!({"message": "m", "body": "b"}),
    );
    set(&mut cfg, 4, serde_json::json!({}));
    let got: Vec<(usize, String, String)> = compile(&cfg, &store)
        .err()
        .unwrap()
        .errors
        .iter()
        .map(|e| (e.plugin_index, e.path_string(), e.message.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                0,
                "config".into(),
                "The limit for hour(2.0) cannot be lower than the limit for minute(5.0)".into()
            ),
            (
                2,
                "@entity".into(),
                "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"
                    .into()
            ),
            (
                3,
                "config".into(),
                "message cannot be used with content_type or body".into()
            ),
            (
                4,
                "@entity".into(),
                "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"
                    .into()
            ),
        ]
    );

    // unknown plugin names and consumer-scoped key-auth
    cfg.plugins.truncate(2);
    cfg.plugins[0].name = "no-such-plugin".into();
    cfg.plugins[1].consumer = Some(cfg.consumers[0].id);
    let got: Vec<(String, String)> = compile(&cfg, &store)
        .err()
        .unwrap()
        .errors
        .iter()
        .map(|e| (e.path_string(), e.message.clone()))
        .collect();
    assert_eq!(got, [
        ("name".into(), "plugin 'no-such-plugin' not enabled; add it to the 'plugins' configuration property".into()),
        ("consumer".into(), "value must be null".into()),
    ]);
}

#[test]
fn defaults_are_filled() {
    let cfg = config(&format!("{BASE}plugins:\n- name: key-auth\n- name: rate-limiting\n  config: {{second: 1, redis_host: h}}\n- name: statsd\n  config: {{anything: [1]}}\n"));
    let p = compile(&cfg, &RateLimitStore::new()).unwrap();
    let ka = p.config_of(cfg.plugins[0].id).unwrap();
    assert_eq!(
        ka,
        serde_json::json!({"key_names": ["apikey"], "hide_credentials": false, "anonymous": null,
        "key_in_header": true, "key_in_query": true, "key_in_body": false, "run_on_preflight": true, "realm": null})
    );
    let rl = p.config_of(cfg.plugins[1].id).unwrap();
    assert_eq!(rl["limit_by"], "consumer");
    assert_eq!(rl["policy"], "local");
    assert_eq!(rl["redis"]["host"], "h");
    assert_eq!(rl["redis"]["port"], 6379);
    assert_eq!(rl["error_message"], "API rate limit exceeded");
    assert_eq!(
        p.config_of(cfg.plugins[2].id).unwrap(),
        serde_json::json!({"anything": [1]})
    );
}

/// Identical configs are validated once per load; each plugin still gets its own errors (at its
/// own index) or its own compiled instance.
#[test]
fn identical_configs_each_report_their_errors() {
    let store = RateLimitStore::new();
    let cfg = config(&format!(
        "{BASE}plugins:
- name: request-termination
  route: r0
  config: {{status_code: 700}}
- name: request-termination
  config: {{status_code: 403}}
- name: request-termination
  service: svc
  config: {{status_code: 700}}
"
    ));
    let got: Vec<(usize, String, String)> = compile(&cfg, &store)
        .err()
        .expect("errors")
        .errors
        .iter()
        .map(|e| (e.plugin_index, e.path_string(), e.message.clone()))
        .collect();
    let msg = "value should be between 100 and 599".to_string();
    assert_eq!(
        got,
        [
            (0, "config.status_code".into(), msg.clone()),
            (2, "config.status_code".into(), msg),
        ]
    );

    let cfg = config(&format!(
        "{BASE}plugins:
- name: request-termination
  route: r0
  config: {{status_code: 403}}
- name: request-termination
  service: svc
  config: {{status_code: 403}}
"
    ));
    let p = compile(&cfg, &store).expect("valid");
    assert_eq!(run(&p, Req::get("/r0")).status.as_u16(), 403);
}
